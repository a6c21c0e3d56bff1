"""The conformance suite (conformance.py) for the CloudSigma adapter, on
volumes (drives), against the CloudSigma emulator."""
import contextlib
import pathlib
import sys
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "emulators" /
                       "cloudsigma"))

from cloudplane_testing import units_pb2, volumes_pb2  # noqa: E402
from cloudsigma_testing import CloudSigmaEmulatorProcess  # noqa: E402
from conformance import AdapterConformance, Collection, Profile, UnsupportedCall  # noqa: E402


class CloudSigmaProfile(Profile):
    id = "cloudsigma"
    account_id = "cloudsigma"
    collection = Collection(volumes_pb2, "VolumesService", "Volume")

    @contextlib.contextmanager
    def environment(self, workdir):
        emulator = CloudSigmaEmulatorProcess(workdir).start()
        try:
            yield emulator.account_config(self.account_id, "CLOUDPLANE_TEST_CLOUDSIGMA_SECRET")
        finally:
            emulator.stop()

    def resource_id(self, tag, n):
        return f"{tag}-{n}"

    def resource(self, n):
        return volumes_pb2.Volume(display_name=f"conformance {n}", size_bytes=(n + 1) << 30)

    def is_settled(self, volume):
        return volume.state == volumes_pb2.Volume.AVAILABLE

    def field_samples(self):
        return {"media": volumes_pb2.Volume.CDROM, "labels": {"tier": "db"}}

    def unsupported_call(self):
        # CloudSigma has no fleet units; a mutation, so the suite also checks
        # that no Operation is recorded.
        def invoke(server):
            return server.units().CreateUnit(units_pb2.CreateUnitRequest(
                parent=self.account, unit_id="hello.service", request_id=str(uuid.uuid4()),
                unit=units_pb2.Unit(desired_state=units_pb2.Unit.LAUNCHED, options=[
                    units_pb2.UnitOption(section="Service", name="ExecStart",
                                         value="/usr/bin/sleep 1d")])), timeout=10)
        return UnsupportedCall("cloudplane.v1.UnitsService.CreateUnit", invoke)


class TestCloudSigma(AdapterConformance):
    profile = CloudSigmaProfile()
