"""What N pending operations on one fleet account cost the provider, with the
server's observer completing them from its lists and with per-operation
polling, in the same invocation. Prints numbers; no pass/fail.

    .deps/venv/bin/python bench/pending_ops.py [--operations 1000] [--interval 15]
        [--converge-delay 45] [--modes observed,polled]

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

Reported per mode, counted at the emulator (its --verbose request log):
  * during the wait (from 2 s after the last CreateUnit returned to 1 s
    before the first unit converges): HTTP requests/s, and list rounds/s
    (KNOWN WRONG: the emulator's log has no query strings, so this counts
    every GET /fleet/v1/units list page, not rounds; ListUnits is GET units
    + machines + state, each every page, and ListMachines one GET machines);
  * the completion phase: requests from the first convergence until every
    operation is done (fleet's LAUNCHED needs systemd's word, which the list
    does not carry: one targeted poll per operation, GET unit + GET state);
  * time from the provider's change to each operation's completion
    (p50/p90/max): the change time is taken as the moment the CreateUnit
    call returned plus --converge-delay (the emulator's timer starts when it
    answers the PUT, a little before), the completion as the Operation's
    metadata end_time.
"""
import argparse
import concurrent.futures
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from cloudplane_testing import (FleetEmulator, Server, common_pb2, operations_pb2,  # noqa: E402
                                units_pb2)


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def is_round(line):
    # "GET /fleet/v1/units -> 200" (first page; later pages carry nextPageToken)
    return line.startswith("GET /fleet/v1/units") and "nextPageToken" not in line and \
        "/units/" not in line


def run(mode, args):
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"pending-{mode}-"))
    fleet = FleetEmulator(work, page_limit=100, converge_delay=args.converge_delay,
                          machines=3).start()
    interval = args.interval if mode == "observed" else 1000000
    config = (f'accounts {{ id: "fleet" provider: "fleet" endpoint: "{fleet.tcp_endpoint}" '
              f'observe_interval_seconds: {interval} }}\n')
    server = Server(work / "server", config).start()
    try:
        units = server.units()
        time.sleep(1.0)  # the observer's baseline round

        def create(i):
            request = units_pb2.CreateUnitRequest(parent="accounts/fleet", unit_id=f"u{i:05d}.service")
            request.unit.desired_state = units_pb2.Unit.LAUNCHED
            request.unit.options.add(section="Service", name="ExecStart",
                                     value="/usr/bin/sleep 1d")
            op = units.CreateUnit(request, timeout=120)
            return op.name, time.time()

        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            created = list(pool.map(create, range(args.operations)))
        t_created = time.time()
        changed_at = {name: at + args.converge_delay for name, at in created}
        first_change = min(changed_at.values())
        start_window = t_created + 2.0
        end_window = first_change - 1.0
        if end_window - start_window < 5:
            print(f"{mode}: wait window too short ({end_window - start_window:.1f}s); "
                  f"raise --converge-delay", file=sys.stderr)
        time.sleep(max(0, start_window - time.time()))
        before = fleet.requests()
        time.sleep(max(0, end_window - time.time()))
        during = fleet.requests()[len(before):]
        window = end_window - start_window
        time.sleep(max(0, first_change - time.time()))
        at_change = len(fleet.requests())
        # Every operation done.
        ops = server.operations()
        pending = {name for name, _ in created}
        ended = {}
        deadline = time.time() + args.converge_delay + 120
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
        completion_requests = len(fleet.requests()) - at_change
        last_end = max(ended.values()) if ended else float("nan")
        lat = [ended[n] - changed_at[n] for n in ended]
        rounds = sum(1 for line in during if is_round(line))
        return {
            "mode": mode,
            "interval": interval,
            "creates_s": t_created - t0,
            "window": window,
            "requests": len(during),
            "rps": len(during) / window if window > 0 else float("nan"),
            "rounds": rounds,
            "rounds_s": rounds / window if window > 0 else float("nan"),
            "completion_requests": completion_requests,
            "done": len(ended),
            "pending": len(pending),
            "p50": pct(lat, 50), "p90": pct(lat, 90), "max": max(lat) if lat else float("nan"),
            "all_done_after_change": last_end - first_change,
        }
    finally:
        server.stop()
        fleet.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--operations", type=int, default=1000)
    ap.add_argument("--interval", type=int, default=15)
    ap.add_argument("--converge-delay", type=float, default=45.0)
    ap.add_argument("--modes", default="observed,polled")
    args = ap.parse_args()
    results = [run(mode, args) for mode in args.modes.split(",")]
    print(f"{args.operations} CreateUnit operations pending on one fleet account, "
          f"units converge {args.converge_delay:.0f} s after their PUT")
    for r in results:
        print(f"\n[{r['mode']}] observe_interval_seconds={r['interval']}")
        print(f"  CreateUnit x{args.operations}: {r['creates_s']:.1f} s")
        print(f"  wait window {r['window']:.1f} s: {r['requests']} HTTP requests "
              f"= {r['rps']:.2f} req/s; {r['rounds']} list rounds = {r['rounds_s']:.3f} rounds/s")
        print(f"  completion phase: {r['completion_requests']} HTTP requests")
        print(f"  done {r['done']}, still pending {r['pending']}")
        print(f"  provider change -> operation done: p50 {r['p50']:.2f} s, "
              f"p90 {r['p90']:.2f} s, max {r['max']:.2f} s "
              f"(all done {r['all_done_after_change']:.1f} s after the first change)")


if __name__ == "__main__":
    main()
