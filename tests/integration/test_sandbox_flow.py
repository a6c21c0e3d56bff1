"""End to end against the real server on its embedded sandbox provider,
through the generated Python client."""
import queue
import threading
import uuid

import grpc
import pytest
from google.protobuf import empty_pb2

from cloudplane_testing import (Server, accounts_pb2, autoscaling_pb2, billing_pb2, common_pb2,
                                compute_pb2, error_details, firewalls_pb2, operations_pb2,
                                units_pb2, volumes_pb2, watch_pb2)

SANDBOX_CONFIG = """
accounts {
  id: "sandbox"
  provider: "sandbox"
  options { key: "transition_ms" value: "150" }
}
"""

ACCOUNT = "accounts/sandbox"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("sandbox"), SANDBOX_CONFIG).start()
    yield srv
    assert srv.stop() == 0, srv.log()


def done_response(server, op, message_type):
    op = server.wait(op)
    assert not op.HasField("error"), op.error
    out = message_type()
    assert op.response.Unpack(out)
    return out


def test_accounts_and_providers(server):
    accounts = server.accounts().ListAccounts(accounts_pb2.ListAccountsRequest()).accounts
    assert [a.name for a in accounts] == [ACCOUNT]
    sandbox = accounts[0]
    assert sandbox.state == accounts_pb2.Account.READY
    assert sandbox.provider == "providers/sandbox"
    supported = {c.method for c in sandbox.capabilities if c.supported}
    assert "cloudplane.v1.ComputeService.CreateInstance" in supported
    providers = server.accounts().ListProviders(accounts_pb2.ListProvidersRequest()).providers
    assert {"providers/sandbox", "providers/fleet"} <= {p.name for p in providers}
    with pytest.raises(grpc.RpcError) as err:
        server.accounts().GetAccount(accounts_pb2.GetAccountRequest(name="accounts/nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_catalog_reads(server):
    compute = server.compute()
    images = compute.ListImages(compute_pb2.ListImagesRequest(parent=ACCOUNT)).images
    assert images and all(i.name.startswith(ACCOUNT + "/images/") for i in images)
    assert compute.GetImage(compute_pb2.GetImageRequest(name=images[0].name)) == images[0]
    assert compute.ListMachineTypes(compute_pb2.ListMachineTypesRequest(parent=ACCOUNT)).machine_types
    assert compute.ListLocations(compute_pb2.ListLocationsRequest(parent=ACCOUNT)).locations
    assert compute.ListHosts(compute_pb2.ListHostsRequest(parent=ACCOUNT)).hosts
    codes = server.billing().ListBillingCodes(
        billing_pb2.ListBillingCodesRequest(parent=ACCOUNT)).billing_codes
    assert codes


def test_instance_lifecycle_with_watch(server):
    events = queue.Queue()
    call = server.watch().Watch(watch_pb2.WatchRequest(parent=ACCOUNT, kinds=["Instance"]))

    def pump():
        try:
            for change in call:
                events.put(change)
        except grpc.RpcError:
            pass

    threading.Thread(target=pump, daemon=True).start()
    first = events.get(timeout=10)
    assert first.change_type == watch_pb2.WatchResponse.HEARTBEAT

    compute = server.compute()
    request_id = str(uuid.uuid4())
    op = compute.CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="web-1", request_id=request_id,
        instance=compute_pb2.Instance(display_name="web", image=ACCOUNT + "/images/debian-12",
                                      machine_type=ACCOUNT + "/machineTypes/small")))
    assert not op.done
    metadata = common_pb2.OperationMetadata()
    assert op.metadata.Unpack(metadata)
    assert metadata.method == "cloudplane.v1.ComputeService.CreateInstance"
    assert metadata.request_id == request_id
    instance = done_response(server, op, compute_pb2.Instance)
    assert instance.name == ACCOUNT + "/instances/web-1"
    assert instance.state == compute_pb2.Instance.RUNNING

    seen = []
    while compute_pb2.Instance.RUNNING not in seen:
        change = events.get(timeout=10)
        if change.change_type == watch_pb2.WatchResponse.HEARTBEAT:
            continue
        assert change.resource_name == instance.name
        assert change.sequence > 0
        got = compute_pb2.Instance()
        assert change.resource.Unpack(got)
        seen.append(got.state)
    call.cancel()

    name = instance.name
    stopped = done_response(server, compute.StopInstance(
        compute_pb2.StopInstanceRequest(name=name)), compute_pb2.Instance)
    assert stopped.state == compute_pb2.Instance.STOPPED
    started = done_response(server, compute.StartInstance(
        compute_pb2.StartInstanceRequest(name=name)), compute_pb2.Instance)
    assert started.state == compute_pb2.Instance.RUNNING
    rebooted = done_response(server, compute.RebootInstance(
        compute_pb2.RebootInstanceRequest(name=name)), compute_pb2.Instance)
    assert rebooted.state == compute_pb2.Instance.RUNNING

    update = compute_pb2.UpdateInstanceRequest(
        instance=compute_pb2.Instance(name=name, display_name="web-renamed"))
    update.update_mask.paths.append("display_name")
    updated = done_response(server, compute.UpdateInstance(update), compute_pb2.Instance)
    assert updated.display_name == "web-renamed"
    assert updated.machine_type == instance.machine_type  # untouched field kept

    meta_name = name + "/metadata"
    done_response(server, compute.UpdateInstanceMetadata(compute_pb2.UpdateInstanceMetadataRequest(
        metadata=compute_pb2.InstanceMetadata(name=meta_name, items={"a": "1", "b": "2"}))),
        compute_pb2.InstanceMetadata)
    merged = done_response(server, compute.UpdateInstanceMetadata(
        compute_pb2.UpdateInstanceMetadataRequest(
            metadata=compute_pb2.InstanceMetadata(name=meta_name, items={"b": "3"}), merge=True)),
        compute_pb2.InstanceMetadata)
    assert dict(merged.items) == {"a": "1", "b": "3"}

    done_response(server, compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(name=name)),
                  empty_pb2.Empty)
    with pytest.raises(grpc.RpcError) as err:
        compute.GetInstance(compute_pb2.GetInstanceRequest(name=name))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_volumes_attach_detach(server):
    compute, volumes = server.compute(), server.volumes()
    instance = done_response(server, compute.CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="db-1", instance=compute_pb2.Instance(
            image=ACCOUNT + "/images/debian-12",
            machine_type=ACCOUNT + "/machineTypes/small"))), compute_pb2.Instance)
    volume = done_response(server, volumes.CreateVolume(volumes_pb2.CreateVolumeRequest(
        parent=ACCOUNT, volume_id="data-1",
        volume=volumes_pb2.Volume(display_name="data", size_bytes=10 << 30))), volumes_pb2.Volume)
    assert volume.state == volumes_pb2.Volume.AVAILABLE
    clone = done_response(server, volumes.CloneVolume(volumes_pb2.CloneVolumeRequest(
        name=volume.name, volume_id="data-2")), volumes_pb2.Volume)
    assert clone.size_bytes == volume.size_bytes

    attached = done_response(server, volumes.AttachVolume(volumes_pb2.AttachVolumeRequest(
        name=volume.name, instance=instance.name, boot_order=1)), volumes_pb2.Volume)
    assert list(attached.attached_to) == [instance.name]
    got = compute.GetInstance(compute_pb2.GetInstanceRequest(name=instance.name))
    assert [v.volume for v in got.volumes] == [volume.name]

    # An attached volume cannot be deleted.
    with pytest.raises(grpc.RpcError) as err:
        volumes.DeleteVolume(volumes_pb2.DeleteVolumeRequest(name=volume.name))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    detached = done_response(server, volumes.DetachVolume(volumes_pb2.DetachVolumeRequest(
        name=volume.name, instance=instance.name)), volumes_pb2.Volume)
    assert list(detached.attached_to) == []
    for name in (volume.name, clone.name):
        done_response(server, volumes.DeleteVolume(volumes_pb2.DeleteVolumeRequest(name=name)),
                      empty_pb2.Empty)
    done_response(server, compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
        name=instance.name)), empty_pb2.Empty)


def test_bad_input_names_the_field(server):
    with pytest.raises(grpc.RpcError) as err:
        server.volumes().CreateVolume(volumes_pb2.CreateVolumeRequest(
            parent=ACCOUNT, volume=volumes_pb2.Volume(display_name="x")))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, bad = error_details(err.value)
    assert info.domain == "cloudplane.dev"
    assert [v.field for v in bad.field_violations] == ["volume.size_bytes"]

    with pytest.raises(grpc.RpcError) as err:
        server.compute().GetInstance(compute_pb2.GetInstanceRequest(name="instances/x"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, bad = error_details(err.value)
    assert bad.field_violations[0].field == "name"

    # provider_options go only to adapters that read them for the method.
    request = compute_pb2.StopInstanceRequest(name=ACCOUNT + "/instances/any")
    request.provider_options.update({"action": "suspend"})
    with pytest.raises(grpc.RpcError) as err:
        server.compute().StopInstance(request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, bad = error_details(err.value)
    assert [v.field for v in bad.field_violations] == ["provider_options"]

    # A negative size reaches the provider, which refuses it: the call fails
    # with the field named, and nothing is left behind (no volume, no
    # operation), so the same request_id can be used for the corrected call.
    before = server.volumes().ListVolumes(volumes_pb2.ListVolumesRequest(parent=ACCOUNT))
    with pytest.raises(grpc.RpcError) as err:
        server.volumes().CreateVolume(volumes_pb2.CreateVolumeRequest(
            parent=ACCOUNT, volume_id="neg", request_id="neg-size",
            volume=volumes_pb2.Volume(size_bytes=-5)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, bad = error_details(err.value)
    assert [v.field for v in bad.field_violations] == ["volume.size_bytes"]
    after = server.volumes().ListVolumes(volumes_pb2.ListVolumesRequest(parent=ACCOUNT))
    assert before == after
    ops = server.operations().ListOperations(operations_pb2.ListOperationsRequest(
        name="operations", filter="account=accounts/sandbox")).operations
    assert not [op for op in ops if op.metadata.value.find(b"neg-size") >= 0]
    fixed = server.volumes().CreateVolume(volumes_pb2.CreateVolumeRequest(
        parent=ACCOUNT, volume_id="neg", request_id="neg-size",
        volume=volumes_pb2.Volume(size_bytes=5 << 20)))
    assert done_response(server, fixed, volumes_pb2.Volume).name == ACCOUNT + "/volumes/neg"


def test_validate_only_changes_nothing(server):
    before = server.compute().ListInstances(compute_pb2.ListInstancesRequest(parent=ACCOUNT))
    op = server.compute().CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="dry", validate_only=True,
        instance=compute_pb2.Instance(image=ACCOUNT + "/images/debian-12",
                                      machine_type=ACCOUNT + "/machineTypes/small")))
    assert op.done and not op.HasField("error")
    after = server.compute().ListInstances(compute_pb2.ListInstancesRequest(parent=ACCOUNT))
    assert before == after
    with pytest.raises(grpc.RpcError) as err:
        server.operations().GetOperation(operations_pb2.GetOperationRequest(name=op.name))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_firewalls_autoscaling_units(server):
    fw = done_response(server, server.firewalls().CreateFirewall(
        firewalls_pb2.CreateFirewallRequest(parent=ACCOUNT, firewall_id="web",
                                            firewall=firewalls_pb2.Firewall(display_name="web"))),
        firewalls_pb2.Firewall)
    rule = done_response(server, server.firewalls().CreateFirewallRule(
        firewalls_pb2.CreateFirewallRuleRequest(parent=fw.name, rule=firewalls_pb2.FirewallRule(
            protocol="tcp", port_range_start=443, source_ranges=["203.0.113.0/24"]))),
        firewalls_pb2.FirewallRule)
    assert rule.name.startswith(fw.name + "/rules/")
    rules = server.firewalls().ListFirewallRules(
        firewalls_pb2.ListFirewallRulesRequest(parent=fw.name)).rules
    assert [r.name for r in rules] == [rule.name]

    auto = server.autoscaling()
    template = done_response(server, auto.CreateLaunchTemplate(
        autoscaling_pb2.CreateLaunchTemplateRequest(
            parent=ACCOUNT, launch_template_id="web",
            launch_template=autoscaling_pb2.LaunchTemplate(
                image=ACCOUNT + "/images/debian-12",
                machine_type=ACCOUNT + "/machineTypes/small"))),
        autoscaling_pb2.LaunchTemplate)
    group = done_response(server, auto.CreateScalingGroup(autoscaling_pb2.CreateScalingGroupRequest(
        parent=ACCOUNT, scaling_group_id="web", scaling_group=autoscaling_pb2.ScalingGroup(
            launch_template=template.name, target_size=2))), autoscaling_pb2.ScalingGroup)
    assert len(group.instances) == 2
    assert all(i.health == autoscaling_pb2.ScalingGroupInstance.HEALTHY for i in group.instances)
    group = done_response(server, auto.ResizeScalingGroup(autoscaling_pb2.ResizeScalingGroupRequest(
        name=group.name, target_size=3)), autoscaling_pb2.ScalingGroup)
    assert len(group.instances) == 3

    units = server.units()
    unit = done_response(server, units.CreateUnit(units_pb2.CreateUnitRequest(
        parent=ACCOUNT, unit_id="hello.service", unit=units_pb2.Unit(
            desired_state=units_pb2.Unit.LAUNCHED,
            options=[units_pb2.UnitOption(section="Service", name="ExecStart",
                                          value="/usr/bin/sleep 1d")]))), units_pb2.Unit)
    assert unit.current_state == units_pb2.Unit.LAUNCHED
    states = units.ListUnitStates(units_pb2.ListUnitStatesRequest(parent=ACCOUNT)).unit_states
    assert [s.hash for s in states] == ["dd401fa78c2de99a9c4045cbb4b285679067acf6"]
    machines = units.ListMachines(units_pb2.ListMachinesRequest(parent=ACCOUNT)).machines
    assert states[0].machine in {m.name for m in machines}
