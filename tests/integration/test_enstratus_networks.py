"""End to end through the real server against the enStratus / DCM emulator:
networks (issue 14). CreateNetwork is DCM's addNetwork job, the network is
listed and read back with its CIDR, region, label and DNS servers, DeleteNetwork
is a DCM job, and the emulator holds no network at the end. An instance is
launched on a network (mixcoatl's `"network":{"networkId":N}`) and shows it
as its one interface; anything else in an interface, or a second one, is
refused before DCM hears of it. Key pairs: DCM's API has none, so the
key-pair methods are not supported."""
import ipaddress
import os
import pathlib
import sys
import uuid

import grpc
import pytest

from cloudplane_testing import (Server, accounts_pb2, common_pb2, compute_pb2,  # noqa: E402
                                error_details, networks_pb2)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "emulators" / "enstratus"))
import enstratus_testing as es  # noqa: E402

ACCOUNT = "accounts/dcmnet"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    emu = es.EnstratusEmulator(tmp_path_factory.mktemp("enstratus-net"), job_seconds=0.2,
                               boot_seconds=0.2).start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, emulator):
    os.environ["ENSTRATUS_NET_KEYS"] = es.KEYS
    config = f"""
accounts {{
  id: "dcmnet" provider: "enstratus" endpoint: "{emulator.url}"
  credentials {{ env: "ENSTRATUS_NET_KEYS" }}
  options {{ key: "budget" value: "{es.BUDGET}" }}
}}
"""
    srv = Server(tmp_path_factory.mktemp("enstratus-net-server"), config).start()
    yield srv
    assert srv.stop() == 0, srv.log()
    assert es.SECRET_KEY not in srv.log()


def dcm_networks(emulator):
    status, body, _ = emulator.request("GET", "network/Network?activeOnly=false")
    assert status == 200, body
    return body["networks"]


def test_network_create_list_get_delete(server, emulator):
    nets = server.networks()
    assert dcm_networks(emulator) == []
    op = nets.CreateNetwork(networks_pb2.CreateNetworkRequest(
        parent=ACCOUNT, request_id=str(uuid.uuid4()),
        network=networks_pb2.Network(
            display_name="backend", cidr_ranges=["10.50.0.0/16"], dns_servers=["10.50.0.2"],
            location=f"{ACCOUNT}/locations/region-{es.REGION}", labels={"label": "green"})),
        timeout=10)
    md = common_pb2.OperationMetadata()
    assert op.metadata.Unpack(md) and md.provider_operation.isdigit(), op  # the DCM job
    done = server.wait(op)
    assert not done.HasField("error"), done.error
    net = networks_pb2.Network()
    assert done.response.Unpack(net)
    # DCM names the network: its networkId.
    (record,) = dcm_networks(emulator)
    assert net.name == f"{ACCOUNT}/networks/{record['networkId']}"
    assert (record["name"], record["networkAddress"], record["label"], record["dnsServers"],
            record["region"], record["budget"]) == (
        "backend", "10.50.0.0/16", "green", ["10.50.0.2"], {"regionId": es.REGION}, es.BUDGET)
    assert net.state == networks_pb2.Network.READY and net.provider_state == "ACTIVE"
    assert list(net.cidr_ranges) == ["10.50.0.0/16"] and list(net.dns_servers) == ["10.50.0.2"]
    assert net.location == f"{ACCOUNT}/locations/region-{es.REGION}"
    assert dict(net.labels) == {"label": "green"} and net.display_name == "backend"
    assert net.provider_details["networkId"] == record["networkId"]
    assert net.provider_details["description"] == "backend"  # without the re-drive tag

    listed = nets.ListNetworks(networks_pb2.ListNetworksRequest(parent=ACCOUNT), timeout=10)
    assert [n.name for n in listed.networks] == [net.name]
    got = nets.GetNetwork(networks_pb2.GetNetworkRequest(name=net.name), timeout=10)
    assert got.cidr_ranges == net.cidr_ranges and got.labels == net.labels

    op = nets.DeleteNetwork(networks_pb2.DeleteNetworkRequest(
        name=net.name, request_id=str(uuid.uuid4())), timeout=10)
    done = server.wait(op)
    assert not done.HasField("error"), done.error
    with pytest.raises(grpc.RpcError) as err:
        nets.GetNetwork(networks_pb2.GetNetworkRequest(name=net.name), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert dcm_networks(emulator) == []
    sent = [(r["method"], r["path"].split("?")[0]) for r in emulator.requests_log()]
    assert ("POST", f"{emulator.basepath}/network/Network") in sent
    assert ("DELETE", f"{emulator.basepath}/network/Network/{record['networkId']}") in sent


def test_bad_networks_are_refused_naming_the_field(server, emulator):
    nets = server.networks()
    for network, field in (
            (networks_pb2.Network(cidr_ranges=["10.50.0.1/16"],
                                  location=f"{ACCOUNT}/locations/region-{es.REGION}"),
             "network.cidr_ranges"),
            (networks_pb2.Network(cidr_ranges=["10.50.0.0/16"],
                                  location=f"{ACCOUNT}/locations/dc-{es.DATACENTER}"),
             "network.location"),
            (networks_pb2.Network(cidr_ranges=["10.50.0.0/16"], gateway="10.50.0.1",
                                  location=f"{ACCOUNT}/locations/region-{es.REGION}"),
             "network.gateway")):
        with pytest.raises(grpc.RpcError) as err:
            nets.CreateNetwork(networks_pb2.CreateNetworkRequest(
                parent=ACCOUNT, request_id=str(uuid.uuid4()), network=network), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        _, bad = error_details(err.value)
        assert field in [v.field for v in bad.field_violations], bad
    assert dcm_networks(emulator) == []


def test_key_pairs_and_network_updates_are_not_supported(server):
    account = server.accounts().GetAccount(accounts_pb2.GetAccountRequest(name=ACCOUNT),
                                           timeout=10)
    supported = {c.method for c in account.capabilities if c.supported}
    assert "cloudplane.v1.NetworksService.CreateNetwork" in supported
    assert "cloudplane.v1.NetworksService.UpdateNetwork" not in supported
    assert not {m for m in supported if "KeyPair" in m}
    with pytest.raises(grpc.RpcError) as err:
        server.compute().ListKeyPairs(compute_pb2.ListKeyPairsRequest(parent=ACCOUNT), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def create_network(server, cidr):
    op = server.networks().CreateNetwork(networks_pb2.CreateNetworkRequest(
        parent=ACCOUNT, request_id=str(uuid.uuid4()),
        network=networks_pb2.Network(display_name="apps", cidr_ranges=[cidr],
                                     location=f"{ACCOUNT}/locations/region-{es.REGION}")),
        timeout=10)
    done = server.wait(op)
    assert not done.HasField("error"), done.error
    net = networks_pb2.Network()
    assert done.response.Unpack(net)
    return net


def launch_request(interfaces, instance_id="on-net"):
    return compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id=instance_id, request_id=str(uuid.uuid4()),
        instance=compute_pb2.Instance(
            display_name=instance_id, image=f"{ACCOUNT}/images/{es.IMAGE}",
            machine_type=f"{ACCOUNT}/machineTypes/{es.PRODUCT}",
            location=f"{ACCOUNT}/locations/dc-{es.DATACENTER}",
            network_interfaces=interfaces))


def dcm_servers(emulator):
    status, body, _ = emulator.request("GET", "infrastructure/Server")
    assert status == 200, body
    return body["servers"]


def test_instance_launched_on_a_network(server, emulator):
    net = create_network(server, "10.61.0.0/24")
    net_id = int(net.name.rsplit("/", 1)[1])
    compute = server.compute()
    op = compute.CreateInstance(launch_request(
        [compute_pb2.NetworkInterface(network=net.name)]), timeout=10)
    done = server.wait(op)
    assert not done.HasField("error"), done.error
    inst = compute_pb2.Instance()
    assert done.response.Unpack(inst)
    assert inst.name == f"{ACCOUNT}/instances/on-net"
    # The interface holds what DCM says: the network, nothing invented.
    assert list(inst.network_interfaces) == [compute_pb2.NetworkInterface(network=net.name)]
    got = compute.GetInstance(compute_pb2.GetInstanceRequest(name=inst.name), timeout=10)
    assert list(got.network_interfaces) == [compute_pb2.NetworkInterface(network=net.name)]
    # At DCM: the launch carried the network; the server's address is on it.
    (record,) = [s for s in dcm_servers(emulator) if s["name"] == "on-net"]
    assert record["network"] == {"networkId": net_id}
    assert [ip for ip in got.ip_addresses
            if ipaddress.ip_address(ip) in ipaddress.ip_network("10.61.0.0/24")] == \
        record["privateIpAddresses"]
    listed = compute.ListInstances(compute_pb2.ListInstancesRequest(parent=ACCOUNT), timeout=10)
    (mine,) = [i for i in listed.instances if i.name == inst.name]
    assert list(mine.network_interfaces) == list(got.network_interfaces)

    # DCM keeps a network with a server on it (409).
    with pytest.raises(grpc.RpcError) as err:
        server.wait(server.networks().DeleteNetwork(networks_pb2.DeleteNetworkRequest(
            name=net.name, request_id=str(uuid.uuid4())), timeout=10))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value.details()

    done = server.wait(compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
        name=inst.name, request_id=str(uuid.uuid4())), timeout=10))
    assert not done.HasField("error"), done.error
    done = server.wait(server.networks().DeleteNetwork(networks_pb2.DeleteNetworkRequest(
        name=net.name, request_id=str(uuid.uuid4())), timeout=10))
    assert not done.HasField("error"), done.error
    assert dcm_servers(emulator) == [] and dcm_networks(emulator) == []


def test_other_interface_fields_are_refused_before_dcm(server, emulator):
    net = create_network(server, "10.62.0.0/24")
    compute = server.compute()
    sent_before = len(emulator.requests_log())
    nic = compute_pb2.NetworkInterface
    cases = (
        # The server's field contract: fields the adapter does not honour
        # (paths without an index, as the contract names them).
        ([nic(network=net.name, address="10.62.0.9")], "instance.network_interfaces.address",
         "FIELD_UNSUPPORTED"),
        ([nic(network=net.name, mac_address="02:00:00:00:00:01")],
         "instance.network_interfaces.mac_address", "FIELD_UNSUPPORTED"),
        ([nic(network=net.name, model="virtio")], "instance.network_interfaces.model",
         "FIELD_UNSUPPORTED"),
        ([nic(network=net.name, firewall=f"{ACCOUNT}/firewalls/116387")],
         "instance.network_interfaces.firewall", "FIELD_UNSUPPORTED"),
        # The adapter: one interface, and it names a network of the account.
        ([nic(network=net.name), nic(network=net.name)], "instance.network_interfaces[1]",
         None),
        ([nic(network="accounts/other/networks/1")], "instance.network_interfaces[0].network",
         None),
        ([nic(network=f"{ACCOUNT}/networks/apps")], "instance.network_interfaces[0].network",
         None),
    )
    for interfaces, field, reason in cases:
        with pytest.raises(grpc.RpcError) as err:
            compute.CreateInstance(launch_request(interfaces, "refused"), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        info, bad = error_details(err.value)
        assert [v.field for v in bad.field_violations] == [field], bad
        if reason is not None:
            assert info.reason == reason, info
    # Nothing reached DCM: no launch, not even the product lookup that
    # precedes it (the server's observer may list servers meanwhile).
    later = emulator.requests_log()[sent_before:]
    assert not [r for r in later if r["method"] != "GET" or "ServerProduct" in r["path"]], later
    assert dcm_servers(emulator) == []

    # A network DCM does not know: DCM's own refusal (400 "No such network").
    with pytest.raises(grpc.RpcError) as err:
        server.wait(compute.CreateInstance(launch_request(
            [nic(network=f"{ACCOUNT}/networks/99999")], "lost"), timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert "No such network: 99999" in err.value.details()
    assert dcm_servers(emulator) == []
    done = server.wait(server.networks().DeleteNetwork(networks_pb2.DeleteNetworkRequest(
        name=net.name, request_id=str(uuid.uuid4())), timeout=10))
    assert not done.HasField("error"), done.error


def test_capabilities_publish_the_interface_network_only(server):
    account = server.accounts().GetAccount(accounts_pb2.GetAccountRequest(name=ACCOUNT),
                                           timeout=10)
    (create,) = [c for c in account.capabilities
                 if c.method == "cloudplane.v1.ComputeService.CreateInstance"]
    assert [f for f in create.honoured_fields if "network_interfaces" in f] == [
        "instance.network_interfaces.network"]
