"""CreateInstance on the sandbox at N concurrent, its fsyncs, and the disk's
SQLite fsync floor, all measured in one invocation (issue 15).

    .deps/venv/bin/python bench/create_bench.py [--creates 3000] [--concurrency 16]
        [--rounds 3] [--server PATH_TO_CLOUDPLANED] [--baseline OTHER_CLOUDPLANED]
        [--transition-ms 60000] [--no-strace]

The server measured is the optimised build (.bazelrc's `release` config,
bazel-opt-bin/service/cloudplaned, built first) unless --server names
another binary. With --baseline, every round measures both binaries, one
after the other, and the medians are printed side by side.

Each round, per binary:
  1. throughput: a fresh server (state dir under the same directory as the
     floor's database), --creates CreateInstance calls with distinct
     request_ids, --concurrency of them in flight at all times (client
     processes x threads, so the Python client is not held by one GIL);
     creates/s = calls / wall time of the burst;
  2. fsyncs: the same burst against a fresh server started under
     `strace -f --seccomp-bpf -e trace=fsync,fdatasync` (only those two
     syscalls stop the process); every fsync/fdatasync between the first
     call and the last answer is counted and divided by the calls: "fsyncs
     per create during the burst". With --transition-ms long (default 60 s)
     no instance finishes during the burst, so besides each create's own
     RPC path the count holds only what pending operations cost meanwhile
     (their polls; an unchanged poll writes nothing). The throughput run is
     separate because strace itself slows every fsync;
  3. the fsync floor: a loop of tiny commits (one row each) to a fresh WAL
     database with synchronous=FULL in the same directory, for --floor-seconds:
     commits/s, i.e. the most single-commit writes per second this disk
     allows one writer.

Printed per round, then as medians: creates/s, fsyncs per create, floor
commits/s, and the ratio creates/s / floor. A ratio above 1 means creates
share fsyncs (group commit); 1 fsync per create at the floor would be 1.0.
The machine may be shared (a fuzzer, builds): run it a few rounds.
"""
import argparse
import multiprocessing
import os
import pathlib
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

import cloudplane_testing  # noqa: E402
from cloudplane_testing import Server, compute_pb2  # noqa: E402

from api_bench import ACCOUNT, CONFIG  # noqa: E402  (the sandbox account every bench uses)


# ---- clients ------------------------------------------------------------------

def _client_process(address, prefix, indices, threads, barrier, results):
    import grpc  # noqa: PLC0415  (each spawned process makes its own channel)
    from cloudplane.v1 import compute_pb2_grpc  # noqa: PLC0415
    channel = grpc.insecure_channel(address)
    stub = compute_pb2_grpc.ComputeServiceStub(channel)
    grpc.channel_ready_future(channel).result(timeout=10)
    lock = threading.Lock()
    queue = list(indices)
    errors = []

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                i = queue.pop()
            try:
                stub.CreateInstance(compute_pb2.CreateInstanceRequest(
                    parent=ACCOUNT, instance_id=f"{prefix}-{i:06d}", request_id=f"{prefix}-{i}",
                    instance=compute_pb2.Instance(image=ACCOUNT + "/images/debian-12",
                                                  machine_type=ACCOUNT + "/machineTypes/small")),
                    timeout=60)
            except grpc.RpcError as e:  # counted, reported; the bench goes on
                errors.append(f"{e.code()}: {e.details()}")

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    barrier.wait()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    results.put(errors)
    channel.close()


def burst(address, prefix, creates, concurrency):
    """Runs `creates` CreateInstance calls, `concurrency` in flight; returns
    (start, end) monotonic times of the burst and the errors."""
    ctx = multiprocessing.get_context("spawn")
    processes = min(4, concurrency)
    per_process = [concurrency // processes + (1 if p < concurrency % processes else 0)
                   for p in range(processes)]
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=_client_process,
                         args=(address, prefix, range(p, creates, processes), per_process[p],
                               barrier, results))
             for p in range(processes)]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.monotonic()
    errors = []
    for _ in procs:
        errors += results.get()
    end = time.monotonic()
    for p in procs:
        p.join()
    return start, end, errors


# ---- fsync counting -------------------------------------------------------------

class TracedServer(Server):
    """cloudplaned started under strace, which logs every fsync/fdatasync
    with its time (CLOCK_REALTIME, -ttt) to `trace_path`."""

    def __init__(self, state_dir, config_text, trace_path):
        super().__init__(state_dir, config_text)
        self.trace_path = trace_path

    def start(self):
        real = cloudplane_testing.SERVER_BINARY
        wrapper = self.state_dir / "traced-cloudplaned"
        wrapper.write_text(
            "#!/bin/sh\nexec strace -f --seccomp-bpf -qq -ttt -e trace=fsync,fdatasync "
            f"-o {self.trace_path} {real} \"$@\"\n")
        wrapper.chmod(0o755)
        cloudplane_testing.SERVER_BINARY = wrapper
        try:
            return super().start()
        finally:
            cloudplane_testing.SERVER_BINARY = real

    def stop(self, *unused_args, **unused_kwargs):
        # The process started is strace; a signal to it would only detach it.
        # cloudplaned is its child, and strace exits once that child has.
        import signal  # noqa: PLC0415
        children = pathlib.Path(
            f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        for pid in children:
            os.kill(int(pid), signal.SIGTERM)
        self.process.wait(timeout=30)
        self.process = None
        return super().stop()


def count_fsyncs(trace_path, start_wall, end_wall):
    pattern = re.compile(r"^\d+\s+(\d+\.\d+)\s+(fsync|fdatasync)\(")
    count = 0
    for line in pathlib.Path(trace_path).read_text(errors="replace").splitlines():
        m = pattern.match(line)
        if m and start_wall <= float(m.group(1)) <= end_wall:
            count += 1
    return count


# ---- the floor ---------------------------------------------------------------------

def fsync_floor(directory, seconds):
    """Tiny commits per second to a WAL database with synchronous=FULL."""
    path = pathlib.Path(directory) / "floor.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    n = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (v) VALUES (?)", (b"x" * 64,))
        db.execute("COMMIT")
        n += 1
    rate = n / (time.monotonic() - start)
    db.close()
    return rate


# ---- one round -------------------------------------------------------------------

def measure(binary, args, label, root):
    cloudplane_testing.SERVER_BINARY = pathlib.Path(binary)
    out = {}
    config = CONFIG % args.transition_ms

    server = Server(tempfile.mkdtemp(prefix="tput-", dir=root), config).start()
    try:
        start, end, errors = burst(server.address, "c", args.creates, args.concurrency)
    finally:
        server.stop()
    out["creates/s"] = (args.creates - len(errors)) / (end - start)
    if errors:
        print(f"[{label}] {len(errors)} calls failed, first: {errors[0]}")

    if args.strace:
        state = pathlib.Path(tempfile.mkdtemp(prefix="trace-", dir=root))
        trace = state / "fsyncs.trace"
        server = TracedServer(state, config, trace).start()
        try:
            start_wall = time.time()
            _, _, errors = burst(server.address, "s", args.creates, args.concurrency)
            end_wall = time.time()
        finally:
            server.stop()
        out["fsyncs/create"] = count_fsyncs(trace, start_wall, end_wall) / max(
            1, args.creates - len(errors))

    out["floor commits/s"] = fsync_floor(tempfile.mkdtemp(prefix="floor-", dir=root),
                                         args.floor_seconds)
    out["creates/s / floor"] = out["creates/s"] / out["floor commits/s"]
    print(f"[{label}] " + ", ".join(f"{k} {v:.2f}" for k, v in out.items()), flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creates", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--transition-ms", type=int, default=60000)
    parser.add_argument("--floor-seconds", type=float, default=3.0)
    parser.add_argument("--server", help="the cloudplaned binary to measure (default: the "
                        "release build, built now)")
    parser.add_argument("--baseline", help="another cloudplaned binary, measured alongside")
    parser.add_argument("--no-strace", dest="strace", action="store_false",
                        help="skip the fsync count")
    args = parser.parse_args()
    if args.strace and shutil.which("strace") is None:
        print("strace not found: fsyncs are not counted")
        args.strace = False
    args.server = args.server or str(cloudplane_testing.release_binary())
    binaries = {"this build": args.server}
    if args.baseline:
        binaries["baseline"] = args.baseline
    runs = {label: [] for label in binaries}
    root = tempfile.mkdtemp(prefix="cloudplane-create-bench-")
    print(f"{args.creates} CreateInstance, {args.concurrency} in flight, state under {root}")
    try:
        for _ in range(args.rounds):
            for label, binary in binaries.items():
                runs[label].append(measure(binary, args, label, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nmedians of {args.rounds} rounds")
    keys = list(runs["this build"][0])
    print(f"{'':22}" + "".join(f"{label:>14}" for label in binaries) +
          ("   this/baseline" if args.baseline else ""))
    for key in keys:
        values = [statistics.median(r[key] for r in runs[label]) for label in binaries]
        line = f"{key:22}" + "".join(f"{v:14.2f}" for v in values)
        if args.baseline and values[1]:
            line += f"{values[0] / values[1]:16.2f}"
        print(line)


if __name__ == "__main__":
    main()
