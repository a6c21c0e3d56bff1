"""Measures cloudplaned on its sandbox provider through the generated Python
client and prints the numbers (no pass/fail: goals are judged by people).

    .deps/venv/bin/python bench/api_bench.py [--instances 300] [--gets 2000] [--waiters 200]
        [--baseline PATH_TO_OTHER_CLOUDPLANED] [--rounds 3] [--server PATH_TO_CLOUDPLANED]

The server measured is the optimised build (.bazelrc's `release` config,
bazel-opt-bin/service/cloudplaned, built first) unless --server names
another binary (e.g. the tests' fastbuild bazel-bin/service/cloudplaned).

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

With --auth=compare, only GetInstance is measured, against one server per
authentication mode, all started at once with the same 300 instances:

    .deps/venv/bin/python bench/api_bench.py --auth=compare [--rounds 5]
        [--gets 2000] [--clients 2] [--seconds 1.5] [--server PATH]

  plaintext   no TLS, no authentication (the reference);
  tls         TLS, no client certificate, no token: the transport cost alone;
  jwt-rs256   TLS + `authorization: Bearer <RS256 JWT>` (the token is never
              sent in clear text; the server verifies it once and then hits
              its verified-token cache, as a client reusing its token would);
  jwt-es256   the same with an ES256 token;
  mtls        TLS with require_client_certificate; the principal is the
              client certificate's SPIFFE ID, derived on every call;
  api-key     TLS + `authorization: Bearer <API key>` (SHA-256, compared
              with every configured hash in constant time).

Every authenticated mode has one OPERATOR binding for its principal. Each
round measures every mode in turn (the order rotates between rounds) twice:
  * sequential: --gets GetInstance calls one after another from one client
    (the same concurrency as the default run's GetInstance part), giving
    GetInstance/s, p50 and p99;
  * concurrent: --clients client processes (each its own channel), each
    calling as fast as it can for --seconds, giving the aggregate
    GetInstance/s, p50 and p99;
and during both, the server's CPU time per call (the sum of its threads'
/proc schedstat run times).
A Python client spends more CPU per GetInstance than the server does, so one
client cannot keep the server busy, and on a small machine (2 CPUs) more
client processes share the CPUs with the server: the throughputs are bound
by client plus server CPU. "server us" (server CPU per call) is the server's
own cost, and its ratio between modes is what authentication costs the
server's capacity.
The clients run in separate processes (multiprocessing, spawn), so the
benchmark's own process never competes with them for the GIL. The table
prints the medians over --rounds rounds, then the ratios of each mode to
`tls` (the cost of authentication itself) and to `plaintext` (in total).
`--auth=tls,mtls` (a comma list) measures only those modes.
"""
import argparse
import multiprocessing
import os
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


# ---- --auth: GetInstance with and without authentication ----------------------

AUTH_MODES = ("plaintext", "tls", "jwt-rs256", "jwt-es256", "mtls", "api-key")


def auth_setups(root):
    """{mode: (ServerConfig text, client spec)}; a client spec is a dict of
    tls_root / cert / key file paths and a bearer token (None when unused).
    Keys, certificates and tokens are made here, per run."""
    import auth_testing as at  # noqa: PLC0415  (needs the `cryptography` package)
    root = pathlib.Path(root)
    pki = at.Pki(root / "pki")
    rsa, ec = at.rsa_key(), at.ec_key()
    jwks_file = root / "jwks.json"
    jwks_file.write_text(at.jwks((rsa, "rsa-1"), (ec, "ec-1")))
    key, digest = at.api_key()
    # Tokens outlive any run; a client reuses its token, as real ones do.
    rs256 = at.mint(rsa, "rsa-1", at.claims(sub="bench", lifetime=3600))
    es256 = at.mint(ec, "ec-1", at.claims(sub="bench", lifetime=3600))
    base = CONFIG % 30000
    tls = at.tls_section(pki.server_cert, pki.server_key)
    over_tls = {"tls_root": str(pki.ca), "cert": None, "key": None, "token": None}
    jwt = base + tls + at.auth_section(at.jwt_section(jwks_file),
                                       at.binding("OPERATOR", principals=["bench"]))
    return {
        "plaintext": (base, {"tls_root": None, "cert": None, "key": None, "token": None}),
        "tls": (base + tls, over_tls),
        "jwt-rs256": (jwt, dict(over_tls, token=rs256)),
        "jwt-es256": (jwt, dict(over_tls, token=es256)),
        "mtls": (base + at.tls_section(pki.server_cert, pki.server_key, pki.ca,
                                       require_client_certificate=True)
                 + at.auth_section(at.binding("OPERATOR", principals=[at.SPIFFE_ID])),
                 dict(over_tls, cert=str(pki.spiffe_cert), key=str(pki.spiffe_key))),
        "api-key": (base + tls + at.auth_section(at.api_key_entry("bench-key", digest),
                                                 at.binding("OPERATOR",
                                                            principals=["bench-key"])),
                    dict(over_tls, token=key)),
    }


def _stub(address, spec):
    """A ComputeService stub and the per-call metadata for a client spec."""
    import grpc  # noqa: PLC0415
    if spec["tls_root"] is None:
        channel = grpc.insecure_channel(address)
    else:
        import auth_testing  # noqa: PLC0415
        channel = auth_testing.secure_channel(address, spec["tls_root"], spec["cert"],
                                              spec["key"])
    # The token goes as plain per-call metadata: an interceptor or call
    # credentials would add Python work per call to the authenticated modes
    # only.
    metadata = (("authorization", "Bearer " + spec["token"]),) if spec["token"] else None
    return cloudplane_testing.compute_pb2_grpc.ComputeServiceStub(channel), metadata


def _client_process(conn):
    """A benchmark client: keeps one channel per server; on ("prepare",
    address, spec, names) it connects and warms up, answers "ready", then on
    ("go", start_at, count, seconds) it calls GetInstance `count` times (or,
    with count 0, until `seconds` have passed from start_at) and answers
    (calls, elapsed seconds, latencies in ms)."""
    stubs = {}
    while True:
        message = conn.recv()
        if message is None:
            return
        _, address, spec, names = message
        if address not in stubs:
            stubs[address] = _stub(address, spec)
        stub, metadata = stubs[address]
        requests = [compute_pb2.GetInstanceRequest(name=n) for n in names]
        for i in range(100):
            stub.GetInstance(requests[i % len(requests)], metadata=metadata, timeout=10)
        conn.send("ready")
        _, start_at, count, seconds = conn.recv()
        latencies = []
        time.sleep(max(0.0, start_at - time.time()))
        start = time.perf_counter()
        stop = start + seconds
        i = 0
        while (i < count) if count else (time.perf_counter() < stop):
            t0 = time.perf_counter()
            stub.GetInstance(requests[i % len(requests)], metadata=metadata, timeout=10)
            latencies.append((time.perf_counter() - t0) * 1000)
            i += 1
        conn.send((i, time.perf_counter() - start, latencies))


def cpu_times(pid):
    """({thread id: CPU seconds} from each thread's schedstat, nanosecond
    resolution; utime + stime of the whole process, clock-tick resolution)."""
    threads = {}
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            threads[task.name] = int((task / "schedstat").read_text().split()[0]) / 1e9
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread ended meanwhile
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return threads, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_used(before, after):
    """Server CPU seconds between two cpu_times: from the threads when the same
    threads lived throughout, else (a thread ended) from the process's ticks."""
    if before[0].keys() == after[0].keys():
        return sum(after[0][t] - before[0][t] for t in after[0])
    return after[1] - before[1]


def run_gets(clients, server, spec, names, count, seconds):
    """One GetInstance measurement by `clients` (pipes to client processes)
    at once: GetInstance/s, p50 ms, p99 ms and server CPU microseconds per call."""
    for conn in clients:
        conn.send(("prepare", server.address, spec, names))
    for conn in clients:
        assert conn.recv() == "ready"
    start_at = time.time() + 0.1
    cpu = cpu_times(server.process.pid)
    for conn in clients:
        conn.send(("go", start_at, count, seconds))
    results = [conn.recv() for conn in clients]
    cpu = cpu_used(cpu, cpu_times(server.process.pid))
    calls = sum(r[0] for r in results)
    rate = calls / max(r[1] for r in results)
    p50, _, p99 = percentiles([ms for r in results for ms in r[2]])
    return {"/s": rate, "p50": p50, "p99": p99, "cpu": cpu / calls * 1e6}


def compare_auth(args):
    modes = AUTH_MODES if args.auth == "compare" else tuple(args.auth.split(","))
    unknown = [m for m in modes if m not in AUTH_MODES]
    if unknown:
        sys.exit(f"unknown --auth mode(s) {unknown}; known: compare or {', '.join(AUTH_MODES)}")
    root = tempfile.mkdtemp(prefix="cloudplane-bench-auth-")
    setups = auth_setups(root)
    context = multiprocessing.get_context("spawn")
    pipes = []
    for _ in range(max(1, args.clients)):
        parent, child = context.Pipe()
        context.Process(target=_client_process, args=(child,), daemon=True).start()
        pipes.append(parent)
    names = [f"{ACCOUNT}/instances/bench-{i:05d}" for i in range(args.instances)]
    servers = {}
    runs = {mode: [] for mode in modes}
    try:
        for mode in modes:
            config, spec = setups[mode]
            server = Server(pathlib.Path(root) / mode, config, tls_root=spec["tls_root"],
                            client_cert=spec["cert"], client_key=spec["key"],
                            token=spec["token"]).start()
            servers[mode] = server
            compute = server.compute()
            for i in range(args.instances):
                compute.CreateInstance(compute_pb2.CreateInstanceRequest(
                    parent=ACCOUNT, instance_id=f"bench-{i:05d}", request_id=f"bench-{i}",
                    instance=compute_pb2.Instance(
                        image=ACCOUNT + "/images/debian-12",
                        machine_type=ACCOUNT + "/machineTypes/small")), timeout=30)
        print(f"server {cloudplane_testing.SERVER_BINARY}")
        print(f"{len(modes)} servers with {args.instances} instances each; "
              f"{os.cpu_count()} CPUs; sequential: {args.gets} calls by 1 client; "
              f"concurrent: {len(pipes)} client processes for {args.seconds:g} s")
        for round_ in range(args.rounds):
            order = modes[round_ % len(modes):] + modes[:round_ % len(modes)]
            for mode in order:
                _, spec = setups[mode]
                seq = run_gets(pipes[:1], servers[mode], spec, names, args.gets, 0)
                conc = run_gets(pipes, servers[mode], spec, names, 0, args.seconds)
                runs[mode].append({"seq " + k: v for k, v in seq.items()}
                                  | {"conc " + k: v for k, v in conc.items()})
                print(f"[round {round_ + 1} {mode:9}] sequential {seq['/s']:6.0f}/s "
                      f"p50 {seq['p50']:.3f} ms p99 {seq['p99']:.3f} ms "
                      f"server {seq['cpu']:.0f} us/call | concurrent {conc['/s']:6.0f}/s "
                      f"p50 {conc['p50']:.3f} ms p99 {conc['p99']:.3f} ms "
                      f"server {conc['cpu']:.0f} us/call")
    finally:
        for conn in pipes:
            conn.send(None)
        for mode, server in servers.items():
            code = server.stop()
            if code != 0:
                print(f"{mode}: cloudplaned exited with {code}; log in {server.state_dir}")

    median = {mode: {key: statistics.median(r[key] for r in runs[mode]) for key in runs[mode][0]}
              for mode in modes}
    print(f"\nGetInstance, medians of {args.rounds} rounds (server = server CPU per call)")
    print(f"{'':10} {'--- sequential, 1 client ---':>40}   "
          f"{f'--- concurrent, {len(pipes)} clients ---':>40}")
    print(f"{'mode':10} {'/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'server us':>10}   "
          f"{'/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'server us':>10}")
    for mode in modes:
        m = median[mode]
        print(f"{mode:10} {m['seq /s']:7.0f} {m['seq p50']:8.3f} {m['seq p99']:8.3f} "
              f"{m['seq cpu']:10.1f}   {m['conc /s']:7.0f} {m['conc p50']:8.3f} "
              f"{m['conc p99']:8.3f} {m['conc cpu']:10.1f}")
    for reference in ("tls", "plaintext"):
        if reference not in median:
            continue
        what = "authentication itself" if reference == "tls" else "in total"
        print(f"\nratio to {reference} ({what}): throughput (1.00 = no cost), "
              f"server CPU per call (1.00 = no cost)")
        print(f"{'mode':10} {'seq /s':>8} {'conc /s':>8} {'seq cpu':>8} {'conc cpu':>9}")
        r = median[reference]
        for mode in modes:
            if mode == reference or (reference == "tls" and mode == "plaintext"):
                continue
            m = median[mode]
            print(f"{mode:10} {m['seq /s'] / r['seq /s']:8.3f} {m['conc /s'] / r['conc /s']:8.3f} "
                  f"{m['seq cpu'] / r['seq cpu']:8.3f} {m['conc cpu'] / r['conc cpu']:9.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--waiters", type=int, default=200)
    parser.add_argument("--server", help="the cloudplaned binary to measure (default: "
                        "bazel-bin/service/cloudplaned)")
    parser.add_argument("--baseline", help="another cloudplaned binary to compare with")
    parser.add_argument("--rounds", type=int,
                        help="alternations with --baseline (default 3); rounds with --auth "
                        "(default 5)")
    parser.add_argument("--auth", help="`compare`, or a comma list of modes: GetInstance "
                        "with and without authentication (see above)")
    parser.add_argument("--clients", type=int, default=2,
                        help="client processes of --auth's concurrent part")
    parser.add_argument("--seconds", type=float, default=1.5,
                        help="length of --auth's concurrent part per mode and round")
    args = parser.parse_args()
    # Default: the optimised build (.bazelrc's `release` config), built now.
    args.server = args.server or str(cloudplane_testing.release_binary())
    cloudplane_testing.SERVER_BINARY = pathlib.Path(args.server)
    if args.auth:
        args.rounds = args.rounds or 5
        compare_auth(args)
        return
    args.rounds = args.rounds or 3
    this = args.server
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
