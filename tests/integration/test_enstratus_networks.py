"""End to end through the real server against the enStratus / DCM emulator:
networks (issue 14). CreateNetwork is DCM's addNetwork job, the network is
listed and read back with its CIDR, region, label and DNS servers, DeleteNetwork
is a DCM job, and the emulator holds no network at the end. Key pairs: DCM's
API has none, so the key-pair methods are not supported."""
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
