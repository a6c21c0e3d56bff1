"""End to end through the real server against the CloudSigma emulator: an
instance booted from a library image (issue 14). CreateInstance with
`instance.image` clones the library drive, waits for the clone, creates the
server with the clone as its boot drive and starts it, as one Operation; a
server CloudSigma refuses leaves no clone behind."""
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "emulators" /
                       "cloudsigma"))

from cloudplane_testing import accounts_pb2, compute_pb2, done, volumes_pb2  # noqa: E402
from cloudsigma_testing import server_fixtures  # noqa: E402

ACCOUNT = "accounts/csi"

emulator, server = server_fixtures("csi", "CLOUDPLANE_TEST_CSI_SECRET")


def eventually_empty(emulator, collection, timeout=10.0):
    """CloudSigma deletes asynchronously (the object answers until it is gone)."""
    deadline = time.monotonic() + timeout
    while emulator.objects(collection) and time.monotonic() < deadline:
        time.sleep(0.05)
    return emulator.objects(collection) == []


def disk_image(compute):
    images = compute.ListImages(compute_pb2.ListImagesRequest(parent=ACCOUNT)).images
    (debian,) = [i for i in images if i.display_name == "Debian 12 Server"]
    return debian


def test_instance_boots_from_a_library_image(server, emulator):
    compute, volumes = server.compute(), server.volumes()
    image = disk_image(compute)
    capabilities = {c.method: c for c in server.accounts().GetAccount(
        accounts_pb2.GetAccountRequest(name=ACCOUNT), timeout=10).capabilities}
    assert "instance.image" in capabilities[
        "cloudplane.v1.ComputeService.CreateInstance"].honoured_fields

    op = compute.CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="web-1", request_id="boot-1",
        instance=compute_pb2.Instance(cpu_mhz=1000, memory_bytes=1 << 30, image=image.name,
                                      labels={"role": "web"})))
    instance = done(server, op, compute_pb2.Instance)
    assert instance.name == f"{ACCOUNT}/instances/web-1"
    got = compute.GetInstance(compute_pb2.GetInstanceRequest(name=instance.name))
    assert got.state == compute_pb2.Instance.RUNNING
    assert got.image == image.name
    assert got.labels == {"role": "web"}
    # The image's clone: a volume of the account, the server's boot drive.
    (volume,) = volumes.ListVolumes(volumes_pb2.ListVolumesRequest(parent=ACCOUNT)).volumes
    assert [(v.volume, v.device, v.channel, v.boot_order) for v in got.volumes] == [
        (volume.name, "virtio", "0:0", 1)]
    assert volume.size_bytes == image.size_bytes == 10 << 30
    assert volume.state == volumes_pb2.Volume.ATTACHED
    # CloudSigma's view: a drive of ours (not the libdrive) on the server.
    (drive,) = emulator.objects("drives")
    (srv,) = emulator.objects("servers")
    assert drive["owner"] is not None and drive["uuid"] != image.name.rsplit("/", 1)[1]
    assert [d["drive"]["uuid"] for d in srv["drives"]] == [drive["uuid"]]
    assert srv["status"] == "running"

    # DeleteInstance deletes the server only; the clone stays a volume
    # (unattached) until it is deleted too.
    done(server, compute.StopInstance(compute_pb2.StopInstanceRequest(
        name=instance.name, force=True)), compute_pb2.Instance)
    done(server, compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
        name=instance.name)), None)
    assert emulator.objects("servers") == []
    left = volumes.GetVolume(volumes_pb2.GetVolumeRequest(name=volume.name))
    assert left.state == volumes_pb2.Volume.AVAILABLE
    done(server, volumes.DeleteVolume(volumes_pb2.DeleteVolumeRequest(name=volume.name)), None)
    assert emulator.objects("drives") == [] and emulator.objects("servers") == []


def test_a_server_cloudsigma_refuses_leaves_no_clone(server, emulator):
    compute = server.compute()
    image = disk_image(compute)
    # 100 MHz is below CloudSigma's minimum CPU: the clone is made, the
    # server POST is refused, and the clone is deleted again.
    op = compute.CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="too-slow", request_id="boot-2",
        instance=compute_pb2.Instance(cpu_mhz=100, memory_bytes=1 << 30, image=image.name)))
    failed = server.wait(op)
    assert failed.HasField("error")
    assert failed.error.code == 3, failed.error  # INVALID_ARGUMENT
    assert eventually_empty(emulator, "drives")
    assert emulator.objects("servers") == []
    assert compute.ListInstances(compute_pb2.ListInstancesRequest(
        parent=ACCOUNT)).instances == []
