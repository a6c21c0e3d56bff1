"""The enStratus emulator: signature checks (§2 of the reference), response
shapes, jobs, volumes, and the real mixcoatl client driving it (servers, jobs,
volumes).

mixcoatl 1.5.1 (the last release on PyPI) is Python 2 only: it does not even
import on Python 3 (print statements, and hmac.new(str) in auth.py). It runs
under a Python 2.7 interpreter: $MIXCOATL_PYTHON (default: pyenv's 2.7.18)
with mixcoatl and its dependencies in $MIXCOATL_PY2_PATH (default:
.deps/mixcoatl-py2, installed with
`python2.7 -m pip install --target .deps/mixcoatl-py2 mixcoatl==1.5.1
'requests<2.28' 'prettytable<1' 'xmltodict<0.13'`, which tools/setup does).
Without them the mixcoatl test fails."""
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import enstratus_testing as es  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[3]
MIXCOATL_PYTHON = os.environ.get("MIXCOATL_PYTHON", "/root/.pyenv/versions/2.7.18/bin/python")
MIXCOATL_PATH = os.environ.get("MIXCOATL_PY2_PATH", str(REPO / ".deps" / "mixcoatl-py2"))


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    emu = es.EnstratusEmulator(tmp_path_factory.mktemp("es"), job_seconds=0.2,
                               boot_seconds=0.2).start()
    yield emu
    emu.stop()


def test_signed_request_is_served_in_collection_shape(emulator):
    status, body, _ = emulator.request("GET", "geography/Region")
    assert status == 200
    assert {r["regionId"] for r in body["regions"]} >= {es.REGION}
    status, body, _ = emulator.request("GET", f"geography/Region/{es.REGION}")
    assert status == 200 and len(body["regions"]) == 1  # by id: a one-element list
    status, _, headers = emulator.request("HEAD", "geography/Region")
    assert status == 200 and int(headers["x-es-count"]) == 2
    # The query string is sent but not signed.
    status, body, _ = emulator.request("GET", f"geography/DataCenter?regionId={es.REGION}")
    assert status == 200 and all(d["region"]["regionId"] == es.REGION for d in body["dataCenters"])


@pytest.mark.parametrize("change", ["secret", "access", "stale", "future", "path", "agent"])
def test_bad_or_stale_signature_is_refused(emulator, change):
    now = int(time.time() * 1000)
    kwargs = {
        "secret": {"secret": "wrong"},
        "access": {"access": "nobody"},
        "stale": {"timestamp_ms": now - 3600 * 1000},
        "future": {"timestamp_ms": now + 3600 * 1000},
        "path": {"sign_path": emulator.basepath + "/geography/DataCenter"},
    }.get(change, {})
    if change == "agent":
        # Signed for one User-Agent, sent with another: the emulator
        # recomputes with the received header (§2 step 4).
        import urllib.request
        ts = now
        sig = es.base64.b64encode(es.hmac.new(
            es.SECRET_KEY.encode(), f"{es.ACCESS_KEY}:GET:{emulator.basepath}/geography/Region:"
            f"{ts}:signed-agent".encode(), es.hashlib.sha256).digest()).decode()
        req = urllib.request.Request(emulator.url + "/geography/Region", headers={
            "x-esauth-access": es.ACCESS_KEY, "x-esauth-timestamp": str(ts),
            "x-esauth-signature": sig, "User-Agent": "other-agent"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 403
        return
    status, body, _ = emulator.request("GET", "geography/Region", **kwargs)
    assert status == 403, body
    assert "message" in body["error"]


def test_launch_job_runs_to_complete_and_terminate_removes(emulator):
    status, body, _ = emulator.request("POST", "infrastructure/Server", {"launch": [{
        "name": "emu-1", "description": "d", "product": {"productId": "m1.small"},
        "machineImage": {"machineImageId": es.IMAGE}, "dataCenter": {"dataCenterId": es.DATACENTER},
        "budget": str(es.BUDGET)}]})
    assert status == 202, body
    job = body["jobs"][0]
    assert job["status"] == "RUNNING"
    done = emulator.wait_job(job["jobId"])
    assert done["status"] == "COMPLETE" and done["description"] == "Launch Server emu-1"
    server_id = int(done["message"])
    status, body, _ = emulator.request("GET", f"infrastructure/Server/{server_id}")
    assert status == 200 and body["servers"][0]["status"] in ("PENDING", "RUNNING")
    status, body, _ = emulator.request("DELETE", f"infrastructure/Server/{server_id}?reason=x")
    assert status == 202
    assert emulator.wait_job(body["jobs"][0]["jobId"])["status"] == "COMPLETE"
    status, body, _ = emulator.request("GET", f"infrastructure/Server/{server_id}")
    assert status == 404 and body == {"error": {"message": f"No such server: {server_id}"}}


def test_failing_launch_ends_in_error_and_bad_bodies_are_400(emulator):
    status, body, _ = emulator.request("POST", "infrastructure/Server", {"launch": [{
        "name": "fail-1", "description": "d", "product": {"productId": "m1.small"},
        "machineImage": {"machineImageId": es.IMAGE}, "dataCenter": {"dataCenterId": es.DATACENTER},
        "budget": es.BUDGET}]})
    assert status == 202
    job = emulator.wait_job(body["jobs"][0]["jobId"])
    assert job["status"] == "ERROR" and "emulated failure" in job["message"]
    status, body, _ = emulator.request("POST", "infrastructure/Server", {"launch": [{"name": "x"}]})
    assert status == 400 and body["error"]["message"]
    status, body, _ = emulator.request("GET", "admin/Job/5")
    assert (status, body) == (404, {"error": {"message": "No such job ID: 5"}})


def test_volume_jobs_attach_detach_delete(emulator):
    status, body, _ = emulator.request("POST", "infrastructure/Server", {"launch": [{
        "name": "vol-host", "description": "d", "product": {"productId": "m1.small"},
        "machineImage": {"machineImageId": es.IMAGE}, "dataCenter": {"dataCenterId": es.DATACENTER},
        "budget": es.BUDGET}]})
    server_id = int(emulator.wait_job(body["jobs"][0]["jobId"])["message"])
    # The docs' addVolume body shape (create_volume.json), in our data center.
    status, body, _ = emulator.request("POST", "infrastructure/Volume", {"addVolume": [{
        "dataCenter": {"dataCenterId": es.DATACENTER}, "description": "API Test Volume",
        "sizeInGb": 1, "budget": es.BUDGET, "name": "API Test Volume"}]})
    assert status == 202, body
    job = emulator.wait_job(body["jobs"][0]["jobId"])
    assert job["status"] == "COMPLETE" and job["description"] == "Create Volume API Test Volume"
    volume_id = int(job["message"])
    deadline = time.monotonic() + 10
    while True:
        status, body, _ = emulator.request("GET", f"infrastructure/Volume/{volume_id}")
        assert status == 200 and len(body["volumes"]) == 1
        if body["volumes"][0]["status"] == "ACTIVE" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert body["volumes"][0]["status"] == "ACTIVE" and "server" not in body["volumes"][0]
    path = f"infrastructure/Volume/{volume_id}"
    status, body, _ = emulator.request("PUT", path, {"attach": [{"server": {"serverId": server_id},
                                                                 "deviceId": "/dev/sdf"}]})
    assert status == 202, body
    assert emulator.wait_job(body["jobs"][0]["jobId"])["status"] == "COMPLETE"
    volume = emulator.request("GET", path)[1]["volumes"][0]
    assert volume["server"] == {"serverId": server_id} and volume["deviceId"] == "/dev/sdf"
    # Attached: a second attach and a delete are refused (409).
    assert emulator.request("PUT", path, {"attach": [{"server": {"serverId": server_id}}]})[0] == 409
    assert emulator.request("DELETE", path + "?reason=x")[0] == 409
    status, body, _ = emulator.request("PUT", path, {"detach": [{}]})
    assert status == 202
    assert emulator.wait_job(body["jobs"][0]["jobId"])["status"] == "COMPLETE"
    assert "server" not in emulator.request("GET", path)[1]["volumes"][0]
    assert emulator.request("PUT", path, {"detach": [{}]})[0] == 409
    status, body, _ = emulator.request("DELETE", path + "?reason=x")
    assert status == 202
    assert emulator.wait_job(body["jobs"][0]["jobId"])["status"] == "COMPLETE"
    assert emulator.request("GET", path)[0] == 404
    # Every job is listed, whoever started it.
    status, body, _ = emulator.request("GET", "admin/Job")
    descriptions = [j["description"] for j in body["jobs"]]
    assert f"Attach Volume {volume_id} to {server_id}" in descriptions
    assert f"Delete Volume {volume_id}" in descriptions
    status, body, _ = emulator.request("POST", "infrastructure/Volume", {"addVolume": [{
        "dataCenter": {"dataCenterId": es.DATACENTER}, "description": "d", "sizeInGb": 0,
        "budget": es.BUDGET, "name": "zero"}]})
    assert status == 400, body


def test_rule_ends_of_type_global_are_firewalls(emulator):
    """A GLOBAL end of a rule is a firewall by DCM id (Dasein's
    RuleTarget.getGlobal): one the account has is kept as sent and listed
    back; another is refused."""
    def add_rule(source):
        return emulator.request("POST", "network/FirewallRule", {"addRule": [{
            "firewallId": 116387, "source": source, "sourceType": "GLOBAL",
            "destination": "116387", "destinationType": "GLOBAL", "direction": "INGRESS",
            "permission": "ALLOW", "protocol": "TCP", "startPort": 22, "endPort": 22}]})
    status, body, _ = add_rule("116387")
    assert status == 201, body
    rule_id = body["rules"][0]["firewallRuleId"]
    status, body, _ = emulator.request("GET", "network/FirewallRule?firewallId=116387")
    listed = [r for r in body["rules"] if r["firewallRuleId"] == rule_id]
    assert [(r["sourceType"], r["source"]) for r in listed] == [("GLOBAL", "116387")]
    for missing in ("999", "sg-28891318"):
        status, body, _ = add_rule(missing)
        assert status == 400 and "not a firewall" in json.dumps(body), body
    assert emulator.request("DELETE", f"network/FirewallRule/{rule_id}")[0] == 204


MIXCOATL_SCRIPT = r'''
import json, os, sys, time
from mixcoatl.infrastructure.server import Server
from mixcoatl.admin.job import Job
from mixcoatl.resource import Endpoint

out = {}
out["servers_before"] = len(Server.all())
s = Server()
s.provider_product_id = "m1.small"
s.machine_image = int(os.environ["IMAGE"])
s.data_center = int(os.environ["DATACENTER"])
s.budget = int(os.environ["BUDGET"])
s.name = "mixcoatl-1"
s.description = "launched by mixcoatl"
s.keypair = "my-keypair"
job_id = s.launch()
out["launch_job"] = job_id
def wait(job_id):
    for _ in range(200):
        j = Job(job_id)
        j.load()
        if j.status != "RUNNING":
            return j
        time.sleep(0.05)
j = wait(job_id)
out["launch_status"] = j.status
out["launch_message"] = j.message
server = Server(int(j.message))
for _ in range(200):
    server.load()
    if server.status == "RUNNING":
        break
    time.sleep(0.05)
out["server_status"] = server.status
out["server_name"] = server.name
out["servers_after"] = len(Server.all())
server.destroy(reason="done")
out["terminate_job"] = server.current_job
j = wait(server.current_job)
out["terminate_status"] = j.status
missing = Job(5)
missing.load()
out["missing_job_error"] = str(missing.last_error)
bad = Endpoint(url=os.environ["DCM_ENDPOINT"], access_key="abcdefg", secret_key="wrong")
try:
    Server.all(endpoint=bad)
    out["wrong_secret"] = "accepted"
except BaseException as e:
    out["wrong_secret"] = str(e)
print(json.dumps(out))
'''


def test_real_mixcoatl_client(emulator):
    # tools/setup installs mixcoatl for the machine's Python 2.7; without it
    # this check fails rather than passing unseen.
    assert os.path.exists(MIXCOATL_PYTHON) and os.path.isdir(
        os.path.join(MIXCOATL_PATH, "mixcoatl")), (
        f"mixcoatl needs Python 2.7 ({MIXCOATL_PYTHON}) and mixcoatl in {MIXCOATL_PATH}; "
        "run tools/setup")
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": MIXCOATL_PATH,
           "HOME": str(emulator.workdir), "DCM_ENDPOINT": emulator.url,
           "DCM_ACCESS_KEY": es.ACCESS_KEY, "DCM_SECRET_KEY": es.SECRET_KEY,
           "DCM_SSL_VERIFY": "0", "IMAGE": str(es.IMAGE), "DATACENTER": str(es.DATACENTER),
           "BUDGET": str(es.BUDGET), "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    result = subprocess.run([MIXCOATL_PYTHON, "-c", MIXCOATL_SCRIPT], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["launch_status"] == "COMPLETE", out
    assert out["launch_message"].isdigit()
    assert out["server_status"] == "RUNNING" and out["server_name"] == "mixcoatl-1"
    assert out["servers_after"] == out["servers_before"] + 1
    assert out["terminate_status"] == "COMPLETE", out
    assert "No such job ID: 5" in out["missing_job_error"]
    assert "Invalid access keys" in out["wrong_secret"], out
    # mixcoatl signed with User-Agent "mixcoatl" and sent its JSON body
    # without a Content-Type (§3); the emulator accepted both.
    launches = [r for r in emulator.requests_log()
                if r["method"] == "POST" and r["userAgent"] == "mixcoatl"]
    assert launches and launches[0]["status"] == 202


MIXCOATL_VOLUME_SCRIPT = r'''
import json, os, time
from mixcoatl.infrastructure.server import Server
from mixcoatl.infrastructure.volume import Volume
from mixcoatl.admin.job import Job

def wait(job_id):
    for _ in range(200):
        j = Job(job_id)
        j.load()
        if j.status != "RUNNING":
            return j
        time.sleep(0.05)

out = {}
s = Server()
s.provider_product_id = "m1.small"
s.machine_image = int(os.environ["IMAGE"])
s.data_center = int(os.environ["DATACENTER"])
s.budget = int(os.environ["BUDGET"])
s.name = "mixcoatl-vol-host"
s.description = "hosts a volume"
server_id = int(wait(s.launch()).message)
v = Volume()
v.name = "mixcoatl-vol"
v.description = "made by mixcoatl"
v.size_in_gb = 2
v.budget = int(os.environ["BUDGET"])
v.data_center = int(os.environ["DATACENTER"])
j = wait(v.create().job_id)
out["create_status"] = j.status
volume_id = int(j.message)
for _ in range(200):
    vol = Volume(volume_id)
    vol.load()
    if vol.status == "ACTIVE":
        break
    time.sleep(0.05)
out["volume_status"] = vol.status
out["size"] = vol.size_in_gb
vol.attach(server_id, device_id="/dev/sdf")
out["attach_status"] = wait(vol.current_job).status
vol = Volume(volume_id)
vol.load()
out["attached_to"] = vol.server["server_id"]
out["device"] = vol.device_id
vol.detach()
out["detach_status"] = wait(vol.current_job).status
vol.destroy(reason="done")
out["delete_status"] = wait(vol.current_job).status
out["volume_ids"] = [x.volume_id for x in Volume.all()]
out["server_id"] = server_id
out["volume_id"] = volume_id
out["job_ids"] = Job.all(keys_only=True)
print(json.dumps(out))
'''


def test_real_mixcoatl_client_volumes_and_job_list(emulator):
    assert os.path.exists(MIXCOATL_PYTHON) and os.path.isdir(
        os.path.join(MIXCOATL_PATH, "mixcoatl")), (
        f"mixcoatl needs Python 2.7 ({MIXCOATL_PYTHON}) and mixcoatl in {MIXCOATL_PATH}; "
        "run tools/setup")
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": MIXCOATL_PATH,
           "HOME": str(emulator.workdir), "DCM_ENDPOINT": emulator.url,
           "DCM_ACCESS_KEY": es.ACCESS_KEY, "DCM_SECRET_KEY": es.SECRET_KEY,
           "DCM_SSL_VERIFY": "0", "IMAGE": str(es.IMAGE), "DATACENTER": str(es.DATACENTER),
           "BUDGET": str(es.BUDGET), "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    result = subprocess.run([MIXCOATL_PYTHON, "-c", MIXCOATL_VOLUME_SCRIPT], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["create_status"] == "COMPLETE" and out["volume_status"] == "ACTIVE", out
    assert out["size"] == 2
    assert out["attach_status"] == "COMPLETE" and out["attached_to"] == out["server_id"], out
    assert out["device"] == "/dev/sdf"
    assert out["detach_status"] == "COMPLETE" and out["delete_status"] == "COMPLETE", out
    assert out["volume_id"] not in out["volume_ids"]
    # Job.all() (GET admin/Job) lists the jobs mixcoatl started.
    status, body, _ = emulator.request("GET", "admin/Job")
    assert sorted(out["job_ids"]) == sorted(j["jobId"] for j in body["jobs"])
    assert len(out["job_ids"]) >= 5


def test_networks_are_jobs_and_refuse_bad_requests(emulator):
    status, body, _ = emulator.request("POST", "network/Network", {"addNetwork": [{
        "budget": es.BUDGET, "name": "raw-net", "description": "d",
        "networkAddress": "10.20.0.0/16", "region": {"regionId": es.REGION},
        "dnsServers": ["10.20.0.2"], "label": "green"}]})
    assert status == 202, body
    job = emulator.wait_job(body["jobs"][0]["jobId"])
    assert job["status"] == "COMPLETE" and job["message"].isdigit()
    net_id = int(job["message"])
    status, body, _ = emulator.request("GET", f"network/Network/{net_id}")
    assert status == 200 and len(body["networks"]) == 1
    net = body["networks"][0]
    assert (net["networkAddress"], net["label"], net["status"]) == ("10.20.0.0/16", "green",
                                                                    "ACTIVE")
    assert net["region"] == {"regionId": es.REGION} and net["dnsServers"] == ["10.20.0.2"]
    status, body, _ = emulator.request("GET", f"network/Network?regionId=19341&activeOnly=true")
    assert status == 200 and net_id not in [n["networkId"] for n in body["networks"]]
    for bad, word in ((dict(networkAddress="10.20.0.1/16"), "networkAddress"),
                      (dict(networkAddress=""), "networkAddress"),
                      (dict(region={"regionId": 1}), "region"),
                      (dict(budget=1), "budget")):
        spec = {"budget": es.BUDGET, "name": "bad", "description": "d",
                "networkAddress": "10.0.0.0/24", "region": {"regionId": es.REGION}, **bad}
        status, body, _ = emulator.request("POST", "network/Network", {"addNetwork": [spec]})
        assert status == 400 and word in body["error"]["message"], body
    status, body, _ = emulator.request("DELETE", f"network/Network/{net_id}?reason=x")
    assert status == 202
    assert emulator.wait_job(body["jobs"][0]["jobId"])["status"] == "COMPLETE"
    status, body, _ = emulator.request("GET", f"network/Network/{net_id}")
    assert status == 404 and "No such network" in body["error"]["message"]
    status, body, _ = emulator.request("DELETE", f"network/Network/{net_id}?reason=x")
    assert status == 404


MIXCOATL_NETWORK_SCRIPT = r'''
import json, os, time
from mixcoatl.network.network import Network
from mixcoatl.admin.job import Job

def wait(job_id):
    for _ in range(200):
        j = Job(job_id)
        j.load()
        if j.status != "RUNNING":
            return j
        time.sleep(0.05)

out = {}
out["before"] = Network.all(keys_only=True)
n = Network()
n.budget = int(os.environ["BUDGET"])
n.name = "mixcoatl-net"
n.description = "made by mixcoatl"
n.network_address = "10.30.0.0/24"
n.region = int(os.environ["REGION"])
n.dns_servers = "10.30.0.2"
job = n.create(label="blue")
j = wait(job.job_id)
out["create_status"] = j.status
net_id = int(j.message)
out["listed"] = [{"id": x.network_id, "name": x.name, "cidr": x.network_address,
                  "label": x.label, "region": x.region["region_id"], "dns": x.dns_servers}
                 for x in Network.all(region_id=int(os.environ["REGION"]))]
one = Network(net_id)
one.load()
out["one"] = [one.name, one.network_address, one.status]
out["destroyed"] = bool(one.destroy(reason="done"))
out["delete_status"] = wait(one.current_job).status
out["after"] = Network.all(keys_only=True)
print(json.dumps(out))
'''


def test_real_mixcoatl_networks(emulator):
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": MIXCOATL_PATH,
           "HOME": str(emulator.workdir), "DCM_ENDPOINT": emulator.url,
           "DCM_ACCESS_KEY": es.ACCESS_KEY, "DCM_SECRET_KEY": es.SECRET_KEY,
           "DCM_SSL_VERIFY": "0", "REGION": str(es.REGION), "BUDGET": str(es.BUDGET),
           "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    result = subprocess.run([MIXCOATL_PYTHON, "-c", MIXCOATL_NETWORK_SCRIPT], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["create_status"] == "COMPLETE", out
    mine = [n for n in out["listed"] if n["name"] == "mixcoatl-net"]
    assert len(mine) == 1, out
    assert mine[0]["cidr"] == "10.30.0.0/24" and mine[0]["label"] == "blue"
    assert mine[0]["region"] == es.REGION and mine[0]["dns"] == ["10.30.0.2"]
    assert out["one"] == ["mixcoatl-net", "10.30.0.0/24", "ACTIVE"]
    assert out["delete_status"] == "COMPLETE", out
    assert out["after"] == out["before"]
    # mixcoatl sent addNetwork and the DELETE with its reason, signed as "mixcoatl".
    sent = [(r["method"], r["path"].split("?")[0].rsplit("/", 1)[-1])
            for r in emulator.requests_log() if r["userAgent"] == "mixcoatl"]
    assert ("POST", "Network") in sent and ("DELETE", str(mine[0]["id"])) in sent


MIXCOATL_NETWORK_LAUNCH_SCRIPT = r'''
import json, os, time
from mixcoatl.infrastructure.server import Server
from mixcoatl.network.network import Network
from mixcoatl.admin.job import Job

def wait(job_id):
    for _ in range(200):
        j = Job(job_id)
        j.load()
        if j.status != "RUNNING":
            return j
        time.sleep(0.05)

out = {}
n = Network()
n.budget = int(os.environ["BUDGET"])
n.name = "mixcoatl-launch-net"
n.description = "servers go here"
n.network_address = "10.60.0.0/24"
n.region = int(os.environ["REGION"])
net_id = int(wait(n.create().job_id).message)
out["network_id"] = net_id
servers = []
for name in ("on-net-1", "on-net-2"):
    s = Server()
    s.provider_product_id = "m1.small"
    s.machine_image = int(os.environ["IMAGE"])
    s.data_center = int(os.environ["DATACENTER"])
    s.budget = int(os.environ["BUDGET"])
    s.name = name
    s.description = "on a network"
    s.network = net_id
    j = wait(s.launch())
    out.setdefault("launch_status", []).append(j.status)
    servers.append(int(j.message))
out["networks"] = []
out["private_ips"] = []
for server_id in servers:
    s = Server(server_id)
    s.load()
    out["networks"].append(s.network)
    out["private_ips"].append(s.private_ip_addresses)
one = Network(net_id)
one.load()
one.destroy(reason="busy")
out["in_use_error"] = str(one.last_error)
for server_id in servers:
    s = Server(server_id)
    s.load()
    s.destroy(reason="done")
    wait(s.current_job)
print(json.dumps(out))
'''


def test_launch_on_a_network_with_mixcoatl(emulator):
    # mixcoatl's Server.network sends {"network":{"networkId":N}}; the server
    # shows it and has an address of the network.
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": MIXCOATL_PATH,
           "HOME": str(emulator.workdir), "DCM_ENDPOINT": emulator.url,
           "DCM_ACCESS_KEY": es.ACCESS_KEY, "DCM_SECRET_KEY": es.SECRET_KEY,
           "DCM_SSL_VERIFY": "0", "REGION": str(es.REGION), "BUDGET": str(es.BUDGET),
           "IMAGE": str(es.IMAGE), "DATACENTER": str(es.DATACENTER),
           "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    result = subprocess.run([MIXCOATL_PYTHON, "-c", MIXCOATL_NETWORK_LAUNCH_SCRIPT], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["launch_status"] == ["COMPLETE", "COMPLETE"], out
    net_id = out["network_id"]
    # mixcoatl reads the record back with its keys uncamelled.
    assert out["networks"] == [{"network_id": net_id}] * 2, out
    # The first free hosts after the three reserved ones, one per server.
    assert out["private_ips"] == [["10.60.0.4"], ["10.60.0.5"]], out
    # A network that servers are on cannot be deleted (409).
    assert "is in use by server" in out["in_use_error"], out
    launches = [r for r in emulator.requests_log()
                if r["method"] == "POST" and r["userAgent"] == "mixcoatl"
                and r["path"].endswith("/infrastructure/Server")]
    assert [r["status"] for r in launches[-2:]] == [202, 202]
    assert emulator.request("DELETE", f"network/Network/{net_id}?reason=x")[0] == 202


def test_launch_on_an_unknown_or_far_network_is_400(emulator):
    status, body, _ = emulator.request("POST", "network/Network", {"addNetwork": [{
        "budget": es.BUDGET, "name": "tokyo", "description": "d",
        "networkAddress": "10.70.0.0/24", "region": {"regionId": 19341}}]})
    assert status == 202, body
    far = int(emulator.wait_job(body["jobs"][0]["jobId"])["message"])
    base = {"name": "emu-net", "description": "d", "product": {"productId": "m1.small"},
            "machineImage": {"machineImageId": es.IMAGE},
            "dataCenter": {"dataCenterId": es.DATACENTER}, "budget": es.BUDGET}
    for extra, message in (({"network": {"networkId": 99999}}, "No such network: 99999"),
                           ({"network": {"networkId": str(far)}},
                            f"Network {far} is not in region {es.REGION}"),
                           ({"network": {}}, "network.networkId is required"),
                           ({"network": {"networkId": far}, "subnet": {"subnetId": 7}},
                            f"Network {far} is not in region {es.REGION}")):
        status, body, _ = emulator.request("POST", "infrastructure/Server",
                                           {"launch": [{**base, **extra}]})
        assert (status, body) == (400, {"error": {"message": message}}), extra
    status, body, _ = emulator.request("POST", "infrastructure/Server",
                                       {"launch": [{**base, "subnet": {"subnetId": 7}}]})
    assert (status, body) == (400, {"error": {"message": "No such subnet: 7"}})
    assert emulator.request("DELETE", f"network/Network/{far}?reason=x")[0] == 202
