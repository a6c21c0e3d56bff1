"""End to end (issue 14): networks, addresses, key pairs and network
interfaces through the real server against the OpenNebula XML-RPC emulator.
What the API cannot show (the VM's CONTEXT, the emulator's leases) is read
straight from the emulator over XML-RPC."""
import base64
import hashlib
import os
import pathlib
import sys
import uuid
import xml.etree.ElementTree as ET
import xmlrpc.client

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2
from google.rpc import error_details_pb2

from cloudplane_testing import Server, compute_pb2, error_details, networks_pb2

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "emulators" /
                       "opennebula"))
import one_emulator  # noqa: E402

ACCOUNT = "accounts/one"
SESSION = "oneadmin:opennebula"
KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHz9mQ0ZK8Vd2r3b0yq3Jm4xGzJm6yJ1M6cY0bY0k5Qp "
       "ops")
USER_DATA = "#cloud-config\nruncmd: [touch /run/net-vm]\n"
ENDPOINT = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("one-net")
    process, endpoint = one_emulator.spawn(workdir, step_delay=0.05)
    ENDPOINT["url"] = endpoint
    os.environ["ONE_AUTH_NET_TEST"] = SESSION
    config = (f'accounts {{ id: "one" provider: "opennebula" endpoint: "{endpoint}" '
              f'credentials {{ env: "ONE_AUTH_NET_TEST" }} }}\n')
    srv = Server(tmp_path_factory.mktemp("one-net-server"), config).start()
    yield srv
    code = srv.stop()
    process.terminate()
    process.wait(timeout=10)
    assert code == 0, srv.log()


def one(method, *params):
    """A call straight to the emulator; the result (item 1)."""
    ok, result = getattr(xmlrpc.client.ServerProxy(ENDPOINT["url"]), method)(SESSION,
                                                                             *params)[:2]
    assert ok, result
    return result


def done(server, op):
    op = server.wait(op, timeout=30)
    assert not op.HasField("error"), op.error
    return op


def unpack(op, message):
    out = message()
    assert op.response.Unpack(out), op.response
    return out


def rid():
    return str(uuid.uuid4())


def failure(server, call, request):
    """(status code, violated fields) of a mutation that must fail, whether
    the server refuses it at once or its Operation ends in the error."""
    try:
        op = call(request)
    except grpc.RpcError as err:
        _, bad = error_details(err)
        return err.code(), [v.field for v in bad.field_violations] if bad else []
    op = server.wait(op, timeout=30)
    assert op.HasField("error"), op
    fields = []
    for detail in op.error.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    code = next(c for c in grpc.StatusCode if c.value[0] == op.error.code)
    return code, fields


def emulator_counts():
    """(VMs not DONE, VNETs, held or used leases) at the emulator."""
    vms = ET.fromstring(one("one.vmpool.info", -2, -1, -1, -1)).findall("VM")
    vnets = ET.fromstring(one("one.vnpool.info", -2, -1, -1)).findall("VNET")
    leases = 0
    for n in vnets:
        doc = ET.fromstring(one("one.vn.info", int(n.findtext("ID"))))
        leases += len(doc.findall("AR_POOL/AR/LEASES/LEASE"))
    return len(vms), [n.findtext("NAME") for n in vnets], leases


def test_network_instance_nics_and_keys_end_to_end(server):
    compute, networks = server.compute(), server.networks()
    before = emulator_counts()
    assert before == (0, ["private"], 0)

    # A network with one address range, exactly as given (never a CIDR).
    op = networks.CreateNetwork(networks_pb2.CreateNetworkRequest(
        parent=ACCOUNT, network_id="lab-net", request_id=rid(),
        network=networks_pb2.Network(
            address_ranges=[networks_pb2.AddressRange(first_address="192.168.50.10", size=5)],
            cidr_ranges=["192.168.50.0/24"], gateway="192.168.50.1",
            dns_servers=["192.168.50.2", "192.168.50.3"], vlan_id=42,
            labels={"team": "ops"})))
    net = unpack(done(server, op), networks_pb2.Network)
    assert net.name == f"{ACCOUNT}/networks/lab-net"
    assert [(r.first_address, r.size) for r in net.address_ranges] == [("192.168.50.10", 5)]
    assert list(net.cidr_ranges) == ["192.168.50.0/24"]
    assert (net.gateway, list(net.dns_servers), net.vlan_id) == (
        "192.168.50.1", ["192.168.50.2", "192.168.50.3"], 42)
    assert net.labels == {"team": "ops"} and net.state == networks_pb2.Network.READY
    assert net.provider_details["vnMad"] == "bridge"
    got = networks.GetNetwork(networks_pb2.GetNetworkRequest(name=net.name))
    assert got.address_ranges == net.address_ranges and got.gateway == "192.168.50.1"
    listed = networks.ListNetworks(networks_pb2.ListNetworksRequest(parent=ACCOUNT))
    assert [n.name for n in listed.networks] == [net.name, f"{ACCOUNT}/networks/private"]

    # The same NAME again is ALREADY_EXISTS; nothing is allocated.
    code, _ = failure(server, networks.CreateNetwork, networks_pb2.CreateNetworkRequest(
        parent=ACCOUNT, network_id="lab-net", request_id=rid(),
        network=networks_pb2.Network(
            address_ranges=[networks_pb2.AddressRange(first_address="10.9.0.1", size=2)])))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert emulator_counts()[1] == ["private", "lab-net"]

    # Update the gateway (merge).
    op = networks.UpdateNetwork(networks_pb2.UpdateNetworkRequest(
        network=networks_pb2.Network(name=net.name, gateway="192.168.50.254"),
        update_mask=field_mask_pb2.FieldMask(paths=["gateway"]), request_id=rid()))
    assert unpack(done(server, op), networks_pb2.Network).gateway == "192.168.50.254"

    # A key pair: a line of the user's SSH_PUBLIC_KEY, named by its comment.
    op = compute.CreateKeyPair(compute_pb2.CreateKeyPairRequest(
        parent=ACCOUNT, request_id=rid(), key_pair=compute_pb2.KeyPair(public_key=KEY)))
    key = unpack(done(server, op), compute_pb2.KeyPair)
    assert key.name == f"{ACCOUNT}/keyPairs/ops" and key.fingerprint.startswith("SHA256:")
    user = ET.fromstring(one("one.user.info", -1))
    assert user.findtext("TEMPLATE/SSH_PUBLIC_KEY") == KEY
    keys = compute.ListKeyPairs(compute_pb2.ListKeyPairsRequest(parent=ACCOUNT))
    assert [k.name for k in keys.key_pairs] == [key.name]

    # Hold an address, see it as RESERVED.
    net_id = int(net.provider_details["id"])
    op = networks.ReserveAddress(networks_pb2.ReserveAddressRequest(
        parent=ACCOUNT, request_id=rid(),
        address=networks_pb2.Address(network=net.name, address="192.168.50.14")))
    held = unpack(done(server, op), networks_pb2.Address)
    assert held.name == f"{ACCOUNT}/addresses/{net_id}-192.168.50.14"
    assert held.state == networks_pb2.Address.RESERVED
    # Holding it twice is the caller's mistake, named.
    assert failure(server, networks.ReserveAddress, networks_pb2.ReserveAddressRequest(
        parent=ACCOUNT, request_id=rid(),
        address=networks_pb2.Address(network=net.name, address="192.168.50.14"))) == (
            grpc.StatusCode.INVALID_ARGUMENT, ["address.address"])

    # An instance on the network with a static address, the key and user
    # data, sized.
    op = compute.CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="net-vm", request_id=rid(),
        instance=compute_pb2.Instance(
            image=f"{ACCOUNT}/images/1", key_name=key.name, cpu_count=2,
            memory_bytes=512 << 20, user_data=USER_DATA,
            network_interfaces=[compute_pb2.NetworkInterface(
                network=net.name, address="192.168.50.11", model="virtio")])))
    vm = unpack(done(server, op), compute_pb2.Instance)
    assert (vm.cpu_count, vm.memory_bytes) == (2, 512 << 20)
    assert [(n.id, n.network, n.address, n.model) for n in vm.network_interfaces] == [
        ("0", net.name, "192.168.50.11", "virtio")]
    assert vm.network_interfaces[0].mac_address == "02:00:c0:a8:32:0b"
    vm = compute.GetInstance(compute_pb2.GetInstanceRequest(name=vm.name))
    assert [(n.id, n.address) for n in vm.network_interfaces] == [("0", "192.168.50.11")]
    vm_doc = ET.fromstring(one("one.vm.info", int(vm.provider_details["id"])))
    assert vm_doc.findtext("TEMPLATE/CONTEXT/SSH_PUBLIC_KEY") == KEY
    # The user data is in the CONTEXT as the guest's context packages and
    # cloud-init read it: USER_DATA in base64, USERDATA_ENCODING="base64".
    assert base64.b64decode(vm_doc.findtext("TEMPLATE/CONTEXT/USER_DATA")) == USER_DATA.encode()
    assert vm_doc.findtext("TEMPLATE/CONTEXT/USERDATA_ENCODING") == "base64"
    # Get shows its digest, never the data, and the VM's own fields.
    assert not vm.user_data
    details = vm.provider_details
    assert details["userDataSha256"] == hashlib.sha256(USER_DATA.encode()).hexdigest()
    assert "USER_DATA" not in details["context"]
    assert details["context"]["SSH_PUBLIC_KEY"] == KEY
    assert details["context"]["ETH0_IP"] == "192.168.50.11"  # oned's, from the NIC
    assert (details["uname"], details["lcmStateName"]) == ("oneadmin", "RUNNING")
    assert details["hostname"] == vm_doc.findtext("HISTORY_RECORDS/HISTORY[last()]/HOSTNAME")
    assert USER_DATA not in str(details) and "runcmd" not in str(details)
    # The lease shows as an address in use by the instance.
    addr = networks.GetAddress(networks_pb2.GetAddressRequest(
        name=f"{ACCOUNT}/addresses/{net_id}-192.168.50.11"))
    assert addr.state == networks_pb2.Address.IN_USE and addr.instance == vm.name
    listed = networks.ListAddresses(networks_pb2.ListAddressesRequest(parent=ACCOUNT))
    assert sorted((a.address, a.state) for a in listed.addresses) == [
        ("192.168.50.11", networks_pb2.Address.IN_USE),
        ("192.168.50.14", networks_pb2.Address.RESERVED)]

    # Attach a second NIC (the next free address), then detach it.
    op = compute.AttachNetworkInterface(compute_pb2.AttachNetworkInterfaceRequest(
        name=vm.name, request_id=rid(),
        network_interface=compute_pb2.NetworkInterface(network=net.name)))
    vm = unpack(done(server, op), compute_pb2.Instance)
    assert vm.state == compute_pb2.Instance.RUNNING
    assert [(n.id, n.address) for n in vm.network_interfaces] == [
        ("0", "192.168.50.11"), ("1", "192.168.50.10")]
    op = compute.DetachNetworkInterface(compute_pb2.DetachNetworkInterfaceRequest(
        name=vm.name, network_interface_id="1", request_id=rid()))
    vm = unpack(done(server, op), compute_pb2.Instance)
    assert [n.id for n in vm.network_interfaces] == ["0"]
    # Detaching it again: NOT_FOUND, nothing sent.
    code, _ = failure(server, compute.DetachNetworkInterface,
                      compute_pb2.DetachNetworkInterfaceRequest(
                          name=vm.name, network_interface_id="1", request_id=rid()))
    assert code == grpc.StatusCode.NOT_FOUND

    # The network cannot go while its leases are used.
    code, _ = failure(server, networks.DeleteNetwork,
                      networks_pb2.DeleteNetworkRequest(name=net.name, request_id=rid()))
    assert code == grpc.StatusCode.FAILED_PRECONDITION

    # Delete everything.
    done(server, compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
        name=vm.name, request_id=rid())))
    done(server, networks.ReleaseAddress(networks_pb2.ReleaseAddressRequest(
        name=held.name, request_id=rid())))
    done(server, networks.DeleteNetwork(networks_pb2.DeleteNetworkRequest(
        name=net.name, request_id=rid())))
    done(server, compute.DeleteKeyPair(compute_pb2.DeleteKeyPairRequest(
        name=key.name, request_id=rid())))
    err = pytest.raises(grpc.RpcError, networks.GetNetwork,
                        networks_pb2.GetNetworkRequest(name=net.name)).value
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert not compute.ListKeyPairs(compute_pb2.ListKeyPairsRequest(parent=ACCOUNT)).key_pairs
    # The emulator is back where it started: no VM, no network of ours, no
    # lease held or used, no key.
    assert emulator_counts() == (0, ["private"], 0)
    assert not ET.fromstring(one("one.user.info", -1)).findtext("TEMPLATE/SSH_PUBLIC_KEY")


def test_refusals_name_the_field(server):
    compute, networks = server.compute(), server.networks()
    # A NIC on a network that does not exist.
    assert failure(server, compute.CreateInstance, compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="nonet", request_id=rid(),
        instance=compute_pb2.Instance(
            image=f"{ACCOUNT}/images/1",
            network_interfaces=[compute_pb2.NetworkInterface(
                network=f"{ACCOUNT}/networks/nope")]))) == (
                    grpc.StatusCode.INVALID_ARGUMENT, ["instance.network_interfaces[0].network"])
    # An unknown key pair.
    assert failure(server, compute.CreateInstance, compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="nokey", request_id=rid(),
        instance=compute_pb2.Instance(image=f"{ACCOUNT}/images/1",
                                      key_name=f"{ACCOUNT}/keyPairs/none"))) == (
                                          grpc.StatusCode.INVALID_ARGUMENT, ["instance.key_name"])
    # user_data goes inside a raw template (one.vm.allocate), not beside it.
    raw = struct_pb2.Struct()
    raw["template"] = 'CPU="1"\nMEMORY="64"\n'
    assert failure(server, compute.CreateInstance, compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="ud", request_id=rid(),
        instance=compute_pb2.Instance(provider_options=raw, user_data="#!/bin/sh"))) == (
            grpc.StatusCode.INVALID_ARGUMENT, ["instance.user_data"])
    # A range that is no IPv4 address.
    assert failure(server, networks.CreateNetwork, networks_pb2.CreateNetworkRequest(
        parent=ACCOUNT, network_id="bad", request_id=rid(),
        network=networks_pb2.Network(address_ranges=[
            networks_pb2.AddressRange(first_address="300.1.1.1", size=4)]))) == (
                grpc.StatusCode.INVALID_ARGUMENT, ["network.address_ranges[0].first_address"])
    assert emulator_counts() == (0, ["private"], 0)
