#!/usr/bin/env python3
"""Nimbus Phantom emulator for tests (Python 3, standard library only).

Serves on one loopback port both APIs of shared/protocols/phantom.md:

  /api/dev/...   the REST "dev" API (A): POST /token (username/password →
                 user id + token; HTTP 200 `success:false` on failure, as the
                 pinned django-tokenapi 0.2.0 does), then HTTP Basic
                 `<userId>:<token>` or user/token parameters; 403
                 "Authorization Required" otherwise. Sites, site credentials
                 (list/add), launch configurations and domains (read-only
                 views of the same state as the query API).
  /              the AWS Auto Scaling-compatible query API (B) in Phantom's
                 dialect: SigV4 checked the way pyhantom checks it (the
                 Authorization header split on whitespace, host without port,
                 the raw query string for GET, the body rebuilt from the
                 decoded parameters for POST, 15-minute window); answers in
                 the 2009-05-15 namespace with ResponseMetadata first,
                 NextToken under the root, `x-amzn-RequestId`; errors as a
                 status line "<code> <ErrorCode>" and a text/plain body.

Semantics (B.6): a launch configuration is `<dt>@<site>`; a group is an EPU
domain whose min = max = N; SetDesiredCapacity(n) sets min = max = n;
instances go 200-REQUESTED → 400-PENDING → 600-RUNNING over
--converge-delay seconds, on the first site of the group's `clouds` tag.
Describes list at most min(MaxRecords, --page-limit) items by name; NextToken
is the name of the first item not returned (the in-memory back-end's rule,
B.8). SigV2 query signing is not implemented (boto 2 ≥ 2.6 signs Auto
Scaling with SigV4).

  python3 phantom_emulator.py [--listen 127.0.0.1:0] [--user U:P:AK:SK ...]
      [--sites hotel,sierra,ec2] [--page-limit 100] [--converge-delay 0.3]
      [--ready-file PATH] [--max-lifetime 900] [--verbose]

Prints `READY url=http://127.0.0.1:PORT` once listening (and writes it to
--ready-file atomically). Stops after --max-lifetime seconds, on
SIGTERM/SIGINT, and when its parent goes away. Loopback only.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import http.server
import json
import os
import signal
import socketserver
import sys
import threading
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape

NS = "http://autoscaling.amazonaws.com/doc/2009-05-15/"
DEFAULT_USER = "alice:wonderland:AKPHANTOM0001:phantom-secret-key-0001"
STATE_STEPS = ((0.0, "200-REQUESTED"), (0.5, "400-PENDING"), (1.0, "600-RUNNING"))
UNRESERVED = "-_.~"

EXPLANATIONS = {
    "InvalidParameterValue": "A bad or out-of-range value was supplied for the input parameter.",
    "MissingParameter": "An input parameter that is mandatory for processing the request is not supplied.",
    "IncompleteSignature": "The request signature does not conform to AWS standards.",
    "RequestExpired": "The request reached the service more than 15 minutes after the date stamp on the request or more than 15 minutes after the request expiration date (such as for pre-signed URLs), or the date stamp on the request is more than 15 minutes in the future.",
    "InvalidClientTokenId": "The X.509 certificate or AWS access key ID provided does not exist in our records.",
    "MissingAuthenticationToken": "The request must contain either a valid (registered) AWS access key ID or X.509 certificate.",
    "InternalFailure": "The request processing has failed because of an unknown error, exception or failure.",
}
STATUS = {"InvalidClientTokenId": 403, "MissingAuthenticationToken": 403, "InternalFailure": 500}


class QueryError(Exception):
    def __init__(self, code, detail=""):
        super().__init__(code)
        self.code, self.detail = code, detail
        self.status = STATUS.get(code, 400)


def enc(text):
    return urllib.parse.quote(text, safe=UNRESERVED)


def now_iso():
    return datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class User:
    def __init__(self, number, spec):
        self.id = number
        self.username, self.password, self.access_key, self.secret_key = spec.split(":", 3)
        self.credentials = {}  # site -> cloud credentials (REST)


class State:
    """Everything both APIs see, behind one lock."""

    def __init__(self, users, sites, converge_delay, page_limit):
        self.lock = threading.Lock()
        self.users = users
        self.sites = sites
        self.delay = converge_delay
        self.page_limit = page_limit
        self.secret = os.urandom(16).hex()
        self.lcs = {}      # (user id, dt) -> {site: lc dict}
        self.groups = {}   # (user id, name) -> group dict

    # Instances ---------------------------------------------------------
    def instance_state(self, inst):
        age = time.monotonic() - inst["started"]
        state = STATE_STEPS[0][1]
        for fraction, name in STATE_STEPS:
            if age >= fraction * self.delay:
                state = name
        if state == "600-RUNNING" and not inst["iaas_id"]:
            inst["iaas_id"] = "i-" + uuid.uuid4().hex[:8]
        return state

    def resize(self, group, n):
        group["min"] = group["max"] = n
        alive = group["instances"]
        # EPU terminates the newest VMs first; they leave the list at once.
        while len(alive) > n:
            alive.pop()
        while len(alive) < n:
            alive.append({"id": str(uuid.uuid4()), "iaas_id": "", "started": time.monotonic(),
                          "site": group["sites"][0] if group["sites"] else ""})


def page(items, params, state):
    """(page, next token) by name, as pyhantom's in-memory back-end."""
    items = sorted(items, key=lambda x: x[0])
    token = params.get("NextToken", "")
    if token:
        items = [x for x in items if x[0] >= token]
    limit = state.page_limit
    if params.get("MaxRecords"):
        limit = min(limit, int(params["MaxRecords"]))  # int() garbage → 500, as Phantom
    if len(items) > limit:
        return items[:limit], items[limit][0]
    return items, ""


def members(params, prefix):
    out, n = [], 1
    while f"{prefix}.member.{n}" in params:
        out.append(params[f"{prefix}.member.{n}"])
        n += 1
    return out


def required(params, name):
    if name not in params:
        raise QueryError("MissingParameter", f"parameter {name} missing")
    return params[name]


# ---------------------------------------------------------------------------
# Query API actions.

def lc_xml(name, lc):
    return ("<member>"
            f"<LaunchConfigurationName>{escape(name)}</LaunchConfigurationName>"
            f"<LaunchConfigurationARN>{escape(lc['arn'])}</LaunchConfigurationARN>"
            f"<ImageId>{escape(lc['image'])}</ImageId><InstanceType>{escape(lc['type'])}</InstanceType>"
            "<KeyName>phantomkey</KeyName>"
            f"<CreatedTime>{lc['created']}</CreatedTime><UserData>{escape(lc['user_data'])}</UserData>"
            "<KernelId/><RamdiskId/><SecurityGroups/><BlockDeviceMappings/>"
            "<InstanceMonitoring><Enabled>False</Enabled></InstanceMonitoring></member>")


def instance_xml(state, group, inst, wrap="member"):
    lifecycle = state.instance_state(inst)
    health = "Healthy" if int(lifecycle.split("-")[0]) <= 600 else "Unhealthy"
    return (f"<{wrap}><InstanceId>{inst['iaas_id']}</InstanceId>"
            f"<AutoScalingGroupName>{escape(group['name'])}</AutoScalingGroupName>"
            f"<AvailabilityZone>{escape(inst['site'])}</AvailabilityZone>"
            f"<LaunchConfigurationName>{escape(group['dt'])}</LaunchConfigurationName>"
            f"<LifecycleState>{lifecycle}</LifecycleState><HealthStatus>{health}</HealthStatus></{wrap}>")


def group_xml(state, group):
    return ("<member>"
            f"<AutoScalingGroupName>{escape(group['name'])}</AutoScalingGroupName>"
            f"<AutoScalingGroupARN>{escape(group['arn'])}</AutoScalingGroupARN>"
            f"<LaunchConfigurationName>{escape(group['dt'])}</LaunchConfigurationName>"
            f"<MinSize>{group['min']}</MinSize><MaxSize>{group['max']}</MaxSize>"
            f"<DesiredCapacity>{group['min']}</DesiredCapacity>"
            f"<CreatedTime>{group['created']}</CreatedTime><Cooldown>0</Cooldown>"
            "<HealthCheckGracePeriod>0</HealthCheckGracePeriod><HealthCheckType/>"
            "<AvailabilityZones/><LoadBalancerNames/><EnabledMetrics/><SuspendedProcesses/><Tags/>"
            "<PlacementGroup/><VPCZoneIdentifier/><Status/>"
            "<Instances>" + "".join(instance_xml(state, group, i) for i in group["instances"]) +
            "</Instances></member>")


def act(state, user, action, p):
    """Returns (root element name, inner XML, NextToken or "")."""
    uid = user.id
    if action == "CreateLaunchConfiguration":
        name = required(p, "LaunchConfigurationName")
        image, itype = required(p, "ImageId"), required(p, "InstanceType")
        if "@" not in name:
            raise QueryError("InvalidParameterValue",
                             f"The name {name} is not in the proper format.  It must be <dt name>@<site name>")
        dt, site = name.split("@", 1)
        if site not in state.sites:
            # (assumed) DTRS refuses a mapping for a site it does not know.
            raise QueryError("InvalidParameterValue", f"The site {site} is not known")
        user_data = p.get("UserData", "")
        try:
            base64.b64decode(user_data, validate=True)
        except ValueError:
            raise QueryError("InvalidParameterValue", "UserData must be base64 encoded")
        mappings = state.lcs.setdefault((uid, dt), {})
        if site in mappings:
            raise QueryError("InvalidParameterValue", "Name already in use")
        mappings[site] = {"image": image, "type": itype, "user_data": user_data,
                          "key": p.get("KeyName", ""), "created": now_iso(),
                          "arn": f"arn:phantom:autoscaling:AZ:000000000000:launchConfiguration:{uuid.uuid4()}:{name}/launchConfigurationName"}
        return None
    if action == "DescribeLaunchConfigurations":
        wanted = set(members(p, "LaunchConfigurationNames"))
        items = [(f"{dt}@{site}", lc) for (owner, dt), sites in state.lcs.items() if owner == uid
                 for site, lc in sites.items()]
        if wanted:
            items = [x for x in items if x[0] in wanted]
        got, token = page(items, p, state)
        return ("<DescribeLaunchConfigurationsResult><LaunchConfigurations>" +
                "".join(lc_xml(n, lc) for n, lc in got) +
                "</LaunchConfigurations></DescribeLaunchConfigurationsResult>", token)
    if action == "DeleteLaunchConfiguration":
        name = required(p, "LaunchConfigurationName")
        dt, _, site = name.partition("@")
        mappings = state.lcs.get((uid, dt), {})
        if site not in mappings:
            raise QueryError("InvalidParameterValue", f"The name {name} does not exist")
        del mappings[site]
        if not mappings:  # the last mapping takes the DT with it
            del state.lcs[(uid, dt)]
        return None
    if action == "CreateAutoScalingGroup":
        name = required(p, "AutoScalingGroupName")
        lc = required(p, "LaunchConfigurationName")
        min_size, max_size = int(required(p, "MinSize")), int(required(p, "MaxSize"))
        if not members(p, "AvailabilityZones"):
            raise QueryError("MissingParameter", "parameter AvailabilityZones missing")
        dt = lc.split("@", 1)[0]
        if (uid, dt) not in state.lcs:
            raise QueryError("InvalidParameterValue", f"The launch configuration {lc} does not exist")
        if (uid, name) in state.groups:
            raise QueryError("InvalidParameterValue", "Name already in use")
        tags, n = {}, 1
        while f"Tags.member.{n}.Key" in p:
            for field in ("Value", "PropagateAtLaunch", "ResourceId", "ResourceType"):
                if f"Tags.member.{n}.{field}" not in p:  # pyhantom ends in a 500 here
                    raise QueryError("InternalFailure", "")
            tags[p[f"Tags.member.{n}.Key"]] = p[f"Tags.member.{n}.Value"]
            n += 1
        definition = tags.pop("PHANTOM_DEFINITION", "single_site_n_preserving")
        if definition not in ("single_site_n_preserving", "multi_site_n_preserving",
                              "error_overflow_n_preserving", "sensor_engine"):
            raise QueryError("InvalidParameterValue", f"Unknown definition {definition}")
        sites = [c.split(":")[0] for c in tags.get("clouds", "").split(",") if c]
        if not sites:
            sites = sorted(state.lcs[(uid, dt)])
        group = {"name": name, "dt": dt, "min": 0, "max": 0, "sites": sites, "instances": [],
                 "created": now_iso(), "definition": definition,
                 "arn": f"arn:phantom:autoscaling:AZ:000000000000:launchConfiguration:{uuid.uuid4()}:{name}/autoScalingGroupName"}
        # EPU preserves N = MinSize = MaxSize; DesiredCapacity is ignored (B.6).
        state.resize(group, min_size)
        group["max"] = max_size
        state.groups[(uid, name)] = group
        return None
    if action == "DescribeAutoScalingGroups":
        wanted = set(members(p, "AutoScalingGroupNames"))
        items = [(g["name"], g) for (owner, _), g in state.groups.items() if owner == uid]
        if wanted:
            items = [x for x in items if x[0] in wanted]
        got, token = page(items, p, state)
        return ("<DescribeAutoScalingGroupsResult><AutoScalingGroups>" +
                "".join(group_xml(state, g) for _, g in got) +
                "</AutoScalingGroups></DescribeAutoScalingGroupsResult>", token)
    if action == "DeleteAutoScalingGroup":
        name = required(p, "AutoScalingGroupName")
        if (uid, name) not in state.groups:
            # The EPU back-end fails inside EPUM: an InternalFailure (B.5).
            raise QueryError("InternalFailure", "")
        del state.groups[(uid, name)]
        return None
    if action == "SetDesiredCapacity":
        name = required(p, "AutoScalingGroupName")
        n = int(required(p, "DesiredCapacity"))
        group = state.groups.get((uid, name))
        if group is None:
            raise QueryError("InternalFailure", "")
        state.resize(group, n)
        return None
    if action == "DescribeAutoScalingInstances":
        rows = [(i["iaas_id"] or i["id"], g, i) for (owner, _), g in state.groups.items()
                if owner == uid for i in g["instances"]]
        wanted = set(members(p, "InstanceIds"))
        if wanted:
            rows = [r for r in rows if r[0] in wanted]
        got, token = page([(r[0], r) for r in rows], p, state)
        # Root without "Response", no Result wrapper (B.4 quirk).
        return ("__root__DescribeAutoScalingInstances",
                "<AutoScalingInstances>" + "".join(instance_xml(state, g, i) for _, (_, g, i) in got) +
                "</AutoScalingInstances>", token)
    raise KeyError(action)


# ---------------------------------------------------------------------------
# SigV4 as pyhantom verifies it.

def _hmac(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def verify_sigv4(state, method, raw_query, params, headers):
    auth = headers.get("Authorization", "")
    date = headers.get("X-Amz-Date", "")
    if not auth:
        raise QueryError("MissingAuthenticationToken", "")
    if not date:
        raise QueryError("MissingParameter", "parameter X-Amz-Date missing")
    parts = auth.split()
    if len(parts) < 2 or parts[0] != "AWS4-HMAC-SHA256":
        raise QueryError("IncompleteSignature", "")
    # pyhantom looks only at the second whitespace-separated token, so
    # "Credential=..., SignedHeaders=..." (with spaces) does not parse.
    fields = {}
    for item in parts[1].split(","):
        key, _, value = item.partition("=")
        fields[key] = value
    if not all(k in fields for k in ("Credential", "SignedHeaders", "Signature")):
        raise QueryError("IncompleteSignature", "")
    access_key, _, scope = fields["Credential"].partition("/")
    user = next((u for u in state.users if u.access_key == access_key), None)
    if user is None:
        raise QueryError("InvalidClientTokenId", "")
    try:
        when = datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ")
    except ValueError:
        raise QueryError("IncompleteSignature", "")
    if abs((datetime.datetime.utcnow() - when).total_seconds()) > 15 * 60:
        raise QueryError("RequestExpired", "")
    canonical_headers = ""
    for name in fields["SignedHeaders"].split(";"):
        value = headers.get(name, "")
        if name == "host":
            value = value.split(":")[0]  # the port is stripped before checking
        canonical_headers += f"{name}:{' '.join(value.split())}\n"
    if method == "GET":
        query, payload = raw_query, b""
    else:
        query = ""
        payload = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items())
                           if k != "Signature").encode()
    canonical = "\n".join([method, "/", query, canonical_headers, fields["SignedHeaders"],
                           hashlib.sha256(payload).hexdigest()])
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", date, scope,
                                hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + user.secret_key).encode()
    for part in scope.split("/"):
        key = _hmac(key, part)
    if not hmac.compare_digest(hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest(),
                               fields["Signature"]):
        raise QueryError("IncompleteSignature", "")
    return user


# ---------------------------------------------------------------------------
# REST API.

def make_token(state, user, day=None):
    day = int(time.time() // 86400) if day is None else day
    digest = hmac.new(state.secret.encode(), f"{user.id}:{user.password}:{day}".encode(),
                      hashlib.sha1).hexdigest()[:20]
    return f"{_base36(day)}-{digest}"


def _base36(n):
    chars, out = "0123456789abcdefghijklmnopqrstuvwxyz", ""
    while True:
        n, r = divmod(n, 36)
        out = chars[r] + out
        if n == 0:
            return out


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CherryPy/3.2.2"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("phantom-emulator: " + (fmt % args) + "\n")

    def _send(self, status, body, content_type, reason=None, extra=()):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status, reason)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        body = self._body()
        try:
            if url.path.startswith("/api/dev/") or url.path == "/api/dev":
                self._rest(method, url, body)
            elif url.path == "/":
                self._query(method, url, body)
            else:
                self._send(404, "Not Found", "text/plain")
        except BrokenPipeError:
            pass

    # Query API -----------------------------------------------------------
    def _query(self, method, url, body):
        state = self.server.state
        request_id = str(uuid.uuid4())
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if method == "POST":
            params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                                 keep_blank_values=True))
        try:
            with state.lock:
                user = verify_sigv4(state, method, url.query, params, self.headers)
                action = params.get("Action")
                if not action:
                    raise QueryError("InvalidParameterValue", "Action missing")
                try:
                    result = act(state, user, action, params)
                except KeyError:
                    self._send(404, f"404 Not Found\n\nThe resource could not be found.\n\nNo action {action}\n",
                               "text/plain; charset=UTF-8")
                    return
                except ValueError:
                    raise QueryError("InternalFailure", "")
        except QueryError as err:
            text = f"{err.status} {err.code}\n\n{EXPLANATIONS.get(err.code, '')}\n\n{err.detail}\n"
            self._send(err.status, text, "text/plain; charset=UTF-8", reason=err.code,
                       extra=[("x-amzn-RequestId", request_id)])
            return
        meta = f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        if result is None:  # mutations: pretty-printed, metadata only
            xml = (f'<{action}Response xmlns="{NS}">\n\t<ResponseMetadata>\n\t\t<RequestId>{request_id}'
                   f'</RequestId>\n\t</ResponseMetadata>\n</{action}Response>')
        else:
            if len(result) == 3:
                root, inner, token = result[0].replace("__root__", ""), result[1], result[2]
            else:
                root, (inner, token) = f"{action}Response", result
            next_token = f"<NextToken>{escape(token)}</NextToken>" if token else ""
            xml = f'<{root} xmlns="{NS}">{meta}{inner}{next_token}</{root}>'
        self._send(200, xml, "text/html; charset=UTF-8", extra=[("x-amzn-RequestId", request_id)])

    # REST API ------------------------------------------------------------
    def _rest_user(self, url, body):
        state = self.server.state
        user_id = token = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user_id, _, token = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                pass
        if token is None:
            q = dict(urllib.parse.parse_qsl(url.query))
            user_id, token = q.get("user"), q.get("token")
        for user in state.users:
            if str(user.id) == str(user_id) and token and hmac.compare_digest(
                    make_token(state, user), token):
                return user
        return None

    def _json(self, status, obj):
        self._send(status, json.dumps(obj), "application/javascript")

    def _rest(self, method, url, body):
        state = self.server.state
        path = url.path[len("/api/dev"):].rstrip("/") or "/"
        if path == "/token":
            if method != "POST":
                return self._json(200, {"success": False, "errors": "Must access via a POST request."})
            form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
            if "username" not in form or "password" not in form:
                return self._json(200, {"success": False,
                                        "errors": "Must include 'username' and 'password' as POST parameters."})
            for user in state.users:
                if user.username == form["username"] and user.password == form["password"]:
                    return self._json(200, {"token": make_token(state, user), "user": user.id,
                                            "success": True})
            # django-tokenapi 0.2.0 drops the status code: HTTP 200 (A.1).
            return self._json(200, {"success": False,
                                    "errors": "Unable to log you in, please try again."})
        m = path.startswith("/token/")
        if m:
            _, _, tok, uid = path.split("/", 3)
            uid = uid[:-5] if uid.endswith(".json") else uid
            ok = any(str(u.id) == uid and make_token(state, u) == tok for u in state.users)
            return self._json(200, {"success": True} if ok else
                              {"success": False, "errors": "Token did not match user."})
        user = self._rest_user(url, body)
        if user is None:
            return self._send(403, "Authorization Required", "text/html")
        with state.lock:
            if path == "/sites" and method == "GET":
                return self._json(200, [self._site(s) for s in state.sites])
            if path.startswith("/sites/") and method == "GET":
                site = path.split("/")[2]
                if site not in state.sites:
                    return self._send(404, f"Site {site} not found", "text/plain")
                return self._json(200, self._site(site))
            if path == "/credentials/sites":
                if method == "GET":
                    return self._json(200, [dict(c) for c in user.credentials.values()])
                if method == "POST":
                    try:
                        req = json.loads(body or b"null")
                    except ValueError:
                        return self._send(400, "Bad JSON", "text/plain")
                    missing = [k for k in ("id", "access_key", "secret_key", "key_name")
                               if not isinstance(req, dict) or k not in req]
                    if missing:
                        return self._send(400, f"Missing parameters: {', '.join(missing)}", "text/plain")
                    if req["id"] not in state.sites:
                        return self._send(400, f"{req['id']} doesn't seem to exist...", "text/plain")
                    cred = {k: req[k] for k in ("id", "access_key", "secret_key", "key_name")}
                    cred["uri"] = f"/api/dev/credentials/sites/{req['id']}"
                    user.credentials[req["id"]] = cred
                    return self._json(201, cred)
            if path == "/launchconfigurations" and method == "GET":
                out = []
                for (owner, dt), sites in sorted(state.lcs.items()):
                    if owner != user.id:
                        continue
                    out.append({"id": dt, "name": dt, "owner": user.username,
                                "cloud_params": {s: {"image_id": lc["image"], "instance_type": lc["type"],
                                                     "max_vms": -1, "common": True, "rank": i + 1}
                                                 for i, (s, lc) in enumerate(sorted(sites.items()))},
                                "contextualization_method": "user_data" if any(
                                    lc["user_data"] for lc in sites.values()) else "none",
                                "uri": f"/api/dev/launchconfigurations/{dt}"})
                return self._json(200, out)
            if path == "/domains" and method == "GET":
                return self._json(200, [{"id": g["arn"].split(":")[-2], "name": g["name"],
                                         "de_name": "multicloud", "lc_name": g["dt"],
                                         "vm_count": g["min"], "monitor_sensors": "",
                                         "monitor_domain_sensors": "", "sensor_data": {}}
                                        for (owner, _), g in sorted(state.groups.items())
                                        if owner == user.id])
        self._send(405 if method != "GET" else 404, "Not supported by the emulator", "text/plain")

    def _site(self, site):
        return {"id": site, "instance_types": ["m1.small", "m1.large", "m1.xlarge"],
                "credentials": f"/api/dev/credentials/sites/{site}", "uri": f"/api/dev/sites/{site}"}


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--user", action="append", help="USERNAME:PASSWORD:ACCESS_KEY:SECRET_KEY")
    ap.add_argument("--sites", default="hotel,sierra,ec2")
    ap.add_argument("--page-limit", type=int, default=100)
    ap.add_argument("--converge-delay", type=float, default=0.3)
    ap.add_argument("--ready-file")
    ap.add_argument("--max-lifetime", type=float, default=900)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1"):
        ap.error("--listen must be a loopback address")
    users = [User(i + 1, spec) for i, spec in enumerate(args.user or [DEFAULT_USER])]
    state = State(users, [s for s in args.sites.split(",") if s], args.converge_delay,
                  max(1, args.page_limit))
    server = Server((host, int(port)), Handler)
    server.state, server.verbose = state, args.verbose
    line = f"READY url=http://{host}:{server.server_address[1]}"
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(line + "\n")
        os.replace(tmp, args.ready_file)
    print(line, flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    parent = os.getppid()
    deadline = time.monotonic() + args.max_lifetime if args.max_lifetime > 0 else None
    while not stop.wait(0.2):
        if os.getppid() != parent:
            break
        if deadline is not None and time.monotonic() > deadline:
            break
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
