"""The conformance suite (conformance.py) instantiated for every adapter.

To add an adapter: write a Profile (its account config and emulator, the
collection to exercise, a valid resource, the settled state, one RPC it does
not support) and a two-line subclass of AdapterConformance below.
"""
import contextlib
import uuid

from cloudplane_testing import FleetEmulator, units_pb2, volumes_pb2
from conformance import AdapterConformance, Collection, Profile, UnsupportedCall


class SandboxProfile(Profile):
    """The built-in sandbox, on volumes (no image or machine type needed)."""

    id = "sandbox"
    account_id = "sandbox"
    collection = Collection(volumes_pb2, "VolumesService", "Volume")

    @contextlib.contextmanager
    def environment(self, workdir):
        yield f"""
accounts {{
  id: "{self.account_id}"
  provider: "sandbox"
  options {{ key: "transition_ms" value: "100" }}
}}
"""

    def resource_id(self, tag, n):
        return f"{tag}-{n}"

    def resource(self, n):
        return volumes_pb2.Volume(display_name=f"conformance {n}", size_bytes=(n + 1) << 30)

    def is_settled(self, volume):
        return volume.state == volumes_pb2.Volume.AVAILABLE

    def unsupported_call(self):
        return None  # the sandbox implements every RPC of the API


    def field_samples(self):
        return {"media": volumes_pb2.Volume.CDROM,
                "location": f"{self.account}/locations/sandbox-1a",
                "labels": {"tier": "db"}}


class FleetProfile(Profile):
    """CoreOS fleet v1 through the fleet emulator (2 units per fleet page),
    reached over TCP or over its unix socket."""

    collection = Collection(units_pb2, "UnitsService", "Unit")

    def __init__(self, transport):
        self.transport = transport
        self.id = f"fleet-{transport}"
        self.account_id = f"fleet-{transport}"

    @contextlib.contextmanager
    def environment(self, workdir):
        emulator = FleetEmulator(workdir, page_limit=2).start()
        try:
            endpoint = getattr(emulator, f"{self.transport}_endpoint")
            yield f'accounts {{ id: "{self.account_id}" provider: "fleet" endpoint: "{endpoint}" }}\n'
        finally:
            emulator.stop()

    def resource_id(self, tag, n):
        return f"{tag}-{n}.service"

    def resource(self, n):
        return units_pb2.Unit(
            desired_state=units_pb2.Unit.LAUNCHED,
            options=[units_pb2.UnitOption(section="Service", name="ExecStart",
                                          value=f"/usr/bin/sleep {n + 1}d")])

    def is_settled(self, unit):
        return unit.current_state == unit.desired_state != units_pb2.Unit.STATE_UNSPECIFIED

    def unsupported_call(self):
        # A mutation, so the suite also sees that no Operation is recorded.
        def invoke(server):
            return server.volumes().CreateVolume(volumes_pb2.CreateVolumeRequest(
                parent=self.account, volume_id="data-1", request_id=str(uuid.uuid4()),
                volume=volumes_pb2.Volume(size_bytes=1 << 30)), timeout=10)
        return UnsupportedCall("cloudplane.v1.VolumesService.CreateVolume", invoke)


class TestSandbox(AdapterConformance):
    profile = SandboxProfile()


class TestFleetTcp(AdapterConformance):
    profile = FleetProfile("tcp")


class TestFleetUnix(AdapterConformance):
    profile = FleetProfile("unix")
