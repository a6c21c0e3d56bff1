"""N GetInstance at once against a provider that answers after 2 s (issue 15's
line "10,000 GetInstance against the 2 s responder complete in <= 3 s, with a
fixed thread count, <= 512 connections to the provider, peak RSS <= 300 MiB
and RSS back within 20% of idle a minute later"): one invocation prints every
figure of that line, for each N.

    .deps/venv/bin/python bench/inflight.py [--calls 1000,5000,10000]
        [--delay 2] [--rounds 1] [--after 60] [--channels 4] [--senders 1]
        [--server PATH]

For each N (and each round) it starts a fresh responder and a fresh release
cloudplaned, so no burst inherits another's connections or memory:

  - bench/responder/responder.go (built into .deps/bench/responder): an
    HTTPS enStratus stand-in on loopback with a certificate made at start-up,
    offering HTTP/2 and HTTP/1.1, answering GET .../infrastructure/Server/<id>
    after --delay with the recorded mixcoatl server document (serverId = the
    id asked for), counting connections, requests and protocols on its side.
  - cloudplaned with ONE enstratus account `accounts/dcm` pointed at it
    (https endpoint, ca_file = the responder's CA, mixcoatl's test keys),
    limits.max_in_flight 10000, attempt_timeout_ms 20000 (well above the
    delay), breaker off (a storm of failures should show as errors, not as
    fast refusals), observe_interval_seconds 86400 (the observer's first
    round, at start, meets 404s before the burst; the responder's counters
    are reset after it).
  - Instances are named by their DCM id (`accounts/dcm/instances/1000042`):
    the adapter resolves a numeric id without any alias, so no ListInstances
    is needed first. Each call reads its own id (1000000 + index).
  - bench/ceiling/load.cc --burst=N sends the N calls at once over
    --channels gRPC connections, each with a 30 s deadline, and prints the
    wall time from the first call sent to the last answer.

The responder's times (ms after its counters were reset, just before the
load generator starts) split the wall time: requests still arriving late
point at the sending side, answers finishing late at the answering side.

While the burst runs the bench samples the server every 50 ms (threads =
entries of /proc/<pid>/task, VmRSS) and every 250 ms its TCP connections to
the responder's port (`ss`, filtered in the kernel; only cloudplaned connects
there); then every 10 s for --after seconds. It reports: wall time and its
ratio to the delay (the ideal), errors, threads idle / peak / after,
connections (accepted and most open at once, counted by the responder, and
the most ESTABLISHED seen from the server's side), the HTTP versions the
responder saw, requests and most in flight at the responder, RSS idle, peak
(VmHWM and the highest sample) and at each 10 s step after, with the ratio of
the last to idle. No pass/fail: a bench prints numbers. Machine load matters
(2 cores): the load average is printed before each run.
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

RESPONDER_SRC = ROOT / "bench" / "responder" / "responder.go"
RESPONDER_BIN = ROOT / ".deps" / "bench" / "responder"
FIXTURE = ROOT.parent / "shared" / "fixtures" / "enstratus" / "unit" / "infrastructure" / "server.json"
LOAD_BIN = ROOT / "bazel-opt-bin" / "bench" / "ceiling" / "load"
ACCOUNT = "accounts/dcm"
KEYS_ENV = "INFLIGHT_BENCH_DCM_KEYS"
# mixcoatl's unit-test keys (tests/emulators/enstratus/enstratus_testing.py);
# the responder does not check signatures.
KEYS = "abcdefg:gfedcba"
BUDGET = 10287  # the fixture server's billing code

CONFIG = """
accounts {{
  id: "dcm" provider: "enstratus"
  endpoint: "https://127.0.0.1:{port}/api/enstratus/2015-05-25"
  ca_file: "{ca}"
  credentials {{ env: "{env}" }}
  options {{ key: "budget" value: "{budget}" }}
  limits {{ max_in_flight: 10000 attempt_timeout_ms: 20000 breaker_failures: 0 }}
  observe_interval_seconds: 86400
}}
"""


def go_binary():
    found = shutil.which("go")
    return found if found else "/usr/local/go/bin/go"


def build_responder():
    """Builds bench/responder/responder.go (standard library only) into
    .deps/bench/responder; returns its path."""
    RESPONDER_BIN.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOCACHE=str(RESPONDER_BIN.parent / "gocache"), GOFLAGS="",
               GOTOOLCHAIN="local", GOPATH=str(RESPONDER_BIN.parent / "gopath"))
    subprocess.run([go_binary(), "build", "-o", str(RESPONDER_BIN), str(RESPONDER_SRC)],
                   cwd=ROOT, env=env, check=True)
    return RESPONDER_BIN


class Responder:
    """The delaying HTTPS responder as a child process. It stops when its
    stdin closes (stop(), or this process dying)."""

    def __init__(self, workdir, delay_s=2.0, max_streams=0):
        self.workdir = pathlib.Path(workdir)
        self.delay_s = delay_s
        self.max_streams = max_streams
        self.process = None

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ca = self.workdir / "responder-ca.pem"
        self.log = open(self.workdir / "responder.log", "ab")
        self.process = subprocess.Popen(
            [str(RESPONDER_BIN), f"--fixture={FIXTURE}", f"--ca_out={self.ca}",
             f"--delay={self.delay_s}s", f"--max_streams={self.max_streams}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"responder exited with {self.process.wait()}; see "
                               f"{self.workdir / 'responder.log'}")
        ready = json.loads(line)
        self.port = ready["https_port"]
        self.stats_port = ready["stats_port"]
        self.streams = ready["max_streams"]
        return self

    @property
    def base_url(self):
        return f"https://127.0.0.1:{self.port}/api/enstratus/2015-05-25"

    def _stats(self, path, method):
        request = urllib.request.Request(f"http://127.0.0.1:{self.stats_port}{path}",
                                         method=method)
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def stats(self):
        return self._stats("/stats", "GET")

    def reset(self):
        return self._stats("/reset", "POST")

    def stop(self):
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def proc_status(pid):
    fields = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def anon_and_file(pid):
    """(RssAnon MiB, RssFile MiB): memory of its own, and pages of its binary
    and libraries that it has touched (shared, clean, reclaimable)."""
    fields = proc_status(pid)
    return (int(fields["RssAnon"].split()[0]) / 1024, int(fields["RssFile"].split()[0]) / 1024)


def threads_and_rss(pid):
    """(threads, VmRSS MiB, VmHWM MiB) of a process."""
    fields = proc_status(pid)
    return (int(fields["Threads"]), int(fields["VmRSS"].split()[0]) / 1024,
            int(fields["VmHWM"].split()[0]) / 1024)


def thread_names(pid):
    """{thread id: name} of a process (/proc/<pid>/task/*/comm)."""
    names = {}
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            names[task.name] = (task / "comm").read_text().strip()
        except OSError:  # the thread ended meanwhile
            pass
    return names


def new_threads(before, after):
    """"name xN" for threads in `after` that were not in `before`."""
    counts = {}
    for tid, name in after.items():
        if tid not in before:
            counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{name} x{n}" for name, n in sorted(counts.items())) or "-"


def provider_sockets(port):
    """TCP connections ESTABLISHED to 127.0.0.1:<port> (the server's side of
    its provider connections; nothing else connects there)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( dport = :{port} )"],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    return sum(1 for line in out.splitlines() if line.strip())


class Sampler(threading.Thread):
    """Samples threads and RSS every 50 ms and provider sockets every 250 ms
    until stop()."""

    def __init__(self, pid, port):
        super().__init__(daemon=True)
        self.pid, self.port = pid, port
        self.threads = []
        self.rss = []
        self.sockets = []
        self._done = threading.Event()

    def run(self):
        tick = 0
        while not self._done.is_set():
            threads, rss, _ = threads_and_rss(self.pid)
            self.threads.append(threads)
            self.rss.append(rss)
            if tick % 5 == 0:
                self.sockets.append(provider_sockets(self.port))
            tick += 1
            self._done.wait(0.05)

    def stop(self):
        self._done.set()
        self.join()


def run_one(server_bin, load_bin, calls, args, workdir):
    """One burst of `calls` against a fresh responder and server; a dict of
    every figure."""
    import cloudplane_testing  # noqa: PLC0415
    from cloudplane_testing import Server  # noqa: PLC0415
    cloudplane_testing.SERVER_BINARY = server_bin
    responder = Responder(workdir / "responder", args.delay, args.max_streams).start()
    os.environ[KEYS_ENV] = KEYS
    config = CONFIG.format(port=responder.port, ca=responder.ca, env=KEYS_ENV, budget=BUDGET)
    server = Server(workdir / "state", config).start()
    result = {"calls": calls, "load_average": os.getloadavg()[0],
              "max_streams": responder.streams}
    try:
        pid = server.process.pid
        time.sleep(args.idle_wait)  # the observer's first round (404s) and start-up settle
        if args.warmup > 0:
            # Idle means a server that has served: a small burst first, so the
            # code of TLS, HTTP/2 and the read path is paged in, then one
            # memory-return cycle (10 s) before idle is measured.
            subprocess.run(
                [str(load_bin), f"--target=127.0.0.1:{server.port}", f"--burst={args.warmup}",
                 f"--name={ACCOUNT}/instances/{{i}}", f"--channels={args.channels}",
                 f"--deadline_ms={int(args.deadline * 1000)}"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)
            time.sleep(args.settle)
        responder.reset()
        threads, rss, _ = threads_and_rss(pid)
        anon, file_backed = anon_and_file(pid)
        names_idle = thread_names(pid)
        result.update(threads_idle=threads, rss_idle=rss, anon_idle=anon, file_idle=file_backed)
        sampler = Sampler(pid, responder.port)
        sampler.start()
        load = subprocess.run(
            [str(load_bin), f"--target=127.0.0.1:{server.port}", f"--burst={calls}",
             f"--name={ACCOUNT}/instances/{{i}}", f"--channels={args.channels}", f"--senders={args.senders}",
             f"--deadline_ms={int(args.deadline * 1000)}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler.stop()
        if not load.stdout.strip():
            raise RuntimeError(f"load failed ({load.returncode}): {load.stderr}")
        burst = json.loads(load.stdout)
        stats = responder.stats()
        threads_now, rss_now, hwm = threads_and_rss(pid)
        result.update(
            burst=burst, responder=stats, threads_peak=max(sampler.threads + [threads_now]),
            rss_peak_sampled=max(sampler.rss + [rss_now]), rss_hwm=hwm,
            sockets_peak=max(sampler.sockets, default=0),
            threads_new=new_threads(names_idle, thread_names(pid)))
        after = []  # (seconds after the burst, threads, rss, sockets, responder open)
        end = time.monotonic()
        for step in range(0, int(args.after) + 1, 10):
            time.sleep(max(0.0, end + step - time.monotonic()))
            threads_now, rss_now, _ = threads_and_rss(pid)
            after.append((step, threads_now, rss_now, provider_sockets(responder.port),
                          responder.stats()["connections_open"]))
        result["after"] = after
        result["threads_after"] = after[-1][1]
        result["rss_after"] = after[-1][2]
        result["anon_after"], result["file_after"] = anon_and_file(pid)
    finally:
        server.stop()
        responder.stop()
    return result


def mib(x):
    return f"{x:.0f}"


def print_table(results, delay):
    print()
    print(f"issue 15: N GetInstance at once, provider answers after {delay:g} s "
          f"(one enstratus account, HTTPS, fresh server per run)")
    rows = [
        ("calls", lambda r: str(r["calls"])),
        ("load average (1 min) before", lambda r: f"{r['load_average']:.2f}"),
        ("ok / errors", lambda r: f"{r['burst']['ok']} / {r['burst']['errors']}"),
        ("wall s (first sent to last answer)", lambda r: f"{r['burst']['wall_s']:.2f}"),
        ("wall / ideal (the delay)", lambda r: f"{r['burst']['wall_s'] / delay:.2f}"),
        ("client channels / sender threads",
         lambda r: f"{r['burst']['channels']} / {r['burst']['senders']}"),
        ("client send s (all N started)", lambda r: f"{r['burst']['send_s']:.2f}"),
        ("latency p50 / p99 / max ms", lambda r: f"{r['burst']['p50_ms']:.0f} / "
                                                 f"{r['burst']['p99_ms']:.0f} / "
                                                 f"{r['burst']['max_ms']:.0f}"),
        ("server threads idle / peak / after", lambda r: f"{r['threads_idle']} / "
                                                         f"{r['threads_peak']} / "
                                                         f"{r['threads_after']}"),
        ("threads started by the burst", lambda r: r["threads_new"]),
        ("provider conns accepted in burst / ever",
         lambda r: f"{r['responder']['connections_accepted']} / "
                   f"{r['responder']['connections_ever']}"),
        ("provider conns max open (responder)",
         lambda r: str(r["responder"]["max_connections_open"])),
        ("provider conns max ESTABLISHED (ss)", lambda r: str(r["sockets_peak"])),
        ("HTTP versions at responder",
         lambda r: ", ".join(f"{k}: {v}" for k, v in sorted(r["responder"]["protocols"].items()))
         or "-"),
        ("h2 streams per conn offered", lambda r: str(r["max_streams"])),
        ("responder requests / 200s / max in flight",
         lambda r: f"{r['responder']['requests']} / {r['responder']['server_gets']} / "
                   f"{r['responder']['max_in_flight']}"),
        ("responder: 1st / last request, last answer ms",
         lambda r: f"{r['responder']['first_request_ms']} / {r['responder']['last_request_ms']}"
                   f" / {r['responder']['last_answer_ms']}"),
        ("RSS idle MiB", lambda r: mib(r["rss_idle"])),
        ("RSS peak MiB (VmHWM / sampled)", lambda r: f"{mib(r['rss_hwm'])} / "
                                                     f"{mib(r['rss_peak_sampled'])}"),
        ("RSS after MiB (0,10..s)", lambda r: " ".join(mib(a[2]) for a in r["after"])),
        ("RSS last / idle", lambda r: f"{r['rss_after'] / r['rss_idle']:.2f}"),
        ("RssAnon / RssFile MiB idle", lambda r: f"{mib(r['anon_idle'])} / {mib(r['file_idle'])}"),
        ("RssAnon / RssFile MiB last", lambda r: f"{mib(r['anon_after'])} / {mib(r['file_after'])}"),
        ("provider conns open after (0,10..s)",
         lambda r: " ".join(str(a[4]) for a in r["after"])),
        ("first error", lambda r: r["burst"]["first_error"] or "-"),
    ]
    cells = [[label] + [fmt(r) for r in results] for label, fmt in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    for row in cells:
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                        for i, cell in enumerate(row)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", default="10000", help="comma-separated burst sizes")
    parser.add_argument("--delay", type=float, default=2.0, help="provider delay, seconds")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each burst size")
    parser.add_argument("--after", type=float, default=60, help="seconds watched after a burst")
    parser.add_argument("--channels", type=int, default=4, help="gRPC connections of the client")
    parser.add_argument("--senders", type=int, default=1,
                        help="client threads starting the calls")
    parser.add_argument("--deadline", type=float, default=30, help="deadline of each call, s")
    parser.add_argument("--idle_wait", type=float, default=2, help="seconds idle before a burst")
    parser.add_argument("--warmup", type=int, default=100,
                        help="calls of a small burst before idle is measured (0: none)")
    parser.add_argument("--settle", type=float, default=12,
                        help="seconds after the warm-up before idle is measured")
    parser.add_argument("--max_streams", type=int, default=0,
                        help="responder's HTTP/2 streams per connection (0: Go's 250)")
    parser.add_argument("--server", help="another cloudplaned binary")
    args = parser.parse_args()
    sizes = [int(x) for x in args.calls.split(",")]

    subprocess.run(["bazel", "build", "--config=release", "--noshow_progress",
                    "//service:cloudplaned", "//bench/ceiling:load"], cwd=ROOT, check=True)
    server_bin = pathlib.Path(args.server) if args.server else \
        ROOT / "bazel-opt-bin" / "service" / "cloudplaned"
    build_responder()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="cloudplane-inflight-"))
    head = subprocess.run(["git", "log", "-1", "--format=%h %s"], cwd=ROOT,
                          stdout=subprocess.PIPE, text=True).stdout.strip()[:100]
    # The build is of the working tree: say when the server's own code differs
    # from HEAD (other work in progress in the same tree).
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "service", "adapters",
                            "base", "store", "proto"], cwd=ROOT, stdout=subprocess.PIPE,
                           text=True).stdout.split("\n")
    dirty = [line[3:] for line in dirty if line.strip()]
    print(f"HEAD {head}", flush=True)
    print(f"uncommitted in service/ adapters/ base/ store/ proto/: {', '.join(dirty) or 'none'}")
    print(f"server {server_bin}; work dir {workdir}", flush=True)
    results = []
    for r in range(args.rounds):
        for calls in sizes:
            print(f"round {r + 1}: {calls} calls, load average "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
            res = run_one(server_bin, LOAD_BIN, calls, args, workdir / f"r{r}-{calls}")
            b = res["burst"]
            print(f"  wall {b['wall_s']:.2f} s ({b['wall_s'] / args.delay:.2f}x ideal), "
                  f"errors {b['errors']}, threads {res['threads_idle']}->{res['threads_peak']}, "
                  f"conns {res['responder']['connections_accepted']}, "
                  f"RSS {res['rss_idle']:.0f}->{res['rss_hwm']:.0f}->{res['rss_after']:.0f} MiB",
                  flush=True)
            results.append(res)
    print_table(results, args.delay)
    if args.rounds > 1:
        print()
        print(f"medians of {args.rounds} rounds: wall / ideal")
        for calls in sizes:
            walls = [r["burst"]["wall_s"] for r in results if r["calls"] == calls]
            print(f"  {calls:6d}: {statistics.median(walls) / args.delay:.2f}")


if __name__ == "__main__":
    main()
