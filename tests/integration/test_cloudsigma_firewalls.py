"""End to end through the real server against the CloudSigma emulator:
firewall policies (/fwpolicies/) as the FirewallsService (issue 14) — a
firewall with rules, its rules added and removed by PUTting the whole policy,
rules made at the emulator behind cloudplane's back read back truthfully
(no src_ip is 0.0.0.0/0, never an empty list), and what CloudSigma cannot
hold refused by name with nothing sent."""
import pathlib
import sys

import grpc
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "emulators" /
                       "cloudsigma"))

from cloudplane_testing import accounts_pb2, done, error_details, firewalls_pb2  # noqa: E402
from cloudsigma_testing import server_fixtures  # noqa: E402

ACCOUNT = "accounts/csfw"
Rule = firewalls_pb2.FirewallRule
METHODS = ("ListFirewalls", "GetFirewall", "CreateFirewall", "DeleteFirewall",
           "ListFirewallRules", "GetFirewallRule", "CreateFirewallRule", "DeleteFirewallRule")

emulator, server = server_fixtures("csfw", "CLOUDPLANE_TEST_CSFW_SECRET")



def policies(emulator):
    status, body = emulator.rest("GET", "/fwpolicies/detail/?limit=0")
    assert status == 200
    return {p["uuid"]: p for p in body["objects"]}


def expect_error(code, call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kwargs)
    assert err.value.code() == code, err.value.details()
    return error_details(err.value)


def test_capabilities_list_the_firewall_methods(server):
    account = server.accounts().GetAccount(accounts_pb2.GetAccountRequest(name=ACCOUNT))
    caps = {c.method: c for c in account.capabilities}
    for method in METHODS:
        assert caps[f"cloudplane.v1.FirewallsService.{method}"].supported, method
    create = caps["cloudplane.v1.FirewallsService.CreateFirewall"]
    assert "firewall.rules.source_ranges" in create.honoured_fields
    assert "firewall.rules.source_firewalls" not in create.honoured_fields
    assert "firewall.description" not in create.honoured_fields


def test_firewall_with_rules_end_to_end(server, emulator):
    fw = server.firewalls()
    ssh = Rule(direction=Rule.INGRESS, action=Rule.ALLOW, protocol="tcp", port_range_start=22,
               source_ranges=["198.51.100.0/24"], description="ssh from the office")
    web = Rule(direction=Rule.INGRESS, action=Rule.ALLOW, protocol="tcp", port_range_start=8000,
               port_range_end=8080, source_ranges=["0.0.0.0/0"])
    smtp = Rule(direction=Rule.EGRESS, action=Rule.DENY, protocol="tcp", port_range_start=25,
                destination_ranges=["203.0.113.7/32"])
    firewall = done(server, fw.CreateFirewall(firewalls_pb2.CreateFirewallRequest(
        parent=ACCOUNT, firewall_id="web", request_id="fw-1", firewall=firewalls_pb2.Firewall(
            display_name="web servers", labels={"tier": "front"}, rules=[ssh, web, smtp]))),
        firewalls_pb2.Firewall)
    name = f"{ACCOUNT}/firewalls/web"
    assert firewall.name == name and firewall.display_name == "web servers"
    assert firewall.labels == {"tier": "front"}
    # The rules as given, each named by its content, in CloudSigma's order.
    for got, want in zip(firewall.rules, (ssh, web, smtp)):
        assert got.name.startswith(name + "/rules/")
        expected = Rule()
        expected.CopyFrom(want)
        expected.name = got.name
        if not expected.port_range_end:
            expected.port_range_end = expected.port_range_start
        assert got == expected
    # At CloudSigma: one policy, its chosen id in meta, anywhere as no src_ip.
    (policy,) = policies(emulator).values()
    assert policy["name"] == "web servers"
    assert policy["meta"]["cloudplane_id"] == "web" and policy["meta"]["tier"] == "front"
    assert [(r["action"], r["direction"], r["ip_proto"], r["dst_port"], r["src_ip"], r["dst_ip"])
            for r in policy["rules"]] == [
        ("accept", "in", "tcp", "22", "198.51.100.0/24", None),
        ("accept", "in", "tcp", "8000:8080", None, None),
        ("drop", "out", "tcp", "25", None, "203.0.113.7/32")]
    assert firewall.provider_details["uuid"] == policy["uuid"]

    assert fw.GetFirewall(firewalls_pb2.GetFirewallRequest(name=name)) == firewall
    # By its uuid too.
    assert fw.GetFirewall(firewalls_pb2.GetFirewallRequest(
        name=f"{ACCOUNT}/firewalls/{policy['uuid']}")) == firewall
    listed = fw.ListFirewalls(firewalls_pb2.ListFirewallsRequest(parent=ACCOUNT)).firewalls
    assert list(listed) == [firewall]
    rules = fw.ListFirewallRules(firewalls_pb2.ListFirewallRulesRequest(parent=name)).rules
    assert sorted(r.name for r in rules) == sorted(r.name for r in firewall.rules)

    # A rule added: the whole policy PUT with it last.
    dns = Rule(direction=Rule.INGRESS, action=Rule.ALLOW, protocol="udp", port_range_start=53,
               port_range_end=53, source_ranges=["192.0.2.0/24"], description="dns")
    added = done(server, fw.CreateFirewallRule(firewalls_pb2.CreateFirewallRuleRequest(
        parent=name, rule=dns, request_id="fw-2")), Rule)
    assert added.name.startswith(name + "/rules/")
    dns.name = added.name
    assert added == dns
    assert fw.GetFirewallRule(firewalls_pb2.GetFirewallRuleRequest(name=added.name)) == added
    (policy,) = policies(emulator).values()
    assert [r["comment"] for r in policy["rules"]] == ["ssh from the office", None, None, "dns"]
    assert policy["rules"][3]["src_ip"] == "192.0.2.0/24"
    assert policy["meta"]["cloudplane_id"] == "web"  # the rest of the policy stays

    # A rule removed: the others keep their names.
    ssh_name = firewall.rules[0].name
    done(server, fw.DeleteFirewallRule(firewalls_pb2.DeleteFirewallRuleRequest(
        name=ssh_name, request_id="fw-3")), None)
    (policy,) = policies(emulator).values()
    assert [r["comment"] for r in policy["rules"]] == [None, None, "dns"]
    after = fw.GetFirewall(firewalls_pb2.GetFirewallRequest(name=name))
    assert [r.name for r in after.rules] == [firewall.rules[1].name, firewall.rules[2].name,
                                             added.name]
    expect_error(grpc.StatusCode.NOT_FOUND, fw.GetFirewallRule,
                 firewalls_pb2.GetFirewallRuleRequest(name=ssh_name))
    done(server, fw.DeleteFirewallRule(firewalls_pb2.DeleteFirewallRuleRequest(
        name=ssh_name, allow_missing=True, request_id="fw-5")), None)

    # What CloudSigma cannot hold is refused by name; nothing is sent.
    before = policies(emulator)
    info, bad = expect_error(grpc.StatusCode.INVALID_ARGUMENT, fw.CreateFirewallRule,
                             firewalls_pb2.CreateFirewallRuleRequest(parent=name, rule=Rule(
                                 protocol="tcp", source_firewalls=[name])))
    assert info.reason == "FIELD_UNSUPPORTED"
    assert [v.field for v in bad.field_violations] == ["rule.source_firewalls"]
    _, bad = expect_error(grpc.StatusCode.INVALID_ARGUMENT, fw.CreateFirewallRule,
                          firewalls_pb2.CreateFirewallRuleRequest(parent=name, rule=Rule(
                              protocol="tcp", source_ranges=["0.0.0.0/0", "::/0"])))
    assert [v.field for v in bad.field_violations] == ["rule.source_ranges"]
    _, bad = expect_error(grpc.StatusCode.INVALID_ARGUMENT, fw.CreateFirewallRule,
                          firewalls_pb2.CreateFirewallRuleRequest(parent=name, rule=Rule(
                              protocol="icmp", source_ranges=["0.0.0.0/0"])))
    assert [v.field for v in bad.field_violations] == ["rule.protocol"]
    info, bad = expect_error(grpc.StatusCode.INVALID_ARGUMENT, fw.CreateFirewall,
                             firewalls_pb2.CreateFirewallRequest(
                                 parent=ACCOUNT, firewall_id="db",
                                 firewall=firewalls_pb2.Firewall(description="the db")))
    assert info.reason == "FIELD_UNSUPPORTED"
    assert [v.field for v in bad.field_violations] == ["firewall.description"]
    assert policies(emulator) == before

    # Deleted: gone at CloudSigma; again with allow_missing is done.
    done(server, fw.DeleteFirewall(firewalls_pb2.DeleteFirewallRequest(
        name=name, request_id="fw-6")), None)
    assert policies(emulator) == {}
    expect_error(grpc.StatusCode.NOT_FOUND, fw.GetFirewall,
                 firewalls_pb2.GetFirewallRequest(name=name))
    done(server, fw.DeleteFirewall(firewalls_pb2.DeleteFirewallRequest(
        name=name, allow_missing=True, request_id="fw-7")), None)


def test_rules_made_behind_cloudplanes_back_read_truthfully(server, emulator):
    fw = server.firewalls()
    status, body = emulator.rest("POST", "/fwpolicies/", {"objects": [{
        "name": "made by hand", "rules": [
            {"action": "accept", "direction": "in", "ip_proto": "tcp", "dst_port": "443"},
            {"action": "drop", "direction": "out", "dst_ip": "23"},
            {"action": "drop", "direction": "in", "ip_proto": "udp",
             "src_ip": "!172.66.32.55", "comment": "udp only from one host"},
            {"action": "drop", "direction": "both", "ip_proto": "tcp", "dst_port": "!1:1024"}]}]})
    assert status == 201
    uuid = body["objects"][0]["uuid"]
    try:
        name = f"{ACCOUNT}/firewalls/{uuid}"  # no chosen id: named by its uuid
        firewall = fw.GetFirewall(firewalls_pb2.GetFirewallRequest(name=name))
        assert firewall.display_name == "made by hand"
        https, out, notfrom, both = firewall.rules
        # No src_ip is anywhere, said as 0.0.0.0/0 (never an empty list).
        assert list(https.source_ranges) == ["0.0.0.0/0"]
        assert (https.direction, https.action, https.protocol, https.port_range_start,
                https.port_range_end) == (Rule.INGRESS, Rule.ALLOW, "tcp", 443, 443)
        # CloudSigma stored "23" as 23.0.0.0/32; no ip_proto is any protocol.
        assert list(out.destination_ranges) == ["23.0.0.0/32"] and out.protocol == "any"
        assert not out.source_ranges
        # "Not from" and "both directions" have no far end the API can name:
        # empty, and said in words.
        for odd in (notfrom, both):
            assert not odd.source_ranges and not odd.destination_ranges
        assert notfrom.description == ("udp only from one host; CloudSigma rule: action=drop "
                                       "direction=in ip_proto=udp src_ip=!172.66.32.55/32")
        assert "direction=both" in both.description and "dst_port=!1:1024" in both.description
        listed = fw.ListFirewalls(firewalls_pb2.ListFirewallsRequest(parent=ACCOUNT)).firewalls
        assert [f.name for f in listed] == [name]

        # Edited at CloudSigma again: read back as it now is.
        policy = policies(emulator)[uuid]
        policy["rules"] = [{"action": "accept", "direction": "in", "ip_proto": "tcp",
                            "dst_port": "22", "src_ip": "10.1.2.3"}]
        assert emulator.rest("PUT", f"/fwpolicies/{uuid}/", policy)[0] == 200
        (rule,) = fw.ListFirewallRules(firewalls_pb2.ListFirewallRulesRequest(
            parent=name)).rules
        assert list(rule.source_ranges) == ["10.1.2.3/32"] and rule.port_range_start == 22
    finally:
        emulator.rest("DELETE", f"/fwpolicies/{uuid}/")
