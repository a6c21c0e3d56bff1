"""Measures cloudplaned on its sandbox provider through the generated Python
client and prints the numbers (no pass/fail: goals are judged by people).

    .deps/venv/bin/python bench/api_bench.py [--instances 300] [--gets 2000] [--waiters 200]
        [--baseline PATH_TO_OTHER_CLOUDPLANED] [--rounds 3]

What it reports:
  * CreateInstance: how long the RPC takes to return its Operation (the
    SQLite insert with fsync plus the sandbox's transaction), and the rate;
  * GetInstance latency (p50/p90/p99) and rate;
  * ListInstances: time to read every page of the account's instances;
  * threads and resident memory of the server, idle and with many
    WaitOperation calls in flight (the thread count must not grow with them).

With --baseline, the same measurements run against another cloudplaned
binary (an older build, say) in the same invocation, alternating the two
`--rounds` times, and a last table prints the medians side by side with the
ratio this build / baseline.
"""
import argparse
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

import cloudplane_testing  # noqa: E402
from cloudplane_testing import Server, compute_pb2, operations_pb2  # noqa: E402

ACCOUNT = "accounts/sandbox"
CONFIG = """
accounts {
  id: "sandbox"
  provider: "sandbox"
  options { key: "transition_ms" value: "%d" }
}
"""


def proc_status(pid):
    fields = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) // 1024


def percentiles(samples_ms):
    ordered = sorted(samples_ms)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return pick(0.5), pick(0.9), pick(0.99)


def measure(binary, args, label):
    """One run against `binary`; prints as it goes, returns the figures."""
    cloudplane_testing.SERVER_BINARY = pathlib.Path(binary)
    out = {}
    # Transitions long enough that the waiters below really wait.
    server = Server(tempfile.mkdtemp(prefix="cloudplane-bench-"), CONFIG % 30000).start()
    try:
        compute, ops = server.compute(), server.operations()
        threads, rss = proc_status(server.process.pid)
        out["idle threads"], out["idle RSS MiB"] = threads, rss
        print(f"[{label}] server idle: {threads} threads, {rss} MiB resident")

        latencies, names = [], []
        start = time.perf_counter()
        for i in range(args.instances):
            t0 = time.perf_counter()
            op = compute.CreateInstance(compute_pb2.CreateInstanceRequest(
                parent=ACCOUNT, instance_id=f"bench-{i:05d}", request_id=f"bench-{i}",
                instance=compute_pb2.Instance(image=ACCOUNT + "/images/debian-12",
                                              machine_type=ACCOUNT + "/machineTypes/small")))
            latencies.append((time.perf_counter() - t0) * 1000)
            names.append(op.name)
        elapsed = time.perf_counter() - start
        p50, p90, p99 = percentiles(latencies)
        out["CreateInstance /s"], out["CreateInstance p50 ms"] = args.instances / elapsed, p50
        print(f"[{label}] CreateInstance x{args.instances}: {args.instances / elapsed:.0f}/s, "
              f"p50 {p50:.2f} ms, p90 {p90:.2f} ms, p99 {p99:.2f} ms")

        latencies = []
        start = time.perf_counter()
        for i in range(args.gets):
            t0 = time.perf_counter()
            compute.GetInstance(compute_pb2.GetInstanceRequest(
                name=f"{ACCOUNT}/instances/bench-{i % args.instances:05d}"))
            latencies.append((time.perf_counter() - t0) * 1000)
        elapsed = time.perf_counter() - start
        p50, p90, p99 = percentiles(latencies)
        out["GetInstance /s"], out["GetInstance p50 ms"] = args.gets / elapsed, p50
        print(f"[{label}] GetInstance x{args.gets}: {args.gets / elapsed:.0f}/s, "
              f"p50 {p50:.2f} ms, p90 {p90:.2f} ms, p99 {p99:.2f} ms")

        rounds = []
        for _ in range(5):
            t0 = time.perf_counter()
            token, count = "", 0
            while True:
                page = compute.ListInstances(compute_pb2.ListInstancesRequest(
                    parent=ACCOUNT, page_size=100, page_token=token))
                count += len(page.instances)
                token = page.next_page_token
                if not token:
                    break
            rounds.append((time.perf_counter() - t0) * 1000)
        out["ListInstances all ms"] = statistics.median(rounds)
        print(f"[{label}] ListInstances, all {count} in pages of 100: "
              f"median {statistics.median(rounds):.1f} ms")

        futures = [ops.WaitOperation.future(
            operations_pb2.WaitOperationRequest(name=names[i % len(names)]), timeout=60)
            for i in range(args.waiters)]
        time.sleep(1.0)
        threads_busy, rss_busy = proc_status(server.process.pid)
        pending = sum(1 for f in futures if not f.done())
        out["busy threads"], out["busy RSS MiB"] = threads_busy, rss_busy
        print(f"[{label}] server with {pending} WaitOperation calls in flight: {threads_busy} "
              f"threads, {rss_busy} MiB resident")
        for f in futures:
            f.cancel()
    finally:
        server.stop()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--waiters", type=int, default=200)
    parser.add_argument("--baseline", help="another cloudplaned binary to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="alternations with --baseline")
    args = parser.parse_args()
    this = str(cloudplane_testing.SERVER_BINARY)
    if not args.baseline:
        measure(this, args, "this build")
        return
    runs = {"this build": [], "baseline": []}
    for _ in range(args.rounds):
        runs["this build"].append(measure(this, args, "this build"))
        runs["baseline"].append(measure(args.baseline, args, "baseline"))
    print(f"\nmedians of {args.rounds} alternating runs")
    print(f"{'':24} {'this build':>12} {'baseline':>12} {'ratio':>8}")
    for key in runs["this build"][0]:
        a = statistics.median(r[key] for r in runs["this build"])
        b = statistics.median(r[key] for r in runs["baseline"])
        print(f"{key:24} {a:12.2f} {b:12.2f} {a / b if b else float('nan'):8.2f}")


if __name__ == "__main__":
    main()
