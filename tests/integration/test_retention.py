"""Retention (issue 13) through the real server: with
operation_retention_seconds and change_log_retention_seconds of 2 s, a
finished operation disappears (GetOperation NOT_FOUND), its request_id then
starts a new operation, an unfinished one stays, and the change log's old
entries are gone (Watch from sequence 1 ends with OUT_OF_RANGE)."""
import time

import grpc
import pytest

from cloudplane_testing import Server, compute_pb2, error_details, operations_pb2, watch_pb2

RETENTION_S = 2
CONFIG = f"""
operation_retention_seconds: {RETENTION_S}
change_log_retention_seconds: {RETENTION_S}
accounts {{ id: "fast" provider: "sandbox" options {{ key: "transition_ms" value: "0" }} }}
accounts {{ id: "slow" provider: "sandbox" options {{ key: "transition_ms" value: "600000" }} }}
"""


def create(server, account, instance_id, request_id):
    a = f"accounts/{account}"
    return server.compute().CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=a, instance_id=instance_id, request_id=request_id,
        instance=compute_pb2.Instance(image=a + "/images/debian-12",
                                      machine_type=a + "/machineTypes/small")))


def get_operation(server, name):
    return server.operations().GetOperation(operations_pb2.GetOperationRequest(name=name))


def until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def is_gone(server, name):
    try:
        get_operation(server, name)
        return False
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND, e
        return True


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("retention"), CONFIG).start()
    yield s
    assert s.stop() == 0, s.log()


def test_finished_operations_and_old_changes_are_pruned(server):
    started = time.monotonic()
    done_op = server.wait(create(server, "fast", "kept-for-a-while", "retained-req"))
    assert done_op.done and not done_op.HasField("error"), done_op
    pending_op = create(server, "slow", "takes-ten-minutes", "pending-req")
    assert not pending_op.done

    # While it is kept, the request_id names that operation: the same request
    # answers it, a different request with that id is refused.
    assert create(server, "fast", "kept-for-a-while", "retained-req").name == done_op.name
    with pytest.raises(grpc.RpcError) as reused:
        create(server, "fast", "another-one", "retained-req")
    assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    info, _ = error_details(reused.value)
    assert info.reason == "REQUEST_ID_REUSED"

    # Retention 2 s, a pass every second (a tenth of it, at least 1 s).
    until(lambda: is_gone(server, done_op.name), 10, "the finished operation was never pruned")
    assert time.monotonic() - started >= RETENTION_S
    assert "cloudplaned: retention: removed " in server.log()

    # The unfinished operation stays, however old.
    time.sleep(RETENTION_S + 1.5)
    still = get_operation(server, pending_op.name)
    assert not still.done

    # A retry of the first request is a new request now: not answered with
    # the pruned Operation, but done again, and refused by the sandbox as the
    # instance exists.
    with pytest.raises(grpc.RpcError) as again:
        create(server, "fast", "kept-for-a-while", "retained-req")
    assert again.value.code() == grpc.StatusCode.ALREADY_EXISTS, again.value
    info, _ = error_details(again.value)
    assert info.reason != "REQUEST_ID_REUSED", info

    # The request_id is free: the once refused request is a new operation now.
    fresh = create(server, "fast", "another-one", "retained-req")
    assert fresh.name != done_op.name
    fresh = server.wait(fresh)
    assert fresh.done and not fresh.HasField("error"), fresh
    got = server.compute().GetInstance(
        compute_pb2.GetInstanceRequest(name="accounts/fast/instances/another-one"))
    assert got.name == "accounts/fast/instances/another-one"

    # The change log's old entries are gone: resuming from sequence 1 is
    # out of range (the first changes, of done_op, are older than 2 s).
    stream = server.watch().Watch(watch_pb2.WatchRequest(parent="accounts/-",
                                                         start_after_sequence=1), timeout=10)
    with pytest.raises(grpc.RpcError) as out:
        for _ in stream:
            pass
    assert out.value.code() == grpc.StatusCode.OUT_OF_RANGE, out.value
