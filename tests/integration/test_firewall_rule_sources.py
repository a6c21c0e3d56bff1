"""End to end (issue 14): a firewall rule's far end is never read wider than
it is, and an empty one is never "anywhere". Rules are made at the emulators
through the providers' own APIs, behind cloudplane's back, and read through
the real cloudplaned; then made through cloudplane and checked at the
emulators. OpenNebula: NETWORK_ID is a source network, IP + SIZE an exact
address range, no target 0.0.0.0/0 with ::/0. enStratus: a GLOBAL source is
another firewall. And a rule without a source is refused naming the field."""
import os
import pathlib
import sys
import time
import uuid
import xml.etree.ElementTree as ET
import xmlrpc.client

import grpc
import pytest
from google.protobuf import empty_pb2

from cloudplane_testing import Server, error_details, firewalls_pb2, networks_pb2

EMULATORS = pathlib.Path(__file__).resolve().parent.parent / "emulators"
sys.path.insert(0, str(EMULATORS / "opennebula"))
sys.path.insert(0, str(EMULATORS / "enstratus"))
import enstratus_testing as es  # noqa: E402
import one_emulator  # noqa: E402

ONE = "accounts/one"
DCM = "accounts/dcm"
LAB = "accounts/lab"
SESSION = "oneadmin:opennebula"
INGRESS = firewalls_pb2.FirewallRule.INGRESS
EGRESS = firewalls_pb2.FirewallRule.EGRESS


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    one_process, one_endpoint = one_emulator.spawn(tmp_path_factory.mktemp("one"))
    dcm = es.EnstratusEmulator(tmp_path_factory.mktemp("dcm")).start()
    os.environ["ONE_AUTH_SOURCES"] = SESSION
    os.environ["DCM_KEYS_SOURCES"] = es.KEYS
    config = (f'accounts {{ id: "one" provider: "opennebula" endpoint: "{one_endpoint}" '
              f'credentials {{ env: "ONE_AUTH_SOURCES" }} }}\n'
              f'accounts {{ id: "dcm" provider: "enstratus" endpoint: "{dcm.url}" '
              f'credentials {{ env: "DCM_KEYS_SOURCES" }} '
              f'options {{ key: "budget" value: "{es.BUDGET}" }} }}\n'
              'accounts { id: "lab" provider: "sandbox" }\n')
    server = Server(tmp_path_factory.mktemp("server"), config).start()
    yield server, xmlrpc.client.ServerProxy(one_endpoint), dcm
    code = server.stop()
    dcm.stop()
    one_process.terminate()
    one_process.wait(timeout=10)
    assert code == 0, server.log()


def finished(server, op, message):
    op = server.wait(op, timeout=30)
    assert not op.HasField("error"), op.error
    out = message()
    assert op.response.Unpack(out)
    return out


def refused(call, request, code):
    err = pytest.raises(grpc.RpcError, call, request).value
    assert err.code() == code, err.details()
    info, bad = error_details(err)
    return (info.reason if info else None,
            [v.field for v in bad.field_violations] if bad else [])


def far_end(rule):
    """Every far-end field of a rule, as plain values."""
    return {
        "ranges": list(rule.source_ranges) + list(rule.destination_ranges),
        "address_ranges": [(r.first_address, r.size) for r in
                           list(rule.source_address_ranges) +
                           list(rule.destination_address_ranges)],
        "firewalls": list(rule.source_firewalls) + list(rule.destination_firewalls),
        "networks": list(rule.source_networks) + list(rule.destination_networks),
    }


def one_rules(proxy, sg_id):
    """The RULE vectors of a security group as oned holds them."""
    ok, body, *_ = proxy.one.secgroup.info(SESSION, sg_id)
    assert ok, body
    return [{c.tag: c.text for c in r} for r in ET.fromstring(body).find("TEMPLATE")
            if r.tag == "RULE"]


def test_no_source_is_refused_naming_the_field(env):
    server, _, _ = env
    fws = server.firewalls()
    for parent in (f"{LAB}/firewalls/x", f"{ONE}/firewalls/default", f"{DCM}/firewalls/116387"):
        reason, fields = refused(fws.CreateFirewallRule, firewalls_pb2.CreateFirewallRuleRequest(
            parent=parent, rule=firewalls_pb2.FirewallRule(protocol="tcp", port_range_start=22)),
            grpc.StatusCode.INVALID_ARGUMENT)
        assert fields == ["rule.source_ranges"], (parent, reason, fields)
    _, fields = refused(fws.CreateFirewallRule, firewalls_pb2.CreateFirewallRuleRequest(
        parent=f"{LAB}/firewalls/x", rule=firewalls_pb2.FirewallRule(
            protocol="udp", port_range_start=53, direction=EGRESS,
            source_ranges=["0.0.0.0/0"])), grpc.StatusCode.INVALID_ARGUMENT)
    assert fields == ["rule.destination_ranges"]
    _, fields = refused(fws.CreateFirewall, firewalls_pb2.CreateFirewallRequest(
        parent=LAB, firewall_id="open", firewall=firewalls_pb2.Firewall(rules=[
            firewalls_pb2.FirewallRule(protocol="tcp", port_range_start=22,
                                       source_ranges=["10.0.0.0/8"]),
            firewalls_pb2.FirewallRule(protocol="icmp")])), grpc.StatusCode.INVALID_ARGUMENT)
    assert fields == ["firewall.rules[1].source_ranges"]


def test_opennebula_network_and_exact_range_read_back_truthfully(env):
    server, proxy, _ = env
    fws = server.firewalls()
    # Behind cloudplane's back, through oned's own XML-RPC.
    ok, sg_id, *_ = proxy.one.secgroup.allocate(
        SESSION, 'NAME="behind"\n'
        'RULE=[PROTOCOL="TCP",RULE_TYPE="INBOUND",RANGE="22",NETWORK_ID="0"]\n'
        'RULE=[PROTOCOL="TCP",RULE_TYPE="INBOUND",RANGE="443",IP="10.0.0.10",SIZE="5"]\n'
        'RULE=[PROTOCOL="UDP",RULE_TYPE="INBOUND",RANGE="53",IP="10.0.0.0",SIZE="256"]\n'
        'RULE=[PROTOCOL="ALL",RULE_TYPE="OUTBOUND"]')
    assert ok, sg_id
    fw = fws.GetFirewall(firewalls_pb2.GetFirewallRequest(name=f"{ONE}/firewalls/behind"))
    by_port = {(r.direction, r.port_range_start): r for r in fw.rules}
    assert len(by_port) == 4, fw.rules
    ssh, https, dns, out = (by_port[(INGRESS, 22)], by_port[(INGRESS, 443)],
                            by_port[(INGRESS, 53)], by_port[(EGRESS, 0)])
    assert far_end(ssh) == {"ranges": [], "address_ranges": [], "firewalls": [],
                            "networks": [f"{ONE}/networks/0"]}
    assert list(ssh.source_networks) == [f"{ONE}/networks/0"]
    # The network it names is one cloudplane serves.
    assert server.networks().GetNetwork(networks_pb2.GetNetworkRequest(
        name=ssh.source_networks[0])).display_name == "private"
    # 10.0.0.10-14 exactly: no covering 10.0.0.8/29 (or anything wider).
    assert far_end(https) == {"ranges": [], "address_ranges": [("10.0.0.10", 5)],
                              "firewalls": [], "networks": []}
    assert list(https.source_address_ranges)[0].first_address == "10.0.0.10"
    # A range that is exactly one block is that CIDR.
    assert far_end(dns)["ranges"] == ["10.0.0.0/24"] and list(dns.source_ranges) == ["10.0.0.0/24"]
    # No target is any address, said explicitly.
    assert list(out.destination_ranges) == ["0.0.0.0/0", "::/0"]
    assert not any(far_end(r) == far_end(firewalls_pb2.FirewallRule()) for r in fw.rules)
    # ListFirewallRules and GetFirewallRule answer the same.
    listed = fws.ListFirewallRules(firewalls_pb2.ListFirewallRulesRequest(parent=fw.name)).rules
    assert sorted(r.name for r in listed) == sorted(r.name for r in fw.rules)
    assert fws.GetFirewallRule(firewalls_pb2.GetFirewallRuleRequest(name=https.name)) == https

    # Through cloudplane: a network (by its name) and an exact range.
    from_net = finished(server, fws.CreateFirewallRule(firewalls_pb2.CreateFirewallRuleRequest(
        parent=fw.name, request_id=str(uuid.uuid4()), rule=firewalls_pb2.FirewallRule(
            protocol="tcp", port_range_start=8080,
            source_networks=[f"{ONE}/networks/private"]))), firewalls_pb2.FirewallRule)
    assert list(from_net.source_networks) == [f"{ONE}/networks/0"] and not from_net.source_ranges
    exact = finished(server, fws.CreateFirewallRule(firewalls_pb2.CreateFirewallRuleRequest(
        parent=fw.name, request_id=str(uuid.uuid4()), rule=firewalls_pb2.FirewallRule(
            protocol="tcp", port_range_start=8443, source_address_ranges=[
                networks_pb2.AddressRange(first_address="10.0.0.20", size=3)]))),
        firewalls_pb2.FirewallRule)
    assert far_end(exact)["address_ranges"] == [("10.0.0.20", 3)]
    anywhere = finished(server, fws.CreateFirewallRule(firewalls_pb2.CreateFirewallRuleRequest(
        parent=fw.name, request_id=str(uuid.uuid4()), rule=firewalls_pb2.FirewallRule(
            protocol="tcp", port_range_start=80, source_ranges=["0.0.0.0/0", "::/0"]))),
        firewalls_pb2.FirewallRule)
    assert list(anywhere.source_ranges) == ["0.0.0.0/0", "::/0"]
    # oned holds exactly that: NETWORK_ID, IP/SIZE, and no target at all.
    rules = {r.get("RANGE"): r for r in one_rules(proxy, sg_id)}
    assert rules["8080"].get("NETWORK_ID") == "0" and "IP" not in rules["8080"]
    assert (rules["8443"].get("IP"), rules["8443"].get("SIZE")) == ("10.0.0.20", "3")
    assert not {"IP", "SIZE", "NETWORK_ID"} & set(rules["80"])

    # What a RULE cannot hold is refused by field, nothing written.
    before = one_rules(proxy, sg_id)
    reason, fields = refused(fws.CreateFirewallRule, firewalls_pb2.CreateFirewallRuleRequest(
        parent=fw.name, rule=firewalls_pb2.FirewallRule(
            protocol="tcp", port_range_start=5432, source_firewalls=[fw.name])),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert reason == "FIELD_UNSUPPORTED" and fields == ["rule.source_firewalls"]
    _, fields = refused(fws.CreateFirewallRule, firewalls_pb2.CreateFirewallRuleRequest(
        parent=fw.name, rule=firewalls_pb2.FirewallRule(
            protocol="tcp", port_range_start=25, source_ranges=["0.0.0.0/0"])),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert fields == ["rule.source_ranges"]  # IPv4 alone would widen to IPv6 too
    refused(fws.CreateFirewallRule, firewalls_pb2.CreateFirewallRuleRequest(
        parent=fw.name, rule=firewalls_pb2.FirewallRule(
            protocol="tcp", port_range_start=25, source_networks=[f"{ONE}/networks/nope"])),
        grpc.StatusCode.NOT_FOUND)
    assert one_rules(proxy, sg_id) == before

    finished(server, fws.DeleteFirewall(firewalls_pb2.DeleteFirewallRequest(name=fw.name)),
             empty_pb2.Empty)
    ok, *_ = proxy.one.secgroup.info(SESSION, sg_id)
    assert not ok


def dcm_job(dcm, job_id):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        _, body, _ = dcm.request("GET", f"admin/Job/{job_id}")
        job = body["jobs"][0]
        if job["status"] != "RUNNING":
            return job
        time.sleep(0.05)
    raise TimeoutError(f"DCM job {job_id}")


def test_enstratus_firewall_sources(env):
    server, _, dcm = env
    fws = server.firewalls()
    # Behind cloudplane's back: a firewall "db", and rules on the default
    # firewall whose sources are db (GLOBAL) and one server (VM).
    status, body, _ = dcm.request("POST", "network/Firewall", {"addFirewall": [{
        "budget": es.BUDGET, "region": {"regionId": es.REGION}, "name": "db",
        "description": "made outside cloudplane"}]})
    assert status == 202, body
    job = dcm_job(dcm, body["jobs"][0]["jobId"])
    assert job["status"] == "COMPLETE", job
    db_id = int(job["message"])

    def add_rule(source_type, source, port):
        status, body, _ = dcm.request("POST", "network/FirewallRule", {"addRule": [{
            "firewallId": 116387, "source": source, "sourceType": source_type,
            "destination": "116387", "destinationType": "GLOBAL", "direction": "INGRESS",
            "permission": "ALLOW", "protocol": "TCP", "startPort": port, "endPort": port}]})
        assert status == 201, body
        return body["rules"][0]["firewallRuleId"]

    from_db = add_rule("GLOBAL", str(db_id), 5432)
    from_vm = add_rule("VM", "331810", 8080)
    rules = {r.name.rsplit("/", 1)[1]: r for r in fws.ListFirewallRules(
        firewalls_pb2.ListFirewallRulesRequest(parent=f"{DCM}/firewalls/116387")).rules}
    db_rule, vm_rule = rules[str(from_db)], rules[str(from_vm)]
    assert far_end(db_rule) == {"ranges": [], "address_ranges": [],
                                "firewalls": [f"{DCM}/firewalls/{db_id}"], "networks": []}
    assert list(db_rule.source_firewalls) == [f"{DCM}/firewalls/{db_id}"]
    # A source the API cannot name: said in words, no field that reads as anywhere.
    assert far_end(vm_rule) == far_end(firewalls_pb2.FirewallRule())
    assert vm_rule.description == "source VM 331810"
    # The seeded rule keeps its CIDR.
    assert list(rules["3706471"].source_ranges) == ["217.240.165.28/32"]
    assert fws.GetFirewallRule(firewalls_pb2.GetFirewallRuleRequest(name=db_rule.name)) == db_rule

    # Through cloudplane: a firewall "web" whose rule's source is db, and a
    # rule on db whose source is web (named by its alias).
    web = finished(server, fws.CreateFirewall(firewalls_pb2.CreateFirewallRequest(
        parent=DCM, firewall_id="web", request_id=str(uuid.uuid4()),
        firewall=firewalls_pb2.Firewall(display_name="web",
                                        location=f"{DCM}/locations/region-{es.REGION}"))),
        firewalls_pb2.Firewall)
    web_id = int(web.provider_details.fields["firewallId"].number_value)
    request = firewalls_pb2.CreateFirewallRuleRequest(
        parent=web.name, request_id=str(uuid.uuid4()), rule=firewalls_pb2.FirewallRule(
            protocol="tcp", port_range_start=5432, source_firewalls=[f"{DCM}/firewalls/{db_id}"]))
    rule = finished(server, fws.CreateFirewallRule(request), firewalls_pb2.FirewallRule)
    assert list(rule.source_firewalls) == [f"{DCM}/firewalls/{db_id}"] and not rule.source_ranges
    back = finished(server, fws.CreateFirewallRule(firewalls_pb2.CreateFirewallRuleRequest(
        parent=f"{DCM}/firewalls/{db_id}", request_id=str(uuid.uuid4()),
        rule=firewalls_pb2.FirewallRule(protocol="tcp", port_range_start=9000,
                                        source_firewalls=[web.name]))),
        firewalls_pb2.FirewallRule)
    assert list(back.source_firewalls) == [web.name]
    # DCM holds GLOBAL sources by id.
    _, body, _ = dcm.request("GET", f"network/FirewallRule?firewallId={web_id}")
    assert [(r["sourceType"], r["source"], r["destination"]) for r in body["rules"]] == \
        [("GLOBAL", str(db_id), str(web_id))]
    _, body, _ = dcm.request("GET", f"network/FirewallRule?firewallId={db_id}")
    assert [(r["sourceType"], r["source"]) for r in body["rules"]] == [("GLOBAL", str(web_id))]
    # The same rule again adds none.
    request.request_id = str(uuid.uuid4())
    assert finished(server, fws.CreateFirewallRule(request), firewalls_pb2.FirewallRule) == rule
    _, body, _ = dcm.request("GET", f"network/FirewallRule?firewallId={web_id}")
    assert len(body["rules"]) == 1

    # What DCM's rules cannot hold is refused by field, before anything is sent.
    reason, fields = refused(fws.CreateFirewallRule, firewalls_pb2.CreateFirewallRuleRequest(
        parent=web.name, rule=firewalls_pb2.FirewallRule(
            protocol="tcp", port_range_start=22, source_networks=[f"{DCM}/networks/1"])),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert reason == "FIELD_UNSUPPORTED" and fields == ["rule.source_networks"]
    _, fields = refused(fws.CreateFirewallRule, firewalls_pb2.CreateFirewallRuleRequest(
        parent=web.name, rule=firewalls_pb2.FirewallRule(
            protocol="tcp", port_range_start=22, source_ranges=["10.0.0.0/8"],
            source_firewalls=[f"{DCM}/firewalls/{db_id}"])), grpc.StatusCode.INVALID_ARGUMENT)
    assert fields == ["rule.source_firewalls"]
    refused(fws.CreateFirewallRule, firewalls_pb2.CreateFirewallRuleRequest(
        parent=web.name, rule=firewalls_pb2.FirewallRule(
            protocol="tcp", port_range_start=22, source_firewalls=[f"{DCM}/firewalls/ghost"])),
        grpc.StatusCode.NOT_FOUND)
