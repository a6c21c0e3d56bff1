"""End to end: the real server, the OpenNebula XML-RPC emulator, and the
generated Python client. Every step is asserted, including the raw
OpenNebula state pair."""
import os
import pathlib
import sys
import uuid

import grpc
import pytest

from cloudplane_testing import Server, compute_pb2, error_details, firewalls_pb2

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "emulators" /
                       "opennebula"))
import one_emulator  # noqa: E402

ACCOUNT = "accounts/one"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("one")
    process, endpoint = one_emulator.spawn(workdir, step_delay=0.05)
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
                                       direction=firewalls_pb2.FirewallRule.EGRESS)])))
    fw = unpack(done(server, op), firewalls_pb2.Firewall)
    assert fw.name == f"{ACCOUNT}/firewalls/web" and fw.description == "web tier"
    assert [(r.protocol, r.direction, r.port_range_start, list(r.source_ranges))
            for r in fw.rules] == [("tcp", firewalls_pb2.FirewallRule.INGRESS, 443,
                                    ["10.0.0.0/24"]),
                                   ("all", firewalls_pb2.FirewallRule.EGRESS, 0, [])]
    rules = fws.ListFirewallRules(firewalls_pb2.ListFirewallRulesRequest(parent=fw.name)).rules
    assert [r.name for r in rules] == [fw.name + "/rules/0", fw.name + "/rules/1"]
    # A second one with the same id is refused at once.
    err = pytest.raises(grpc.RpcError, fws.CreateFirewall, firewalls_pb2.CreateFirewallRequest(
        parent=ACCOUNT, firewall_id="web", firewall=firewalls_pb2.Firewall())).value
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    # DENY cannot be expressed: INVALID_ARGUMENT naming the field.
    err = pytest.raises(grpc.RpcError, fws.CreateFirewall, firewalls_pb2.CreateFirewallRequest(
        parent=ACCOUNT, firewall_id="deny", firewall=firewalls_pb2.Firewall(rules=[
            firewalls_pb2.FirewallRule(protocol="tcp",
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
