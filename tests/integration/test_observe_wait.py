"""End to end: pending operations wait on the account's observer (issue 13,
"Operations wait on observations"), with the real server and the real fleet
emulator at an observe interval of 1 s.

50 CreateUnit operations (desired LAUNCHED) stay pending until the emulator's
agents report their units, CONVERGE seconds after each PUT. While they wait,
the emulator (its --event-log: every request with its query string and time)
sees the observer's rounds only, one ListUnits (GET /units, GET /state, one
page each at fleet's page size of 100) and one ListMachines (GET /machines)
per interval, and no request about any single unit; then each operation is
completed after one confirming poll (systemd's word on a launched unit is not
in the list) and all end OK. A unit whose program does not exist fails its
operation with PROVIDER_FAILURE_STATE, judged the same way."""
import time

import grpc
import pytest

from cloudplane_testing import (FleetEmulator, Server, error_details_pb2, operations_pb2,
                                units_pb2)

ACCOUNT = "accounts/fleet"
OPERATIONS = 50
CONVERGE = 8.0  # seconds from a unit's PUT to its agents' report


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    work = tmp_path_factory.mktemp("fleet-wait")
    log = work / "events.log"
    emulator = FleetEmulator(work, page_limit=100, converge_delay=CONVERGE,
                             extra_args=["--event-log", str(log)]).start()
    emulator.event_log = log
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, fleet):
    config = (f'accounts {{ id: "fleet" provider: "fleet" endpoint: "{fleet.tcp_endpoint}" '
              f'observe_interval_seconds: 1 }}\n')
    srv = Server(tmp_path_factory.mktemp("fleet-wait-server"), config).start()
    yield srv
    assert srv.stop() == 0, srv.log()


def requests_between(fleet, start, end):
    """(method, path, query) of every request the emulator answered in [start, end)."""
    out = []
    for line in fleet.event_log.read_text().splitlines():
        at, kind, *rest = line.split(" ")
        if kind != "request" or not start <= float(at) < end:
            continue
        path, _, query = rest[1].partition("?")
        out.append((rest[0], path, query))
    return out


def create(units, unit_id, exec_start="/usr/bin/sleep 1d"):
    return units.CreateUnit(units_pb2.CreateUnitRequest(
        parent=ACCOUNT, unit_id=unit_id, unit=units_pb2.Unit(
            desired_state=units_pb2.Unit.LAUNCHED,
            options=[units_pb2.UnitOption(section="Service", name="ExecStart",
                                          value=exec_start)])), timeout=30)


def wait_all(server, names, timeout):
    ops = server.operations()
    done = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(names) and time.monotonic() < deadline:
        for name in names:
            if name in done:
                continue
            op = ops.GetOperation(operations_pb2.GetOperationRequest(name=name))
            if op.done:
                done[name] = op
        time.sleep(0.2)
    return done


def test_pending_operations_cost_rounds_not_polls(server, fleet):
    units = server.units()
    time.sleep(1.5)  # the observer's baseline round
    t0 = time.time()
    names = [create(units, f"w{i:03d}.service").name for i in range(OPERATIONS)]
    created = time.time()
    assert created - t0 < CONVERGE - 4, "creating the units took too long for the window"
    # The wait: after each operation's first targeted poll, before any unit
    # converges.
    start, end = created + 1.0, t0 + CONVERGE - 0.5
    time.sleep(max(0.0, end - time.time()) + 0.2)
    during = requests_between(fleet, start, end)
    window = end - start
    # No request about a single unit: nobody polls.
    single = [r for r in during if r[1].startswith("/fleet/v1/units/") or "unitName" in r[2]]
    assert single == [], single
    # Only the rounds' lists, each one page at fleet's page size of 100.
    assert all(r[0] == "GET" and r[1] in ("/fleet/v1/units", "/fleet/v1/state",
                                          "/fleet/v1/machines") and
               "nextPageToken" not in r[2] for r in during), during
    rounds = sum(1 for r in during if r[1] == "/fleet/v1/units")
    # One round per second (interval 1 s, jitter ±20%), 3 requests each.
    assert 1 <= rounds <= window / 0.8 + 1, (rounds, window)
    assert len(during) <= 3 * (window / 0.8 + 1) + 3, (len(during), window)
    # 50 pollers with the runner's backoff (100 ms x1.5 up to 5 s) would
    # send at least one GET each per 5 s, more than 10 requests/s.
    assert len(during) / window < 5, (len(during), window)

    done = wait_all(server, names, timeout=30)
    assert len(done) == OPERATIONS
    for op in done.values():
        assert not op.HasField("error"), op.error
        unit = units_pb2.Unit()
        op.response.Unpack(unit)
        assert unit.current_state == units_pb2.Unit.LAUNCHED and unit.machine
    # After the change: one confirming poll per operation (GET unit + GET
    # its state), no more, plus the rounds.
    after = requests_between(fleet, end, time.time())
    assert sum(1 for r in after if r[1].startswith("/fleet/v1/units/")) == OPERATIONS, after
    assert sum(1 for r in after if "unitName" in r[2]) == OPERATIONS, after


def test_failed_start_fails_from_the_observation(server, fleet):
    units = server.units()
    time.sleep(1.5)
    op = create(units, "w-missing.service", "/usr/bin/cloudplane-no-such-binary --x")
    assert not op.done
    done = wait_all(server, [op.name], timeout=30)[op.name]
    assert done.HasField("error")
    assert done.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0], done.error
    assert "loaded/failed/failed" in done.error.message
    infos = [d for d in done.error.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert infos, done.error
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    assert info.reason == "PROVIDER_FAILURE_STATE"
