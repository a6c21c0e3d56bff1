"""End to end: the real server, the CloudSigma emulator (REST + websocket),
and the generated Python client."""
import pathlib
import queue
import sys
import threading
import time

import grpc
import pytest
from google.protobuf import field_mask_pb2

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "emulators" /
                       "cloudsigma"))

from cloudplane_testing import (compute_pb2, error_details, unpack, volumes_pb2,  # noqa: E402
                                watch_pb2)
from cloudsigma_testing import PASSWORD, server_fixtures  # noqa: E402

ACCOUNT = "accounts/cs"
DOMAIN = "cloudplane.dev"

emulator, server = server_fixtures(
    "cs", "CLOUDPLANE_TEST_CS_SECRET",
    more_accounts=[("cs-wrong", "CLOUDPLANE_TEST_CS_WRONG_SECRET", "not-the-password")])


def expect_error(code, call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kwargs)
    assert err.value.code() == code, err.value.details()
    info, bad = error_details(err.value)
    assert info is not None and info.domain == DOMAIN, info
    return err.value, info, bad


class Watcher:
    """A Watch stream read on its own thread."""

    def __init__(self, server):
        self.events = queue.Queue()
        self.seen = []
        self.call = server.watch().Watch(watch_pb2.WatchRequest(parent=ACCOUNT))
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        first = self.events.get(timeout=10)
        assert first.change_type == watch_pb2.WatchResponse.HEARTBEAT

    def _read(self):
        try:
            for event in self.call:
                self.events.put(event)
        except grpc.RpcError:
            pass

    def wait_for(self, predicate, timeout=15):
        """The first event so far (or within `timeout`) that matches."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.seen:
                if predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                self.seen.append(self.events.get(timeout=remaining))
            except queue.Empty:
                break
        raise AssertionError("no matching event; saw " + str(
            [(e.kind, e.change_type, e.source, e.resource_name) for e in self.seen]))

    def close(self):
        self.call.cancel()


def test_drive_server_attach_start_stop_detach_delete(server, emulator):
    compute, volumes = server.compute(), server.volumes()
    watcher = Watcher(server)  # opened before anything happens
    try:
        # A drive.
        op = server.wait(volumes.CreateVolume(volumes_pb2.CreateVolumeRequest(
            parent=ACCOUNT, volume_id="data-1", request_id="flow-vol",
            volume=volumes_pb2.Volume(display_name="data", size_bytes=2 << 30,
                                      labels={"team": "web"}))))
        assert not op.HasField("error"), op.error
        volume = unpack(op.response, volumes_pb2.Volume)
        assert volume.name == f"{ACCOUNT}/volumes/data-1"
        assert volume.state == volumes_pb2.Volume.AVAILABLE
        assert volume.provider_state == "unmounted"
        assert volume.labels == {"team": "web"}

        # A server, not started yet.
        op = server.wait(compute.CreateInstance(compute_pb2.CreateInstanceRequest(
            parent=ACCOUNT, instance_id="web-1", start=False, request_id="flow-srv",
            instance=compute_pb2.Instance(display_name="web", cpu_mhz=2000,
                                          memory_bytes=1 << 30, labels={"role": "web"}))))
        assert not op.HasField("error"), op.error
        instance = unpack(op.response, compute_pb2.Instance)
        assert instance.name == f"{ACCOUNT}/instances/web-1"
        assert instance.state == compute_pb2.Instance.STOPPED
        assert instance.provider_state == "stopped"
        assert (instance.cpu_mhz, instance.memory_bytes) == (2000, 1 << 30)

        # Update keeps what it was not told to change (PUT of the whole object).
        op = server.wait(compute.UpdateInstance(compute_pb2.UpdateInstanceRequest(
            instance=compute_pb2.Instance(name=instance.name, display_name="web-renamed"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]))))
        updated = unpack(op.response, compute_pb2.Instance)
        assert updated.display_name == "web-renamed"
        assert updated.labels == {"role": "web"} and updated.cpu_mhz == 2000

        # Attach.
        op = server.wait(volumes.AttachVolume(volumes_pb2.AttachVolumeRequest(
            name=volume.name, instance=instance.name, device="virtio", channel="0:0",
            boot_order=1)))
        assert not op.HasField("error"), op.error
        attached = unpack(op.response, volumes_pb2.Volume)
        assert attached.state == volumes_pb2.Volume.ATTACHED
        assert list(attached.attached_to) == [instance.name]
        got = compute.GetInstance(compute_pb2.GetInstanceRequest(name=instance.name))
        assert [(v.volume, v.device, v.channel, v.boot_order) for v in got.volumes] == [
            (volume.name, "virtio", "0:0", 1)]

        # Start; RUNNING through WaitOperation, with the DHCP address.
        op = compute.StartInstance(compute_pb2.StartInstanceRequest(name=instance.name))
        done = server.wait(op)
        assert not done.HasField("error"), done.error
        running = unpack(done.response, compute_pb2.Instance)
        assert running.state == compute_pb2.Instance.RUNNING
        assert running.provider_state == "running"
        assert len(running.ip_addresses) == 1

        # The change events of the websocket arrived on the Watch stream.
        event = watcher.wait_for(lambda e: e.source == "push" and e.kind == "Instance" and
                                 e.resource_name == instance.name and
                                 unpack(e.resource, compute_pb2.Instance).state ==
                                 compute_pb2.Instance.RUNNING)
        assert event.change_type in (watch_pb2.WatchResponse.UPDATED,
                                     watch_pb2.WatchResponse.CREATED)
        watcher.wait_for(lambda e: e.source == "push" and e.kind == "Volume" and
                         e.resource_name == volume.name and
                         unpack(e.resource, volumes_pb2.Volume).state ==
                         volumes_pb2.Volume.ATTACHED)

        # While running: detach is refused (CloudSigma would ignore it).
        expect_error(grpc.StatusCode.FAILED_PRECONDITION, volumes.DetachVolume,
                     volumes_pb2.DetachVolumeRequest(name=volume.name, instance=instance.name))
        expect_error(grpc.StatusCode.FAILED_PRECONDITION, compute.DeleteInstance,
                     compute_pb2.DeleteInstanceRequest(name=instance.name))

        # Stop, detach, delete both.
        done = server.wait(compute.StopInstance(compute_pb2.StopInstanceRequest(
            name=instance.name, force=True)))
        assert unpack(done.response, compute_pb2.Instance).state == compute_pb2.Instance.STOPPED
        done = server.wait(volumes.DetachVolume(volumes_pb2.DetachVolumeRequest(
            name=volume.name, instance=instance.name)))
        detached = unpack(done.response, volumes_pb2.Volume)
        assert detached.state == volumes_pb2.Volume.AVAILABLE and not detached.attached_to
        done = server.wait(compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
            name=instance.name)))
        assert not done.HasField("error"), done.error
        done = server.wait(volumes.DeleteVolume(volumes_pb2.DeleteVolumeRequest(
            name=volume.name)))
        assert not done.HasField("error"), done.error
        expect_error(grpc.StatusCode.NOT_FOUND, compute.GetInstance,
                     compute_pb2.GetInstanceRequest(name=instance.name))
        expect_error(grpc.StatusCode.NOT_FOUND, volumes.GetVolume,
                     volumes_pb2.GetVolumeRequest(name=volume.name))
        watcher.wait_for(lambda e: e.source == "push" and
                         e.change_type == watch_pb2.WatchResponse.DELETED and
                         e.resource_name == instance.name)
        assert emulator.objects("servers") == []
    finally:
        watcher.close()


def test_bad_input_is_refused_and_leaves_nothing(server, emulator):
    compute, volumes = server.compute(), server.volumes()
    drives_before = emulator.objects("drives")
    servers_before = emulator.objects("servers")

    # Unknown instance.
    _, info, _ = expect_error(grpc.StatusCode.NOT_FOUND, compute.GetInstance,
                              compute_pb2.GetInstanceRequest(name=f"{ACCOUNT}/instances/nope"))
    assert info.reason == "RESOURCE_NOT_FOUND"
    expect_error(grpc.StatusCode.NOT_FOUND, compute.StartInstance,
                 compute_pb2.StartInstanceRequest(
                     name=f"{ACCOUNT}/instances/00000000-0000-4000-8000-000000000000"))

    # Negative size.
    _, info, bad = expect_error(grpc.StatusCode.INVALID_ARGUMENT, volumes.CreateVolume,
                                volumes_pb2.CreateVolumeRequest(
                                    parent=ACCOUNT, volume_id="neg",
                                    volume=volumes_pb2.Volume(size_bytes=-5)))
    assert "volume.size_bytes" in [v.field for v in bad.field_violations]

    # Attach a missing drive to an existing server.
    op = server.wait(compute.CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="lonely", start=False,
        instance=compute_pb2.Instance(cpu_mhz=1000, memory_bytes=1 << 30))))
    assert not op.HasField("error"), op.error
    _, info, _ = expect_error(grpc.StatusCode.NOT_FOUND, volumes.AttachVolume,
                              volumes_pb2.AttachVolumeRequest(
                                  name=f"{ACCOUNT}/volumes/missing",
                                  instance=f"{ACCOUNT}/instances/lonely"))
    assert info.metadata["resource"] == f"{ACCOUNT}/volumes/missing"
    got = compute.GetInstance(compute_pb2.GetInstanceRequest(name=f"{ACCOUNT}/instances/lonely"))
    assert list(got.volumes) == []

    # Wrong password: UNAUTHENTICATED with CloudSigma's details.
    _, info, _ = expect_error(grpc.StatusCode.UNAUTHENTICATED, volumes.ListVolumes,
                              volumes_pb2.ListVolumesRequest(parent="accounts/cs-wrong"))
    assert info.metadata["httpStatus"] == "401"
    assert "not-the-password" not in str(info)
    expect_error(grpc.StatusCode.UNAUTHENTICATED, volumes.CreateVolume,
                 volumes_pb2.CreateVolumeRequest(parent="accounts/cs-wrong", volume_id="x",
                                                 volume=volumes_pb2.Volume(size_bytes=1 << 30)))

    # Nothing half-created: only the one server made on purpose is new.
    assert emulator.objects("drives") == drives_before
    after = emulator.objects("servers")
    assert len(after) == len(servers_before) + 1
    server.wait(compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
        name=f"{ACCOUNT}/instances/lonely")))
    assert "not-the-password" not in server.log() and PASSWORD not in server.log()


def test_images_locations_metadata(server):
    compute = server.compute()
    images = compute.ListImages(compute_pb2.ListImagesRequest(parent=ACCOUNT)).images
    assert len(images) == 2 and all(i.public and i.state == compute_pb2.Image.READY
                                    for i in images)
    assert compute.GetImage(compute_pb2.GetImageRequest(name=images[0].name)) == images[0]
    locations = compute.ListLocations(compute_pb2.ListLocationsRequest(parent=ACCOUNT)).locations
    assert [l.name for l in locations] == [f"{ACCOUNT}/locations/emu"]
    op = server.wait(compute.CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="meta-1", start=False,
        instance=compute_pb2.Instance(cpu_mhz=1000, memory_bytes=1 << 30, labels={"a": "1"}))))
    assert not op.HasField("error"), op.error
    name = f"{ACCOUNT}/instances/meta-1/metadata"
    # Labels and metadata share the server's `meta` at CloudSigma but never
    # each other's keys: labels are not metadata, metadata is not a label.
    assert compute.GetInstanceMetadata(compute_pb2.GetInstanceMetadataRequest(
        name=name)).items == {}
    op = server.wait(compute.UpdateInstanceMetadata(compute_pb2.UpdateInstanceMetadataRequest(
        metadata=compute_pb2.InstanceMetadata(name=name, items={"b": "2"}), merge=True)))
    assert unpack(op.response, compute_pb2.InstanceMetadata).items == {"b": "2"}
    assert compute.GetInstance(compute_pb2.GetInstanceRequest(
        name=f"{ACCOUNT}/instances/meta-1")).labels == {"a": "1"}
    server.wait(compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
        name=f"{ACCOUNT}/instances/meta-1")))
