"""Watch streams against the real server on its sandbox provider: heartbeats
at the interval asked for, and many open streams all receiving every
operation's CREATED once and in order, then replay-then-live."""
import threading
import time
import uuid

import grpc
import pytest

from cloudplane_testing import Server, compute_pb2, watch_pb2

CONFIG = """
accounts {
  id: "sandbox"
  provider: "sandbox"
  options { key: "transition_ms" value: "30000" }
}
"""
ACCOUNT = "accounts/sandbox"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("watch"), CONFIG).start()
    yield srv
    assert srv.stop() == 0, srv.log()


def create(server, instance_id):
    return server.compute().CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id=instance_id, request_id=str(uuid.uuid4()),
        instance=compute_pb2.Instance(image=ACCOUNT + "/images/debian-12",
                                      machine_type=ACCOUNT + "/machineTypes/small")))


@pytest.mark.parametrize("interval", [1, 2])
def test_heartbeat_every_interval_of_silence(server, interval):
    call = server.watch().Watch(watch_pb2.WatchRequest(
        parent=ACCOUNT, heartbeat_interval_seconds=interval))
    times = []
    for response in call:
        assert response.change_type == watch_pb2.WatchResponse.HEARTBEAT
        times.append(time.monotonic())
        if len(times) == 4:
            break
    call.cancel()
    gaps = [b - a for a, b in zip(times, times[1:])]
    # One per interval (not one per two intervals, as before), give or take
    # scheduling on a loaded machine.
    for gap in gaps:
        assert interval - 0.05 <= gap <= interval + 0.4, gaps


def test_heartbeat_counts_from_the_last_message(server):
    call = server.watch().Watch(watch_pb2.WatchRequest(
        parent=ACCOUNT, kinds=["Operation"], heartbeat_interval_seconds=2))
    stream = iter(call)
    assert next(stream).change_type == watch_pb2.WatchResponse.HEARTBEAT
    time.sleep(1.0)
    op = create(server, "beat-" + uuid.uuid4().hex[:8])
    change = next(stream)
    assert change.change_type == watch_pb2.WatchResponse.CREATED
    assert change.resource_name == op.name
    changed_at = time.monotonic()
    while True:
        response = next(stream)
        if response.change_type == watch_pb2.WatchResponse.HEARTBEAT:
            break
        changed_at = time.monotonic()  # the operation's progress, if any
    # Two seconds after the last change, not two after the previous heartbeat
    # (which was three seconds ago).
    assert 1.9 <= time.monotonic() - changed_at <= 2.5
    call.cancel()


def test_many_streams_each_get_every_change_once_in_order(server):
    streams = 200
    got = [[] for _ in range(streams)]
    opened = threading.Semaphore(0)
    calls = [server.watch().Watch(watch_pb2.WatchRequest(parent=ACCOUNT, kinds=["Operation"]))
             for _ in range(streams)]

    def pump(i):
        first = True
        try:
            for response in calls[i]:
                if first:
                    first = False
                    opened.release()
                    continue
                if response.change_type == watch_pb2.WatchResponse.CREATED:
                    got[i].append(response)
        except grpc.RpcError:
            pass

    threads = [threading.Thread(target=pump, args=(i,), daemon=True) for i in range(streams)]
    for t in threads:
        t.start()
    for _ in range(streams):
        assert opened.acquire(timeout=30)
    names = [f"fan-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    started = time.monotonic()
    expected = [create(server, name).name for name in names]
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(len(g) < len(names) for g in got):
        time.sleep(0.05)
    for call in calls:
        call.cancel()
    first_seqs = None
    for g in got:
        assert [r.resource_name for r in g] == expected
        seqs = [r.sequence for r in g]
        assert seqs == sorted(set(seqs))
        first_seqs = first_seqs or seqs
        assert seqs == first_seqs  # every stream saw the same log

    # A stream resuming from the first of them replays the rest, then goes live.
    call = server.watch().Watch(watch_pb2.WatchRequest(
        parent=ACCOUNT, kinds=["Operation"], start_after_sequence=first_seqs[0]))
    stream = (r for r in call if r.change_type == watch_pb2.WatchResponse.CREATED)
    replayed = [next(stream) for _ in range(len(names) - 1)]
    assert [r.sequence for r in replayed] == first_seqs[1:]
    live_op = create(server, "fan-live-" + uuid.uuid4().hex[:8])
    live = next(stream)
    assert live.resource_name == live_op.name
    assert live.sequence > first_seqs[-1]
    call.cancel()
