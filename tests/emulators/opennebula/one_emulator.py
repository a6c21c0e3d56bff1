#!/usr/bin/env python3
"""OpenNebula 6.10 XML-RPC (oned) emulator for tests (Python 3, stdlib only).

Speaks oned's wire protocol as shared/protocols/opennebula.md describes it
(sections cited as §N): POST /RPC2 with an XML-RPC <methodCall>, the session
string as first parameter, responses in xmlrpc-c's byte layout (<i4>, CRLF,
strings always in <string>), the [success, result, code] array convention
with the 5-item failure array of 6.x, xmlrpc-c faults for wrong or missing
parameters, and object documents shaped as the 6.10.5 XSDs describe (no
namespace, no XML declaration, template values in CDATA, template attributes
sorted by name).

Run as a program:

  python3 one_emulator.py [--listen 127.0.0.1:0] [--auth oneadmin:opennebula]
      [--step-delay 0.1] [--hosts 2] [--ready-file PATH] [--max-lifetime 900]

It prints `READY endpoint=http://127.0.0.1:PORT/RPC2` once listening (and
writes that line atomically to --ready-file). It stops after --max-lifetime
seconds (0 = never), on SIGTERM/SIGINT, and when its parent process goes away.

Or import it: `emu = OneEmulator(...); emu.start(); emu.endpoint; emu.stop()`;
`emu.document(kind, id)` returns an object document without a request (for
the XSD validation test).

VMs move through oned's numeric state machine on a timer (§8): every step
takes --step-delay seconds, e.g. PENDING -> ACTIVE/PROLOG -> ACTIVE/BOOT ->
ACTIVE/RUNNING, and poweroff goes ACTIVE/SHUTDOWN_POWEROFF -> POWEROFF.
Thread-safety: one lock guards all state; each connection has its own thread.
"""

import argparse
import http.server
import ipaddress
import os
import re
import signal
import socketserver
import sys
import threading
import time
import xml.parsers.expat
import xmlrpc.client

ONE_VERSION = "6.10.5"

# Error codes (§4).
AUTHENTICATION = 0x100
AUTHORIZATION = 0x200
NO_EXISTS = 0x400
ACTION = 0x800
XML_RPC_API = 0x1000
INTERNAL = 0x2000
ALLOCATE = 0x4000

# xmlrpc-c fault codes (§2.4).
FAULT_TYPE = -501
FAULT_PARSE = -503
FAULT_NO_SUCH_METHOD = -506

# VM STATE (§7.1) and LCM_STATE (§7.2) numbers used here.
INIT, PENDING, HOLD, ACTIVE, STOPPED, SUSPENDED, DONE = 0, 1, 2, 3, 4, 5, 6
POWEROFF, UNDEPLOYED, CLONING, CLONING_FAILURE = 8, 9, 10, 11
VM_STATE_NAMES = ["INIT", "PENDING", "HOLD", "ACTIVE", "STOPPED", "SUSPENDED", "DONE",
                  "FAILED", "POWEROFF", "UNDEPLOYED", "CLONING", "CLONING_FAILURE"]
LCM_INIT, PROLOG, BOOT, RUNNING, SAVE_STOP, SAVE_SUSPEND = 0, 1, 2, 3, 5, 6
EPILOG_STOP, EPILOG, SHUTDOWN, UNKNOWN, HOTPLUG = 10, 11, 12, 16, 17
SHUTDOWN_POWEROFF, BOOT_UNKNOWN, BOOT_POWEROFF, BOOT_SUSPENDED = 18, 19, 20, 21
BOOT_STOPPED, CLEANUP_DELETE, SHUTDOWN_UNDEPLOY, EPILOG_UNDEPLOY = 22, 23, 29, 30
PROLOG_UNDEPLOY, BOOT_UNDEPLOY, HOTPLUG_PROLOG_POWEROFF, HOTPLUG_EPILOG_POWEROFF = 31, 32, 33, 34
PROLOG_RESUME = 9
HOTPLUG_NIC, HOTPLUG_NIC_POWEROFF = 25, 65
LCM_NAMES = {0: "LCM_INIT", 1: "PROLOG", 2: "BOOT", 3: "RUNNING", 5: "SAVE_STOP",
             6: "SAVE_SUSPEND", 9: "PROLOG_RESUME", 10: "EPILOG_STOP", 11: "EPILOG",
             12: "SHUTDOWN", 16: "UNKNOWN", 17: "HOTPLUG", 18: "SHUTDOWN_POWEROFF",
             19: "BOOT_UNKNOWN", 20: "BOOT_POWEROFF", 21: "BOOT_SUSPENDED", 22: "BOOT_STOPPED",
             23: "CLEANUP_DELETE", 29: "SHUTDOWN_UNDEPLOY", 30: "EPILOG_UNDEPLOY",
             31: "PROLOG_UNDEPLOY", 32: "BOOT_UNDEPLOY", 33: "HOTPLUG_PROLOG_POWEROFF",
             34: "HOTPLUG_EPILOG_POWEROFF", 25: "HOTPLUG_NIC", 65: "HOTPLUG_NIC_POWEROFF"}

# HISTORY/ACTION numbers (§7.4).
HISTORY_ACTIONS = {"terminate": 27, "terminate-hard": 28, "undeploy": 5, "undeploy-hard": 6,
                   "poweroff": 19, "poweroff-hard": 20, "reboot": 15, "reboot-hard": 16,
                   "hold": 7, "release": 8, "stop": 9, "suspend": 10, "resume": 11,
                   "resched": 17, "unresched": 18, "disk-attach": 21, "disk-detach": 22,
                   "rename": 34, "resize": 35, "nic-attach": 23, "nic-detach": 24}

# IMAGE TYPE and STATE numbers (§7.3).
IMAGE_OS, IMAGE_CDROM, IMAGE_DATABLOCK, IMAGE_KERNEL = 0, 1, 2, 3
IMAGE_READY, IMAGE_USED, IMAGE_USED_PERS = 1, 2, 8

# The VM TEMPLATE children vm.xsd allows, in its order; oned moves every other
# attribute of an allocated template to USER_TEMPLATE.
VM_TEMPLATE_KEYS = [
    "AUTOMATIC_DS_REQUIREMENTS", "AUTOMATIC_NIC_REQUIREMENTS", "AUTOMATIC_REQUIREMENTS",
    "CLONING_TEMPLATE_ID", "CONTEXT", "CPU", "CPU_COST", "DISK", "DISK_COST", "EMULATOR",
    "FEATURES", "HYPERV_OPTIONS", "GRAPHICS", "VIDEO", "IMPORTED", "INPUT", "MEMORY",
    "MEMORY_COST", "MEMORY_MAX", "MEMORY_SLOTS", "MEMORY_RESIZE_MODE", "NIC", "NIC_ALIAS",
    "NIC_DEFAULT", "NUMA_NODE", "OS", "PCI", "RAW", "SECURITY_GROUP_RULE", "SNAPSHOT",
    "SPICE_OPTIONS", "SUBMIT_ON_HOLD", "TEMPLATE_ID", "TM_MAD_SYSTEM", "TOPOLOGY", "VCPU",
    "VCPU_MAX", "VMGROUP", "VMID", "VROUTER_ID", "VROUTER_KEEPALIVED_ID",
    "VROUTER_KEEPALIVED_PASSWORD", "SCHED_ACTION"]
_VM_TEMPLATE_ORDER = {k: i for i, k in enumerate(VM_TEMPLATE_KEYS)}
# The few USER_TEMPLATE keys the short (pool) body carries (§11.2).
SHORT_USER_TEMPLATE_KEYS = ("LABELS", "ERROR", "SCHED_MESSAGE", "SCHED_RANK", "SCHED_DS_RANK",
                            "SCHED_REQUIREMENTS", "SCHED_DS_REQUIREMENTS", "USER_PRIORITY")

_NAME_FORBIDDEN = set("&|:\\\";/'#{}$<>\t\n\v\f\r")


class OneError(Exception):
    """An OpenNebula failure array: [false, message, code, object id, -1]."""

    def __init__(self, code, message, obj_id=-1):
        super().__init__(message)
        self.code, self.message, self.obj_id = code, message, obj_id


class Fault(Exception):
    """An xmlrpc-c fault."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


# ---------------------------------------------------------------------------
# Templates (§9): a list of (NAME, value) where value is a str or a list of
# (NAME, str) for a vector attribute.

class TemplateSyntaxError(Exception):
    pass


def _norm_name(name):
    name = name.upper()
    if not re.match(r"[A-Z_]", name) or name.startswith("XML"):
        name = "ONE_" + name
    return name


def parse_template_text(text):
    """The `ATTR = value` form (§9.1)."""
    pos, n, line = 0, len(text), 1
    attrs = []

    def error(msg):
        raise TemplateSyntaxError(f"Parse error: syntax error, {msg} at line {line}, "
                                  f"columns {pos}:{pos + 1}")

    def skip(newlines=True):
        nonlocal pos, line
        while pos < n:
            c = text[pos]
            if c == "#":
                while pos < n and text[pos] != "\n":
                    pos += 1
            elif c in " \t\r" or (newlines and c == "\n"):
                if c == "\n":
                    line += 1
                pos += 1
            else:
                break

    def name():
        nonlocal pos
        m = re.compile(r"[A-Za-z0-9_]+").match(text, pos)
        if not m:
            error("unexpected character, expecting VARIABLE")
        pos = m.end()
        return _norm_name(m.group(0))

    def value(in_vector):
        nonlocal pos, line
        if pos < n and text[pos] == '"':
            pos += 1
            out = []
            while True:
                if pos >= n:
                    error("unexpected end of file, expecting '\"'")
                c = text[pos]
                if c == "\\" and pos + 1 < n and text[pos + 1] == '"':
                    out.append('"')
                    pos += 2
                    continue
                if c == '"':
                    pos += 1
                    break
                if c == "\n":
                    line += 1
                out.append(c)
                pos += 1
            return "".join(out)
        stop = " \t\r\n=#,[]" if in_vector else " \t\r\n=#,[]"
        start = pos
        while pos < n and text[pos] not in stop:
            pos += 1
        return text[start:pos]

    while True:
        skip()
        if pos >= n:
            break
        key = name()
        skip(newlines=False)
        if pos >= n or text[pos] != "=":
            error("unexpected character, expecting EQUAL")
        pos += 1
        skip(newlines=False)
        if pos < n and text[pos] == "[":
            pos += 1
            vector = []
            skip()
            if pos < n and text[pos] == "]":
                pos += 1
            else:
                while True:
                    skip()
                    sub = name()
                    skip()
                    if pos >= n or text[pos] != "=":
                        error("unexpected character, expecting EQUAL")
                    pos += 1
                    skip()
                    vector.append((sub, value(True)))
                    skip()
                    if pos < n and text[pos] == ",":
                        pos += 1
                        continue
                    if pos < n and text[pos] == "]":
                        pos += 1
                        break
                    error("unexpected character, expecting COMMA or ']'")
            attrs.append((key, vector))
        else:
            attrs.append((key, value(False)))
    for _, v in attrs:
        for s in ([v] if isinstance(v, str) else [x for _, x in v]):
            if "]]>" in s:
                raise TemplateSyntaxError("Parse error: value contains ]]>")
    return attrs


def parse_template_xml(text):
    """The XML form (§9.2): children of the root become attributes."""
    stack, attrs = [], []
    texts = []

    def start(name, _attrs):
        stack.append(name)
        texts.append([])
        if len(stack) == 2:
            attrs.append([_norm_name(name), None])
        elif len(stack) == 3:
            if attrs[-1][1] is None or isinstance(attrs[-1][1], str):
                attrs[-1][1] = []
        elif len(stack) > 3:
            raise TemplateSyntaxError("Parse error: XML Template malformed.")

    def end(name):
        content = "".join(texts.pop())
        depth = len(stack)
        stack.pop()
        if depth == 3:
            attrs[-1][1].append((_norm_name(name), content))
        elif depth == 2 and attrs[-1][1] is None:
            attrs[-1][1] = content

    def chars(data):
        if texts:
            texts[-1].append(data)

    p = xml.parsers.expat.ParserCreate()
    # Entity declarations are refused outright (a template never has one).
    p.EntityDeclHandler = lambda *a: (_ for _ in ()).throw(
        TemplateSyntaxError("Parse error: XML Template malformed."))
    p.StartElementHandler, p.EndElementHandler, p.CharacterDataHandler = start, end, chars
    try:
        p.Parse(text, True)
    except (xml.parsers.expat.ExpatError, TemplateSyntaxError):
        raise TemplateSyntaxError("Parse error: XML Template malformed.")
    return [(k, v if v is not None else "") for k, v in attrs]


def parse_template(text):
    if text.startswith("<"):
        return parse_template_xml(text)
    return parse_template_text(text)


def template_get(attrs, key, default=None):
    for k, v in attrs:
        if k == key:
            return v
    return default


def template_merge(old, new):
    """Merge (§9.4): each name in `new` first removes all of that name; an
    empty vector only deletes."""
    names = {k for k, _ in new}
    out = [(k, v) for k, v in old if k not in names]
    out += [(k, v) for k, v in new if not (isinstance(v, list) and not v)]
    return out


def _cdata(s):
    return "<![CDATA[" + s + "]]>"


def _esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def template_xml(tag, attrs, order=None):
    """TEMPLATE-like element: sorted by name in byte order (oned's multimap),
    repeated names in insertion order, vector members sorted, values CDATA."""
    if order is None:
        key = lambda kv: kv[0].encode()  # noqa: E731
    else:
        key = lambda kv: (order.get(kv[0], len(order)), kv[0].encode())  # noqa: E731
    parts = [f"<{tag}>"]
    for k, v in sorted(attrs, key=key):
        if isinstance(v, str):
            parts.append(f"<{k}>{_cdata(v)}</{k}>")
        else:
            inner = "".join(f"<{sk}>{_cdata(sv)}</{sk}>"
                            for sk, sv in sorted(v, key=lambda kv: kv[0].encode()))
            parts.append(f"<{k}>{inner}</{k}>")
    parts.append(f"</{tag}>")
    return "".join(parts)


def _elems(*pairs):
    return "".join(f"<{k}>{_esc(v)}</{k}>" for k, v in pairs)


def _ids(tag, ids):
    return f"<{tag}>" + "".join(f"<ID>{i}</ID>" for i in ids) + f"</{tag}>"


def _permissions(p="110100100"):
    names = ["OWNER_U", "OWNER_M", "OWNER_A", "GROUP_U", "GROUP_M", "GROUP_A",
             "OTHER_U", "OTHER_M", "OTHER_A"]
    return "<PERMISSIONS>" + "".join(f"<{n}>{c}</{n}>" for n, c in zip(names, p)) + \
        "</PERMISSIONS>"


def validate_name(name):
    if not name:
        return "Invalid NAME, it cannot be empty"
    if len(name) > 128:
        return "Invalid NAME, max length is 128 chars"
    for c in name:
        if c in _NAME_FORBIDDEN:
            return f"Invalid NAME, char '{c}' is not allowed"
    return None


# ---------------------------------------------------------------------------
# XML-RPC serialisation as xmlrpc-c writes it (§2.2).

def _xmlrpc_string(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
            .replace("\r", "&#x0d;")


def _value(v):
    if isinstance(v, bool):
        return f"<value><boolean>{1 if v else 0}</boolean></value>"
    if isinstance(v, I8):
        return f"<value><i8>{int(v)}</i8></value>"
    if isinstance(v, int):
        return f"<value><i4>{v}</i4></value>"
    return f"<value><string>{_xmlrpc_string(v)}</string></value>"


class I8(int):
    pass


def response_array(items):
    body = "".join(_value(v) + "\r\n" for v in items)
    return ('<?xml version="1.0" encoding="UTF-8"?>\r\n<methodResponse>\r\n<params>\r\n'
            "<param><value><array><data>\r\n" + body +
            "</data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n")


def fault_response(code, message):
    return ('<?xml version="1.0" encoding="UTF-8"?>\r\n<methodResponse>\r\n<fault>\r\n'
            "<value><struct>\r\n"
            f"<member><name>faultCode</name>\r\n<value><i4>{code}</i4></value></member>\r\n"
            f"<member><name>faultString</name>\r\n<value><string>{_xmlrpc_string(message)}"
            "</string></value></member>\r\n</struct></value>\r\n</fault>\r\n"
            "</methodResponse>\r\n")


# ---------------------------------------------------------------------------
# Method signatures: type letters after the session, then how many trailing
# ones are optional (§6). i int, s string, b boolean.

SIGNATURES = {
    "one.system.version": ("", 0),
    "one.vmpool.info": ("iiiis", 1),
    "one.vmpool.infoextended": ("iiiis", 1),
    "one.vm.info": ("ib", 1),
    "one.vm.allocate": ("sb", 1),
    "one.template.instantiate": ("isbsb", 3),
    "one.vm.action": ("si", 0),
    "one.vm.update": ("isi", 1),
    "one.vm.attach": ("is", 0),
    "one.vm.detach": ("ii", 0),
    "one.vm.rename": ("is", 0),
    "one.vm.resize": ("isb", 0),
    "one.hostpool.info": ("", 0),
    "one.host.info": ("ib", 1),
    "one.host.update": ("isi", 1),
    "one.templatepool.info": ("iii", 0),
    "one.template.info": ("ibb", 2),
    "one.imagepool.info": ("iii", 0),
    "one.image.info": ("ib", 1),
    "one.vnpool.info": ("iii", 0),
    "one.vn.info": ("ib", 1),
    "one.vn.allocate": ("si", 1),
    "one.vn.update": ("isi", 1),
    "one.vn.delete": ("i", 0),
    "one.vn.hold": ("is", 0),
    "one.vn.release": ("is", 0),
    "one.vm.attachnic": ("is", 0),
    "one.vm.detachnic": ("ii", 0),
    "one.user.info": ("ib", 1),
    "one.user.update": ("isi", 1),
    "one.datastorepool.info": ("", 0),
    "one.marketpool.info": ("", 0),
    "one.market.info": ("ib", 1),
    "one.secgrouppool.info": ("iii", 0),
    "one.secgroup.info": ("ib", 1),
    "one.secgroup.allocate": ("s", 0),
    "one.secgroup.update": ("isi", 1),
    "one.secgroup.delete": ("i", 0),
    "one.zonepool.info": ("", 0),
    "one.zone.info": ("ib", 1),
    "one.clusterpool.info": ("", 0),
    "one.cluster.info": ("ib", 1),
}

_TYPE_WORDS = {"i": "integer", "s": "string", "b": "boolean"}


def check_params(method, params):
    types, optional = SIGNATURES[method]
    # The session is param 0 and a string.
    if not params:
        raise Fault(FAULT_TYPE, "Not enough parameters")
    if not isinstance(params[0], str):
        raise Fault(FAULT_TYPE, "Parameter that is supposed to be string is not")
    args = params[1:]
    required = len(types) - optional
    if method == "one.template.instantiate" and len(args) == 3:
        # Params 3 and 4 are optional only as a pair (§6.1).
        raise Fault(FAULT_TYPE, "Not enough parameters")
    if len(args) < required:
        raise Fault(FAULT_TYPE, "Not enough parameters")
    for t, a in zip(types, args):
        ok = (isinstance(a, bool) if t == "b" else
              isinstance(a, int) and not isinstance(a, bool) if t == "i" else
              isinstance(a, str))
        if not ok:
            raise Fault(FAULT_TYPE, f"Parameter that is supposed to be {_TYPE_WORDS[t]} is not")
    return args


# ---------------------------------------------------------------------------
# The cloud.

class OneEmulator:
    def __init__(self, listen="127.0.0.1:0", auth="oneadmin:opennebula", step_delay=0.1,
                 hosts=2, verbose=False):
        host, port = listen.rsplit(":", 1)
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the emulator listens on loopback only")
        self.listen = (host, int(port))
        user, _, password = auth.partition(":")
        self.users = {user: (0, password)}
        self.step_delay = step_delay
        self.verbose = verbose
        self._lock = threading.RLock()
        self._httpd = None
        self._thread = None
        self.calls = []  # method names received, for tests
        now = int(time.time())
        self.next_ids = {"vm": 0, "secgroup": 100}
        self.hosts = {}
        for i in range(hosts):
            self.hosts[i] = {
                "id": i, "name": f"node-{i}", "state": 2, "prev_state": 2, "cluster_id": 0,
                "total_mem": 16 * 1024 * 1024, "total_cpu": 800,
                "template": [("ARCH", "x86_64"), ("CPUSPEED", "2400"),
                             ("HOSTNAME", f"node-{i}"), ("HYPERVISOR", "kvm"),
                             ("LABELS", "ssd,rack-1" if i == 0 else "hdd"),
                             ("RESERVED_CPU", ""), ("RESERVED_MEM", "")]}
        self.templates = {
            0: {"id": 0, "name": "debian-12", "regtime": now, "template": [
                ("CONTEXT", [("NETWORK", "YES"), ("SSH_PUBLIC_KEY", "$USER[SSH_PUBLIC_KEY]")]),
                ("CPU", "1"), ("DESCRIPTION", "Debian 12 (bookworm)"),
                ("DISK", [("IMAGE_ID", "0")]), ("GRAPHICS", [("LISTEN", "0.0.0.0"),
                                                            ("TYPE", "VNC")]),
                ("LOGO", "images/logos/debian.png"), ("MEMORY", "768"),
                ("NIC", [("NETWORK_ID", "0")]), ("OS", [("ARCH", "x86_64")]), ("VCPU", "1")]},
            1: {"id": 1, "name": "alpine-3", "regtime": now, "template": [
                ("CPU", "0.5"), ("DISK", [("IMAGE_ID", "1")]), ("MEMORY", "256"),
                ("NIC", [("NETWORK_ID", "0")]), ("VCPU", "1")]},
        }
        # Images (§11.4): the two OS disks the templates use, two data disks
        # and a kernel (an image that is no block device).
        def image(i, name, size, type_, persistent=0, ds=(1, "default"), fmt="qcow2",
                  template=()):
            return {"id": i, "name": name, "size": size, "type": type_,
                    "persistent": persistent, "ds_id": ds[0], "ds": ds[1], "regtime": now,
                    "format": fmt, "template": list(template)}
        self.images = {
            0: image(0, "debian-12-disk", 2252, IMAGE_OS,
                     template=[("DEV_PREFIX", "vd"), ("LABELS", "os,debian")]),
            1: image(1, "alpine-3-disk", 128, IMAGE_OS, template=[("DEV_PREFIX", "vd")]),
            2: image(2, "scratch", 1024, IMAGE_DATABLOCK, fmt="raw",
                     template=[("DESCRIPTION", "Scratch space")]),
            3: image(3, "data-1", 10240, IMAGE_DATABLOCK, persistent=1, fmt="raw"),
            4: image(4, "vmlinuz-6", 12, IMAGE_KERNEL, ds=(2, "files"), fmt="raw"),
        }
        self.secgroups = {0: {"id": 0, "name": "default", "template": [
            ("DESCRIPTION", "The default security group is added to every network."),
            ("RULE", [("PROTOCOL", "ALL"), ("RULE_TYPE", "OUTBOUND")]),
            ("RULE", [("PROTOCOL", "ALL"), ("RULE_TYPE", "INBOUND")])]}}
        self.markets = {
            0: {"id": 0, "name": "OpenNebula Public", "mad": "one", "state": 0,
                "template": [("DESCRIPTION", "OpenNebula Systems MarketPlace"),
                             ("MARKET_MAD", "one")], "apps": [0, 1, 2]},
            1: {"id": 1, "name": "Linux Containers", "mad": "linuxcontainers", "state": 0,
                "template": [("MARKET_MAD", "linuxcontainers")], "apps": []},
        }
        self.zones = {0: {"id": 0, "name": "OpenNebula", "state": 0,
                          "endpoint": "http://localhost:2633/RPC2"}}
        self.clusters = {0: {"id": 0, "name": "default", "template": [("RESERVED_CPU", "")]}}
        self.vms = {}
        # Virtual networks (§11.8 VNET): the one the seeded templates' NICs
        # use. A lease is either held (one.vn.hold: `held`) or used by a live
        # VM's NIC on that network (derived from the VMs, so a VM that is
        # DONE gives its leases back as oned does).
        self.next_ids["vnet"] = 1
        self.vnets = {0: {"id": 0, "name": "private", "bridge": "br0", "vn_mad": "bridge",
                          "vlan_id": "", "regtime": now, "held": [],
                          "ars": [{"id": 0, "type": "IP4", "ip": "10.0.0.2", "size": 250}],
                          "template": [("BRIDGE", "br0"), ("DNS", "10.0.0.1"),
                                       ("GATEWAY", "10.0.0.1"),
                                       ("NETWORK_ADDRESS", "10.0.0.0"),
                                       ("NETWORK_MASK", "255.255.255.0"),
                                       ("VN_MAD", "bridge")]}}
        # User templates (one.user.info / one.user.update), by user id.
        self.user_templates = {0: []}

    # Lifecycle --------------------------------------------------------------
    def start(self):
        emu = self

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        class Handler(_Handler):
            emulator = emu

        self._httpd = Server(self.listen, Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def endpoint(self):
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/RPC2"

    def ready_line(self):
        return f"READY endpoint={self.endpoint}"

    # Dispatch ---------------------------------------------------------------
    def handle(self, body):
        """Returns the XML-RPC response text for a request body."""
        try:
            params, method = xmlrpc.client.loads(body, use_builtin_types=True)
        except Exception as e:  # expat or xmlrpc.client errors
            return fault_response(FAULT_PARSE, f"XML-RPC parse error: {e}")
        if method is None:
            return fault_response(FAULT_PARSE, "Call XML not a proper XML-RPC call")
        if method not in SIGNATURES:
            return fault_response(FAULT_NO_SUCH_METHOD, f"Method '{method}' not defined")
        try:
            args = check_params(method, list(params))
            with self._lock:
                self.calls.append(method)
                self._authenticate(method, params[0])
                self._advance_all()
                result = getattr(self, "m_" + method[4:].replace(".", "_"))(*args)
            return response_array([True, result, 0])
        except Fault as f:
            return fault_response(f.code, f.message)
        except OneError as e:
            message = f"[{method}] {e.message}"
            return response_array([False, message, e.code, e.obj_id, I8(-1)])

    def _authenticate(self, method, session):
        user, _, secret = session.partition(":")
        entry = self.users.get(user)
        if entry is None or entry[1] != secret:
            raise OneError(AUTHENTICATION, "User couldn't be authenticated, aborting call.")

    # State machine (§8) -----------------------------------------------------
    def _schedule(self, vm, steps):
        """Queues (state, lcm) steps, one per step_delay from now."""
        now = time.monotonic()
        vm["steps"] = [(now + self.step_delay * (i + 1), s, l) for i, (s, l) in enumerate(steps)]

    def _set_state(self, vm, state, lcm):
        if (state, lcm) != (vm["state"], vm["lcm"]):
            vm["prev_state"], vm["prev_lcm"] = vm["state"], vm["lcm"]
        vm["state"], vm["lcm"] = state, lcm
        if state == ACTIVE and lcm == PROLOG and not vm["history"]:
            host = self.hosts[vm["id"] % len(self.hosts)] if self.hosts else None
            if host is not None:
                vm["history"].append({"seq": 0, "hid": host["id"], "hostname": host["name"],
                                      "stime": int(time.time()), "action": 0})
                vm["deploy_id"] = f"one-{vm['id']}"
        if state == DONE:
            vm["etime"] = int(time.time())

    def _advance_all(self):
        now = time.monotonic()
        for vm in self.vms.values():
            while vm["steps"] and vm["steps"][0][0] <= now:
                _, s, l = vm["steps"].pop(0)
                self._set_state(vm, s, l)

    def _vm(self, vm_id, method_object="virtual machine"):
        vm = self.vms.get(vm_id)
        if vm is None:
            raise OneError(NO_EXISTS, f"Error getting {method_object} [{vm_id}].", vm_id)
        return vm

    def _state_name(self, vm):
        if vm["state"] == ACTIVE:
            return LCM_NAMES.get(vm["lcm"], str(vm["lcm"]))
        return VM_STATE_NAMES[vm["state"]]

    def _new_vm(self, name, attrs, hold, template_id=None):
        vm_id = self.next_ids["vm"]
        if not name:
            name = template_get(attrs, "NAME") or ""
        if not name:
            name = f"one-{vm_id}"
        error = validate_name(name)
        if error:
            raise OneError(INTERNAL, error)
        for key, check in (("CPU", r"\d+(\.\d+)?"), ("VCPU", r"\d+"), ("MEMORY", r"\d+")):
            v = template_get(attrs, key)
            if v is None:
                continue
            if not isinstance(v, str) or not re.fullmatch(check, v) or float(v) <= 0:
                what = {"CPU": "a positive float or integer value",
                        "VCPU": "a positive integer value",
                        "MEMORY": "a positive integer value"}[key]
                raise OneError(INTERNAL, f"{key} attribute must be {what}.")
        template, user, targets, taken = [], [], [], []
        disk_id = nic_id = 0
        for k, v in attrs:
            if k == "NAME":
                continue
            if k == "DISK" and isinstance(v, list):
                v = self._disk(v, disk_id, targets)
                targets.append(template_get(v, "TARGET"))
                disk_id += 1
            if k == "NIC" and isinstance(v, list):
                # Each NIC takes a lease of its network (or fails the whole
                # allocation, nothing kept).
                v = self._nic(v, nic_id, vm_id, taken, INTERNAL)
                taken.append((template_get(v, "NETWORK_ID"), template_get(v, "IP")))
                nic_id += 1
            (template if k in _VM_TEMPLATE_ORDER else user).append((k, v))
        template = [(k, self._context(v, disk_id, targets, template)
                     if k == "CONTEXT" and isinstance(v, list) else v) for k, v in template]
        self.next_ids["vm"] += 1
        template += [("AUTOMATIC_REQUIREMENTS", "!(PUBLIC_CLOUD = YES) & !(PIN_POLICY = PINNED)"),
                     ("TM_MAD_SYSTEM", ""), ("VMID", str(vm_id))]
        if template_id is not None:
            template.append(("TEMPLATE_ID", str(template_id)))
        vm = {"id": vm_id, "name": name, "state": PENDING, "lcm": LCM_INIT,
              "prev_state": PENDING, "prev_lcm": LCM_INIT, "resched": 0,
              "stime": int(time.time()), "etime": 0, "deploy_id": "", "template": template,
              "user_template": user, "history": [], "steps": []}
        self.vms[vm_id] = vm
        if hold:
            self._set_state(vm, HOLD, LCM_INIT)
        else:
            self._deploy(vm)
        return vm_id

    def _disk(self, attrs, disk_id, used_targets):
        """A DISK vector as oned completes it: DISK_ID, TARGET from the
        DEV_PREFIX (the image's, else vd), and the image's NAME and SIZE."""
        image = None
        image_id = template_get(attrs, "IMAGE_ID") or ""
        if image_id.isdigit():
            image = self.images.get(int(image_id))
        out = [(k, v) for k, v in attrs if k not in ("DISK_ID",)]
        prefix = template_get(attrs, "DEV_PREFIX") or \
            (template_get(image["template"], "DEV_PREFIX") if image else None) or "vd"
        if not template_get(attrs, "TARGET"):
            letter = next(c for c in "abcdefghijklmnopqrstuvwxyz"
                          if prefix + c not in used_targets)
            out.append(("TARGET", prefix + letter))
        out.append(("DISK_ID", str(disk_id)))
        if image:
            out += [("IMAGE", image["name"]), ("SIZE", str(image["size"])),
                    ("DATASTORE", image["ds"]), ("DATASTORE_ID", str(image["ds_id"])),
                    ("PERSISTENT", "YES" if image["persistent"] else "NO")]
        return out

    def _context(self, attrs, disk_id, used_targets, template):
        """CONTEXT as oned completes it when it allocates the VM ([oned]
        src/vm/VirtualMachineContext.cc, parse_context): `$USER[ATTR]` is
        replaced by the owner's user-template attribute (empty when it has
        none); with NETWORK="YES" each NIC adds ETH<n>_IP and ETH<n>_MAC (oned
        adds more ETH<n>_* from the network's template: mask, gateway, DNS...;
        the emulator's networks keep few of those); the context CD gets the
        DISK_ID after the disks and an hd<letter> TARGET. Every other value,
        USER_DATA and its encoding included, is kept as it was given."""
        owner = dict((k, v) for k, v in self.user_templates.get(0, []) if isinstance(v, str))
        out = [(k, re.sub(r"\$USER\[([A-Za-z0-9_]+)\]",
                          lambda m: owner.get(m.group(1).upper(), ""), v))
               for k, v in attrs if k not in ("DISK_ID", "TARGET")]
        if (template_get(attrs, "NETWORK") or "").upper() == "YES":
            for k, nic in template:
                if k != "NIC" or not isinstance(nic, list):
                    continue
                n = template_get(nic, "NIC_ID")
                out = [(a, v) for a, v in out if a not in (f"ETH{n}_IP", f"ETH{n}_MAC")]
                out += [(f"ETH{n}_IP", template_get(nic, "IP") or ""),
                        (f"ETH{n}_MAC", template_get(nic, "MAC") or "")]
        letter = next(c for c in "abcdefghijklmnopqrstuvwxyz" if "hd" + c not in used_targets)
        return out + [("DISK_ID", str(disk_id)), ("TARGET", "hd" + letter)]

    # Networks and leases ---------------------------------------------------
    @staticmethod
    def _ip_int(ip):
        parts = ip.split(".")
        if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
            return None
        return sum(int(p) << (8 * (3 - i)) for i, p in enumerate(parts))

    @staticmethod
    def _ip_str(n):
        return ".".join(str((n >> (8 * (3 - i))) & 255) for i in range(4))

    def _vnet(self, vnet_id, code=NO_EXISTS):
        vnet = self.vnets.get(vnet_id)
        if vnet is None:
            raise OneError(code, f"Error getting virtual network [{vnet_id}].", vnet_id)
        return vnet

    def _leases(self, vnet):
        """ip -> (ar_id, mac, vm id or -1 for a held lease), in AR order."""
        out = {}
        for ip in vnet["held"]:
            out[ip] = -1
        for vm in sorted(self.vms.values(), key=lambda v: v["id"]):
            if vm["state"] == DONE:
                continue
            for k, v in vm["template"]:
                if k == "NIC" and isinstance(v, list) and \
                        template_get(v, "NETWORK_ID") == str(vnet["id"]) and template_get(v, "IP"):
                    out[template_get(v, "IP")] = vm["id"]
        return out

    def _ar_of(self, vnet, ip):
        n = self._ip_int(ip)
        for ar in vnet["ars"]:
            first = self._ip_int(ar["ip"])
            if n is not None and first <= n < first + ar["size"]:
                return ar
        return None

    @staticmethod
    def _mac(ip):
        # oned derives the MAC of an IP4 lease from the AR's MAC prefix
        # (02:00 by default) and the IP's four bytes.
        return "02:00:" + ":".join("%02x" % int(p) for p in ip.split("."))

    def _nic(self, attrs, nic_id, vm_id, taken, code):
        """A NIC vector as oned completes it from its network's lease."""
        net_id = template_get(attrs, "NETWORK_ID")
        vnet = None
        if net_id is not None:
            vnet = self.vnets.get(int(net_id)) if str(net_id).isdigit() else None
        else:
            name = template_get(attrs, "NETWORK")
            vnet = next((n for n in self.vnets.values() if n["name"] == name), None)
            net_id = name
        if vnet is None:
            raise OneError(code, f"Error getting virtual network [{net_id}].", vm_id)
        used = set(self._leases(vnet)) | {ip for n, ip in taken if n == str(vnet["id"])}
        ip = template_get(attrs, "IP")
        if ip:
            if self._ar_of(vnet, ip) is None or ip in used:
                raise OneError(code, "Cannot get IP/MAC lease from virtual network "
                                     f"{vnet['id']}.", vm_id)
        else:
            ip = next((self._ip_str(self._ip_int(ar["ip"]) + i) for ar in vnet["ars"]
                       for i in range(ar["size"])
                       if self._ip_str(self._ip_int(ar["ip"]) + i) not in used), None)
            if ip is None:
                raise OneError(code, "Cannot get IP/MAC lease from virtual network "
                                     f"{vnet['id']}.", vm_id)
        keep = [(k, v) for k, v in attrs if k in ("MODEL", "SECURITY_GROUPS")]
        mac = template_get(attrs, "MAC") or self._mac(ip)
        return keep + [("AR_ID", str(self._ar_of(vnet, ip)["id"])), ("BRIDGE", vnet["bridge"]),
                       ("IP", ip), ("MAC", mac), ("NETWORK", vnet["name"]),
                       ("NETWORK_ID", str(vnet["id"])), ("NIC_ID", str(nic_id)),
                       ("TARGET", f"one-{vm_id}-{nic_id}"), ("VN_MAD", vnet["vn_mad"])] + \
            ([] if template_get(attrs, "SECURITY_GROUPS") else [("SECURITY_GROUPS", "0")])

    def _image_users(self, image_id):
        """Ids of the live VMs with a disk made from the image."""
        return sorted(vm["id"] for vm in self.vms.values() if vm["state"] != DONE and any(
            k == "DISK" and isinstance(v, list) and template_get(v, "IMAGE_ID") == str(image_id)
            for k, v in vm["template"]))

    def _image_state(self, image):
        if not self._image_users(image["id"]):
            return IMAGE_READY
        return IMAGE_USED_PERS if image["persistent"] else IMAGE_USED

    def _deploy(self, vm):
        # The scheduler picks the VM up, then the drivers run (§8).
        self._schedule(vm, [(ACTIVE, PROLOG), (ACTIVE, BOOT), (ACTIVE, RUNNING)])

    # Methods ----------------------------------------------------------------
    def m_system_version(self):
        return ONE_VERSION

    def _pool_range(self, objects, filter_flag, start, end):
        if filter_flag < -4:
            raise OneError(XML_RPC_API, "Incorrect filter_flag")
        items = sorted(objects, key=lambda o: o["id"])
        if end >= -1:
            return [o for o in items if (start == -1 or o["id"] >= start) and
                    (end == -1 or o["id"] <= end)]
        return items[max(start, 0):max(start, 0) + (-end)]

    def m_vmpool_info(self, filter_flag, start, end, state, kv_filter=""):
        return self._vmpool(filter_flag, start, end, state, kv_filter, extended=False)

    def m_vmpool_infoextended(self, filter_flag, start, end, state, kv_filter=""):
        return self._vmpool(filter_flag, start, end, state, kv_filter, extended=True)

    def _vmpool(self, filter_flag, start, end, state, kv_filter, extended):
        if state < -2 or state > 11:
            raise OneError(XML_RPC_API, "Incorrect filter_flag, state")
        if kv_filter:
            # The emulator plays a SQLite-backed oned (§6.1).
            raise OneError(INTERNAL, "JSON query search is not supported by the SQL backend")
        vms = [vm for vm in self.vms.values()
               if (state == -2) or (state == -1 and vm["state"] != DONE) or vm["state"] == state]
        vms = self._pool_range(vms, filter_flag, start, end)
        body = "".join(self.vm_xml(vm) if extended else self.vm_short_xml(vm) for vm in vms)
        return f"<VM_POOL>{body}</VM_POOL>"

    def m_vm_info(self, vm_id, decrypt=False):
        return self.vm_xml(self._vm(vm_id))

    def m_vm_allocate(self, text, hold=False):
        try:
            attrs = parse_template(text)
        except TemplateSyntaxError as e:
            raise OneError(INTERNAL, str(e))
        return self._new_vm("", attrs, hold)

    def m_template_instantiate(self, template_id, name, hold=False, extra="", persistent=False):
        tmpl = self.templates.get(template_id)
        if tmpl is None:
            raise OneError(NO_EXISTS, f"Error getting virtual machine template [{template_id}].",
                           template_id)
        attrs = list(tmpl["template"])
        if extra:
            try:
                attrs = template_merge(attrs, parse_template(extra))
            except TemplateSyntaxError as e:
                raise OneError(ALLOCATE, f"Error allocating a new virtual machine. {e}")
        if not name:
            name = f"{tmpl['name']}-{self.next_ids['vm']}"
        try:
            return self._new_vm(name, attrs, hold, template_id)
        except OneError as e:
            raise OneError(ALLOCATE, f"Error allocating a new virtual machine. {e.message}")

    def m_vm_action(self, action, vm_id):
        vm = self._vm(vm_id)
        s, l = vm["state"], vm["lcm"]
        running = s == ACTIVE and l in (RUNNING, UNKNOWN)
        steps = None
        if action not in HISTORY_ACTIONS:
            raise OneError(ACTION, f'Action "{action}" is not supported', vm_id)
        if action in ("terminate", "terminate-hard"):
            if s == DONE:
                return vm_id
            if s in (INIT, PENDING, HOLD, CLONING, CLONING_FAILURE):
                vm["steps"] = []
                self._set_state(vm, DONE, LCM_INIT)
                return vm_id
            if s in (SUSPENDED, POWEROFF, STOPPED, UNDEPLOYED):
                steps = [(ACTIVE, EPILOG), (DONE, LCM_INIT)]
            elif running or (action == "terminate-hard" and s == ACTIVE and l == SHUTDOWN):
                steps = [(ACTIVE, SHUTDOWN), (ACTIVE, EPILOG), (DONE, LCM_INIT)]
            else:
                raise OneError(ACTION, f"Could not terminate VM {vm_id}, wrong state "
                                       f"{self._state_name(vm)}.", vm_id)
        elif action in ("poweroff", "poweroff-hard") and (
                running or (action == "poweroff-hard" and l == SHUTDOWN_POWEROFF and s == ACTIVE)):
            steps = [(ACTIVE, SHUTDOWN_POWEROFF), (POWEROFF, LCM_INIT)]
        elif action in ("undeploy", "undeploy-hard") and (running or s == POWEROFF):
            steps = [(ACTIVE, SHUTDOWN_UNDEPLOY), (ACTIVE, EPILOG_UNDEPLOY),
                     (UNDEPLOYED, LCM_INIT)]
        elif action == "suspend" and s == ACTIVE and l == RUNNING:
            steps = [(ACTIVE, SAVE_SUSPEND), (SUSPENDED, LCM_INIT)]
        elif action == "stop" and s == ACTIVE and l == RUNNING:
            steps = [(ACTIVE, SAVE_STOP), (ACTIVE, EPILOG_STOP), (STOPPED, LCM_INIT)]
        elif action == "stop" and s == SUSPENDED:
            steps = [(ACTIVE, EPILOG_STOP), (STOPPED, LCM_INIT)]
        elif action == "resume" and s in (STOPPED, UNDEPLOYED):
            boot = (ACTIVE, PROLOG_RESUME) if s == STOPPED else (ACTIVE, PROLOG_UNDEPLOY)
            self._set_state(vm, PENDING, LCM_INIT)
            steps = [boot, (ACTIVE, BOOT_STOPPED if s == STOPPED else BOOT_UNDEPLOY),
                     (ACTIVE, RUNNING)]
        elif action == "resume" and s == SUSPENDED:
            steps = [(ACTIVE, BOOT_SUSPENDED), (ACTIVE, RUNNING)]
        elif action == "resume" and s == POWEROFF:
            steps = [(ACTIVE, BOOT_POWEROFF), (ACTIVE, RUNNING)]
        elif action == "resume" and s == ACTIVE and l == UNKNOWN:
            steps = [(ACTIVE, BOOT_UNKNOWN), (ACTIVE, RUNNING)]
        elif action in ("reboot", "reboot-hard") and s == ACTIVE and l == RUNNING:
            vm["resched"] = 0
            steps = []
        elif action == "hold" and s == PENDING:
            vm["steps"] = []
            self._set_state(vm, HOLD, LCM_INIT)
            return vm_id
        elif action == "release" and s == HOLD:
            self._set_state(vm, PENDING, LCM_INIT)
            self._deploy(vm)
            return vm_id
        elif action in ("resched", "unresched") and (running or s == POWEROFF):
            vm["resched"] = 1 if action == "resched" else 0
            return vm_id
        if steps is None:
            raise OneError(ACTION, f'Error performing action "{action}": This action is not '
                                   f"available for state {self._state_name(vm)}", vm_id)
        if vm["history"]:
            vm["history"][-1]["action"] = HISTORY_ACTIONS[action]
        if steps:
            self._schedule(vm, steps)
        return vm_id

    def m_vm_update(self, vm_id, text, update_type=0):
        vm = self._vm(vm_id)
        if update_type not in (0, 1):
            raise OneError(XML_RPC_API, "Wrong update type", vm_id)
        try:
            attrs = parse_template(text)
        except TemplateSyntaxError as e:
            raise OneError(ACTION, str(e), vm_id)
        vm["user_template"] = (template_merge(vm["user_template"], attrs) if update_type == 1
                               else [(k, v) for k, v in attrs if not (isinstance(v, list) and
                                                                      not v)])
        return vm_id

    def m_vm_attach(self, vm_id, text):
        vm = self._vm(vm_id)
        try:
            attrs = parse_template(text)
        except TemplateSyntaxError as e:
            raise OneError(ACTION, str(e), vm_id)
        disks = [v for k, v in attrs if k == "DISK" and isinstance(v, list)]
        if len(disks) != 1:
            raise OneError(ACTION, "VM disk template must contain exactly one DISK", vm_id)
        s, l = vm["state"], vm["lcm"]
        # oned moves the VM to the hotplug state before it answers (§6.1).
        if s == ACTIVE and l == RUNNING:
            now, steps = (ACTIVE, HOTPLUG), [(ACTIVE, RUNNING)]
        elif s == POWEROFF:
            now, steps = (ACTIVE, HOTPLUG_PROLOG_POWEROFF), [(POWEROFF, LCM_INIT)]
        else:
            raise OneError(ACTION, 'Error performing action "disk-attach": This action is not '
                                   f"available for state {self._state_name(vm)}", vm_id)
        image_id = template_get(disks[0], "IMAGE_ID") or ""
        if image_id:
            image = self.images.get(int(image_id)) if image_id.isdigit() else None
            if image is None:
                raise OneError(ACTION, f"Error getting image [{image_id}].", vm_id)
            if image["persistent"] and self._image_users(image["id"]):
                raise OneError(ACTION, f"Cannot acquire image {image['id']}, it is persistent "
                                       "and already in use", vm_id)
        disk_ids = [int(template_get(v, "DISK_ID", "-1")) for k, v in vm["template"]
                    if k == "DISK"]
        targets = [template_get(v, "TARGET") for k, v in vm["template"] if k == "DISK"]
        vm["template"].append(("DISK", self._disk(disks[0], max(disk_ids, default=-1) + 1,
                                                  targets)))
        self._set_state(vm, *now)
        self._schedule(vm, steps)
        if vm["history"]:
            vm["history"][-1]["action"] = HISTORY_ACTIONS["disk-attach"]
        return vm_id

    def m_vm_detach(self, vm_id, disk_id):
        vm = self._vm(vm_id)
        s, l = vm["state"], vm["lcm"]
        if s == ACTIVE and l == RUNNING:
            now, steps = (ACTIVE, HOTPLUG), [(ACTIVE, RUNNING)]
        elif s == POWEROFF:
            now, steps = (ACTIVE, HOTPLUG_EPILOG_POWEROFF), [(POWEROFF, LCM_INIT)]
        else:
            raise OneError(ACTION, 'Error performing action "disk-detach": This action is not '
                                   f"available for state {self._state_name(vm)}", vm_id)
        for i, (k, v) in enumerate(vm["template"]):
            if k == "DISK" and template_get(v, "DISK_ID") == str(disk_id):
                del vm["template"][i]
                self._set_state(vm, *now)
                self._schedule(vm, steps)
                if vm["history"]:
                    vm["history"][-1]["action"] = HISTORY_ACTIONS["disk-detach"]
                return vm_id
        raise OneError(ACTION, f"VM {vm_id} does not have disk {disk_id}", vm_id)

    def m_vm_attachnic(self, vm_id, text):
        vm = self._vm(vm_id)
        try:
            attrs = parse_template(text)
        except TemplateSyntaxError as e:
            raise OneError(ACTION, str(e), vm_id)
        nics = [v for k, v in attrs if k == "NIC" and isinstance(v, list)]
        if len(nics) != 1:
            raise OneError(ACTION, "VM NIC template must contain exactly one NIC", vm_id)
        s, l = vm["state"], vm["lcm"]
        # oned moves the VM to the NIC hotplug state before it answers.
        if s == ACTIVE and l == RUNNING:
            now, steps = (ACTIVE, HOTPLUG_NIC), [(ACTIVE, RUNNING)]
        elif s == POWEROFF:
            now, steps = (ACTIVE, HOTPLUG_NIC_POWEROFF), [(POWEROFF, LCM_INIT)]
        else:
            raise OneError(ACTION, 'Error performing action "nic-attach": This action is not '
                                   f"available for state {self._state_name(vm)}", vm_id)
        nic_ids = [int(template_get(v, "NIC_ID", "-1")) for k, v in vm["template"]
                   if k == "NIC"]
        vm["template"].append(("NIC", self._nic(nics[0], max(nic_ids, default=-1) + 1, vm_id,
                                                [], ACTION)))
        self._set_state(vm, *now)
        self._schedule(vm, steps)
        if vm["history"]:
            vm["history"][-1]["action"] = HISTORY_ACTIONS["nic-attach"]
        return vm_id

    def m_vm_detachnic(self, vm_id, nic_id):
        vm = self._vm(vm_id)
        s, l = vm["state"], vm["lcm"]
        if s == ACTIVE and l == RUNNING:
            now, steps = (ACTIVE, HOTPLUG_NIC), [(ACTIVE, RUNNING)]
        elif s == POWEROFF:
            now, steps = (ACTIVE, HOTPLUG_NIC_POWEROFF), [(POWEROFF, LCM_INIT)]
        else:
            raise OneError(ACTION, 'Error performing action "nic-detach": This action is not '
                                   f"available for state {self._state_name(vm)}", vm_id)
        for i, (k, v) in enumerate(vm["template"]):
            if k == "NIC" and template_get(v, "NIC_ID") == str(nic_id):
                del vm["template"][i]  # its lease goes back to the network
                self._set_state(vm, *now)
                self._schedule(vm, steps)
                if vm["history"]:
                    vm["history"][-1]["action"] = HISTORY_ACTIONS["nic-detach"]
                return vm_id
        raise OneError(ACTION, f"Could not find NIC with NIC_ID {nic_id}", vm_id)

    def m_vm_rename(self, vm_id, name):
        vm = self._vm(vm_id)
        if name == vm["name"]:
            return vm_id
        error = validate_name(name)
        if error:
            raise OneError(ACTION, error, vm_id)
        vm["name"] = name  # VM names need not be unique
        return vm_id

    def m_vm_resize(self, vm_id, text, enforce):
        vm = self._vm(vm_id)
        # 6.0+ also hot-resizes ACTIVE/RUNNING VMs (HOTPLUG_RESIZE); the
        # emulator plays the cold path only.
        if vm["state"] in (STOPPED, DONE, SUSPENDED, ACTIVE):
            raise OneError(ACTION, "Resize action is not available for state "
                                   f"{VM_STATE_NAMES[vm['state']]}", vm_id)
        try:
            attrs = parse_template(text)
        except TemplateSyntaxError as e:
            raise OneError(INTERNAL, str(e), vm_id)
        changes = {}
        for key, check in (("CPU", r"\d+(\.\d+)?"), ("VCPU", r"\d+"), ("MEMORY", r"\d+")):
            v = template_get(attrs, key)
            if v is None:
                continue
            if not isinstance(v, str) or not re.fullmatch(check, v) or float(v) <= 0:
                raise OneError(INTERNAL, f"Could not resize the VM: {key} must be a positive "
                                         "number", vm_id)
            changes[key] = v
        vm["template"] = [(k, v) for k, v in vm["template"] if k not in changes] + \
            list(changes.items())
        return vm_id

    def m_hostpool_info(self):
        return "<HOST_POOL>" + "".join(self.host_xml(h) for h in
                                       sorted(self.hosts.values(), key=lambda h: h["id"])) + \
            "</HOST_POOL>"

    def m_host_info(self, host_id, decrypt=False):
        host = self.hosts.get(host_id)
        if host is None:
            raise OneError(NO_EXISTS, f"Error getting host [{host_id}].", host_id)
        return self.host_xml(host)

    def m_host_update(self, host_id, text, update_type=0):
        host = self.hosts.get(host_id)
        if host is None:
            raise OneError(NO_EXISTS, f"Error getting host [{host_id}].", host_id)
        if update_type not in (0, 1):
            raise OneError(XML_RPC_API, "Wrong update type", host_id)
        try:
            attrs = parse_template(text)
        except TemplateSyntaxError as e:
            raise OneError(ACTION, str(e), host_id)
        host["template"] = (template_merge(host["template"], attrs) if update_type == 1
                            else attrs)
        return host_id

    def m_templatepool_info(self, filter_flag, start, end):
        items = self._pool_range(self.templates.values(), filter_flag, start, end)
        return "<VMTEMPLATE_POOL>" + "".join(self.template_xml(t) for t in items) + \
            "</VMTEMPLATE_POOL>"

    def m_template_info(self, template_id, extended=False, decrypt=False):
        tmpl = self.templates.get(template_id)
        if tmpl is None:
            raise OneError(NO_EXISTS, f"Error getting virtual machine template [{template_id}].",
                           template_id)
        return self.template_xml(tmpl)

    def m_imagepool_info(self, filter_flag, start, end):
        items = self._pool_range(self.images.values(), filter_flag, start, end)
        return "<IMAGE_POOL>" + "".join(self.image_xml(i) for i in items) + "</IMAGE_POOL>"

    def m_image_info(self, image_id, decrypt=False):
        image = self.images.get(image_id)
        if image is None:
            raise OneError(NO_EXISTS, f"Error getting image [{image_id}].", image_id)
        return self.image_xml(image)

    def m_vnpool_info(self, filter_flag, start, end):
        items = self._pool_range(self.vnets.values(), filter_flag, start, end)
        # Pool bodies leave out the leases (as oned since 5.x).
        return "<VNET_POOL>" + "".join(self.vnet_xml(n, leases=False) for n in items) + \
            "</VNET_POOL>"

    def m_vn_info(self, vnet_id, decrypt=False):
        return self.vnet_xml(self._vnet(vnet_id))

    def _parse_ars(self, attrs, code, obj_id=-1):
        ars = []
        for k, v in attrs:
            if k != "AR" or not isinstance(v, list):
                continue
            type_ = template_get(v, "TYPE") or ""
            ip, size = template_get(v, "IP") or "", template_get(v, "SIZE") or ""
            if type_ not in ("IP4", "IP4_6", "IP6", "ETHER"):
                raise OneError(code, "Unknown or missing address range TYPE.", obj_id)
            if not size.isdigit() or int(size) <= 0:
                raise OneError(code, "Wrong SIZE for address range", obj_id)
            if type_ in ("IP4", "IP4_6") and self._ip_int(ip) is None:
                raise OneError(code, "Wrong or missing IP for address range", obj_id)
            ars.append({"id": len(ars), "type": type_, "ip": ip, "size": int(size)})
        return ars

    def m_vn_allocate(self, text, cluster_id=-1):
        try:
            attrs = parse_template(text)
        except TemplateSyntaxError as e:
            raise OneError(INTERNAL, str(e))
        name = template_get(attrs, "NAME") or ""
        error = validate_name(name)
        if error:
            raise OneError(INTERNAL, error)
        if any(n["name"] == name for n in self.vnets.values()):
            raise OneError(INTERNAL, f"NAME is already taken by NET "
                                     f"{next(n['id'] for n in self.vnets.values() if n['name'] == name)}.")
        vn_mad = template_get(attrs, "VN_MAD") or ""
        if not vn_mad:
            raise OneError(INTERNAL, "No VN_MAD in template")
        if cluster_id not in (-1,) and cluster_id not in self.clusters:
            raise OneError(NO_EXISTS, f"Error getting cluster [{cluster_id}].", cluster_id)
        ars = self._parse_ars(attrs, INTERNAL)
        vnet_id = self.next_ids["vnet"]
        self.next_ids["vnet"] += 1
        bridge = template_get(attrs, "BRIDGE") or f"onebr{vnet_id}"
        vlan = template_get(attrs, "VLAN_ID") or ""
        template = [(k, v) for k, v in attrs if k not in ("NAME", "AR")]
        if not template_get(template, "BRIDGE"):
            template.append(("BRIDGE", bridge))
        self.vnets[vnet_id] = {"id": vnet_id, "name": name, "bridge": bridge, "vn_mad": vn_mad,
                               "vlan_id": vlan, "regtime": int(time.time()), "held": [],
                               "ars": ars, "template": template}
        return vnet_id

    def m_vn_update(self, vnet_id, text, update_type=0):
        vnet = self._vnet(vnet_id)
        if update_type not in (0, 1):
            raise OneError(XML_RPC_API, "Wrong update type", vnet_id)
        try:
            attrs = parse_template(text)
        except TemplateSyntaxError as e:
            raise OneError(ACTION, str(e), vnet_id)
        # ARs change with one.vn.add_ar / update_ar, not here.
        attrs = [(k, v) for k, v in attrs if k != "AR"]
        vnet["template"] = (template_merge(vnet["template"], attrs) if update_type == 1
                            else attrs)
        return vnet_id

    def m_vn_delete(self, vnet_id):
        vnet = self._vnet(vnet_id)
        if self._leases(vnet):
            raise OneError(ACTION, "Can not remove a virtual network with leases in use",
                           vnet_id)
        del self.vnets[vnet_id]
        return vnet_id

    def _lease_ips(self, vnet_id, text):
        try:
            attrs = parse_template(text)
        except TemplateSyntaxError as e:
            raise OneError(ACTION, str(e), vnet_id)
        leases = template_get(attrs, "LEASES")
        ip = template_get(leases, "IP") if isinstance(leases, list) else None
        if not ip:
            raise OneError(ACTION, "Missing or wrong LEASES attribute", vnet_id)
        return ip

    def m_vn_hold(self, vnet_id, text):
        vnet = self._vnet(vnet_id)
        ip = self._lease_ips(vnet_id, text)
        if self._ar_of(vnet, ip) is None or ip in self._leases(vnet):
            raise OneError(ACTION, f"Cannot hold lease {ip}: it does not exist or is in use",
                           vnet_id)
        vnet["held"].append(ip)
        return vnet_id

    def m_vn_release(self, vnet_id, text):
        vnet = self._vnet(vnet_id)
        ip = self._lease_ips(vnet_id, text)
        if ip not in vnet["held"]:
            raise OneError(ACTION, f"Cannot release lease {ip}: it is not on hold", vnet_id)
        vnet["held"].remove(ip)
        return vnet_id

    def m_user_info(self, user_id, decrypt=False):
        if user_id == -1:
            user_id = 0  # the calling user; the emulator has one
        if user_id not in self.user_templates:
            raise OneError(NO_EXISTS, f"Error getting user [{user_id}].", user_id)
        return self.user_xml(user_id)

    def m_user_update(self, user_id, text, update_type=0):
        if user_id not in self.user_templates:
            raise OneError(NO_EXISTS, f"Error getting user [{user_id}].", user_id)
        if update_type not in (0, 1):
            raise OneError(XML_RPC_API, "Wrong update type", user_id)
        try:
            attrs = parse_template(text)
        except TemplateSyntaxError as e:
            raise OneError(ACTION, str(e), user_id)
        self.user_templates[user_id] = (template_merge(self.user_templates[user_id], attrs)
                                        if update_type == 1 else attrs)
        return user_id

    def m_datastorepool_info(self):
        return "<DATASTORE_POOL></DATASTORE_POOL>"

    def m_marketpool_info(self):
        return "<MARKETPLACE_POOL>" + "".join(
            self.market_xml(m) for m in sorted(self.markets.values(), key=lambda m: m["id"])) + \
            "</MARKETPLACE_POOL>"

    def m_market_info(self, market_id, decrypt=False):
        market = self.markets.get(market_id)
        if market is None:
            raise OneError(NO_EXISTS, f"Error getting marketplace [{market_id}].", market_id)
        return self.market_xml(market)

    def m_secgrouppool_info(self, filter_flag, start, end):
        items = self._pool_range(self.secgroups.values(), filter_flag, start, end)
        return "<SECURITY_GROUP_POOL>" + "".join(self.secgroup_xml(g) for g in items) + \
            "</SECURITY_GROUP_POOL>"

    def m_secgroup_info(self, sg_id, decrypt=False):
        return self.secgroup_xml(self._secgroup(sg_id))

    def _secgroup(self, sg_id):
        sg = self.secgroups.get(sg_id)
        if sg is None:
            raise OneError(NO_EXISTS, f"Error getting security group [{sg_id}].", sg_id)
        return sg

    def _check_rules(self, attrs):
        for k, v in attrs:
            if k != "RULE":
                continue
            if not isinstance(v, list):
                raise OneError(INTERNAL, "RULE is not a vector attribute")
            proto = (template_get(v, "PROTOCOL") or "").upper()
            rtype = (template_get(v, "RULE_TYPE") or "").upper()
            if proto not in ("TCP", "UDP", "ICMP", "ICMPV6", "IPSEC", "ALL"):
                raise OneError(INTERNAL, f"Invalid PROTOCOL {proto}")
            if rtype not in ("INBOUND", "OUTBOUND"):
                raise OneError(INTERNAL, f"Invalid RULE_TYPE {rtype}")
            rng = template_get(v, "RANGE")
            if rng is not None:
                if proto not in ("TCP", "UDP"):
                    raise OneError(INTERNAL, "RANGE is only supported for TCP and UDP")
                parts = rng.split(",")
                ok = len(parts) <= 15 and all(
                    re.fullmatch(r"\d+(:\d+)?", p) and
                    all(0 <= int(x) <= 65535 for x in p.split(":")) for p in parts)
                if not ok:
                    raise OneError(INTERNAL, f"Invalid RANGE {rng}")
            # The target (§9.5): IP + SIZE, or NETWORK_ID, or neither (any
            # address). oned checks their form only: a NETWORK_ID that names
            # no network is kept, and expanded to nothing when applied.
            ip = template_get(v, "IP")
            if ip is not None:
                size = template_get(v, "SIZE") or ""
                if not re.fullmatch(r"\d+", size) or not 0 < int(size) < 1 << 32:
                    raise OneError(INTERNAL, "Wrong or empty SIZE")
                try:
                    ipaddress.ip_address(ip)
                except ValueError:
                    raise OneError(INTERNAL, f"Wrong format for IP value {ip}")
            net = template_get(v, "NETWORK_ID")
            if net is not None and not re.fullmatch(r"\d+", net):
                raise OneError(INTERNAL, f"Wrong format for NETWORK_ID {net}")

    def m_secgroup_allocate(self, text):
        try:
            attrs = parse_template(text)
        except TemplateSyntaxError as e:
            raise OneError(INTERNAL, str(e))
        name = template_get(attrs, "NAME")
        if not name:
            raise OneError(INTERNAL, "No NAME in template for Security Group.")
        error = validate_name(name)
        if error:
            raise OneError(INTERNAL, error)
        for sg in self.secgroups.values():
            if sg["name"] == name:
                raise OneError(INTERNAL, f"NAME is already taken by SecurityGroup {sg['id']}.")
        self._check_rules(attrs)
        sg_id = self.next_ids["secgroup"]
        self.next_ids["secgroup"] += 1
        self.secgroups[sg_id] = {"id": sg_id, "name": name,
                                 "template": [(k, v) for k, v in attrs if k != "NAME"]}
        return sg_id

    def m_secgroup_update(self, sg_id, text, update_type=0):
        sg = self._secgroup(sg_id)
        if update_type not in (0, 1):
            raise OneError(XML_RPC_API, "Wrong update type", sg_id)
        try:
            attrs = parse_template(text)
        except TemplateSyntaxError as e:
            raise OneError(ACTION, str(e), sg_id)
        attrs = [(k, v) for k, v in attrs if k != "NAME"]
        # oned checks the rules of the resulting template (post_update_template),
        # so a merge's RULE=[] (delete every rule) is fine.
        new = template_merge(sg["template"], attrs) if update_type == 1 else attrs
        self._check_rules(new)
        sg["template"] = new
        return sg_id

    def m_secgroup_delete(self, sg_id):
        self._secgroup(sg_id)
        if sg_id == 0:
            raise OneError(ACTION, "Cannot delete security group. The default security group "
                                   "(ID 0) cannot be deleted.", sg_id)
        del self.secgroups[sg_id]
        return sg_id

    def m_zonepool_info(self):
        return "<ZONE_POOL>" + "".join(self.zone_xml(z) for z in self.zones.values()) + \
            "</ZONE_POOL>"

    def m_zone_info(self, zone_id, decrypt=False):
        zone = self.zones.get(zone_id)
        if zone is None:
            raise OneError(NO_EXISTS, f"Error getting zone [{zone_id}].", zone_id)
        return self.zone_xml(zone)

    def m_clusterpool_info(self):
        return "<CLUSTER_POOL>" + "".join(self.cluster_xml(c) for c in self.clusters.values()) + \
            "</CLUSTER_POOL>"

    def m_cluster_info(self, cluster_id, decrypt=False):
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            raise OneError(NO_EXISTS, f"Error getting cluster [{cluster_id}].", cluster_id)
        return self.cluster_xml(cluster)

    # Documents (§11) --------------------------------------------------------
    def document(self, kind, obj_id=None):
        """An object or pool document without a request (for tests)."""
        with self._lock:
            self._advance_all()
            if obj_id is None:
                return {"vm_pool": lambda: self._vmpool(-2, -1, -1, -2, "", False),
                        "host_pool": self.m_hostpool_info,
                        "vmtemplate_pool": lambda: self.m_templatepool_info(-2, -1, -1),
                        "marketplace_pool": self.m_marketpool_info,
                        "security_group_pool": lambda: self.m_secgrouppool_info(-2, -1, -1),
                        "zone_pool": self.m_zonepool_info,
                        "cluster_pool": self.m_clusterpool_info,
                        "image_pool": lambda: self.m_imagepool_info(-2, -1, -1),
                        "vnet_pool": lambda: self.m_vnpool_info(-2, -1, -1)}[kind]()
            return {"vm": self.m_vm_info, "host": self.m_host_info,
                    "vmtemplate": self.m_template_info, "marketplace": self.m_market_info,
                    "security_group": self.m_secgroup_info, "zone": self.m_zone_info,
                    "cluster": self.m_cluster_info, "image": self.m_image_info,
                    "vnet": self.m_vn_info, "user": self.m_user_info}[kind](obj_id)

    def _owner(self):
        return _elems(("UID", 0), ("GID", 0), ("UNAME", "oneadmin"), ("GNAME", "oneadmin"))

    def vm_xml(self, vm):
        history = "".join(
            "<HISTORY>" + _elems(("OID", vm["id"]), ("SEQ", h["seq"]),
                                 ("HOSTNAME", h["hostname"]), ("HID", h["hid"]), ("CID", 0),
                                 ("STIME", h["stime"]), ("ETIME", 0)) +
            f"<VM_MAD>{_cdata('kvm')}</VM_MAD><TM_MAD>{_cdata('ssh')}</TM_MAD>" +
            _elems(("DS_ID", 0), ("PSTIME", h["stime"]), ("PETIME", h["stime"]),
                   ("RSTIME", h["stime"]), ("RETIME", 0), ("ESTIME", 0), ("EETIME", 0),
                   ("ACTION", h["action"]), ("UID", -1), ("GID", -1), ("REQUEST_ID", -1)) +
            "</HISTORY>" for h in vm["history"])
        running = vm["state"] == ACTIVE and vm["lcm"] == RUNNING
        monitoring = ("<MONITORING>" + _elems(("CPU", "1.0"), ("ID", vm["id"]),
                                              ("MEMORY", 262144),
                                              ("TIMESTAMP", int(time.time()))) +
                      "</MONITORING>") if running else "<MONITORING></MONITORING>"
        return ("<VM>" + _elems(("ID", vm["id"])) + self._owner() + _elems(("NAME", vm["name"])) +
                _permissions("110000000") +
                _elems(("LAST_POLL", int(time.time()) if running else 0),
                       ("STATE", vm["state"]), ("LCM_STATE", vm["lcm"]),
                       ("PREV_STATE", vm["prev_state"]), ("PREV_LCM_STATE", vm["prev_lcm"]),
                       ("RESCHED", vm["resched"]), ("STIME", vm["stime"]),
                       ("ETIME", vm["etime"]), ("DEPLOY_ID", vm["deploy_id"])) +
                monitoring + "<SCHED_ACTIONS></SCHED_ACTIONS>" +
                template_xml("TEMPLATE", vm["template"], _VM_TEMPLATE_ORDER) +
                template_xml("USER_TEMPLATE", vm["user_template"]) +
                f"<HISTORY_RECORDS>{history}</HISTORY_RECORDS>" +
                "<BACKUPS><BACKUP_CONFIG></BACKUP_CONFIG><BACKUP_IDS></BACKUP_IDS></BACKUPS>" +
                "</VM>")

    def vm_short_xml(self, vm):
        t = vm["template"]
        parts = ["<TEMPLATE>"]
        for key in ("CPU", "MEMORY", "VCPU"):
            v = template_get(t, key)
            if isinstance(v, str):
                parts.append(f"<{key}>{_esc(v)}</{key}>")
        for k, v in t:
            if k == "DISK" and isinstance(v, list):
                parts.append("<DISK>" + "".join(
                    f"<{f}>{_cdata(template_get(v, f) or '')}</{f}>"
                    for f in ("DISK_ID", "DATASTORE", "DATASTORE_ID", "IMAGE", "IMAGE_ID",
                              "SIZE", "TYPE", "CLONE", "CLONE_TARGET", "LN_TARGET",
                              "DISK_SNAPSHOT_TOTAL_SIZE")) + "</DISK>")
        for k, v in t:
            if k == "NIC" and isinstance(v, list):
                parts.append("<NIC>" + "".join(
                    f"<{f}>{_cdata(template_get(v, f))}</{f}>"
                    for f in ("IP", "EXTERNAL_IP", "IP6", "IP6_ULA", "IP6_LINK", "IP6_GLOBAL")
                    if template_get(v, f)) + "".join(
                    f"<{f}>{_cdata(template_get(v, f) or '')}</{f}>"
                    for f in ("MAC", "NETWORK", "NETWORK_ID", "NIC_ID", "SECURITY_GROUPS")) +
                    "</NIC>")
        graphics = template_get(t, "GRAPHICS")
        if isinstance(graphics, list):
            parts.append(template_xml("GRAPHICS", graphics))
        parts.append("</TEMPLATE>")
        running = vm["state"] == ACTIVE and vm["lcm"] == RUNNING
        monitoring = ("<MONITORING>" + _elems(("CPU", "1.0"), ("MEMORY", 262144),
                                              ("STATE", "a")) + "</MONITORING>"
                      if running else "<MONITORING/>")
        user = [(k, v) for k, v in vm["user_template"]
                if k in SHORT_USER_TEMPLATE_KEYS and isinstance(v, str)]
        user.sort(key=lambda kv: SHORT_USER_TEMPLATE_KEYS.index(kv[0]))
        user_xml = "<USER_TEMPLATE>" + "".join(f"<{k}>{_cdata(v)}</{k}>" for k, v in user) + \
            "</USER_TEMPLATE>"
        if vm["history"]:
            h = vm["history"][-1]
            history = ("<HISTORY_RECORDS><HISTORY>" +
                       _elems(("OID", vm["id"]), ("SEQ", h["seq"]), ("HOSTNAME", h["hostname"]),
                              ("HID", h["hid"]), ("CID", 0), ("DS_ID", 0)) +
                       f"<VM_MAD>{_cdata('kvm')}</VM_MAD><TM_MAD>{_cdata('ssh')}</TM_MAD>" +
                       f"<ACTION>{_cdata(str(h['action']))}</ACTION>" +
                       "</HISTORY></HISTORY_RECORDS>")
        else:
            history = "<HISTORY_RECORDS/>"
        return ("<VM>" + _elems(("ID", vm["id"])) + self._owner() +
                _elems(("NAME", vm["name"]), ("LAST_POLL", int(time.time()) if running else 0),
                       ("STATE", vm["state"]), ("LCM_STATE", vm["lcm"]),
                       ("RESCHED", vm["resched"]), ("STIME", vm["stime"]),
                       ("ETIME", vm["etime"]), ("DEPLOY_ID", vm["deploy_id"])) +
                "".join(parts) + monitoring + user_xml + history + "</VM>")

    def host_xml(self, host):
        vms = [vm["id"] for vm in self.vms.values()
               if vm["history"] and vm["history"][-1]["hid"] == host["id"] and
               vm["state"] == ACTIVE]
        mem_usage = sum(int(template_get(self.vms[i]["template"], "MEMORY") or 0) * 1024
                        for i in vms)
        cpu_usage = sum(int(float(template_get(self.vms[i]["template"], "CPU") or 0) * 100)
                        for i in vms)
        share = ("<HOST_SHARE>" +
                 _elems(("MEM_USAGE", mem_usage), ("CPU_USAGE", cpu_usage),
                        ("TOTAL_MEM", host["total_mem"]), ("TOTAL_CPU", host["total_cpu"]),
                        ("MAX_MEM", host["total_mem"]), ("MAX_CPU", host["total_cpu"]),
                        ("RUNNING_VMS", len(vms)), ("VMS_THREAD", 1)) +
                 "<DATASTORES>" + _elems(("DISK_USAGE", 0)) + "<DS>" +
                 _elems(("FREE_MB", 90000), ("ID", 0), ("TOTAL_MB", 100000), ("USED_MB", 10000)) +
                 "</DS>" + _elems(("FREE_DISK", 90000), ("MAX_DISK", 100000),
                                  ("USED_DISK", 10000)) + "</DATASTORES>" +
                 "<PCI_DEVICES></PCI_DEVICES><NUMA_NODES></NUMA_NODES></HOST_SHARE>")
        monitoring = ("<MONITORING>" + _elems(("TIMESTAMP", int(time.time())),
                                              ("ID", host["id"])) +
                      "<CAPACITY>" + _elems(("FREE_CPU", host["total_cpu"] - cpu_usage),
                                            ("FREE_MEMORY", host["total_mem"] - mem_usage),
                                            ("USED_CPU", cpu_usage),
                                            ("USED_MEMORY", mem_usage)) + "</CAPACITY>" +
                      "<SYSTEM>" + _elems(("NETRX", 0), ("NETTX", 0)) + "</SYSTEM>" +
                      "</MONITORING>")
        return ("<HOST>" + _elems(("ID", host["id"]), ("NAME", host["name"]),
                                  ("STATE", host["state"]), ("PREV_STATE", host["prev_state"])) +
                f"<IM_MAD>{_cdata('kvm')}</IM_MAD><VM_MAD>{_cdata('kvm')}</VM_MAD>" +
                _elems(("CLUSTER_ID", host["cluster_id"]), ("CLUSTER", "default")) + share +
                _ids("VMS", sorted(vms)) + template_xml("TEMPLATE", host["template"]) +
                monitoring + "</HOST>")

    def template_xml(self, tmpl):
        return ("<VMTEMPLATE>" + _elems(("ID", tmpl["id"])) + self._owner() +
                _elems(("NAME", tmpl["name"])) + _permissions("110100100") +
                _elems(("REGTIME", tmpl["regtime"])) +
                template_xml("TEMPLATE", tmpl["template"]) + "</VMTEMPLATE>")

    def image_xml(self, image):
        users = self._image_users(image["id"])
        state = self._image_state(image)
        source = f"/var/lib/one//datastores/{image['ds_id']}/{image['id']:032x}"
        return ("<IMAGE>" + _elems(("ID", image["id"])) + self._owner() +
                _elems(("NAME", image["name"])) + _permissions("110000000") +
                _elems(("TYPE", image["type"]), ("DISK_TYPE", 0),
                       ("PERSISTENT", image["persistent"]), ("REGTIME", image["regtime"])) +
                f"<SOURCE>{_cdata(source)}</SOURCE><PATH>{_cdata('')}</PATH>"
                f"<FORMAT>{_cdata(image['format'])}</FORMAT><FS>{_cdata('')}</FS>" +
                _elems(("SIZE", image["size"]), ("STATE", state),
                       ("PREV_STATE", IMAGE_READY),
                       ("RUNNING_VMS", len(users)), ("CLONING_OPS", 0), ("CLONING_ID", -1),
                       ("TARGET_SNAPSHOT", -1), ("DATASTORE_ID", image["ds_id"]),
                       ("DATASTORE", image["ds"])) +
                _ids("VMS", users) + _ids("CLONES", []) + _ids("APP_CLONES", []) +
                template_xml("TEMPLATE", image["template"]) +
                "<SNAPSHOTS>" + _elems(("ALLOW_ORPHANS", "NO"), ("CURRENT_BASE", -1),
                                       ("NEXT_SNAPSHOT", 0)) + "</SNAPSHOTS>" +
                "<BACKUP_INCREMENTS></BACKUP_INCREMENTS></IMAGE>")

    def market_xml(self, m):
        return ("<MARKETPLACE>" + _elems(("ID", m["id"])) + self._owner() +
                _elems(("NAME", m["name"]), ("STATE", m["state"])) +
                f"<MARKET_MAD>{_cdata(m['mad'])}</MARKET_MAD><ZONE_ID>{_cdata('0')}</ZONE_ID>" +
                _elems(("TOTAL_MB", 0), ("FREE_MB", 0), ("USED_MB", 0)) +
                _ids("MARKETPLACEAPPS", m["apps"]) + _permissions("111100100") +
                template_xml("TEMPLATE", m["template"]) + "</MARKETPLACE>")

    def secgroup_xml(self, sg):
        return ("<SECURITY_GROUP>" + _elems(("ID", sg["id"])) + self._owner() +
                _elems(("NAME", sg["name"])) + _permissions("110000000") +
                _ids("UPDATED_VMS", []) + _ids("OUTDATED_VMS", []) + _ids("UPDATING_VMS", []) +
                _ids("ERROR_VMS", []) + template_xml("TEMPLATE", sg["template"]) +
                "</SECURITY_GROUP>")

    def zone_xml(self, z):
        return ("<ZONE>" + _elems(("ID", z["id"]), ("NAME", z["name"]), ("STATE", z["state"])) +
                f"<TEMPLATE><ENDPOINT>{_cdata(z['endpoint'])}</ENDPOINT></TEMPLATE>" +
                "<SERVER_POOL></SERVER_POOL></ZONE>")

    def vnet_xml(self, n, leases=True):
        used = self._leases(n)
        ars = []
        for ar in n["ars"]:
            first = self._ip_int(ar["ip"]) if ar["ip"] else None
            mine = [(ip, vm) for ip, vm in used.items() if self._ar_of(n, ip) is ar]
            body = _elems(("AR_ID", ar["id"]))
            if ar["ip"]:
                body += f"<IP>{_cdata(ar['ip'])}</IP>"
            body += f"<MAC>{_cdata(self._mac(ar['ip']) if ar['ip'] else '02:00:00:00:00:01')}</MAC>"
            body += f"<SIZE>{ar['size']}</SIZE><TYPE>{_cdata(ar['type'])}</TYPE>"
            if not leases:
                # Pool bodies stop at the AR's definition (vnet_pool.xsd):
                # no ends, no lease counts.
                ars.append(f"<AR>{body}</AR>")
                continue
            if first is not None:
                last = self._ip_str(first + ar["size"] - 1)
                body += f"<MAC_END>{_cdata(self._mac(last))}</MAC_END>"
                body += f"<IP_END>{_cdata(last)}</IP_END>"
            body += f"<USED_LEASES>{len(mine)}</USED_LEASES>"
            body += "<LEASES>" + "".join(
                    "<LEASE>" + f"<IP>{_cdata(ip)}</IP><MAC>{_cdata(self._mac(ip))}</MAC>" +
                    f"<VM>{vm}</VM></LEASE>"
                    for ip, vm in sorted(mine, key=lambda x: self._ip_int(x[0]))) + "</LEASES>"
            ars.append(f"<AR>{body}</AR>")
        return ("<VNET>" + _elems(("ID", n["id"])) + self._owner() + _elems(("NAME", n["name"])) +
                _permissions("110000000") + _ids("CLUSTERS", [0]) +
                f"<BRIDGE>{_cdata(n['bridge'])}</BRIDGE>" +
                f"<BRIDGE_TYPE>{_cdata('linux')}</BRIDGE_TYPE>" +
                _elems(("STATE", 1), ("PREV_STATE", 0)) +
                f"<PARENT_NETWORK_ID>{_cdata('')}</PARENT_NETWORK_ID>" +
                f"<VN_MAD>{_cdata(n['vn_mad'])}</VN_MAD><PHYDEV>{_cdata('')}</PHYDEV>" +
                f"<VLAN_ID>{_cdata(n['vlan_id'])}</VLAN_ID>" +
                f"<OUTER_VLAN_ID>{_cdata('')}</OUTER_VLAN_ID>" +
                _elems(("VLAN_ID_AUTOMATIC", 0), ("OUTER_VLAN_ID_AUTOMATIC", 0),
                       ("USED_LEASES", len(used))) +
                _ids("VROUTERS", []) + _ids("UPDATED_VMS", []) + _ids("OUTDATED_VMS", []) +
                _ids("UPDATING_VMS", []) + _ids("ERROR_VMS", []) +
                template_xml("TEMPLATE", n["template"]) +
                "<AR_POOL>" + "".join(ars) + "</AR_POOL></VNET>")

    def user_xml(self, user_id):
        name = next(u for u, (i, _) in self.users.items() if i == user_id)
        return ("<USER>" + _elems(("ID", user_id), ("GID", 0)) + _ids("GROUPS", [0]) +
                _elems(("GNAME", "oneadmin"), ("NAME", name), ("PASSWORD", "x" * 40),
                       ("AUTH_DRIVER", "core"), ("ENABLED", 1)) +
                template_xml("TEMPLATE", self.user_templates[user_id]) + "</USER>")

    def cluster_xml(self, c):
        hosts = [h["id"] for h in self.hosts.values() if h["cluster_id"] == c["id"]]
        return ("<CLUSTER>" + _elems(("ID", c["id"]), ("NAME", c["name"])) +
                _ids("HOSTS", hosts) + _ids("DATASTORES", [0, 1, 2]) + _ids("VNETS", [0]) +
                template_xml("TEMPLATE", c["template"]) + "</CLUSTER>")


# ---------------------------------------------------------------------------
# HTTP (§1).

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Xmlrpc-c_Abyss/1.59.3"
    emulator = None

    def log_message(self, fmt, *args):
        if self.emulator.verbose:
            sys.stderr.write("one_emulator: " + (fmt % args) + "\n")

    def _send(self, status, body, content_type="text/xml; charset=utf-8", extra=()):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if self.path != "/RPC2":
            return self._send(404, "Not Found", "text/plain")
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            return self._send(411, "Length Required", "text/plain")
        try:
            n = int(length)
        except ValueError:
            self.close_connection = True
            return self._send(400, "Bad Request", "text/plain")
        body = self.rfile.read(n)
        self._send(200, self.emulator.handle(body.decode("utf-8", errors="replace")))

    def do_OPTIONS(self):
        self._send(200, "", "text/plain", [("Allow", "POST")])

    def _not_post(self):
        self._send(405, "POST is the only HTTP method this server understands", "text/plain")

    do_GET = do_PUT = do_DELETE = do_HEAD = do_PATCH = _not_post


# ---------------------------------------------------------------------------
# Command line.

def _write_ready_file(path, line):
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    with open(tmp, "w") as f:
        f.write(line + "\n")
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="OpenNebula XML-RPC emulator for tests.")
    ap.add_argument("--listen", default="127.0.0.1:0", help="loopback HOST:PORT (0 picks one)")
    ap.add_argument("--auth", default="oneadmin:opennebula", help="the one USER:PASSWORD")
    ap.add_argument("--step-delay", type=float, default=0.1,
                    help="seconds per state-machine step (default 0.1)")
    ap.add_argument("--hosts", type=int, default=2, help="number of hosts (default 2)")
    ap.add_argument("--ready-file", help="also write the READY line here (atomically)")
    ap.add_argument("--max-lifetime", type=float, default=900,
                    help="exit after this many seconds (0 = no limit; default 900)")
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args(argv)
    try:
        parent = os.getppid()
        emu = OneEmulator(listen=args.listen, auth=args.auth, step_delay=args.step_delay,
                          hosts=args.hosts, verbose=args.verbose).start()
    except (OSError, ValueError) as e:
        sys.stderr.write("one_emulator: %s\n" % e)
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


def spawn(workdir, step_delay=0.05, auth="oneadmin:opennebula", max_lifetime=900):
    """Starts the emulator as a child process; returns (process, endpoint).
    Stop it with process.terminate()."""
    import subprocess
    ready = os.path.join(str(workdir), "one.ready")
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--step-delay", str(step_delay), "--auth",
         auth, "--ready-file", ready, "--max-lifetime", str(max_lifetime)],
        stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the OpenNebula emulator did not start")
        time.sleep(0.02)
    with open(ready) as f:
        return process, f.read().split("endpoint=", 1)[1].strip()


if __name__ == "__main__":
    sys.exit(main())
