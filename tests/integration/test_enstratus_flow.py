"""End to end: the real cloudplaned, the enStratus emulator and the generated
Python client. Firewalls and rules, a launch that is a DCM job, terminate,
a failing job, a wrong secret, DCM jobs started outside cloudplane read as
provider operations, and volumes (create, attach, detach, delete)."""
import os
import pathlib
import sys
import uuid

import grpc
import pytest

from cloudplane_testing import (Server, billing_pb2, common_pb2, compute_pb2, error_details,
                                error_details_pb2, firewalls_pb2, operations_pb2, volumes_pb2)

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


def _job_error_info(status):
    """The ErrorInfo of an Operation's google.rpc.Status, or None."""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def _launch_directly(emulator, name):
    """Starts a launch job against DCM itself, outside cloudplane."""
    status, body, _ = emulator.request("POST", "infrastructure/Server", {"launch": [{
        "name": name, "description": "started outside cloudplane",
        "product": {"productId": "m1.small"}, "machineImage": {"machineImageId": es.IMAGE},
        "dataCenter": {"dataCenterId": es.DATACENTER}, "budget": es.BUDGET}]})
    assert status == 202, body
    return body["jobs"][0]["jobId"]


def test_jobs_started_outside_cloudplane_are_listed_and_looked_up(server, emulator):
    ops = server.operations()
    parent = f"{ACCOUNT}/providerOperations"
    job_id = _launch_directly(emulator, "outside-1")
    failing_job = _launch_directly(emulator, "fail-outside-1")
    name = f"{parent}/{job_id}"

    # Listed, page by page (DCM answers all jobs at once; the adapter pages).
    seen, token = [], ""
    while True:
        page = ops.ListOperations(operations_pb2.ListOperationsRequest(
            name=parent, page_size=2, page_token=token))
        assert len(page.operations) <= 2
        seen.extend(page.operations)
        token = page.next_page_token
        if not token:
            break
    names = [op.name for op in seen]
    assert name in names and f"{parent}/{failing_job}" in names
    assert len(names) == len(set(names))
    ids = [int(n.rsplit("/", 1)[1]) for n in names]
    assert ids == sorted(ids)
    _, jobs, _ = emulator.request("GET", "admin/Job")
    assert sorted(ids) == sorted(j["jobId"] for j in jobs["jobs"])
    listed = next(op for op in seen if op.name == name)
    md = metadata_of(listed)
    assert md.provider_operation == str(job_id) and md.account == ACCOUNT
    assert "Launch Server outside-1" in md.status_detail
    assert md.create_time.seconds > 0

    # Looked up once it ended: COMPLETE names the new server in status_detail.
    job = emulator.wait_job(job_id)
    assert job["status"] == "COMPLETE"
    op = ops.GetOperation(operations_pb2.GetOperationRequest(name=name))
    assert op.name == name and op.done and not op.HasField("error")
    md = metadata_of(op)
    assert md.provider_operation == str(job_id)
    assert md.status_detail == f"COMPLETE: Launch Server outside-1; message: {job['message']}"
    assert md.end_time.seconds >= md.create_time.seconds > 0
    # The server it made is an ordinary instance to cloudplane.
    inst = server.compute().GetInstance(compute_pb2.GetInstanceRequest(
        name=f"{ACCOUNT}/instances/{job['message']}"))
    assert inst.display_name == "outside-1"

    # An ERROR job is a failed Operation with DCM's message.
    failed_job = emulator.wait_job(failing_job)
    assert failed_job["status"] == "ERROR"
    op = ops.GetOperation(operations_pb2.GetOperationRequest(name=f"{parent}/{failing_job}"))
    assert op.done and op.HasField("error")
    assert op.error.code == grpc.StatusCode.UNKNOWN.value[0]
    assert op.error.message == failed_job["message"]
    info = _job_error_info(op.error)
    assert info is not None and info.reason == "PROVIDER_JOB_FAILED"
    assert info.metadata["jobId"] == str(failing_job)

    # Unknown jobs, bad names, bad tokens, wrong keys.
    for missing in ("999999", "not-a-job"):
        err = pytest.raises(grpc.RpcError, ops.GetOperation,
                            operations_pb2.GetOperationRequest(name=f"{parent}/{missing}"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, err.value.details()
    err = pytest.raises(grpc.RpcError, ops.ListOperations, operations_pb2.ListOperationsRequest(
        name=parent, page_token="garbage"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = pytest.raises(grpc.RpcError, ops.ListOperations, operations_pb2.ListOperationsRequest(
        name=f"{BAD}/providerOperations"))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

    status, body, _ = emulator.request("DELETE", f"infrastructure/Server/{job['message']}?reason=x")
    assert status == 202, body


def test_volume_create_attach_detach_delete(server, emulator):
    compute, volumes = server.compute(), server.volumes()
    done = server.wait(compute.CreateInstance(instance_request("vol-host", "volume host")))
    assert not done.HasField("error"), done.error
    inst = compute_pb2.Instance()
    assert done.response.Unpack(inst)

    # Create: a DCM job, then the volume leaves PENDING.
    op = volumes.CreateVolume(volumes_pb2.CreateVolumeRequest(
        parent=ACCOUNT, volume_id="data-1", request_id=str(uuid.uuid4()),
        volume=volumes_pb2.Volume(display_name="data one", size_bytes=1 << 30,
                                  location=f"{ACCOUNT}/locations/dc-{es.DATACENTER}",
                                  labels={"label": "blue"})))
    create_job = metadata_of(op).provider_operation
    assert create_job.isdigit(), op
    done = server.wait(op)
    assert not done.HasField("error"), done.error
    vol = volumes_pb2.Volume()
    assert done.response.Unpack(vol)
    assert vol.name == f"{ACCOUNT}/volumes/data-1"
    assert (vol.state, vol.size_bytes, vol.location) == (
        volumes_pb2.Volume.AVAILABLE, 1 << 30, f"{ACCOUNT}/locations/dc-{es.DATACENTER}")
    assert (vol.display_name, dict(vol.labels)) == ("data one", {"label": "blue"})
    volume_id = int(vol.provider_details.fields["volumeId"].number_value)
    _, job, _ = emulator.request("GET", f"admin/Job/{create_job}")
    assert job["jobs"][0]["message"] == str(volume_id)
    # The same job, read as a provider operation.
    pop = server.operations().GetOperation(operations_pb2.GetOperationRequest(
        name=f"{ACCOUNT}/providerOperations/{create_job}"))
    assert pop.done and metadata_of(pop).status_detail.endswith(f"message: {volume_id}")
    assert volumes.GetVolume(volumes_pb2.GetVolumeRequest(
        name=f"{ACCOUNT}/volumes/{volume_id}")).name == vol.name

    # Attach to the launched server.
    op = volumes.AttachVolume(volumes_pb2.AttachVolumeRequest(
        name=vol.name, instance=inst.name, device="/dev/sdh", request_id=str(uuid.uuid4())))
    assert metadata_of(op).provider_operation.isdigit()
    done = server.wait(op)
    assert not done.HasField("error"), done.error
    assert done.response.Unpack(vol)
    assert vol.state == volumes_pb2.Volume.ATTACHED and list(vol.attached_to) == [inst.name]
    assert vol.provider_details.fields["deviceId"].string_value == "/dev/sdh"

    # Attached: it cannot be deleted, the RPC itself fails.
    err = pytest.raises(grpc.RpcError, volumes.DeleteVolume, volumes_pb2.DeleteVolumeRequest(
        name=vol.name, request_id=str(uuid.uuid4())))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value.details()

    # Detach, then delete.
    done = server.wait(volumes.DetachVolume(volumes_pb2.DetachVolumeRequest(
        name=vol.name, instance=inst.name, request_id=str(uuid.uuid4()))))
    assert not done.HasField("error"), done.error
    assert done.response.Unpack(vol)
    assert vol.state == volumes_pb2.Volume.AVAILABLE and list(vol.attached_to) == []
    op = volumes.DeleteVolume(volumes_pb2.DeleteVolumeRequest(
        name=vol.name, request_id=str(uuid.uuid4())))
    assert metadata_of(op).provider_operation.isdigit()
    done = server.wait(op)
    assert not done.HasField("error"), done.error
    assert done.response.type_url.endswith("google.protobuf.Empty")
    for name in (vol.name, f"{ACCOUNT}/volumes/{volume_id}"):
        err = pytest.raises(grpc.RpcError, volumes.GetVolume, volumes_pb2.GetVolumeRequest(
            name=name))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    status, _, _ = emulator.request("GET", f"infrastructure/Volume/{volume_id}")
    assert status == 404

    # A failing create job fails the Operation with DCM's message.
    done = server.wait(volumes.CreateVolume(volumes_pb2.CreateVolumeRequest(
        parent=ACCOUNT, volume_id="doomed-vol", request_id=str(uuid.uuid4()),
        volume=volumes_pb2.Volume(display_name="fail-vol", size_bytes=1 << 30,
                                  location=f"{ACCOUNT}/locations/dc-{es.DATACENTER}"))))
    assert done.HasField("error")
    assert done.error.code == grpc.StatusCode.UNKNOWN.value[0]
    assert "no capacity left (emulated failure)" in done.error.message

    # Sizes are whole GiB; the field is named.
    err = pytest.raises(grpc.RpcError, volumes.CreateVolume, volumes_pb2.CreateVolumeRequest(
        parent=ACCOUNT, request_id=str(uuid.uuid4()),
        volume=volumes_pb2.Volume(size_bytes=(1 << 30) + 1,
                                  location=f"{ACCOUNT}/locations/dc-{es.DATACENTER}")))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, bad = error_details(err.value)
    assert [v.field for v in bad.field_violations] == ["volume.size_bytes"]

    done = server.wait(compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
        name=inst.name, request_id=str(uuid.uuid4()))))
    assert not done.HasField("error"), done.error
