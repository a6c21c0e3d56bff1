"""cloudplaned against the gRPC ceiling: GetInstance and ListInstances (100 per
page) on the sandbox, side by side with a bare gRPC callback server built
from the same system gRPC that answers the same RPCs with the very bytes
cloudplaned sent (bench/ceiling/bare_server.cc). One C++ load generator
(bench/ceiling/load.cc) drives both, so the client's cost is the same.

    .deps/venv/bin/python bench/grpc_ceiling.py [--rounds 3] [--seconds 4]
        [--concurrency 16,64] [--instances 300] [--server PATH]

Both sides are release builds (.bazelrc's `release` config), built first.
Each round runs every (method, concurrency) on both servers, alternating
which goes first; the table prints the medians over the rounds and the
ratios cloudplane / bare of throughput and of p99 latency (issue 15's goals: throughput >= 0.8x, p99 <= 2x for
GetInstance; >= 0.5x for ListInstances of 100).

The server runs without authentication, like the bare one, so the ratio is
the cost of cloudplane's own path (the authentication cost is measured by
bench/api_bench.py --auth=compare). Machine load matters: on 2 cores the
load generator, the server and anything else share the CPUs; the bench
prints the load average before each round.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import cloudplane_testing  # noqa: E402
from cloudplane_testing import Server, compute_pb2  # noqa: E402

from api_bench import ACCOUNT, CONFIG as SANDBOX_CONFIG  # noqa: E402

CONFIG = SANDBOX_CONFIG % 0  # transitions finish at once


def build():
    subprocess.run(["bazel", "build", "--config=release", "--noshow_progress",
                    "//service:cloudplaned", "//bench/ceiling:bare_server",
                    "//bench/ceiling:load"], cwd=ROOT, check=True)
    out = ROOT / "bazel-opt-bin"
    return (out / "service" / "cloudplaned", out / "bench" / "ceiling" / "bare_server",
            out / "bench" / "ceiling" / "load")


def fill(server, count):
    compute = server.compute()
    futures = [compute.CreateInstance.future(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id=f"ceiling-{i:05d}", request_id=f"ceiling-{i}",
        instance=compute_pb2.Instance(image=ACCOUNT + "/images/debian-12",
                                      machine_type=ACCOUNT + "/machineTypes/small",
                                      labels={"bench": "grpc-ceiling"})))
        for i in range(count)]
    for f in futures:
        f.result(timeout=120)


def start_bare(binary, workdir, instance, page):
    (workdir / "instance.bin").write_bytes(instance.SerializeToString())
    (workdir / "page.bin").write_bytes(page.SerializeToString())
    import socket  # noqa: PLC0415
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(binary), f"--port={port}",
                             f"--instance={workdir / 'instance.bin'}",
                             f"--list_page={workdir / 'page.bin'}"],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("listening"):
        proc.kill()
        raise RuntimeError("bare_server did not start: " + line)
    return proc, f"127.0.0.1:{port}"


def run_load(load, target, method, name, concurrency, seconds):
    out = subprocess.run([str(load), f"--target={target}", f"--method={method}",
                          f"--name={name}", f"--concurrency={concurrency}",
                          f"--seconds={seconds}", "--warmup=0.5"],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--concurrency", default="16,64")
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--server", help="another cloudplaned binary")
    args = parser.parse_args()
    server_bin, bare_bin, load_bin = build()
    if args.server:
        server_bin = pathlib.Path(args.server)
    cloudplane_testing.SERVER_BINARY = server_bin
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="cloudplane-ceiling-"))
    server = Server(workdir / "state", CONFIG).start()
    bare = None
    try:
        fill(server, args.instances)
        compute = server.compute()
        name = f"{ACCOUNT}/instances/ceiling-00007"
        instance = compute.GetInstance(compute_pb2.GetInstanceRequest(name=name))
        page = compute.ListInstances(compute_pb2.ListInstancesRequest(parent=ACCOUNT,
                                                                      page_size=100))
        print(f"reply sizes: Instance {instance.ByteSize()} B, "
              f"ListInstances page of {len(page.instances)}: {page.ByteSize()} B")
        bare, bare_target = start_bare(bare_bin, workdir, instance, page)
        sides = {"cloudplane": f"127.0.0.1:{server.port}", "bare": bare_target}
        cases = [("get", name, int(c)) for c in args.concurrency.split(",")]
        cases.append(("list", ACCOUNT, 16))
        results = {}
        for r in range(args.rounds):
            print(f"round {r + 1}: load average {os.getloadavg()[0]:.2f}", flush=True)
            for method, target_name, concurrency in cases:
                order = ["cloudplane", "bare"] if r % 2 == 0 else ["bare", "cloudplane"]
                for side in order:
                    res = run_load(load_bin, sides[side], method, target_name, concurrency,
                                   args.seconds)
                    results.setdefault((method, concurrency, side), []).append(res)
                    print(f"  {method:4} x{concurrency:<3} {side:10} {res['rps']:9.0f} rps  "
                          f"p50 {res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms", flush=True)
        print()
        print(f"medians of {args.rounds} rounds, {args.seconds:g} s each")
        print(f"{'case':14} {'cloudplane rps':>15} {'bare rps':>10} {'ratio':>7} "
              f"{'p99 cp ms':>10} {'p99 bare ms':>12} {'p99 ratio':>10}")
        for method, _, concurrency in cases:
            cp = results[(method, concurrency, "cloudplane")]
            br = results[(method, concurrency, "bare")]
            rps_cp = statistics.median(x["rps"] for x in cp)
            rps_br = statistics.median(x["rps"] for x in br)
            p99_cp = statistics.median(x["p99_ms"] for x in cp)
            p99_br = statistics.median(x["p99_ms"] for x in br)
            label = f"{'Get' if method == 'get' else 'List100'} x{concurrency}"
            print(f"{label:14} {rps_cp:15.0f} {rps_br:10.0f} {rps_cp / rps_br:7.2f} "
                  f"{p99_cp:10.2f} {p99_br:12.2f} {p99_cp / p99_br:10.2f}")
    finally:
        if bare is not None:
            bare.kill()
        server.stop()


if __name__ == "__main__":
    main()
