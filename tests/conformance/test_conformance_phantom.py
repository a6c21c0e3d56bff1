"""The conformance suite for the phantom adapter, on launch templates:
Phantom's dialect against the Phantom emulator (2 items per describe page),
and the AWS dialect against moto's server mode (MaxRecords 2, SigV4 checked
by moto's IAM)."""
import contextlib
import uuid

from cloudplane_testing import autoscaling_pb2, volumes_pb2
from conformance import AdapterConformance, Collection, Profile, UnsupportedCall
from emulators.phantom.phantom_testing import MotoServer, PhantomEmulator


class _PhantomBase(Profile):
    collection = Collection(autoscaling_pb2, "AutoscalingService", "LaunchTemplate")

    def resource_id(self, tag, n):
        return f"{tag}-{n}"

    def is_settled(self, template):
        # A launch configuration exists as soon as it is created.
        return template.name.startswith(self.account + "/launchTemplates/")

    def unsupported_call(self):
        def invoke(server):
            return server.volumes().CreateVolume(volumes_pb2.CreateVolumeRequest(
                parent=self.account, volume_id="data-1", request_id=str(uuid.uuid4()),
                volume=volumes_pb2.Volume(size_bytes=1 << 30)), timeout=10)
        return UnsupportedCall("cloudplane.v1.VolumesService.CreateVolume", invoke)


class PhantomProfile(_PhantomBase):
    id = "phantom"
    account_id = "phantom"

    @contextlib.contextmanager
    def environment(self, workdir):
        emulator = PhantomEmulator(workdir, page_limit=2).start()
        try:
            yield emulator.account(self.account_id, "CP_TEST_PHANTOM_CONF_SECRET")
        finally:
            emulator.stop()

    def resource(self, n):
        a = self.account
        return autoscaling_pb2.LaunchTemplate(
            image=f"{a}/images/hello-{n}.gz", machine_type=f"{a}/machineTypes/m1.small",
            locations=[autoscaling_pb2.LocationLaunchSpec(location=f"{a}/locations/hotel"),
                       autoscaling_pb2.LocationLaunchSpec(location=f"{a}/locations/ec2",
                                                          image=f"ami-{n:08x}")])


class AwsMotoProfile(_PhantomBase):
    id = "phantom-aws"
    account_id = "phantom-aws"

    @contextlib.contextmanager
    def environment(self, workdir):
        moto = MotoServer(workdir).start()
        try:
            yield moto.account(self.account_id, "CP_TEST_PHANTOM_AWS_CONF_SECRET")
        finally:
            moto.stop()

    def resource(self, n):
        a = self.account
        return autoscaling_pb2.LaunchTemplate(
            image=f"{a}/images/ami-{n:08x}", machine_type=f"{a}/machineTypes/t2.micro",
            user_data=f"#!/bin/sh\necho {n}\n")

    def field_samples(self):
        # An AWS launch configuration keeps KeyName (Phantom's always says
        # "phantomkey", so the phantom dialect refuses key_name).
        return {"key_name": "conformance-key"}


class TestPhantom(AdapterConformance):
    profile = PhantomProfile()


class TestPhantomAwsMoto(AdapterConformance):
    profile = AwsMotoProfile()
