"""End to end: the real server, the fleet emulator over TCP and over a unix
socket, and the generated Python client."""
import re
import time

import grpc
import pytest
from google.protobuf import empty_pb2

from cloudplane_testing import FleetEmulator, Server, error_details, units_pb2


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    emulator = FleetEmulator(tmp_path_factory.mktemp("fleet"), page_limit=2).start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, fleet):
    config = f"""
accounts {{ id: "fleet-tcp" provider: "fleet" endpoint: "{fleet.tcp_endpoint}" }}
accounts {{ id: "fleet-unix" provider: "fleet" endpoint: "{fleet.unix_endpoint}" }}
"""
    srv = Server(tmp_path_factory.mktemp("fleet-server"), config).start()
    yield srv
    assert srv.stop() == 0, srv.log()


def unit_request(account, unit_id, state=units_pb2.Unit.LAUNCHED):
    return units_pb2.CreateUnitRequest(
        parent=account, unit_id=unit_id, unit=units_pb2.Unit(
            desired_state=state,
            options=[units_pb2.UnitOption(section="Service", name="ExecStart",
                                          value=f"/usr/bin/sleep {len(unit_id)}d")]))


@pytest.mark.parametrize("account", ["accounts/fleet-tcp", "accounts/fleet-unix"])
def test_unit_flow(server, account):
    units = server.units()
    prefix = account.split("-")[1]
    names = [f"{prefix}-{i}.service" for i in range(5)]
    for name in names:
        op = server.wait(units.CreateUnit(unit_request(account, name)))
        assert not op.HasField("error"), op.error
        unit = units_pb2.Unit()
        assert op.response.Unpack(unit)
        assert unit.name == f"{account}/units/{name}"
        assert unit.current_state == units_pb2.Unit.LAUNCHED
        assert unit.machine.startswith(account + "/machines/")

    # Every page of the emulator (2 per page) and of the API, each unit once.
    seen, token = [], ""
    while True:
        page = units.ListUnits(units_pb2.ListUnitsRequest(parent=account, page_size=3,
                                                          page_token=token))
        seen += [u.name for u in page.units]
        token = page.next_page_token
        if not token:
            break
    mine = [n for n in seen if n.split("/")[-1].startswith(prefix + "-")]
    assert mine == sorted(f"{account}/units/{n}" for n in names)

    machines = units.ListMachines(units_pb2.ListMachinesRequest(parent=account)).machines
    assert len(machines) == 3
    target = f"{account}/units/{names[0]}"
    unit = units.GetUnit(units_pb2.GetUnitRequest(name=target))
    states = units.ListUnitStates(units_pb2.ListUnitStatesRequest(
        parent=account, unit=target)).unit_states
    assert len(states) == 1 and states[0].machine == unit.machine
    assert states[0].systemd_sub_state == "running"
    by_machine = units.ListUnitStates(units_pb2.ListUnitStatesRequest(
        parent=account, machine=unit.machine)).unit_states
    assert target in {s.unit for s in by_machine}

    op = server.wait(units.SetUnitDesiredState(units_pb2.SetUnitDesiredStateRequest(
        name=target, desired_state=units_pb2.Unit.INACTIVE)))
    assert not op.HasField("error"), op.error
    inactive = units_pb2.Unit()
    op.response.Unpack(inactive)
    assert inactive.current_state == units_pb2.Unit.INACTIVE
    # fleet drops the machine at once; the agent's unit state goes a little
    # later, when the unit is unloaded.
    deadline = time.monotonic() + 10
    while units.ListUnitStates(units_pb2.ListUnitStatesRequest(
            parent=account, unit=target)).unit_states:
        assert time.monotonic() < deadline, "unit state still reported"
        time.sleep(0.05)

    for name in names:
        op = server.wait(units.DeleteUnit(units_pb2.DeleteUnitRequest(
            name=f"{account}/units/{name}")))
        assert not op.HasField("error"), op.error
        assert op.response.Is(empty_pb2.Empty.DESCRIPTOR)
    with pytest.raises(grpc.RpcError) as err:
        units.GetUnit(units_pb2.GetUnitRequest(name=target))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    info, _ = error_details(err.value)
    assert info.metadata["httpStatus"] == "404"


def test_bad_desired_state_is_refused_before_any_request(server):
    units = server.units()
    with pytest.raises(grpc.RpcError) as err:
        units.SetUnitDesiredState(units_pb2.SetUnitDesiredStateRequest(
            name="accounts/fleet-tcp/units/x.service"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, bad = error_details(err.value)
    assert [v.field for v in bad.field_violations] == ["desired_state"]


def test_unsupported_rpc_is_unimplemented_with_reason(server):
    from cloudplane_testing import compute_pb2
    with pytest.raises(grpc.RpcError) as err:
        server.compute().ListInstances(compute_pb2.ListInstancesRequest(
            parent="accounts/fleet-tcp"))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    info, _ = error_details(err.value)
    assert info.reason == "CAPABILITY_UNSUPPORTED"


def test_validate_only_runs_fleets_own_checks_and_sends_nothing(server, fleet):
    """validate_only reaches the adapter: fleet's unit-name rules (not in the
    proto) refuse a bad name exactly as the real call does, and a good request
    is answered without one request reaching fleet (counted at the emulator)."""
    units = server.units()

    def calls():
        # The account's observer lists units, machines and states in the
        # background (GET of a whole collection); everything else is ours.
        return [r for r in fleet.requests()
                if not re.match(r"GET /fleet/v1/(units|machines|state)(\?[^ ]*)? ", r)
                or "unitName=" in r]

    before = len(calls())
    for validate_only in (True, False):
        with pytest.raises(grpc.RpcError) as err:
            units.CreateUnit(units_pb2.CreateUnitRequest(
                parent="accounts/fleet-tcp", unit_id="no-suffix", validate_only=validate_only,
                unit=units_pb2.Unit(desired_state=units_pb2.Unit.LOADED)))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        _, bad = error_details(err.value)
        assert [v.field for v in bad.field_violations] == ["unit_id"]
        assert "unit name must contain" in bad.field_violations[0].description
    request = unit_request("accounts/fleet-tcp", "vo-check.service")
    request.validate_only = True
    op = units.CreateUnit(request)
    assert op.done and not op.HasField("error")
    assert len(calls()) == before, calls()[before:]
    with pytest.raises(grpc.RpcError) as err:
        units.GetUnit(units_pb2.GetUnitRequest(name="accounts/fleet-tcp/units/vo-check.service"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # The GetUnit itself, once the emulator has written its log line (it
    # writes after answering, so a loaded machine may show it a moment late).
    deadline = time.monotonic() + 5
    while len(calls()) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert calls()[before:] == ["GET /fleet/v1/units/vo-check.service -> 404"], calls()[before:]
