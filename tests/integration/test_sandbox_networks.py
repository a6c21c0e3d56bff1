"""Networks, addresses, key pairs and network interfaces end to end: the real
server on its embedded sandbox provider, through the generated Python
client (issue 14)."""
import uuid

import grpc
import pytest

from cloudplane_testing import (Server, accounts_pb2, compute_pb2, error_details, networks_pb2)

SANDBOX_CONFIG = """
accounts {
  id: "sandbox"
  provider: "sandbox"
  options { key: "transition_ms" value: "150" }
}
"""

ACCOUNT = "accounts/sandbox"
NETWORK = f"{ACCOUNT}/networks/private"
INSTANCE = f"{ACCOUNT}/instances/web-1"
# `ssh-keygen -t ed25519 -C ops@lab`, and what `ssh-keygen -l` prints for it.
PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINMXluj8/yr1EA8sAULEkCOUp1j1auaBVJk/Rky2Wf6m "
              "ops@lab")
FINGERPRINT = "SHA256:Tg4iyGEOmZ1J0QxIJvCUN1iWmekuR1HMi6wYA3GZPuQ"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("sandbox-networks"), SANDBOX_CONFIG).start()
    yield srv
    assert srv.stop() == 0, srv.log()


def done_response(server, op, message_type):
    op = server.wait(op)
    assert not op.HasField("error"), op.error
    out = message_type()
    assert op.response.Unpack(out)
    return out


def expect_error(code, call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kwargs)
    assert err.value.code() == code, err.value.details()
    return err.value


def rid():
    return str(uuid.uuid4())


def test_capabilities_list_the_new_methods_and_fields(server):
    account = server.accounts().GetAccount(accounts_pb2.GetAccountRequest(name=ACCOUNT))
    capabilities = {c.method: c for c in account.capabilities}
    for method in ("NetworksService.CreateNetwork", "NetworksService.ReserveAddress",
                   "ComputeService.AttachNetworkInterface", "ComputeService.CreateKeyPair"):
        assert capabilities[f"cloudplane.v1.{method}"].supported, method
    create = capabilities["cloudplane.v1.ComputeService.CreateInstance"].honoured_fields
    assert {"instance.key_name", "instance.network_interfaces.network",
            "instance.network_interfaces.address", "instance.network_interfaces.mac_address",
            "instance.network_interfaces.model",
            "instance.network_interfaces.firewall"} <= set(create)


def test_network_instance_with_static_address_and_key_then_cleanup(server):
    compute, networks = server.compute(), server.networks()

    key = done_response(server, compute.CreateKeyPair(compute_pb2.CreateKeyPairRequest(
        parent=ACCOUNT, key_pair_id="ops", request_id=rid(),
        key_pair=compute_pb2.KeyPair(public_key=PUBLIC_KEY))), compute_pb2.KeyPair)
    assert key.fingerprint == FINGERPRINT

    # A malformed range is refused naming the field, before anything is made.
    err = expect_error(grpc.StatusCode.INVALID_ARGUMENT, networks.CreateNetwork,
                       networks_pb2.CreateNetworkRequest(
                           parent=ACCOUNT, network_id="private", request_id=rid(),
                           network=networks_pb2.Network(cidr_ranges=["10.20.0.1/24"])))
    _, bad = error_details(err)
    assert [v.field for v in bad.field_violations] == ["network.cidr_ranges[0]"]

    op = networks.CreateNetwork(networks_pb2.CreateNetworkRequest(
        parent=ACCOUNT, network_id="private", request_id=rid(),
        network=networks_pb2.Network(display_name="Private", cidr_ranges=["10.20.0.0/24"],
                                     gateway="10.20.0.1", vlan_id=42)))
    network = done_response(server, op, networks_pb2.Network)
    assert network.name == NETWORK
    assert network.state == networks_pb2.Network.READY
    assert network.vlan_id == 42

    address = done_response(server, networks.ReserveAddress(networks_pb2.ReserveAddressRequest(
        parent=ACCOUNT, request_id=rid(),
        # address.name: the server's request check asks for it (ReserveAddress
        # is taken for an update); the sandbox takes it as the address.
        address=networks_pb2.Address(name=f"{ACCOUNT}/addresses/10.20.0.10", network=NETWORK,
                                     address="10.20.0.10"))),
        networks_pb2.Address)
    assert address.name == f"{ACCOUNT}/addresses/10.20.0.10"
    assert address.state == networks_pb2.Address.RESERVED

    def instance_request(key_name):
        return compute_pb2.CreateInstanceRequest(
            parent=ACCOUNT, instance_id="web-1", request_id=rid(),
            instance=compute_pb2.Instance(
                image=f"{ACCOUNT}/images/debian-12", key_name=key_name,
                network_interfaces=[compute_pb2.NetworkInterface(network=NETWORK,
                                                                 address="10.20.0.10")]))

    expect_error(grpc.StatusCode.NOT_FOUND, compute.CreateInstance, instance_request("nokey"))
    assert server.compute().ListInstances(
        compute_pb2.ListInstancesRequest(parent=ACCOUNT)).instances == []
    done_response(server, compute.CreateInstance(instance_request("ops")), compute_pb2.Instance)

    instance = compute.GetInstance(compute_pb2.GetInstanceRequest(name=INSTANCE))
    assert instance.state == compute_pb2.Instance.RUNNING
    assert len(instance.network_interfaces) == 1
    nic = instance.network_interfaces[0]
    assert (nic.id, nic.network, nic.address, nic.model) == ("0", NETWORK, "10.20.0.10", "virtio")
    assert nic.mac_address.startswith("02:00:") and len(nic.mac_address) == 17
    assert list(instance.ip_addresses) == ["10.20.0.10"]

    used = networks.GetAddress(networks_pb2.GetAddressRequest(name=address.name))
    assert used.state == networks_pb2.Address.IN_USE
    assert used.instance == INSTANCE
    expect_error(grpc.StatusCode.FAILED_PRECONDITION, networks.ReleaseAddress,
                 networks_pb2.ReleaseAddressRequest(name=address.name, request_id=rid()))
    expect_error(grpc.StatusCode.FAILED_PRECONDITION, networks.DeleteNetwork,
                 networks_pb2.DeleteNetworkRequest(name=NETWORK, request_id=rid()))

    # A second interface: the next free address (the gateway is skipped).
    attached = done_response(server, compute.AttachNetworkInterface(
        compute_pb2.AttachNetworkInterfaceRequest(
            name=INSTANCE, request_id=rid(),
            network_interface=compute_pb2.NetworkInterface(network=NETWORK, model="e1000"))),
        compute_pb2.Instance)
    assert [(n.id, n.address, n.model) for n in attached.network_interfaces] == [
        ("0", "10.20.0.10", "virtio"), ("1", "10.20.0.2", "e1000")]
    second = networks.GetAddress(networks_pb2.GetAddressRequest(
        name=f"{ACCOUNT}/addresses/10.20.0.2"))
    assert (second.state, second.instance) == (networks_pb2.Address.IN_USE, INSTANCE)
    assert networks.GetNetwork(networks_pb2.GetNetworkRequest(name=NETWORK)).used_addresses == 2

    detached = done_response(server, compute.DetachNetworkInterface(
        compute_pb2.DetachNetworkInterfaceRequest(name=INSTANCE, network_interface_id="1",
                                                  request_id=rid())), compute_pb2.Instance)
    assert [n.id for n in detached.network_interfaces] == ["0"]
    expect_error(grpc.StatusCode.NOT_FOUND, networks.GetAddress,
                 networks_pb2.GetAddressRequest(name=f"{ACCOUNT}/addresses/10.20.0.2"))

    # Delete everything; the reserved address outlives the instance.
    server.wait(compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
        name=INSTANCE, request_id=rid())))
    back = networks.GetAddress(networks_pb2.GetAddressRequest(name=address.name))
    assert (back.state, back.instance) == (networks_pb2.Address.RESERVED, "")
    server.wait(networks.ReleaseAddress(networks_pb2.ReleaseAddressRequest(
        name=address.name, request_id=rid())))
    op = server.wait(networks.DeleteNetwork(networks_pb2.DeleteNetworkRequest(
        name=NETWORK, request_id=rid())))
    assert not op.HasField("error"), op.error
    server.wait(compute.DeleteKeyPair(compute_pb2.DeleteKeyPairRequest(
        name=key.name, request_id=rid())))

    assert compute.ListInstances(compute_pb2.ListInstancesRequest(parent=ACCOUNT)).instances == []
    assert networks.ListNetworks(networks_pb2.ListNetworksRequest(parent=ACCOUNT)).networks == []
    assert networks.ListAddresses(
        networks_pb2.ListAddressesRequest(parent=ACCOUNT)).addresses == []
    assert compute.ListKeyPairs(compute_pb2.ListKeyPairsRequest(parent=ACCOUNT)).key_pairs == []
