"""The adapter conformance suite: behaviours every provider adapter must show
through the real cloudplaned, written once and run against each adapter's
emulator.

Modelled on Apache Arrow's test_definitions.h: `AdapterConformance` is the
base class that holds every test; each adapter adds itself with a `Profile`
(the few adapter-specific hooks) and a two-line subclass in
test_conformance.py:

    class TestCloudSigma(AdapterConformance):
        profile = CloudSigmaProfile()

A profile names the account, the one collection the suite exercises (any
AIP-121 standard collection: Create/Get/List/Delete with `{singular}_id`,
`request_id`, `validate_only`, `allow_missing`), how to build a valid resource
number N, when a created resource has settled, and one RPC the adapter does
not support (or None when it supports every RPC, which the suite then checks).
Something a profile cannot do is expressed by its hooks, never by a skip.

The server for a profile starts once per class (`server` fixture); each test
uses its own resource ids (a per-test tag), so tests do not see each other's
resources even though they share the server.
"""
import contextlib
import dataclasses
import hashlib
import importlib
import pathlib
import re
import socket
import struct
import time
import types
import uuid
from typing import Any, Callable, Iterator, Optional

import grpc
import pytest

import hpack
import hyperframe.frame

import field_walk
from google.longrunning import operations_pb2 as longrunning_pb2
from cloudplane_testing import (Server, accounts_pb2, autoscaling_pb2, billing_pb2, common_pb2,
                                compute_pb2, error_details, error_details_pb2, firewalls_pb2, networks_pb2,
                                operations_pb2, units_pb2, volumes_pb2, watch_pb2)

ERROR_DOMAIN = "cloudplane.dev"

# Services the server answers from its own tables; every other service of
# cloudplane.v1 is adapter-facing and appears in Account.capabilities.
_SERVER_OWN_SERVICES = {"cloudplane.v1.AccountsService", "cloudplane.v1.WatchService"}
_API_MODULES = (accounts_pb2, autoscaling_pb2, billing_pb2, compute_pb2, firewalls_pb2,
                networks_pb2, units_pb2, volumes_pb2, watch_pb2)

# How long one settling create may take before a test gives up.
WAIT_SECONDS = 20.0
# "Promptly" for a call whose deadline has already passed.
PROMPT_SECONDS = 1.0


def adapter_methods():
    """Full names of every adapter-facing RPC of the API, from the protos."""
    methods = set()
    for module in _API_MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            if service.full_name in _SERVER_OWN_SERVICES:
                continue
            methods.update(f"{service.full_name}.{m.name}" for m in service.methods)
    return methods


def _snake(camel):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _lower_camel(snake):
    first, *rest = snake.split("_")
    return first + "".join(word.capitalize() for word in rest)


@dataclasses.dataclass(frozen=True)
class Collection:
    """One standard collection of the API, e.g. Collection(volumes_pb2,
    "VolumesService", "Volume"). Request types, stub methods and field names
    follow from the AIP naming the whole API uses."""
    module: types.ModuleType      # the *_pb2 module that defines the service
    service: str                  # e.g. "VolumesService"
    singular: str                 # e.g. "Volume"
    plural_type: str = ""         # e.g. "Volumes" (default: singular + "s")

    @property
    def field(self):              # volume, scaling_group
        return _snake(self.singular)

    @property
    def plural(self):             # the List response field: volumes, scaling_groups
        return _snake(self.plural_type or self.singular + "s")

    @property
    def segment(self):            # the resource name segment: volumes, scalingGroups
        return _lower_camel(self.plural)

    @property
    def message(self):
        return getattr(self.module, self.singular)

    def rpc(self, verb):
        """The RPC's short name: CreateVolume, ListVolumes."""
        if verb == "List":
            return "List" + (self.plural_type or self.singular + "s")
        return verb + self.singular

    def method(self, verb):
        """Full method name, e.g. `cloudplane.v1.VolumesService.CreateVolume`."""
        return f"cloudplane.v1.{self.service}.{self.rpc(verb)}"

    def path(self, verb):
        """HTTP/2 path of an RPC, e.g. `/cloudplane.v1.VolumesService/CreateVolume`."""
        return f"/cloudplane.v1.{self.service}/{self.rpc(verb)}"

    def name(self, account, resource_id):
        return f"{account}/{self.segment}/{resource_id}"

    def _request(self, verb, **fields):
        return getattr(self.module, f"{self.rpc(verb)}Request")(**fields)

    def _stub(self, server):
        grpc_module = importlib.import_module(self.module.__name__ + "_grpc")
        return getattr(grpc_module, f"{self.service}Stub")(server.channel)

    def _call(self, server, verb, request, timeout):
        return getattr(self._stub(server), self.rpc(verb))(request, timeout=timeout)

    def create_request(self, account, resource_id, resource, request_id="",
                       validate_only=False):
        return self._request("Create", parent=account, request_id=request_id,
                             validate_only=validate_only,
                             **{f"{self.field}_id": resource_id, self.field: resource})

    def create(self, server, request, timeout=10.0):
        return self._call(server, "Create", request, timeout)

    def get(self, server, name, timeout=10.0):
        return self._call(server, "Get", self._request("Get", name=name), timeout)

    def list_request(self, account, page_size=0, page_token=""):
        return self._request("List", parent=account, page_size=page_size, page_token=page_token)

    def list_page(self, server, account, page_size=0, page_token="", timeout=10.0):
        """(names on the page, next_page_token)."""
        response = self._call(server, "List", self.list_request(account, page_size, page_token),
                              timeout)
        return [r.name for r in getattr(response, self.plural)], response.next_page_token

    def delete(self, server, name, allow_missing=False, request_id="", validate_only=False,
               timeout=10.0):
        return self._call(server, "Delete", self._request(
            "Delete", name=name, allow_missing=allow_missing, request_id=request_id,
            validate_only=validate_only), timeout)


@dataclasses.dataclass(frozen=True)
class UnsupportedCall:
    """An RPC the profile's account does not support, and how to call it with
    an otherwise valid request."""
    method: str                              # full name, e.g. cloudplane.v1.ComputeService.ListInstances
    invoke: Callable[[Server], Any]          # makes the call on the server's channel


class Profile:
    """The adapter-specific hooks. Subclass once per adapter (or per way of
    reaching it) and override everything that raises NotImplementedError."""

    #: pytest-friendly name of the profile, also used for temp dirs.
    id: str = ""
    #: The account id in the server config (`accounts/{account_id}`).
    account_id: str = ""
    #: The collection the suite exercises.
    collection: Collection = None

    @property
    def account(self):
        return f"accounts/{self.account_id}"

    @contextlib.contextmanager
    def environment(self, workdir: pathlib.Path) -> Iterator[str]:
        """Starts what the adapter talks to (its emulator) under `workdir`,
        yields the server configuration (accounts blocks, one of them
        `account_id`), and stops it all afterwards."""
        raise NotImplementedError

    def resource_id(self, tag: str, n: int) -> str:
        """A valid id for resource number `n` of a test tagged `tag`
        (tag: lowercase letters and digits, at most 8 characters)."""
        raise NotImplementedError

    def resource(self, n: int):
        """The body of a valid Create request for resource number `n`;
        different `n` give different bodies."""
        raise NotImplementedError

    def is_settled(self, resource) -> bool:
        """True when a created resource is in the settled state that its
        Create Operation promises (e.g. RUNNING, AVAILABLE, current ==
        desired)."""
        raise NotImplementedError

    def unsupported_call(self) -> Optional[UnsupportedCall]:
        """One RPC this account answers UNIMPLEMENTED; None when the adapter
        implements every RPC of the API (the suite then asserts that it
        does)."""
        raise NotImplementedError

    def field_samples(self) -> dict:
        """For the collection's Create: a value for each field of the resource
        that the account honours and that is visible on Get afterwards (not
        INPUT_ONLY), by its path under the resource (`display_name`,
        `labels`), unless resource(n) sets it already. The suite creates one
        resource per sample and expects Get to show it (a map: its entries
        among the resource's). Values must be valid at the provider."""
        return {}

    def input_only_samples(self) -> dict:
        """For the collection's Create: INPUT_ONLY fields the account honours
        and makes visible another way (Get never returns them), by path under
        the resource: {path: (value, shown)}, where shown(resource) is true
        when the Get result proves the value arrived (e.g.
        `user_data_digest_shown`). The suite creates one resource per entry,
        checks the field itself stays empty on Get, and asserts shown(Get);
        an entry for a field the account does not honour fails."""
        return {}


def user_data_digest_shown(value):
    """The `shown` of input_only_samples for user_data kept as its SHA-256:
    provider_details.userDataSha256 is the hex digest of `value` (the
    sandbox's and the OpenNebula adapter's convention)."""
    digest = hashlib.sha256(value.encode()).hexdigest()

    def shown(resource):
        details = resource.provider_details
        return "userDataSha256" in details and details["userDataSha256"] == digest
    return shown


# ---------------------------------------------------------------------------
# Helpers.

def status_error_info(status):
    """The ErrorInfo inside a google.rpc.Status (an Operation's error), or None."""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def expect_rpc_error(code, call, *args, **kwargs):
    """Runs `call`, asserts it fails with `code`; returns the grpc.RpcError."""
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kwargs)
    assert err.value.code() == code, f"expected {code}, got {err.value.code()}: {err.value.details()}"
    return err.value


def operation_metadata(op):
    metadata = common_pb2.OperationMetadata()
    assert op.metadata.Unpack(metadata), op
    return metadata


def account_operations(server, account):
    """Every recorded Operation of `account`, through every page of ListOperations."""
    ops, token = [], ""
    for _ in range(1000):
        page = server.operations().ListOperations(operations_pb2.ListOperationsRequest(
            name="operations", filter=f"account={account}", page_size=100, page_token=token),
            timeout=10)
        ops += page.operations
        token = page.next_page_token
        if not token:
            return ops
    raise AssertionError("ListOperations never returned an empty next_page_token")


def operations_with_request_id(server, account, request_id):
    return [op for op in account_operations(server, account)
            if operation_metadata(op).request_id == request_id]


def raw_unary_call(address, path, request, grpc_timeout):
    """Sends one unary gRPC call over a bare HTTP/2 connection with the
    `grpc-timeout` header given verbatim (e.g. "0n"), so that the server, not
    a client library, is what meets the expired deadline. Returns
    (grpc-status as int, grpc-message, seconds until the answer).

    Frames are read one by one and reading stops at the first END_STREAM of
    the call: gRPC core may send a second trailers frame after its
    RST_STREAM, which a full HTTP/2 state machine would reject."""
    host, port = address.rsplit(":", 1)
    payload = request.SerializeToString()
    encoder, decoder = hpack.Encoder(), hpack.Decoder()
    headers = hyperframe.frame.HeadersFrame(1, encoder.encode([
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", address),
        ("content-type", "application/grpc"), ("te", "trailers"),
        ("grpc-timeout", grpc_timeout)]), flags=["END_HEADERS"])
    data = hyperframe.frame.DataFrame(
        1, b"\x00" + struct.pack(">I", len(payload)) + payload, flags=["END_STREAM"])
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
                     hyperframe.frame.SettingsFrame(0).serialize() + headers.serialize() +
                     data.serialize())
        buffer, answer = b"", {}
        while True:
            while len(buffer) < 9 or len(buffer) < 9 + int.from_bytes(buffer[:3], "big"):
                chunk = sock.recv(65536)
                if not chunk:
                    raise AssertionError(f"connection closed before {path} was answered")
                buffer += chunk
            frame, length = hyperframe.frame.Frame.parse_frame_header(memoryview(buffer[:9]))
            frame.parse_body(memoryview(buffer[9:9 + length]))
            buffer = buffer[9 + length:]
            if isinstance(frame, hyperframe.frame.SettingsFrame) and "ACK" not in frame.flags:
                sock.sendall(hyperframe.frame.SettingsFrame(0, flags=["ACK"]).serialize())
            elif isinstance(frame, hyperframe.frame.RstStreamFrame) and frame.stream_id == 1:
                raise AssertionError(f"{path} was reset (error {frame.error_code}) "
                                     f"before a grpc-status: {answer}")
            elif isinstance(frame, hyperframe.frame.HeadersFrame) and frame.stream_id == 1:
                assert "END_HEADERS" in frame.flags, "CONTINUATION frames are not handled"
                answer.update((k.decode() if isinstance(k, bytes) else k,
                               v.decode() if isinstance(v, bytes) else v)
                              for k, v in decoder.decode(frame.data))
            if frame.stream_id == 1 and "END_STREAM" in frame.flags:
                elapsed = time.monotonic() - started
                assert "grpc-status" in answer, answer
                return int(answer["grpc-status"]), answer.get("grpc-message", ""), elapsed


# ---------------------------------------------------------------------------
# The suite.

class AdapterConformance:
    """Every behaviour an adapter must show. Subclasses set `profile`."""

    profile: Profile = None

    @pytest.fixture(scope="class")
    def server(self, request, tmp_path_factory):
        profile = request.cls.profile
        workdir = tmp_path_factory.mktemp(profile.id)
        with profile.environment(workdir) as config:
            srv = Server(workdir / "server", config).start()
            try:
                yield srv
            finally:
                code = srv.stop()
            assert code == 0, srv.log()

    # Shortcuts -------------------------------------------------------------
    @property
    def coll(self):
        return self.profile.collection

    @property
    def account(self):
        return self.profile.account

    def name(self, resource_id):
        return self.coll.name(self.account, resource_id)

    def request(self, tag, n, request_id="", validate_only=False):
        return self.coll.create_request(self.account, self.profile.resource_id(tag, n),
                                        self.profile.resource(n), request_id, validate_only)

    def settle(self, server, op):
        """Waits for a Create Operation; returns the settled resource."""
        op = server.wait(op, timeout=WAIT_SECONDS)
        assert not op.HasField("error"), op.error
        resource = self.coll.message()
        assert op.response.Unpack(resource), op.response
        return resource

    def create_many(self, server, tag, count):
        """Creates `count` resources at once and waits for all of them."""
        ops = [self.coll.create(server, self.request(tag, n, request_id=str(uuid.uuid4())))
               for n in range(count)]
        return [self.settle(server, op) for op in ops]

    def list_all(self, server, page_size):
        """Every page of the collection: (names in page order, page sizes)."""
        names, sizes, token = [], [], ""
        for _ in range(1000):
            page, token = self.coll.list_page(server, self.account, page_size, token)
            names += page
            sizes.append(len(page))
            if not token:
                return names, sizes
        raise AssertionError(f"{self.coll.rpc('List')} never ended (page_size={page_size})")

    def assert_absent(self, server, resource_id):
        err = expect_rpc_error(grpc.StatusCode.NOT_FOUND, self.coll.get, server,
                               self.name(resource_id))
        info, _ = error_details(err)
        assert info is not None and info.domain == ERROR_DOMAIN, info
        names, _ = self.list_all(server, 0)
        assert self.name(resource_id) not in names

    # 1. NOT_FOUND ----------------------------------------------------------
    def test_get_unknown_name_is_not_found(self, server):
        err = expect_rpc_error(grpc.StatusCode.NOT_FOUND, self.coll.get, server,
                               self.name(self.profile.resource_id("nf", 0)))
        info, _ = error_details(err)
        assert info is not None, "NOT_FOUND without an ErrorInfo"
        assert info.domain == ERROR_DOMAIN
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", info.reason), info.reason

    def test_delete_unknown_name_is_not_found(self, server):
        # The provider refuses the delete in its first answer, so the RPC
        # itself fails and no Operation is left behind (operation_runner.h:
        # a refused request can be corrected and retried with its request_id).
        name = self.name(self.profile.resource_id("nf", 1))
        request_id = str(uuid.uuid4())
        err = expect_rpc_error(grpc.StatusCode.NOT_FOUND, self.coll.delete, server, name,
                               request_id=request_id)
        info, _ = error_details(err)
        assert info is not None and info.domain == ERROR_DOMAIN, info
        assert operations_with_request_id(server, self.account, request_id) == []
        # The corrected request may reuse the request_id: allow_missing succeeds.
        op = server.wait(self.coll.delete(server, name, allow_missing=True,
                                          request_id=request_id), timeout=WAIT_SECONDS)
        assert not op.HasField("error"), op.error
        assert operation_metadata(op).target == name

    # 2. Paging -------------------------------------------------------------
    def test_every_page_returned_exactly_once(self, server):
        created = {r.name for r in self.create_many(server, "pg", 7)}
        assert len(created) == 7
        whole, _ = self.list_all(server, 1000)
        assert len(whole) == len(set(whole)), f"duplicates in one page: {whole}"
        assert created <= set(whole)
        for page_size in (1, 2, 3):
            names, sizes = self.list_all(server, page_size)
            assert all(size <= page_size for size in sizes), (page_size, sizes)
            assert len(names) == len(set(names)), f"page_size={page_size} repeated: {names}"
            assert set(names) == set(whole), f"page_size={page_size}: {names} vs {whole}"
            assert len(sizes) >= len(whole) // page_size  # really paged, not one page

    def test_garbage_page_token_is_invalid_argument(self, server):
        for token in ("garbage", "%%%not-base64%%%", "Y3AxOg"):  # last: "cp1:" and no key
            err = expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, self.coll.list_page,
                                   server, self.account, 2, token)
            info, bad = error_details(err)
            assert info is not None and info.domain == ERROR_DOMAIN, info
            assert bad is not None and [v.field for v in bad.field_violations] == ["page_token"]
        err = expect_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, self.coll.list_page,
                               server, self.account, -1)
        _, bad = error_details(err)
        assert bad is not None and [v.field for v in bad.field_violations] == ["page_size"]

    # 3. Idempotent delete --------------------------------------------------
    def test_delete_is_idempotent(self, server):
        (resource,) = self.create_many(server, "del", 1)
        request_id = str(uuid.uuid4())
        first = self.coll.delete(server, resource.name, request_id=request_id)
        again = self.coll.delete(server, resource.name, request_id=request_id)
        assert again.name == first.name
        done = server.wait(first, timeout=WAIT_SECONDS)
        assert not done.HasField("error"), done.error
        assert done.response.type_url.endswith("/google.protobuf.Empty"), done.response
        expect_rpc_error(grpc.StatusCode.NOT_FOUND, self.coll.get, server, resource.name)
        # The replay after completion is still the first Operation, not a new
        # delete that would now fail with NOT_FOUND.
        replay = self.coll.delete(server, resource.name, request_id=request_id)
        assert replay.name == first.name and replay.done and not replay.HasField("error")
        # A second delete of its own succeeds with allow_missing.
        second = server.wait(self.coll.delete(server, resource.name, allow_missing=True,
                                              request_id=str(uuid.uuid4())),
                             timeout=WAIT_SECONDS)
        assert second.name != first.name
        assert not second.HasField("error"), second.error
        assert len(operations_with_request_id(server, self.account, request_id)) == 1

    # 4. request_id replay --------------------------------------------------
    def test_replayed_request_id_returns_the_same_operation(self, server):
        request_id = str(uuid.uuid4())
        request = self.request("rid", 0, request_id=request_id)
        first = self.coll.create(server, request)
        again = self.coll.create(server, request)
        assert again.name == first.name
        resource = self.settle(server, first)
        after_done = self.coll.create(server, request)
        assert after_done.name == first.name and after_done.done
        assert not after_done.HasField("error"), after_done.error
        assert after_done.response == server.wait(first).response
        names, _ = self.list_all(server, 0)
        assert names.count(resource.name) == 1
        assert [op.name for op in operations_with_request_id(
            server, self.account, request_id)] == [first.name]

        # The same request_id with a different request: ALREADY_EXISTS, and
        # the different request is not carried out.
        other = self.request("rid", 1, request_id=request_id)
        err = expect_rpc_error(grpc.StatusCode.ALREADY_EXISTS, self.coll.create, server, other)
        info, _ = error_details(err)
        assert info is not None and info.domain == ERROR_DOMAIN, info
        assert info.reason == "REQUEST_ID_REUSED", info
        self.assert_absent(server, self.profile.resource_id("rid", 1))
        assert len(operations_with_request_id(server, self.account, request_id)) == 1

    # 5. Deadlines --------------------------------------------------------
    def test_expired_deadline_is_honoured_and_creates_nothing(self, server):
        request_id = str(uuid.uuid4())
        request = self.request("dl", 0, request_id=request_id)
        # A deadline that has passed when the call arrives: grpc-timeout 0n
        # (a timeout of 1n would be rounded up to 1 ms by gRPC core, see the
        # next test). The server itself must answer, not a client library.
        for verb, message in (("Create", request),
                              ("List", self.coll.list_request(self.account))):
            code, text, elapsed = raw_unary_call(server.address, self.coll.path(verb), message,
                                                 "0n")
            assert code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0], (verb, code, text)
            assert elapsed < PROMPT_SECONDS, (verb, elapsed)
        # The generated client with a deadline already past.
        started = time.monotonic()
        expect_rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, self.coll.create, server, request,
                         timeout=-1)
        assert time.monotonic() - started < PROMPT_SECONDS
        assert operations_with_request_id(server, self.account, request_id) == []
        self.assert_absent(server, self.profile.resource_id("dl", 0))
        # Nothing was recorded under the request_id: the same request with
        # time to spare is a fresh Operation that does the work.
        op = self.coll.create(server, request)
        assert operation_metadata(op).request_id == request_id
        resource = self.settle(server, op)
        assert resource.name == self.name(self.profile.resource_id("dl", 0))
        assert len(operations_with_request_id(server, self.account, request_id)) == 1

    def test_deadline_expiring_in_flight_is_safe_to_retry(self, server):
        # With ~1 ms the call may expire while the server works on it; gRPC's
        # DEADLINE_EXCEEDED then does not say whether the mutation happened.
        # It must have happened at most once, and a retry with the same
        # request_id must converge on one Operation and one resource.
        for n in range(3):
            request_id = str(uuid.uuid4())
            request = self.request("fl", n, request_id=request_id)
            started = time.monotonic()
            try:
                first = self.coll.create(server, request, timeout=0.001)
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED, err
                first = None
            assert time.monotonic() - started < PROMPT_SECONDS
            recorded = operations_with_request_id(server, self.account, request_id)
            assert len(recorded) <= 1, recorded
            retry = self.coll.create(server, request)
            if first is not None:
                assert retry.name == first.name
            if recorded:
                assert retry.name == recorded[0].name
            resource = self.settle(server, retry)
            names, _ = self.list_all(server, 0)
            assert names.count(resource.name) == 1
            assert [op.name for op in operations_with_request_id(
                server, self.account, request_id)] == [retry.name]

    # 6. Capabilities -------------------------------------------------------
    def test_capabilities_are_reported_and_enforced(self, server):
        account = server.accounts().GetAccount(accounts_pb2.GetAccountRequest(
            name=self.account), timeout=10)
        assert account.state == accounts_pb2.Account.READY, account.state_message
        methods = [c.method for c in account.capabilities]
        assert len(methods) == len(set(methods)), "a capability is listed twice"
        assert set(methods) == adapter_methods()
        supported = {c.method for c in account.capabilities if c.supported}
        provider = server.accounts().GetProvider(accounts_pb2.GetProviderRequest(
            name=account.provider), timeout=10)
        # The kind lists what it can do; an account supports that or, as its
        # configuration allows, less (a Phantom account without a REST API
        # has no locations).
        assert supported <= set(provider.supported_methods)
        for verb in ("List", "Get", "Create", "Delete"):
            assert self.coll.method(verb) in supported, self.coll.method(verb)

        unsupported = self.profile.unsupported_call()
        if unsupported is None:
            # The profile says this adapter implements the whole API.
            missing = sorted(set(methods) - supported)
            assert not missing, f"{self.profile.id} claims every RPC but lacks {missing}"
            return
        capability = {c.method: c.supported for c in account.capabilities}
        assert capability[unsupported.method] is False, unsupported.method
        before = len(account_operations(server, self.account))
        err = expect_rpc_error(grpc.StatusCode.UNIMPLEMENTED, unsupported.invoke, server)
        info, _ = error_details(err)
        assert info is not None, "UNIMPLEMENTED without an ErrorInfo"
        assert (info.reason, info.domain) == ("CAPABILITY_UNSUPPORTED", ERROR_DOMAIN), info
        assert info.metadata["method"] == unsupported.method, info.metadata
        assert len(account_operations(server, self.account)) == before

    # 7. State transitions --------------------------------------------------
    def test_create_operation_completes_in_the_settled_state(self, server):
        request_id = str(uuid.uuid4())
        op = self.coll.create(server, self.request("st", 0, request_id=request_id))
        name = self.name(self.profile.resource_id("st", 0))
        metadata = operation_metadata(op)
        assert metadata.method == self.coll.method("Create")
        assert metadata.account == self.account
        assert metadata.request_id == request_id
        assert metadata.HasField("create_time")

        done = server.wait(op, timeout=WAIT_SECONDS)
        assert done.done and not done.HasField("error"), done.error
        resource = self.coll.message()
        assert done.response.Unpack(resource), done.response
        assert resource.name == name
        assert self.profile.is_settled(resource), resource
        assert operation_metadata(done).HasField("end_time")
        assert self.profile.is_settled(self.coll.get(server, name))

        got = server.operations().GetOperation(operations_pb2.GetOperationRequest(
            name=op.name), timeout=10)
        assert got == done

    # 8. validate_only ------------------------------------------------------
    def test_validate_only_creates_nothing(self, server):
        request_id = str(uuid.uuid4())
        before, _ = self.list_all(server, 0)
        op = self.coll.create(server, self.request("vo", 0, request_id=request_id,
                                                   validate_only=True))
        assert op.done and not op.HasField("error"), op
        expect_rpc_error(grpc.StatusCode.NOT_FOUND, server.operations().GetOperation,
                         operations_pb2.GetOperationRequest(name=op.name), timeout=10)
        after, _ = self.list_all(server, 0)
        assert sorted(after) == sorted(before)
        self.assert_absent(server, self.profile.resource_id("vo", 0))
        assert operations_with_request_id(server, self.account, request_id) == []
        # The request_id was not used up: the real request does the work.
        resource = self.settle(server, self.coll.create(
            server, self.request("vo", 0, request_id=request_id)))
        # A validate_only delete leaves the resource in place.
        op = self.coll.delete(server, resource.name, validate_only=True)
        assert op.done and not op.HasField("error"), op
        assert self.coll.get(server, resource.name).name == resource.name

    # 9. The strict field contract -------------------------------------------
    def _call_method(self, server, full_method, request):
        service, method = full_method.rsplit(".", 1)
        call = server.channel.unary_unary(
            f"/{service}/{method}", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=longrunning_pb2.Operation.FromString)
        return call(request, timeout=10)

    def test_every_field_is_honoured_or_refused(self, server):
        """Every mutation x every settable request field: honoured (listed in
        Capability.honoured_fields and not refused) or refused with
        INVALID_ARGUMENT / FIELD_UNSUPPORTED naming it, before anything is
        done (no Operation recorded). Never accepted and dropped."""
        account = server.accounts().GetAccount(accounts_pb2.GetAccountRequest(
            name=self.account), timeout=10)
        namer = field_walk.Namer(_API_MODULES, self.profile.account_id)
        methods = {}
        for module in _API_MODULES:
            for service in module.DESCRIPTOR.services_by_name.values():
                for m in service.methods:
                    if m.output_type.full_name == "google.longrunning.Operation":
                        methods[f"{service.full_name}.{m.name}"] = (module, m)
        before = len(account_operations(server, self.account))
        pairs = honoured_count = refused_count = 0
        problems = []
        for capability in account.capabilities:
            if capability.method not in methods:
                assert not capability.honoured_fields, capability  # reads list none
                continue
            if not capability.supported:
                assert not capability.honoured_fields, capability
                continue
            module, method = methods[capability.method]
            request_class = getattr(module, method.input_type.name)
            for path in field_walk.settable_paths(method.input_type):
                pairs += 1
                honoured = field_walk.is_honoured(path, capability.honoured_fields)
                request = field_walk.request_with(request_class, path, namer,
                                                  str(uuid.uuid4()))
                # A field that is honoured is only validated (nothing is made
                # from arbitrary sample values); one that is not goes for real.
                if honoured and "validate_only" in request.DESCRIPTOR.fields_by_name:
                    request.validate_only = True
                refused = False
                try:
                    self._call_method(server, capability.method, request)
                except grpc.RpcError as e:
                    info, bad = error_details(e)
                    refused = (e.code() == grpc.StatusCode.INVALID_ARGUMENT and
                               info is not None and info.reason == "FIELD_UNSUPPORTED" and
                               bad is not None and
                               path in [v.field for v in bad.field_violations])
                if honoured and refused:
                    problems.append(f"{capability.method} {path}: listed as honoured, refused")
                elif not honoured and not refused:
                    problems.append(f"{capability.method} {path}: not honoured, yet not refused")
                honoured_count += honoured
                refused_count += refused
        print(f"field contract {self.profile.id}: {pairs} (method, field) pairs, "
              f"{honoured_count} honoured, {refused_count} refused")
        assert not problems, "\n".join(problems)
        assert len(account_operations(server, self.account)) == before
        assert pairs > 0

    def test_honoured_create_fields_are_visible_afterwards(self, server):
        """Each field of the resource that the collection's Create honours and
        Get can show (not INPUT_ONLY) is there after the create; each INPUT_ONLY
        one the profile's input_only_samples() names is shown its own way."""
        account = server.accounts().GetAccount(accounts_pb2.GetAccountRequest(
            name=self.account), timeout=10)
        create = self.coll.method("Create")
        honoured = next(c.honoured_fields for c in account.capabilities if c.method == create)
        field = self.coll.field
        base = self.profile.resource(0)
        already = {f.name for f, _ in base.ListFields()}
        samples = self.profile.field_samples()
        wanted, missing = [], []
        for h in honoured:
            if not h.startswith(field + "."):
                continue
            top = h[len(field) + 1:].split(".")[0]
            descriptor = base.DESCRIPTOR.fields_by_name[top]
            if (field_walk.field_behavior_pb2.INPUT_ONLY in field_walk.behaviors(descriptor)
                    or top in already):
                continue
            (wanted if top in samples else missing).append(top)
        assert not missing, (f"{self.profile.id}: {create} honours {missing} but the profile "
                             "has no field_samples() for them")
        for n, top in enumerate(sorted(set(wanted)), start=1):
            resource = self.profile.resource(n)
            value = samples[top]
            target = getattr(resource, top)
            if isinstance(value, dict):
                target.update(value)
            elif isinstance(value, list):
                target.extend(value)
            else:
                setattr(resource, top, value)
            made = self.settle(server, self.coll.create(server, self.coll.create_request(
                self.account, self.profile.resource_id("fv", n), resource, str(uuid.uuid4()))))
            got = self.coll.get(server, made.name)
            shown = getattr(got, top)
            if isinstance(value, dict):
                assert dict(value).items() <= dict(shown).items(), (top, shown)
            elif isinstance(value, list):
                assert list(shown) == value, (top, shown)
            else:
                assert shown == value, (top, shown)
        # INPUT_ONLY fields are never returned; the profile says how Get shows
        # that they arrived.
        input_only = self.profile.input_only_samples()
        unhonoured = [top for top in input_only if f"{field}.{top}" not in honoured]
        assert not unhonoured, (f"{self.profile.id}: input_only_samples() names {unhonoured}, "
                                f"which {create} does not honour")
        for n, top in enumerate(sorted(input_only), start=len(set(wanted)) + 1):
            value, visible = input_only[top]
            resource = self.profile.resource(n)
            setattr(resource, top, value)
            made = self.settle(server, self.coll.create(server, self.coll.create_request(
                self.account, self.profile.resource_id("fv", n), resource, str(uuid.uuid4()))))
            got = self.coll.get(server, made.name)
            assert not getattr(got, top), (top, "INPUT_ONLY, yet returned")
            assert visible(got), (top, got.provider_details)

