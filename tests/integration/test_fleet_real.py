"""End to end against the fleet emulator behaving like a real fleetd (issue
13): a new unit has no machine for a second, `launched` comes ~0.5 s before
systemd's verdict, a missing program fails, a unit with an invalid desired
state answers 500 for good. Through the real server and the generated client;
requests are counted at the emulator."""
import json
import time
import urllib.request

import grpc
import pytest

from cloudplane_testing import FleetEmulator, Server, error_details, units_pb2

ACCOUNT = "accounts/fleetd"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    emulator = FleetEmulator(tmp_path_factory.mktemp("fleetd"), page_limit=2,
                             converge_delay=0.05,
                             extra_args=["--schedule-delay", "1.0", "--start-delay", "0.5",
                                         "--unload-delay", "0.3"]).start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, fleet):
    config = f'accounts {{ id: "fleetd" provider: "fleet" endpoint: "{fleet.tcp_endpoint}" }}\n'
    srv = Server(tmp_path_factory.mktemp("fleetd-server"), config).start()
    yield srv
    assert srv.stop() == 0, srv.log()


def create(units, unit_id, exec_start="/usr/bin/sleep 1d", state=units_pb2.Unit.LAUNCHED,
           **kw):
    return units.CreateUnit(units_pb2.CreateUnitRequest(
        parent=ACCOUNT, unit_id=unit_id, unit=units_pb2.Unit(
            desired_state=state,
            options=[units_pb2.UnitOption(section="Service", name="ExecStart",
                                          value=exec_start)]), **kw))


def fleet_put(fleet, name, body):
    """A change made directly in fleet (as fleetctl or a script would)."""
    req = urllib.request.Request(f"{fleet.tcp_endpoint}/fleet/v1/units/{name}",
                                 data=json.dumps(body).encode(), method="PUT",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def fleet_state(fleet, name):
    with urllib.request.urlopen(f"{fleet.tcp_endpoint}/fleet/v1/state?unitName={name}",
                                timeout=10) as r:
        states = json.loads(r.read()).get("states", [])
    return [(s["systemdActiveState"], s["systemdSubState"]) for s in states]


def test_good_unit_is_done_only_when_systemd_runs_it(server, fleet):
    units = server.units()
    op = server.wait(create(units, "good.service"))
    assert not op.HasField("error"), op.error
    unit = units_pb2.Unit()
    op.response.Unpack(unit)
    assert unit.current_state == units_pb2.Unit.LAUNCHED and unit.machine
    # At the moment the Operation finished, systemd already ran the unit.
    assert fleet_state(fleet, "good.service") == [("active", "running")]
    # The adapter looked at the unit state and never used /state/<name>.
    reqs = fleet.requests()
    assert any(r.startswith("GET /fleet/v1/state -> 200") for r in reqs), reqs
    assert not any(r.startswith("GET /fleet/v1/state/") for r in reqs), reqs


def test_failed_unit_fails_the_operation_with_its_state(server, fleet):
    units = server.units()
    op = server.wait(create(units, "bad.service", "/usr/bin/cloudplane-no-such-binary --x"))
    assert op.HasField("error")
    assert op.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0], op.error
    assert "loaded/failed/failed" in op.error.message
    from cloudplane_testing import error_details_pb2
    infos = [d for d in op.error.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert infos, op.error
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    assert info.reason == "PROVIDER_FAILURE_STATE"
    assert info.metadata["systemdActiveState"] == "failed"
    assert info.metadata["systemdSubState"] == "failed"
    # fleet itself still says launched.
    unit = units.GetUnit(units_pb2.GetUnitRequest(name=f"{ACCOUNT}/units/bad.service"))
    assert unit.current_state == units_pb2.Unit.LAUNCHED


def test_poisoned_unit_is_that_unit_in_error_not_unavailable(server, fleet):
    units = server.units()
    for name in ("healthy.service", "poison.service"):
        op = server.wait(create(units, name))
        assert not op.HasField("error"), op.error
    assert fleet_put(fleet, "poison.service", {"desiredState": "bogus"}) == 204
    name = f"{ACCOUNT}/units/poison.service"
    got = units.GetUnit(units_pb2.GetUnitRequest(name=name))
    assert got.current_state == units_pb2.Unit.ERROR
    assert "HTTP 500" in got.provider_error
    listed = {u.name: u for u in units.ListUnits(
        units_pb2.ListUnitsRequest(parent=ACCOUNT)).units}
    assert listed[name].current_state == units_pb2.Unit.ERROR
    assert listed[f"{ACCOUNT}/units/healthy.service"].current_state == units_pb2.Unit.LAUNCHED
    # A mutation on it fails with a reason at once (the runner gets the
    # provider's non-retryable answer on the first drive), not UNAVAILABLE
    # and not after the operation timeout.
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        server.wait(units.SetUnitDesiredState(units_pb2.SetUnitDesiredStateRequest(
            name=name, desired_state=units_pb2.Unit.INACTIVE)))
    assert time.monotonic() - t0 < 10
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "HTTP 500" in err.value.details()
    info, _ = error_details(err.value)
    assert info.reason == "PROVIDER_ERROR"
    assert info.metadata["httpStatus"] == "500" and info.metadata["unit"] == "poison.service"
    # Delete works and clears it.
    op = server.wait(units.DeleteUnit(units_pb2.DeleteUnitRequest(name=name)))
    assert not op.HasField("error"), op.error
    with pytest.raises(grpc.RpcError) as err:
        units.GetUnit(units_pb2.GetUnitRequest(name=name))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    info, _ = error_details(err.value)
    assert info.reason == "RESOURCE_NOT_FOUND"


def test_padded_options_create_is_idempotent(server, fleet):
    units = server.units()
    padded = "\u00a0 /usr/bin/sleep 3d \u3000"
    first = server.wait(create(units, "pad.service", padded, state=units_pb2.Unit.LOADED))
    assert not first.HasField("error"), first.error
    again = server.wait(create(units, "pad.service", padded, state=units_pb2.Unit.LOADED))
    assert not again.HasField("error"), again.error
    puts = [r for r in fleet.requests() if r.startswith("PUT /fleet/v1/units/pad.service")]
    # One create (201), then the same unit file: only the state set (204).
    assert puts == ["PUT /fleet/v1/units/pad.service -> 201",
                    "PUT /fleet/v1/units/pad.service -> 204"], puts
    unit = units.GetUnit(units_pb2.GetUnitRequest(name=f"{ACCOUNT}/units/pad.service"))
    assert [o.value for o in unit.options] == ["/usr/bin/sleep 3d"]
