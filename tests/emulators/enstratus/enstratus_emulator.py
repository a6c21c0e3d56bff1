#!/usr/bin/env python3
"""enStratus / Dell Cloud Manager (DCM) REST API emulator for tests.

Speaks the wire protocol of the project notes shared/protocols/enstratus.md (cited as §N):
`/api/enstratus/<version>/<area>/<Resource>[/<id>]`, HMAC-SHA256 signed
requests (§2), `{"<collection>":[...]}` bodies (§4, §8), `{"<op>":[{...}]}`
request bodies (§3, §7), 202 + `{"jobs":[...]}` for asynchronous work and
`admin/Job/<id>` moving RUNNING -> COMPLETE (message = new id) or ERROR (§5).
Errors are `{"error":{"message":...}}` (§4).

Usage:
  enstratus_emulator.py [--listen 127.0.0.1:0] [--keys ACCESS:SECRET ...]
      [--api-version 2015-05-25] [--job-seconds 0.3] [--boot-seconds 0.3]
      [--fail-prefix fail-] [--skew-seconds 900] [--ready-file PATH]
      [--max-lifetime 900] [--verbose]

On start it prints `READY url=http://127.0.0.1:PORT/api/enstratus/<version>
port=PORT` on stdout and, with --ready-file, writes the same line to that file
atomically. It stops after --max-lifetime seconds (0 = never), on SIGTERM or
SIGINT, and when the process that started it goes away. Loopback only.

Behaviour worth knowing in tests:
  * Signatures are checked as §2 says: recomputed with the secret of the
    received access key over METHOD, the request path without its query,
    the received timestamp and User-Agent; a timestamp further than
    --skew-seconds from now is refused. Failures answer 403 with
    {"error":{"message":"Invalid access keys"}} (or "...timestamp...").
  * A launch (or addFirewall, addVolume) whose name starts with --fail-prefix
    gives a job that ends in ERROR with an explanatory message; nothing is
    created.
  * Jobs complete --job-seconds after they start; a launched server is
    PENDING until then and RUNNING --boot-seconds later; stop/start/pause go
    through STOPPING/PAUSING; a terminated server disappears (404) when its
    job completes (detaching its volumes).
  * Volumes: addVolume is a job (message = volumeId), the volume is PENDING
    until --boot-seconds later; attach/detach are jobs that set or clear
    `server` and `deviceId`; deleting an attached volume is 409.
  * Networks (network/Network, mixcoatl's Network): addNetwork is a job
    (message = networkId) that needs budget, name, description, a region and
    an IPv4 CIDR `networkAddress`; the network is ACTIVE when the job ends.
    A list with activeOnly=true (mixcoatl always sends it) leaves out
    networks that are not ACTIVE. DELETE is a job; a network that a server
    was launched into is 409.
  * A launch may name `network` {"networkId":N} (mixcoatl's Server.network):
    an unknown network or one outside the data center's region is 400, as an
    unknown data center or firewall is. The server shows the same `network`
    object and its one private address is the network's first free host
    (after three reserved ones, as AWS VPC keeps them). The emulated networks
    have no subnets: any `subnet` is 400 "No such subnet".
  * admin/Job lists every job, whoever started it.
  * GET /_emulator/requests returns the request log (method, path,
    access key, status) — never a secret or a signature.
Python 3 standard library only.
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import os
import signal
import socketserver
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

API_VERSION = "2015-05-25"
CUSTOMER = {"customerId": 11111}
CLOUD = {"cloudId": 1}


def dcm_date(t):
    """2012-12-18T18:31:26.000+0000 (§3)."""
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}+0000"


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def seed():
    """A small account shaped like the mixcoatl fixtures."""
    regions = {
        19344: {"regionId": 19344, "name": "Oregon (us-west-2)", "description": "AWS US West (2)",
                "providerId": "us-west-2", "jurisdiction": "US", "status": "ACTIVE",
                "cloud": CLOUD, "customer": CUSTOMER},
        19341: {"regionId": 19341, "name": "Japan (ap-northeast-1)",
                "description": "AWS Northeast Asia/Pacific (1)", "providerId": "ap-northeast-1",
                "jurisdiction": "JP", "status": "ACTIVE", "cloud": CLOUD, "customer": CUSTOMER},
    }
    datacenters = {
        64351: {"dataCenterId": 64351, "name": "us-west-2a", "description": "us-west-2a",
                "providerId": "us-west-2a", "region": {"regionId": 19344}, "status": "ACTIVE"},
        64352: {"dataCenterId": 64352, "name": "us-west-2b", "description": "us-west-2b",
                "providerId": "us-west-2b", "region": {"regionId": 19344}, "status": "ACTIVE"},
        64400: {"dataCenterId": 64400, "name": "ap-northeast-1a", "description": "ap-northeast-1a",
                "providerId": "ap-northeast-1a", "region": {"regionId": 19341}, "status": "ACTIVE"},
    }
    images = {}
    for image_id, name, platform, region in (
            (284542, "ubuntu/images/ebs/ubuntu-lucid-10.04-amd64-server-20120913", "UBUNTU", 19344),
            (284831, "centos-6.3-x86_64", "CENT_OS", 19344),
            (290001, "ubuntu-precise-12.04-amd64", "UBUNTU", 19341)):
        images[image_id] = {
            "machineImageId": image_id, "name": name, "description": f"{name} (x86_64)",
            "providerId": f"ami-{image_id:08x}", "platform": platform, "architecture": "I64",
            "status": "ACTIVE", "region": {"regionId": region}, "cloud": CLOUD,
            "customer": CUSTOMER, "owningUser": {"userId": 12345}, "budget": 10287,
            "agentVersion": 17, "creationTimestamp": "1970-01-01T00:00:00.000+0000",
            "owningCloudAccountNumber": "099720109477", "removable": True, "sharable": False}
    products = {}
    for product_id, provider_id, name, cpus, ram, disk, rate, region, provider_region in (
            (652, "m1.small", "32-bit Small", 1, 1700, 160, 0.08, 19344, "us-west-2"),
            (693, "c1.medium", "32-bit High CPU Medium", 2, 1700, 350, 0.17, 19344, "us-west-2"),
            (700, "m1.small", "32-bit Small", 1, 1700, 160, 0.09, 19341, "ap-northeast-1")):
        products[product_id] = {
            "productId": product_id, "providerProductId": provider_id, "name": name,
            "description": f"{name}, {cpus} CPU, {ram} MB RAM, {disk} GB Disk",
            "architecture": "I32", "platform": "UNIX", "cpuCount": cpus, "cpuSpeedInMhz": 2,
            "ramInMb": ram, "diskSizeInGb": disk, "hourlyRate": rate, "currency": "USD",
            "providerRegionId": provider_region, "software": "", "cloud": CLOUD,
            "_regionId": region}
    billing = {
        10287: {"billingCodeId": 10287, "name": "Default", "financeCode": "DEF",
                "description": "Default Billing Code", "status": "ACTIVE", "budgetState": "NORMAL",
                "currentUsage": {"currency": "USD", "value": 150.9},
                "projectedUsage": {"currency": "USD", "value": 1023.99},
                "softQuota": {"currency": "USD", "value": 500},
                "hardQuota": {"currency": "USD", "value": 1000}, "customer": CUSTOMER},
    }
    firewalls = {
        116387: {"firewallId": 116387, "name": "default", "description": "default group",
                 "status": "ACTIVE", "providerId": "sg-28891318", "region": {"regionId": 19344},
                 "cloud": CLOUD, "customer": CUSTOMER, "budget": 10287,
                 "owningAccount": {"accountId": 16000}, "removable": True},
    }
    rules = {
        3706471: {"firewallRuleId": 3706471, "firewall": {"firewallId": 116387},
                  "direction": "INGRESS", "permission": "ALLOW", "protocol": "TCP",
                  "source": "217.240.165.28/32", "sourceType": "CIDR", "destination": "116387",
                  "destinationType": "GLOBAL", "startPort": 2003, "endPort": 2003,
                  "precedence": 0},
    }
    volumes = {
        211309: {"volumeId": 211309, "name": "vol-4816d27b", "description": "vol-4816d27b",
                 "sizeInGb": 8, "sizeString": "8GB", "deviceId": "/dev/sda1",
                 "providerId": "vol-4816d27b", "status": "ACTIVE", "available": True,
                 "encrypted": False, "budget": 10287, "dataCenter": {"dataCenterId": 64351},
                 "region": {"regionId": 19344}, "cloud": CLOUD, "customer": CUSTOMER,
                 "creationTimestamp": "1970-01-01T00:00:00.000+0000", "removable": True},
    }
    return regions, datacenters, images, products, billing, firewalls, rules, volumes


class State:
    """Everything the emulated account holds, behind one lock. Time-based
    transitions are applied lazily (advance()) at every request."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.args = args
        (self.regions, self.datacenters, self.images, self.products, self.billing,
         self.firewalls, self.rules, self.volumes) = seed()
        self.servers = {}
        self.jobs = {}
        self.next_job = 84322
        self.next_server = 339452
        self.next_firewall = 117164
        self.next_rule = 3706472
        self.next_volume = 220001
        self.networks = {}
        self.next_network = 42001
        self.request_log = []

    # Jobs ------------------------------------------------------------------
    def new_job(self, description, on_complete, fail_message=None):
        job_id = self.next_job
        self.next_job += 1
        now = time.time()
        self.jobs[job_id] = {
            "job": {"jobId": job_id, "status": "RUNNING", "description": description,
                    "startDate": dcm_date(now)},
            "done_at": now + self.args.job_seconds,
            "on_complete": on_complete,
            "fail_message": fail_message,
        }
        return self.jobs[job_id]["job"]

    def advance(self):
        now = time.time()
        for entry in self.jobs.values():
            job = entry["job"]
            if job["status"] == "RUNNING" and entry["done_at"] <= now:
                if entry["fail_message"]:
                    job["status"], job["message"] = "ERROR", entry["fail_message"]
                else:
                    try:
                        job["message"] = str(entry["on_complete"]() or "")
                        job["status"] = "COMPLETE"
                    except ApiError as e:
                        job["status"], job["message"] = "ERROR", e.message
                job["endDate"] = dcm_date(entry["done_at"])
        for record in list(self.servers.values()) + list(self.volumes.values()):
            boot = record.pop("_running_at", None)
            if boot is not None:
                if boot <= now:
                    record["status"] = record.pop("_ready_status", "RUNNING")
                else:
                    record["_running_at"] = boot


def _id(value, what):
    """Numeric ids may arrive as numbers or numeric strings (§7 notes)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{what} must be a numeric id")


def _ref(obj, key, id_key, what):
    ref = obj.get(key)
    if not isinstance(ref, dict) or id_key not in ref:
        raise ApiError(400, f"{what} is required")
    return _id(ref[id_key], what)


def _args_of(body, op):
    """The arguments of `{"<op>":[{...}]}` (§3)."""
    if not isinstance(body, dict) or op not in body:
        raise ApiError(400, f"Expected a {op} operation")
    value = body[op]
    if isinstance(value, list):
        if len(value) != 1 or not isinstance(value[0], dict):
            raise ApiError(400, f"{op} takes a list of one object")
        return value[0]
    if isinstance(value, dict):
        return value
    raise ApiError(400, f"{op} takes a list of one object")


def _public(record):
    return {k: v for k, v in record.items() if not k.startswith("_")}


class Emulator:
    def __init__(self, args):
        self.args = args
        self.state = State(args)
        self.keys = dict(k.split(":", 1) for k in args.keys)
        self.basepath = f"/api/enstratus/{args.api_version}"

    # Auth (§2) ---------------------------------------------------------------
    def check_auth(self, method, path, headers):
        access = headers.get("x-esauth-access", "")
        timestamp = headers.get("x-esauth-timestamp", "")
        signature = headers.get("x-esauth-signature", "")
        user_agent = headers.get("User-Agent", "")
        secret = self.keys.get(access)
        if not access or not signature or not timestamp or secret is None:
            raise ApiError(403, "Invalid access keys")
        try:
            ts = int(timestamp)
        except ValueError:
            raise ApiError(403, "Invalid timestamp")
        if abs(time.time() * 1000 - ts) > self.args.skew_seconds * 1000:
            raise ApiError(403, "Request timestamp is too old or in the future")
        to_sign = f"{access}:{method}:{path}:{ts}:{user_agent}"
        want = base64.b64encode(hmac.new(secret.encode(), to_sign.encode(),
                                         hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(want, signature):
            raise ApiError(403, "Invalid access keys")
        return access

    # Routing -------------------------------------------------------------
    def handle(self, method, raw_path, headers, body_bytes):
        """Returns (status, body dict or None, extra headers)."""
        parsed = urllib.parse.urlsplit(raw_path)
        path = parsed.path
        query = dict(urllib.parse.parse_qsl(parsed.query))
        if path.rstrip("/") == "/api/enstratus" and method == "GET":
            return 200, {"current": {"versionId": self.args.api_version},
                         "supported": [{"versionId": "2014-07-30"},
                                       {"versionId": self.args.api_version}]}, {}
        if path == "/_emulator/requests" and method == "GET":
            with self.state.lock:
                return 200, {"requests": list(self.state.request_log)}, {}
        if not path.startswith(self.basepath + "/"):
            raise ApiError(404, f"No such API path: {path}")
        self.check_auth(method, path, headers)
        rel = path[len(self.basepath) + 1:].strip("/").split("/")
        if len(rel) < 2 or len(rel) > 3:
            raise ApiError(404, f"No such resource: {'/'.join(rel)}")
        resource = f"{rel[0]}/{rel[1]}"
        rid = rel[2] if len(rel) == 3 else None
        body = None
        if body_bytes:
            try:
                body = json.loads(body_bytes)
            except ValueError:
                raise ApiError(400, "The request body is not JSON")
        with self.state.lock:
            self.state.advance()
            handler = ROUTES.get((method if method != "HEAD" else "GET", resource))
            if handler is None:
                raise ApiError(404 if method in ("GET", "HEAD") else 501,
                               f"{method} is not supported on {resource}")
            status, out = handler(self, rid, query, body)
        extra = {}
        if method == "HEAD" and isinstance(out, dict) and len(out) == 1:
            extra["x-es-count"] = str(len(next(iter(out.values()))))
            out = None
        return status, out, extra

    # Helpers -------------------------------------------------------------
    def _get(self, table, rid, key, what):
        if rid is None:
            return None
        try:
            record = table[int(rid)]
        except (ValueError, KeyError):
            raise ApiError(404, f"No such {what}: {rid}")
        return {key: [_public(record)]}

    # Resources -----------------------------------------------------------
    def regions(self, rid, query, body):
        one = self._get(self.state.regions, rid, "regions", "region")
        return 200, one or {"regions": [_public(r) for r in self.state.regions.values()]}

    def datacenters(self, rid, query, body):
        one = self._get(self.state.datacenters, rid, "dataCenters", "data center")
        if one:
            return 200, one
        if "regionId" not in query:
            raise ApiError(400, "regionId is required")
        region = _id(query["regionId"], "regionId")
        return 200, {"dataCenters": [_public(d) for d in self.state.datacenters.values()
                                     if d["region"]["regionId"] == region]}

    def images(self, rid, query, body):
        one = self._get(self.state.images, rid, "images", "machine image")
        if one:
            return 200, one
        items = self.state.images.values()
        if "regionId" in query:
            region = _id(query["regionId"], "regionId")
            items = [i for i in items if i["region"]["regionId"] == region]
        return 200, {"images": [_public(i) for i in items]}

    def products(self, rid, query, body):
        one = self._get(self.state.products, rid, "serverProducts", "server product")
        if one:
            return 200, one
        if "regionId" not in query:  # required (§6)
            raise ApiError(400, "regionId is required")
        region = _id(query["regionId"], "regionId")
        return 200, {"serverProducts": [_public(p) for p in self.state.products.values()
                                        if p["_regionId"] == region]}

    def billing_codes(self, rid, query, body):
        one = self._get(self.state.billing, rid, "billingCodes", "billing code")
        return 200, one or {"billingCodes": [_public(b) for b in self.state.billing.values()]}

    def volumes(self, rid, query, body):
        one = self._get(self.state.volumes, rid, "volumes", "volume")
        if one:
            return 200, one
        items = self.state.volumes.values()
        for key, ref, id_key in (("dataCenterId", "dataCenter", "dataCenterId"),
                                 ("regionId", "region", "regionId")):
            if key in query:
                want = _id(query[key], key)
                items = [v for v in items if v[ref][id_key] == want]
        return 200, {"volumes": [_public(v) for v in items]}

    def add_volume(self, rid, query, body):
        if rid is not None:
            raise ApiError(400, "POST addVolume to the Volume collection")
        st = self.state
        spec = _args_of(body, "addVolume")
        for field in ("name", "description"):
            if not isinstance(spec.get(field), str) or not spec[field]:
                raise ApiError(400, f"{field} is required")
        dc_id = _ref(spec, "dataCenter", "dataCenterId", "dataCenter.dataCenterId")
        if dc_id not in st.datacenters:
            raise ApiError(400, f"No such data center: {dc_id}")
        size = _id(spec.get("sizeInGb"), "sizeInGb")
        if size < 1:
            raise ApiError(400, "sizeInGb must be at least 1")
        if "budget" not in spec or _id(spec["budget"], "budget") not in st.billing:
            raise ApiError(400, "budget must name a billing code")
        name = spec["name"]
        fail = (f"Creating volume {name} failed: no capacity left (emulated failure)"
                if name.startswith(self.args.fail_prefix) else None)

        def complete():
            volume_id = st.next_volume
            st.next_volume += 1
            now = time.time()
            st.volumes[volume_id] = {
                "volumeId": volume_id, "name": name, "description": spec["description"],
                "sizeInGb": size, "sizeString": f"{size}GB", "providerId": f"vol-{volume_id:08x}",
                "status": "PENDING", "available": True, "encrypted": False,
                "budget": _id(spec["budget"], "budget"), "dataCenter": {"dataCenterId": dc_id},
                "region": {"regionId": st.datacenters[dc_id]["region"]["regionId"]},
                "cloud": CLOUD, "customer": CUSTOMER, "owningUser": {"userId": 54321},
                "owningAccount": {"accountId": 16000}, "owningGroups": [{"groupId": 9465}],
                "creationTimestamp": dcm_date(now), "removable": True,
                "_running_at": now + self.args.boot_seconds, "_ready_status": "ACTIVE"}
            if spec.get("label"):
                st.volumes[volume_id]["label"] = spec["label"]
            return volume_id

        job = st.new_job(f"Create Volume {name}", complete, fail)
        return 202, {"jobs": [dict(job)]}

    def _volume(self, rid):
        volume_id = _id(rid, "volumeId") if rid is not None else None
        volume = self.state.volumes.get(volume_id)
        if volume is None:
            raise ApiError(404, f"No such volume: {rid}")
        return volume_id, volume

    def volume_action(self, rid, query, body):
        st = self.state
        volume_id, volume = self._volume(rid)
        if not isinstance(body, dict) or len(body) != 1:
            raise ApiError(400, "Expected one volume operation")
        op = next(iter(body))
        args = _args_of(body, op)
        if op == "describeVolume":
            for key in ("name", "description", "label"):
                if key in args:
                    volume[key] = args[key]
            return 204, None
        if volume["status"] != "ACTIVE":
            raise ApiError(409, f"Volume {volume_id} is {volume['status']}")
        if op == "attach":
            server_id = _ref(args, "server", "serverId", "server.serverId")
            server = st.servers.get(server_id)
            if server is None:
                raise ApiError(404, f"No such server: {server_id}")
            if "server" in volume:
                raise ApiError(409, f"Volume {volume_id} is attached to server "
                                    f"{volume['server']['serverId']}")
            if server["dataCenter"] != volume["dataCenter"]:
                raise ApiError(400, f"Server {server_id} is not in the data center of volume "
                                    f"{volume_id}")
            if server["status"] not in ("RUNNING", "STOPPED", "PAUSED"):
                raise ApiError(409, f"Cannot attach a volume to server {server_id} while it is "
                                    f"{server['status']}")
            device = args.get("deviceId")
            if device is not None and not isinstance(device, str):
                raise ApiError(400, "deviceId must be a string")
            used = {v.get("deviceId") for v in st.volumes.values()
                    if v.get("server") == {"serverId": server_id}}
            if device in used:
                raise ApiError(409, f"Device {device} is in use on server {server_id}")
            if not device:
                device = next(f"/dev/sd{c}" for c in "fghijklmnop" if f"/dev/sd{c}" not in used)

            def complete():
                if volume_id in st.volumes and server_id in st.servers:
                    volume["server"] = {"serverId": server_id}
                    volume["deviceId"] = device
                return ""

            job = st.new_job(f"Attach Volume {volume_id} to {server_id}", complete)
            return 202, {"jobs": [dict(job)]}
        if op == "detach":
            if "server" not in volume:
                raise ApiError(409, f"Volume {volume_id} is not attached")

            def complete():
                volume.pop("server", None)
                volume.pop("deviceId", None)
                return ""

            job = st.new_job(f"Detach Volume {volume_id}", complete)
            return 202, {"jobs": [dict(job)]}
        raise ApiError(400, f"Unknown volume operation: {op}")

    def delete_volume(self, rid, query, body):
        st = self.state
        volume_id, volume = self._volume(rid)
        if "server" in volume:
            raise ApiError(409, f"Volume {volume_id} is attached to server "
                                f"{volume['server']['serverId']}")
        if volume["status"] != "ACTIVE":
            raise ApiError(409, f"Volume {volume_id} is {volume['status']}")
        volume["status"] = "DELETING"

        def complete():
            st.volumes.pop(volume_id, None)
            return ""

        job = st.new_job(f"Delete Volume {volume_id}", complete)
        return 202, {"jobs": [dict(job)]}

    def jobs(self, rid, query, body):
        if rid is not None:
            try:
                entry = self.state.jobs[int(rid)]
            except (ValueError, KeyError):
                raise ApiError(404, f"No such job ID: {rid}")
            return 200, {"jobs": [dict(entry["job"])]}
        return 200, {"jobs": [dict(e["job"]) for e in self.state.jobs.values()]}

    # Servers -------------------------------------------------------------
    def servers(self, rid, query, body):
        one = self._get(self.state.servers, rid, "servers", "server")
        if one:
            return 200, one
        items = self.state.servers.values()
        if "regionId" in query:
            region = _id(query["regionId"], "regionId")
            items = [s for s in items if s["region"]["regionId"] == region]
        return 200, {"servers": [_public(s) for s in items]}

    def launch(self, rid, query, body):
        if rid is not None:
            raise ApiError(400, "POST a launch to the Server collection")
        spec = _args_of(body, "launch")
        st = self.state
        for field in ("name", "description"):
            if not isinstance(spec.get(field), str) or not spec[field]:
                raise ApiError(400, f"{field} is required")
        product = spec.get("product")
        if not isinstance(product, dict) or not product.get("productId"):
            raise ApiError(400, "product.productId is required")
        image_id = _ref(spec, "machineImage", "machineImageId", "machineImage.machineImageId")
        dc_id = _ref(spec, "dataCenter", "dataCenterId", "dataCenter.dataCenterId")
        if "budget" not in spec:
            raise ApiError(400, "budget is required")
        budget = _id(spec["budget"], "budget")
        if dc_id not in st.datacenters:
            raise ApiError(400, f"No such data center: {dc_id}")
        region = st.datacenters[dc_id]["region"]["regionId"]
        if image_id not in st.images:
            raise ApiError(400, f"No such machine image: {image_id}")
        if st.images[image_id]["region"]["regionId"] != region:
            raise ApiError(400, f"Machine image {image_id} is not available in region {region}")
        # mixcoatl sends the provider product id (§7); a numeric DCM id works too.
        wanted = str(product["productId"])
        match = [p for p in st.products.values() if p["_regionId"] == region and
                 (p["providerProductId"] == wanted or str(p["productId"]) == wanted)]
        if not match:
            raise ApiError(400, f"No such product in region {region}: {wanted}")
        if budget not in st.billing:
            raise ApiError(400, f"No such billing code: {budget}")
        firewall_ids = []
        for fw in spec.get("firewalls") or []:
            fw_id = _id(fw.get("firewallId") if isinstance(fw, dict) else fw, "firewallId")
            if fw_id not in st.firewalls:
                raise ApiError(400, f"No such firewall: {fw_id}")
            if st.firewalls[fw_id]["region"]["regionId"] != region:
                raise ApiError(400, f"Firewall {fw_id} is not in region {region}")
            firewall_ids.append(fw_id)
        network_id = None
        if spec.get("network") is not None:
            # Checked as the data center and the firewalls are: known, and in
            # the server's region.
            network_id = _ref(spec, "network", "networkId", "network.networkId")
            if network_id not in st.networks:
                raise ApiError(400, f"No such network: {network_id}")
            if st.networks[network_id]["region"]["regionId"] != region:
                raise ApiError(400, f"Network {network_id} is not in region {region}")
        if spec.get("subnet") is not None:
            # The emulated networks have no subnets (addNetwork makes none).
            subnet_id = _ref(spec, "subnet", "subnetId", "subnet.subnetId")
            raise ApiError(400, f"No such subnet: {subnet_id}")
        name = spec["name"]
        fail = (f"Launch of {name} failed: the cloud refused the request (emulated failure)"
                if name.startswith(self.args.fail_prefix) else None)

        def complete():
            private_ip = None
            if network_id is not None:
                private_ip = self._free_address(network_id)
            server_id = st.next_server
            st.next_server += 1
            prod = match[0]
            if private_ip is None:
                private_ip = f"10.1.{(server_id >> 8) & 255}.{server_id & 255}"
            st.servers[server_id] = {
                "serverId": server_id, "name": name, "description": spec["description"],
                "status": "PENDING", "providerId": f"i-{server_id:08x}",
                "providerProductId": prod["providerProductId"],
                "product": {"productId": prod["productId"]},
                "machineImage": {"machineImageId": image_id},
                "dataCenter": {"dataCenterId": dc_id}, "region": {"regionId": region},
                "cloud": CLOUD, "customer": CUSTOMER, "owningUser": {"userId": 54321},
                "owningGroups": [{"groupId": 9465}],
                "firewalls": [{"firewallId": f} for f in firewall_ids], "budget": budget,
                "platform": st.images[image_id]["platform"], "agentVersion": 17,
                "privateIpAddresses": [private_ip],
                "startDate": dcm_date(time.time()),
                "_running_at": time.time() + self.args.boot_seconds,
            }
            if spec.get("label"):
                st.servers[server_id]["label"] = spec["label"]
            if spec.get("keypair"):
                st.servers[server_id]["_keypair"] = spec["keypair"]
            if network_id is not None:
                st.servers[server_id]["network"] = {"networkId": network_id}
            return server_id

        job = st.new_job(f"Launch Server {name}", complete, fail)
        return 202, {"jobs": [dict(job)]}

    def _free_address(self, network_id):
        """The first host address of the network no server holds, skipping the
        first three as AWS VPC reserves them (router, DNS, future use)."""
        st = self.state
        net = st.networks.get(network_id)
        if net is None:  # removed while the launch job ran
            raise ApiError(400, f"No such network: {network_id}")
        taken = {ip for s in st.servers.values() for ip in s.get("privateIpAddresses", [])}
        hosts = ipaddress.IPv4Network(net["networkAddress"]).hosts()
        for i, host in enumerate(hosts):
            if i >= 3 and str(host) not in taken:
                return str(host)
        raise ApiError(400, f"Network {network_id} has no free address")

    def server_action(self, rid, query, body):
        st = self.state
        if rid is None:
            raise ApiError(400, "PUT needs a server id")
        server = st.servers.get(_id(rid, "serverId"))
        if server is None:
            raise ApiError(404, f"No such server: {rid}")
        if not isinstance(body, dict) or len(body) != 1:
            raise ApiError(400, "Expected one server operation")
        op = next(iter(body))
        args = _args_of(body, op)
        status = server["status"]
        if op == "describeServer":
            for key in ("name", "description", "label"):
                if key in args:
                    server[key] = args[key]
            return 204, None
        transitions = {  # op: (allowed from, while running, when done)
            "stop": ({"RUNNING"}, "STOPPING", "STOPPED"),
            "pause": ({"RUNNING"}, "PAUSING", "PAUSED"),
            "start": ({"STOPPED", "PAUSED"}, "PENDING", "RUNNING"),
        }
        if op not in transitions:
            raise ApiError(400, f"Unknown server operation: {op}")
        allowed, during, after = transitions[op]
        if status not in allowed:
            raise ApiError(409, f"Cannot {op} server {rid} while it is {status}")
        server["status"] = during

        def complete():
            server["status"] = after
            return ""

        job = st.new_job(f"{op.capitalize()} {rid}", complete)
        return 202, {"jobs": [dict(job)]}

    def terminate(self, rid, query, body):
        st = self.state
        if rid is None:
            raise ApiError(400, "DELETE needs a server id")
        server_id = _id(rid, "serverId")
        server = st.servers.get(server_id)
        if server is None:
            raise ApiError(404, f"No such server: {rid}")
        if "terminateAfter" in query:
            server["terminateAfter"] = query["terminateAfter"]
            return 204, None
        if server["status"] in ("TERMINATING",):
            raise ApiError(409, f"Server {rid} is already being terminated")
        server["status"] = "TERMINATING"

        def complete():
            st.servers.pop(server_id, None)
            for volume in st.volumes.values():
                if volume.get("server") == {"serverId": server_id}:
                    volume.pop("server")
                    volume.pop("deviceId", None)
            return ""

        job = st.new_job(f"Terminate {server_id}", complete)
        return 202, {"jobs": [dict(job)]}

    # Firewalls -----------------------------------------------------------
    def firewalls(self, rid, query, body):
        one = self._get(self.state.firewalls, rid, "firewalls", "firewall")
        if one:
            return 200, one
        items = self.state.firewalls.values()
        if "regionId" in query:
            region = _id(query["regionId"], "regionId")
            items = [f for f in items if f["region"]["regionId"] == region]
        return 200, {"firewalls": [_public(f) for f in items]}

    def add_firewall(self, rid, query, body):
        st = self.state
        spec = _args_of(body, "addFirewall")
        for field in ("name", "description"):
            if not isinstance(spec.get(field), str) or not spec[field]:
                raise ApiError(400, f"{field} is required")
        region = _ref(spec, "region", "regionId", "region.regionId")
        if region not in st.regions:
            raise ApiError(400, f"No such region: {region}")
        if "budget" not in spec or _id(spec["budget"], "budget") not in st.billing:
            raise ApiError(400, "budget must name a billing code")
        name = spec["name"]
        fail = (f"Creating firewall {name} failed (emulated failure)"
                if name.startswith(self.args.fail_prefix) else None)

        def complete():
            fw_id = st.next_firewall
            st.next_firewall += 1
            st.firewalls[fw_id] = {
                "firewallId": fw_id, "name": name, "description": spec["description"],
                "status": "ACTIVE", "providerId": f"sg-{fw_id:08x}", "region": {"regionId": region},
                "cloud": CLOUD, "customer": CUSTOMER, "budget": _id(spec["budget"], "budget"),
                "owningAccount": {"accountId": 16000}, "removable": True}
            if spec.get("label"):
                st.firewalls[fw_id]["label"] = spec["label"]
            return fw_id

        job = st.new_job(f"Create Firewall {name}", complete, fail)
        return 202, {"jobs": [dict(job)]}

    def delete_firewall(self, rid, query, body):
        st = self.state
        fw_id = _id(rid, "firewallId") if rid is not None else None
        if fw_id not in st.firewalls:
            raise ApiError(404, f"No such firewall: {rid}")
        in_use = [s["serverId"] for s in st.servers.values()
                  if {"firewallId": fw_id} in s.get("firewalls", [])]
        if in_use:
            raise ApiError(409, f"Firewall {fw_id} is in use by server {in_use[0]}")

        def complete():
            st.firewalls.pop(fw_id, None)
            for rule_id in [r for r, v in st.rules.items() if v["firewall"]["firewallId"] == fw_id]:
                st.rules.pop(rule_id)
            return ""

        job = st.new_job(f"Delete Firewall {fw_id}", complete)
        return 202, {"jobs": [dict(job)]}

    # Networks ------------------------------------------------------------
    def networks(self, rid, query, body):
        one = self._get(self.state.networks, rid, "networks", "network")
        if one:
            return 200, one
        items = list(self.state.networks.values())
        if "regionId" in query:
            region = _id(query["regionId"], "regionId")
            items = [n for n in items if n["region"]["regionId"] == region]
        if "dataCenterId" in query:
            dc = _id(query["dataCenterId"], "dataCenterId")
            items = [n for n in items if (n.get("dataCenter") or {}).get("dataCenterId") == dc]
        if str(query.get("activeOnly", "")).lower() == "true":
            items = [n for n in items if n["status"] == "ACTIVE"]
        return 200, {"networks": [_public(n) for n in items]}

    def add_network(self, rid, query, body):
        st = self.state
        spec = _args_of(body, "addNetwork")
        for field in ("name", "description", "networkAddress"):
            if not isinstance(spec.get(field), str) or not spec[field]:
                raise ApiError(400, f"{field} is required")
        try:
            cidr = ipaddress.IPv4Network(spec["networkAddress"], strict=True)
        except ValueError:
            raise ApiError(400, f"networkAddress {spec['networkAddress']} is not an IPv4 CIDR")
        region = _ref(spec, "region", "regionId", "region.regionId")
        if region not in st.regions:
            raise ApiError(400, f"No such region: {region}")
        if "budget" not in spec or _id(spec["budget"], "budget") not in st.billing:
            raise ApiError(400, "budget must name a billing code")
        servers = {}
        for field in ("dnsServers", "ntpServers"):
            value = spec.get(field, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ApiError(400, f"{field} must be a list of addresses")
            servers[field] = value
        name = spec["name"]
        fail = (f"Creating network {name} failed (emulated failure)"
                if name.startswith(self.args.fail_prefix) else None)

        def complete():
            net_id = st.next_network
            st.next_network += 1
            now = dcm_date(time.time())
            st.networks[net_id] = {
                "networkId": net_id, "name": name, "description": spec["description"],
                "status": "ACTIVE", "providerId": f"vpc-{net_id:08x}",
                "networkAddress": str(cidr), "networkType": "STANDARD",
                "region": {"regionId": region}, "cloud": CLOUD, "customer": CUSTOMER,
                "budget": _id(spec["budget"], "budget"), "account": {"accountId": 16000},
                "owningUser": {"userId": 12345}, "dnsServers": servers["dnsServers"],
                "ntpServers": servers["ntpServers"], "subnets": [], "removable": True,
                "flat": True, "canHaveSubnets": True, "allowSubnetCreation": False,
                "publiclyAddressable": False, "agentCommunication": "PUBLIC",
                "guid": f"/network/{net_id}", "createdTimestamp": now,
                "lastModifiedTimestamp": now}
            if spec.get("label"):
                st.networks[net_id]["label"] = spec["label"]
            return net_id

        job = st.new_job(f"Create Network {name}", complete, fail)
        return 202, {"jobs": [dict(job)]}

    def delete_network(self, rid, query, body):
        st = self.state
        net_id = _id(rid, "networkId") if rid is not None else None
        if net_id not in st.networks:
            raise ApiError(404, f"No such network: {rid}")
        in_use = [s["serverId"] for s in st.servers.values()
                  if (s.get("network") or {}).get("networkId") == net_id]
        if in_use:
            raise ApiError(409, f"Network {net_id} is in use by server {in_use[0]}")

        def complete():
            st.networks.pop(net_id, None)
            return ""

        job = st.new_job(f"Remove Network {net_id}", complete)
        return 202, {"jobs": [dict(job)]}

    def rules(self, rid, query, body):
        one = self._get(self.state.rules, rid, "rules", "firewall rule")
        if one:
            return 200, one
        if "firewallId" not in query:  # required (§6)
            raise ApiError(400, "firewallId is required")
        fw_id = _id(query["firewallId"], "firewallId")
        if fw_id not in self.state.firewalls:
            raise ApiError(404, f"No such firewall: {fw_id}")
        return 200, {"rules": [_public(r) for r in self.state.rules.values()
                               if r["firewall"]["firewallId"] == fw_id]}

    def add_rule(self, rid, query, body):
        st = self.state
        spec = _args_of(body, "addRule")
        fw_id = _id(spec.get("firewallId"), "firewallId")
        if fw_id not in st.firewalls:
            raise ApiError(404, f"No such firewall: {fw_id}")
        rule = {"firewallRuleId": st.next_rule, "firewall": {"firewallId": fw_id},
                "precedence": 0}
        for key, allowed in (("direction", {"INGRESS", "EGRESS"}),
                             ("permission", {"ALLOW", "DENY"}),
                             ("protocol", {"TCP", "UDP", "ICMP"}),
                             ("sourceType", {"CIDR", "GLOBAL", "VLAN", "VM"}),
                             ("destinationType", {"CIDR", "GLOBAL", "VLAN", "VM"})):
            value = spec.get(key)
            if value not in allowed:
                raise ApiError(400, f"{key} must be one of {sorted(allowed)}")
            rule[key] = value
        for key in ("source", "destination"):
            if not isinstance(spec.get(key), str) or not spec[key]:
                raise ApiError(400, f"{key} is required")
            rule[key] = spec[key]
            # A GLOBAL end is a firewall (Dasein's RuleTarget.getGlobal), by
            # its DCM id: it must be one the account has.
            if rule[f"{key}Type"] == "GLOBAL" and (
                    not spec[key].isdigit() or int(spec[key]) not in st.firewalls):
                raise ApiError(400, f"{key} {spec[key]} is not a firewall of the account")
        if rule["protocol"] != "ICMP":
            start, end = spec.get("startPort"), spec.get("endPort", spec.get("startPort"))
            if not isinstance(start, int) or not isinstance(end, int) or \
                    not 1 <= start <= end <= 65535:
                raise ApiError(400, "startPort and endPort must be a port range")
            rule["startPort"], rule["endPort"] = start, end
        st.rules[st.next_rule] = rule
        st.next_rule += 1
        # Rules are created synchronously: 201 with the new rule (§4 POST 201).
        return 201, {"rules": [_public(rule)]}

    def delete_rule(self, rid, query, body):
        rule_id = _id(rid, "firewallRuleId") if rid is not None else None
        if rule_id not in self.state.rules:
            raise ApiError(404, f"No such firewall rule: {rid}")
        del self.state.rules[rule_id]
        return 204, None


ROUTES = {
    ("GET", "geography/Region"): Emulator.regions,
    ("GET", "geography/DataCenter"): Emulator.datacenters,
    ("GET", "infrastructure/MachineImage"): Emulator.images,
    ("GET", "infrastructure/ServerProduct"): Emulator.products,
    ("GET", "infrastructure/Volume"): Emulator.volumes,
    ("POST", "infrastructure/Volume"): Emulator.add_volume,
    ("PUT", "infrastructure/Volume"): Emulator.volume_action,
    ("DELETE", "infrastructure/Volume"): Emulator.delete_volume,
    ("GET", "infrastructure/Server"): Emulator.servers,
    ("POST", "infrastructure/Server"): Emulator.launch,
    ("PUT", "infrastructure/Server"): Emulator.server_action,
    ("DELETE", "infrastructure/Server"): Emulator.terminate,
    ("GET", "network/Firewall"): Emulator.firewalls,
    ("POST", "network/Firewall"): Emulator.add_firewall,
    ("DELETE", "network/Firewall"): Emulator.delete_firewall,
    ("GET", "network/FirewallRule"): Emulator.rules,
    ("POST", "network/FirewallRule"): Emulator.add_rule,
    ("DELETE", "network/FirewallRule"): Emulator.delete_rule,
    ("GET", "network/Network"): Emulator.networks,
    ("POST", "network/Network"): Emulator.add_network,
    ("DELETE", "network/Network"): Emulator.delete_network,
    ("GET", "admin/Job"): Emulator.jobs,
    ("GET", "admin/BillingCode"): Emulator.billing_codes,
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "enstratus-emulator"

    def log_message(self, fmt, *args):
        if self.server.emulator.args.verbose:
            sys.stderr.write("enstratus-emulator: " + (fmt % args) + "\n")

    def _serve(self):
        emu = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        status, out, extra = 500, None, {}
        try:
            status, out, extra = emu.handle(self.command, self.path, self.headers, body)
        except ApiError as e:
            status, out = e.status, {"error": {"message": e.message}}
        except Exception as e:  # an emulator bug must still answer
            status, out = 500, {"error": {"message": f"emulator error: {type(e).__name__}"}}
        payload = b"" if out is None else json.dumps(out).encode()
        with emu.state.lock:
            emu.state.request_log.append({
                "method": self.command, "path": urllib.parse.urlsplit(self.path).path,
                "query": urllib.parse.urlsplit(self.path).query,
                "access": self.headers.get("x-esauth-access", ""),
                "userAgent": self.headers.get("User-Agent", ""),
                "contentType": self.headers.get("Content-Type", ""),
                "status": status})
            del emu.state.request_log[:-2000]
        self.send_response(status)
        for key, value in extra.items():
            self.send_header(key, value)
        if out is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _write_ready_file(path, line):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(line + "\n")
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="enStratus / DCM API emulator for tests.")
    ap.add_argument("--listen", default="127.0.0.1:0", help="loopback HOST:PORT (port 0 picks one)")
    ap.add_argument("--keys", nargs="*", default=["abcdefg:gfedcba"],
                    help="accepted API key pairs ACCESS:SECRET")
    ap.add_argument("--api-version", default=API_VERSION)
    ap.add_argument("--job-seconds", type=float, default=0.3)
    ap.add_argument("--boot-seconds", type=float, default=0.3)
    ap.add_argument("--fail-prefix", default="fail-",
                    help="launches/firewalls named with this prefix end in a job ERROR")
    ap.add_argument("--skew-seconds", type=float, default=900)
    ap.add_argument("--ready-file")
    ap.add_argument("--max-lifetime", type=float, default=900)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    if host not in ("127.0.0.1", "localhost", "::1"):
        ap.error("the emulator listens on loopback only")
    for pair in args.keys:
        if ":" not in pair:
            ap.error("--keys takes ACCESS:SECRET pairs")

    httpd = Server((host, int(port)), Handler)
    httpd.emulator = Emulator(args)
    parent = os.getppid()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    port = httpd.server_address[1]
    line = f"READY url=http://127.0.0.1:{port}/api/enstratus/{args.api_version} port={port}"
    print(line, flush=True)
    if args.ready_file:
        _write_ready_file(args.ready_file, line)
    deadline = time.monotonic() + args.max_lifetime if args.max_lifetime > 0 else None
    while not stop.wait(0.2):
        if os.getppid() != parent:  # whoever started us is gone
            break
        if deadline is not None and time.monotonic() > deadline:
            break
    httpd.shutdown()
    httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
