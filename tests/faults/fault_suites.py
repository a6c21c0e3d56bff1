"""The fault scenarios of issue 11, shared by the pytest suites in this
folder and bench/faults.py: the real cloudplaned, an emulator, and the fault
proxy between them (the account's endpoint is the proxy).

Per provider (CloudSigma, OpenNebula, fleet) a Profile starts the emulator,
makes the account config, seeds what reads read, builds the create request
of request i, and counts what the emulator really holds, asked directly
(CloudSigma REST, OpenNebula XML-RPC, fleet REST), never through the proxy or
cloudplane.

Scenarios:
  run_reads    n reads (GetX of seeded resources, ListX pages) through the
               proxy; a read succeeds when the RPC answers OK with the data
               the same read gave without faults.
  run_creates  n creates, each with its own request_id and chosen id, by a
               client that retries UNAVAILABLE / DEADLINE_EXCEEDED / INTERNAL
               with the SAME request_id (bounded attempts, RetryInfo
               honoured), then waits for every Operation; the emulator is
               then asked what exists.

Figures of a create run (`CreateFigures`):
  duplicates     extra resources: live resources carrying a request's chosen
                 id beyond the first;
  no_operation   requests that never got an Operation;
  disagreeing    Operations whose final state disagrees with the emulator
                 (failed although the resource exists, OK although it does
                 not, or not finished within the wait);
goals: all 0. The server runs with a 60 s operation deadline here
(OPERATION_TIMEOUT), so every operation has to end, OK or failed, while the
client waits; the SIGKILL scenario keeps the server's default.

OpenNebula's XML-RPC is POST for every call, reads and polls included, so
its "POST only" modes spoil those too. fleet names a unit by its unit_id,
so fleet cannot hold two of one name: there the figures that can move are
no_operation and disagreeing.

Scale: CLOUDPLANE_FAULT_SCALE (default 1.0) multiplies the 1,000 reads and
200 creates of the issue.
"""
import base64
import collections
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import pathlib
import random
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
import xmlrpc.client

import grpc

HERE = pathlib.Path(__file__).resolve().parent
TESTS = HERE.parent
for path in (TESTS, TESTS / "emulators" / "cloudsigma", TESTS / "emulators" / "opennebula"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from cloudplane_testing import (FleetEmulator, Server, compute_pb2, compute_pb2_grpc,  # noqa: E402
                                error_details_pb2, operations_pb2, operations_pb2_grpc,
                                status_pb2, units_pb2, units_pb2_grpc, volumes_pb2,
                                volumes_pb2_grpc)
from cloudsigma_testing import PASSWORD, USERNAME, CloudSigmaEmulatorProcess  # noqa: E402
from fault_proxy import KINDS, FaultProxy  # noqa: E402
import one_emulator  # noqa: E402

SCALE = float(os.environ.get("CLOUDPLANE_FAULT_SCALE", "1"))
FULL_READS = 1000
FULL_CREATES = 200
WORKERS = 16
READ_DEADLINE = 30.0      # client deadline of one read RPC
CREATE_DEADLINE = 30.0    # client deadline of one create RPC
CREATE_ATTEMPTS = 8       # bounded client retries per create
# The server's operation deadline in these suites (operation_timeout_seconds):
# every operation must end, OK or failed, within it; the client waits a
# little longer. An operation still running after WAIT_TIMEOUT counts as
# disagreeing ("unfinished").
OPERATION_TIMEOUT = 60
WAIT_TIMEOUT = OPERATION_TIMEOUT + 30.0
STALL_SECONDS = 3.0
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.INTERNAL})
READ_GOAL = 0.999


def scaled(full):
    return max(1, int(round(full * SCALE)))


# Fault modes of the issue: all kinds mixed at 20%, and 50% truncated or
# reset-after-the-body answers to the create method (POST; fleet's PUT).
def fault_mode(mode, create_method):
    if mode == "mixed":
        return dict(rate=0.2, kinds=KINDS, methods=None)
    if mode == "truncate":
        return dict(rate=0.5, kinds=["truncate"], methods=[create_method])
    if mode == "reset_after":
        return dict(rate=0.5, kinds=["reset_after"], methods=[create_method])
    raise ValueError(mode)


MODES = ("mixed", "truncate", "reset_after")


# ---------------------------------------------------------------------------
# Provider profiles.

class CloudSigmaProfile:
    """Volumes (drives). A drive carries meta cloudplane_id = volume_id."""
    name = "cloudsigma"
    account = "accounts/cs"
    create_http_method = "POST"
    env_var = "CLOUDPLANE_FAULTS_CS_SECRET"

    def __init__(self, transition_delay=0.1):
        self.transition_delay = transition_delay

    def start(self, workdir):
        self.emulator = CloudSigmaEmulatorProcess(workdir, transition_delay=self.transition_delay,
                                                  delete_delay=0.1).start()
        return self.emulator.api_endpoint

    def account_config(self, endpoint):
        os.environ[self.env_var] = f"{USERNAME}:{PASSWORD}"
        # The websocket feed goes straight to the emulator: the proxy is
        # for request/response HTTP.
        return (f'accounts {{ id: "cs" provider: "cloudsigma" endpoint: "{endpoint}" '
                f'credentials {{ env: "{self.env_var}" }} '
                f'options {{ key: "ws_endpoint" value: "{self.emulator.ws_endpoint}" }} }}\n')

    def stop(self):
        self.emulator.stop()

    def _get(self, path):
        req = urllib.request.Request(f"{self.emulator.api_endpoint}{path}")
        token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        req.add_header("Authorization", "Basic " + token)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def inventory(self):
        """chosen id -> number of live drives carrying it (at the emulator)."""
        drives = self._get("/drives/detail/?limit=0")["objects"]
        return collections.Counter(d["meta"].get("cloudplane_id", "") for d in drives)

    def create_key(self, tag, i):
        return f"{tag}-{i}"

    def create(self, channel, key, request_id, timeout):
        return volumes_pb2_grpc.VolumesServiceStub(channel).CreateVolume(
            volumes_pb2.CreateVolumeRequest(
                parent=self.account, volume_id=key, request_id=request_id,
                volume=volumes_pb2.Volume(size_bytes=1 << 30, labels={"suite": "faults"})),
            timeout=timeout)

    def seed(self, server):
        for i in range(5):
            op = wait_operation(server, self.create(server.channel, f"read-{i}",
                                                    str(uuid.uuid4()), 30))
            assert op.done and not op.HasField("error"), op
        compute = server.compute()
        op = wait_operation(server, compute.CreateInstance(compute_pb2.CreateInstanceRequest(
            parent=self.account, instance_id="read-srv", start=False,
            request_id=str(uuid.uuid4()),
            instance=compute_pb2.Instance(cpu_mhz=1000, memory_bytes=1 << 30)), timeout=30))
        assert op.done and not op.HasField("error"), op

    def reads(self, channel):
        volumes = volumes_pb2_grpc.VolumesServiceStub(channel)
        compute = compute_pb2_grpc.ComputeServiceStub(channel)
        a = self.account
        calls = [(f"GetVolume read-{i}", lambda t, i=i: _key(volumes.GetVolume(
            volumes_pb2.GetVolumeRequest(name=f"{a}/volumes/read-{i}"), timeout=t)))
            for i in range(5)]
        calls += [
            ("GetInstance", lambda t: _key(compute.GetInstance(
                compute_pb2.GetInstanceRequest(name=f"{a}/instances/read-srv"), timeout=t))),
            ("ListImages", lambda t: _names(compute.ListImages(
                compute_pb2.ListImagesRequest(parent=a), timeout=t).images)),
        ]
        calls += _pages("ListVolumes", lambda size, token, t: volumes.ListVolumes(
            volumes_pb2.ListVolumesRequest(parent=a, page_size=size, page_token=token),
            timeout=t), "volumes")
        return calls


class OpenNebulaProfile:
    """Instances (VMs) created on HOLD (start=false): NAME = instance_id,
    USER_TEMPLATE CLOUDPLANE_OPERATION = the operation."""
    name = "opennebula"
    account = "accounts/one"
    create_http_method = "POST"  # every XML-RPC call is a POST, reads too
    env_var = "CLOUDPLANE_FAULTS_ONE_SESSION"
    session = "oneadmin:opennebula"

    def start(self, workdir):
        self.process, self.endpoint = one_emulator.spawn(workdir, step_delay=0.02)
        return self.endpoint

    def account_config(self, endpoint):
        os.environ[self.env_var] = self.session
        return (f'accounts {{ id: "one" provider: "opennebula" endpoint: "{endpoint}" '
                f'credentials {{ env: "{self.env_var}" }} }}\n')

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)

    def inventory(self):
        """NAME -> number of live (not DONE) VMs with it (at the emulator)."""
        proxy = xmlrpc.client.ServerProxy(self.endpoint)
        ok, doc = proxy.one.vmpool.info(self.session, -2, -1, -1, -1)[:2]
        assert ok, doc
        return collections.Counter(vm.findtext("NAME") for vm in ET.fromstring(doc)
                                   .findall("VM"))

    def create_key(self, tag, i):
        return f"{tag}-{i}"

    def create(self, channel, key, request_id, timeout):
        return compute_pb2_grpc.ComputeServiceStub(channel).CreateInstance(
            compute_pb2.CreateInstanceRequest(
                parent=self.account, instance_id=key, request_id=request_id, start=False,
                instance=compute_pb2.Instance(image=f"{self.account}/images/1")),
            timeout=timeout)

    def seed(self, server):
        for i in range(5):
            op = wait_operation(server, self.create(server.channel, f"read-{i}",
                                                    str(uuid.uuid4()), 30))
            assert op.done and not op.HasField("error"), op

    def reads(self, channel):
        compute = compute_pb2_grpc.ComputeServiceStub(channel)
        a = self.account
        calls = [(f"GetInstance read-{i}", lambda t, i=i: _key(compute.GetInstance(
            compute_pb2.GetInstanceRequest(name=f"{a}/instances/read-{i}"), timeout=t)))
            for i in range(5)]
        calls += [
            ("ListImages", lambda t: _names(compute.ListImages(
                compute_pb2.ListImagesRequest(parent=a), timeout=t).images)),
            ("ListHosts", lambda t: _names(compute.ListHosts(
                compute_pb2.ListHostsRequest(parent=a), timeout=t).hosts)),
            ("GetHost", lambda t: _key(compute.GetHost(
                compute_pb2.GetHostRequest(name=f"{a}/hosts/0"), timeout=t))),
        ]
        calls += _pages("ListInstances", lambda size, token, t: compute.ListInstances(
            compute_pb2.ListInstancesRequest(parent=a, page_size=size, page_token=token),
            timeout=t), "instances")
        return calls


class FleetProfile:
    """Units (PUT /fleet/v1/units/<name>): the unit name is the chosen id, so
    fleet itself cannot hold two with one name; what can go wrong is the
    operation's answer."""
    name = "fleet"
    account = "accounts/fleet"
    create_http_method = "PUT"

    def start(self, workdir):
        self.emulator = FleetEmulator(workdir, page_limit=10, converge_delay=0.05).start()
        return self.emulator.tcp_endpoint

    def account_config(self, endpoint):
        return f'accounts {{ id: "fleet" provider: "fleet" endpoint: "{endpoint}" }}\n'

    def stop(self):
        self.emulator.stop()

    def inventory(self):
        """unit name -> number of units with it (at the emulator)."""
        names, token = [], ""
        while True:
            url = f"{self.emulator.tcp_endpoint}/fleet/v1/units"
            if token:
                url += "?nextPageToken=" + urllib.parse.quote(token)
            with urllib.request.urlopen(url, timeout=30) as resp:
                page = json.loads(resp.read())
            names += [u["name"] for u in page.get("units", [])]
            token = page.get("nextPageToken", "")
            if not token:
                return collections.Counter(names)

    def create_key(self, tag, i):
        return f"{tag}-{i}.service"

    def create(self, channel, key, request_id, timeout):
        return units_pb2_grpc.UnitsServiceStub(channel).CreateUnit(units_pb2.CreateUnitRequest(
            parent=self.account, unit_id=key, request_id=request_id,
            unit=units_pb2.Unit(desired_state=units_pb2.Unit.LAUNCHED, options=[
                units_pb2.UnitOption(section="Service", name="ExecStart",
                                     value="/usr/bin/sleep 1d")])), timeout=timeout)

    def seed(self, server):
        for i in range(5):
            op = wait_operation(server, self.create(server.channel, f"read-{i}.service",
                                                    str(uuid.uuid4()), 30))
            assert op.done and not op.HasField("error"), op

    def reads(self, channel):
        units = units_pb2_grpc.UnitsServiceStub(channel)
        a = self.account
        calls = [(f"GetUnit read-{i}", lambda t, i=i: _key(units.GetUnit(
            units_pb2.GetUnitRequest(name=f"{a}/units/read-{i}.service"), timeout=t)))
            for i in range(5)]
        calls += [
            ("ListMachines", lambda t: _names(units.ListMachines(
                units_pb2.ListMachinesRequest(parent=a), timeout=t).machines)),
        ]
        calls += _pages("ListUnits", lambda size, token, t: units.ListUnits(
            units_pb2.ListUnitsRequest(parent=a, page_size=size, page_token=token),
            timeout=t), "units")
        return calls


PROFILES = {"cloudsigma": CloudSigmaProfile, "opennebula": OpenNebulaProfile,
            "fleet": FleetProfile}


def _key(message):
    """What a Get must answer: the resource's name (and nothing else that a
    fault-free run would change)."""
    return message.name


def _names(items):
    return tuple(item.name for item in items)


def _page(response, field):
    return _names(getattr(response, field)), bool(response.next_page_token)


def _pages(label, call, field):
    """Reads of the first and the second page (page size 2) of a list; the
    second page's token is fetched here (reads are planned faults off)."""
    token = call(2, "", 10).next_page_token
    assert token, f"{label}: the list has a single page"
    return [(f"{label} page 1", lambda t: _page(call(2, "", t), field)),
            (f"{label} page 2", lambda t: _page(call(2, token, t), field))]


# ---------------------------------------------------------------------------
# The environment: emulator, proxy, server.

@dataclasses.dataclass
class Env:
    profile: object
    proxy: FaultProxy
    server: Server
    workdir: pathlib.Path
    exit_code: int = None  # the server's, once the environment is left


@contextlib.contextmanager
def environment(profile, workdir, stall_seconds=STALL_SECONDS, seed=11,
                operation_timeout=OPERATION_TIMEOUT):
    """Starts the emulator, the proxy (no faults yet) and the server (with
    `operation_timeout` seconds as its operation deadline; None: the
    server's default); stops all three at the end. The server's exit code
    lands in env.exit_code."""
    workdir = pathlib.Path(workdir)
    (workdir / "emulator").mkdir(parents=True, exist_ok=True)
    upstream = profile.start(workdir / "emulator")
    proxy = server = env = None
    try:
        proxy = FaultProxy(upstream, rate=0.0, seed=seed, stall_seconds=stall_seconds).start()
        config = profile.account_config(proxy.url(upstream))
        if operation_timeout is not None:
            config = f"operation_timeout_seconds: {operation_timeout}\n" + config
        server = Server(workdir / "server", config)
        server.start()
        env = Env(profile, proxy, server, workdir)
        yield env
    finally:
        try:
            if server is not None and server.process is not None:
                code = server.stop()
                if env is not None:
                    env.exit_code = code
        finally:
            if proxy is not None:
                proxy.stop()
            profile.stop()


# ---------------------------------------------------------------------------
# Client side.

def _retry_delay(error, attempt):
    """RetryInfo's delay when the server gave one, else exponential backoff
    with full jitter (0.1 s doubling, capped at 2 s)."""
    try:
        for key, value in error.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                for detail in status_pb2.Status.FromString(value).details:
                    if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                        info = error_details_pb2.RetryInfo()
                        detail.Unpack(info)
                        return min(5.0, info.retry_delay.ToTimedelta().total_seconds())
    except Exception:  # noqa: BLE001  (a malformed detail is not a reason to stop)
        pass
    return random.uniform(0, min(2.0, 0.1 * (2 ** attempt)))


def _code(error):
    return error.code() if isinstance(error, grpc.RpcError) else grpc.StatusCode.UNAVAILABLE


def create_with_retries(server, profile, key, request_id, attempts=CREATE_ATTEMPTS,
                        timeout=CREATE_DEADLINE, until=None):
    """(Operation or None, attempts made, Counter of errors seen, last code).
    Retries RETRYABLE codes with the same request_id, `attempts` times or,
    with `until` (a monotonic time), until then."""
    errors = collections.Counter()
    made = 0
    last = None
    while True:
        made += 1
        channel = server.channel
        try:
            if channel is None:  # the server is being restarted
                raise ConnectionError("no channel")
            return profile.create(channel, key, request_id, timeout), made, errors, None
        except (grpc.RpcError, ConnectionError, ValueError) as e:
            # ValueError: a channel closed under the call (restart).
            last = _code(e) if not isinstance(e, ValueError) else grpc.StatusCode.UNAVAILABLE
            errors[last.name] += 1
            if last not in RETRYABLE:
                return None, made, errors, last
            if until is not None:
                if time.monotonic() >= until:
                    return None, made, errors, last
            elif made >= attempts:
                return None, made, errors, last
            time.sleep(_retry_delay(e, made - 1) if isinstance(e, grpc.RpcError)
                       else random.uniform(0.1, 0.5))


def wait_operation(server, op, timeout=WAIT_TIMEOUT):
    """WaitOperation until done or `timeout`; rides out a server restart.
    Returns the last Operation seen (done or not)."""
    deadline = time.monotonic() + timeout
    while not op.done:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return op
        channel = server.channel
        try:
            if channel is None:
                raise ConnectionError("no channel")
            request = operations_pb2.WaitOperationRequest(name=op.name)
            request.timeout.FromMilliseconds(int(min(remaining, 10) * 1000))
            op = operations_pb2_grpc.OperationsStub(channel).WaitOperation(
                request, timeout=min(remaining, 10) + 5)
        except (grpc.RpcError, ConnectionError, ValueError):
            time.sleep(0.2)
    return op


# ---------------------------------------------------------------------------
# Scenarios.

@dataclasses.dataclass
class ReadFigures:
    provider: str
    mode: str
    reads: int
    ok: int
    errors: dict
    wrong: int
    proxy: dict
    seconds: float

    @property
    def ok_ratio(self):
        return self.ok / self.reads if self.reads else 0.0

    def line(self):
        return (f"{self.provider} reads ({self.mode}): {self.ok}/{self.reads} ok "
                f"({100 * self.ok_ratio:.1f}%), errors {dict(self.errors)}, wrong answers "
                f"{self.wrong}, proxy {_proxy_summary(self.proxy)}, {self.seconds:.0f}s")


@dataclasses.dataclass
class CreateFigures:
    provider: str
    mode: str
    requests: int
    duplicates: int = 0           # extra resources beyond one per request
    duplicated_requests: int = 0  # requests with more than one resource
    no_operation: int = 0
    no_operation_but_exists: int = 0
    disagreeing: int = 0
    failed_but_exists: int = 0
    ok_but_missing: int = 0
    unfinished: int = 0
    ops_ok: int = 0
    ops_failed: dict = dataclasses.field(default_factory=dict)
    rpc_errors: dict = dataclasses.field(default_factory=dict)
    final_rpc_errors: dict = dataclasses.field(default_factory=dict)
    attempts: int = 0
    proxy: dict = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    examples: list = dataclasses.field(default_factory=list)

    def line(self):
        return (f"{self.provider} creates ({self.mode}): {self.requests} requests, "
                f"duplicates {self.duplicates} (in {self.duplicated_requests} requests), "
                f"no operation {self.no_operation} ({self.no_operation_but_exists} of them "
                f"with the resource made), disagreeing {self.disagreeing} (failed but exists "
                f"{self.failed_but_exists}, OK but missing {self.ok_but_missing}, unfinished "
                f"{self.unfinished}); ops OK {self.ops_ok}, failed {dict(self.ops_failed)}; "
                f"client attempts {self.attempts}, RPC errors {dict(self.rpc_errors)}, "
                f"given up on {dict(self.final_rpc_errors)}; proxy "
                f"{_proxy_summary(self.proxy)}; {self.seconds:.0f}s")

    def goals_met(self):
        return self.duplicates == 0 and self.no_operation == 0 and self.disagreeing == 0


def _proxy_summary(counters):
    keep = {k: v for k, v in counters.items() if v and k != "total"}
    return f"{counters.get('total', 0)} requests {keep}"


def plan_reads(env):
    """The read calls with the answers they give without faults."""
    return [(label, fn, fn(10)) for label, fn in env.profile.reads(env.server.channel)]


def run_reads(env, n, mode="mixed", workers=WORKERS, seed=11):
    env.profile.seed(env.server)
    planned = plan_reads(env)
    settings = fault_mode(mode, env.profile.create_http_method)
    env.proxy.reset_counters()
    env.proxy.configure(seed=seed, **settings)
    outcomes = collections.Counter()
    lock = threading.Lock()
    started = time.monotonic()

    def one(i):
        label, fn, expected = planned[i % len(planned)]
        try:
            got = fn(READ_DEADLINE)
            outcome = "ok" if got == expected else "wrong"
        except grpc.RpcError as e:
            outcome = e.code().name
        with lock:
            outcomes[outcome] += 1

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(n)))
    env.proxy.configure(rate=0.0)
    return ReadFigures(env.profile.name, mode, n, outcomes.pop("ok", 0),
                       {k: v for k, v in outcomes.items() if k != "wrong"},
                       outcomes.get("wrong", 0), env.proxy.counters(),
                       time.monotonic() - started)


def classify(figures, results, inventory):
    """Fills `figures` from per-request results and the emulator's counts.
    results: [(key, Operation or None, final code or None)]."""
    for key, op, final_code in results:
        present = inventory.get(key, 0)
        if present > 1:
            figures.duplicates += present - 1
            figures.duplicated_requests += 1
        if op is None:
            figures.no_operation += 1
            if present:
                figures.no_operation_but_exists += 1
            name = final_code.name if final_code is not None else "?"
            figures.final_rpc_errors[name] = figures.final_rpc_errors.get(name, 0) + 1
            continue
        if not op.done:
            figures.unfinished += 1
            figures.disagreeing += 1
            _example(figures, key, "unfinished", op)
        elif op.HasField("error"):
            code = grpc.StatusCode(_status_code_tuple(op.error.code)).name
            figures.ops_failed[code] = figures.ops_failed.get(code, 0) + 1
            if present:
                figures.failed_but_exists += 1
                figures.disagreeing += 1
                _example(figures, key, "failed but exists", op)
        else:
            figures.ops_ok += 1
            if not present:
                figures.ok_but_missing += 1
                figures.disagreeing += 1
                _example(figures, key, "OK but missing", op)


def _status_code_tuple(number):
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code.value
    return grpc.StatusCode.UNKNOWN.value


def _example(figures, key, what, op):
    if len(figures.examples) < 5:
        detail = op.error.message if op.HasField("error") else ""
        figures.examples.append(f"{key}: {what} ({op.name}) {detail}"[:300])


def run_creates(env, n, mode, workers=WORKERS, seed=23, tag=None):
    settings = fault_mode(mode, env.profile.create_http_method)
    tag = tag or f"f{mode.replace('_', '')[:5]}"
    env.proxy.reset_counters()
    env.proxy.configure(seed=seed, **settings)
    started = time.monotonic()
    figures = CreateFigures(env.profile.name, mode, n)
    keys = [env.profile.create_key(tag, i) for i in range(n)]
    request_ids = [str(uuid.uuid4()) for _ in range(n)]
    lock = threading.Lock()

    def create(i):
        op, made, errors, last = create_with_retries(env.server, env.profile, keys[i],
                                                     request_ids[i])
        with lock:
            figures.attempts += made
            for k, v in errors.items():
                figures.rpc_errors[k] = figures.rpc_errors.get(k, 0) + v
        return op, last

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        created = list(pool.map(create, range(n)))
        finals = list(pool.map(lambda c: wait_operation(env.server, c[0]) if c[0] else None,
                               created))
    env.proxy.configure(rate=0.0)
    time.sleep(0.5)  # anything still landing at the emulator lands
    inventory = env.profile.inventory()
    classify(figures, [(keys[i], finals[i], created[i][1]) for i in range(n)], inventory)
    figures.proxy = env.proxy.counters()
    figures.seconds = time.monotonic() - started
    return figures


# ---------------------------------------------------------------------------
# SIGKILL with mutations in flight, restart during a provider outage.

@dataclasses.dataclass
class KillFigures:
    provider: str
    requests: int
    ops_before_kill: int = 0    # requests that had their Operation at the kill
    running_at_kill: int = 0    # of those, Operations not done when returned
    lost: int = 0               # request_ids whose retry returned no / another Operation
    creates: CreateFigures = None
    outage_answers: int = 0
    seconds: float = 0.0
    exit_code: int = None

    def line(self):
        c = self.creates
        return (f"{self.provider} SIGKILL + 10 s outage: {self.requests} creates, "
                f"{self.ops_before_kill} had their Operation at the kill ({self.running_at_kill} "
                f"of them running); lost {self.lost}, "
                f"duplicates {c.duplicates}, failed but exists {c.failed_but_exists}, OK but "
                f"missing {c.ok_but_missing}, unfinished {c.unfinished}, no operation "
                f"{c.no_operation}; ops OK {c.ops_ok}, failed {dict(c.ops_failed)}; client "
                f"attempts {c.attempts}, RPC errors {dict(c.rpc_errors)}; 503s during the "
                f"outage {self.outage_answers}; {self.seconds:.0f}s")


def run_kill_in_outage(workdir, n, outage_seconds=10.0, workers=32, client_budget=150.0,
                       wait_timeout=300.0):
    """n CloudSigma creates in flight (drives take 2 s to settle); SIGKILL the
    server once half of them have their Operation; the proxy answers 503 to
    everything; restart the server on the same state dir; end the outage
    `outage_seconds` after the restart; wait for every operation; then retry
    every request_id once more (it must return its first Operation) and count
    at the emulator. The server keeps its default operation deadline here;
    operations not done after `wait_timeout` count as unfinished."""
    profile = CloudSigmaProfile(transition_delay=2.0)
    started = time.monotonic()
    figures = KillFigures(profile.name, n)
    with environment(profile, workdir, operation_timeout=None) as env:
        server, proxy = env.server, env.proxy
        keys = [profile.create_key("kill", i) for i in range(n)]
        request_ids = [str(uuid.uuid4()) for _ in range(n)]
        create_figures = CreateFigures(profile.name, "sigkill+outage", n)
        lock = threading.Lock()
        first_ops = [None] * n
        got = threading.Semaphore(0)

        def create(i):
            op, made, errors, last = create_with_retries(
                server, profile, keys[i], request_ids[i], timeout=10,
                until=time.monotonic() + client_budget)
            with lock:
                create_figures.attempts += made
                for k, v in errors.items():
                    create_figures.rpc_errors[k] = create_figures.rpc_errors.get(k, 0) + v
                first_ops[i] = op
            got.release()
            return op, last

        pool = concurrent.futures.ThreadPoolExecutor(workers)
        old_channel = None
        try:
            futures = [pool.submit(create, i) for i in range(n)]
            for _ in range(max(1, n // 2)):
                got.acquire(timeout=60)
            with lock:
                figures.ops_before_kill = sum(op is not None for op in first_ops)
                figures.running_at_kill = sum(op is not None and not op.done
                                              for op in first_ops)
            # SIGKILL; the provider goes down before the server comes back.
            server.process.kill()
            server.process.wait()
            proxy.reset_counters()
            proxy.outage(True)
            old_channel, server.channel = server.channel, None
            server.output.close()
            server.output = None
            server.start()
            time.sleep(outage_seconds)
            proxy.outage(False)
            figures.outage_answers = proxy.counters()["outage"]
            created = [f.result() for f in futures]
            finals = list(pool.map(lambda c: wait_operation(server, c[0], wait_timeout)
                                   if c[0] else None, created))
            # Every request_id retried once more returns its Operation.
            again = list(pool.map(lambda i: create_with_retries(
                server, profile, keys[i], request_ids[i])[0], range(n)))
            for i in range(n):
                if created[i][0] is None or again[i] is None or \
                        again[i].name != created[i][0].name:
                    figures.lost += 1
            finals = list(pool.map(lambda i: wait_operation(server, again[i], wait_timeout)
                                   if again[i] is not None else finals[i], range(n)))
        finally:
            pool.shutdown(wait=True)
            # Closed only now: closing it earlier would cancel calls still
            # on it, which the client would take for the server's answer.
            if old_channel is not None:
                old_channel.close()
        time.sleep(0.5)
        inventory = profile.inventory()
        classify(create_figures, [(keys[i], finals[i], created[i][1]) for i in range(n)],
                 inventory)
        create_figures.proxy = proxy.counters()
        figures.creates = create_figures
    figures.seconds = time.monotonic() - started
    figures.exit_code = env.exit_code
    return figures
