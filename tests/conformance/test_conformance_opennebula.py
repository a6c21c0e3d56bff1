"""The conformance suite (conformance.py) for the OpenNebula adapter, on
instances, against the OpenNebula XML-RPC emulator (VM steps of 50 ms)."""
import contextlib
import os
import pathlib
import sys
import uuid

from cloudplane_testing import compute_pb2, volumes_pb2
from conformance import (AdapterConformance, Collection, Profile, UnsupportedCall,
                         user_data_digest_shown)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "emulators" /
                       "opennebula"))
import one_emulator  # noqa: E402

SESSION_ENV = "ONE_AUTH_CONFORMANCE"


class OpenNebulaProfile(Profile):
    id = "opennebula"
    account_id = "one"
    collection = Collection(compute_pb2, "ComputeService", "Instance")

    @contextlib.contextmanager
    def environment(self, workdir):
        process, endpoint = one_emulator.spawn(workdir, step_delay=0.05)
        os.environ[SESSION_ENV] = "oneadmin:opennebula"
        try:
            yield (f'accounts {{ id: "{self.account_id}" provider: "opennebula" '
                   f'endpoint: "{endpoint}" credentials {{ env: "{SESSION_ENV}" }} }}\n')
        finally:
            process.terminate()
            process.wait(timeout=10)

    def resource_id(self, tag, n):
        return f"{tag}-{n}"

    def resource(self, n):
        # Template 0 (debian-12) or 1 (alpine-3) of the emulator.
        return compute_pb2.Instance(image=f"{self.account}/images/{n % 2}",
                                    labels={f"n{n}": ""})

    def field_samples(self):
        # Network 0 "private" is the emulator's seeded network (10.0.0.0/24).
        return {"cpu_count": 2, "memory_bytes": 512 << 20,
                "network_interfaces": [compute_pb2.NetworkInterface(
                    id="0", network=f"{self.account}/networks/private", address="10.0.0.200",
                    mac_address="02:00:0a:00:00:c8", model="virtio")]}

    def input_only_samples(self):
        # user_data is the CONTEXT's USER_DATA (base64); Get shows its SHA-256.
        data = "#cloud-config\nruncmd: [echo conformance]\n"
        return {"user_data": (data, user_data_digest_shown(data))}

    def is_settled(self, instance):
        return (instance.state == compute_pb2.Instance.RUNNING and
                instance.provider_state == "ACTIVE/RUNNING")

    def unsupported_call(self):
        def invoke(server):
            return server.volumes().CreateVolume(volumes_pb2.CreateVolumeRequest(
                parent=self.account, volume_id="data-1", request_id=str(uuid.uuid4()),
                volume=volumes_pb2.Volume(size_bytes=1 << 30)), timeout=10)
        return UnsupportedCall("cloudplane.v1.VolumesService.CreateVolume", invoke)


class TestOpenNebula(AdapterConformance):
    profile = OpenNebulaProfile()
