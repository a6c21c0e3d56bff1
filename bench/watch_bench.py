"""What open Watch streams cost a mutation: cloudplaned on its sandbox
provider, CreateInstance with 0 and with --streams open Watch streams.

    .deps/venv/bin/python bench/watch_bench.py [--streams 1000] [--creates 150]
        [--rounds 2] [--server PATH_TO_CLOUDPLANED] [--baseline PATH_TO_OTHER_CLOUDPLANED]

The server measured is the optimised build (.bazelrc's `release` config,
built first) unless --server names another binary; --baseline runs the same cases against another binary (an
older build) in the same invocation, alternating, and prints its figures and
the ratios next to this build's.

Each case starts a fresh server (sandbox account, 30 s transitions, so no
operation finishes during the run). With streams, a separate client process
opens them (grpc.aio, 10 channels) on `accounts/sandbox` — or, with --idle,
on `accounts/quiet`, an account the calls never change — every one reading
all the time, and waits for each stream's first heartbeat before the
CreateInstance calls start. The calls run one after another from this
process, in two modes: paced (--pace-ms between calls, so that each call's
changes reach every stream before the next call: the cost of open streams
on the mutation itself) and back to back (the next call at once: on a small
machine the delivery of earlier calls' changes, in the server and in the
reader process, then competes with the calls for the CPUs). For each case
it prints:
  * CreateInstance p50 / p90 (ms): how long the RPC takes to return;
  * server CPU per call (us) while the calls ran (the sum of the server's
    threads' /proc schedstat run times), and per call until every stream
    had received every change the calls made (the whole cost of delivering
    them, which with streams open is mostly writing to the streams);
  * the changes the streams received (calls x changes per call x streams).
Then, per binary, the ratio with streams / without (goal for p50: within
10%). The machine's CPUs are shared by the server, this process and the
stream reader process, so on a small machine the reader's own CPU shows up
as contention.
"""
import argparse
import asyncio
import multiprocessing
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

import cloudplane_testing  # noqa: E402
from cloudplane_testing import Server, compute_pb2  # noqa: E402

ACCOUNT = "accounts/sandbox"
IDLE_ACCOUNT = "accounts/quiet"
CONFIG = """
accounts {
  id: "sandbox"
  provider: "sandbox"
  options { key: "transition_ms" value: "30000" }
}
accounts { id: "quiet" provider: "sandbox" }
"""


def cpu_seconds(pid):
    """Server CPU seconds: the sum of its threads' schedstat run times (ns),
    or utime + stime when a thread list cannot be read."""
    total = 0.0
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0]) / 1e9
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def percentile(samples, q):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---- the stream reader process ---------------------------------------------

def reader_main(port, streams, ready, stop, counts, parent):
    """Opens `streams` Watch streams and reads them until `stop` is set;
    counts[0] = streams that got their first heartbeat, counts[1] = changes
    (not heartbeats) received over all streams."""
    import grpc  # noqa: PLC0415
    from cloudplane_testing import watch_pb2, watch_pb2_grpc  # noqa: PLC0415

    async def run():
        channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(10)]
        stubs = [watch_pb2_grpc.WatchServiceStub(c) for c in channels]
        opened = 0
        changes = 0

        async def one(i):
            nonlocal opened, changes
            call = stubs[i % len(stubs)].Watch(watch_pb2.WatchRequest(
                parent=parent, heartbeat_interval_seconds=60))
            first = True
            try:
                async for response in call:
                    if first:
                        first = False
                        opened += 1
                        counts[0] = opened
                        if opened == streams:
                            ready.set()
                    if response.change_type != watch_pb2.WatchResponse.HEARTBEAT:
                        changes += 1
                        counts[1] = changes
            except grpc.aio.AioRpcError:
                pass

        tasks = [asyncio.ensure_future(one(i)) for i in range(streams)]
        while not stop.is_set():
            await asyncio.sleep(0.05)
        for t in tasks:
            t.cancel()
        for c in channels:
            await c.close()

    asyncio.run(run())


# ---- one case --------------------------------------------------------------

def measure(binary, streams, creates, label, pace_ms, parent=ACCOUNT):
    cloudplane_testing.SERVER_BINARY = pathlib.Path(binary)
    server = Server(tempfile.mkdtemp(prefix="cloudplane-watch-bench-"), CONFIG).start()
    ctx = multiprocessing.get_context("spawn")
    reader = None
    try:
        compute = server.compute()
        # Warm up the connection and the sandbox before measuring.
        for i in range(5):
            compute.CreateInstance(new_instance(f"warm-{i}"))
        if streams:
            ready, stop = ctx.Event(), ctx.Event()
            counts = ctx.Array("q", 2)
            reader = ctx.Process(target=reader_main,
                                 args=(server.port, streams, ready, stop, counts, parent))
            reader.start()
            if not ready.wait(120):
                raise RuntimeError(f"only {counts[0]} of {streams} streams opened")
            time.sleep(1.0)  # let the openings settle
            base_changes = counts[1]
        pid = server.process.pid
        cpu0 = cpu_seconds(pid)
        latencies = []
        for i in range(creates):
            if pace_ms:
                time.sleep(pace_ms / 1000)
            t0 = time.perf_counter()
            compute.CreateInstance(new_instance(f"bench-{i:05d}"))
            latencies.append((time.perf_counter() - t0) * 1000)
        cpu_calls = cpu_seconds(pid) - cpu0
        delivered = 0
        cpu_all = cpu_calls
        if streams:
            # Wait until the streams stop receiving (every change delivered).
            last, still = -1, 0
            while still < 4:
                time.sleep(0.25)
                now = counts[1]
                still = still + 1 if now == last else 0
                last = now
            cpu_all = cpu_seconds(pid) - cpu0  # the settle wait adds little: idle streams cost ~0
            delivered = last - base_changes
            stop.set()
            reader.join(30)
        out = {
            "p50 ms": percentile(latencies, 0.5),
            "p90 ms": percentile(latencies, 0.9),
            "server us/call (calls)": cpu_calls / creates * 1e6,
            "server us/call (delivered)": cpu_all / creates * 1e6,
            "changes received": delivered,
        }
        per_call = delivered / creates / streams if streams else 0
        mode = f"paced {pace_ms} ms" if pace_ms else "back to back"
        print(f"[{label}] {mode}, {streams:5d} streams: CreateInstance x{creates} p50 {out['p50 ms']:.2f} ms, "
              f"p90 {out['p90 ms']:.2f} ms; server CPU/call {out['server us/call (calls)']:.0f} us "
              f"during the calls, {out['server us/call (delivered)']:.0f} us until delivered; "
              f"streams received {delivered} changes ({per_call:.2f} per call per stream)",
              flush=True)
        return out
    finally:
        if reader is not None and reader.is_alive():
            reader.terminate()
        server.stop()


def new_instance(instance_id):
    return compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id=instance_id, request_id=instance_id,
        instance=compute_pb2.Instance(image=ACCOUNT + "/images/debian-12",
                                      machine_type=ACCOUNT + "/machineTypes/small"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--creates", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pace-ms", type=int, default=200,
                        help="the paced cases sleep this long before each call")
    parser.add_argument("--server", default=None,
                        help="cloudplaned binary (default: the release build, built now)")
    parser.add_argument("--baseline", help="another cloudplaned binary to compare with")
    parser.add_argument("--idle", action="store_true",
                        help="the streams watch another account (accounts/quiet) that sees no "
                             "changes: what open but idle streams cost a mutation")
    args = parser.parse_args()
    args.server = args.server or str(cloudplane_testing.release_binary())
    parent = IDLE_ACCOUNT if args.idle else ACCOUNT
    binaries = [("this", args.server)]
    if args.baseline:
        binaries.append(("baseline", args.baseline))
    print(f"cloudplaned: {args.server}" + (f", baseline: {args.baseline}" if args.baseline else "")
          + f"; {os.cpu_count()} CPUs; streams on {parent}", flush=True)
    paces = (args.pace_ms, 0)
    results = {(label, pace, n): [] for label, _ in binaries for pace in paces
               for n in (0, args.streams)}
    for _ in range(args.rounds):
        for pace in paces:
            for label, binary in binaries:
                for n in (0, args.streams):
                    results[(label, pace, n)].append(
                        measure(binary, n, args.creates, label, pace, parent))

    keys = ["p50 ms", "p90 ms", "server us/call (calls)", "server us/call (delivered)"]
    for pace in paces:
        mode = f"paced ({pace} ms between calls)" if pace else "back to back"
        print(f"\n{mode}: medians over {args.rounds} rounds")
        print(f"{'':28s}" + "".join(f"{label + ' ' + str(n):>18s}" for label, _ in binaries
                                     for n in (0, args.streams)))
        for key in keys:
            row = f"{key:28s}"
            for label, _ in binaries:
                for n in (0, args.streams):
                    row += f"{statistics.median(r[key] for r in results[(label, pace, n)]):18.2f}"
            print(row)
        print(f"ratio {args.streams} streams / 0 streams")
        for label, _ in binaries:
            parts = []
            for key in keys:
                with_streams = statistics.median(
                    r[key] for r in results[(label, pace, args.streams)])
                without = statistics.median(r[key] for r in results[(label, pace, 0)])
                parts.append(f"{key} {with_streams / without:.2f}x")
            print(f"  {label}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
