"""ListInstances on the sandbox as the account grows (issue 15: "ListInstances
of 100 per page ... flat (+-20%) as the account grows from 100 to 10,000
instances"). Prints numbers and ratios, no pass/fail.

    .deps/venv/bin/python bench/list_bench.py [--sizes 100,1000,10000] [--page-size 100]
        [--seconds 2] [--rounds 5] [--fill-concurrency 64] [--server PATH]
        [--baseline PATH_TO_OTHER_CLOUDPLANED] [--state DIR]

The server measured is the optimised build (.bazelrc's `release` config,
bazel-opt-bin/service/cloudplaned, built first) unless --server names
another binary.

What it does, in one invocation:
  1. Fills one sandbox account per size (transition_ms 0, so every instance
     is RUNNING at once and no operation stays pending to be polled during
     the measurement) with CreateInstance calls, --fill-concurrency of them
     in flight (futures of the Python client), and prints how long each
     fill took.
     With --state DIR, the filled state is kept in DIR, and a later run
     with the same DIR and --sizes skips the fill.
  2. --rounds times, for each of
       * first page: ListInstances(page_size=100) with no token;
       * deep page: the same with the token of the page that starts at 90%
         of the account (a full page; for an account of one page, the first
         page again);
     one client calls the sizes in turn, --batch calls of one size, then of
     the next (the order rotating from round to round), for --seconds per
     size in all. Interleaving the sizes in short batches makes the load of
     other processes on a shared machine fall on every size alike. Reported
     per size: calls/s and the server's CPU time per call (sum of its
     threads' /proc schedstat run times) within that size's batches,
     medians over the rounds, and the time to walk the whole account in
     pages of 100.
  3. Prints the ratios size / smallest size of each figure (1.00 = flat; the
     goal is within 0.80 .. 1.20 for 10,000 / 100).

With --baseline, the same state directory is then served by the other
binary (an older build, say) and measured the same way, and a last table
prints both side by side. The filled state is written once and reused, so
both binaries list exactly the same records.

A Python client spends more CPU per 26 KB page than the server does, so
calls/s is bound by client plus server CPU on a small machine; "server ms"
(server CPU per page) is the server's own cost.
"""
import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

import cloudplane_testing  # noqa: E402
from cloudplane_testing import Server, compute_pb2  # noqa: E402


def config(sizes):
    return "".join(f"""
accounts {{
  id: "list{size}"
  provider: "sandbox"
  options {{ key: "transition_ms" value: "0" }}
}}
""" for size in sizes)


def cpu_seconds(pid):
    """The server's CPU seconds: its threads' schedstat run times (ns)."""
    total = 0
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread ended meanwhile
    return total / 1e9


def fill(server, sizes, concurrency):
    """Creates `size` instances in account list<size>, `concurrency` calls in
    flight; prints and returns the seconds each fill took."""
    compute = server.compute()
    out = {}
    for size in sizes:
        parent = f"accounts/list{size}"
        request = lambda i: compute_pb2.CreateInstanceRequest(  # noqa: E731
            parent=parent, instance_id=f"vm-{i:05d}",
            instance=compute_pb2.Instance(image=parent + "/images/debian-12",
                                          machine_type=parent + "/machineTypes/small"))
        start = time.perf_counter()
        in_flight, next_i = [], 0
        while next_i < size or in_flight:
            while next_i < size and len(in_flight) < concurrency:
                in_flight.append(compute.CreateInstance.future(request(next_i), timeout=60))
                next_i += 1
            in_flight.pop(0).result()
        elapsed = time.perf_counter() - start
        out[size] = elapsed
        print(f"fill list{size}: {size} CreateInstance in {elapsed:.1f} s "
              f"({size / elapsed:.0f}/s, {concurrency} in flight)", flush=True)
    return out


def page_token_at(compute, parent, page_size, start):
    """The token of the page that starts at item `start` (a multiple of
    page_size), walking the pages before it; also the time of a whole walk."""
    token, seen, at_start = "", 0, ""
    t0 = time.perf_counter()
    while True:
        if seen == start:
            at_start = token
        page = compute.ListInstances(compute_pb2.ListInstancesRequest(
            parent=parent, page_size=page_size, page_token=token))
        seen += len(page.instances)
        token = page.next_page_token
        if not token:
            break
    return at_start, seen, time.perf_counter() - t0


def interleaved(server, requests, seconds, batch):
    """Calls {size: request} for `seconds` in all, `batch` calls of one size
    after another, so that load from outside (other processes on the
    machine) falls on every size alike: {size: (calls/s, server CPU ms per
    call)}, from the time and CPU spent in that size's batches only."""
    compute = server.compute()
    totals = {size: [0, 0.0, 0.0] for size in requests}  # calls, seconds, CPU seconds
    for request in requests.values():
        compute.ListInstances(request)  # warm: the page's records are cached
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for size, request in requests.items():
            cpu0 = cpu_seconds(server.process.pid)
            t0 = time.perf_counter()
            for _ in range(batch):
                compute.ListInstances(request)
            elapsed = time.perf_counter() - t0
            total = totals[size]
            total[0] += batch
            total[1] += elapsed
            total[2] += cpu_seconds(server.process.pid) - cpu0
    return {size: (calls / secs, cpu / calls * 1000) for size, (calls, secs, cpu) in totals.items()}


def measure(binary, state_dir, sizes, args, label):
    """Serves `state_dir` with `binary` and measures every size; returns
    {size: {figure: median}}."""
    cloudplane_testing.SERVER_BINARY = pathlib.Path(binary)
    server = Server(state_dir, config(sizes)).start()
    try:
        compute = server.compute()
        requests, walks = {}, {}
        for size in sizes:
            parent = f"accounts/list{size}"
            start = max(0, min(int(size * 0.9), size - args.page_size))
            start -= start % args.page_size
            token, seen, walk = page_token_at(compute, parent, args.page_size, start)
            if seen != size:
                raise RuntimeError(f"{parent} lists {seen} instances, not {size}")
            walks[size] = [walk]
            requests[size] = {
                "first": compute_pb2.ListInstancesRequest(parent=parent,
                                                          page_size=args.page_size),
                "deep": compute_pb2.ListInstancesRequest(parent=parent, page_size=args.page_size,
                                                         page_token=token),
            }
        runs = {size: [] for size in sizes}
        for round_ in range(args.rounds):
            figures = {size: {} for size in sizes}
            for kind in ("first", "deep"):
                # Batches of each size in turn; the order rotates by round.
                order = sizes[round_ % len(sizes):] + sizes[:round_ % len(sizes)]
                result = interleaved(server, {size: requests[size][kind] for size in order},
                                     args.seconds * len(sizes), args.batch)
                for size, (per_s, cpu_ms) in result.items():
                    figures[size][f"{kind} /s"] = per_s
                    figures[size][f"{kind} server ms"] = cpu_ms
            for size in sizes:
                walks[size].append(page_token_at(compute, f"accounts/list{size}",
                                                 args.page_size, 0)[2])
                runs[size].append(figures[size])
                f = figures[size]
                print(f"[{label} round {round_ + 1}] {size:6} instances: first page "
                      f"{f['first /s']:7.1f}/s {f['first server ms']:7.2f} ms server"
                      f" | deep page {f['deep /s']:7.1f}/s "
                      f"{f['deep server ms']:7.2f} ms server", flush=True)
    finally:
        code = server.stop()
        if code not in (0, None):
            print(f"{label}: cloudplaned exited with {code}; log in {state_dir}")
    out = {}
    for size in sizes:
        out[size] = {key: statistics.median(r[key] for r in runs[size]) for key in runs[size][0]}
        out[size]["walk all ms"] = statistics.median(walks[size]) * 1000
    return out


def report(label, result, sizes, args):
    keys = list(result[sizes[0]].keys())
    print(f"\n{label}: ListInstances page_size={args.page_size}, medians of {args.rounds} rounds "
          f"(server ms = server CPU per call)")
    print(f"{'instances':>10} " + " ".join(f"{k:>16}" for k in keys))
    for size in sizes:
        print(f"{size:10} " + " ".join(f"{result[size][k]:16.2f}" for k in keys))
    base = sizes[0]
    print(f"ratio to {base} instances (1.00 = flat; 'walk all' grows with the account by design)")
    for size in sizes[1:]:
        print(f"{f'{size}/{base}':>10} " + " ".join(
            f"{result[size][k] / result[base][k]:16.2f}" for k in keys))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=20,
                        help="calls of one size before the next size's (see step 2)")
    parser.add_argument("--fill-concurrency", type=int, default=64)
    parser.add_argument("--server", help="the cloudplaned binary to measure (default: the "
                        "release build, built now)")
    parser.add_argument("--baseline", help="another cloudplaned binary, measured on the same "
                        "state after this one")
    parser.add_argument("--state", help="a state directory to fill and keep (a later run with "
                        "the same --sizes reuses it); default: a new temporary one")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    args.server = args.server or str(cloudplane_testing.release_binary())
    print(f"server {args.server}" + (f", baseline {args.baseline}" if args.baseline else "")
          + f"; {os.cpu_count()} CPUs")

    state_dir = args.state or tempfile.mkdtemp(prefix="cloudplane-list-bench-")
    filled = pathlib.Path(state_dir) / "list_bench_filled"
    if filled.exists() and filled.read_text() == args.sizes:
        print(f"state {state_dir} already filled for sizes {args.sizes}")
    else:
        cloudplane_testing.SERVER_BINARY = pathlib.Path(args.server)
        server = Server(state_dir, config(sizes)).start()
        try:
            fill(server, sizes, args.fill_concurrency)
        finally:
            server.stop()
        filled.write_text(args.sizes)

    this = measure(args.server, state_dir, sizes, args, "this build")
    report("this build", this, sizes, args)
    if not args.baseline:
        return
    base = measure(args.baseline, state_dir, sizes, args, "baseline")
    report("baseline", base, sizes, args)
    keys = list(this[sizes[0]].keys())
    print("\nthis build / baseline")
    print(f"{'instances':>10} " + " ".join(f"{k:>16}" for k in keys))
    for size in sizes:
        print(f"{size:10} " + " ".join(f"{this[size][k] / base[size][k]:16.2f}" for k in keys))


if __name__ == "__main__":
    main()
