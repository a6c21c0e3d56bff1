"""SIGTERM/SIGINT: health turns NOT_SERVING, in-flight calls are answered,
Watch streams end with UNAVAILABLE, and the server exits 0."""
import os
import signal
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cloudplane_testing import Server, compute_pb2, operations_pb2, watch_pb2

# A short grace period: the health Watch stream below stays open until the
# grace period ends, as a load balancer's would.
CONFIG = """
shutdown_grace_seconds: 2
accounts {
  id: "sandbox"
  provider: "sandbox"
  options { key: "transition_ms" value: "60000" }
}
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_shutdown(tmp_path, sig):
    server = Server(tmp_path, CONFIG).start()
    channel = server.channel
    # An operation that will not finish for a minute, and a call waiting on it.
    op = server.compute().CreateInstance(compute_pb2.CreateInstanceRequest(
        parent="accounts/sandbox", instance_id="slow", instance=compute_pb2.Instance(
            image="accounts/sandbox/images/debian-12",
            machine_type="accounts/sandbox/machineTypes/small")))
    assert not op.done
    wait_future = server.operations().WaitOperation.future(
        operations_pb2.WaitOperationRequest(name=op.name), timeout=30)
    watch = server.watch().Watch(watch_pb2.WatchRequest(parent="accounts/sandbox"))
    assert next(watch).change_type == watch_pb2.WatchResponse.HEARTBEAT
    health = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service="cloudplane.v1.ComputeService"))
    assert next(health).status == health_pb2.HealthCheckResponse.SERVING
    statuses = []
    reader = threading.Thread(target=lambda: statuses.extend(r.status for r in _drain(health)))
    reader.start()

    server.process.send_signal(sig)

    answered = wait_future.result(timeout=15)  # answered, not dropped
    assert answered.name == op.name and not answered.done
    with pytest.raises(grpc.RpcError) as err:
        for _ in watch:
            pass
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    reader.join(timeout=15)
    assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses
    assert server.process.wait(timeout=15) == 0
    assert "shutting down" in server.log()
    server.channel = None
    server.stop()

    # The unfinished operation is still there after a restart.
    server = Server(tmp_path, CONFIG).start()
    try:
        again = server.operations().GetOperation(operations_pb2.GetOperationRequest(name=op.name))
        assert again.name == op.name and not again.done
    finally:
        assert server.stop() == 0


def _drain(stream):
    try:
        for response in stream:
            yield response
    except grpc.RpcError:
        return


def _blocked_signals(status_path):
    for line in open(status_path):
        if line.startswith("SigBlk:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no SigBlk in {status_path}")


def test_only_the_main_thread_takes_shutdown_signals(tmp_path):
    """Every thread but the main one (in sigwait) blocks SIGTERM, SIGINT and
    SIGHUP, gRPC's own threads included: one that did not could take a
    SIGTERM and die with the process, without a graceful shutdown."""
    server = Server(tmp_path, CONFIG).start()
    pid = server.process.pid
    # Traffic first: gRPC starts some of its threads when first used.
    for i in range(20):
        server.compute().ListInstances(compute_pb2.ListInstancesRequest(parent="accounts/sandbox"))
    wanted = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGHUP - 1))
    tasks = os.listdir(f"/proc/{pid}/task")
    assert len(tasks) > 5
    open_to_signals = []
    for tid in tasks:
        if int(tid) == pid:
            continue  # the main thread: its mask is lifted while it waits in sigwait
        name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
        if _blocked_signals(f"/proc/{pid}/task/{tid}/status") & wanted != wanted:
            open_to_signals.append(name)
    assert open_to_signals == []
    assert server.stop() == 0
