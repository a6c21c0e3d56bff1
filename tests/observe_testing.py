"""Helpers shared by the observer tests (tests/integration/test_observe*.py):
a Watch stream read on its own thread, and waiting on account state."""
import queue
import socket
import threading
import time

import grpc

from cloudplane_testing import accounts_pb2, watch_pb2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Watcher:
    """A Watch stream read on a thread of its own; every change (no
    heartbeats) with the time it arrived."""

    def __init__(self, server, parent, after=0):
        self.changes = queue.Queue()
        self.all = []
        self.call = server.watch().Watch(watch_pb2.WatchRequest(
            parent=parent, start_after_sequence=after, heartbeat_interval_seconds=0))
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for change in self.call:
                if change.change_type != watch_pb2.WatchResponse.HEARTBEAT:
                    self.changes.put((time.monotonic(), change))
        except grpc.RpcError:
            pass

    def next_matching(self, predicate, timeout=15):
        """(arrival time, change) of the first change `predicate` accepts."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no matching change within {timeout}s; saw "
                    f"{[(c.change_type, c.source, c.resource_name) for c in self.all]}")
            try:
                at, change = self.changes.get(timeout=left)
            except queue.Empty:
                continue
            self.all.append(change)
            if predicate(change):
                return at, change

    def drain(self, seconds):
        """Every change that arrives within `seconds`."""
        out = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                out.append(self.changes.get(timeout=max(0.01, deadline - time.monotonic()))[1])
            except queue.Empty:
                pass
        self.all += out
        return out

    def close(self):
        self.call.cancel()
        self.thread.join(timeout=5)


def account_state(server, name):
    """The Account `name` (`accounts/<id>`)."""
    return server.accounts().GetAccount(accounts_pb2.GetAccountRequest(name=name))


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def wait_observed(server, name, timeout=15):
    wait_until(lambda: account_state(server, name).HasField("last_observe_time"), timeout,
               f"{name} observed")
