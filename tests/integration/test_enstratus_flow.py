"""End to end: the real cloudplaned, the enStratus emulator and the generated
Python client. Firewalls and rules, a launch that is a DCM job, terminate,
a failing job, and a wrong secret."""
import os
import pathlib
import sys
import uuid

import grpc
import pytest

from cloudplane_testing import (Server, billing_pb2, common_pb2, compute_pb2, error_details,
                                firewalls_pb2, operations_pb2, volumes_pb2)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "emulators" / "enstratus"))
import enstratus_testing as es  # noqa: E402

ACCOUNT = "accounts/dcm"
BAD = "accounts/dcm-bad"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    emu = es.EnstratusEmulator(tmp_path_factory.mktemp("enstratus")).start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, emulator):
    os.environ["ENSTRATUS_TEST_KEYS"] = es.KEYS
    os.environ["ENSTRATUS_WRONG_KEYS"] = f"{es.ACCESS_KEY}:not-the-secret"
    config = f"""
accounts {{
  id: "dcm" provider: "enstratus" endpoint: "{emulator.url}"
  credentials {{ env: "ENSTRATUS_TEST_KEYS" }}
  options {{ key: "budget" value: "{es.BUDGET}" }}
}}
accounts {{
  id: "dcm-bad" provider: "enstratus" endpoint: "{emulator.url}"
  credentials {{ env: "ENSTRATUS_WRONG_KEYS" }}
  options {{ key: "budget" value: "{es.BUDGET}" }}
}}
"""
    srv = Server(tmp_path_factory.mktemp("enstratus-server"), config).start()
    yield srv
    assert srv.stop() == 0, srv.log()
    log = srv.log()
    assert "not-the-secret" not in log and es.SECRET_KEY not in log


def metadata_of(op):
    md = common_pb2.OperationMetadata()
    assert op.metadata.Unpack(md)
    return md


def instance_request(instance_id, display_name, firewalls=(), account=ACCOUNT):
    return compute_pb2.CreateInstanceRequest(
        parent=account, instance_id=instance_id, request_id=str(uuid.uuid4()),
        instance=compute_pb2.Instance(
            display_name=display_name, image=f"{account}/images/{es.IMAGE}",
            machine_type=f"{account}/machineTypes/{es.PRODUCT}",
            location=f"{account}/locations/dc-{es.DATACENTER}",
            billing_code=f"{account}/billingCodes/{es.BUDGET}", firewalls=list(firewalls),
            key_name="ops-key", labels={"label": "orange"}))


def test_firewall_rule_launch_terminate(server, emulator):
    fws = server.firewalls()
    op = fws.CreateFirewall(firewalls_pb2.CreateFirewallRequest(
        parent=ACCOUNT, firewall_id="web", request_id=str(uuid.uuid4()),
        firewall=firewalls_pb2.Firewall(display_name="web", description="web tier",
                                        location=f"{ACCOUNT}/locations/region-{es.REGION}")))
    assert metadata_of(op).provider_operation.isdigit(), op  # the DCM job id
    done = server.wait(op)
    assert not done.HasField("error"), done.error
    fw = firewalls_pb2.Firewall()
    assert done.response.Unpack(fw)
    assert fw.name == f"{ACCOUNT}/firewalls/web"
    assert fw.location == f"{ACCOUNT}/locations/region-{es.REGION}"
    assert fw.provider_details.fields["firewallId"].number_value > 0

    rule_op = server.wait(fws.CreateFirewallRule(firewalls_pb2.CreateFirewallRuleRequest(
        parent=fw.name, request_id=str(uuid.uuid4()),
        rule=firewalls_pb2.FirewallRule(protocol="tcp", port_range_start=443,
                                        source_ranges=["10.0.0.0/8"]))))
    assert not rule_op.HasField("error"), rule_op.error
    rule = firewalls_pb2.FirewallRule()
    assert rule_op.response.Unpack(rule)
    assert rule.name.startswith(fw.name + "/rules/")
    assert (rule.protocol, rule.port_range_start, list(rule.source_ranges)) == \
        ("tcp", 443, ["10.0.0.0/8"])
    rules = fws.ListFirewallRules(firewalls_pb2.ListFirewallRulesRequest(parent=fw.name))
    assert [r.name for r in rules.rules] == [rule.name]
    assert fws.GetFirewallRule(firewalls_pb2.GetFirewallRuleRequest(name=rule.name)) == rule

    # Launch with the firewall: the Operation is bound to the DCM job and
    # completes with the new server once it is RUNNING.
    compute = server.compute()
    op = compute.CreateInstance(instance_request("web-1", "web one", [fw.name]))
    job_id = metadata_of(op).provider_operation
    assert job_id.isdigit(), op
    done = server.wait(op)
    assert not done.HasField("error"), done.error
    inst = compute_pb2.Instance()
    assert done.response.Unpack(inst)
    assert inst.name == f"{ACCOUNT}/instances/web-1"
    assert inst.state == compute_pb2.Instance.RUNNING and inst.provider_state == "RUNNING"
    assert list(inst.firewalls) == [fw.name]
    assert inst.billing_code == f"{ACCOUNT}/billingCodes/{es.BUDGET}"
    assert inst.labels["label"] == "orange"
    server_id = int(inst.provider_details.fields["serverId"].number_value)
    status, job, _ = emulator.request("GET", f"admin/Job/{job_id}")
    assert job["jobs"][0]["status"] == "COMPLETE" and job["jobs"][0]["message"] == str(server_id)
    assert compute.GetInstance(compute_pb2.GetInstanceRequest(name=inst.name)).state == \
        compute_pb2.Instance.RUNNING
    # The DCM id names the same server (under its alias).
    by_id = compute.GetInstance(compute_pb2.GetInstanceRequest(
        name=f"{ACCOUNT}/instances/{server_id}"))
    assert by_id.name == inst.name
    listed = compute.ListInstances(compute_pb2.ListInstancesRequest(parent=ACCOUNT))
    assert inst.name in [i.name for i in listed.instances]

    # The firewall is in use: DCM refuses to delete it, the RPC fails.
    err = pytest.raises(grpc.RpcError, fws.DeleteFirewall,
                        firewalls_pb2.DeleteFirewallRequest(name=fw.name,
                                                            request_id=str(uuid.uuid4())))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value.details()

    # Stop and start are DCM jobs too.
    stopped = server.wait(compute.StopInstance(compute_pb2.StopInstanceRequest(
        name=inst.name, request_id=str(uuid.uuid4()))))
    assert not stopped.HasField("error"), stopped.error
    assert compute.GetInstance(compute_pb2.GetInstanceRequest(name=inst.name)).state == \
        compute_pb2.Instance.STOPPED
    started = server.wait(compute.StartInstance(compute_pb2.StartInstanceRequest(
        name=inst.name, request_id=str(uuid.uuid4()))))
    assert not started.HasField("error"), started.error

    # Terminate: the job-backed Operation finishes, the server is gone.
    op = compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
        name=inst.name, request_id=str(uuid.uuid4())))
    terminate_job = metadata_of(op).provider_operation
    assert terminate_job.isdigit() and terminate_job != job_id
    done = server.wait(op)
    assert not done.HasField("error"), done.error
    assert done.response.type_url.endswith("google.protobuf.Empty")
    status, job, _ = emulator.request("GET", f"admin/Job/{terminate_job}")
    assert job["jobs"][0]["status"] == "COMPLETE"
    assert job["jobs"][0]["description"] == f"Terminate {server_id}"
    for name in (inst.name, f"{ACCOUNT}/instances/{server_id}"):
        err = pytest.raises(grpc.RpcError, compute.GetInstance,
                            compute_pb2.GetInstanceRequest(name=name))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

    # Now the rule and the firewall can go.
    done = server.wait(fws.DeleteFirewallRule(firewalls_pb2.DeleteFirewallRuleRequest(
        name=rule.name, request_id=str(uuid.uuid4()))))
    assert not done.HasField("error"), done.error
    done = server.wait(fws.DeleteFirewall(firewalls_pb2.DeleteFirewallRequest(
        name=fw.name, request_id=str(uuid.uuid4()))))
    assert not done.HasField("error"), done.error
    err = pytest.raises(grpc.RpcError, fws.GetFirewall,
                        firewalls_pb2.GetFirewallRequest(name=fw.name))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_failing_job_fails_the_operation_with_the_providers_message(server, emulator):
    op = server.compute().CreateInstance(instance_request("doomed-1", "fail-doomed"))
    job_id = metadata_of(op).provider_operation
    done = server.wait(op)
    assert done.HasField("error")
    assert done.error.code == grpc.StatusCode.UNKNOWN.value[0], done.error
    assert "the cloud refused the request (emulated failure)" in done.error.message
    status, job, _ = emulator.request("GET", f"admin/Job/{job_id}")
    assert job["jobs"][0]["status"] == "ERROR"
    assert job["jobs"][0]["message"] in done.error.message
    # The alias was released: nothing exists under it, and it can be reused.
    err = pytest.raises(grpc.RpcError, server.compute().GetInstance,
                        compute_pb2.GetInstanceRequest(name=f"{ACCOUNT}/instances/doomed-1"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_wrong_secret_is_unauthenticated_and_launches_nothing(server, emulator):
    def launches():
        return [r["status"] for r in emulator.requests_log()
                if r["method"] == "POST" and r["path"].endswith("/infrastructure/Server")]

    servers_before = len(emulator.request("GET", "infrastructure/Server")[1]["servers"])
    launches_before = launches()
    err = pytest.raises(grpc.RpcError, server.compute().CreateInstance,
                        instance_request("sneaky-1", "sneaky", account=BAD))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, err.value.details()
    info, _ = error_details(err.value)
    assert info is not None and info.metadata["httpStatus"] == "403"
    assert "not-the-secret" not in err.value.details()
    err = pytest.raises(grpc.RpcError, server.compute().ListInstances,
                        compute_pb2.ListInstancesRequest(parent=BAD))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # DCM refused the first signed request (the product lookup that precedes
    # a launch), so no launch was even sent, and no server exists.
    assert launches()[len(launches_before):] == []
    assert 403 in [r["status"] for r in emulator.requests_log()[-3:]]
    assert len(emulator.request("GET", "infrastructure/Server")[1]["servers"]) == servers_before
    ops = server.operations().ListOperations(operations_pb2.ListOperationsRequest(
        name="operations", filter=f"account={BAD}"))
    assert list(ops.operations) == []


def test_catalog_reads(server):
    compute = server.compute()
    locations = compute.ListLocations(compute_pb2.ListLocationsRequest(parent=ACCOUNT))
    names = {l.name for l in locations.locations}
    assert f"{ACCOUNT}/locations/region-{es.REGION}" in names
    assert f"{ACCOUNT}/locations/dc-{es.DATACENTER}" in names
    dc = compute.GetLocation(compute_pb2.GetLocationRequest(
        name=f"{ACCOUNT}/locations/dc-{es.DATACENTER}"))
    assert dc.parent_location == f"{ACCOUNT}/locations/region-{es.REGION}"
    types = compute.ListMachineTypes(compute_pb2.ListMachineTypesRequest(parent=ACCOUNT))
    assert f"{ACCOUNT}/machineTypes/{es.PRODUCT}" in [t.name for t in types.machine_types]
    image = compute.GetImage(compute_pb2.GetImageRequest(name=f"{ACCOUNT}/images/{es.IMAGE}"))
    assert image.state == compute_pb2.Image.READY
    codes = server.billing().ListBillingCodes(billing_pb2.ListBillingCodesRequest(parent=ACCOUNT))
    assert [c.name for c in codes.billing_codes] == [f"{ACCOUNT}/billingCodes/{es.BUDGET}"]
    volumes = server.volumes().ListVolumes(volumes_pb2.ListVolumesRequest(parent=ACCOUNT))
    assert len(volumes.volumes) >= 1
