"""No leaks between tenants (issue 12): two tenants, each OPERATOR (and a
second principal ADMIN) on its own sandbox account, seed resources and
operations; then every read either of them can make — every List/Get of the
method table on its own account and on the other's, the accounts and
provider catalogue, operations (listed, filtered, and Get/Wait/Cancel/Delete
on the other's names), provider operations, Watch on `accounts/-` (replayed
and live) and the audit log — is searched byte for byte for the other
tenant's account id, resource ids, operation ids, request ids and principals.
A token the request itself carried does not count (an error may echo the name
it was asked about).
"""
import queue
import threading
import time
import uuid

import grpc
import pytest

from cloudplane_testing import Server, compute_pb2, watch_pb2
from tenancy_testing import (ADMIN, OPERATOR, VIEWER, Names, Principal, Refusal, all_methods,
                             invoke, message_class, refusal, request_for, seed, server_config,
                             table_roles, wait)

WATCH_WINDOW = 2.5  # Seconds a replayed Watch is read after its first message.


class Tenant:
    def __init__(self, label, account):
        self.label = label
        self.account = account
        self.suffix = "-" + uuid.uuid4().hex[:6]
        self.operator = Principal.with_key(f"{label} operator", f"{label}-operator")
        self.admin = Principal.with_key(f"{label} admin", f"{label}-admin")
        self.tokens = {account, self.operator.name, self.admin.name}
        self.operations = []

    @property
    def readers(self):
        return (self.operator, self.admin)

    def learn(self, seeded):
        for key in ("instance", "volume", "firewall", "rule"):
            resource_id = seeded[key].rsplit("/", 1)[1]
            if len(resource_id) >= 6:  # Short server-made ids could match by chance.
                self.tokens.add(resource_id)
        for name in seeded["operations"]:
            self.operations.append(name)
            self.tokens.add(name.split("/", 1)[1])
        self.tokens.add(f"seed-i1{self.suffix}-{self.account}")  # request_id


@pytest.fixture(scope="module")
def tenants(tmp_path_factory):
    a, b = Tenant("tenant-a", "alphacorp"), Tenant("tenant-b", "betacorp")
    people = [p for t in (a, b) for p in t.readers]
    bindings = [(OPERATOR, [t.operator.name], [], [t.account]) for t in (a, b)]
    bindings += [(ADMIN, [t.admin.name], [], [t.account]) for t in (a, b)]
    server = Server(tmp_path_factory.mktemp("leaks"),
                    server_config(people, bindings, accounts=(a.account, b.account))).start()
    try:
        for t in (a, b):
            seeded = seed(server, t.operator, t.account, t.suffix)
            t.learn(seeded)
            t.names = Names({"instance": f"i1{t.suffix}", "volume": f"v1{t.suffix}",
                             "firewall": f"fw1{t.suffix}",
                             "rule": seeded["rule"].rsplit("/", 1)[1],
                             "image": "debian-12", "machine_type": "small"})
    except BaseException:
        print(server.log())
        server.stop()
        raise
    yield server, a, b
    assert server.stop() == 0, server.log()


class Search:
    """Counts reads and leaks: a read leaks when its answer holds a token of
    the other tenant that the request did not carry."""

    def __init__(self):
        self.reads = 0
        self.leaks = []
        self.own_hits = 0

    def answer_bytes(self, got):
        if isinstance(got, Refusal):
            return (got.message.encode() + got.raw + repr(got.metadata).encode())
        if isinstance(got, list):
            return b"".join(self.answer_bytes(g) for g in got)
        return got.SerializeToString()

    def check(self, what, reader, other, request_bytes, got, own=None, ignore=()):
        self.reads += 1
        data = self.answer_bytes(got)
        for token in sorted(other.tokens):
            if token.encode() in request_bytes or token in ignore:
                continue
            if token.encode() in data:
                self.leaks.append(f"{what} as {reader.label}: holds {other.label}'s {token!r}")
        if own is not None and any(tok.encode() in data for tok in own.tokens
                                   if tok != own.account):
            self.own_hits += 1
        return got


def call(server, method, request, reader):
    return invoke(server.channel, method, request, reader.metadata())


def read_watch(server, reader, request, timeout=60):
    """Opens a Watch; a thread pumps its messages into a queue (None at the
    end). Returns (call, queue, [error]) for drain()."""
    messages = queue.Queue()
    call_ = server.watch().Watch(request, metadata=reader.metadata(), timeout=timeout)
    error = []

    def pump():
        try:
            for change in call_:
                messages.put(change)
        except grpc.RpcError as e:
            error.append(e)
        messages.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return call_, messages, error


def drain(call_, messages, error, until=None, window=WATCH_WINDOW, first_timeout=10):
    """The messages read for `window` seconds after the first one (or until
    `until(messages)` holds), or the stream's Refusal."""
    got = []
    deadline = None
    start = time.monotonic()
    while True:
        if deadline is None:
            remaining = first_timeout - (time.monotonic() - start)
        else:
            remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            item = messages.get(timeout=remaining)
        except queue.Empty:
            break
        if item is None:
            break
        got.append(item)
        if deadline is None:
            deadline = time.monotonic() + window
        if until is not None and until(got):
            break
    call_.cancel()
    if error and error[0].code() != grpc.StatusCode.CANCELLED:
        return refusal(error[0])
    return got


def test_no_read_shows_the_other_tenant(tenants):
    server, a, b = tenants
    search = Search()
    methods = all_methods()
    reads = [methods[m] for m, role in sorted(table_roles().items()) if role == VIEWER]
    assert reads, "the method table lists no reads"
    ops = {m: methods[f"google.longrunning.Operations.{m}"]
           for m in ("ListOperations", "GetOperation", "WaitOperation", "CancelOperation",
                     "DeleteOperation")}
    acct = {m: methods[f"cloudplane.v1.AccountsService.{m}"]
            for m in ("ListAccounts", "GetAccount", "ListProviders", "GetProvider")}
    audit = methods.get("cloudplane.v1.AuditService.ListAuditEvents")
    assert audit is not None, "no AuditService in the descriptors"

    def req(method, **fields):
        return message_class(method.input_type)(**fields)

    for me, other in ((a, b), (b, a)):
        for reader in me.readers:
            def look(what, method, request, own=None):
                got = call(server, method, request, reader)
                search.check(what, reader, other, request.SerializeToString(), got, own)
                return got

            # Every read of the method table, own account and the other's.
            for method in reads:
                look(f"{method.name}({me.account})", method,
                     request_for(method, me.account, me.names), own=me)
                look(f"{method.name}({other.account})", method,
                     request_for(method, other.account, other.names))
            # Accounts and providers.
            look("ListAccounts", acct["ListAccounts"], req(acct["ListAccounts"]))
            look("GetAccount(own)", acct["GetAccount"],
                 req(acct["GetAccount"], name=f"accounts/{me.account}"))
            look("GetAccount(other)", acct["GetAccount"],
                 req(acct["GetAccount"], name=f"accounts/{other.account}"))
            look("ListProviders", acct["ListProviders"], req(acct["ListProviders"]))
            look("GetProvider", acct["GetProvider"],
                 req(acct["GetProvider"], name="providers/sandbox"))
            # Operations: listed, filtered, and the other's by name.
            look("ListOperations", ops["ListOperations"],
                 req(ops["ListOperations"], name="operations"), own=me)
            look("ListOperations('')", ops["ListOperations"], req(ops["ListOperations"]))
            look("ListOperations(own filter)", ops["ListOperations"],
                 req(ops["ListOperations"], name="operations",
                     filter=f"account=accounts/{me.account}"), own=me)
            got = look("ListOperations(other filter)", ops["ListOperations"],
                       req(ops["ListOperations"], name="operations",
                           filter=f"account=accounts/{other.account}"))
            if not isinstance(got, Refusal) and got.operations:
                search.leaks.append(f"ListOperations filtered by {other.account} as "
                                    f"{reader.label}: {len(got.operations)} operations")
            for name in other.operations:
                for m in ("GetOperation", "WaitOperation", "CancelOperation",
                          "DeleteOperation"):
                    request = req(ops[m], name=name)
                    if m == "WaitOperation":
                        request.timeout.FromMilliseconds(200)
                    got = look(f"{m}({name})", ops[m], request)
                    if not isinstance(got, Refusal) or got.code != grpc.StatusCode.NOT_FOUND:
                        search.leaks.append(f"{m} of {other.label}'s {name} as {reader.label}:"
                                            f" {got if isinstance(got, Refusal) else 'OK'}")
            # Provider operations.
            for account in (me.account, other.account):
                look(f"providerOperations({account})", ops["ListOperations"],
                     req(ops["ListOperations"], name=f"accounts/{account}/providerOperations"))
                look(f"providerOperations/p1({account})", ops["GetOperation"],
                     req(ops["GetOperation"], name=f"accounts/{account}/providerOperations/p1"))
            # Watch: the other's account directly, and every account replayed.
            request = watch_pb2.WatchRequest(parent=f"accounts/{other.account}",
                                             heartbeat_interval_seconds=1)
            got = drain(*read_watch(server, reader, request))
            search.check(f"Watch({other.account})", reader, other,
                         request.SerializeToString(), got)
            if not isinstance(got, Refusal):
                search.leaks.append(f"Watch on {other.account} as {reader.label} was accepted")
            request = watch_pb2.WatchRequest(parent="accounts/-", start_after_sequence=1,
                                             heartbeat_interval_seconds=1)
            got = drain(*read_watch(server, reader, request))
            search.check("Watch(accounts/-, replay)", reader, other,
                         request.SerializeToString(), got, own=me)
            # The audit log, wherever the reader may read it. The reader's
            # account's log rightly names the other tenant's principals
            # where they were refused on it (the reads above); those names
            # are no leak, any other token or event of another account is.
            for what, fields in (("", {}), ("own", {"account": f"accounts/{me.account}"}),
                                 ("other", {"account": f"accounts/{other.account}"}),
                                 ("other principal", {"principal": other.operator.name})):
                request = req(audit, page_size=1000, **fields)
                got = call(server, audit, request, reader)
                search.check(f"ListAuditEvents({what})", reader, other,
                             request.SerializeToString(), got,
                             ignore={other.operator.name, other.admin.name})
                if isinstance(got, Refusal):
                    continue
                for event in got.audit_events:
                    if event.account != f"accounts/{me.account}":
                        search.leaks.append(f"ListAuditEvents({what}) as {reader.label}: an "
                                            f"event of {event.account or 'no account'}")
                    elif event.principal in (other.operator.name, other.admin.name) \
                            and event.code == 0:
                        search.leaks.append(f"ListAuditEvents({what}) as {reader.label}: "
                                            f"{event.principal} was allowed {event.method}")

    # Live: a Watch on accounts/- stays open while the other tenant creates
    # something; the reader's own change proves the stream was live.
    for me, other in ((a, b), (b, a)):
        request = watch_pb2.WatchRequest(parent="accounts/-", heartbeat_interval_seconds=1)
        stream = read_watch(server, me.operator, request)
        first = stream[1].get(timeout=10)  # Open before anything is created.
        assert first is not None, stream[2]
        theirs = f"live{other.suffix}-{uuid.uuid4().hex[:4]}"
        mine = f"live{me.suffix}-{uuid.uuid4().hex[:4]}"
        other.tokens.add(theirs)
        for t, instance_id in ((other, theirs), (me, mine)):
            op = server.compute().CreateInstance(compute_pb2.CreateInstanceRequest(
                parent=f"accounts/{t.account}", instance_id=instance_id,
                instance=compute_pb2.Instance(
                    image=f"accounts/{t.account}/images/debian-12",
                    machine_type=f"accounts/{t.account}/machineTypes/small")),
                metadata=t.operator.metadata())
            t.operations.append(op.name)
            t.tokens.add(op.name.split("/", 1)[1])
            assert not wait(server, op, t.operator.metadata()).HasField("error")
        got = drain(*stream, until=lambda msgs: any(m.resource_name.endswith("/" + mine)
                                                    for m in msgs), window=15)
        assert not isinstance(got, Refusal), got
        assert any(m.resource_name.endswith("/" + mine) for m in got), \
            "the live Watch never showed the reader's own change"
        search.check("Watch(accounts/-, live)", me.operator, other, b"", [first] + got)

    line = f"leaks: {search.reads} cross-tenant reads, {len(search.leaks)} leaks"
    print("\n".join(search.leaks[:100]))
    print(line)
    # The reads were real: many answers held the reader's own tokens.
    assert search.own_hits >= 6, f"only {search.own_hits} reads returned the reader's own data"
    assert not search.leaks, line + "\n" + "\n".join(search.leaks[:60])
