"""The conformance suite (conformance.py) for the enStratus / DCM adapter
through the enStratus emulator, twice: on instances (servers: launches are DCM
jobs that go RUNNING -> COMPLETE, then the server boots PENDING -> RUNNING)
and on volumes (addVolume jobs, then the volume goes PENDING -> ACTIVE)."""
import contextlib
import os
import pathlib
import sys
import uuid

from cloudplane_testing import compute_pb2, volumes_pb2
from conformance import AdapterConformance, Collection, Profile, UnsupportedCall

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "emulators" / "enstratus"))
import enstratus_testing as es  # noqa: E402


class EnstratusProfile(Profile):
    id = "enstratus"
    account_id = "dcm"
    collection = Collection(compute_pb2, "ComputeService", "Instance")

    @contextlib.contextmanager
    def environment(self, workdir):
        emulator = es.EnstratusEmulator(workdir, job_seconds=0.2, boot_seconds=0.2).start()
        # A network to launch on (network_interfaces' sample): DCM's
        # addNetwork, straight at the emulator.
        status, body, _ = emulator.request("POST", "network/Network", {"addNetwork": [{
            "budget": es.BUDGET, "name": "conformance", "description": "conformance",
            "networkAddress": "10.90.0.0/24", "region": {"regionId": es.REGION}}]})
        assert status == 202, body
        self.network_id = int(emulator.wait_job(body["jobs"][0]["jobId"])["message"])
        # The server reads the key pair from this variable at start-up.
        os.environ["ENSTRATUS_TEST_KEYS"] = es.KEYS
        try:
            yield f"""
accounts {{
  id: "{self.account_id}"
  provider: "enstratus"
  endpoint: "{emulator.url}"
  credentials {{ env: "ENSTRATUS_TEST_KEYS" }}
  options {{ key: "budget" value: "{es.BUDGET}" }}
}}
"""
        finally:
            emulator.stop()

    def resource_id(self, tag, n):
        return f"{tag}-{n}"

    def resource(self, n):
        account = self.account
        return compute_pb2.Instance(
            display_name=f"conformance-{n}",
            image=f"{account}/images/{es.IMAGE}",
            machine_type=f"{account}/machineTypes/{es.PRODUCT}",
            location=f"{account}/locations/dc-{es.DATACENTER}",
            key_name=f"key-{n}")

    def is_settled(self, instance):
        return instance.state == compute_pb2.Instance.RUNNING

    def field_samples(self):
        # DCM keeps one label, under the key "label".
        return {"billing_code": f"{self.account}/billingCodes/{es.BUDGET}",
                "firewalls": [f"{self.account}/firewalls/116387"],
                "labels": {"label": "conformance"},
                # One interface, only its network (what a launch can name).
                "network_interfaces": [compute_pb2.NetworkInterface(
                    network=f"{self.account}/networks/{self.network_id}")]}

    def unsupported_call(self):
        # DCM's API has no reboot; a mutation, so the suite also checks that
        # no Operation is recorded.
        def invoke(server):
            return server.compute().RebootInstance(compute_pb2.RebootInstanceRequest(
                name=f"{self.account}/instances/web-1", request_id=str(uuid.uuid4())),
                timeout=10)
        return UnsupportedCall("cloudplane.v1.ComputeService.RebootInstance", invoke)


class EnstratusVolumesProfile(EnstratusProfile):
    id = "enstratus-volumes"
    collection = Collection(volumes_pb2, "VolumesService", "Volume")

    def resource(self, n):
        return volumes_pb2.Volume(
            display_name=f"conformance-{n}", size_bytes=(1 + n % 3) << 30,
            location=f"{self.account}/locations/dc-{es.DATACENTER}")

    def is_settled(self, volume):
        return volume.state == volumes_pb2.Volume.AVAILABLE

    def field_samples(self):
        # DCM makes disks only (a CDROM is refused by the adapter).
        return {"media": volumes_pb2.Volume.DISK, "labels": {"label": "conformance"}}

    def unsupported_call(self):
        # DCM has no volume copy.
        def invoke(server):
            return server.volumes().CloneVolume(volumes_pb2.CloneVolumeRequest(
                name=f"{self.account}/volumes/211309", request_id=str(uuid.uuid4())),
                timeout=10)
        return UnsupportedCall("cloudplane.v1.VolumesService.CloneVolume", invoke)


class TestEnstratus(AdapterConformance):
    profile = EnstratusProfile()


class TestEnstratusVolumes(AdapterConformance):
    profile = EnstratusVolumesProfile()
