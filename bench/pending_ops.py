"""What N pending operations on one fleet account cost the provider, with the
server's observer completing them from its lists and with per-operation
polling, in the same invocation. Prints numbers; no pass/fail.

    .deps/venv/bin/python bench/pending_ops.py [--operations 1000] [--interval 15]
        [--converge-delay 45] [--modes observed,polled] [--page-limit 100]

Each mode starts a fresh fleet emulator (tests/emulators/fleet, 3 machines,
its default page limit of 100) and a fresh cloudplaned
(bazel-bin/service/cloudplaned) with one fleet account, then
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
    round;
  * the completion phase: requests from the first convergence until every
    operation is done (fleet's LAUNCHED needs systemd's word, which the list
    does not carry: one targeted poll per operation, GET unit + GET state);
  * time from the provider's change (the emulator's log of the unit's
    convergence) to each operation's completion (the Operation's metadata
    end_time): p50/p90/max, and how it splits into waiting for the next
    round to start, the round's listing, and the confirming poll.
"""
import argparse
import collections
import concurrent.futures
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import cloudplane_testing  # noqa: E402
from cloudplane_testing import (FleetEmulator, Server, common_pb2, operations_pb2,  # noqa: E402
                                units_pb2)


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
              f'observe_interval_seconds: {interval} }}\n')
    server = Server(work / "server", config).start()
    try:
        units = server.units()
        time.sleep(1.0)  # the observer's baseline round

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
        # Every operation done.
        ops = server.operations()
        pending = {name for name, _ in created}
        ended = {}
        deadline = time.time() + args.converge_delay + 180
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
        requests = [e for e in events if e.kind == "request"]
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
        }
    finally:
        server.stop()
        fleet.stop()


def summary(values):
    if not values:
        return "-"
    return f"p50 {pct(values, 50):.2f} s, p90 {pct(values, 90):.2f} s, max {max(values):.2f} s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--operations", type=int, default=1000)
    ap.add_argument("--interval", type=int, default=15)
    ap.add_argument("--converge-delay", type=float, default=45.0)
    ap.add_argument("--modes", default="observed,polled")
    ap.add_argument("--page-limit", type=int, default=100,
                    help="fleet's page size (fleetd's token_limit, default 100)")
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
              f"= {r['rps']:.2f} req/s")
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

if __name__ == "__main__":
    main()
