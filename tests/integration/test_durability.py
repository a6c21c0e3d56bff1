"""Operations and idempotency keys survive SIGKILL of the server."""
import signal

import grpc
import pytest

from cloudplane_testing import Server, compute_pb2, operations_pb2

# Slow transitions, so that an operation is still running when the server dies.
CONFIG = """
accounts {
  id: "sandbox"
  provider: "sandbox"
  options { key: "transition_ms" value: "1500" }
}
"""
ACCOUNT = "accounts/sandbox"


def create(server, instance_id, request_id):
    return server.compute().CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id=instance_id, request_id=request_id,
        instance=compute_pb2.Instance(image=ACCOUNT + "/images/debian-12",
                                      machine_type=ACCOUNT + "/machineTypes/small")))


def test_sigkill_keeps_operations_and_request_ids(tmp_path):
    server = Server(tmp_path, CONFIG).start()
    finished = server.wait(create(server, "first", "req-first"))
    assert finished.done and not finished.HasField("error")
    running = create(server, "second", "req-second")
    assert not running.done
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL

    server = Server(tmp_path, CONFIG).start()
    try:
        ops = server.operations()
        again = ops.GetOperation(operations_pb2.GetOperationRequest(name=finished.name))
        assert again == finished
        # The retried request returns the first Operation, not a new one.
        retried = create(server, "second", "req-second")
        assert retried.name == running.name
        # The operation that was running at the kill resumes and finishes.
        done = server.wait(retried)
        assert not done.HasField("error"), done.error
        instance = compute_pb2.Instance()
        assert done.response.Unpack(instance)
        assert instance.name == ACCOUNT + "/instances/second"
        assert instance.state == compute_pb2.Instance.RUNNING
        listed = ops.ListOperations(operations_pb2.ListOperationsRequest(name="operations"))
        assert {finished.name, running.name} <= {op.name for op in listed.operations}
        # The same request_id for a different request is refused.
        with pytest.raises(grpc.RpcError) as err:
            create(server, "third", "req-second")
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    finally:
        assert server.stop() == 0, server.log()
