#!/usr/bin/env python3
"""CloudSigma API 2.0 emulator for tests (Python 3, standard library only).

Follows the emulator checklist of shared/protocols/cloudsigma.md (§12) and
the shapes of the recorded dumps in shared/fixtures/cloudsigma:

  * REST under /api/2.0/: servers, drives, libdrives, locations,
    capabilities, accounts/action/?do=authenticate_asynchronous; paths with
    or without the trailing slash; `limit` (default 20, 0 = all) and
    `offset`, the `meta` envelope, short objects on the plain list and full
    ones on /detail/, the `fields=` filter, exact `name=` and `uuid=`.
  * Basic auth on every /api/2.0/ path (401 with an error list otherwise).
  * Status transitions that take time: a drive is `creating` then
    `unmounted` (clones: `cloning_dst`), `mounted` when a server lists it;
    a server `starting` then `running`, `stopping` then `stopped`.
    Deletes answer 204 and the object answers 404 after a delay.
  * Errors as CloudSigma's list: [{"error_point","error_type","error_message"}].
  * A websocket at /websocket (RFC 6455, server side, text frames only):
    the client authenticates with the `async_auth` cookie from
    authenticate_asynchronous; every change of a drive or a server is pushed
    as {"resource_type","resource_uri"} (and, every other frame, "object").
  * Subscriptions (§9): POST /subscriptions/ with resource `vlan` or `ip`
    (amount "1") buys a VLAN or a static IP (its `subscribed_object`);
    `?do=auto_renew` with {"auto_renew": bool} sets renewal and answers the
    subscription [uncertain: that action's body and answer are not in the
    dumps]. A VLAN or IP
    disappears only when its subscription expires (nothing deletes it);
    POST /emulator/expire-subscriptions ends every subscription that does
    not renew, as if its end_time had passed. vlans and ips (§7): list,
    detail, get, PUT of meta only; `servers` / `server` follow the servers'
    NICs; /ips/ also lists running servers' DHCP addresses (no
    subscription). keypairs: list, detail, get, POST (name, public_key; fingerprint
    computed), PUT (name, meta), DELETE.
  * Firewall policies (fwpolicies.rst and its dumps in cloudsigma-docs up to
    467c683^, which removed the decommissioned feature): list (short
    objects: meta, name, owner, resource_uri, uuid), detail, get, POST (an
    empty object is a policy without rules), PUT (name, meta, rules; the
    rest is read only), DELETE. Rules are checked against the schema:
    action accept|drop and direction in|out|both required, ip_proto tcp|udp
    or null, IPs an IPv4 address or CIDR, ports "22" or "1:1024", either
    with an optional "!"; every absent field is answered as null and an IP
    without a prefix as /32 (the dump's "23" came back "23.0.0.0/32"). A
    NIC's `firewall_policy` must name a policy (shown as a reference) and the
    policy's `servers` follow the servers' NICs. A policy used by a server
    that is not stopped cannot be deleted [uncertain: the documentation
    says so, the error's shape is not recorded; answered as 403
    permission "... in state ..."].
  * Servers' NICs (§5.4): a `vlan` must be the account's VLAN and not be
    combined with ip_v4_conf; a static `ip` must be the account's and not be
    on another server; NICs are matched by `mac` (kept when given, new when
    not). `pubkeys` must name the account's keypairs (shown as references).
  * Test control outside the API: POST /emulator/drop-websockets closes every
    websocket (clients must reconnect); POST /emulator/websockets with
    {"refuse": true} also closes them and answers every new websocket
    handshake 503 until {"refuse": false} (a websocket cut while REST works).

Run as a program:

  python3 cloudsigma_emulator.py [--listen 127.0.0.1:0] [--username U]
      [--password P] [--transition-delay 0.3] [--delete-delay 0.3]
      [--ready-file PATH] [--max-lifetime 900] [--verbose]

Once listening it prints `READY api=http://HOST:PORT/api/2.0/
ws=ws://HOST:PORT/websocket` to stdout and, with --ready-file, writes the
same line to that file atomically. It stops after --max-lifetime seconds,
on SIGTERM/SIGINT, and when its parent process goes away.

Thread-safety: one lock guards all state; each HTTP connection has its own
thread; one engine thread applies timed transitions.
"""

import argparse
import base64
import collections
import copy
import hashlib
import heapq
import http.server
import json
import os
import queue
import re
import secrets
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
import uuid as uuidlib

API_PREFIX = "/api/2.0"
DEFAULT_LIMIT = 20  # `default_limit` of every schema in the dumps
OWNER_UUID = "5b4a69a3-8e78-4c45-a8ba-8b13f0895e23"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3

# Keys of the short objects of a plain list (§3).
SHORT_KEYS = {
    "servers": ("uuid", "resource_uri", "owner", "name", "status", "runtime"),
    "drives": ("uuid", "resource_uri", "owner", "status"),
    "libdrives": ("uuid", "resource_uri", "owner", "status", "name"),
    "fwpolicies": ("uuid", "resource_uri", "owner", "name", "meta"),
}

FW_RULE_KEYS = ("action", "comment", "direction", "dst_ip", "dst_port", "ip_proto", "src_ip",
                "src_port")
_FW_PORTS = re.compile(r"!?([0-9]{1,5})(?::([0-9]{1,5}))?")


def _fw_ip(value):
    """An IP field of a rule as CloudSigma stores it: "!"? + IPv4 CIDR, an
    address alone as /32, a short address padded with zeros ("23" →
    "23.0.0.0/32", as the recorded create shows). None when invalid."""
    neg = value.startswith("!")
    text = value[1:] if neg else value
    address, _, prefix = text.partition("/")
    parts = address.split(".")
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() and int(p) <= 255 for p in parts):
        return None
    parts += ["0"] * (4 - len(parts))
    if prefix and (not prefix.isdigit() or int(prefix) > 32):
        return None
    return "%s%s/%s" % ("!" if neg else "", ".".join(str(int(p)) for p in parts),
                        int(prefix) if prefix else 32)


def _fw_rules(items):
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(r, dict) for r in items):
        raise ApiError(400, "validation", "rules must be a list of objects", "rules")
    out = []
    for rule in items:
        rule = {k: rule.get(k) for k in FW_RULE_KEYS}
        if rule["action"] not in ("accept", "drop"):
            raise ApiError(400, "validation", "action must be accept or drop", "rules")
        if rule["direction"] not in ("in", "out", "both"):
            raise ApiError(400, "validation", "direction must be in, out or both", "rules")
        if rule["ip_proto"] not in (None, "tcp", "udp"):
            raise ApiError(400, "validation", "ip_proto must be tcp or udp", "rules")
        for key in ("src_ip", "dst_ip"):
            if rule[key] is not None:
                ip = _fw_ip(rule[key]) if isinstance(rule[key], str) else None
                if ip is None:
                    raise ApiError(400, "validation", "Invalid IP address %r" % rule[key],
                                   "rules")
                rule[key] = ip
        for key in ("src_port", "dst_port"):
            value = rule[key]
            m = _FW_PORTS.fullmatch(value) if isinstance(value, str) else None
            if value is not None and (m is None or not all(
                    1 <= int(p) <= 65535 for p in m.groups() if p is not None)):
                raise ApiError(400, "validation", "Invalid port %r" % value, "rules")
        if rule["comment"] is not None and not isinstance(rule["comment"], str):
            raise ApiError(400, "validation", "comment must be a string", "rules")
        out.append(rule)
    return out

LIBDRIVES = [
    {"name": "Debian 12 Server", "os": "linux", "arch": "64", "distribution": "Debian",
     "version": "12", "media": "disk", "size": 10737418240, "image_type": "preinst",
     "description": "Debian 12 (bookworm), 64bit"},
    {"name": "Ubuntu 22.04 Install CD", "os": "linux", "arch": "64", "distribution": "Ubuntu",
     "version": "22.04", "media": "cdrom", "size": 2147483648, "image_type": "install",
     "description": "Ubuntu 22.04 LTS installation CD"},
]


class ApiError(Exception):
    def __init__(self, status, error_type, message, point=None):
        super().__init__(message)
        self.status, self.error_type, self.message, self.point = (status, error_type, message,
                                                                   point)

    def body(self):
        return [{"error_point": self.point, "error_type": self.error_type,
                 "error_message": self.message}]


def _notexist(uuid):
    return ApiError(404, "notexist", "Object with uuid %s does not exist" % uuid)


def _ref(resource, uuid):
    return {"resource_uri": "%s/%s/%s/" % (API_PREFIX, resource, uuid), "uuid": uuid}


def _required(obj, fields):
    for field in fields:
        if obj.get(field) in (None, ""):
            raise ApiError(400, "validation", "This field is required.", field)


def _int_field(obj, field, minimum=None):
    value = obj.get(field)
    try:
        number = int(value)  # sizes may come as numeric strings (§6)
    except (TypeError, ValueError):
        raise ApiError(400, "validation", "Enter a whole number.", field)
    if isinstance(value, bool) or (minimum is not None and number < minimum):
        raise ApiError(400, "validation", "Ensure this value is greater than or equal to %d."
                       % minimum, field)
    return number


def _meta_field(obj):
    meta = obj.get("meta", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in meta.items()):
        raise ApiError(400, "validation", "meta must map strings to strings", "meta")
    return dict(meta)


def _objects_of(body, bare_list=False):
    """The objects of a create body, {"objects": [{…}, …]} (servers and drives
    take the bare list too); a 400 for anything else."""
    objects = body.get("objects") if isinstance(body, dict) else (body if bare_list else None)
    if not isinstance(objects, list) or not objects or \
            not all(isinstance(o, dict) for o in objects):
        raise ApiError(400, "validation", "Expected {\"objects\": [...]}", "objects")
    return objects


class CloudSigmaEmulator:
    def __init__(self, listen="127.0.0.1:0", username="user@example.com",
                 password="secret", transition_delay=0.3, delete_delay=0.3, verbose=False):
        host, port = listen.rsplit(":", 1)
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the emulator listens on loopback only")
        self.listen = (host, int(port))
        self.username, self.password = username, password
        self.transition_delay = transition_delay
        self.delete_delay = delete_delay
        self.verbose = verbose
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self.servers, self.drives = {}, {}
        self.vlans, self.ips, self.keypairs = {}, {}, {}
        self.fwpolicies = {}
        # List requests per collection ("servers": 3), and under "all" every
        # API request, answered by GET /emulator/list-requests so tests and
        # benchmarks count provider pages and requests.
        self.list_requests = collections.Counter()
        self.subscriptions = {}  # id (a string) -> subscription
        self._subscription_seq = 7270
        self._ip_seq = 10
        self.libdrives = {}
        for n, item in enumerate(LIBDRIVES):
            uuid = str(uuidlib.UUID(int=0xC0FFEE00 + n))
            self.libdrives[uuid] = dict(item, uuid=uuid, resource_uri=_ref("libdrives", uuid)
                                        ["resource_uri"], owner=None, status="unmounted",
                                        meta={}, tags=[], mounted_on=[], jobs=[], licenses=[],
                                        affinities=[], allow_multimount=False, paid=False,
                                        favourite=False, storage_type="dssd")
        self._timers = []  # heap of (due, seq, fn)
        self._seq = 0
        self._cookies = {}  # async_auth value -> expiry
        self._sockets = []  # websocket queues
        self.refuse_websockets = False
        self._frame_count = 0
        self._stopping = False
        self.httpd = None

    # -- lifecycle ----------------------------------------------------------
    def start(self):
        handler = type("Handler", (_Handler,), {"emulator": self})
        self.httpd = _ThreadingServer(self.listen, handler)
        self._http_thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._http_thread.start()
        self._engine = threading.Thread(target=self._run_engine, daemon=True)
        self._engine.start()
        return self

    def stop(self):
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
            for q in self._sockets:
                q.put(None)
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    @property
    def base(self):
        host, port = self.httpd.server_address[:2]
        return "%s:%d" % (host, port)

    @property
    def api_endpoint(self):
        return "http://%s%s/" % (self.base, API_PREFIX)

    @property
    def ws_endpoint(self):
        return "ws://%s/websocket" % self.base

    def ready_line(self):
        return "READY api=%s ws=%s" % (self.api_endpoint, self.ws_endpoint)

    # -- engine (timed transitions) -----------------------------------------
    def _after(self, delay, fn):
        with self._lock:
            self._seq += 1
            heapq.heappush(self._timers, (time.monotonic() + delay, self._seq, fn))
            self._wake.notify_all()

    def _run_engine(self):
        with self._lock:
            while not self._stopping:
                now = time.monotonic()
                if self._timers and self._timers[0][0] <= now:
                    _, _, fn = heapq.heappop(self._timers)
                    fn()
                    continue
                timeout = (self._timers[0][0] - now) if self._timers else None
                self._wake.wait(timeout)

    # -- websocket fan-out --------------------------------------------------
    def _changed(self, resource, uuid, obj=None):
        """Pushes a frame for a change (lock held). Every other frame
        carries the object, so clients see both shapes of §13."""
        frame = {"resource_type": resource,
                 "resource_uri": "%s/%s/%s/" % (API_PREFIX, resource, uuid)}
        self._frame_count += 1
        if obj is not None and self._frame_count % 2 == 0:
            frame["object"] = copy.deepcopy(obj)
        data = json.dumps(frame)
        for q in self._sockets:
            q.put(data)

    # -- drives -------------------------------------------------------------
    def _new_drive(self, spec, status):
        _required(spec, ("name", "size", "media"))
        size = _int_field(spec, "size", minimum=1)
        if spec["media"] not in ("disk", "cdrom"):
            raise ApiError(400, "validation", "Select a valid choice.", "media")
        storage = spec.get("storage_type") or "dssd"
        uuid = str(uuidlib.uuid4())
        return {
            "affinities": list(spec.get("affinities") or []),
            "allow_multimount": bool(spec.get("allow_multimount", False)),
            "grantees": [], "jobs": [], "licenses": [], "media": spec["media"],
            "meta": _meta_field(spec), "mounted_on": [], "name": str(spec["name"]),
            "owner": _ref("user", OWNER_UUID), "permissions": [],
            "resource_uri": _ref("drives", uuid)["resource_uri"],
            "runtime": {"is_snapshotable": None, "snapshots_allocated_size": 0,
                        "storage_type": storage},
            "size": size, "snapshots": [], "status": status, "storage_type": storage,
            "tags": list(spec.get("tags") or []), "uuid": uuid,
        }

    def _settle_drive(self, uuid, from_status):
        drive = self.drives.get(uuid)
        if drive is None or drive["status"] != from_status:
            return
        drive["status"] = "mounted" if drive["mounted_on"] else "unmounted"
        drive["jobs"] = []
        self._changed("drives", uuid, drive)

    def create_drives(self, objects):
        made = [self._new_drive(spec, "creating") for spec in objects]
        for drive in made:  # all or nothing: validated before any is kept
            self.drives[drive["uuid"]] = drive
            self._changed("drives", drive["uuid"], drive)
            self._after(self.transition_delay,
                        lambda u=drive["uuid"]: self._settle_drive(u, "creating"))
        return made

    def clone_drive(self, uuid, body):
        source = self.drives.get(uuid) or self.libdrives.get(uuid)
        if source is None or source.get("_deleting"):
            raise _notexist(uuid)
        spec = {"name": body.get("name") or source["name"], "size": body.get("size",
                                                                              source["size"]),
                "media": body.get("media") or source["media"], "meta": body.get("meta", {}),
                "storage_type": body.get("storage_type") or source.get("storage_type")}
        if _int_field(spec, "size") < source["size"]:
            raise ApiError(400, "validation", "Size must be at least the source size", "size")
        drive = self._new_drive(spec, "cloning_dst")
        job = str(uuidlib.uuid4())
        drive["jobs"] = [_ref("jobs", job)]
        self.drives[drive["uuid"]] = drive
        self._changed("drives", drive["uuid"], drive)
        self._after(self.transition_delay,
                    lambda u=drive["uuid"]: self._settle_drive(u, "cloning_dst"))
        return drive

    def update_drive(self, uuid, body):
        drive = self._get("drives", uuid)
        spec = dict(drive)
        spec.update({k: v for k, v in body.items() if k in ("name", "size", "media", "meta",
                                                           "tags", "allow_multimount",
                                                           "affinities")})
        _required(spec, ("name", "size", "media"))
        size = _int_field(spec, "size", minimum=1)
        drive["name"], drive["meta"] = str(spec["name"]), _meta_field(spec)
        drive["tags"] = list(spec.get("tags") or [])
        drive["allow_multimount"] = bool(spec.get("allow_multimount"))
        if size != drive["size"]:
            if drive["status"] not in ("unmounted", "mounted"):
                raise ApiError(403, "permission", "Cannot resize drive in state %s"
                               % drive["status"])
            drive["size"] = size
            drive["status"] = "resizing"
            self._after(self.transition_delay, lambda: self._settle_drive(uuid, "resizing"))
        self._changed("drives", uuid, drive)
        return drive

    def delete_drive(self, uuid):
        drive = self._get("drives", uuid)
        if drive["mounted_on"]:
            raise ApiError(403, "permission", "Drive %s is mounted on a server" % uuid)
        drive["_deleting"] = True

        def gone():
            if self.drives.pop(uuid, None) is not None:
                self._changed("drives", uuid)
        self._after(self.delete_delay, gone)

    # -- servers ------------------------------------------------------------
    def _check_drives(self, items, server_uuid):
        result = []
        for n, item in enumerate(items or []):
            if not isinstance(item, dict):
                raise ApiError(400, "validation", "Invalid drive definition", "drives")
            ref = item.get("drive")
            drive_uuid = ref.get("uuid") if isinstance(ref, dict) else ref
            drive = self.drives.get(drive_uuid) or self.libdrives.get(drive_uuid)
            if not isinstance(drive_uuid, str) or drive is None or drive.get("_deleting"):
                raise ApiError(400, "validation", "Drive %s does not exist" % drive_uuid,
                               "drives")
            if drive["status"] not in ("unmounted", "mounted"):
                raise ApiError(403, "permission", "Drive %s is in state %s"
                               % (drive_uuid, drive["status"]))
            if (drive_uuid in self.drives and not drive["allow_multimount"] and
                    any(m["uuid"] != server_uuid for m in drive["mounted_on"])):
                raise ApiError(403, "permission", "Drive %s is mounted on another server"
                               % drive_uuid)
            device = item.get("device", "virtio")
            channel = item.get("dev_channel", "0:%d" % n)
            if device not in ("virtio", "ide") or not re.fullmatch(r"\d+:\d+", str(channel)):
                raise ApiError(400, "validation", "Invalid device or dev_channel", "drives")
            boot = item.get("boot_order")
            if boot is not None and (not isinstance(boot, int) or isinstance(boot, bool)):
                raise ApiError(400, "validation", "boot_order must be an integer", "drives")
            result.append({"boot_order": boot, "dev_channel": channel, "device": device,
                           "drive": _ref("drives", drive_uuid), "runtime": None})
        return result

    def _mount(self, server):
        """Makes every drive's mounted_on agree with the servers' lists."""
        for drive in self.drives.values():
            before = [m["uuid"] for m in drive["mounted_on"]]
            after = [s["uuid"] for s in self.servers.values() if not s.get("_deleting") and
                     any(d["drive"]["uuid"] == drive["uuid"] for d in s["drives"])]
            if before != after:
                drive["mounted_on"] = [_ref("servers", u) for u in after]
                if drive["status"] in ("mounted", "unmounted"):
                    drive["status"] = "mounted" if after else "unmounted"
                self._changed("drives", drive["uuid"], drive)

    def _server_spec(self, server, spec):
        _required(spec, ("name", "cpu", "mem", "vnc_password"))
        cpu = _int_field(spec, "cpu", minimum=250)
        mem = _int_field(spec, "mem", minimum=268435456)
        smp = _int_field(spec, "smp", minimum=1) if spec.get("smp") is not None else 1
        drives = self._check_drives(spec.get("drives"), server["uuid"])
        running = server.get("status") not in (None, "stopped")
        server["name"], server["meta"] = str(spec["name"]), _meta_field(spec)
        server["tags"] = list(spec.get("tags") or [])
        if not running:  # on a running server only name, meta and tags apply (§5.2)
            server.update(cpu=cpu, mem=mem, smp=smp, vnc_password=str(spec["vnc_password"]),
                          drives=drives)
            nics = []
            for nic in self._check_nics(spec.get("nics"), server["uuid"]):
                nic = dict(nic)
                nic.setdefault("model", "virtio")
                nic.setdefault("mac", "22:%02x:%02x:%02x:%02x:%02x"
                               % tuple(secrets.token_bytes(5)))
                nic.setdefault("ip_v4_conf", None)
                nic.setdefault("ip_v6_conf", None)
                nic.setdefault("vlan", None)
                nic.setdefault("boot_order", None)
                nic["runtime"] = None
                nics.append(nic)
            server["nics"] = nics
            for key in ("context", "cpu_type", "hypervisor", "cpus_instead_of_cores",
                        "enable_numa", "hv_relaxed", "hv_tsc", "requirements"):
                if key in spec:
                    server[key] = spec[key]
            if "pubkeys" in spec:
                server["pubkeys"] = self._check_pubkeys(spec["pubkeys"])

    def _check_pubkeys(self, items):
        if not isinstance(items, list):
            raise ApiError(400, "validation", "pubkeys must be a list", "pubkeys")
        out = []
        for item in items:
            uuid = item.get("uuid") if isinstance(item, dict) else item
            if not isinstance(uuid, str) or uuid not in self.keypairs:
                raise ApiError(400, "validation", "Keypair %s does not exist" % uuid, "pubkeys")
            out.append(_ref("keypairs", uuid))
        return out

    def _check_nics(self, items, server_uuid):
        """The nics of a server definition, checked as §5.4 says; ip and vlan
        references become plain uuids (stored as references)."""
        if items is None:
            return []
        if not isinstance(items, list) or not all(isinstance(n, dict) for n in items):
            raise ApiError(400, "validation", "nics must be a list of objects", "nics")
        out, macs = [], set()
        for nic in items:
            nic = {k: v for k, v in nic.items() if k != "runtime"}
            vlan = nic.get("vlan")
            vlan = vlan.get("uuid") if isinstance(vlan, dict) else vlan
            conf = nic.get("ip_v4_conf")
            if vlan is not None:
                if conf or nic.get("ip_v6_conf"):
                    raise ApiError(400, "validation", "A NIC on a VLAN cannot have an IP "
                                   "configuration", "nics")
                if vlan not in self.vlans:
                    raise ApiError(400, "validation", "VLAN %s does not exist" % vlan, "nics")
                nic["vlan"] = _ref("vlans", vlan)
            elif conf is not None:
                if not isinstance(conf, dict) or conf.get("conf") not in ("dhcp", "static",
                                                                          "manual"):
                    raise ApiError(400, "validation", "ip_v4_conf.conf must be dhcp, static "
                                   "or manual", "nics")
                conf = dict(conf)
                ip = conf.get("ip")
                ip = ip.get("uuid") if isinstance(ip, dict) else ip
                if conf["conf"] == "static":
                    if ip not in self.ips:
                        raise ApiError(400, "validation", "IP %s does not exist" % ip, "nics")
                    owner = self.ips[ip]["server"]
                    if owner is not None and owner["uuid"] != server_uuid:
                        raise ApiError(400, "validation", "IP %s is used by another server"
                                       % ip, "nics")
                    conf["ip"] = _ref("ips", ip)
                else:
                    # CloudSigma answers "ip": null for dhcp and manual
                    # (response_server_add_manual_nic, response_guest_for_context);
                    # Libcloud's _parse_ips_from_nic reads conf["ip"].
                    conf["ip"] = None
                nic["ip_v4_conf"] = conf
            conf6 = nic.get("ip_v6_conf")
            if conf6 is not None:
                # The schema gives ip_v6_conf the same fields as ip_v4_conf
                # (response_server_schema); no IPv6 addresses are emulated, so
                # only dhcp and manual are taken, answered with "ip": null.
                if not isinstance(conf6, dict) or conf6.get("conf") not in ("dhcp", "manual"):
                    raise ApiError(400, "validation", "ip_v6_conf.conf must be dhcp or manual",
                                   "nics")
                nic["ip_v6_conf"] = dict(conf6, ip=None)
            model = nic.get("model", "virtio")
            if model not in ("virtio", "e1000", "rtl8139"):
                raise ApiError(400, "validation", "model must be virtio, e1000 or rtl8139",
                               "nics")
            policy = nic.get("firewall_policy")
            policy = policy.get("uuid") if isinstance(policy, dict) else policy
            if policy is not None:
                if policy not in self.fwpolicies:
                    raise ApiError(400, "validation", "Firewall policy %s does not exist"
                                   % policy, "nics")
                nic["firewall_policy"] = _ref("fwpolicies", policy)
            mac = nic.get("mac")
            if mac is not None and (mac in macs or not isinstance(mac, str)):
                raise ApiError(400, "validation", "Duplicate MAC %s" % mac, "nics")
            macs.add(mac)
            out.append(nic)
        return out

    def _link_networks(self):
        """Makes every IP's `server` and VLAN's `servers` agree with the
        servers' NICs."""
        ip_server, vlan_servers, policy_servers = {}, {}, {}
        for s in self.servers.values():
            if s.get("_deleting"):
                continue
            for nic in s["nics"]:
                if nic.get("firewall_policy"):
                    users = policy_servers.setdefault(nic["firewall_policy"]["uuid"], [])
                    if s["uuid"] not in users:
                        users.append(s["uuid"])
                conf = nic.get("ip_v4_conf") or {}
                if conf.get("conf") == "static" and conf.get("ip"):
                    ip_server[conf["ip"]["uuid"]] = s["uuid"]
                if nic.get("vlan"):
                    vlan_servers.setdefault(nic["vlan"]["uuid"], []).append(s["uuid"])
        for ip in self.ips.values():
            owner = ip_server.get(ip["uuid"])
            ref = _ref("servers", owner) if owner else None
            if ip["server"] != ref:
                ip["server"] = ref
                self._changed("ips", ip["uuid"], ip)
        for vlan in self.vlans.values():
            refs = [_ref("servers", u) for u in vlan_servers.get(vlan["uuid"], [])]
            if vlan["servers"] != refs:
                vlan["servers"] = refs
                self._changed("vlans", vlan["uuid"], vlan)
        for policy in self.fwpolicies.values():
            policy["servers"] = [_ref("servers", u)
                                 for u in policy_servers.get(policy["uuid"], [])]

    # -- firewall policies ----------------------------------------------------
    def create_fwpolicies(self, objects):
        made = []
        for spec in objects:
            name = spec.get("name")
            if name is not None and not isinstance(name, str):
                raise ApiError(400, "validation", "name must be a string", "name")
            uuid = str(uuidlib.uuid4())
            made.append({"meta": _meta_field(spec), "name": name,
                         "owner": _ref("user", OWNER_UUID),
                         "resource_uri": _ref("fwpolicies", uuid)["resource_uri"],
                         "rules": _fw_rules(spec.get("rules")), "servers": [], "tags": [],
                         "uuid": uuid})
        for policy in made:
            self.fwpolicies[policy["uuid"]] = policy
        return made

    def update_fwpolicy(self, uuid, body):
        policy = self._get("fwpolicies", uuid)
        name = body.get("name", policy["name"])
        if name is not None and not isinstance(name, str):
            raise ApiError(400, "validation", "name must be a string", "name")
        rules = _fw_rules(body["rules"]) if "rules" in body else policy["rules"]
        meta = _meta_field(body) if "meta" in body else policy["meta"]
        policy.update(name=name, rules=rules, meta=meta)
        return policy

    def delete_fwpolicy(self, uuid):
        self._get("fwpolicies", uuid)
        for server in self.servers.values():
            uses = any((n.get("firewall_policy") or {}).get("uuid") == uuid
                       for n in server["nics"])
            if uses and server["status"] != "stopped":
                raise ApiError(403, "permission", "Cannot delete a firewall policy used by "
                               "server %s in state %s" % (server["uuid"], server["status"]))
        for server in self.servers.values():
            for nic in server["nics"]:
                if (nic.get("firewall_policy") or {}).get("uuid") == uuid:
                    nic["firewall_policy"] = None  # [uncertain] what CloudSigma does
        del self.fwpolicies[uuid]

    # -- subscriptions, vlans, ips, keypairs ---------------------------------
    def create_subscriptions(self, objects):
        made = []
        for spec in objects:
            _required(spec, ("resource", "amount", "period"))
            resource = spec["resource"]
            if resource not in ("vlan", "ip"):
                # Other resources (dssd, cpu, …) only change the bill.
                raise ApiError(400, "validation", "The emulator sells vlan and ip only",
                               "resource")
            if _int_field(spec, "amount", minimum=1) != 1:
                raise ApiError(400, "validation", "Buy one %s per subscription" % resource,
                               "amount")
            self._subscription_seq += 1
            sid = str(self._subscription_seq)
            now = time.time()
            if resource == "vlan":
                uuid = str(uuidlib.uuid4())
                self.vlans[uuid] = {
                    "uuid": uuid, "resource_uri": _ref("vlans", uuid)["resource_uri"],
                    "bottom_vlan_tag": 1000 + self._subscription_seq % 3000, "grantees": [],
                    "meta": {}, "owner": _ref("user", OWNER_UUID), "permissions": [],
                    "servers": [], "tags": [],
                    "subscription": {"id": int(sid), "resource_uri":
                                     "%s/subscriptions/%s/" % (API_PREFIX, sid)}}
            else:
                self._ip_seq += 1
                uuid = "185.12.6.%d" % self._ip_seq
                self.ips[uuid] = {
                    "uuid": uuid, "resource_uri": _ref("ips", uuid)["resource_uri"],
                    "gateway": "185.12.6.1", "netmask": 24,
                    "nameservers": ["69.194.139.62", "178.22.66.167"], "grantees": [],
                    "meta": {}, "owner": _ref("user", OWNER_UUID), "permissions": [],
                    "server": None, "tags": [],
                    "subscription": {"id": int(sid), "resource_uri":
                                     "%s/subscriptions/%s/" % (API_PREFIX, sid)}}
            sub = {"id": sid, "uuid": str(uuidlib.uuid4()), "resource": resource,
                   "amount": "1", "remaining": "1", "period": "31 days, 0:00:00",
                   "start_time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now)),
                   "end_time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00",
                                             time.gmtime(now + 31 * 86400)),
                   "status": "active", "auto_renew": True, "price": "7.00000000000000000000",
                   "descendants": [], "discount_amount": None, "discount_percent": None,
                   "free_tier": False, "subscribed_object": uuid,
                   "resource_uri": "%s/subscriptions/%s/" % (API_PREFIX, sid)}
            self.subscriptions[sid] = sub
            made.append(sub)
            self._changed("vlans" if resource == "vlan" else "ips", uuid,
                          (self.vlans if resource == "vlan" else self.ips)[uuid])
        return made

    def subscription_action(self, sid, action, body):
        sub = self.subscriptions.get(sid)
        if sub is None:
            raise _notexist(sid)
        if action != "auto_renew":
            raise ApiError(400, "validation", "Unsupported action %s" % action, "do")
        value = body.get("auto_renew") if isinstance(body, dict) else None
        if not isinstance(value, bool):
            raise ApiError(400, "validation", "auto_renew must be true or false", "auto_renew")
        sub["auto_renew"] = value
        return dict(sub)

    def expire_subscriptions(self):
        """Test control: every subscription that does not renew reaches its
        end_time; its VLAN or IP goes away."""
        expired = []
        for sid, sub in list(self.subscriptions.items()):
            if sub["auto_renew"] or sub["status"] != "active":
                continue
            sub["status"] = "inactive"
            obj = sub["subscribed_object"]
            table = self.vlans if sub["resource"] == "vlan" else self.ips
            if table.pop(obj, None) is not None:
                self._changed("vlans" if sub["resource"] == "vlan" else "ips", obj)
            expired.append(sid)
        return expired

    def update_meta_only(self, resource, uuid, body):
        """PUT of an IP or a VLAN: only meta can be edited (§7)."""
        obj = self._get(resource, uuid)
        obj["meta"] = _meta_field(body)
        self._changed(resource, uuid, obj)
        return obj

    def create_keypairs(self, objects):
        made = []
        for spec in objects:
            _required(spec, ("name", "public_key"))
            key = str(spec["public_key"]).strip()
            parts = key.split()
            try:
                blob = base64.b64decode(parts[1], validate=True) if len(parts) >= 2 else b""
            except ValueError:
                blob = b""
            if not parts or not parts[0].startswith(("ssh-", "ecdsa-")) or not blob:
                raise ApiError(400, "validation", "Invalid public key", "public_key")
            digest = hashlib.md5(blob).hexdigest()
            uuid = str(uuidlib.uuid4())
            kp = {"uuid": uuid, "resource_uri": _ref("keypairs", uuid)["resource_uri"],
                  "name": str(spec["name"]), "public_key": key, "private_key": "",
                  "fingerprint": ":".join(digest[i:i + 2] for i in range(0, 32, 2)),
                  "meta": _meta_field(spec), "owner": _ref("user", OWNER_UUID),
                  "permissions": [], "grantees": [], "tags": []}
            made.append(kp)
        for kp in made:
            self.keypairs[kp["uuid"]] = kp
        return made

    def update_keypair(self, uuid, body):
        kp = self._get("keypairs", uuid)
        if "name" in body:
            _required(body, ("name",))
            kp["name"] = str(body["name"])
        if "meta" in body:
            kp["meta"] = _meta_field(body)
        return kp

    def delete_keypair(self, uuid):
        self._get("keypairs", uuid)
        del self.keypairs[uuid]

    def create_servers(self, objects):
        made = []
        for spec in objects:
            uuid = str(uuidlib.uuid4())
            server = {"context": True, "cpu_model": None, "cpu_type": "amd",
                      "cpus_instead_of_cores": False, "drives": [], "enable_numa": False,
                      "grantees": [], "hv_relaxed": False, "hv_tsc": False,
                      "hypervisor": "kvm", "jobs": [], "meta": {}, "nics": [],
                      "owner": _ref("user", OWNER_UUID), "permissions": [], "pubkeys": [],
                      "requirements": [], "resource_uri": _ref("servers", uuid)["resource_uri"],
                      "runtime": None, "tags": [], "uuid": uuid}
            self._server_spec(server, spec)
            server["status"] = "stopped"  # creation is synchronous (§5.1)
            made.append(server)
        for server in made:
            self.servers[server["uuid"]] = server
            self._changed("servers", server["uuid"], server)
        self._mount(None)
        self._link_networks()
        return made

    def update_server(self, uuid, body):
        server = self._get("servers", uuid)
        if not isinstance(body, dict):
            raise ApiError(400, "validation", "Expected an object", None)
        trial = copy.deepcopy(server)
        spec = dict(server)  # a field left out keeps its value (§5.2, recorded PUT)
        spec.update(body)
        self._server_spec(trial, spec)
        server.clear()
        server.update(trial)
        self._changed("servers", uuid, server)
        self._mount(server)
        self._link_networks()
        return server

    def _runtime(self, server):
        nics = []
        for n, nic in enumerate(server["nics"]):
            conf = nic.get("ip_v4_conf") or {}
            ip = None
            if conf.get("conf") == "dhcp":
                ip = "10.%d.%d.%d" % (hash(server["uuid"]) % 200, n, 10 + n)
            elif conf.get("conf") == "static":
                ip = (conf.get("ip") or {}).get("uuid") if isinstance(conf.get("ip"), dict) \
                    else conf.get("ip")
            runtime = {"interface_type": "private" if nic.get("vlan") else "public",
                       "io": {"bytes_recv": 0, "bytes_sent": 0, "packets_recv": 0,
                              "packets_sent": 0},
                       "ip_v4": _ref("ips", ip) if ip else None, "ip_v6": None,
                       "mac": nic["mac"]}
            nic["runtime"] = {k: v for k, v in runtime.items() if k != "mac"}
            nics.append(runtime)
        return {"active_since": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                "nics": nics}

    def _transition(self, uuid, from_status, to_status):
        server = self.servers.get(uuid)
        if server is None or server["status"] != from_status:
            return
        server["status"] = to_status
        if to_status == "running":
            server["runtime"] = self._runtime(server)
        else:
            server["runtime"] = None
            for nic in server["nics"]:
                nic["runtime"] = None
        self._changed("servers", uuid, server)

    def server_action(self, uuid, action, body):
        server = self._get("servers", uuid)
        status = server["status"]
        plan = {"start": ("stopped", "starting", "running"),
                "stop": ("running", "stopping", "stopped"),
                "shutdown": ("running", "stopping", "stopped")}
        if action in plan:
            want, via, to = plan[action]
            if status != want:
                # Third-party emulators' wording (§5.5); not in the dumps.
                raise ApiError(403, "permission", 'Cannot %s guest in state "%s". Guest '
                               'should be in state "%s"' % (action, status, want))
            server["status"] = via
            self._changed("servers", uuid, server)
            self._after(self.transition_delay, lambda: self._transition(uuid, via, to))
        elif action == "restart":
            if status != "running":
                raise ApiError(403, "permission", 'Cannot restart guest in state "%s". Guest '
                               'should be in state "running"' % status)
            server["status"] = "stopping"
            self._changed("servers", uuid, server)

            def stopped():
                self._transition(uuid, "stopping", "stopped")
                if self.servers.get(uuid, {}).get("status") == "stopped":
                    self.servers[uuid]["status"] = "starting"
                    self._changed("servers", uuid, self.servers[uuid])
                    self._after(self.transition_delay,
                                lambda: self._transition(uuid, "starting", "running"))
            self._after(self.transition_delay, stopped)
        else:
            raise ApiError(400, "validation", "Unknown action %s" % action, "do")
        return {"action": action, "result": "success", "uuid": uuid}

    def delete_server(self, uuid, recurse):
        server = self._get("servers", uuid)
        if server["status"] != "stopped":
            raise ApiError(403, "permission", 'Cannot delete guest in state "%s". Guest '
                           'should be in state "stopped"' % server["status"])
        doomed = []
        if recurse in ("all_drives", "disks", "cdroms"):
            for item in server["drives"]:
                drive = self.drives.get(item["drive"]["uuid"])
                if drive and (recurse == "all_drives" or
                              drive["media"] == ("disk" if recurse == "disks" else "cdrom")):
                    doomed.append(drive["uuid"])
        server["_deleting"] = True
        self._mount(server)
        self._link_networks()

        def gone():
            if self.servers.pop(uuid, None) is not None:
                self._changed("servers", uuid)
            for d in doomed:
                if self.drives.pop(d, None) is not None:
                    self._changed("drives", d)
        self._after(self.delete_delay, gone)

    # -- reads --------------------------------------------------------------
    def _collection(self, resource):
        table = {"servers": self.servers, "drives": self.drives,
                 "libdrives": self.libdrives, "vlans": self.vlans, "ips": self.ips,
                 "keypairs": self.keypairs, "subscriptions": self.subscriptions,
                 "fwpolicies": self.fwpolicies}.get(resource)
        if table is None:
            raise ApiError(404, "notexist", "Unknown resource %s" % resource)
        return table

    def _dynamic_ips(self):
        """The DHCP addresses of running servers, which /ips/ lists too,
        without a subscription (§7)."""
        out = {}
        for server in self.servers.values():
            for nic in (server.get("runtime") or {}).get("nics", []):
                ip = (nic.get("ip_v4") or {}).get("uuid")
                if ip and ip not in self.ips:
                    out[ip] = {"uuid": ip, "resource_uri": _ref("ips", ip)["resource_uri"],
                               "gateway": None, "netmask": None, "nameservers": [],
                               "grantees": [], "meta": {}, "owner": _ref("user", OWNER_UUID),
                               "permissions": [], "server": _ref("servers", server["uuid"]),
                               "subscription": None, "tags": []}
        return out

    def _get(self, resource, uuid):
        # A deleted object keeps answering until it is gone (§3: "GET can go
        # on returning the object for a while").
        obj = self._collection(resource).get(uuid)
        if obj is None and resource == "ips":
            obj = self._dynamic_ips().get(uuid)
        if obj is None and resource == "drives":
            obj = self.libdrives.get(uuid)  # libdrives are reachable as drives (§4)
        if obj is None:
            raise _notexist(uuid)
        return obj

    @staticmethod
    def _public(obj):
        return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}

    def list(self, resource, detail, query):
        """One page of a list (lock held). The objects answered are the
        stored ones (shallow views without the "_" keys), so the caller
        serialises them before it releases the lock (handle() does). A page
        costs its own size plus one pass of the filters; a `uuid=` filter
        reads those uuids only (answered in the order asked)."""
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
            offset = int(query.get("offset", 0))
        except ValueError:
            raise ApiError(400, "validation", "limit and offset must be integers", "limit")
        if limit < 0 or offset < 0:
            raise ApiError(400, "validation", "limit and offset must not be negative", "limit")
        self.list_requests[resource] += 1
        table = self._collection(resource)
        if resource == "ips":
            table = dict(table, **self._dynamic_ips())
        if "uuid" in query:
            asked = dict.fromkeys(query["uuid"].split(","))  # each once, in order
            objects = [table[u] for u in asked if u in table]
        else:
            objects = table.values()
        filters = []
        for key in ("name", "status"):
            if key in query:
                wanted = set(query[key].split(","))
                filters.append(lambda o, key=key, wanted=wanted: str(o.get(key)) in wanted)
        if "name__contains" in query:
            part = query["name__contains"]
            filters.append(lambda o: part in (o.get("name") or ""))
        if filters:
            objects = [o for o in objects if all(f(o) for f in filters)]
        elif not isinstance(objects, list):
            objects = list(objects)  # a dict view cannot be sliced
        page = objects[offset:offset + limit] if limit else objects[offset:]
        if "fields" in query:
            keep = set(query["fields"].split(","))
            page = [{k: v for k, v in o.items() if k in keep and not k.startswith("_")}
                    for o in page]
        elif not detail and resource in SHORT_KEYS:
            page = [{k: o.get(k) for k in SHORT_KEYS[resource] if k in o} for o in page]
        else:
            page = [{k: v for k, v in o.items() if not k.startswith("_")} for o in page]
        return {"meta": {"limit": limit, "offset": offset, "total_count": len(objects)},
                "objects": page}

    # -- HTTP dispatch ------------------------------------------------------
    def authorized(self, header):
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user.encode(), self.username.encode()) and \
            secrets.compare_digest(password.encode(), self.password.encode())

    def handle(self, method, path, query, body_bytes):
        """(status, json-able body or None, extra headers)."""
        parts = [p for p in path[len(API_PREFIX):].split("/") if p]
        body = None
        if body_bytes:
            try:
                body = json.loads(body_bytes)
            except ValueError:
                raise ApiError(400, "validation", "Request body is not valid JSON", None)
        with self._lock:
            self.list_requests["all"] += 1
            if not parts:
                raise ApiError(404, "notexist", "Not found")
            resource = parts[0]
            if resource == "accounts" and parts[1:] == ["action"] and method == "POST":
                if query.get("do") != "authenticate_asynchronous":
                    raise ApiError(400, "validation", "Unsupported action", "do")
                cookie = secrets.token_hex(16)
                self._cookies[cookie] = time.monotonic() + 120
                return 200, {}, [("Set-Cookie", "async_auth=%s; Max-Age=120; Path=/" % cookie)]
            if resource == "locations" and method == "GET":
                loc = {"id": "EMU", "api_endpoint": self.api_endpoint,
                       "websocket_url": self.ws_endpoint, "upload_url": self.api_endpoint,
                       "country_code": "CH", "display_name": "Emulator"}
                return 200, {"meta": {"limit": 0, "offset": 0, "total_count": 1},
                             "objects": [loc]}, []
            if resource == "capabilities" and method == "GET":
                return 200, {"default_storage_type": "dssd",
                             "hosts": {"amd": {"cpu": {"min": 250, "max": 80000},
                                               "mem": {"min": 268435456, "max": 137438953472},
                                               "smp": {"min": 1, "max": 40}}},
                             "drives": {"dssd": {"size": {"min": 536870912,
                                                          "max": 4398046511104}}}}, []
            rest = parts[1:]
            if resource == "subscriptions" and method == "POST":
                if not rest:
                    made = self.create_subscriptions(_objects_of(body))
                    return 201, {"objects": [dict(o) for o in made],
                                 "price": "7.00000000000000000000"}, []
                if len(rest) == 2 and rest[1] == "action":
                    return 200, self.subscription_action(rest[0], query.get("do", ""),
                                                         body), []
            if resource in ("vlans", "ips") and len(rest) == 1 and method == "PUT":
                if not isinstance(body, dict):
                    raise ApiError(400, "validation", "Expected an object", None)
                return 200, self._public(self.update_meta_only(resource, rest[0], body)), []
            # Objects made, edited and deleted at once: (create, update, delete).
            immediate = {"keypairs": (self.create_keypairs, self.update_keypair,
                                      self.delete_keypair),
                         "fwpolicies": (self.create_fwpolicies, self.update_fwpolicy,
                                        self.delete_fwpolicy)}
            if resource in immediate and method in ("POST", "PUT", "DELETE"):
                create, update, delete = immediate[resource]
                if method == "POST" and not rest:
                    return 201, {"objects": [self._public(o)
                                             for o in create(_objects_of(body))]}, []
                if method == "PUT" and len(rest) == 1 and isinstance(body, dict):
                    return 200, self._public(update(rest[0], body)), []
                if method == "DELETE" and len(rest) == 1:
                    delete(rest[0])
                    return 204, None, []
            if resource not in ("servers", "drives", "libdrives", "vlans", "ips", "keypairs",
                                "subscriptions", "fwpolicies"):
                raise ApiError(404, "notexist", "Unknown resource %s" % resource)
            if method == "GET" and rest in ([], ["detail"]):
                # Serialised here, under the lock: list() answers the stored
                # objects themselves, and copying a whole collection first
                # cost three times the serialising.
                return 200, _Encoded(json.dumps(self.list(
                    resource, rest == ["detail"] or resource not in SHORT_KEYS
                    or resource == "libdrives", query)).encode()), []
            if method == "POST" and not rest and resource in ("servers", "drives"):
                made = (self.create_drives if resource == "drives" else
                        self.create_servers)(_objects_of(body, bare_list=True))
                return 201, {"objects": [self._public(o) for o in made]}, []
            if len(rest) == 1 and method == "GET":
                return 200, self._public(self._get(resource, rest[0])), []
            if len(rest) == 1 and method == "PUT" and resource in ("servers", "drives"):
                if not isinstance(body, dict):
                    raise ApiError(400, "validation", "Expected an object", None)
                obj = (self.update_drive if resource == "drives" else
                       self.update_server)(rest[0], body)
                return 200, self._public(obj), []
            if len(rest) == 1 and method == "DELETE" and resource in ("servers", "drives"):
                if resource == "drives":
                    self.delete_drive(rest[0])
                else:
                    self.delete_server(rest[0], query.get("recurse"))
                return 204, None, []
            if len(rest) == 2 and rest[1] == "action" and method == "POST":
                action = query.get("do", "")
                if resource == "servers":
                    return 202, self.server_action(rest[0], action, body or {}), []
                if action == "clone":
                    return 202, {"objects": [self._public(self.clone_drive(rest[0],
                                                                           body or {}))]}, []
                raise ApiError(400, "validation", "Unsupported action %s" % action, "do")
            raise ApiError(405, "validation", "Method %s not allowed here" % method, None)

    def register_socket(self, cookie):
        """The socket's queue; None for a bad cookie; False while refusing."""
        with self._lock:
            if self.refuse_websockets:
                return False
            expiry = self._cookies.pop(cookie, None)  # single use
            if expiry is None or expiry < time.monotonic():
                return None
            q = queue.Queue()
            self._sockets.append(q)
            return q

    def unregister_socket(self, q):
        with self._lock:
            if q in self._sockets:
                self._sockets.remove(q)

    def drop_websockets(self):
        """Closes every websocket (tests: the client must reconnect)."""
        with self._lock:
            for q in self._sockets:
                q.put(None)

    def set_refuse_websockets(self, refuse):
        """While refusing, every websocket handshake is answered 503 and the
        open ones are closed: the feed is cut, REST still answers."""
        with self._lock:
            self.refuse_websockets = bool(refuse)
        if refuse:
            self.drop_websockets()


class _Encoded:
    """A JSON answer already serialised (bytes)."""

    def __init__(self, data):
        self.data = data


class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY (socketserver.StreamRequestHandler): an answer is one write
    # (_send), so Nagle would only hold its last segment back.
    disable_nagle_algorithm = True
    emulator = None

    def log_message(self, fmt, *args):
        if self.emulator.verbose:
            sys.stderr.write("cloudsigma-emulator: %s\n" % (fmt % args))

    def log_request(self, code="-", size="-"):
        if self.emulator.verbose:  # method and path only: never bodies or headers
            sys.stderr.write("cloudsigma-emulator: %s %s -> %s\n"
                             % (self.command, self.path.split("?", 1)[0], code))

    def _send(self, status, body, headers=()):
        data = b"" if body is None else body.data if isinstance(body, _Encoded) else \
            json.dumps(body).encode()
        self.send_response(status)
        # A 204 is labelled text/html in the dumps; JSON otherwise.
        self.send_header("Content-Type", "application/json; charset=utf-8" if status != 204
                         else "text/html; charset=utf-8")
        self.send_header("X-REQUEST-ID", str(uuidlib.uuid4()))
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        # Headers and body in one write (one packet for a small answer):
        # end_headers() would flush the headers alone, and with the body
        # written after, the client's delayed ACK and Nagle cost ~40 ms.
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(data)
        self.wfile.write(b"".join(self._headers_buffer))
        self._headers_buffer = []

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if path.rstrip("/") == "/websocket" and self.command == "GET":
            return self._websocket()
        if path == "/emulator/drop-websockets" and self.command == "POST":
            # Test control (not part of CloudSigma's API): closes every
            # websocket with 1001 "going away", so clients must reconnect.
            self.emulator.drop_websockets()
            return self._send(200, {})
        if path == "/emulator/list-requests" and self.command == "GET":
            # Test control: how many list requests (GET of a collection or
            # its /detail/, any page) each collection has answered, and
            # "all": every API request (lists, gets, writes).
            with self.emulator._lock:
                return self._send(200, dict(self.emulator.list_requests))
        if path == "/emulator/expire-subscriptions" and self.command == "POST":
            # Test control: time passes past every non-renewing
            # subscription's end_time (its VLAN or IP disappears).
            with self.emulator._lock:
                expired = self.emulator.expire_subscriptions()
            return self._send(200, {"expired": expired})
        if path == "/emulator/websockets" and self.command == "POST":
            # Test control: {"refuse": true} cuts the websocket (open ones
            # closed, new handshakes 503) until {"refuse": false}.
            try:
                refuse = json.loads(body or b"{}")["refuse"]
            except (ValueError, KeyError, TypeError):
                return self._send(400, ApiError(400, "validation", "want {\"refuse\": bool}").body())
            self.emulator.set_refuse_websockets(refuse)
            return self._send(200, {"refuse": bool(refuse)})
        if not (path + "/").startswith(API_PREFIX + "/"):
            return self._send(404, ApiError(404, "notexist", "Not found").body())
        if not self.emulator.authorized(self.headers.get("Authorization")):
            return self._send(401, ApiError(401, "permission",
                                            "Authentication credentials were not provided "
                                            "or are wrong").body(),
                              [("WWW-Authenticate", 'Basic realm="users"')])
        try:
            status, payload, headers = self.emulator.handle(self.command, path, query, body)
        except ApiError as e:
            return self._send(e.status, e.body())
        self._send(status, payload, headers)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    # -- websocket (RFC 6455, server side) ------------------------------------
    def _websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        cookies = {}
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, _, v = part.strip().partition("=")
            cookies[k] = v
        if (self.headers.get("Upgrade", "").lower() != "websocket" or
                "upgrade" not in self.headers.get("Connection", "").lower() or
                self.headers.get("Sec-WebSocket-Version") != "13" or not key):
            return self._send(400, ApiError(400, "validation", "Not a websocket request").body())
        q = self.emulator.register_socket(cookies.get("async_auth", ""))
        if q is False:
            return self._send(503, ApiError(503, "backend", "Websocket refused (test control)").body())
        if q is None:
            return self._send(401, ApiError(401, "permission", "Bad async_auth cookie").body())
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        sock = self.connection
        try:
            self._pump(sock, q)
        except OSError:
            pass
        finally:
            self.emulator.unregister_socket(q)

    @staticmethod
    def _frame(opcode, payload):
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack(">H", n)
        else:
            head += bytes([127]) + struct.pack(">Q", n)
        return head + payload  # server frames are never masked

    def _read_frame(self, sock, buf):
        """(opcode, payload) of one client frame from `buf` (a bytearray fed
        from `sock`), or None when it is not complete yet. Client frames are
        masked (RFC 6455 §5.3)."""
        if len(buf) < 2:
            return None
        n, at = buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                return None
            n, at = struct.unpack(">H", bytes(buf[2:4]))[0], 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n, at = struct.unpack(">Q", bytes(buf[2:10]))[0], 10
        if not buf[1] & 0x80 or n > 1 << 20:
            raise OSError("unmasked or oversized client frame")
        if len(buf) < at + 4 + n:
            return None
        mask = buf[at:at + 4]
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[at + 4:at + 4 + n]))
        opcode = buf[0] & 0x0F
        del buf[:at + 4 + n]
        return opcode, data

    def _pump(self, sock, q):
        buf = bytearray()
        while True:
            try:
                item = q.get(timeout=0.05)
            except queue.Empty:
                item = ""
            if item is None:  # emulator stopping or dropping sockets: going away
                sock.sendall(self._frame(0x8, struct.pack(">H", 1001)))
                return
            if item:
                sock.sendall(self._frame(0x1, item.encode()))
            while select.select([sock], [], [], 0)[0]:
                chunk = sock.recv(65536)
                if not chunk:
                    return  # the client hung up
                buf += chunk
                while True:
                    frame = self._read_frame(sock, buf)
                    if frame is None:
                        break
                    opcode, payload = frame
                    if opcode == 0x8:  # close: echo the code and hang up
                        sock.sendall(self._frame(0x8, payload[:2]))
                        return
                    if opcode == 0x9:  # ping -> pong with the same payload
                        sock.sendall(self._frame(0xA, payload))


def _write_ready_file(path, line):
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    with open(tmp, "w") as f:
        f.write(line + "\n")
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="CloudSigma API 2.0 emulator for tests.")
    ap.add_argument("--listen", default="127.0.0.1:0", help="loopback HOST:PORT (0 picks one)")
    ap.add_argument("--username", default="user@example.com")
    ap.add_argument("--password", default="secret",
                    help="the password Basic auth accepts (or set $CLOUDSIGMA_EMULATOR_PASSWORD)")
    ap.add_argument("--transition-delay", type=float, default=0.3,
                    help="seconds a drive/server spends in a transient state")
    ap.add_argument("--delete-delay", type=float, default=0.3,
                    help="seconds until a deleted object answers 404")
    ap.add_argument("--ready-file", help="also write the READY line here (atomically)")
    ap.add_argument("--max-lifetime", type=float, default=900,
                    help="exit after this many seconds (0 = no limit)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    password = os.environ.get("CLOUDSIGMA_EMULATOR_PASSWORD", args.password)
    try:
        parent = os.getppid()
        emu = CloudSigmaEmulator(args.listen, args.username, password, args.transition_delay,
                                 args.delete_delay, args.verbose).start()
    except (OSError, ValueError) as e:
        sys.stderr.write("cloudsigma_emulator: %s\n" % e)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    line = emu.ready_line()
    if args.ready_file:
        _write_ready_file(args.ready_file, line)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    deadline = (time.monotonic() + args.max_lifetime) if args.max_lifetime > 0 else None
    while not stop.wait(0.2):
        if deadline is not None and time.monotonic() >= deadline:
            break
        if os.getppid() != parent:  # re-parented: whoever started us is gone
            break
    emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
