"""Does the state database stay under a fixed size under steady load?

    .deps/venv/bin/python bench/db_growth.py [--minutes 30] [--rate 100]
        [--workers 4] [--operation-retention 300] [--change-log-retention 300]
        [--audit-retention 300] [--sample 30] [--server PATH_TO_CLOUDPLANED]
        [--state-dir DIR]

Runs the real cloudplaned (the optimised release build unless --server
names another binary) with one sandbox account (transitions of 0 ms) and
short retentions (ServerConfig operation_retention_seconds,
change_log_retention_seconds and audit_retention_seconds, 5 minutes each by
default; the sandbox's `_journal` follows operation_retention_seconds), and
drives it with --workers client threads for --minutes. Each iteration of a
worker is: CreateInstance (a fresh request_id), GetInstance of it,
ListInstances (one page), DeleteInstance of the instance it created in its
previous iteration. So every iteration leaves two finished operations, two
audit events, two journal entries and a handful of change-log entries
behind and no instance: without retention the database grows for ever;
with it, it must level off once the first retention window
has passed. --rate paces the iterations (all workers together, per second);
on a small machine the achieved rate is what the client and server CPUs
allow, and is printed.

Every --sample seconds it prints the size of the state directory's
cloudplane.db, -wal and -shm files; how much of the file each table takes
with its indexes (SQLite's dbstat: operations, changes, audit_events,
resources) and the free pages; the rows of operations, changes,
audit_events and the sandbox's `_journal` resources (read-only
connection); and the rate since the last sample. At the end: the maximum
total size, the maximum after the first retention window plus one sample
(the plateau the goal is about), the server's pruning log lines (retention
pass, audit trim, sandbox journal) and the call errors.
No pass/fail: the figures are for people to judge.
"""
import argparse
import pathlib
import sqlite3
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

import grpc  # noqa: E402

import cloudplane_testing  # noqa: E402
from cloudplane_testing import Server, compute_pb2  # noqa: E402

ACCOUNT = "accounts/bench"
CONFIG = """
operation_retention_seconds: %d
change_log_retention_seconds: %d
audit_retention_seconds: %d
accounts { id: "bench" provider: "sandbox" options { key: "transition_ms" value: "0" } }
"""


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.iterations = 0
        self.calls = 0
        self.errors = {}

    def add(self, iterations=0, calls=0, error=None):
        with self.lock:
            self.iterations += iterations
            self.calls += calls
            if error is not None:
                self.errors[error] = self.errors.get(error, 0) + 1


def worker(server, index, period, stop, counters):
    compute = server.compute()
    previous = None
    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        if next_at > now:
            time.sleep(next_at - now)
        next_at = max(next_at + period, time.monotonic() - period)
        instance_id = f"w{index}-{n}"
        n += 1
        name = f"{ACCOUNT}/instances/{instance_id}"
        try:
            compute.CreateInstance(compute_pb2.CreateInstanceRequest(
                parent=ACCOUNT, instance_id=instance_id, request_id=uuid.uuid4().hex,
                instance=compute_pb2.Instance(image=ACCOUNT + "/images/debian-12",
                                              machine_type=ACCOUNT + "/machineTypes/small")),
                timeout=30)
        except grpc.RpcError as e:
            counters.add(calls=1, error=f"create {e.code().name}: {e.details()[:80]}")
            continue
        calls = 1
        try:
            compute.GetInstance(compute_pb2.GetInstanceRequest(name=name), timeout=30)
            compute.ListInstances(compute_pb2.ListInstancesRequest(parent=ACCOUNT, page_size=20),
                                  timeout=30)
            calls += 2
            if previous is not None:
                calls += 1
                compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
                    name=previous, request_id=uuid.uuid4().hex), timeout=30)
            counters.add(iterations=1, calls=calls)
        except grpc.RpcError as e:
            # A failed call is counted; its instance (if any) stays behind.
            counters.add(calls=calls, error=f"{e.code().name}: {e.details()[:80]}")
        previous = name


def sizes(state_dir):
    out = {}
    for suffix in ("", "-wal", "-shm"):
        path = state_dir / f"cloudplane.db{suffix}"
        out[suffix or "db"] = path.stat().st_size if path.exists() else 0
    return out


GROUPS = (("operations", "ops"), ("changes", "chg"), ("audit_events", "audit"),
          ("resources", "res"))


def contents(state_dir):
    """Rows and bytes (pages of each table with its indexes, from SQLite's
    dbstat) of what the database holds, through a read-only connection."""
    out = {"ops rows": "?", "chg rows": "?", "audit rows": "?", "journal rows": "?"}
    try:
        db = sqlite3.connect(f"file:{state_dir / 'cloudplane.db'}?mode=ro", uri=True, timeout=5)
        try:
            out["ops rows"] = db.execute("SELECT count(*) FROM operations").fetchone()[0]
            out["chg rows"] = db.execute("SELECT count(*) FROM changes").fetchone()[0]
            out["audit rows"] = db.execute("SELECT count(*) FROM audit_events").fetchone()[0]
            out["journal rows"] = db.execute(
                "SELECT count(*) FROM resources WHERE collection = '_journal'").fetchone()[0]
            pages = dict(db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
            index_of = dict(db.execute("SELECT name, tbl_name FROM sqlite_schema"))
            for table, label in GROUPS:
                out[label] = sum(size for name, size in pages.items()
                                 if index_of.get(name, name) == table)
            page_size = db.execute("PRAGMA page_size").fetchone()[0]
            out["free"] = db.execute("PRAGMA freelist_count").fetchone()[0] * page_size
        finally:
            db.close()
    except sqlite3.Error as e:
        print(f"(cannot read the database: {e})")
    return out


def mib(n):
    return n / (1 << 20)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=100,
                        help="iterations per second, all workers together (each 2 mutations)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--operation-retention", type=int, default=300, help="seconds")
    parser.add_argument("--change-log-retention", type=int, default=300, help="seconds")
    parser.add_argument("--audit-retention", type=int, default=300, help="seconds")
    parser.add_argument("--sample", type=float, default=30, help="seconds between samples")
    parser.add_argument("--server", default=None, help="cloudplaned binary")
    parser.add_argument("--state-dir", default=None)
    args = parser.parse_args()

    # Default: the optimised build (.bazelrc's `release` config), built now.
    cloudplane_testing.SERVER_BINARY = pathlib.Path(
        args.server or cloudplane_testing.release_binary())
    state_dir = pathlib.Path(args.state_dir or tempfile.mkdtemp(prefix="cloudplane-dbgrowth-"))
    server = Server(state_dir, CONFIG % (args.operation_retention,
                                         args.change_log_retention,
                                         args.audit_retention)).start()
    print(f"cloudplaned {cloudplane_testing.SERVER_BINARY} state {state_dir}")
    print(f"retention: operations {args.operation_retention} s, change log "
          f"{args.change_log_retention} s, audit {args.audit_retention} s; load: {args.workers} workers, target {args.rate:g} "
          f"iterations/s (create + get + list + delete) for {args.minutes:g} min; "
          f"sample every {args.sample:g} s")
    counters = Counters()
    stop = threading.Event()
    period = args.workers / args.rate
    threads = [threading.Thread(target=worker, args=(server, i, period, stop, counters),
                                daemon=True) for i in range(args.workers)]
    start = time.monotonic()
    for t in threads:
        t.start()

    header = (f"{'t s':>6} {'db MiB':>7} {'wal':>5} {'shm':>5} {'total':>6} | "
              f"{'ops':>5} {'chg':>5} {'audit':>5} {'res':>5} {'free':>5} MiB | "
              f"{'ops':>6} {'changes':>7} {'audit':>7} {'journal':>7} rows | "
              f"{'iter/s':>6} {'calls/s':>7}")
    print(header)
    samples = []
    last_t, last_iter, last_calls = 0.0, 0, 0
    end = start + args.minutes * 60
    try:
        next_sample = start
        while True:
            wait = next_sample - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            now = time.monotonic()
            t = now - start
            s = sizes(state_dir)
            total = sum(s.values())
            c = contents(state_dir)
            with counters.lock:
                iterations, calls = counters.iterations, counters.calls
            dt = max(t - last_t, 1e-9)
            ips = (iterations - last_iter) / dt if samples else 0.0
            cps = (calls - last_calls) / dt if samples else 0.0
            last_t, last_iter, last_calls = t, iterations, calls
            samples.append((t, total))
            print(f"{t:6.0f} {mib(s['db']):7.2f} {mib(s['-wal']):5.2f} {mib(s['-shm']):5.2f} "
                  f"{mib(total):6.2f} | "
                  + " ".join(f"{mib(c.get(k, 0)):5.2f}" for k in ("ops", "chg", "audit", "res",
                                                                  "free"))
                  + f"     | {c['ops rows']!s:>6} {c['chg rows']!s:>7} {c['audit rows']!s:>7} "
                  f"{c['journal rows']!s:>7}      | {ips:6.1f} {cps:7.1f}", flush=True)
            if now >= end - 0.5:
                break
            if server.process.poll() is not None:
                print("cloudplaned exited:", server.process.returncode)
                break
            next_sample = min(next_sample + args.sample, end)
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=35)
        code = server.stop()

    elapsed = time.monotonic() - start
    peak = max(total for _, total in samples)
    window = max(args.operation_retention, args.change_log_retention,
                 args.audit_retention) + args.sample
    after = [total for t, total in samples if t >= window]
    print(f"\niterations {counters.iterations} ({counters.iterations / elapsed:.1f}/s), "
          f"calls {counters.calls} ({counters.calls / elapsed:.1f}/s), "
          f"errors {sum(counters.errors.values())}")
    for error, count in sorted(counters.errors.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  {count} x {error}")
    print(f"max size: {mib(peak):.2f} MiB over the run")
    if after:
        print(f"max size after the first retention window ({window:g} s): {mib(max(after)):.2f} "
              f"MiB; first sample there {mib(after[0]):.2f} MiB, last {mib(after[-1]):.2f} MiB")
    else:
        print(f"the run was shorter than one retention window plus a sample ({window:g} s): "
              "no plateau to judge")
    log = server.log()
    for what, needle in (("retention", "retention:"), ("audit trim", "audit log: removed"),
                         ("sandbox journal", "operation journal entries")):
        lines = [line for line in log.splitlines() if needle in line]
        print(f"server {what} log lines: {len(lines)}"
              + (f"; last: {lines[-1]}" if lines else ""))
    print(f"server exit code {code}")


if __name__ == "__main__":
    main()
