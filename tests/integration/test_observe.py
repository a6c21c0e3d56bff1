"""End to end: per-account observers (service/observer.h) with the real server
and the real fleet and OpenNebula emulators, at an observe interval of 1 s.

Changes are made directly at the emulators (fleet's HTTP API, OpenNebula's
XML-RPC), never through cloudplane, and must appear on a Watch stream with
source `poll`; a stopped emulator turns the account UNREACHABLE (health
`cloudplane.account.<id>` NOT_SERVING) and back; a restarted server replays
nothing; 20 open Watch streams cost the emulator one list per collection per
interval."""
import json
import pathlib
import subprocess
import sys
import time
import urllib.request
import xmlrpc.client

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cloudplane_testing import (FLEET_EMULATOR, Server, accounts_pb2, watch_pb2, _wait_for_file)
from observe_testing import Watcher, account_state, free_port, wait_observed, wait_until

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "emulators" /
                       "opennebula"))
import one_emulator  # noqa: E402

INTERVAL = 1.0
# "Within two intervals": each interval is jittered by up to +20%.
TWO_INTERVALS = 2 * INTERVAL * 1.2


class Fleet:
    """The fleet emulator on a fixed port, so it can be stopped and started
    again where the account points."""

    def __init__(self, workdir):
        self.workdir = pathlib.Path(workdir)
        self.port = free_port()
        self.process = None
        self.log_path = self.workdir / "fleet.log"

    def start(self):
        ready = self.workdir / "fleet.ready"
        if ready.exists():
            ready.unlink()
        self.process = subprocess.Popen(
            [sys.executable, str(FLEET_EMULATOR), "--tcp", f"127.0.0.1:{self.port}",
             "--page-limit", "2", "--converge-delay", "0.05", "--machines", "2",
             "--ready-file", str(ready), "--max-lifetime", "900", "--verbose"],
            stdout=subprocess.DEVNULL, stderr=open(self.log_path, "ab"))
        _wait_for_file(ready, self.process, "fleet emulator")
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.endpoint + "/fleet/v1" + path, data=data,
                                         method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status

    def requests(self):
        prefix = "fleet-emulator: "
        return [line[len(prefix):] for line in self.log_path.read_text().splitlines()
                if line.startswith(prefix) and " -> " in line]


def is_change(kind, name, change_type):
    return lambda c: (c.kind == kind and c.resource_name == name and
                      c.change_type == change_type)


def health(server, account_id):
    stub = health_pb2_grpc.HealthStub(server.channel)
    return stub.Check(health_pb2.HealthCheckRequest(
        service=f"cloudplane.account.{account_id}")).status


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    emulator = Fleet(tmp_path_factory.mktemp("observe-fleet")).start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, fleet):
    config = (f'accounts {{ id: "fleet" provider: "fleet" endpoint: "{fleet.endpoint}" '
              f'observe_interval_seconds: 1 '
              f'limits {{ breaker_failures: 3 breaker_cooldown_ms: 500 }} }}\n'
              f'accounts {{ id: "sandbox" provider: "sandbox" }}\n')
    srv = Server(tmp_path_factory.mktemp("observe-server"), config).start()
    yield srv
    assert srv.stop() == 0, srv.log()


UNIT = {"desiredState": "launched",
        "options": [{"section": "Service", "name": "ExecStart", "value": "/usr/bin/sleep 1d"}]}


def test_fleet_changes_made_outside_reach_watch(server, fleet):
    wait_observed(server, "accounts/fleet")
    watcher = Watcher(server, "accounts/fleet")
    name = "accounts/fleet/units/outside.service"
    try:
        start = time.monotonic()
        assert fleet.call("PUT", "/units/outside.service", UNIT) == 201
        at, created = watcher.next_matching(
            is_change("Unit", name, watch_pb2.WatchResponse.CREATED), 10)
        assert created.source == "poll"
        assert at - start <= TWO_INTERVALS, at - start
        print(f"fleet CREATED after {at - start:.2f}s")

        start = time.monotonic()
        assert fleet.call("PUT", "/units/outside.service", {"desiredState": "inactive"}) == 204
        at, updated = watcher.next_matching(
            lambda c: (c.resource_name == name and
                       c.change_type == watch_pb2.WatchResponse.UPDATED and
                       c.source == "poll" and
                       _desired(c) == "INACTIVE"), 10)
        assert at - start <= TWO_INTERVALS, at - start
        print(f"fleet UPDATED (desired INACTIVE) after {at - start:.2f}s")

        start = time.monotonic()
        assert fleet.call("DELETE", "/units/outside.service") == 204
        at, deleted = watcher.next_matching(
            is_change("Unit", name, watch_pb2.WatchResponse.DELETED), 10)
        assert deleted.source == "poll"
        assert at - start <= TWO_INTERVALS, at - start
        print(f"fleet DELETED after {at - start:.2f}s")
    finally:
        watcher.close()


def _desired(change):
    from cloudplane_testing import units_pb2
    unit = units_pb2.Unit()
    change.resource.Unpack(unit)
    return units_pb2.Unit.State.Name(unit.desired_state)


def test_one_list_per_collection_per_interval_with_20_streams(server, fleet):
    wait_observed(server, "accounts/fleet")
    watchers = [Watcher(server, "accounts/fleet") for _ in range(20)]
    try:
        time.sleep(0.5)
        before = len(fleet.requests())
        window = 6.0
        time.sleep(window)
        got = fleet.requests()[before:]
    finally:
        for w in watchers:
            w.close()
    # One round = ListUnits + ListMachines. The fleet adapter's ListUnits is
    # GET /units plus GET /machines and GET /state (machine and state joined
    # into each Unit); ListMachines is GET /machines. The emulator holds no
    # unit now, so every list is one page: 4 requests per round, however
    # many streams watch.
    unit_lists = [r for r in got if r.startswith("GET /fleet/v1/units")]
    machine_lists = [r for r in got if r.startswith("GET /fleet/v1/machines")]
    state_lists = [r for r in got if r.startswith("GET /fleet/v1/state")]
    rounds_max = int(window / (INTERVAL * 0.8)) + 1
    rounds_min = int(window / (INTERVAL * 1.2)) - 1
    print(f"in {window}s with 20 Watch streams: {len(unit_lists)} unit lists, "
          f"{len(machine_lists)} machine lists, {len(state_lists)} state lists, "
          f"{len(got)} requests in all")
    assert rounds_min <= len(unit_lists) <= rounds_max, got
    assert abs(len(machine_lists) - 2 * len(unit_lists)) <= 2, got
    assert abs(len(state_lists) - len(unit_lists)) <= 1, got
    assert len(got) == len(unit_lists) + len(machine_lists) + len(state_lists), got


def test_sandbox_is_not_observed_and_stays_ready(server):
    account = account_state(server, "accounts/sandbox")
    assert account.state == accounts_pb2.Account.READY
    assert not account.HasField("last_observe_time")
    assert health(server, "sandbox") == health_pb2.HealthCheckResponse.SERVING


def test_fleet_unreachable_and_back(server, fleet):
    wait_observed(server, "accounts/fleet")
    assert account_state(server, "accounts/fleet").state == accounts_pb2.Account.READY
    assert health(server, "fleet") == health_pb2.HealthCheckResponse.SERVING
    fleet.stop()
    stopped = time.monotonic()
    wait_until(lambda: account_state(server, "accounts/fleet").state ==
               accounts_pb2.Account.UNREACHABLE, 20, "UNREACHABLE")
    print(f"fleet UNREACHABLE {time.monotonic() - stopped:.2f}s after the emulator stopped")
    account = account_state(server, "accounts/fleet")
    assert account.last_error.startswith("UNAVAILABLE: "), account.last_error
    assert account.HasField("last_error_time")
    assert health(server, "fleet") == health_pb2.HealthCheckResponse.NOT_SERVING
    # The server as a whole stays healthy.
    whole = health_pb2_grpc.HealthStub(server.channel).Check(health_pb2.HealthCheckRequest())
    assert whole.status == health_pb2.HealthCheckResponse.SERVING

    fleet.start()
    back = time.monotonic()
    wait_until(lambda: account_state(server, "accounts/fleet").state ==
               accounts_pb2.Account.READY, 20, "READY again")
    print(f"fleet READY {time.monotonic() - back:.2f}s after the emulator came back")
    assert health(server, "fleet") == health_pb2.HealthCheckResponse.SERVING
    assert account_state(server, "accounts/fleet").last_error  # kept, with its time


def test_restart_replays_nothing(server, fleet):
    wait_observed(server, "accounts/fleet")
    assert fleet.call("PUT", "/units/kept.service", UNIT) == 201
    watcher = Watcher(server, "accounts/fleet")
    try:
        _, created = watcher.next_matching(
            is_change("Unit", "accounts/fleet/units/kept.service",
                      watch_pb2.WatchResponse.CREATED), 10)
        watcher.drain(2.5)  # the unit's state settles (UPDATED changes)
        last = max(c.sequence for c in watcher.all)
    finally:
        watcher.close()
    assert server.stop() == 0, server.log()
    server.start()
    wait_until(lambda: account_state(server, "accounts/fleet").HasField("last_observe_time"),
               10, "observed after the restart")
    resumed = Watcher(server, "accounts/fleet", after=last)
    try:
        changes = resumed.drain(3 * INTERVAL)
    finally:
        resumed.close()
    print(f"after the restart, {len(changes)} changes after sequence {last}")
    assert [c for c in changes if c.change_type == watch_pb2.WatchResponse.CREATED] == []
    assert changes == [], [(c.change_type, c.resource_name) for c in changes]
    assert fleet.call("DELETE", "/units/kept.service") == 204


# ---- OpenNebula ----------------------------------------------------------

class One:
    def __init__(self, workdir):
        self.workdir = pathlib.Path(workdir)
        self.port = free_port()
        self.process = None

    def start(self):
        ready = self.workdir / "one.ready"
        if ready.exists():
            ready.unlink()
        self.process = subprocess.Popen(
            [sys.executable, one_emulator.__file__, "--listen", f"127.0.0.1:{self.port}",
             "--step-delay", "0.05", "--ready-file", str(ready), "--max-lifetime", "900"],
            stdout=subprocess.DEVNULL)
        line = _wait_for_file(ready, self.process, "OpenNebula emulator")
        self.endpoint = line.split("endpoint=", 1)[1].strip()
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def rpc(self):
        return xmlrpc.client.ServerProxy(self.endpoint)


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    emulator = One(tmp_path_factory.mktemp("observe-one")).start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def one_server(tmp_path_factory, one):
    import os
    os.environ["ONE_AUTH_OBSERVE"] = "oneadmin:opennebula"
    config = (f'accounts {{ id: "one" provider: "opennebula" endpoint: "{one.endpoint}" '
              f'credentials {{ env: "ONE_AUTH_OBSERVE" }} observe_interval_seconds: 1 '
              f'limits {{ breaker_failures: 3 breaker_cooldown_ms: 500 }} }}\n')
    srv = Server(tmp_path_factory.mktemp("observe-one-server"), config).start()
    yield srv
    assert srv.stop() == 0, srv.log()


def test_opennebula_changes_made_outside_reach_watch(one_server, one):
    wait_observed(one_server, "accounts/one")
    watcher = Watcher(one_server, "accounts/one")
    try:
        start = time.monotonic()
        ok, vm_id, _ = one.rpc().one.vm.allocate(
            "oneadmin:opennebula", 'NAME="outside-1"\nCPU="1"\nVCPU="1"\nMEMORY="128"\n', False)
        assert ok, vm_id
        at, created = watcher.next_matching(
            lambda c: (c.kind == "Instance" and c.change_type == watch_pb2.WatchResponse.CREATED),
            10)
        assert created.source == "poll"
        assert at - start <= TWO_INTERVALS, at - start
        print(f"OpenNebula CREATED {created.resource_name} after {at - start:.2f}s")

        start = time.monotonic()
        ok, _, _ = one.rpc().one.vm.action("oneadmin:opennebula", "terminate", vm_id)
        assert ok
        at, deleted = watcher.next_matching(
            is_change("Instance", created.resource_name, watch_pb2.WatchResponse.DELETED), 10)
        assert deleted.source == "poll"
        print(f"OpenNebula DELETED after {at - start:.2f}s (terminate runs through its states)")
    finally:
        watcher.close()


def test_opennebula_unreachable_and_back(one_server, one):
    wait_observed(one_server, "accounts/one")
    one.stop()
    wait_until(lambda: account_state(one_server, "accounts/one").state ==
               accounts_pb2.Account.UNREACHABLE, 20, "UNREACHABLE")
    assert health(one_server, "one") == health_pb2.HealthCheckResponse.NOT_SERVING
    one.start()
    wait_until(lambda: account_state(one_server, "accounts/one").state ==
               accounts_pb2.Account.READY, 20, "READY again")
    assert health(one_server, "one") == health_pb2.HealthCheckResponse.SERVING
