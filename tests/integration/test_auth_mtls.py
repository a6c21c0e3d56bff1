"""Mutual TLS through the real cloudplaned (issue 12): a client certificate
signed by tls.client_ca_file authenticates as its SPIFFE URI SAN, else its
first DNS SAN, else its subject CN; without one, with one from another CA or
an expired one the handshake fails; SIGHUP re-reads the server certificate
(new connections see it) while an open Watch stream stays."""
import queue
import threading
import time
import uuid

import grpc
import pytest

import auth_testing as at
from cloudplane_testing import (Server, accounts_pb2, accounts_pb2_grpc, common_pb2, compute_pb2,
                                compute_pb2_grpc, watch_pb2)

ALPHA, BETA = "accounts/alpha", "accounts/beta"


def config(pki):
    return (
        'accounts { id: "alpha" provider: "sandbox" }\n'
        'accounts { id: "beta" provider: "sandbox" }\n'
        + at.tls_section(pki.server_cert, pki.server_key, pki.ca,
                         require_client_certificate=True)
        + at.auth_section(
            at.binding("OPERATOR", principals=[at.SPIFFE_ID]),
            # Each of the other two sees one account only, so a call tells
            # which principal the server derived.
            at.binding("VIEWER", principals=[at.DNS_NAME], accounts=["alpha"]),
            at.binding("VIEWER", principals=[at.COMMON_NAME], accounts=["beta"])))


def create_instance(channel, account, instance_id):
    stub = compute_stub(channel)
    return stub.CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=account, instance_id=instance_id, request_id=str(uuid.uuid4()),
        instance=compute_pb2.Instance(image=account + "/images/debian-12",
                                      machine_type=account + "/machineTypes/small")),
        timeout=10)


def compute_stub(channel):
    return compute_pb2_grpc.ComputeServiceStub(channel)


def accounts_stub(channel):
    return accounts_pb2_grpc.AccountsServiceStub(channel)


def visible_accounts(channel):
    response = accounts_stub(channel).ListAccounts(accounts_pb2.ListAccountsRequest(), timeout=10)
    return sorted(account.name for account in response.accounts)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("auth-mtls")
    pki = at.Pki(root / "pki")
    server = Server(root / "state", config_text=config(pki), tls_root=pki.ca,
                    client_cert=pki.spiffe_cert, client_key=pki.spiffe_key).start()
    yield server, pki
    assert server.stop() == 0, server.log()


def test_spiffe_certificate_operates_and_is_the_operation_principal(env):
    server, _ = env
    assert visible_accounts(server.channel) == [ALPHA, BETA]
    op = create_instance(server.channel, ALPHA, "by-spiffe")
    metadata = common_pb2.OperationMetadata()
    assert op.metadata.Unpack(metadata)
    assert metadata.principal == at.SPIFFE_ID


@pytest.mark.parametrize("kind,visible", [("dns", [ALPHA]), ("cn", [BETA])])
def test_dns_san_and_cn_certificates_map_to_their_principals(env, kind, visible):
    server, pki = env
    cert, key = getattr(pki, kind + "_cert"), getattr(pki, kind + "_key")
    with server.new_channel(cert, key) as channel:
        assert visible_accounts(channel) == visible
        hidden = BETA if visible == [ALPHA] else ALPHA
        assert accounts_stub(channel).GetAccount(
            accounts_pb2.GetAccountRequest(name=visible[0]), timeout=10).name == visible[0]
        code, info, _ = at.refusal(accounts_stub(channel).GetAccount,
                                   accounts_pb2.GetAccountRequest(name=hidden), timeout=10)
        assert code == grpc.StatusCode.NOT_FOUND and info.reason == "ACCOUNT_NOT_FOUND"
        # A VIEWER: mutations are refused with the permission named.
        code, info, _ = at.refusal(create_instance, channel, visible[0], "by-" + kind)
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert info.reason == "PERMISSION_MISSING"
        assert info.metadata["permission"] == "compute.CreateInstance"


@pytest.mark.parametrize("kind", ["none", "foreign", "expired"])
def test_handshake_refused(env, kind):
    server, pki = env
    cert = key = None
    if kind != "none":
        cert, key = getattr(pki, kind + "_cert"), getattr(pki, kind + "_key")
    channel = at.secure_channel(server.address, pki.ca, cert, key)
    try:
        code, _, _ = at.refusal(visible_accounts, channel)
        assert code == grpc.StatusCode.UNAVAILABLE
    finally:
        channel.close()
    assert server.process.poll() is None


def test_an_unknown_certificate_principal_sees_nothing(env):
    server, pki = env
    cert, key = pki.client("nobody", uris=["spiffe://example.test/ns/x/sa/nobody"])
    with server.new_channel(cert, key) as channel:
        assert visible_accounts(channel) == []
        code, info, _ = at.refusal(accounts_stub(channel).GetAccount,
                                   accounts_pb2.GetAccountRequest(name=ALPHA), timeout=10)
        assert code == grpc.StatusCode.NOT_FOUND and info.reason == "ACCOUNT_NOT_FOUND"


def _serial(server, pki):
    return at.server_certificate(server.address, pki.ca, pki.spiffe_cert,
                                 pki.spiffe_key).serial_number


def test_server_certificate_rotation_on_sighup_keeps_watch_streams(tmp_path):
    pki = at.Pki(tmp_path / "pki")
    server = Server(tmp_path / "state", config_text=config(pki), tls_root=pki.ca,
                    client_cert=pki.spiffe_cert, client_key=pki.spiffe_key).start()
    try:
        old_serial = at.load_certificate(pki.server_cert).serial_number
        assert _serial(server, pki) == old_serial

        events = queue.Queue()
        call = server.watch().Watch(watch_pb2.WatchRequest(parent=ALPHA, kinds=["Instance"]))

        def pump():
            try:
                for change in call:
                    events.put(change)
            except grpc.RpcError as error:
                events.put(error)

        threading.Thread(target=pump, daemon=True).start()
        first = events.get(timeout=10)
        assert not isinstance(first, grpc.RpcError), first
        assert first.change_type == watch_pb2.WatchResponse.HEARTBEAT

        # New key and certificate at the same paths, then SIGHUP.
        new_cert, new_key = pki.new_server_certificate("server-next")
        new_serial = at.load_certificate(new_cert).serial_number
        pki.server_key.write_bytes(new_key.read_bytes())
        pki.server_cert.write_bytes(new_cert.read_bytes())
        server.reload()
        deadline = time.monotonic() + 5
        while _serial(server, pki) != new_serial:
            assert time.monotonic() < deadline, "the new certificate was not served in 5 s"
            time.sleep(0.1)

        # A new connection works with the new certificate; the old stream
        # sees its change.
        with server.new_channel() as channel:
            create_instance(channel, ALPHA, "after-rotation")
        while True:
            change = events.get(timeout=15)
            assert not isinstance(change, grpc.RpcError), change
            if change.change_type != watch_pb2.WatchResponse.HEARTBEAT:
                break
        assert change.resource_name == ALPHA + "/instances/after-rotation"
        # The connection opened before the rotation still serves calls.
        assert visible_accounts(server.channel) == [ALPHA, BETA]
        call.cancel()

        # A key that does not match its certificate is refused; the pair in
        # use stays.
        other_cert, _ = pki.new_server_certificate("server-mismatch")
        pki.server_cert.write_bytes(other_cert.read_bytes())
        assert "reload refused" not in server.log()
        server.reload()
        deadline = time.monotonic() + 5
        while "reload refused" not in server.log():
            assert time.monotonic() < deadline, "no log line for the refused reload"
            time.sleep(0.1)
        assert _serial(server, pki) == new_serial
    finally:
        assert server.stop() == 0, server.log()
