"""The audit trail (issue 12) through the real server: accepted mutations,
cancels and deletes and every refused call are AuditEvents in the state
database (AuditService.ListAuditEvents, ADMIN only, filtered and paged) and
one JSON line each in the server log; no API key is written anywhere;
operations name the principal that started them."""
import collections
import json
import sqlite3
import time

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import code_pb2

from cloudplane_testing import (Server, audit_pb2, common_pb2, compute_pb2, error_details,
                                operations_pb2)
from tenancy_testing import ADMIN, OPERATOR, VIEWER, Principal, server_config, wait

CREATE = "cloudplane.v1.ComputeService.CreateInstance"
LIST_INSTANCES = "cloudplane.v1.ComputeService.ListInstances"
GET_INSTANCE = "cloudplane.v1.ComputeService.GetInstance"
LIST_AUDIT = "cloudplane.v1.AuditService.ListAuditEvents"


def people():
    return {
        "operator": Principal.with_key("operator@alpha", "operator-alpha",
                                       roles={"alpha": OPERATOR}),
        "viewer": Principal.with_key("viewer@alpha", "viewer-alpha", roles={"alpha": VIEWER}),
        "admin": Principal.with_key("admin@alpha", "admin-alpha", roles={"alpha": ADMIN}),
        "root": Principal.with_key("admin@*", "admin-all", roles={"*": ADMIN}),
        "nobody": Principal.with_key("nobody", "nobody"),
        "bad": Principal.with_key("bad key", "unknown", configured=False),
    }


BINDINGS = [
    (OPERATOR, ["operator-alpha"], [], ["alpha"]),
    (VIEWER, ["viewer-alpha"], [], ["alpha"]),
    (ADMIN, ["admin-alpha"], [], ["alpha"]),
    (ADMIN, ["admin-all"], [], ["*"]),
]


def now_ts():
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


def create_request(account, instance_id, request_id=""):
    a = f"accounts/{account}"
    return compute_pb2.CreateInstanceRequest(
        parent=a, instance_id=instance_id, request_id=request_id,
        instance=compute_pb2.Instance(image=a + "/images/debian-12",
                                      machine_type=a + "/machineTypes/small"))


class Story:
    """What the fixture did, to look for in the audit trail."""


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    p = people()
    server = Server(tmp_path_factory.mktemp("audit"),
                    server_config(list(p.values()), BINDINGS, transition_ms=300)).start()
    s = Story()
    s.server, s.p = server, p
    compute = server.compute()
    try:
        s.t0 = now_ts()
        time.sleep(0.05)
        # An accepted mutation.
        op = compute.CreateInstance(create_request("alpha", "audited-1", "audit-req-1"),
                                    metadata=p["operator"].metadata())
        s.create_op = wait(server, op, p["operator"].metadata())
        time.sleep(0.05)
        s.t1 = now_ts()
        time.sleep(0.05)
        # Refused: role too low, no credential, a bad one, an invisible account.
        for who, call in (
                ("viewer", lambda md: compute.CreateInstance(
                    create_request("alpha", "denied-1", "audit-req-denied"), metadata=md)),
                ("anonymous", lambda md: compute.ListInstances(
                    compute_pb2.ListInstancesRequest(parent="accounts/alpha"), metadata=md)),
                ("bad", lambda md: compute.ListInstances(
                    compute_pb2.ListInstancesRequest(parent="accounts/alpha"), metadata=md)),
                ("nobody", lambda md: compute.GetInstance(
                    compute_pb2.GetInstanceRequest(name="accounts/alpha/instances/audited-1"),
                    metadata=md))):
            md = p[who].metadata() if who in p else []
            with pytest.raises(grpc.RpcError):
                call(md)
        # A cancel (of a running operation) and a delete of it.
        op = compute.CreateInstance(create_request("alpha", "audited-2", "audit-req-2"),
                                    metadata=p["operator"].metadata())
        s.cancelled_op = op.name
        server.operations().CancelOperation(operations_pb2.CancelOperationRequest(name=op.name),
                                            metadata=p["operator"].metadata())
        wait(server, op, p["operator"].metadata())
        server.operations().DeleteOperation(operations_pb2.DeleteOperationRequest(name=op.name),
                                            metadata=p["root"].metadata())
        # Something in beta, which admin@alpha must not see.
        wait(server, compute.CreateInstance(create_request("beta", "beta-1", "audit-req-beta"),
                                            metadata=p["root"].metadata()), p["root"].metadata())
        time.sleep(0.05)
        s.t2 = now_ts()
        # The store is written in batches shortly after the calls.
        deadline = time.monotonic() + 10
        while not any(e.request_id == "audit-req-beta" for e in list_all(server, p["root"])):
            assert time.monotonic() < deadline, "the audit events never reached the store"
            time.sleep(0.1)
    except BaseException:
        print(server.log())
        server.stop()
        raise
    yield s
    assert server.stop() == 0, server.log()


def list_all(server, caller, page_size=1000, **filters):
    events, token = [], ""
    while True:
        page = server.audit().ListAuditEvents(audit_pb2.ListAuditEventsRequest(
            page_size=page_size, page_token=token, **filters), metadata=caller.metadata(),
            timeout=10)
        events.extend(page.audit_events)
        token = page.next_page_token
        if not token:
            return events


def only(events, **fields):
    found = [e for e in events if all(getattr(e, k) == v for k, v in fields.items())]
    assert len(found) == 1, (fields, found)
    return found[0]


def test_a_mutation_is_audited_with_its_operation(story):
    events = list_all(story.server, story.p["root"])
    event = only(events, method=CREATE, request_id="audit-req-1")
    assert event.principal == "operator-alpha"
    assert event.credential == "api_key"
    assert event.resource == "accounts/alpha/instances/audited-1"
    assert event.account == "accounts/alpha"
    assert event.permission == "compute.CreateInstance"
    assert event.code == code_pb2.OK
    assert event.message == ""
    assert event.operation == story.create_op.name
    assert event.name.startswith("auditEvents/")
    assert story.t0.ToNanoseconds() <= event.time.ToNanoseconds() <= story.t1.ToNanoseconds()


def test_refused_calls_are_audited(story):
    events = list_all(story.server, story.p["root"])
    denied = only(events, method=CREATE, principal="viewer-alpha")
    assert (denied.code, denied.account, denied.permission, denied.resource) == (
        code_pb2.PERMISSION_DENIED, "accounts/alpha", "compute.CreateInstance",
        "accounts/alpha/instances/denied-1")
    assert denied.operation == ""
    refused = [e for e in events if e.method == LIST_INSTANCES]
    assert sorted(e.code for e in refused) == [code_pb2.UNAUTHENTICATED] * 2, refused
    assert all(e.principal == "" and e.account == "" for e in refused), refused
    hidden = only(events, method=GET_INSTANCE)
    assert (hidden.principal, hidden.code) == ("nobody", code_pb2.NOT_FOUND)
    # Last, so the rest is checked first: the refused request carried a
    # request_id ("The request's `request_id`, if it had one").
    assert denied.request_id == "audit-req-denied"


def test_cancel_and_delete_are_audited(story):
    events = list_all(story.server, story.p["root"])
    cancel = only(events, method="google.longrunning.Operations.CancelOperation")
    assert (cancel.principal, cancel.resource) == ("operator-alpha", story.cancelled_op)
    assert cancel.account == "accounts/alpha"
    delete = only(events, method="google.longrunning.Operations.DeleteOperation")
    assert (delete.principal, delete.resource, delete.code) == (
        "admin-all", story.cancelled_op, code_pb2.OK)


def test_filters(story):
    server, root = story.server, story.p["root"]
    alpha = list_all(server, root, account="accounts/alpha")
    assert alpha and all(e.account == "accounts/alpha" for e in alpha)
    assert any(e.request_id == "audit-req-1" for e in alpha)
    beta = list_all(server, root, account="accounts/beta")
    assert "audit-req-beta" in {e.request_id for e in beta}
    assert all(e.account == "accounts/beta" for e in beta)
    by_operator = list_all(server, root, principal="operator-alpha")
    assert by_operator and all(e.principal == "operator-alpha" for e in by_operator)
    assert {e.method for e in by_operator} >= {CREATE,
                                              "google.longrunning.Operations.CancelOperation"}
    # [t0, t1) holds the first create only; [t1, t2) everything after it.
    window = list_all(server, root, start_time=story.t0, end_time=story.t1)
    assert [e.request_id for e in window] == ["audit-req-1"], window
    later = list_all(server, root, start_time=story.t1, end_time=story.t2)
    assert "audit-req-1" not in {e.request_id for e in later}
    assert any(e.method == CREATE and e.principal == "viewer-alpha" for e in later)
    assert list_all(server, root, end_time=story.t0) == []
    combined = list_all(server, root, account="accounts/alpha", principal="viewer-alpha")
    assert any(e.method == CREATE for e in combined)
    assert all((e.account, e.principal) == ("accounts/alpha", "viewer-alpha") for e in combined)


def test_paging_newest_first(story):
    server, root = story.server, story.p["root"]
    whole = list_all(server, root)
    assert len(whole) >= 8
    paged = list_all(server, root, page_size=2)
    assert [e.name for e in paged] == [e.name for e in whole]
    assert len({e.name for e in paged}) == len(paged)
    times = [e.time.ToNanoseconds() for e in whole]
    assert times == sorted(times, reverse=True)
    first = server.audit().ListAuditEvents(audit_pb2.ListAuditEventsRequest(page_size=3),
                                           metadata=root.metadata())
    assert len(first.audit_events) == 3 and first.next_page_token


def test_admin_of_one_account_sees_only_it(story):
    server, admin = story.server, story.p["admin"]
    events = list_all(server, admin)
    assert events and all(e.account == "accounts/alpha" for e in events), events
    with pytest.raises(grpc.RpcError) as err:
        list_all(server, admin, account="accounts/beta")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    info, _ = error_details(err.value)
    assert info.reason == "ACCOUNT_NOT_FOUND"


@pytest.mark.parametrize("who", ["viewer", "operator", "nobody"])
def test_who_is_not_admin_is_denied(story, who):
    principal = story.p[who]
    for filters in ({}, {"account": "accounts/alpha"}):
        with pytest.raises(grpc.RpcError) as err:
            story.server.audit().ListAuditEvents(
                audit_pb2.ListAuditEventsRequest(**filters), metadata=principal.metadata())
        if who == "nobody" and filters:
            # No role on alpha: alpha does not exist for it.
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            continue
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        info, _ = error_details(err.value)
        assert info.reason == "PERMISSION_MISSING"
        assert info.metadata["permission"] == "audit.ListAuditEvents"


LOG_KEYS = ("principal", "credential", "method", "resource", "account", "request_id",
            "permission", "code", "message", "operation")


def audit_lines(log):
    lines = []
    for line in log.splitlines():
        if line.startswith('{"audit"'):
            lines.append(json.loads(line)["audit"])
        else:
            assert '"audit"' not in line, f"an audit record that is not a JSON line: {line}"
    return lines


def test_one_json_log_line_per_event(story):
    server, root = story.server, story.p["root"]
    deadline = time.monotonic() + 5
    while True:
        lines = audit_lines(server.log())
        # Refused ListAuditEvents calls of the other tests are events too;
        # compare with a listing taken after the log was read.
        events = list_all(server, root)
        if len(lines) == len(events) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(lines) == len(events), (len(lines), len(events))
    logged = collections.Counter(tuple(line.get(k) for k in LOG_KEYS) for line in lines)
    stored = collections.Counter(
        (e.principal, e.credential, e.method, e.resource, e.account, e.request_id, e.permission,
         code_pb2.Code.Name(e.code), e.message, e.operation) for e in events)
    assert logged == stored, (logged - stored, stored - logged)


def test_no_api_key_in_the_log_or_the_state(story):
    keys = [p.key.encode() for p in story.p.values()]
    files = [f for f in story.server.state_dir.rglob("*") if f.is_file()]
    assert any(f.name == "server.log" for f in files)
    assert any(f.name.endswith(".db") for f in files)
    for path in files:
        data = path.read_bytes()
        for key in keys:
            assert key not in data, f"an API key in {path.name}"


def test_operations_carry_the_principal(story):
    op = story.server.operations().GetOperation(
        operations_pb2.GetOperationRequest(name=story.create_op.name),
        metadata=story.p["viewer"].metadata())
    metadata = common_pb2.OperationMetadata()
    assert op.metadata.Unpack(metadata)
    assert metadata.principal == "operator-alpha"


def test_retention_removes_old_events_from_the_state(tmp_path):
    """audit_retention_seconds: the server deletes stored events older than the
    retention (at its first audit write after a start), logs how many, and
    keeps the newer ones; the sequence goes on above the deleted events."""
    p = people()
    server = Server(tmp_path, server_config(list(p.values()), BINDINGS)
                    + "audit_retention_seconds: %d\n" % (3 * 86400))
    server.start()
    try:
        wait(server, server.compute().CreateInstance(
            create_request("alpha", "kept-1", "retention-req-1"),
            metadata=p["operator"].metadata()), p["operator"].metadata())
        deadline = time.monotonic() + 10
        while not any(e.request_id == "retention-req-1" for e in list_all(server, p["root"])):
            assert time.monotonic() < deadline, "the audit event never reached the store"
            time.sleep(0.1)
    finally:
        assert server.stop() == 0, server.log()

    # While the server is down, add events from 4 and 2 days ago (copies of
    # the stored one with their time and principal changed).
    db = tmp_path / "cloudplane.db"
    now = time.time()
    with sqlite3.connect(db) as conn:
        template = conn.execute(
            "SELECT bytes FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()[0]
        for principal, age_days in (("aged-4d", 4), ("aged-2d", 2)):
            event = audit_pb2.AuditEvent.FromString(template)
            event.principal = principal
            event.time.FromMicroseconds(int((now - age_days * 86400) * 1e6))
            conn.execute("INSERT INTO audit_events (time_us, principal, account, bytes) "
                         "VALUES (?, ?, 'alpha', ?)",
                         (event.time.ToMicroseconds(), principal, event.SerializeToString()))
        highest = conn.execute("SELECT max(seq) FROM audit_events").fetchone()[0]
    conn.close()

    server.start()
    try:
        # A refused call is audited: its flush is the first after the start.
        with pytest.raises(grpc.RpcError):
            server.compute().ListInstances(
                compute_pb2.ListInstancesRequest(parent="accounts/alpha"))
        deadline = time.monotonic() + 10
        while "removed 1 events older than" not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        events = list_all(server, p["root"])
        principals = [e.principal for e in events]
        assert "aged-4d" not in principals
        assert "aged-2d" in principals
        assert any(e.request_id == "retention-req-1" for e in events)
        refused = only(events, code=code_pb2.UNAUTHENTICATED, method=LIST_INSTANCES)
        assert int(refused.name.split("/")[1]) > highest
    finally:
        assert server.stop() == 0, server.log()
