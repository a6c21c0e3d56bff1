"""What N pending operations on one fleet account cost the provider, with the
server's observer completing them from its lists and with per-operation
polling, in the same invocation. Prints numbers; no pass/fail.

    .deps/venv/bin/python bench/pending_ops.py [--operations 1000] [--interval 15]
        [--converge-delay 45] [--modes observed,polled] [--page-limit 100]
        [--probe-seconds 20] [--probe-get-rate 100] [--probe-unit-rate 20]

Each mode starts a fresh fleet emulator (tests/emulators/fleet, 3 machines,
its default page limit of 100) and a fresh cloudplaned (the release build,
bazel-opt-bin/service/cloudplaned, unless --server) with one fleet account
and one sandbox account, creates the GetInstance probe's instance, then
sends N CreateUnit calls (desired state LAUNCHED) from 32 client threads.
The emulator makes each unit reach `launched` (and systemd `active`)
`--converge-delay` seconds after its PUT, so every operation stays pending
until then.

  observed  observe_interval_seconds = --interval: after one targeted poll
            each, the operations wait on the observer's rounds;
  polled    observe_interval_seconds = 1000000 (two intervals exceed the
            operation timeout, so the runner polls each operation with
            backoff, 100 ms growing x1.5 to 5 s: the behaviour before).

Reported per mode, counted at the emulator (its --event-log: each request
with its query string and time, and the time the agents reported each unit's
change):
  * during the wait (from 2 s after the last CreateUnit returned to 1 s
    before the first unit converges): HTTP requests/s; observer rounds
    (a round lists Units and Machines: a ListUnits call is GET /units pages
    + GET /state pages, its first request the GET /fleet/v1/units without a
    nextPageToken; a ListMachines call is GET /machines pages) and list
    calls/s (goal: at most collections / interval), and HTTP requests per
    round; and the steady rate, a round's mean requests over the mean time
    between round starts (the window is not a whole number of intervals,
    so its own req/s depends on how many rounds fall inside it);
  * the completion phase: requests from the first convergence until every
    operation is done (fleet's LAUNCHED needs systemd's word, which the list
    does not carry: one targeted poll per operation, GET unit + GET state);
  * time from the provider's change (the emulator's log of the unit's
    convergence) to each operation's completion (the Operation's metadata
    end_time): p50/p90/max, and how it splits into waiting for the next
    round to start, the round's listing, and the confirming poll;
  * the probes (issue 15: "the probe GetInstance p99 unchanged (within 20%)
    while they wait"): the latency of ordinary reads on the same server in
    two windows of --probe-seconds each, (a) baseline: after the server, the
    emulator and the observer's first round are up, before any CreateUnit;
    (b) wait: from the start of the wait window above (clipped to it if it
    is shorter). Two probes run at once, open loop at a fixed rate (a call
    is sent every 1/rate s whether or not the previous one has answered, so
    a stall shows in the latencies instead of slowing the probe down):
      GetInstance  on a sandbox account of the same server (one instance,
                   created at the start), --probe-get-rate calls/s;
      GetUnit      on the fleet account, of cp-probe-absent.service: a
                   provider read (one GET /fleet/v1/units/<name>, answered
                   404, so NOT_FOUND) through the same account, transport
                   and emulator as the pending operations, --probe-unit-rate
                   calls/s. The unit is absent on purpose: a 1,001st unit
                   would make the observer's ListUnits (pages of 1000) take
                   two pages, and fleet fetches its whole list for each, which
                   doubles the provider requests this bench measures.
    Printed: p50/p99/max in ms per probe and window, and p99(wait) /
    p99(baseline). The probes' own emulator requests are left out of the
    requests/s above and counted apart. The probe runs in a subprocess (its
    own Python and GIL, one gRPC channel), started before its window and
    connected by a call of each kind and warmed up by 1.5 s of its calls
    before it measures; latency is timed from the call's send to its
    answer. The rates are modest on purpose (a few % of the GetInstance
    calls/s the server answers on this machine) so the probe measures
    latency and not throughput; the probe's sending lag (how late its send
    loop was at worst) is printed too: a large one means the probe itself
    (or the machine) stalled, and that window's p99 says little.
    Until a38c894 the fleet emulator wrote headers and body apart without
    TCP_NODELAY, so a GetUnit answer could wait ~40 ms for the client's
    delayed ACK (GetUnit p50 43 ms during the wait); it now sets TCP_NODELAY
    as fleetd (Go) does.
"""
import argparse
import collections
import concurrent.futures
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import cloudplane_testing  # noqa: E402
from cloudplane_testing import (FleetEmulator, Server, common_pb2, compute_pb2,  # noqa: E402
                                compute_pb2_grpc, operations_pb2, units_pb2, units_pb2_grpc)

SANDBOX = "accounts/sandbox"
PROBE_INSTANCE = f"{SANDBOX}/instances/cp-probe"
PROBE_UNIT_ID = "cp-probe-absent.service"
PROBE_UNIT = f"accounts/fleet/units/{PROBE_UNIT_ID}"


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class Event:
    def __init__(self, line):
        at, rest = line.split(" ", 1)
        self.at = float(at)
        fields = rest.split(" ")
        self.kind = fields[0]
        if self.kind == "request":
            self.method, self.target, self.status = fields[1], fields[2], fields[4]
            self.path, _, self.query = self.target.partition("?")
        else:
            self.unit, self.desired = fields[1], fields[2]

    def round_start(self):
        # The first page of a ListUnits call (later pages carry nextPageToken;
        # a targeted poll is GET /units/<name>).
        return self.kind == "request" and self.method == "GET" and \
            self.path == "/fleet/v1/units" and "nextPageToken" not in self.query

    def list_request(self):
        # Pages of ListUnits (units, every unit state) and ListMachines.
        return self.kind == "request" and self.method == "GET" and (
            self.path in ("/fleet/v1/units", "/fleet/v1/machines") or
            (self.path == "/fleet/v1/state" and "unitName" not in self.query))

    def list_call(self):
        return self.list_request() and self.path != "/fleet/v1/state" and \
            "nextPageToken" not in self.query

    def probe(self):
        # The GetUnit probe's own requests.
        return self.kind == "request" and PROBE_UNIT_ID in self.target


def probe_worker(argv):
    """The probe process: `pending_ops.py probe --target HOST:PORT --start EPOCH
    --seconds S --get-rate R --unit-rate R`. Sends GetInstance and GetUnit at
    fixed rates from --start for --seconds (after --warmup seconds of the
    same calls, not measured) and prints one line of JSON:
    per probe, latencies in ms of the calls that answered as expected (OK;
    NOT_FOUND for GetUnit), the others (errors), and the send loop's worst
    lag behind its schedule."""
    ap = argparse.ArgumentParser(prog="pending_ops.py probe")
    ap.add_argument("--target", required=True)
    ap.add_argument("--start", type=float, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--warmup", type=float, default=1.5)
    ap.add_argument("--get-rate", type=float, required=True)
    ap.add_argument("--unit-rate", type=float, required=True)
    args = ap.parse_args(argv)
    import grpc  # noqa: PLC0415
    channel = grpc.insecure_channel(args.target)
    compute = compute_pb2_grpc.ComputeServiceStub(channel)
    units = units_pb2_grpc.UnitsServiceStub(channel)
    # (call, request, rate, the answer expected)
    probes = {
        "GetInstance": (compute.GetInstance, compute_pb2.GetInstanceRequest(name=PROBE_INSTANCE),
                        args.get_rate, grpc.StatusCode.OK),
        "GetUnit": (units.GetUnit, units_pb2.GetUnitRequest(name=PROBE_UNIT), args.unit_rate,
                    grpc.StatusCode.NOT_FOUND),
    }
    probes = {k: v for k, v in probes.items() if v[2] > 0}
    for kind, (call, request, _, expected) in probes.items():
        # Connected, and the name answers as expected.
        code = call.future(request, timeout=30).code()
        if code != expected:
            sys.exit(f"probe: {kind} answered {code}, expected {expected}")
    lock = threading.Lock()
    tally = {k: {"latencies_ms": [], "errors": 0, "first_error": None, "lag_ms": 0.0}
             for k in probes}
    outstanding = [0]
    all_answered = threading.Event()

    def answered(kind, sent, measured, future):
        elapsed = (time.perf_counter() - sent) * 1000
        with lock:
            t = tally[kind]
            if not measured:
                pass
            elif future.code() == probes[kind][3]:
                t["latencies_ms"].append(elapsed)
            else:
                t["errors"] += 1
                t["first_error"] = t["first_error"] or f"{future.code()}: {future.details()}"
            outstanding[0] -= 1
            if outstanding[0] == 0 and sending_done.is_set():
                all_answered.set()

    sending_done = threading.Event()
    # Wall-clock start shared with the parent, then a monotonic schedule:
    # --warmup seconds of the same calls, unmeasured, then the window.
    time.sleep(max(0.0, args.start - args.warmup - time.time()))
    begin = time.perf_counter()
    measure_from = begin + max(0.0, args.start - time.time())
    end = measure_from + args.seconds
    schedule = [(begin, kind) for kind in probes]
    count = {k: 0 for k in probes}
    while True:
        due, kind = min(schedule)
        if due >= end:
            break
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
            now = time.perf_counter()
        call, request = probes[kind][:2]
        measured = due >= measure_from
        with lock:
            outstanding[0] += 1
            if measured:
                tally[kind]["lag_ms"] = max(tally[kind]["lag_ms"], (now - due) * 1000)
        sent = time.perf_counter()
        future = call.future(request, timeout=30)
        future.add_done_callback(
            lambda f, kind=kind, sent=sent, measured=measured: answered(kind, sent, measured, f))
        count[kind] += 1
        schedule = [(begin + count[k] / probes[k][2], k) for k in probes]
    with lock:
        sending_done.set()
        if outstanding[0] == 0:
            all_answered.set()
    all_answered.wait(timeout=40)
    with lock:
        print(json.dumps({"seconds": args.seconds, "probes": tally}), flush=True)
    channel.close()


class Probe:
    """A probe window: the subprocess started now, measuring from `start`."""

    def __init__(self, server, start, seconds, args):
        self.seconds = seconds
        self.process = subprocess.Popen(
            [sys.executable, str(pathlib.Path(__file__).resolve()), "probe",
             "--target", f"127.0.0.1:{server.port}", "--start", f"{start:.6f}",
             "--seconds", f"{seconds:.3f}", "--get-rate", str(args.probe_get_rate),
             "--unit-rate", str(args.probe_unit_rate)],
            stdout=subprocess.PIPE, text=True)

    def result(self):
        out, _ = self.process.communicate(timeout=self.seconds + 120)
        if self.process.returncode != 0:
            raise RuntimeError(f"probe exited with {self.process.returncode}")
        return json.loads(out)


def read_events(path):
    return [Event(line) for line in path.read_text().splitlines() if line.strip()]


def rounds_of(events):
    """[(start, end, requests)] of every observer round: from the first page of
    its ListUnits to its last list request before the next round."""
    rounds = []
    for e in events:
        if e.round_start():
            rounds.append([e.at, e.at, 0])
        if e.list_request() and rounds:
            if e.path != "/fleet/v1/machines":  # also listed alone (ObserveNow)
                rounds[-1][1] = e.at
            rounds[-1][2] += 1
    return rounds


def run(mode, args):
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"pending-{mode}-"))
    log = work / "fleet-events.log"
    fleet = FleetEmulator(work, page_limit=args.page_limit, converge_delay=args.converge_delay,
                          machines=3, extra_args=["--event-log", str(log)]).start()
    interval = args.interval if mode == "observed" else 1000000
    config = (f'accounts {{ id: "fleet" provider: "fleet" endpoint: "{fleet.tcp_endpoint}" '
              f'observe_interval_seconds: {interval} }}\n'
              'accounts { id: "sandbox" provider: "sandbox" '
              'options { key: "transition_ms" value: "0" } }\n')
    server = Server(work / "server", config).start()
    try:
        units = server.units()
        # The GetInstance probe's instance (the GetUnit probe's unit is
        # never created: see the docstring).
        server.wait(server.compute().CreateInstance(compute_pb2.CreateInstanceRequest(
            parent=SANDBOX, instance_id="cp-probe",
            instance=compute_pb2.Instance(image=SANDBOX + "/images/debian-12",
                                          machine_type=SANDBOX + "/machineTypes/small"))))
        time.sleep(1.0)  # the observer's baseline round
        # (a) the probes' baseline, before any CreateUnit.
        baseline = Probe(server, time.time() + 3.0, args.probe_seconds, args).result()

        def create(i):
            unit_id = f"u{i:05d}.service"
            request = units_pb2.CreateUnitRequest(parent="accounts/fleet", unit_id=unit_id)
            request.unit.desired_state = units_pb2.Unit.LAUNCHED
            request.unit.options.add(section="Service", name="ExecStart",
                                     value="/usr/bin/sleep 1d")
            op = units.CreateUnit(request, timeout=120)
            return op.name, unit_id

        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            created = list(pool.map(create, range(args.operations)))
        t_created = time.time()
        start_window = t_created + 2.0
        # Every unit converges --converge-delay after its PUT; the first PUT
        # was answered after t0.
        end_window = t0 + args.converge_delay - 1.0
        if end_window - start_window < 5:
            print(f"{mode}: wait window too short ({end_window - start_window:.1f}s); "
                  f"raise --converge-delay", file=sys.stderr)
        # (b) the probes while the operations wait: from the window's start,
        # as long as the baseline unless the window is shorter.
        probe_seconds = min(args.probe_seconds, end_window - start_window)
        if probe_seconds < args.probe_seconds:
            print(f"{mode}: the wait window ({end_window - start_window:.1f} s) is shorter "
                  f"than --probe-seconds; the wait probe runs {probe_seconds:.1f} s "
                  f"(raise --converge-delay)", file=sys.stderr)
        waiting = Probe(server, start_window, max(1.0, probe_seconds), args)
        # Every operation done.
        ops = server.operations()
        pending = {name for name, _ in created}
        ended = {}
        deadline = time.time() + args.converge_delay + 180
        waiting = waiting.result()
        time.sleep(max(0, t0 + args.converge_delay - time.time()))
        while pending and time.time() < deadline:
            for name in list(pending):
                op = ops.GetOperation(operations_pb2.GetOperationRequest(name=name))
                if op.done:
                    meta = common_pb2.OperationMetadata()
                    op.metadata.Unpack(meta)
                    ended[name] = meta.end_time.ToNanoseconds() / 1e9
                    if op.HasField("error"):
                        print(f"{mode}: {name} failed: {op.error.message}", file=sys.stderr)
                    pending.discard(name)
            if pending:
                time.sleep(0.5)
        time.sleep(0.5)
        events = read_events(log)
        changed = {e.unit: e.at for e in events
                   if e.kind in ("converge", "start") and e.desired == "launched"}
        changed_at = {name: changed.get(unit) for name, unit in created}
        missing = sum(1 for v in changed_at.values() if v is None)
        first_change = min(v for v in changed_at.values() if v is not None)
        last_change = max(v for v in changed_at.values() if v is not None)
        requests = [e for e in events if e.kind == "request" and not e.probe()]
        probe_requests = [e for e in events if e.probe() and start_window <= e.at < end_window]
        during = [e for e in requests if start_window <= e.at < end_window]
        window = end_window - start_window
        completion = [e for e in requests if e.at >= first_change]
        all_rounds = rounds_of(events)
        in_window = [r for r in all_rounds if start_window <= r[0] < end_window]
        last_end = max(ended.values()) if ended else float("nan")
        lat, to_round, listing, confirm = [], [], [], []
        starts = [r for r in all_rounds]
        for name, end in ended.items():
            change = changed_at.get(name)
            if change is None:
                continue
            lat.append(end - change)
            # The round that completed it: the last one started before it was
            # done (it may have started a little before the change and listed
            # the unit after it).
            before = [r for r in starts if r[0] <= end]
            if mode == "observed" and before:
                r = before[-1]
                to_round.append(r[0] - change)
                listing.append(r[1] - r[0])
                confirm.append(end - r[1])
        per_path = collections.Counter()
        for e in during:
            path = e.path
            if path.startswith("/fleet/v1/units/"):
                path = "/fleet/v1/units/<name>"
            if path == "/fleet/v1/state" and "unitName" in e.query:
                path = "/fleet/v1/state?unitName="
            per_path[f"{e.method} {path}"] += 1
        return {
            "mode": mode,
            "interval": interval,
            "creates_s": t_created - t0,
            "window": window,
            "requests": len(during),
            "rps": len(during) / window if window > 0 else float("nan"),
            "per_path": per_path,
            "rounds": len(in_window),
            "list_calls": sum(1 for e in during if e.list_call()),
            "round_requests": [r[2] for r in in_window],
            "round_seconds": [r[1] - r[0] for r in in_window],
            "round_gaps": [b[0] - a[0] for a, b in zip(all_rounds, all_rounds[1:])],
            "completion_requests": len(completion),
            "completion_per_op": len(completion) / max(1, len(ended)),
            "done": len(ended),
            "pending": len(pending),
            "missing_change": missing,
            "spread": last_change - first_change,
            "p50": pct(lat, 50), "p90": pct(lat, 90), "max": max(lat) if lat else float("nan"),
            "to_round": to_round, "listing": listing, "confirm": confirm,
            "all_done_after_change": last_end - first_change,
            "probe_baseline": baseline, "probe_wait": waiting,
            "probe_requests": len(probe_requests),
        }
    finally:
        server.stop()
        fleet.stop()


def summary(values):
    if not values:
        return "-"
    return f"p50 {pct(values, 50):.2f} s, p90 {pct(values, 90):.2f} s, max {max(values):.2f} s"


def probe_lines(baseline, waiting):
    """The probes' table: per probe, both windows and the p99 ratio."""
    lines = [f"  probes (open loop; baseline {baseline['seconds']:.1f} s before any CreateUnit, "
             f"wait {waiting['seconds']:.1f} s from the wait window's start):"]
    for kind in baseline["probes"]:
        row = {}
        for label, result in (("baseline", baseline), ("wait", waiting)):
            t = result["probes"][kind]
            lat = t["latencies_ms"]
            row[label] = pct(lat, 99)
            err = f", {t['errors']} errors ({t['first_error']})" if t["errors"] else ""
            lines.append(f"    {kind:<11} {label:<8}: {len(lat)} calls, p50 {pct(lat, 50):.2f} ms, "
                         f"p99 {pct(lat, 99):.2f} ms, max {max(lat) if lat else float('nan'):.2f} ms"
                         f"{err}; send lag max {t['lag_ms']:.1f} ms")
        lines.append(f"    {kind:<11} p99 wait / baseline = {row['wait'] / row['baseline']:.2f}")
    return lines


def main():
    if sys.argv[1:2] == ["probe"]:
        return probe_worker(sys.argv[2:])
    ap = argparse.ArgumentParser()
    ap.add_argument("--operations", type=int, default=1000)
    ap.add_argument("--interval", type=int, default=15)
    ap.add_argument("--converge-delay", type=float, default=45.0)
    ap.add_argument("--modes", default="observed,polled")
    ap.add_argument("--page-limit", type=int, default=100,
                    help="fleet's page size (fleetd's token_limit, default 100)")
    ap.add_argument("--probe-seconds", type=float, default=20.0,
                    help="length of each probe window (baseline and wait)")
    ap.add_argument("--probe-get-rate", type=float, default=100.0,
                    help="sandbox GetInstance probe calls per second (0: none)")
    ap.add_argument("--probe-unit-rate", type=float, default=20.0,
                    help="fleet GetUnit probe calls per second (0: none)")
    ap.add_argument("--server", default=None,
                    help="cloudplaned binary (default: the release build, built now)")
    args = ap.parse_args()
    cloudplane_testing.SERVER_BINARY = pathlib.Path(
        args.server or cloudplane_testing.release_binary())
    print(f"cloudplaned {cloudplane_testing.SERVER_BINARY}")
    results = [run(mode, args) for mode in args.modes.split(",")]
    print(f"{args.operations} CreateUnit operations pending on one fleet account "
          f"(fleet pages of {args.page_limit}), units converge {args.converge_delay:.0f} s "
          f"after their PUT")
    for r in results:
        print(f"\n[{r['mode']}] observe_interval_seconds={r['interval']}")
        print(f"  CreateUnit x{args.operations}: {r['creates_s']:.1f} s")
        print(f"  wait window {r['window']:.1f} s: {r['requests']} HTTP requests "
              f"= {r['rps']:.2f} req/s (without the GetUnit probe's "
              f"{r['probe_requests']})")
        for path, n in sorted(r["per_path"].items()):
            print(f"    {path}: {n}")
        print(f"  observer rounds started in the window: {r['rounds']}; list calls "
              f"(ListUnits + ListMachines, all pages one call) {r['list_calls']} = "
              f"{r['list_calls'] / r['window']:.3f} calls/s")
        if r["round_requests"]:
            print(f"  HTTP requests per round: {r['round_requests']}; round listing took "
                  f"{', '.join(f'{x:.2f}' for x in r['round_seconds'])} s")
        if r["round_gaps"]:
            print(f"  time between round starts: "
                  f"{', '.join(f'{x:.1f}' for x in r['round_gaps'])} s")
        if r["round_requests"] and r["round_gaps"]:
            # The window holds whole rounds but is not a whole number of
            # intervals, so its req/s swings with where the rounds fall (3
            # rounds in 37.6 s, or 2); the long-run rate is a round's
            # requests over the time between rounds.
            steady = statistics.mean(r["round_requests"]) / statistics.mean(r["round_gaps"])
            print(f"  steady rate: {statistics.mean(r['round_requests']):.1f} requests per "
                  f"round / {statistics.mean(r['round_gaps']):.1f} s between rounds = "
                  f"{steady:.2f} req/s")
        print(f"  completion phase: {r['completion_requests']} HTTP requests "
              f"({r['completion_per_op']:.2f} per operation)")
        print(f"  done {r['done']}, still pending {r['pending']}; units changed over "
              f"{r['spread']:.1f} s ({r['missing_change']} without a logged change)")
        print(f"  provider change -> operation done: p50 {r['p50']:.2f} s, "
              f"p90 {r['p90']:.2f} s, max {r['max']:.2f} s "
              f"(all done {r['all_done_after_change']:.1f} s after the first change)")
        if r["to_round"]:
            print(f"    change -> the judging round starts: {summary(r['to_round'])}")
            print(f"    that round's listing:        {summary(r['listing'])}")
            print(f"    listing done -> op done:     {summary(r['confirm'])}")
        for line in probe_lines(r["probe_baseline"], r["probe_wait"]):
            print(line)

if __name__ == "__main__":
    main()
