"""Bearer JWTs and API keys through the real cloudplaned (issue 12): every
refused token is UNAUTHENTICATED / CREDENTIALS_INVALID, a missing credential
CREDENTIALS_MISSING; good RS256 and ES256 tokens and API keys act as their
principal; a group claim grants a group binding's role; SIGHUP re-reads the
JWKS file while a Watch stream stays open, and a broken JWKS keeps the old keys."""
import queue
import threading
import time
import uuid

import grpc
import pytest

import auth_testing as at
from cloudplane_testing import Server, accounts_pb2, common_pb2, compute_pb2, watch_pb2

ACCOUNT = "accounts/sandbox"
GROUP = "ops"


def config(jwks_file, api_key_sha):
    return at.auth_section(
        at.jwt_section(jwks_file, groups_claim="groups", clock_skew_seconds=30),
        at.api_key_entry("ci-reader", api_key_sha),
        # alice reads every account; members of `ops` operate the sandbox.
        at.binding("VIEWER", principals=["alice"]),
        at.binding("VIEWER", principals=["ci-reader"], accounts=["sandbox"]),
        at.binding("OPERATOR", groups=[GROUP], accounts=["sandbox"]))


def get_account(server, token=None, metadata=None):
    if metadata is None and token is not None:
        metadata = at.bearer(token)
    return server.accounts().GetAccount(accounts_pb2.GetAccountRequest(name=ACCOUNT),
                                        metadata=metadata, timeout=10)


def create_instance(server, token, instance_id):
    return server.compute().CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id=instance_id, request_id=str(uuid.uuid4()),
        instance=compute_pb2.Instance(image=ACCOUNT + "/images/debian-12",
                                      machine_type=ACCOUNT + "/machineTypes/small")),
        metadata=at.bearer(token), timeout=10)


def assert_invalid(server, token):
    code, info, message = at.refusal(get_account, server, token)
    assert code == grpc.StatusCode.UNAUTHENTICATED, message
    assert info is not None and info.reason == "CREDENTIALS_INVALID", info
    assert token not in message
    return message


class Keys:
    def __init__(self):
        self.rsa = at.rsa_key()
        self.ec = at.ec_key()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("auth-jwt")
    keys = Keys()
    jwks_file = root / "jwks.json"
    jwks_file.write_text(at.jwks((keys.rsa, "rsa-1"), (keys.ec, "ec-1")))
    key, digest = at.api_key()
    server = Server(root / "state", config_text=config(jwks_file, digest)).start()
    yield server, keys, key
    assert server.stop() == 0, server.log()


def test_good_rs256_and_es256_tokens_act_as_their_principal(setup):
    server, keys, _ = setup
    for token in (at.mint(keys.rsa, "rsa-1", at.claims(sub="alice")),
                  at.mint(keys.ec, "ec-1", at.claims(sub="alice"))):
        assert get_account(server, token).name == ACCOUNT
    # alice is a VIEWER: a mutation is refused with the permission it lacks.
    code, info, _ = at.refusal(create_instance, server,
                               at.mint(keys.ec, "ec-1", at.claims(sub="alice")), "denied")
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert info.reason == "PERMISSION_MISSING"
    assert info.metadata["permission"] == "compute.CreateInstance"
    assert info.metadata["resource"] == ACCOUNT + "/instances/denied"  # the request's target


@pytest.mark.parametrize("case", [
    "expired", "not_yet_valid", "wrong_issuer", "wrong_audience", "bad_signature",
    "alg_none", "hs256_with_public_key", "unknown_kid", "signed_by_another_key"])
def test_refused_tokens(setup, case):
    server, keys, _ = setup
    now = int(time.time())
    rsa, good = keys.rsa, at.claims(sub="alice")
    token = {
        "expired": lambda: at.mint(rsa, "rsa-1", at.claims(sub="alice", lifetime=-300)),
        "not_yet_valid": lambda: at.mint(rsa, "rsa-1", at.claims(
            sub="alice", lifetime=900, not_before=now + 300)),
        "wrong_issuer": lambda: at.mint(rsa, "rsa-1", at.claims(
            sub="alice", issuer="https://evil.example.test")),
        "wrong_audience": lambda: at.mint(rsa, "rsa-1", at.claims(sub="alice", audience="other")),
        "bad_signature": lambda: at.bad_signature(at.mint(rsa, "rsa-1", good)),
        "alg_none": lambda: at.mint(rsa, "rsa-1", good, alg="none"),
        "hs256_with_public_key": lambda: at.mint(rsa, "rsa-1", good, alg="HS256"),
        "unknown_kid": lambda: at.mint(at.rsa_key(), "rsa-9", good),
        "signed_by_another_key": lambda: at.mint(at.ec_key(), "ec-1", good),
    }[case]()
    assert_invalid(server, token)


def test_missing_and_malformed_credentials(setup):
    server, keys, _ = setup
    code, info, _ = at.refusal(get_account, server)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert info.reason == "CREDENTIALS_MISSING"
    good = at.mint(keys.rsa, "rsa-1", at.claims(sub="alice"))
    for metadata in ((("authorization", "Basic " + good),),
                     (("authorization", "Bearer " + good), ("authorization", "Bearer " + good)),
                     (("authorization", "Bearer not.a.jwt"),)):
        code, info, _ = at.refusal(get_account, server, metadata=metadata)
        assert code == grpc.StatusCode.UNAUTHENTICATED, metadata[0][1][:12]
        assert info.reason == "CREDENTIALS_INVALID"


def test_api_keys(setup):
    server, _, key = setup
    assert get_account(server, key).name == ACCOUNT
    wrong_key, _ = at.api_key()
    assert_invalid(server, wrong_key)
    assert_invalid(server, key[:-1])
    # ci-reader may read the sandbox but not change it.
    code, info, _ = at.refusal(create_instance, server, key, "by-key")
    assert code == grpc.StatusCode.PERMISSION_DENIED and info.reason == "PERMISSION_MISSING"
    # No token nor key ever reaches the log.
    assert key not in server.log()


def test_group_claim_grants_the_group_binding(setup):
    server, keys, _ = setup
    member = at.mint(keys.ec, "ec-1", at.claims(sub="bob", groups=[GROUP, "other"]))
    op = create_instance(server, member, "by-group")
    metadata = common_pb2.OperationMetadata()
    assert op.metadata.Unpack(metadata)
    assert metadata.principal == "bob"
    # Without the group bob has no role on the sandbox: it does not exist.
    stranger = at.mint(keys.ec, "ec-1", at.claims(sub="bob", groups=["other"]))
    code, info, message = at.refusal(get_account, server, stranger)
    assert code == grpc.StatusCode.NOT_FOUND and info.reason == "ACCOUNT_NOT_FOUND"
    missing = at.refusal(server.accounts().GetAccount,
                         accounts_pb2.GetAccountRequest(name="accounts/nope"),
                         metadata=at.bearer(member), timeout=10)
    assert missing[0] == grpc.StatusCode.NOT_FOUND
    assert missing[2] == message.replace("sandbox", "nope")


# ---- SIGHUP ------------------------------------------------------------------

def _eventually(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, grpc.RpcError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _refusals(server):
    return server.log().count("reload refused")


def _refused_once_more(server, before):
    assert _refusals(server) == before + 1


def _pump(call):
    events = queue.Queue()

    def run():
        try:
            for change in call:
                events.put(change)
        except grpc.RpcError as error:
            events.put(error)

    threading.Thread(target=run, daemon=True).start()
    return events


def _next_change(events, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        change = events.get(timeout=max(0.1, deadline - time.monotonic()))
        assert not isinstance(change, grpc.RpcError), change
        if change.change_type != watch_pb2.WatchResponse.HEARTBEAT:
            return change


def test_jwks_rotation_on_sighup_keeps_watch_streams(tmp_path):
    old, new = at.rsa_key(), at.ec_key()
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(at.jwks((old, "old-1")))
    server = Server(tmp_path / "state", config_text=config(jwks_file, at.api_key()[1])).start()
    try:
        old_token = at.mint(old, "old-1", at.claims(sub="bob", groups=[GROUP], lifetime=900))
        new_token = at.mint(new, "new-1", at.claims(sub="bob", groups=[GROUP], lifetime=900))
        assert get_account(server, old_token).name == ACCOUNT
        assert_invalid(server, new_token)

        call = server.watch().Watch(watch_pb2.WatchRequest(parent=ACCOUNT, kinds=["Instance"]),
                                    metadata=at.bearer(old_token))
        events = _pump(call)
        first = events.get(timeout=10)
        assert not isinstance(first, grpc.RpcError), first
        assert first.change_type == watch_pb2.WatchResponse.HEARTBEAT

        jwks_file.write_text(at.jwks((new, "new-1")))
        server.reload()
        _eventually(lambda: get_account(server, new_token))
        assert_invalid(server, old_token)  # its key is gone

        # The stream opened with the old key stays open and sees a change
        # made after the reload.
        create_instance(server, new_token, "after-reload")
        change = _next_change(events)
        assert change.resource_name == ACCOUNT + "/instances/after-reload"
        call.cancel()
    finally:
        assert server.stop() == 0, server.log()


def test_broken_jwks_on_sighup_keeps_the_old_keys(tmp_path):
    key = at.ec_key()
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(at.jwks((key, "ec-1")))
    server = Server(tmp_path / "state", config_text=config(jwks_file, at.api_key()[1])).start()
    try:
        token = at.mint(key, "ec-1", at.claims(sub="alice"))
        assert get_account(server, token).name == ACCOUNT
        for broken in ('{"keys": [', '{"keys": []}'):
            before = _refusals(server)
            jwks_file.write_text(broken)
            server.reload()
            # The refusal is logged (that is also how we know the reload ran).
            _eventually(lambda: _refused_once_more(server, before))  # noqa: B023
            assert server.process.poll() is None
            assert get_account(server, token).name == ACCOUNT
        # A good file again is taken.
        other = at.rsa_key()
        jwks_file.write_text(at.jwks((other, "rsa-2")))
        server.reload()
        _eventually(lambda: get_account(server, at.mint(other, "rsa-2", at.claims(sub="alice"))))
        assert_invalid(server, token)
    finally:
        assert server.stop() == 0, server.log()
