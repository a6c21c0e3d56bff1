"""The fastest way to read a CloudSigma account? Lists every server of one
account of the CloudSigma emulator through cloudplaned and through the
client libraries, side by side in one invocation, and prints the medians and
the ratios (no pass/fail: goals are judged by people; issue 15's is Libcloud
/ cloudplane >= 2 at the default page size).

    .deps/venv/bin/python bench/cloudsigma_list.py [--servers 1000] [--rounds 5]
        [--server PATH_TO_CLOUDPLANED] [--baseline PATH_TO_OTHER_CLOUDPLANED]

Setup (its own): installs Apache Libcloud (`apache-libcloud`) and
pycloudsigma (`cloudsigma`) into the running interpreter's environment
(.deps/venv) with pip when they are missing; starts the emulator
(tests/emulators/cloudsigma) and fills it with --servers drives and as many
servers, each server with its drive attached and a DHCP NIC, each object
with a cloudplane_id in its meta; starts the optimised cloudplaned
(.bazelrc's `release` config, bazel-opt-bin/service/cloudplaned, built
first) unless --server names another binary, with the account on the
emulator.

Each round times, one after another (the order rotates between rounds):
  cloudplane default   ListInstances over every page at the default page
                       size (page_size 0), through the generated Python client;
  cloudplane 1000      the same with page_size 1000;
  libcloud             Libcloud's CloudSigma 2.0 driver, driver.list_nodes()
                       (the driver refuses plain http; the bench points its
                       connection at the emulator after construction);
  pycloudsigma         cloudsigma.resource.Server().list_detail();
  raw GET              one GET /servers/detail/?limit=0 with urllib, body
                       read, not parsed.
Every side must see all --servers servers (checked each round). The
emulator counts the list requests each cloudplane listing made
(GET /emulator/list-requests), printed per listing.

--baseline times a second cloudplaned (an older build) in the same rounds,
on the same emulator, and prints its rows and ratios too.
"""
import argparse
import base64
import importlib
import importlib.util
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "tests" / "emulators" / "cloudsigma"))

import cloudplane_testing  # noqa: E402
from cloudplane_testing import Server, compute_pb2  # noqa: E402
from cloudsigma_testing import PASSWORD, USERNAME, CloudSigmaEmulatorProcess  # noqa: E402

ACCOUNT_ID = "bench"
SECRET_ENV = "CLOUDPLANE_BENCH_CLOUDSIGMA_SECRET"


def ensure_packages():
    """Installs what is missing into this interpreter's environment."""
    missing = []
    for module, package in (("libcloud", "apache-libcloud"), ("cloudsigma", "cloudsigma")):
        # Not imported here: pycloudsigma reads its config when imported.
        if importlib.util.find_spec(module) is None:
            missing.append(package)
    if missing:
        print(f"installing {' '.join(missing)} into {sys.prefix}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q"] + missing, check=True)
        importlib.invalidate_caches()


def fill(emulator, count, attach):
    """`count` drives and servers (with `attach`, server n has drive n), each
    server with a DHCP NIC."""
    drives = []
    for start in range(0, count, 200):
        n = min(200, count - start)
        status, body = emulator.rest("POST", "/drives/", {"objects": [
            {"name": f"disk-{i}", "size": 1 << 30, "media": "disk",
             "meta": {"cloudplane_id": f"disk-{i}"}} for i in range(start, start + n)]})
        assert status == 201, body
        drives += [d["uuid"] for d in body["objects"]]
    deadline = time.monotonic() + 60
    while any(d["status"] != "unmounted" for d in emulator.objects("drives")):
        assert time.monotonic() < deadline, "the drives never settled"
        time.sleep(0.1)
    for start in range(0, count, 200):
        n = min(200, count - start)
        status, body = emulator.rest("POST", "/servers/", {"objects": [
            {"name": f"web-{i}", "cpu": 1000, "mem": 512 << 20, "vnc_password": "benchpw",
             "meta": {"cloudplane_id": f"web-{i}"},
             "drives": [{"drive": drives[i], "device": "virtio", "dev_channel": "0:0",
                         "boot_order": 1}] if attach else [],
             "nics": [{"ip_v4_conf": {"conf": "dhcp"}, "model": "virtio"}]}
            for i in range(start, start + n)]})
        assert status == 201, body


def list_requests(emulator):
    base = emulator.api_endpoint.split("/api/2.0")[0]
    status, body = emulator.rest("GET", base + "/emulator/list-requests")
    assert status == 200, body
    return body


class Sides:
    def __init__(self, emulator, servers, count):
        self.emulator, self.count = emulator, count
        self.servers = servers  # label -> Server
        from libcloud.compute.providers import get_driver
        from libcloud.compute.types import Provider
        url = urllib.parse.urlsplit(emulator.api_endpoint)
        driver = get_driver(Provider.CLOUDSIGMA)(USERNAME, PASSWORD, region="zrh")
        # The driver only accepts https; the emulator speaks http on loopback.
        conn = driver.connection
        conn.secure, conn.host, conn.port = False, url.hostname, url.port
        conn.api_prefix = url.path.rstrip("/")
        conn.connect()
        self.libcloud = driver
        import cloudsigma.resource  # reads CLOUDSIGMA_CONFIG, set by measure()
        self.pycloudsigma = cloudsigma.resource.Server(
            api_endpoint=emulator.api_endpoint + "/", username=USERNAME, password=PASSWORD)
        token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        self.raw_request = urllib.request.Request(
            emulator.api_endpoint.rstrip("/") + "/servers/detail/?limit=0",
            headers={"Authorization": "Basic " + token, "Accept": "application/json"})

    def cloudplane(self, label, page_size):
        stub = self.servers[label].compute()
        names, token = 0, ""
        while True:
            page = stub.ListInstances(compute_pb2.ListInstancesRequest(
                parent=f"accounts/{ACCOUNT_ID}", page_size=page_size, page_token=token),
                timeout=120)
            names += len(page.instances)
            token = page.next_page_token
            if not token:
                return names

    def run(self, name):
        if name.startswith("cloudplane"):
            _, label, size = name.split(":")
            return self.cloudplane(label, int(size))
        if name == "libcloud":
            return len(self.libcloud.list_nodes())
        if name == "pycloudsigma":
            return len(self.pycloudsigma.list_detail())
        if name == "raw GET":
            with urllib.request.urlopen(self.raw_request, timeout=120) as resp:
                return resp.read().count(b'"resource_uri": "/api/2.0/servers/')
        raise ValueError(name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--server", help="the cloudplaned to measure (default: the release "
                        "build, built first)")
    parser.add_argument("--baseline", help="another cloudplaned to time in the same rounds")
    parser.add_argument("--attach", choices=("yes", "no", "both"), default="both",
                        help="servers with their drive attached, without, or both in turn")
    args = parser.parse_args()
    ensure_packages()
    binary = args.server or str(cloudplane_testing.release_binary())
    for attach in ((True, False) if args.attach == "both" else (args.attach == "yes",)):
        measure(args, binary, attach)


def measure(args, binary, attach):
    print(f"\n== servers {'with' if attach else 'without'} an attached drive", flush=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="cloudsigma-list-"))
    emulator = CloudSigmaEmulatorProcess(work, transition_delay=0.2, delete_delay=0.2).start()
    servers = {}
    try:
        conf = work / "cloudsigma.conf"
        conf.write_text(f"api_endpoint = {emulator.api_endpoint}/\n"
                        f"ws_endpoint = {emulator.ws_endpoint}\n"
                        f"username = {USERNAME}\npassword = {PASSWORD}\n")
        os.environ["CLOUDSIGMA_CONFIG"] = str(conf)
        started = time.monotonic()
        fill(emulator, args.servers, attach)
        print(f"emulator filled with {args.servers} drives and servers in "
              f"{time.monotonic() - started:.1f} s", flush=True)
        config = emulator.account_config(ACCOUNT_ID, SECRET_ENV)
        binaries = {"this": binary}
        if args.baseline:
            binaries["baseline"] = args.baseline
        for label, path in binaries.items():
            cloudplane_testing.SERVER_BINARY = pathlib.Path(path)
            servers[label] = Server(work / f"server-{label}", config).start()
            print(f"cloudplaned {label}: {path}", flush=True)
        # Let each server's start-up lists (the observer's baseline) pass.
        time.sleep(3)
        sides = Sides(emulator, servers, args.servers)
        names = []
        for label in binaries:
            names += [f"cloudplane:{label}:0", f"cloudplane:{label}:1000"]
        names += ["libcloud", "pycloudsigma", "raw GET"]
        times = {n: [] for n in names}
        requests = {}
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                before = list_requests(emulator)
                t0 = time.perf_counter()
                seen = sides.run(name)
                times[name].append(time.perf_counter() - t0)
                after = list_requests(emulator)
                assert seen == args.servers, f"{name} saw {seen} of {args.servers} servers"
                requests[name] = {k: after.get(k, 0) - before.get(k, 0) for k in after
                                  if after.get(k, 0) != before.get(k, 0)}
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                f"{n} {times[n][-1] * 1000:.0f} ms" for n in names), flush=True)
        med = {n: statistics.median(t) * 1000 for n, t in times.items()}
        print()
        print(f"list all {args.servers} CloudSigma servers "
              f"({'with' if attach else 'without'} drives attached), median of {args.rounds} "
              f"(ms; provider list requests per listing, 'all': every request)")
        for n in names:
            label = n.replace("cloudplane:", "cloudplane ").replace(":0", " default page") \
                if n.startswith("cloudplane") else n
            if n.endswith(":1000"):
                label = n.replace("cloudplane:", "cloudplane ").replace(":1000", " page_size 1000")
            print(f"  {label:<36} {med[n]:9.1f}   {requests.get(n, {})}")
        print()
        for label in binaries:
            for size, text in (("0", "default page size"), ("1000", "page_size 1000")):
                n = f"cloudplane:{label}:{size}"
                print(f"  libcloud / cloudplane {label} ({text}): "
                      f"{med['libcloud'] / med[n]:.2f}x   "
                      f"pycloudsigma / cloudplane: {med['pycloudsigma'] / med[n]:.2f}x   "
                      f"raw GET / cloudplane: {med['raw GET'] / med[n]:.2f}x")
    finally:
        for s in servers.values():
            s.stop()
        emulator.stop()




if __name__ == "__main__":
    main()
