"""The authorization matrix (issue 12): every method of every service, read
from the generated descriptors, called by every kind of principal on two
sandbox accounts and on one that does not exist, through the real server.

Expected role per method: the method table (adapters/api/*.inc: CP_READ →
VIEWER, CP_MUTATION → OPERATOR) plus the explicit rows below for the
services outside it. A method neither knows fails the test, so a new RPC
cannot be left out. Outcomes (checked in this order by the server):
  - no credential → UNAUTHENTICATED/CREDENTIALS_MISSING, unknown key →
    UNAUTHENTICATED/CREDENTIALS_INVALID;
  - no role on the account → exactly the answer for the missing account
    `gamma` (NOT_FOUND/ACCOUNT_NOT_FOUND, same message once the account id is
    substituted); for an operation, exactly the answer for a missing one;
  - role too low → PERMISSION_DENIED/PERMISSION_MISSING naming the method's
    permission;
  - otherwise allowed: any other code (mutations are validate_only, so
    nothing changes).
"""
import time
import uuid

import grpc
import pytest

from cloudplane_testing import (Server, accounts_pb2, autoscaling_pb2, billing_pb2, common_pb2,
                                compute_pb2, units_pb2, watch_pb2)
from tenancy_testing import (ACCOUNTS, ADMIN, MISSING, OPERATOR, VIEWER, Names, Principal,
                             Refusal, all_methods, invoke, message_class, permission,
                             request_for, seed, server_config, table_roles, wait)

DENIED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


def principals():
    return [
        Principal.with_key("viewer@alpha", "viewer-alpha", roles={"alpha": VIEWER}),
        Principal.with_key("operator@alpha", "operator-alpha", roles={"alpha": OPERATOR}),
        Principal.with_key("admin@alpha", "admin-alpha", roles={"alpha": ADMIN}),
        Principal.with_key("admin@*", "admin-all", roles={"*": ADMIN}),
        Principal.with_key("group ops (operator@beta)", "ops-member", groups=["ops"],
                           roles={"beta": OPERATOR}),
        Principal.with_key("nobody", "nobody"),
        Principal("anonymous"),
        Principal.with_key("bad key", "unknown", configured=False),
    ]


BINDINGS = [
    (VIEWER, ["viewer-alpha"], [], ["alpha"]),
    (OPERATOR, ["operator-alpha"], [], ["alpha"]),
    (ADMIN, ["admin-alpha"], [], ["alpha"]),
    (ADMIN, ["admin-all"], [], ["*"]),
    (OPERATOR, [], ["ops"], ["beta"]),
]


class World:
    """The running server, its principals, the seeded names and operations."""

    def __init__(self, server, people):
        self.server = server
        self.people = people
        self.by_label = {p.label: p for p in people}
        self.root = self.by_label["admin@*"]
        self.seeded = {}
        self.ghosts = 0

    def md(self):
        return self.root.metadata()

    def fresh_operation(self, account):
        """A finished real operation in `account` that changes nothing: a
        delete of an instance that never existed, with allow_missing."""
        self.ghosts += 1
        op = self.server.compute().DeleteInstance(compute_pb2.DeleteInstanceRequest(
            name=f"accounts/{account}/instances/ghost-{self.ghosts}", allow_missing=True),
            metadata=self.md())
        return wait(self.server, op, self.md()).name


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    people = principals()
    server = Server(tmp_path_factory.mktemp("matrix"), server_config(people, BINDINGS)).start()
    w = World(server, people)
    md = w.md()
    ids = {}
    try:
        for account in ACCOUNTS:
            a = f"accounts/{account}"
            w.seeded[account] = seed(server, w.root, account)
            # The rest of the kinds, so the validate_only calls find their targets.
            auto = server.autoscaling()
            for op in (
                auto.CreateLaunchTemplate(autoscaling_pb2.CreateLaunchTemplateRequest(
                    parent=a, launch_template_id="lt1",
                    launch_template=autoscaling_pb2.LaunchTemplate(
                        image=a + "/images/debian-12", machine_type=a + "/machineTypes/small")),
                    metadata=md),
                server.units().CreateUnit(units_pb2.CreateUnitRequest(
                    parent=a, unit_id="u1.service", unit=units_pb2.Unit(
                        desired_state=units_pb2.Unit.LOADED,
                        options=[units_pb2.UnitOption(section="Service", name="ExecStart",
                                                      value="/bin/true")])), metadata=md)):
                assert not wait(server, op, md).HasField("error")
            op = auto.CreateScalingGroup(autoscaling_pb2.CreateScalingGroupRequest(
                parent=a, scaling_group_id="sg1", scaling_group=autoscaling_pb2.ScalingGroup(
                    launch_template=a + "/launchTemplates/lt1", target_size=1)), metadata=md)
            assert not wait(server, op, md).HasField("error")
        a = f"accounts/{ACCOUNTS[0]}"
        compute = server.compute()
        last = lambda items: items[0].name.rsplit("/", 1)[1]  # noqa: E731
        ids = {
            "instance": "i1", "volume": "v1", "firewall": "fw1",
            "rule": w.seeded[ACCOUNTS[0]]["rule"].rsplit("/", 1)[1],
            "launch_template": "lt1", "scaling_group": "sg1", "unit": "u1.service",
            "image": "debian-12", "machine_type": "small",
            "location": last(compute.ListLocations(compute_pb2.ListLocationsRequest(
                parent=a), metadata=md).locations),
            "host": last(compute.ListHosts(compute_pb2.ListHostsRequest(parent=a),
                                           metadata=md).hosts),
            "billing_code": last(server.billing().ListBillingCodes(
                billing_pb2.ListBillingCodesRequest(parent=a), metadata=md).billing_codes),
            "machine": last(server.units().ListMachines(units_pb2.ListMachinesRequest(
                parent=a), metadata=md).machines),
        }
        # Both accounts hold the same ids (the rule's id may differ).
        assert w.seeded[ACCOUNTS[1]]["rule"].rsplit("/", 1)[1] == ids["rule"]
    except BaseException:
        print(server.log())
        server.stop()
        raise
    w.names = Names(ids)
    yield w
    assert server.stop() == 0, server.log()


# ---- Cases -------------------------------------------------------------------

class Case:
    """One way to call a method. kind:
      account     the request names accounts/{a}; needs `role` on a
      operation   the request names an operation of account a; needs `role`
      providers   the provider catalogue: VIEWER on at least one account
      accounts    ListAccounts: any authenticated caller, filtered
      operations  ListOperations filtered by account: any caller, filtered
    """

    def __init__(self, method, kind, role, build, perm=None, label=None):
        self.method = method
        self.kind = kind
        self.role = role
        self.build = build
        self.perm = perm or permission(method)
        self.label = label or method.full_name


def explicit_cases(method, world):
    """Rows for the methods outside the method table (semantics of issue 12)."""
    full = method.full_name
    new = message_class(method.input_type)

    def op_name(account):
        return (world.seeded[account]["operations"][0] if account in ACCOUNTS
                else f"operations/{uuid.uuid4().hex}")

    if full == "cloudplane.v1.AccountsService.GetAccount":
        return [Case(method, "account", VIEWER, lambda a: new(name=f"accounts/{a}"))]
    if full == "cloudplane.v1.AccountsService.ListAccounts":
        return [Case(method, "accounts", None, lambda a: new())]
    if full == "cloudplane.v1.AccountsService.ListProviders":
        return [Case(method, "providers", VIEWER, lambda a: new())]
    if full == "cloudplane.v1.AccountsService.GetProvider":
        return [Case(method, "providers", VIEWER, lambda a: new(name="providers/sandbox"))]
    if full == "cloudplane.v1.WatchService.Watch":
        return [Case(method, "account", VIEWER,
                     lambda a: new(parent=f"accounts/{a}", heartbeat_interval_seconds=1))]
    if full == "cloudplane.v1.AuditService.ListAuditEvents":
        return [Case(method, "account", ADMIN, lambda a: new(account=f"accounts/{a}"))]
    if full == "google.longrunning.Operations.ListOperations":
        return [
            Case(method, "operations", VIEWER,
                 lambda a: new(name="operations", filter=f"account=accounts/{a}")),
            Case(method, "account", ADMIN,
                 lambda a: new(name=f"accounts/{a}/providerOperations"),
                 perm="operations.ListProviderOperations", label=full + " (providerOperations)"),
        ]
    if full == "google.longrunning.Operations.GetOperation":
        return [
            Case(method, "operation", VIEWER, lambda a: new(name=op_name(a))),
            Case(method, "account", ADMIN,
                 lambda a: new(name=f"accounts/{a}/providerOperations/p1"),
                 perm="operations.GetProviderOperation", label=full + " (providerOperations)"),
        ]
    if full == "google.longrunning.Operations.WaitOperation":
        def wait_request(a):
            request = new(name=op_name(a))
            request.timeout.FromMilliseconds(500)
            return request
        return [Case(method, "operation", VIEWER, wait_request)]
    if full == "google.longrunning.Operations.CancelOperation":
        return [Case(method, "operation", OPERATOR, lambda a: new(name=op_name(a)))]
    if full == "google.longrunning.Operations.DeleteOperation":
        # Each allowed delete removes its operation: a fresh one per call.
        return [Case(method, "operation", ADMIN,
                     lambda a: new(name=world.fresh_operation(a) if a in ACCOUNTS
                                   else op_name(a)))]
    return None


def build_cases(world):
    table = table_roles()
    methods = all_methods()
    cases, unknown = [], []
    for full, method in sorted(methods.items()):
        if full in table:
            cases.append(Case(method, "account", table[full],
                              lambda a, m=method: request_for(m, a, world.names)))
            continue
        rows = explicit_cases(method, world)
        if rows is None:
            unknown.append(full)
        else:
            cases.extend(rows)
    assert not unknown, f"methods with no expected role (add them to the matrix): {unknown}"
    stale = sorted(set(table) - set(methods))
    assert not stale, f"method table rows with no RPC: {stale}"
    return methods, cases


# ---- Expectations ------------------------------------------------------------

def normalize(refusal, *names):
    """The refusal with the account id / operation name replaced, to compare
    an invisible name's answer with a missing one's."""
    message = refusal.message
    metadata = dict(refusal.metadata)
    for i, name in enumerate(sorted(names, key=len, reverse=True)):
        message = message.replace(name, f"<{i}>")
        metadata = {k: v.replace(name, f"<{i}>") for k, v in metadata.items()}
    return (refusal.code, refusal.reason, refusal.domain, message, tuple(sorted(metadata.items())))


def names_in(case, request, account):
    if case.kind == "operation":
        name = request.name
        return (name, name.split("/", 1)[1])
    return (f"accounts/{account}", account)


def check(case, person, account, request, got, reference):
    """'' when `got` is what `person` must get, else why not."""
    if not person.authenticated:
        reason = "CREDENTIALS_MISSING" if person.key is None else "CREDENTIALS_INVALID"
        if isinstance(got, Refusal) and got.code == grpc.StatusCode.UNAUTHENTICATED \
                and got.reason == reason:
            return ""
        return f"want UNAUTHENTICATED/{reason}, got {got_text(got)}"

    role = person.role_on(account)
    if case.kind == "providers":
        if person.visible():
            return allowed(got)
        return denied(got, case.perm, "providers")
    if case.kind == "accounts":
        if isinstance(got, Refusal):
            return f"want the visible accounts, got {got}"
        listed = {a.name for a in got.accounts}
        want = {f"accounts/{a}" for a in person.visible()}
        if listed != want:
            return f"want accounts {sorted(want)}, got {sorted(listed)}"
        return ""
    if case.kind == "operations":
        if isinstance(got, Refusal):
            return f"want a page of operations, got {got}"
        accounts_seen = set()
        for op in got.operations:
            metadata = common_pb2.OperationMetadata()
            op.metadata.Unpack(metadata)
            accounts_seen.add(metadata.account)
        if role == 0 and got.operations:
            return f"want an empty page, got operations of {sorted(accounts_seen)}"
        if role and not got.operations:
            return "want the account's operations, got an empty page"
        if accounts_seen - {account, f"accounts/{account}"}:
            return f"page holds operations of {sorted(accounts_seen)}"
        return ""

    if account == MISSING:
        if case.method.full_name == "cloudplane.v1.AuditService.ListAuditEvents" \
                and person.roles.get("*", 0) >= case.role:
            # An ADMIN of every account may read the audit events of an
            # account id that is not (or no longer) configured: the trail of
            # a removed account stays readable (here: the refused calls
            # other principals made on it).
            if isinstance(got, Refusal):
                return f"want a page of audit events, got {got_text(got)}"
            if any(e.account != f"accounts/{account}" for e in got.audit_events):
                return f"want only {account}'s events, got {got}"
            return ""
        if case.kind == "account":
            if isinstance(got, Refusal) and got.code == grpc.StatusCode.NOT_FOUND \
                    and got.reason == "ACCOUNT_NOT_FOUND":
                return ""
            return f"want NOT_FOUND/ACCOUNT_NOT_FOUND, got {got_text(got)}"
        if isinstance(got, Refusal) and got.code == grpc.StatusCode.NOT_FOUND:
            return ""
        return f"want NOT_FOUND for a missing operation, got {got_text(got)}"
    if role == 0:
        if not isinstance(got, Refusal) or reference is None:
            return f"want the missing {case.kind}'s answer, got {got_text(got)}"
        ref_refusal, ref_names = reference
        if normalize(got, *names_in(case, request, account)) != normalize(ref_refusal,
                                                                          *ref_names):
            return f"want exactly the missing {case.kind}'s answer ({ref_refusal}), got {got}"
        return ""
    if role < case.role:
        resource = request.name if case.kind == "operation" else f"accounts/{account}"
        return denied(got, case.perm, resource)
    why = allowed(got)
    if not why and case.kind == "operation" and isinstance(got, Refusal) \
            and got.code == grpc.StatusCode.NOT_FOUND:
        why = f"want the operation, got {got}"
    return why


def got_text(got):
    return str(got) if isinstance(got, Refusal) else f"OK {type(got).__name__}"


def allowed(got):
    if not isinstance(got, Refusal):
        return ""
    if got.code in DENIED or (got.code == grpc.StatusCode.NOT_FOUND
                              and got.reason == "ACCOUNT_NOT_FOUND"):
        return f"want allowed, got {got}"
    if got.code == grpc.StatusCode.INVALID_ARGUMENT:
        # Shape is checked before authorization: a malformed request would
        # hide the authorization answer. The matrix's requests must be valid.
        return f"the matrix's request is malformed: {got}"
    return ""


def denied(got, perm, resource):
    if not isinstance(got, Refusal) or got.code != grpc.StatusCode.PERMISSION_DENIED \
            or got.reason != "PERMISSION_MISSING":
        return f"want PERMISSION_DENIED/PERMISSION_MISSING {perm}, got {got_text(got)}"
    if got.metadata.get("permission") != perm:
        return f"want permission {perm}, got {got.metadata}"
    if not got.metadata.get("resource", "").startswith(resource):
        return f"want resource {resource}, got {got.metadata}"
    return ""


# ---- Tests -------------------------------------------------------------------

def test_every_method_for_every_principal_and_account(world):
    methods, cases = build_cases(world)
    channel = world.server.channel
    mismatches = []
    checks = 0
    for case in cases:
        for person in world.people:
            reference = None
            for account in (MISSING,) + ACCOUNTS:
                request = case.build(account)
                got = invoke(channel, case.method, request, person.metadata())
                if account == MISSING and isinstance(got, Refusal):
                    reference = (got, names_in(case, request, account))
                why = check(case, person, account, request, got, reference)
                checks += 1
                if why:
                    mismatches.append(f"{case.label} as {person.label} on {account}: {why}")
    principals_n, accounts_n = len(world.people), 1 + len(ACCOUNTS)
    line = (f"matrix: {len(methods)} methods ({len(cases)} cases) x {principals_n} principals x "
            f"{accounts_n} accounts = {checks} checks, {len(mismatches)} mismatches")
    print("\n".join(mismatches[:200]))
    print(line)
    assert checks == len(cases) * principals_n * accounts_n
    assert not mismatches, f"{line}\n" + "\n".join(mismatches[:60])


def test_health_and_reflection_answer_without_credentials(world):
    channel = world.server.channel
    # grpc.health.v1.HealthCheckRequest{} is empty; the response's field 1
    # is the status, SERVING = 1.
    check_health = channel.unary_unary("/grpc.health.v1.Health/Check",
                                       request_serializer=lambda b: b,
                                       response_deserializer=lambda b: b)
    assert check_health(b"", timeout=5) == b"\x08\x01"
    # ServerReflectionRequest{list_services: ""} (field 7).
    reflect = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=lambda b: b, response_deserializer=lambda b: b)
    answers = list(reflect(iter([b"\x3a\x00"]), timeout=5))
    assert len(answers) == 1
    for service in ("cloudplane.v1.ComputeService", "google.longrunning.Operations"):
        assert service.encode() in answers[0]
    # The same channel without a credential is refused everywhere else.
    with pytest.raises(grpc.RpcError) as err:
        world.server.accounts().ListAccounts(accounts_pb2.ListAccountsRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_watch_reads_nothing_before_the_refusal(world):
    """A refused Watch fails at once; it does not first send a heartbeat."""
    nobody = world.by_label["nobody"]
    call = world.server.watch().Watch(watch_pb2.WatchRequest(parent="accounts/alpha"),
                                      metadata=nobody.metadata(), timeout=10)
    with pytest.raises(grpc.RpcError) as err:
        next(call)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_every_refused_method_is_audited_with_its_permission(world):
    """Each method's permission, also for the methods no principal here is
    too low for (every VIEWER method): a caller with no role on alpha is
    refused, and the audit event of that refusal names the permission."""
    _, cases = build_cases(world)
    nobody, root = world.by_label["nobody"], world.root
    refused = [c for c in cases if c.kind not in ("accounts", "operations")]
    for case in refused:
        got = invoke(world.server.channel, case.method, case.build("alpha"), nobody.metadata())
        assert isinstance(got, Refusal), (case.label, got)
    audit = all_methods()["cloudplane.v1.AuditService.ListAuditEvents"]
    request_class = message_class(audit.input_type)
    deadline = time.monotonic() + 10  # The store is written in batches.
    while True:
        events, token = [], ""
        while True:
            page = invoke(world.server.channel, audit,
                          request_class(principal="nobody", page_size=1000, page_token=token),
                          root.metadata())
            assert not isinstance(page, Refusal), page
            events.extend(page.audit_events)
            token = page.next_page_token
            if not token:
                break
        seen = {}
        for event in events:
            seen.setdefault(event.method, set()).add(event.permission)
        missing = [f"{c.label}: want {c.perm}, audited {sorted(seen.get(c.method.full_name, []))}"
                   for c in refused if c.perm not in seen.get(c.method.full_name, set())]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not missing, "\n".join(missing)
