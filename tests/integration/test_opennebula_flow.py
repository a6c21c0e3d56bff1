"""End to end: the real server, the OpenNebula XML-RPC emulator, and the
generated Python client. Every step is asserted, including the raw
OpenNebula state pair and, where the API cannot show it, the action oned
recorded (read straight from the emulator over XML-RPC)."""
import os
import pathlib
import re
import sys
import uuid
import xml.etree.ElementTree as ET
import xmlrpc.client

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2

from cloudplane_testing import (Server, compute_pb2, error_details, firewalls_pb2,
                                volumes_pb2)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "emulators" /
                       "opennebula"))
import one_emulator  # noqa: E402

ACCOUNT = "accounts/one"
SESSION = "oneadmin:opennebula"
ENDPOINT = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("one")
    process, endpoint = one_emulator.spawn(workdir, step_delay=0.05)
    ENDPOINT["url"] = endpoint
    # The secret travels through the environment, never through the config.
    os.environ["ONE_AUTH_TEST"] = "oneadmin:opennebula"
    config = (f'accounts {{ id: "one" provider: "opennebula" endpoint: "{endpoint}" '
              f'credentials {{ env: "ONE_AUTH_TEST" }} }}\n'
              f'accounts {{ id: "one-badauth" provider: "opennebula" endpoint: "{endpoint}" '
              f'credentials {{ env: "ONE_AUTH_BAD" }} }}\n')
    os.environ["ONE_AUTH_BAD"] = "oneadmin:wrong"
    srv = Server(tmp_path_factory.mktemp("one-server"), config).start()
    yield srv
    code = srv.stop()
    process.terminate()
    process.wait(timeout=10)
    log = srv.log()
    assert "oneadmin:opennebula" not in log and "wrong" not in log, "the session leaked"
    assert code == 0, log


def done(server, op):
    op = server.wait(op, timeout=30)
    assert not op.HasField("error"), op.error
    return op


def unpack(op, message):
    out = message()
    assert op.response.Unpack(out), op.response
    return out


def struct(**fields):
    out = struct_pb2.Struct()
    out.update(fields)
    return out


def rpc_error(call, request, code):
    err = pytest.raises(grpc.RpcError, call, request).value
    assert err.code() == code, err.details()
    return err


def violations(err):
    _, bad = error_details(err)
    return [v.field for v in bad.field_violations]


def last_history_action(instance):
    """HISTORY/ACTION of the VM's last record (§7.4), from the emulator."""
    proxy = xmlrpc.client.ServerProxy(ENDPOINT["url"])
    ok, doc, _ = proxy.one.vm.info(SESSION, int(instance.provider_details["id"]))[:3]
    assert ok, doc
    return int(ET.fromstring(doc).findall("HISTORY_RECORDS/HISTORY")[-1].findtext("ACTION"))


def create_vm(server, instance_id, image=1, **kwargs):
    op = server.compute().CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id=instance_id, request_id=str(uuid.uuid4()),
        instance=compute_pb2.Instance(image=f"{ACCOUNT}/images/{image}", **kwargs)))
    return unpack(done(server, op), compute_pb2.Instance)


def test_instance_lifecycle(server):
    compute = server.compute()
    op = compute.CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="web-1", request_id=str(uuid.uuid4()),
        instance=compute_pb2.Instance(image=f"{ACCOUNT}/images/0")))
    vm = unpack(done(server, op), compute_pb2.Instance)
    assert vm.name == f"{ACCOUNT}/instances/web-1"
    assert vm.state == compute_pb2.Instance.RUNNING
    assert vm.provider_state == "ACTIVE/RUNNING"
    assert vm.provider_details["state"] == 3 and vm.provider_details["lcmState"] == 3
    assert vm.image == f"{ACCOUNT}/images/0"
    assert vm.memory_bytes == 768 << 20 and vm.cpu_count == 1
    assert vm.host.startswith(f"{ACCOUNT}/hosts/") and vm.ip_addresses

    # Update the user template (merge): the old items stay.
    meta_name = vm.name + "/metadata"
    before = compute.GetInstanceMetadata(compute_pb2.GetInstanceMetadataRequest(name=meta_name))
    assert before.items["DESCRIPTION"] == "Debian 12 (bookworm)"
    op = compute.UpdateInstanceMetadata(compute_pb2.UpdateInstanceMetadataRequest(
        metadata=compute_pb2.InstanceMetadata(name=meta_name, items={
            "OWNER": 'ops "team"', "TIER": "web"}), merge=True))
    meta = unpack(done(server, op), compute_pb2.InstanceMetadata)
    assert meta.items["OWNER"] == 'ops "team"' and meta.items["TIER"] == "web"
    assert meta.items["DESCRIPTION"] == "Debian 12 (bookworm)"
    assert "CLOUDPLANE_OPERATION" not in meta.items

    # Poweroff, resume, terminate.
    stopped = unpack(done(server, compute.StopInstance(compute_pb2.StopInstanceRequest(
        name=vm.name))), compute_pb2.Instance)
    assert stopped.state == compute_pb2.Instance.STOPPED
    assert stopped.provider_state == "POWEROFF"
    err = pytest.raises(grpc.RpcError, compute.StopInstance,
                        compute_pb2.StopInstanceRequest(name=vm.name)).value
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    info, _ = error_details(err)
    assert info.metadata["providerCode"] == "2048"
    started = unpack(done(server, compute.StartInstance(compute_pb2.StartInstanceRequest(
        name=vm.name))), compute_pb2.Instance)
    assert started.state == compute_pb2.Instance.RUNNING
    assert started.provider_state == "ACTIVE/RUNNING"
    op = done(server, compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(name=vm.name)))
    assert op.response.type_url.endswith("google.protobuf.Empty")
    err = pytest.raises(grpc.RpcError, compute.GetInstance,
                        compute_pb2.GetInstanceRequest(name=vm.name)).value
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_hosts_marketplaces_images(server):
    compute = server.compute()
    hosts = compute.ListHosts(compute_pb2.ListHostsRequest(parent=ACCOUNT)).hosts
    assert [h.display_name for h in hosts] == ["node-0", "node-1"]
    assert hosts[0].state == compute_pb2.Host.UP and hosts[0].provider_state == "MONITORED"
    assert hosts[0].cpu_count == 8 and hosts[0].memory_bytes == 16 << 30
    assert set(hosts[0].labels) == {"ssd", "rack-1"}
    assert compute.GetHost(compute_pb2.GetHostRequest(name=hosts[1].name)).display_name == \
        "node-1"
    locations = compute.ListLocations(compute_pb2.ListLocationsRequest(parent=ACCOUNT)).locations
    markets = [l for l in locations if l.kind == compute_pb2.Location.SITE]
    assert sorted(m.display_name for m in markets) == ["Linux Containers", "OpenNebula Public"]
    assert all(m.parent_location == f"{ACCOUNT}/locations/zone-0" and m.available
               for m in markets)
    assert {l.name for l in locations} >= {f"{ACCOUNT}/locations/zone-0",
                                           f"{ACCOUNT}/locations/cluster-0"}
    images = compute.ListImages(compute_pb2.ListImagesRequest(parent=ACCOUNT)).images
    assert [i.display_name for i in images] == ["debian-12", "alpine-3"]


def test_security_group_with_rules(server):
    fws = server.firewalls()
    op = fws.CreateFirewall(firewalls_pb2.CreateFirewallRequest(
        parent=ACCOUNT, firewall_id="web", request_id=str(uuid.uuid4()),
        firewall=firewalls_pb2.Firewall(description="web tier", rules=[
            firewalls_pb2.FirewallRule(protocol="tcp", direction=firewalls_pb2.FirewallRule.INGRESS,
                                       port_range_start=443, port_range_end=443,
                                       source_ranges=["10.0.0.0/24"]),
            firewalls_pb2.FirewallRule(protocol="all",
                                       direction=firewalls_pb2.FirewallRule.EGRESS,
                                       destination_ranges=["0.0.0.0/0", "::/0"])])))
    fw = unpack(done(server, op), firewalls_pb2.Firewall)
    assert fw.name == f"{ACCOUNT}/firewalls/web" and fw.description == "web tier"
    assert [(r.protocol, r.direction, r.port_range_start, list(r.source_ranges),
             list(r.destination_ranges)) for r in fw.rules] == [
        ("tcp", firewalls_pb2.FirewallRule.INGRESS, 443, ["10.0.0.0/24"], []),
        ("all", firewalls_pb2.FirewallRule.EGRESS, 0, [], ["0.0.0.0/0", "::/0"])]
    # Rule ids come from the rule itself, so they stay put as others change.
    assert all(re.fullmatch(re.escape(fw.name) + r"/rules/[0-9a-f]{12}", r.name)
               for r in fw.rules), fw.rules
    https, egress = fw.rules
    rules = fws.ListFirewallRules(firewalls_pb2.ListFirewallRulesRequest(parent=fw.name)).rules
    assert sorted(r.name for r in rules) == sorted([https.name, egress.name])
    assert fws.GetFirewallRule(firewalls_pb2.GetFirewallRuleRequest(name=https.name)) == https

    # Add a rule (one.secgroup.update with the whole RULE set).
    ssh_rule = firewalls_pb2.FirewallRule(protocol="tcp", port_range_start=22,
                                          source_ranges=["192.168.0.0/16"])
    op = fws.CreateFirewallRule(firewalls_pb2.CreateFirewallRuleRequest(
        parent=fw.name, rule=ssh_rule, request_id=str(uuid.uuid4())))
    ssh = unpack(done(server, op), firewalls_pb2.FirewallRule)
    assert re.fullmatch(re.escape(fw.name) + r"/rules/[0-9a-f]{12}", ssh.name)
    assert (ssh.protocol, ssh.direction, ssh.port_range_start, ssh.port_range_end,
            list(ssh.source_ranges)) == ("tcp", firewalls_pb2.FirewallRule.INGRESS, 22, 22,
                                         ["192.168.0.0/16"])
    assert fws.GetFirewallRule(firewalls_pb2.GetFirewallRuleRequest(name=ssh.name)) == ssh
    got = fws.GetFirewall(firewalls_pb2.GetFirewallRequest(name=fw.name))
    assert [r.name for r in got.rules] == [https.name, egress.name, ssh.name]
    assert got.description == "web tier"  # merge mode kept the rest
    # The same rule again adds nothing and answers the rule there is.
    again = unpack(done(server, fws.CreateFirewallRule(firewalls_pb2.CreateFirewallRuleRequest(
        parent=fw.name, rule=ssh_rule))), firewalls_pb2.FirewallRule)
    assert again == ssh
    assert len(fws.ListFirewallRules(firewalls_pb2.ListFirewallRulesRequest(
        parent=fw.name)).rules) == 3
    # Rules OpenNebula cannot express, and a missing group.
    err = rpc_error(fws.CreateFirewallRule, firewalls_pb2.CreateFirewallRuleRequest(
        parent=fw.name, rule=firewalls_pb2.FirewallRule(
            protocol="tcp", action=firewalls_pb2.FirewallRule.DENY,
            source_ranges=["10.0.0.0/8"])),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert violations(err) == ["rule.action"]
    rpc_error(fws.CreateFirewallRule, firewalls_pb2.CreateFirewallRuleRequest(
        parent=f"{ACCOUNT}/firewalls/nope", rule=ssh_rule), grpc.StatusCode.NOT_FOUND)

    # Delete one: the others keep their names.
    op = done(server, fws.DeleteFirewallRule(firewalls_pb2.DeleteFirewallRuleRequest(
        name=https.name)))
    assert op.response.type_url.endswith("google.protobuf.Empty")
    got = fws.GetFirewall(firewalls_pb2.GetFirewallRequest(name=fw.name))
    assert [r.name for r in got.rules] == [egress.name, ssh.name]
    rpc_error(fws.GetFirewallRule, firewalls_pb2.GetFirewallRuleRequest(name=https.name),
              grpc.StatusCode.NOT_FOUND)
    rpc_error(fws.DeleteFirewallRule, firewalls_pb2.DeleteFirewallRuleRequest(name=https.name),
              grpc.StatusCode.NOT_FOUND)
    done(server, fws.DeleteFirewallRule(firewalls_pb2.DeleteFirewallRuleRequest(
        name=https.name, allow_missing=True)))
    # The last rules go too (RULE=[] in merge mode).
    for rule in (egress, ssh):
        done(server, fws.DeleteFirewallRule(firewalls_pb2.DeleteFirewallRuleRequest(
            name=rule.name)))
    assert list(fws.GetFirewall(firewalls_pb2.GetFirewallRequest(name=fw.name)).rules) == []
    # A second one with the same id is refused at once.
    err = pytest.raises(grpc.RpcError, fws.CreateFirewall, firewalls_pb2.CreateFirewallRequest(
        parent=ACCOUNT, firewall_id="web", firewall=firewalls_pb2.Firewall())).value
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    # DENY cannot be expressed: INVALID_ARGUMENT naming the field.
    err = pytest.raises(grpc.RpcError, fws.CreateFirewall, firewalls_pb2.CreateFirewallRequest(
        parent=ACCOUNT, firewall_id="deny", firewall=firewalls_pb2.Firewall(rules=[
            firewalls_pb2.FirewallRule(protocol="tcp", source_ranges=["10.0.0.0/8"],
                                       action=firewalls_pb2.FirewallRule.DENY)]))).value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error_details(err)[1].field_violations] == \
        ["firewall.rules[0].action"]
    done(server, fws.DeleteFirewall(firewalls_pb2.DeleteFirewallRequest(name=fw.name)))
    err = pytest.raises(grpc.RpcError, fws.GetFirewall,
                        firewalls_pb2.GetFirewallRequest(name=fw.name)).value
    assert err.code() == grpc.StatusCode.NOT_FOUND
    # The default group cannot be deleted: OpenNebula's ACTION error.
    err = pytest.raises(grpc.RpcError, fws.DeleteFirewall,
                        firewalls_pb2.DeleteFirewallRequest(name=f"{ACCOUNT}/firewalls/default")
                        ).value
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_bad_session_is_unauthenticated(server):
    err = pytest.raises(grpc.RpcError, server.compute().ListHosts,
                        compute_pb2.ListHostsRequest(parent="accounts/one-badauth")).value
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    info, _ = error_details(err)
    assert info.metadata["providerCode"] == "256"
    assert "wrong" not in err.details()


def test_named_provider_actions(server):
    compute = server.compute()
    vm = create_vm(server, "act-1")
    name = vm.name

    def act(method, request_type, **fields):
        op = getattr(compute, method)(request_type(name=name, **fields))
        return unpack(done(server, op), compute_pb2.Instance)

    stop = compute_pb2.StopInstanceRequest
    start = compute_pb2.StartInstanceRequest
    reboot = compute_pb2.RebootInstanceRequest
    # Each StopInstance action ends in its own state; StartInstance resumes.
    for action, state, provider_state, history in (
            ("suspend", compute_pb2.Instance.SUSPENDED, "SUSPENDED", 10),
            ("undeploy", compute_pb2.Instance.STOPPED, "UNDEPLOYED", 5),
            ("stop", compute_pb2.Instance.STOPPED, "STOPPED", 9)):
        got = act("StopInstance", stop, provider_options=struct(action=action))
        assert (got.state, got.provider_state) == (state, provider_state), action
        assert last_history_action(got) == history, action
        options = struct(action="resume") if action == "undeploy" else None
        got = act("StartInstance", start, provider_options=options)
        assert (got.state, got.provider_state) == (compute_pb2.Instance.RUNNING,
                                                   "ACTIVE/RUNNING"), action
    # force picks the -hard variant.
    got = act("RebootInstance", reboot, force=True)
    assert got.provider_state == "ACTIVE/RUNNING" and last_history_action(got) == 16
    got = act("RebootInstance", reboot, provider_options=struct(action="resched"))
    assert got.provider_state == "ACTIVE/RUNNING" and got.provider_details["resched"] == 1
    got = act("StopInstance", stop, force=True)
    assert got.provider_state == "POWEROFF" and last_history_action(got) == 20
    act("StartInstance", start)
    # hold is for PENDING VMs only: oned's ACTION error, and nothing changed.
    err = rpc_error(compute.StopInstance, stop(name=name, provider_options=struct(action="hold")),
                    grpc.StatusCode.FAILED_PRECONDITION)
    info, _ = error_details(err)
    assert info.metadata["providerCode"] == "2048" and '"hold"' in err.details()
    # Bad options are refused before anything is sent.
    err = rpc_error(compute.StopInstance, stop(name=name, provider_options=struct(
        action="explode")), grpc.StatusCode.INVALID_ARGUMENT)
    assert violations(err) == ["provider_options.action"]
    err = rpc_error(compute.RebootInstance, reboot(name=name, provider_options=struct(
        action="suspend")), grpc.StatusCode.INVALID_ARGUMENT)
    assert violations(err) == ["provider_options.action"]
    err = rpc_error(compute.StartInstance, start(name=name, provider_options=struct(mode="x")),
                    grpc.StatusCode.INVALID_ARGUMENT)
    assert violations(err) == ["provider_options.mode"]
    err = rpc_error(compute.StopInstance, stop(name=name, force=True, provider_options=struct(
        action="suspend")), grpc.StatusCode.INVALID_ARGUMENT)
    assert violations(err) == ["force"]
    assert compute.GetInstance(compute_pb2.GetInstanceRequest(name=name)).provider_state == \
        "ACTIVE/RUNNING"
    # terminate (not the default terminate-hard).
    last = compute.GetInstance(compute_pb2.GetInstanceRequest(name=name))
    done(server, compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
        name=name, provider_options=struct(action="terminate"))))
    assert last_history_action(last) == 27
    rpc_error(compute.GetInstance, compute_pb2.GetInstanceRequest(name=name),
              grpc.StatusCode.NOT_FOUND)

    # A VM created on hold is released.
    op = compute.CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="act-held", start=False,
        instance=compute_pb2.Instance(image=f"{ACCOUNT}/images/1")))
    held = unpack(done(server, op), compute_pb2.Instance)
    assert (held.state, held.provider_state) == (compute_pb2.Instance.STOPPED, "HOLD")
    name = held.name
    got = act("StartInstance", start, provider_options=struct(action="release"))
    assert got.provider_state == "ACTIVE/RUNNING"
    done(server, compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(name=name)))


def test_update_instance(server):
    compute = server.compute()
    vm = create_vm(server, "upd-1", labels={"team": "core"})
    assert dict(vm.labels) == {"team": "core"}

    def update(instance, *paths):
        op = compute.UpdateInstance(compute_pb2.UpdateInstanceRequest(
            instance=instance, update_mask=field_mask_pb2.FieldMask(paths=list(paths))))
        return unpack(done(server, op), compute_pb2.Instance)

    # Labels: the map is replaced (team goes), through a user template merge.
    got = update(compute_pb2.Instance(name=vm.name, labels={"env": "prod", "tier": "web"}),
                 "labels")
    assert dict(got.labels) == {"env": "prod", "tier": "web"}
    listed = {i.name: i for i in compute.ListInstances(
        compute_pb2.ListInstancesRequest(parent=ACCOUNT)).instances}
    assert dict(listed[vm.name].labels) == {"env": "prod", "tier": "web"}
    # Labels are not metadata, and replacing the metadata keeps them.
    meta_name = vm.name + "/metadata"
    meta = compute.GetInstanceMetadata(compute_pb2.GetInstanceMetadataRequest(name=meta_name))
    assert not any(k.startswith("CLOUDPLANE") for k in meta.items), meta.items
    done(server, compute.UpdateInstanceMetadata(compute_pb2.UpdateInstanceMetadataRequest(
        metadata=compute_pb2.InstanceMetadata(name=meta_name, items={"OWNER": "ops"}))))
    assert dict(compute.GetInstanceMetadata(compute_pb2.GetInstanceMetadataRequest(
        name=meta_name)).items) == {"OWNER": "ops"}
    assert dict(compute.GetInstance(compute_pb2.GetInstanceRequest(name=vm.name)).labels) == \
        {"env": "prod", "tier": "web"}

    # Refused at once: sizes of a running VM, other fields, bad label keys.
    err = rpc_error(compute.UpdateInstance, compute_pb2.UpdateInstanceRequest(
        instance=compute_pb2.Instance(name=vm.name, cpu_count=2),
        update_mask=field_mask_pb2.FieldMask(paths=["cpu_count"])),
        grpc.StatusCode.FAILED_PRECONDITION)
    assert "POWEROFF" in err.details()
    # A path the adapter does not apply: the server refuses it by name (the
    # strict field contract) before the adapter runs.
    err = rpc_error(compute.UpdateInstance, compute_pb2.UpdateInstanceRequest(
        instance=compute_pb2.Instance(name=vm.name, image=f"{ACCOUNT}/images/0"),
        update_mask=field_mask_pb2.FieldMask(paths=["image"])), grpc.StatusCode.INVALID_ARGUMENT)
    assert violations(err) == ["instance.image"]
    assert error_details(err)[0].reason == "FIELD_UNSUPPORTED"
    err = rpc_error(compute.UpdateInstance, compute_pb2.UpdateInstanceRequest(
        instance=compute_pb2.Instance(name=vm.name, labels={"Bad-Key": "x"}, memory_bytes=5),
        update_mask=field_mask_pb2.FieldMask(paths=["labels", "memory_bytes"])),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert violations(err) == ["instance.labels.Bad-Key", "instance.memory_bytes"]

    # Powered off, the VM is resized (one.vm.resize) and stays off.
    unpack(done(server, compute.StopInstance(compute_pb2.StopInstanceRequest(name=vm.name))),
           compute_pb2.Instance)
    got = update(compute_pb2.Instance(name=vm.name, cpu_count=2, memory_bytes=512 << 20),
                 "cpu_count", "memory_bytes")
    assert (got.cpu_count, got.memory_bytes, got.provider_state) == (2, 512 << 20, "POWEROFF")
    assert last_history_action(got) == 19  # no action recorded beyond the poweroff

    # Rename: the NAME is the instance's id, so the name follows it.
    op = compute.CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="upd-taken", start=False,
        instance=compute_pb2.Instance(image=f"{ACCOUNT}/images/1")))
    taken = unpack(done(server, op), compute_pb2.Instance)
    rpc_error(compute.UpdateInstance, compute_pb2.UpdateInstanceRequest(
        instance=compute_pb2.Instance(name=vm.name, display_name="upd-taken"),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name"])),
        grpc.StatusCode.ALREADY_EXISTS)
    err = rpc_error(compute.UpdateInstance, compute_pb2.UpdateInstanceRequest(
        instance=compute_pb2.Instance(name=vm.name, display_name="a/b"),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name"])),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert violations(err) == ["instance.display_name"]
    got = update(compute_pb2.Instance(name=vm.name, display_name="upd-2"), "display_name")
    assert (got.name, got.display_name) == (f"{ACCOUNT}/instances/upd-2", "upd-2")
    assert got.provider_details["id"] == vm.provider_details["id"]
    rpc_error(compute.GetInstance, compute_pb2.GetInstanceRequest(name=vm.name),
              grpc.StatusCode.NOT_FOUND)
    numeric = f"{ACCOUNT}/instances/{int(vm.provider_details['id'])}"
    assert compute.GetInstance(compute_pb2.GetInstanceRequest(name=numeric)).name == got.name
    for instance in (got, taken):
        done(server, compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
            name=instance.name)))


def test_volumes_attach_and_detach(server):
    compute, volumes = server.compute(), server.volumes()
    listed = {v.display_name: v for v in volumes.ListVolumes(
        volumes_pb2.ListVolumesRequest(parent=ACCOUNT)).volumes}
    # Images of type OS and DATABLOCK; the kernel image is no volume.
    assert set(listed) == {"debian-12-disk", "alpine-3-disk", "scratch", "data-1"}
    data = volumes.GetVolume(volumes_pb2.GetVolumeRequest(name=f"{ACCOUNT}/volumes/data-1"))
    assert data == listed["data-1"]
    assert (data.state, data.provider_state, data.size_bytes, data.media) == (
        volumes_pb2.Volume.AVAILABLE, "READY", 10240 << 20, volumes_pb2.Volume.DISK)
    assert data.provider_details["persistent"] == 1 and list(data.attached_to) == []
    rpc_error(volumes.GetVolume, volumes_pb2.GetVolumeRequest(name=f"{ACCOUNT}/volumes/4"),
              grpc.StatusCode.NOT_FOUND)

    vm = create_vm(server, "vol-1")
    assert [(v.volume, v.device) for v in vm.volumes] == [(f"{ACCOUNT}/volumes/alpine-3-disk",
                                                           "vda")]
    attach = volumes_pb2.AttachVolumeRequest(name=data.name, instance=vm.name, device="vdc")
    got = unpack(done(server, volumes.AttachVolume(attach)), volumes_pb2.Volume)
    assert (got.state, got.provider_state, list(got.attached_to)) == (
        volumes_pb2.Volume.ATTACHED, "USED_PERS", [vm.name])
    inst = compute.GetInstance(compute_pb2.GetInstanceRequest(name=vm.name))
    assert inst.provider_state == "ACTIVE/RUNNING"
    assert (data.name, "vdc") in [(v.volume, v.device) for v in inst.volumes]
    assert last_history_action(inst) == 21
    # Again: already attached, reported as it is.
    assert unpack(done(server, volumes.AttachVolume(attach)), volumes_pb2.Volume) == got
    err = rpc_error(volumes.AttachVolume, volumes_pb2.AttachVolumeRequest(
        name=data.name, instance=vm.name, channel="0:1"), grpc.StatusCode.INVALID_ARGUMENT)
    assert violations(err) == ["channel"]
    err = rpc_error(volumes.AttachVolume, volumes_pb2.AttachVolumeRequest(
        name=data.name, instance=vm.name, device="floppy"), grpc.StatusCode.INVALID_ARGUMENT)
    assert violations(err) == ["device"]

    detach = volumes_pb2.DetachVolumeRequest(name=data.name, instance=vm.name)
    got = unpack(done(server, volumes.DetachVolume(detach)), volumes_pb2.Volume)
    assert (got.state, list(got.attached_to)) == (volumes_pb2.Volume.AVAILABLE, [])
    inst = compute.GetInstance(compute_pb2.GetInstanceRequest(name=vm.name))
    assert data.name not in [v.volume for v in inst.volumes]
    assert last_history_action(inst) == 22
    assert unpack(done(server, volumes.DetachVolume(detach)), volumes_pb2.Volume) == got

    # Powered off: the hotplug ends back in POWEROFF.
    done(server, compute.StopInstance(compute_pb2.StopInstanceRequest(name=vm.name)))
    scratch = listed["scratch"]
    got = unpack(done(server, volumes.AttachVolume(volumes_pb2.AttachVolumeRequest(
        name=scratch.name, instance=vm.name, device="scsi"))), volumes_pb2.Volume)
    assert (got.provider_state, list(got.attached_to)) == ("USED", [vm.name])
    inst = compute.GetInstance(compute_pb2.GetInstanceRequest(name=vm.name))
    assert inst.provider_state == "POWEROFF"
    assert (scratch.name, "sda") in [(v.volume, v.device) for v in inst.volumes]
    got = unpack(done(server, volumes.DetachVolume(volumes_pb2.DetachVolumeRequest(
        name=scratch.name, instance=vm.name))), volumes_pb2.Volume)
    assert got.state == volumes_pb2.Volume.AVAILABLE
    # A suspended VM takes no hotplug: oned's ACTION error.
    done(server, compute.StartInstance(compute_pb2.StartInstanceRequest(name=vm.name)))
    done(server, compute.StopInstance(compute_pb2.StopInstanceRequest(
        name=vm.name, provider_options=struct(action="suspend"))))
    err = rpc_error(volumes.AttachVolume, attach, grpc.StatusCode.FAILED_PRECONDITION)
    assert error_details(err)[0].metadata["providerCode"] == "2048"
    done(server, compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(name=vm.name)))


def test_create_from_raw_template(server):
    compute = server.compute()

    def create(instance_id, template, start=True, **kwargs):
        op = compute.CreateInstance(compute_pb2.CreateInstanceRequest(
            parent=ACCOUNT, instance_id=instance_id, start=start, request_id=str(uuid.uuid4()),
            instance=compute_pb2.Instance(provider_options=struct(template=template), **kwargs)))
        return unpack(done(server, op), compute_pb2.Instance)

    # Text form, as it is: one.vm.allocate.
    text = ('CPU = "0.5"\nMEMORY = 128 # MiB\nDISK = [ IMAGE_ID = "1" ]\n'
            'NIC = [ NETWORK_ID = "0" ]\nOWNER = "raw \\"quoted\\""\n')
    vm = create("raw-1", text, labels={"kind": "raw"})
    assert (vm.name, vm.state, vm.provider_state) == (
        f"{ACCOUNT}/instances/raw-1", compute_pb2.Instance.RUNNING, "ACTIVE/RUNNING")
    assert (vm.memory_bytes, vm.image, dict(vm.labels)) == (128 << 20, "", {"kind": "raw"})
    assert [v.volume for v in vm.volumes] == [f"{ACCOUNT}/volumes/alpine-3-disk"]
    meta = compute.GetInstanceMetadata(compute_pb2.GetInstanceMetadataRequest(
        name=vm.name + "/metadata"))
    assert meta.items["OWNER"] == 'raw "quoted"'
    # Structured, as pyone takes it: one root key holding a map is XML.
    held = create("raw-2", {"TEMPLATE": {"CPU": 0.25, "VCPU": 2, "MEMORY": 96,
                                         "DISK": {"IMAGE_ID": 1}, "NOTE": "a < b & c"}},
                  start=False)
    assert (held.state, held.provider_state) == (compute_pb2.Instance.STOPPED, "HOLD")
    assert (held.cpu_count, held.memory_bytes) == (2, 96 << 20)
    assert compute.GetInstanceMetadata(compute_pb2.GetInstanceMetadataRequest(
        name=held.name + "/metadata")).items["NOTE"] == "a < b & c"
    # A flat map is KEY="value" lines; without an instance_id oned names it.
    flat = create("", {"CPU": "1", "MEMORY": "64", "NAME": "flat-vm"})
    assert (flat.name, flat.display_name) == (f"{ACCOUNT}/instances/flat-vm", "flat-vm")
    assert flat.memory_bytes == 64 << 20

    # Refused: unknown keys, both an image and a template, oned's template errors.
    request = compute_pb2.CreateInstanceRequest(parent=ACCOUNT, instance_id="raw-bad")
    request.instance.provider_options.update({"template": text, "vnc": "x"})
    err = rpc_error(compute.CreateInstance, request, grpc.StatusCode.INVALID_ARGUMENT)
    assert violations(err) == ["instance.provider_options.vnc"]
    request = compute_pb2.CreateInstanceRequest(parent=ACCOUNT, instance_id="raw-bad")
    request.instance.image = f"{ACCOUNT}/images/0"
    request.instance.provider_options.update({"template": text})
    err = rpc_error(compute.CreateInstance, request, grpc.StatusCode.INVALID_ARGUMENT)
    assert violations(err) == ["instance.provider_options.template"]
    for bad in ('CPU = [', 'MEMORY = "-1"'):
        request = compute_pb2.CreateInstanceRequest(parent=ACCOUNT, instance_id="raw-bad")
        request.instance.provider_options.update({"template": bad})
        err = rpc_error(compute.CreateInstance, request, grpc.StatusCode.INVALID_ARGUMENT)
        assert violations(err) == ["instance.provider_options.template"], bad
        assert error_details(err)[0].metadata["providerCode"] == "8192"
    request = compute_pb2.CreateInstanceRequest(parent=ACCOUNT)
    request.instance.provider_options.update({"template": {"TEMPLATE": {"A": {"B": {"C": 1}}}}})
    err = rpc_error(compute.CreateInstance, request, grpc.StatusCode.INVALID_ARGUMENT)
    assert violations(err) == ["instance.provider_options.template.TEMPLATE.A.B"]
    rpc_error(compute.GetInstance, compute_pb2.GetInstanceRequest(
        name=f"{ACCOUNT}/instances/raw-bad"), grpc.StatusCode.NOT_FOUND)
    for instance in (vm, held, flat):
        done(server, compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
            name=instance.name)))
