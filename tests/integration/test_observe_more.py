"""End to end: per-account observers (service/observer.h) for CloudSigma
(websocket cut), enStratus and Phantom in both dialects (`phantom` on the
Phantom emulator, `aws` on moto), with the real server at an observe
interval of 1 s. The fleet and OpenNebula cases are in test_observe.py.

Every change is made directly at an emulator, never through cloudplane:
CloudSigma's REST API, enStratus' signed REST API, boto 2 against Phantom's
query API (the client Phantom's own tools used) and boto3 against moto (AWS
Auto Scaling query protocol). Each must reach a Watch stream with source
`poll` within two intervals (CloudSigma's only while its websocket is cut;
with the websocket up it arrives once, as `push`). A stopped emulator turns
its account UNREACHABLE and, started again on the same port, READY; a
restarted server replays nothing."""
import base64
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.error
import urllib.request

import grpc
import pytest

from cloudplane_testing import Server, accounts_pb2, autoscaling_pb2, watch_pb2
from observe_testing import Watcher, free_port, wait_until
from observe_testing import account_state as _account_state
from observe_testing import wait_observed as _wait_observed


def account_state(server, account):
    return _account_state(server, f"accounts/{account}")


def wait_observed(server, account):
    _wait_observed(server, f"accounts/{account}")


EMULATORS = pathlib.Path(__file__).resolve().parent.parent / "emulators"
sys.path.insert(0, str(EMULATORS / "enstratus"))
import enstratus_testing as es  # noqa: E402

CS_EMULATOR = EMULATORS / "cloudsigma" / "cloudsigma_emulator.py"
CS_USER, CS_PASSWORD = "user@example.com", "emulator-password"
PHANTOM_EMULATOR = EMULATORS / "phantom" / "phantom_emulator.py"
MOTO_SERVER = EMULATORS / "phantom" / "moto_server.py"
PH_ACCESS, PH_SECRET = "AKPHANTOM0001", "phantom-secret-key-0001"
PH_USER, PH_PASSWORD = "alice", "wonderland"

INTERVAL = 1.0
# "Within two intervals": each interval is jittered by up to +20%.
TWO_INTERVALS = 2 * INTERVAL * 1.2
CREATED, UPDATED, DELETED = (watch_pb2.WatchResponse.CREATED, watch_pb2.WatchResponse.UPDATED,
                             watch_pb2.WatchResponse.DELETED)
ACCOUNTS = ("cs", "dcm", "phantom", "aws")
TIMES = {}  # provider → change → seconds from the change to its event


class Emulator:
    """An emulator process on a port fixed at construction, so it can be
    stopped and started again where its account points."""

    def __init__(self, name, workdir, argv):
        self.name = name
        self.workdir = pathlib.Path(workdir)
        self.port = free_port()
        self.argv = argv  # a function of the port
        self.process = None
        self.fields = {}

    def start(self):
        ready = self.workdir / f"{self.name}.ready"
        if ready.exists():
            ready.unlink()
        self.process = subprocess.Popen(
            [sys.executable] + self.argv(self.port) + ["--ready-file", str(ready),
                                                       "--max-lifetime", "900"],
            stdout=subprocess.DEVNULL, stderr=open(self.workdir / f"{self.name}.log", "ab"),
            env=dict(os.environ, CLOUDSIGMA_EMULATOR_PASSWORD=CS_PASSWORD))
        deadline = time.monotonic() + 60
        while not (ready.exists() and ready.stat().st_size > 0):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} emulator did not start")
            time.sleep(0.02)
        self.fields = dict(p.split("=", 1) for p in ready.read_text().split()[1:])
        return self

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def is_change(kind, change_type, name=None, source="poll", suffix=None):
    return lambda c: (c.kind == kind and c.change_type == change_type and
                      (name is None or c.resource_name == name) and
                      (suffix is None or c.resource_name.endswith(suffix)) and
                      (source is None or c.source == source))


def timed(provider, what, start, at, limit=TWO_INTERVALS):
    took = at - start
    TIMES.setdefault(provider, {})[what] = round(took, 2)
    print(f"{provider}: {what} after {took:.2f}s")
    assert took <= limit, (provider, what, took)


# ---- emulators and the server ---------------------------------------------

@pytest.fixture(scope="module")
def cloudsigma(tmp_path_factory):
    emu = Emulator("cloudsigma", tmp_path_factory.mktemp("observe-cs"), lambda port: [
        str(CS_EMULATOR), "--listen", f"127.0.0.1:{port}", "--username", CS_USER,
        "--transition-delay", "0.1", "--delete-delay", "0.1", "--verbose"]).start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def enstratus(tmp_path_factory):
    emu = Emulator("enstratus", tmp_path_factory.mktemp("observe-dcm"), lambda port: [
        str(es.EMULATOR), "--listen", f"127.0.0.1:{port}", "--job-seconds", "0.1",
        "--boot-seconds", "0.1", "--keys", es.KEYS]).start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    emu = Emulator("phantom", tmp_path_factory.mktemp("observe-phantom"), lambda port: [
        str(PHANTOM_EMULATOR), "--listen", f"127.0.0.1:{port}", "--page-limit", "2",
        "--converge-delay", "0.1"]).start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    # Without --auth: moto takes any key, so a restarted moto (new IAM) still
    # accepts the account's.
    emu = Emulator("moto", tmp_path_factory.mktemp("observe-moto"), lambda port: [
        str(MOTO_SERVER), "--port", str(port)]).start()
    yield emu
    emu.stop()


BREAKER = "limits { breaker_failures: 3 breaker_cooldown_ms: 500 }"


@pytest.fixture(scope="module")
def server(tmp_path_factory, cloudsigma, enstratus, phantom, moto):
    os.environ["CP_OBSERVE_CS"] = f"{CS_USER}:{CS_PASSWORD}"
    os.environ["CP_OBSERVE_DCM"] = es.KEYS
    os.environ["CP_OBSERVE_PHANTOM"] = f"{PH_ACCESS}:{PH_SECRET}\n{PH_USER}:{PH_PASSWORD}"
    os.environ["CP_OBSERVE_AWS"] = "AKIDMOTO:moto-secret"
    ph = f"http://127.0.0.1:{phantom.port}"
    config = (
        f'accounts {{ id: "cs" provider: "cloudsigma" endpoint: "{cloudsigma.fields["api"]}" '
        f'credentials {{ env: "CP_OBSERVE_CS" }} '
        f'options {{ key: "ws_endpoint" value: "{cloudsigma.fields["ws"]}" }} '
        f'observe_interval_seconds: 1 {BREAKER} }}\n'
        f'accounts {{ id: "dcm" provider: "enstratus" endpoint: "{enstratus.fields["url"]}" '
        f'credentials {{ env: "CP_OBSERVE_DCM" }} '
        f'options {{ key: "budget" value: "{es.BUDGET}" }} '
        f'observe_interval_seconds: 1 {BREAKER} }}\n'
        f'accounts {{ id: "phantom" provider: "phantom" endpoint: "{ph}" '
        f'credentials {{ env: "CP_OBSERVE_PHANTOM" }} '
        f'options {{ key: "dialect" value: "phantom" }} '
        f'options {{ key: "rest_endpoint" value: "{ph}/api/dev" }} '
        f'options {{ key: "default_location" value: "hotel" }} '
        f'observe_interval_seconds: 1 {BREAKER} }}\n'
        f'accounts {{ id: "aws" provider: "phantom" endpoint: "{moto.fields["url"]}" '
        f'credentials {{ env: "CP_OBSERVE_AWS" }} '
        f'options {{ key: "dialect" value: "aws" }} '
        f'options {{ key: "region" value: "us-east-1" }} '
        f'options {{ key: "default_location" value: "us-east-1a" }} '
        f'options {{ key: "max_records" value: "2" }} '
        f'observe_interval_seconds: 1 {BREAKER} }}\n')
    srv = Server(tmp_path_factory.mktemp("observe-more-server"), config).start()
    yield srv
    log = srv.log()
    assert srv.stop() == 0, log
    for secret in (CS_PASSWORD, es.SECRET_KEY, PH_SECRET, PH_PASSWORD):
        assert secret not in log
    print("time from change to event (s):", json.dumps(TIMES, sort_keys=True))


# ---- CloudSigma -----------------------------------------------------------

def cs_call(emu, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(emu.fields["api"].rstrip("/") + path, data=data,
                                     method=method)
    request.add_header("Content-Type", "application/json")
    token = base64.b64encode(f"{CS_USER}:{CS_PASSWORD}".encode()).decode()
    request.add_header("Authorization", "Basic " + token)
    with urllib.request.urlopen(request, timeout=10) as answer:
        raw = answer.read()
        return answer.status, (json.loads(raw) if raw else None)


def cs_websocket(emu, refuse):
    request = urllib.request.Request(f"http://127.0.0.1:{emu.port}/emulator/websockets",
                                     data=json.dumps({"refuse": refuse}).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200


def cs_create_server(emu, name):
    status, body = cs_call(emu, "POST", "/servers/", {"objects": [
        {"name": name, "cpu": 1000, "mem": 536870912, "vnc_password": "vnc-pw"}]})
    assert status == 201, body
    return body["objects"][0]["uuid"]


def cs_push_connected(server, cloudsigma, watcher):
    """Waits until the websocket feed delivers: a probe drive created at the
    emulator comes back as a push change."""
    status, body = cs_call(cloudsigma, "POST", "/drives/", {"objects": [
        {"name": "probe", "size": 1 << 30, "media": "disk"}]})
    assert status == 201, body
    uuid = body["objects"][0]["uuid"]
    deadline = time.monotonic() + 45
    while True:
        try:
            watcher.next_matching(lambda c: (c.source == "push" and c.kind == "Volume" and
                                             c.resource_name.endswith(uuid)), timeout=2)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            cs_call(cloudsigma, "PUT", f"/drives/{uuid}/",
                    {"name": f"probe-{time.monotonic()}", "size": 1 << 30, "media": "disk"})
    assert cs_call(cloudsigma, "DELETE", f"/drives/{uuid}/")[0] == 204
    return uuid


def test_cloudsigma_push_with_the_websocket_up_and_no_poll_duplicate(server, cloudsigma):
    wait_observed(server, "cs")
    watcher = Watcher(server, "accounts/cs")
    try:
        cs_push_connected(server, cloudsigma, watcher)
        start = time.monotonic()
        uuid = cs_create_server(cloudsigma, "pushed")
        name = f"accounts/cs/instances/{uuid}"
        at, _ = watcher.next_matching(is_change("Instance", CREATED, name, source="push"))
        TIMES.setdefault("cloudsigma", {})["push CREATED"] = round(at - start, 2)
        assert cs_call(cloudsigma, "DELETE", f"/servers/{uuid}/")[0] == 204
        watcher.next_matching(is_change("Instance", DELETED, name, source="push"))
        # Three more rounds' worth: the observer lists nothing while the feed
        # is up, so the change never comes back as poll.
        watcher.drain(3 * INTERVAL * 1.2)
        about = [(c.change_type, c.source) for c in watcher.all if c.resource_name == name]
        assert [s for _, s in about if s == "poll"] == [], about
        assert about.count((CREATED, "push")) == 1, about
        assert about.count((DELETED, "push")) == 1, about
    finally:
        watcher.close()


def test_cloudsigma_changes_while_the_websocket_is_cut_arrive_as_poll(server, cloudsigma):
    wait_observed(server, "cs")
    watcher = Watcher(server, "accounts/cs")
    # A server made while the websocket is up: known from its push changes
    # only, it must not come back as a poll change once the observer lists
    # (the listed and the pushed renderings are the same bytes).
    cs_push_connected(server, cloudsigma, watcher)
    steady = f"accounts/cs/instances/{cs_create_server(cloudsigma, 'steady')}"
    watcher.next_matching(is_change("Instance", CREATED, steady, source="push"))
    watcher.drain(1.0)
    cs_websocket(cloudsigma, refuse=True)
    try:
        # Made at once: the first round after the cut must already see it
        # as news (the snapshot is kept current while the feed pushes).
        start = time.monotonic()
        uuid = cs_create_server(cloudsigma, "outside")
        name = f"accounts/cs/instances/{uuid}"
        at, created = watcher.next_matching(is_change("Instance", CREATED, name, source=None))
        assert created.source == "poll", created
        timed("cloudsigma", "CREATED (websocket cut)", start, at)

        start = time.monotonic()
        assert cs_call(cloudsigma, "POST", f"/servers/{uuid}/action/?do=start")[0] == 202
        at, _ = watcher.next_matching(is_change("Instance", UPDATED, name))
        timed("cloudsigma", "UPDATED (start, websocket cut)", start, at)

        assert cs_call(cloudsigma, "POST", f"/servers/{uuid}/action/?do=stop")[0] == 202
        wait_until(lambda: cs_call(cloudsigma, "GET", f"/servers/{uuid}/")[1]["status"] ==
                   "stopped", 10, "stopped")
        start = time.monotonic()
        assert cs_call(cloudsigma, "DELETE", f"/servers/{uuid}/")[0] == 204
        at, _ = watcher.next_matching(is_change("Instance", DELETED, name))
        # The emulator answers 404 --delete-delay (0.1 s) after the 204.
        timed("cloudsigma", "DELETED (websocket cut)", start, at, TWO_INTERVALS + 0.1)
        pushed = [c for c in watcher.all if c.resource_name == name and c.source == "push"]
        assert pushed == [], pushed
        watcher.drain(1.5 * INTERVAL)
        others = [(c.change_type, c.source, c.resource_name) for c in watcher.all
                  if c.source == "poll" and c.resource_name != name]
        assert others == [], others  # e.g. `steady` UPDATED: push and list disagree
    finally:
        cs_websocket(cloudsigma, refuse=False)
        watcher.close()


# ---- enStratus ------------------------------------------------------------

def dcm_launch(enstratus, name):
    emu = es.EnstratusEmulator(enstratus.workdir)
    emu.url, emu.port = enstratus.fields["url"], enstratus.port
    status, body, _ = emu.request("POST", "infrastructure/Server", {"launch": [{
        "name": name, "description": "launched outside", "product": {"productId": str(es.PRODUCT)},
        "machineImage": {"machineImageId": es.IMAGE},
        "dataCenter": {"dataCenterId": es.DATACENTER}, "budget": str(es.BUDGET)}]})
    assert status == 202, body
    job = emu.wait_job(body["jobs"][0]["jobId"])
    assert job["status"] == "COMPLETE", job
    return emu, int(job["message"])


def test_enstratus_server_launched_and_terminated_outside(server, enstratus):
    wait_observed(server, "dcm")
    watcher = Watcher(server, "accounts/dcm")
    try:
        start = time.monotonic()
        emu, server_id = dcm_launch(enstratus, "outside-dcm")
        job_done = time.monotonic()
        at, created = watcher.next_matching(
            is_change("Instance", CREATED, suffix=f"/instances/{server_id}", source=None))
        assert created.source == "poll", created
        # The server exists once its launch job completes (--job-seconds 0.1).
        timed("enstratus", "CREATED", job_done, at)
        print(f"enstratus: CREATED {at - start:.2f}s after the launch request")

        status, body, _ = emu.request("DELETE", f"infrastructure/Server/{server_id}?reason=x")
        assert status == 202, body
        assert emu.wait_job(body["jobs"][0]["jobId"])["status"] == "COMPLETE"
        gone = time.monotonic()
        at, _ = watcher.next_matching(is_change("Instance", DELETED, created.resource_name))
        timed("enstratus", "DELETED", gone, at)
        # Nothing but poll changes for a server cloudplane never touched, and
        # no UPDATED churn from fields that change on every read.
        about = [(c.change_type, c.source) for c in watcher.all
                 if c.resource_name == created.resource_name]
        assert all(s == "poll" for _, s in about), about
        assert about.count((UPDATED, "poll")) <= 2, about  # PENDING → RUNNING at most
    finally:
        watcher.close()


# ---- Phantom (phantom dialect, boto 2) ------------------------------------

@pytest.fixture()
def boto2(phantom, monkeypatch):
    boto = pytest.importorskip("boto")
    import boto.auth
    from boto.ec2.autoscale import AutoScaleConnection
    from boto.ec2.regioninfo import RegionInfo
    # Phantom checks the bare host (boto 2.6-2.9); see test_phantom_emulator.
    monkeypatch.setattr(boto.auth.HmacAuthV4Handler, "host_header",
                        lambda self, host, request: host)
    conn = AutoScaleConnection(PH_ACCESS, PH_SECRET, is_secure=False, port=phantom.port,
                               region=RegionInfo(name="us-east-1", endpoint="127.0.0.1"))
    conn.num_retries = 0
    return conn


def test_phantom_group_created_resized_deleted_with_boto2(server, boto2):
    from boto.ec2.autoscale import AutoScalingGroup, LaunchConfiguration
    wait_observed(server, "phantom")
    watcher = Watcher(server, "accounts/phantom")
    lt_name, sg_name = "accounts/phantom/launchTemplates/obs", "accounts/phantom/scalingGroups/obs"
    try:
        start = time.monotonic()
        boto2.create_launch_configuration(LaunchConfiguration(
            name="obs@hotel", image_id="hello-phantom.gz", key_name="phantomkey",
            instance_type="m1.small"))
        at, _ = watcher.next_matching(is_change("LaunchTemplate", CREATED, lt_name))
        timed("phantom", "LaunchTemplate CREATED", start, at)

        start = time.monotonic()
        boto2.create_auto_scaling_group(AutoScalingGroup(
            group_name="obs", availability_zones=["hotel"], launch_config="obs", min_size=1,
            max_size=1, connection=boto2))
        at, created = watcher.next_matching(is_change("ScalingGroup", CREATED, sg_name))
        timed("phantom", "ScalingGroup CREATED", start, at)
        # Let the group converge (instances appear: UPDATED) before resizing.
        watcher.drain(2.5 * INTERVAL)

        start = time.monotonic()
        boto2.set_desired_capacity("obs", 2)
        at, _ = watcher.next_matching(lambda c: (
            is_change("ScalingGroup", UPDATED, sg_name)(c) and
            _group(c).target_size == 2))
        timed("phantom", "ScalingGroup UPDATED (resized)", start, at)
        watcher.drain(2.5 * INTERVAL)
        churn = [c for c in watcher.drain(3 * INTERVAL) if c.resource_name == sg_name]
        assert churn == [], [_group(c) for c in churn]  # settled: no UPDATED every round

        start = time.monotonic()
        boto2.delete_auto_scaling_group("obs")
        at, _ = watcher.next_matching(is_change("ScalingGroup", DELETED, sg_name))
        timed("phantom", "ScalingGroup DELETED", start, at)
        start = time.monotonic()
        boto2.delete_launch_configuration("obs@hotel")
        at, _ = watcher.next_matching(is_change("LaunchTemplate", DELETED, lt_name))
        timed("phantom", "LaunchTemplate DELETED", start, at)
        assert all(c.source == "poll" for c in watcher.all), watcher.all
    finally:
        watcher.close()


def _group(change):
    group = autoscaling_pb2.ScalingGroup()
    assert change.resource.Unpack(group)
    return group


# ---- Phantom (aws dialect on moto, boto3) ---------------------------------

def autoscaling(moto):
    boto3 = pytest.importorskip("boto3")
    return boto3.client("autoscaling", endpoint_url=moto.fields["url"], region_name="us-east-1",
                        aws_access_key_id="AKIDMOTO", aws_secret_access_key="moto-secret")


def test_aws_group_created_resized_deleted_with_boto3(server, moto):
    wait_observed(server, "aws")
    client = autoscaling(moto)
    watcher = Watcher(server, "accounts/aws")
    lt_name, sg_name = "accounts/aws/launchTemplates/obs-lc", "accounts/aws/scalingGroups/obs-asg"
    try:
        start = time.monotonic()
        client.create_launch_configuration(LaunchConfigurationName="obs-lc",
                                           ImageId="ami-12345678", InstanceType="t2.micro")
        at, _ = watcher.next_matching(is_change("LaunchTemplate", CREATED, lt_name))
        timed("aws", "LaunchTemplate CREATED", start, at)

        start = time.monotonic()
        client.create_auto_scaling_group(AutoScalingGroupName="obs-asg",
                                         LaunchConfigurationName="obs-lc", MinSize=0,
                                         MaxSize=3, DesiredCapacity=1,
                                         AvailabilityZones=["us-east-1a"])
        at, _ = watcher.next_matching(is_change("ScalingGroup", CREATED, sg_name))
        timed("aws", "ScalingGroup CREATED", start, at)
        watcher.drain(2.5 * INTERVAL)

        start = time.monotonic()
        client.update_auto_scaling_group(AutoScalingGroupName="obs-asg", DesiredCapacity=2)
        at, _ = watcher.next_matching(lambda c: (
            is_change("ScalingGroup", UPDATED, sg_name)(c) and _group(c).target_size == 2))
        timed("aws", "ScalingGroup UPDATED (resized)", start, at)
        churn = [c for c in watcher.drain(3 * INTERVAL) if c.resource_name == sg_name]
        assert churn == [], [_group(c) for c in churn]  # no UPDATED every round

        start = time.monotonic()
        client.delete_auto_scaling_group(AutoScalingGroupName="obs-asg", ForceDelete=True)
        at, _ = watcher.next_matching(is_change("ScalingGroup", DELETED, sg_name))
        timed("aws", "ScalingGroup DELETED", start, at)
        start = time.monotonic()
        client.delete_launch_configuration(LaunchConfigurationName="obs-lc")
        at, _ = watcher.next_matching(is_change("LaunchTemplate", DELETED, lt_name))
        timed("aws", "LaunchTemplate DELETED", start, at)
        assert all(c.source == "poll" for c in watcher.all), watcher.all
    finally:
        watcher.close()


# ---- unreachable and back; restart ----------------------------------------

@pytest.mark.parametrize("account,emulator", [("cs", "cloudsigma"), ("dcm", "enstratus"),
                                              ("phantom", "phantom"), ("aws", "moto")])
def test_unreachable_and_back(server, account, emulator, request):
    emu = request.getfixturevalue(emulator)
    wait_observed(server, account)
    wait_until(lambda: account_state(server, account).state == accounts_pb2.Account.READY, 15,
               "READY before")
    emu.stop()
    stopped = time.monotonic()
    wait_until(lambda: account_state(server, account).state == accounts_pb2.Account.UNREACHABLE,
               20, "UNREACHABLE")
    print(f"{emulator}: UNREACHABLE {time.monotonic() - stopped:.2f}s after the stop")
    assert account_state(server, account).last_error.startswith("UNAVAILABLE: ")
    emu.start()
    back = time.monotonic()
    wait_until(lambda: account_state(server, account).state == accounts_pb2.Account.READY, 30,
               "READY again")
    print(f"{emulator}: READY {time.monotonic() - back:.2f}s after the restart")


def test_restart_replays_nothing(server, cloudsigma, enstratus, boto2, moto):
    from boto.ec2.autoscale import LaunchConfiguration
    for account in ACCOUNTS:
        wait_observed(server, account)
    watchers = {a: Watcher(server, f"accounts/{a}") for a in ACCOUNTS}
    try:
        # One resource per account made outside, left in place over the restart.
        cs_create_server(cloudsigma, "kept")
        dcm_launch(enstratus, "kept-dcm")
        boto2.create_launch_configuration(LaunchConfiguration(
            name="kept@hotel", image_id="hello-phantom.gz", instance_type="m1.small"))
        autoscaling(moto).create_launch_configuration(LaunchConfigurationName="kept-lc",
                                                      ImageId="ami-12345678",
                                                      InstanceType="t2.micro")
        time.sleep(3 * INTERVAL)  # observed (or pushed), states settled
        last = {}
        for account, watcher in watchers.items():
            changes = watcher.drain(0.5)
            assert any(b"kept" in c.resource.value for c in changes), \
                (account, [(c.change_type, c.resource_name) for c in changes])
            last[account] = max(c.sequence for c in changes)
    finally:
        for w in watchers.values():
            w.close()
    assert server.stop() == 0, server.log()
    server.start()
    for account in ACCOUNTS:
        wait_until(lambda: account_state(server, account).HasField("last_observe_time"), 15,
                   f"{account} observed after the restart")
    resumed = {a: Watcher(server, f"accounts/{a}", after=last[a]) for a in ACCOUNTS}
    try:
        time.sleep(3 * INTERVAL)
        replayed = {a: [(c.change_type, c.source, c.resource_name) for c in w.drain(0.1)]
                    for a, w in resumed.items()}
    finally:
        for w in resumed.values():
            w.close()
    print("after the restart:", replayed)
    assert replayed == {a: [] for a in ACCOUNTS}, replayed
