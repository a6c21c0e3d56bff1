"""End to end through the real server against the CloudSigma emulator:
networks (VLANs), addresses (static IPs), key pairs and network interfaces
(issue 14), and labels kept apart from instance metadata."""
import pathlib
import sys

import grpc
import pytest
from google.protobuf import field_mask_pb2

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "emulators" /
                       "cloudsigma"))

from cloudplane_testing import (compute_pb2, done, error_details, networks_pb2,  # noqa: E402
                                unpack)
from cloudsigma_testing import server_fixtures  # noqa: E402

ACCOUNT = "accounts/csn"
# A well-formed ed25519 public key (32 bytes 00..1f).
PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f "
              "ops@host")

emulator, server = server_fixtures("csn", "CLOUDPLANE_TEST_CSN_SECRET")


def expect_error(code, call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kwargs)
    assert err.value.code() == code, err.value.details()
    return err.value, error_details(err.value)


def test_network_address_key_nics_end_to_end(server, emulator):
    compute, networks = server.compute(), server.networks()
    # A network: a VLAN bought as a subscription.
    network = done(server, networks.CreateNetwork(networks_pb2.CreateNetworkRequest(
        parent=ACCOUNT, request_id="net-1",
        network=networks_pb2.Network(labels={"tier": "db"}))), networks_pb2.Network)
    vlan_uuid = network.name.rsplit("/", 1)[1]
    assert network.state == networks_pb2.Network.READY
    assert network.labels == {"tier": "db"}
    vlans = emulator.objects("vlans")
    assert [v["uuid"] for v in vlans] == [vlan_uuid]
    assert vlans[0]["meta"]["tier"] == "db"
    assert networks.GetNetwork(networks_pb2.GetNetworkRequest(name=network.name)) == network
    assert [n.name for n in networks.ListNetworks(networks_pb2.ListNetworksRequest(
        parent=ACCOUNT)).networks] == [network.name]
    # What CloudSigma cannot do is refused by name, nothing bought.
    _, (info, bad) = expect_error(
        grpc.StatusCode.INVALID_ARGUMENT, networks.CreateNetwork,
        networks_pb2.CreateNetworkRequest(parent=ACCOUNT, network=networks_pb2.Network(
            cidr_ranges=["10.0.0.0/24"])))
    assert info.reason == "FIELD_UNSUPPORTED"
    assert [v.field for v in bad.field_violations] == ["network.cidr_ranges"]
    assert len(emulator.objects("vlans")) == 1

    # A static IP (any free one: CloudSigma picks it).
    address = done(server, networks.ReserveAddress(networks_pb2.ReserveAddressRequest(
        parent=ACCOUNT, address=networks_pb2.Address(labels={"use": "web"}))),
        networks_pb2.Address)
    assert address.state == networks_pb2.Address.RESERVED
    assert address.name == f"{ACCOUNT}/addresses/{address.address}"
    assert address.provider_details["netmask"] == 24
    assert networks.GetAddress(networks_pb2.GetAddressRequest(name=address.name)) == address

    # An SSH key.
    key = done(server, compute.CreateKeyPair(compute_pb2.CreateKeyPairRequest(
        parent=ACCOUNT, key_pair_id="ops", key_pair=compute_pb2.KeyPair(
            public_key=PUBLIC_KEY))), compute_pb2.KeyPair)
    assert key.name == f"{ACCOUNT}/keyPairs/ops" and key.public_key == PUBLIC_KEY
    assert len(key.fingerprint.split(":")) == 16
    assert [k.name for k in compute.ListKeyPairs(compute_pb2.ListKeyPairsRequest(
        parent=ACCOUNT)).key_pairs] == [key.name]

    # An instance with a NIC on the VLAN and a public NIC with the static IP.
    instance = done(server, compute.CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="web-1", start=False, instance=compute_pb2.Instance(
            cpu_mhz=1000, memory_bytes=1 << 30, key_name="ops", labels={"role": "web"},
            network_interfaces=[
                compute_pb2.NetworkInterface(network=network.name, model="e1000"),
                compute_pb2.NetworkInterface(address=address.address)]))),
        compute_pb2.Instance)
    got = compute.GetInstance(compute_pb2.GetInstanceRequest(name=instance.name))
    assert [(n.network, n.address, n.model) for n in got.network_interfaces] == [
        (network.name, "", "e1000"), ("", address.address, "virtio")]
    assert all(n.id and n.id == n.mac_address for n in got.network_interfaces)
    assert address.address in got.ip_addresses
    (srv,) = emulator.objects("servers")
    assert [k["uuid"] for k in srv["pubkeys"]] == [key.provider_details["uuid"]]
    used = networks.GetAddress(networks_pb2.GetAddressRequest(name=address.name))
    assert used.state == networks_pb2.Address.IN_USE and used.instance == instance.name
    # Neither goes while the server holds it.
    for call, request in (
            (networks.DeleteNetwork, networks_pb2.DeleteNetworkRequest(name=network.name)),
            (networks.ReleaseAddress, networks_pb2.ReleaseAddressRequest(name=address.name))):
        err, (info, _) = expect_error(grpc.StatusCode.FAILED_PRECONDITION, call, request)
        assert info.reason == "WRONG_STATE" and "detach it first" in err.details()
    assert all(s["auto_renew"] for s in emulator.objects("subscriptions"))

    # Labels and metadata never overwrite each other.
    meta_name = f"{instance.name}/metadata"
    assert compute.GetInstanceMetadata(compute_pb2.GetInstanceMetadataRequest(
        name=meta_name)).items == {}
    done(server, compute.UpdateInstanceMetadata(compute_pb2.UpdateInstanceMetadataRequest(
        metadata=compute_pb2.InstanceMetadata(name=meta_name, items={"boot": "1"}))), None)
    assert compute.GetInstance(compute_pb2.GetInstanceRequest(
        name=instance.name)).labels == {"role": "web"}
    done(server, compute.UpdateInstance(compute_pb2.UpdateInstanceRequest(
        instance=compute_pb2.Instance(name=instance.name, labels={"role": "db"}),
        update_mask=field_mask_pb2.FieldMask(paths=["labels"]))), None)
    assert compute.GetInstanceMetadata(compute_pb2.GetInstanceMetadataRequest(
        name=meta_name)).items == {"boot": "1"}
    (srv,) = emulator.objects("servers")
    assert srv["meta"]["boot"] == "1" and srv["meta"]["cloudplane_label_role"] == "db"

    # A second NIC (public DHCP), then detached again.
    attached = done(server, compute.AttachNetworkInterface(
        compute_pb2.AttachNetworkInterfaceRequest(
            name=instance.name, network_interface=compute_pb2.NetworkInterface())),
        compute_pb2.Instance)
    assert len(attached.network_interfaces) == 3
    third = attached.network_interfaces[2]
    assert third.network == "" and third.address == "" and third.id
    assert [n.id for n in attached.network_interfaces[:2]] == [
        n.id for n in got.network_interfaces]  # the others kept their macs
    detached = done(server, compute.DetachNetworkInterface(
        compute_pb2.DetachNetworkInterfaceRequest(name=instance.name,
                                                  network_interface_id=third.id)),
        compute_pb2.Instance)
    assert [n.id for n in detached.network_interfaces] == [n.id for n in got.network_interfaces]
    # Detaching it again is done at once (a re-driven detach is harmless).
    done(server, compute.DetachNetworkInterface(compute_pb2.DetachNetworkInterfaceRequest(
        name=instance.name, network_interface_id=third.id)), compute_pb2.Instance)

    # A running server's NICs do not change at CloudSigma: refused.
    done(server, compute.StartInstance(compute_pb2.StartInstanceRequest(name=instance.name)),
         compute_pb2.Instance)
    running = compute.GetInstance(compute_pb2.GetInstanceRequest(name=instance.name))
    assert running.network_interfaces[1].address == address.address
    err, _ = expect_error(grpc.StatusCode.FAILED_PRECONDITION, compute.AttachNetworkInterface,
                          compute_pb2.AttachNetworkInterfaceRequest(
                              name=instance.name,
                              network_interface=compute_pb2.NetworkInterface()))
    assert "only while it is stopped" in err.details()
    assert len(emulator.objects("servers")[0]["nics"]) == 2
    done(server, compute.StopInstance(compute_pb2.StopInstanceRequest(
        name=instance.name, force=True)), compute_pb2.Instance)

    # Delete everything.
    done(server, compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
        name=instance.name)), None)
    done(server, compute.DeleteKeyPair(compute_pb2.DeleteKeyPairRequest(name=key.name)), None)
    done(server, networks.ReleaseAddress(networks_pb2.ReleaseAddressRequest(
        name=address.name)), None)
    done(server, networks.DeleteNetwork(networks_pb2.DeleteNetworkRequest(
        name=network.name)), None)
    # CloudSigma has no delete for a VLAN or an IP: both stay, bought until
    # their subscription ends, which no longer renews. The network says so.
    leaving = networks.GetNetwork(networks_pb2.GetNetworkRequest(name=network.name))
    assert leaving.state == networks_pb2.Network.DELETING
    assert leaving.provider_details["auto_renew"] is False
    assert emulator.objects("servers") == [] and emulator.objects("keypairs") == []
    assert [v["uuid"] for v in emulator.objects("vlans")] == [vlan_uuid]
    assert [i["uuid"] for i in emulator.objects("ips")] == [address.address]
    subs = emulator.objects("subscriptions")
    assert sorted((s["resource"], s["auto_renew"]) for s in subs) == [
        ("ip", False), ("vlan", False)]
    # When the subscriptions end, the emulator is empty.
    status, body = emulator.rest("POST",
                        emulator.api_endpoint.replace("/api/2.0", "/emulator/expire-subscriptions"))
    assert status == 200 and len(body["expired"]) == 2
    assert emulator.objects("vlans") == [] and emulator.objects("ips") == []
    expect_error(grpc.StatusCode.NOT_FOUND, networks.GetNetwork,
                 networks_pb2.GetNetworkRequest(name=network.name))
    done(server, networks.DeleteNetwork(networks_pb2.DeleteNetworkRequest(
        name=network.name, allow_missing=True)), None)
