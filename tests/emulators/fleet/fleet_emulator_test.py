"""Tests for the fleet v1 API emulator (fleet_emulator.py).

Run: .deps/venv/bin/python -m pytest tests/emulators/fleet -q

Every expected status and message below comes from the upstream fleet
sources (api/*.go) as summarised in shared/protocols/fleet.md.
"""

import base64
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fleet_emulator as fe  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
FIXTURES = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "fixtures", "fleet"))
DISCOVERY = os.path.join(FIXTURES, "v1.json")
EMULATOR = os.path.join(HERE, "fleet_emulator.py")

SLEEP_OPTS = [{"section": "Service", "name": "ExecStart", "value": "/usr/bin/sleep 1d"}]
SLEEP_HASH = "dd401fa78c2de99a9c4045cbb4b285679067acf6"


@pytest.fixture(autouse=True)
def _require_fixtures():
    if not os.path.isfile(DISCOVERY):
        msg = "shared fleet fixtures missing: %s" % DISCOVERY
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


# ---------------------------------------------------------------------------
# Helpers.

class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, host="domain-sock"):
        super().__init__(host)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self._path)
        self.sock = s


class Resp:
    def __init__(self, r, body):
        self.status = r.status
        self.headers = r.getheaders()
        self.body = body

    def header(self, name):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        return vals[0] if vals else None

    def json(self):
        return json.loads(self.body)


class Client:
    """One keep-alive connection; request() sends exactly the given headers
    (plus Host) so tests control Content-Type precisely."""

    def __init__(self, emu, unix=False, host=None):
        if unix:
            self.conn = _UnixConnection(emu.unix_path, host or "domain-sock")
        else:
            h, p = emu.tcp_address
            self.conn = http.client.HTTPConnection(h, p, timeout=10)

    def request(self, method, path, body=None, headers=None, json_ct=True):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        if headers is None:
            headers = [("Content-Type", "application/json")] if (json_ct and body is not None) else []
        self.conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers:
            self.conn.putheader(k, v)
        if body is not None:
            self.conn.putheader("Content-Length", str(len(body)))
        self.conn.endheaders(body)
        r = self.conn.getresponse()
        return Resp(r, r.read())

    def close(self):
        self.conn.close()


def err_body(code, message=""):
    return json.dumps({"error": {"code": code, "message": message}},
                      separators=(",", ":")).encode()


def assert_error(resp, code, message=""):
    assert resp.status == code, resp.body
    assert resp.header("Content-Type") == "application/json"
    assert resp.json() == {"error": {"code": code, "message": message}}


def token(limit, page):
    return base64.urlsafe_b64encode(struct.pack("<HH", limit, page)).decode()


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="fleetemu")
    yield d
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)


@pytest.fixture
def emu(sockdir):
    e = fe.FleetEmulator(tcp="127.0.0.1:0", unix_path=os.path.join(sockdir, "fleet.sock"),
                         page_limit=2, machines=3, converge_delay=0).start()
    yield e
    e.stop()


@pytest.fixture
def c(emu):
    cl = Client(emu)
    yield cl
    cl.close()


def put_unit(c, name, desired=None, options=SLEEP_OPTS, extra=None):
    body = {}
    if desired is not None:
        body["desiredState"] = desired
    if options is not None:
        body["options"] = options
    body.update(extra or {})
    return c.request("PUT", "/fleet/v1/units/" + name, body)


def poll(fn, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.02)


# ---------------------------------------------------------------------------
# Discovery, headers, path rules.

def test_discovery_served_byte_for_byte(c, emu):
    r = c.request("GET", "/fleet/v1/discovery")
    assert r.status == 200
    with open(DISCOVERY, "rb") as f:
        assert r.body == f.read()
    assert r.header("Content-Type") == "application/json"
    assert r.header("Server") == "fleetd/v1.0.0"
    r = c.request("GET", "/v1-alpha/discovery")
    assert r.status == 200 and r.body == emu.discovery


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD"])
def test_discovery_other_methods_400(c, method):
    r = c.request(method, "/fleet/v1/discovery")
    assert r.status == 400
    if method != "HEAD":
        assert_error(r, 400, "only HTTP GET supported against this resource")


def test_default_discovery_path_is_beside_repo():
    assert fe.DEFAULT_DISCOVERY_PATH == os.path.normpath(
        os.path.join(REPO_ROOT, "..", "shared", "fixtures", "fleet", "v1.json"))
    assert os.path.samefile(fe.DEFAULT_DISCOVERY_PATH, DISCOVERY)


@pytest.mark.parametrize("path,code", [
    ("/fleet/v1", 405),
    ("/v1-alpha", 405),
    ("/", 405),
    ("/fleet/v1/", 404),
    ("/fleet/v1/units/", 404),
    ("/fleet/v1/state/", 404),
    ("/fleet/v1/machines/", 404),
    ("/fleet/v1/discovery/", 404),
    ("/fleet/v1/units/a/b", 404),
    ("/fleet/v1/units/a%2Fb.service", 404),
    ("/fleet/v1/state/a/b", 404),
    ("/fleet/v1/bogus", 404),
    ("/fleet/v2/units", 404),
    ("/v1-alpha/units/", 404),
])
def test_path_rules_empty_message(c, path, code):
    r = c.request("GET", path)
    assert_error(r, code, "")
    assert r.body == err_body(code)
    assert r.header("Server") == "fleetd/v1.0.0"


def test_v1_alpha_prefix_serves_same_registry(c):
    assert put_unit(c, "a.service", "inactive").status == 201
    r1 = c.request("GET", "/fleet/v1/units")
    r2 = c.request("GET", "/v1-alpha/units")
    assert r1.status == r2.status == 200 and r1.body == r2.body
    assert c.request("GET", "/v1-alpha/units/a.service").json()["name"] == "a.service"


def test_unclean_path_redirects_like_servemux(c):
    r = c.request("GET", "/fleet/v1//units?alt=json")
    assert r.status == 301
    assert r.header("Location") == "/fleet/v1/units?alt=json"
    r = c.request("GET", "/fleet/v1/units/../machines")
    assert r.status == 301 and r.header("Location") == "/fleet/v1/machines"


@pytest.mark.parametrize("method,path,message", [
    ("POST", "/fleet/v1/units", "only GET supported against this resource"),
    ("PUT", "/fleet/v1/units", "only GET supported against this resource"),
    ("POST", "/fleet/v1/units/a.service", "only GET, PUT and DELETE supported against this resource"),
    ("PATCH", "/fleet/v1/units/a.service", "only GET, PUT and DELETE supported against this resource"),
    ("DELETE", "/fleet/v1/machines", "only GET and PATCH supported against this resource"),
    ("PUT", "/fleet/v1/machines", "only GET and PATCH supported against this resource"),
    ("POST", "/fleet/v1/state", "only GET supported against this resource"),
    ("DELETE", "/fleet/v1/state/a.service", "only GET supported against this resource"),
])
def test_405_messages(c, method, path, message):
    assert_error(c.request(method, path, body=""), 405, message)


def test_unknown_query_parameters_ignored(c):
    r = c.request("GET", "/fleet/v1/machines?alt=json&foo=bar")
    assert r.status == 200 and len(r.json()["machines"]) == 2


def test_unavailable_gives_503_without_server_header(c, emu):
    emu.set_available(False)
    r = c.request("GET", "/fleet/v1/units")
    assert_error(r, 503, "fleet server unable to communicate with etcd")
    assert r.header("Server") is None
    emu.set_available(True)
    assert c.request("GET", "/fleet/v1/units").status == 200


def test_go_style_compact_json_escaping(c):
    opts = [{"section": "Service", "name": "ExecStart", "value": "/bin/sh -c 'a < b && c > d'"}]
    assert put_unit(c, "esc.service", "inactive", opts).status == 201
    r = c.request("GET", "/fleet/v1/units/esc.service")
    assert r.body == (b'{"currentState":"inactive","desiredState":"inactive","name":"esc.service",'
                      b'"options":[{"name":"ExecStart","section":"Service",'
                      b'"value":"/bin/sh -c \'a \\u003c b \\u0026\\u0026 c \\u003e d\'"}]}')


def test_go_json_encoder_details():
    assert fe.go_json_encode({"a": "\b\f\n\x01\u2028<>&\"\\é"}) == \
        '{"a":"\\u0008\\u000c\\n\\u0001\\u2028\\u003c\\u003e\\u0026\\"\\\\é"}'


# ---------------------------------------------------------------------------
# PUT /units/{name}.

def test_put_create_returns_201_without_body(c):
    r = put_unit(c, "hello.service", "launched")
    assert r.status == 201 and r.body == b""
    assert r.header("Content-Length") == "0"
    u = c.request("GET", "/fleet/v1/units/hello.service").json()
    assert u["desiredState"] == "launched" and u["options"] == SLEEP_OPTS


def test_put_create_without_desired_state_is_inactive(c):
    assert put_unit(c, "sub.service").status == 201
    u = c.request("GET", "/fleet/v1/units/sub.service").json()
    assert u == {"currentState": "inactive", "desiredState": "inactive",
                 "name": "sub.service", "options": SLEEP_OPTS}


def test_put_decision_sequence(c):
    assert put_unit(c, "d.service", "loaded").status == 201
    # Same options, new desired state -> 204.
    r = put_unit(c, "d.service", "launched")
    assert r.status == 204 and r.body == b""
    # desiredState only -> 204.
    assert put_unit(c, "d.service", "inactive", options=None).status == 204
    assert c.request("GET", "/fleet/v1/units/d.service").json()["desiredState"] == "inactive"
    # Same options, no desired state -> 409.
    assert_error(put_unit(c, "d.service"), 409, "must provide DesiredState to update existing unit")
    # Nothing at all -> 409.
    assert_error(c.request("PUT", "/fleet/v1/units/d.service", {}), 409,
                 "must provide DesiredState to update existing unit")
    # Different options -> replace, 201, desired state back to inactive when omitted.
    assert put_unit(c, "d.service", "launched").status == 204
    new = [{"section": "Service", "name": "ExecStart", "value": "/bin/true"}]
    assert put_unit(c, "d.service", options=new).status == 201
    u = c.request("GET", "/fleet/v1/units/d.service").json()
    assert u["options"] == new and u["desiredState"] == "inactive"


def test_put_missing_unit_without_options_409(c):
    assert_error(put_unit(c, "nope.service", "launched", options=None), 409,
                 "unit does not exist and options field empty")
    assert_error(put_unit(c, "nope.service", "launched", options=[]), 409,
                 "unit does not exist and options field empty")


def test_put_name_in_body(c):
    assert_error(put_unit(c, "a.service", "inactive", extra={"name": "b.service"}), 400,
                 'name in URL "a.service" differs from unit name in request body "b.service"')
    assert put_unit(c, "a.service", "inactive", extra={"name": "a.service"}).status == 201
    # Keys match fields case-insensitively, as with encoding/json.
    assert c.request("PUT", "/fleet/v1/units/a.service", {"DesiredState": "loaded"}).status == 204


@pytest.mark.parametrize("name,message", [
    ("foo", 'unit name must contain "."'),
    ("foo.", 'unit name cannot end in "."'),
    ("foo.bar", 'invalid unit type: "bar"'),
    ("foo.servICE", 'invalid unit type: "servICE"'),
    ("foo@1.mount", 'invalid unit type for template: "mount"'),
    ("foo%25.service", "invalid character '%' in unit name"),
    ("foo%20bar.service", "invalid character ' ' in unit name"),
    ("foo%09.service", "invalid character '\\t' in unit name"),
    ("f%C3%A9.service", "invalid character 'é' in unit name"),
    ("@foo.service", 'unit name cannot start in "@"'),
    ("x" * 250 + ".service", "unit name exceeds maximum length (256)"),
])
def test_put_name_validation(c, name, message):
    assert_error(put_unit(c, name, "launched"), 400, message)


def test_name_validation_direct():
    assert fe.validate_name("") == "unit name cannot be empty"
    assert fe.validate_name("x" * 248 + ".service") is None  # exactly 256 bytes
    for ok in ("foo.service", "foo@.service", "foo@1.service", "yo.yo.service",
               "hello:world.service", "a-b_c\\x2d.socket"):
        assert fe.validate_name(ok) is None, ok


def test_put_valid_template_names(c):
    for name in ("foo@.service", "foo@1.service", "yo.yo.service", "hello:world.service"):
        assert put_unit(c, name, "inactive").status == 201, name


def test_template_rule(c):
    # Creating a template launched is accepted upstream (a quirk)...
    assert put_unit(c, "t@.service", "launched").status == 201
    # ...but activating it through the update path is not.
    assert_error(put_unit(c, "t@.service", "launched", options=None), 400,
                 'cannot activate template "t@.service"')
    assert_error(put_unit(c, "t@.service", "loaded", options=None), 400,
                 'cannot activate template "t@.service"')
    assert put_unit(c, "t@.service", "inactive", options=None).status == 204
    # Instances are not templates.
    assert put_unit(c, "t@1.service", "inactive").status == 201
    assert put_unit(c, "t@1.service", "launched", options=None).status == 204


def test_invalid_desired_state_500_on_create_then_204_and_poisoned(c):
    # As fleetd: 500 "" on create (nothing stored); on update the string is
    # stored (204) and the unit can never be read again.
    assert_error(put_unit(c, "x.service", "running"), 500, "")
    assert c.request("GET", "/fleet/v1/units/x.service").status == 404
    assert put_unit(c, "x.service", "launched").status == 201
    assert put_unit(c, "ok.service", "launched").status == 201
    r = put_unit(c, "x.service", "bogus", options=None)
    assert r.status == 204 and r.body == b""
    for _ in range(3):  # for good, not once
        assert_error(c.request("GET", "/fleet/v1/units/x.service"), 500, "")
    # Only that unit: the rest of the API answers, lists leave it out.
    assert c.request("GET", "/fleet/v1/units/ok.service").status == 200
    assert [u["name"] for u in c.request("GET", "/fleet/v1/units").json()["units"]] == \
        ["ok.service"]
    # Its agent keeps reporting what it last did.
    st = c.request("GET", "/fleet/v1/state?unitName=x.service").json()["states"]
    assert [(s["name"], s["systemdSubState"]) for s in st] == [("x.service", "running")]
    # Setting a good state does not heal it (the lookup fails first)...
    assert_error(put_unit(c, "x.service", "inactive", options=None), 500, "")
    assert_error(put_unit(c, "x.service", "launched"), 500, "")
    # ...destroying it does.
    assert c.request("DELETE", "/fleet/v1/units/x.service").status == 204
    assert_error(c.request("GET", "/fleet/v1/units/x.service"), 404, "unit does not exist")


@pytest.mark.parametrize("headers,message", [
    ([], "expected 1 Content-Type, got 0"),
    ([("Content-Type", "application/json"), ("Content-Type", "application/json")],
     "expected 1 Content-Type, got 2"),
    ([("Content-Type", "text/plain")], "only acceptable Content-Type is application/json"),
    ([("Content-Type", "Application/JSON")], "only acceptable Content-Type is application/json"),
])
def test_put_content_type_415(c, headers, message):
    r = c.request("PUT", "/fleet/v1/units/a.service",
                  {"desiredState": "inactive", "options": SLEEP_OPTS}, headers=headers)
    assert_error(r, 415, message)


def test_put_content_type_with_parameters_ok(c):
    r = c.request("PUT", "/fleet/v1/units/a.service", {"options": SLEEP_OPTS},
                  headers=[("content-type", " application/json ; charset=utf-8")])
    assert r.status == 201


@pytest.mark.parametrize("body,message", [
    ("", "unable to decode body: EOF"),
    ("   ", "unable to decode body: EOF"),
    ("{", "unable to decode body: unexpected EOF"),
    ("x", "unable to decode body: invalid character 'x' looking for beginning of value"),
    ('{"a" 1}', "unable to decode body: invalid character '1' after object key"),
    ('{"a":1 "b":2}', "unable to decode body: invalid character '\"' after object key:value pair"),
    ("{,}", "unable to decode body: invalid character ',' looking for beginning of object key string"),
    ("[1 2]", "unable to decode body: invalid character '2' after array element"),
    ("tru!", "unable to decode body: invalid character '!' in literal true (expecting 'e')"),
    ("[]", "unable to decode body: json: cannot unmarshal array into Go value of type schema.Unit"),
    ('{"options":"x"}', "unable to decode body: json: cannot unmarshal string into Go value "
                        "of type []*schema.UnitOption"),
    ('{"options":[1]}', "unable to decode body: json: cannot unmarshal number into Go value "
                        "of type schema.UnitOption"),
    ('{"desiredState":true}', "unable to decode body: json: cannot unmarshal bool into Go value "
                              "of type string"),
])
def test_put_decode_errors(c, body, message):
    assert_error(c.request("PUT", "/fleet/v1/units/a.service", body), 400, message)


def test_put_trailing_data_after_json_ignored(c):
    # json.Decoder reads one value and leaves the rest unread.
    body = json.dumps({"desiredState": "inactive", "options": SLEEP_OPTS}) + " trailing"
    assert c.request("PUT", "/fleet/v1/units/a.service", body).status == 201


def test_put_null_option_drops_connection(emu):
    # Upstream dereferences the nil *UnitOption and the handler panics.
    cl = Client(emu)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        cl.request("PUT", "/fleet/v1/units/a.service", {"options": [None]})
    cl.close()
    cl = Client(emu)
    assert cl.request("GET", "/fleet/v1/units/a.service").status == 404
    cl.close()


# Option validation (new units only).

def _opts(*triples):
    return [{"section": s, "name": n, "value": v} for s, n, v in triples]


def test_line_too_long_boundary(c):
    # "ExecStart=" + value is the line; 2048 bytes without newline is refused.
    ok = _opts(("Service", "ExecStart", "x" * 2037))   # 2047-byte line
    bad = _opts(("Service", "ExecStart", "x" * 2038))  # 2048-byte line
    assert put_unit(c, "ok.service", "inactive", ok).status == 201
    assert_error(put_unit(c, "bad.service", "inactive", bad), 400, "line too long (max 2048 bytes)")
    big = _opts(("Unit", "Description", "d"), ("Service", "ExecStart", "y" * 5000))
    assert_error(put_unit(c, "big.service", "inactive", big), 400, "line too long (max 2048 bytes)")


def test_option_validation_not_on_replace(c):
    assert put_unit(c, "r.service", "inactive").status == 201
    bad = _opts(("Service", "ExecStart", "x" * 3000))
    assert put_unit(c, "r.service", "inactive", bad).status == 201


@pytest.mark.parametrize("opts,message", [
    (_opts(("Service", "a\nb", "x")), "unexpected newline encountered while parsing option name"),
    (_opts(("A]B", "k", "v")), "found garbage after section name : [66 93]"),
    (_opts(("X-Fleet", "MachineOf", "foo.service"), ("X-Fleet", "Conflicts", "bar.service foo*")),
     'unresolvable requirements: peer "foo.service" matches conflict "foo*"'),
    (_opts(("X-Fleet", "X-ConditionMachineOf", "foo.service"), ("X-Fleet", "X-Conflicts", "foo.service")),
     'unresolvable requirements: peer "foo.service" matches conflict "foo.service"'),
    (_opts(("X-Fleet", "MachineOf", "bar.service"), ("X-Fleet", "Replaces", "bar.*")),
     'unresolvable requirements: peer "bar.service" matches replace "bar.*"'),
    (_opts(("X-Fleet", "MachineID", "abc"), ("X-Fleet", "MachineOf", "bar.service")),
     "MachineID cannot be used with Peers"),
    (_opts(("X-Fleet", "X-ConditionMachineID", "abc"), ("X-Fleet", "Conflicts", "bar.service")),
     "MachineID cannot be used with Conflicts"),
    (_opts(("X-Fleet", "X-ConditionMachineBootID", "abc"), ("X-Fleet", "Global", "true")),
     "MachineID cannot be used with Global"),
    (_opts(("X-Fleet", "MachineID", "abc"), ("X-Fleet", "Replaces", "bar.service")),
     "MachineID cannot be used with Replaces"),
    (_opts(("X-Fleet", "Global", "yes"), ("X-Fleet", "MachineOf", "bar.service")),
     "Global cannot be used with Peers"),
    (_opts(("X-Fleet", "Global", "On"), ("X-Fleet", "Replaces", "bar.service")),
     "Global cannot be used with Replaces"),
    (_opts(("X-Fleet", "Conflicts", "a.service"), ("X-Fleet", "Replaces", "bar.service")),
     "Conflicts cannot be used with Replaces"),
])
def test_option_validation_errors(c, opts, message):
    assert_error(put_unit(c, "v.service", "launched", opts), 400, message)


def test_option_validation_accepts(c):
    cases = [
        _opts(("X-Fleet", "Unknown", "whatever")),               # unknown keys pass
        _opts(("X-Fleet", "Global", "true"), ("X-Fleet", "Global", "false"),
              ("X-Fleet", "MachineOf", "a.service")),            # last Global wins
        _opts(("X-Fleet", "Conflicts", "a.service,b.service"), ("X-Fleet", "MachineOf", "a.service")),
        _opts(("", "", "")),                                       # empty fields serialize fine
    ]
    for i, opts in enumerate(cases):
        assert put_unit(c, "ok%d.service" % i, "inactive", opts).status == 201, opts


def test_go_path_match():
    assert fe.go_path_match("foo*", "foo.service")
    assert fe.go_path_match("f?o.service", "foo.service")
    assert fe.go_path_match("[a-f]oo.service", "foo.service")
    assert not fe.go_path_match("[^a-f]oo.service", "foo.service")
    assert not fe.go_path_match("foo[", "foo[")
    assert not fe.go_path_match("*", "a/b")


# ---------------------------------------------------------------------------
# Hash (§5.3).

def test_hash_test_vector():
    opts = [("Service", "ExecStart", "/usr/bin/sleep 1d")]
    assert fe.serialize_unit(opts) == b"[Service]\nExecStart=/usr/bin/sleep 1d\n"
    assert fe.unit_hash(opts) == SLEEP_HASH


def test_serialization_groups_sections():
    opts = [("Unit", "Description", "d"), ("Service", "ExecStart", "a"),
            ("Unit", "After", "x"), ("Service", "ExecStop", "b")]
    assert fe.serialize_unit(opts) == \
        b"[Unit]\nDescription=d\nAfter=x\n\n[Service]\nExecStart=a\nExecStop=b\n"


def test_test_service_fixture_hash():
    # python-fleet's fixture (CRLF line ends) is the same unit file.
    with open(os.path.join(FIXTURES, "test.service"), "rb") as f:
        text = f.read().replace(b"\r\n", b"\n").rstrip(b"\n") + b"\n"
    assert text == fe.serialize_unit([("Service", "ExecStart", "/usr/bin/sleep 1d")])


# ---------------------------------------------------------------------------
# GET / DELETE units.

def test_get_and_delete(c):
    assert_error(c.request("GET", "/fleet/v1/units/a.service"), 404, "unit does not exist")
    assert_error(c.request("DELETE", "/fleet/v1/units/a.service"), 404, "unit does not exist")
    assert put_unit(c, "a.service", "launched").status == 201
    r = c.request("DELETE", "/fleet/v1/units/a.service")
    assert r.status == 204 and r.body == b"" and r.header("Content-Length") is None
    assert_error(c.request("GET", "/fleet/v1/units/a.service"), 404, "unit does not exist")
    assert c.request("GET", "/fleet/v1/state").body == b"{}"


def test_units_ordered_by_name(c):
    for n in ("c.service", "a.service", "b.socket"):
        assert put_unit(c, n, "inactive").status == 201
    names = []
    tok = None
    while True:
        r = c.request("GET", "/fleet/v1/units" + ("?nextPageToken=" + tok if tok else ""))
        names += [u["name"] for u in r.json().get("units", [])]
        tok = r.json().get("nextPageToken")
        if not tok:
            break
    assert names == ["a.service", "b.socket", "c.service"]


# ---------------------------------------------------------------------------
# Pagination.

def test_token_format():
    assert fe.encode_page_token(100, 2) == "ZAACAA=="
    assert fe.encode_page_token(100, 3) == "ZAADAA=="
    assert fe.decode_page_token("ZAACAA==") == (100, 2)


def test_pagination_across_pages(c):
    for i in range(5):
        assert put_unit(c, "u%d.service" % i, "inactive").status == 201
    r1 = c.request("GET", "/fleet/v1/units").json()
    assert [u["name"] for u in r1["units"]] == ["u0.service", "u1.service"]
    assert r1["nextPageToken"] == token(2, 2) == "AgACAA=="
    raw = c.request("GET", "/fleet/v1/units?nextPageToken=" + r1["nextPageToken"]).body
    assert raw.startswith(b'{"nextPageToken":"AgADAA==","units":[')  # fleet's field order
    r3 = c.request("GET", "/fleet/v1/units?nextPageToken=AgADAA==").json()
    assert [u["name"] for u in r3["units"]] == ["u4.service"] and "nextPageToken" not in r3


def test_pagination_exact_multiple_ends_with_empty_page(c):
    for i in range(4):
        assert put_unit(c, "u%d.service" % i, "inactive").status == 201
    r2 = c.request("GET", "/fleet/v1/units?nextPageToken=" + token(2, 2)).json()
    assert len(r2["units"]) == 2 and r2["nextPageToken"] == token(2, 3)
    r3 = c.request("GET", "/fleet/v1/units?nextPageToken=" + token(2, 3))
    assert r3.status == 200 and r3.body == b"{}"
    assert c.request("GET", "/fleet/v1/units?nextPageToken=" + token(2, 9)).body == b"{}"


def test_machines_pagination_and_order(c, emu):
    r1 = c.request("GET", "/fleet/v1/machines")
    assert r1.body.startswith(b'{"machines":[')
    p1 = r1.json()
    assert p1["nextPageToken"] == token(2, 2)
    p2 = c.request("GET", "/fleet/v1/machines?nextPageToken=" + p1["nextPageToken"]).json()
    assert "nextPageToken" not in p2
    ids = [m["id"] for m in p1["machines"] + p2["machines"]]
    assert ids == sorted(ids) == emu.machine_ids and len(ids) == 3
    for m in p1["machines"] + p2["machines"]:
        assert len(m["id"]) == 32 and int(m["id"], 16) >= 0
        assert m["primaryIP"].startswith("198.51.100.")
        assert "metadata" not in m


@pytest.mark.parametrize("query,message", [
    ("nextPageToken=", "EOF"),
    ("nextPageToken=" + token(2, 2) + "&nextPageToken=" + token(2, 2), "too many values for page token"),
    ("nextPageToken=" + token(100, 2), "token limit must be 2"),
    ("nextPageToken=" + token(2, 0), "token page must be greater than zero"),
    ("nextPageToken=AQ==", "unexpected EOF"),
    ("nextPageToken=!!!!", "illegal base64 data at input byte 0"),
    ("nextPageToken=AgACAA", "illegal base64 data at input byte 4"),
    ("nextPageToken=AgACAA%3D%3Dxx", "illegal base64 data at input byte 8"),
])
@pytest.mark.parametrize("resource", ["units", "state", "machines"])
def test_token_errors(c, resource, query, message):
    assert_error(c.request("GET", "/fleet/v1/%s?%s" % (resource, query)), 400, message)


def test_empty_collections_are_empty_objects(sockdir):
    e = fe.FleetEmulator(tcp="127.0.0.1:0", machines=0, converge_delay=0).start()
    try:
        cl = Client(e)
        for res in ("units", "state", "machines"):
            r = cl.request("GET", "/fleet/v1/" + res)
            assert r.status == 200 and r.body == b"{}"
            assert r.header("Content-Type") == "application/json"
        cl.close()
    finally:
        e.stop()


# ---------------------------------------------------------------------------
# /state.

def test_state_filters_before_paging(c, emu):
    for n in ("a.service", "b.service", "c.service"):
        assert put_unit(c, n, "launched").status == 201
    all_states = c.request("GET", "/fleet/v1/state").json()
    assert len(all_states["states"]) == 2 and all_states["nextPageToken"] == token(2, 2)
    r = c.request("GET", "/fleet/v1/state?unitName=c.service").json()
    assert [s["name"] for s in r["states"]] == ["c.service"] and "nextPageToken" not in r
    st = r["states"][0]
    assert st == {"hash": SLEEP_HASH, "machineID": st["machineID"], "name": "c.service",
                  "systemdActiveState": "active", "systemdLoadState": "loaded",
                  "systemdSubState": "running"}
    mid = st["machineID"]
    r = c.request("GET", "/fleet/v1/state?machineID=" + mid).json()
    assert all(s["machineID"] == mid for s in r["states"])
    # Only the first value of a filter counts; an empty one filters nothing.
    r = c.request("GET", "/fleet/v1/state?unitName=a.service&unitName=c.service").json()
    assert [s["name"] for s in r["states"]] == ["a.service"]
    r = c.request("GET", "/fleet/v1/state?unitName=&nextPageToken=" + token(2, 2)).json()
    assert [s["name"] for s in r["states"]] == ["c.service"]
    assert c.request("GET", "/fleet/v1/state?unitName=zzz.service").body == b"{}"


def test_state_item(c, emu):
    assert put_unit(c, "a.service", "loaded").status == 201
    r = c.request("GET", "/fleet/v1/state/a.service")
    assert r.status == 200
    s = r.json()
    assert (s["name"], s["hash"], s["systemdLoadState"], s["systemdActiveState"],
            s["systemdSubState"]) == ("a.service", SLEEP_HASH, "loaded", "inactive", "dead")


def test_states_ordered_by_unit_then_machine(c, emu):
    glob = _opts(("Service", "ExecStart", "/bin/true"), ("X-Fleet", "Global", "true"))
    assert put_unit(c, "g.service", "launched", glob).status == 201
    assert put_unit(c, "a.service", "launched").status == 201
    keys = []
    tok = None
    while True:
        p = c.request("GET", "/fleet/v1/state" + ("?nextPageToken=" + tok if tok else "")).json()
        keys += [(s["name"], s["machineID"]) for s in p.get("states", [])]
        tok = p.get("nextPageToken")
        if not tok:
            break
    assert keys == sorted(keys) and len(keys) == 4


# ---------------------------------------------------------------------------
# PATCH /machines.

def test_machine_metadata_patch(c, emu):
    mid = emu.machine_ids[0]
    ops = [{"op": "add", "path": "/%s/metadata/region" % mid, "value": {"value": "us-east"}},
           {"op": "replace", "path": "/%s/metadata/role" % mid, "value": {"value": "db"}},
           {"op": "add", "path": "/%s/metadata/old" % mid, "value": {"value": "x"}},
           {"op": "remove", "path": "/%s/metadata/old" % mid}]
    r = c.request("PATCH", "/fleet/v1/machines", ops, json_ct=False)
    assert r.status == 204 and r.body == b"" and r.header("Content-Length") is None
    m = c.request("GET", "/fleet/v1/machines").json()["machines"][0]
    assert m["id"] == mid
    assert m["metadata"] == {"region": "us-east", "role": "db"}
    raw = c.request("GET", "/fleet/v1/machines").body
    assert b'"metadata":{"region":"us-east","role":"db"},"primaryIP"' in raw
    # Unknown machine: accepted, nothing listed.
    r = c.request("PATCH", "/fleet/v1/machines",
                  [{"op": "add", "path": "/%s/metadata/k" % ("0" * 32), "value": {"value": "v"}}])
    assert r.status == 204
    # null is no ops at all.
    assert c.request("PATCH", "/fleet/v1/machines", "null").status == 204


@pytest.mark.parametrize("body,message", [
    ([{"op": "add", "path": "/m/metadata/k", "value": "bare"}],
     'json: cannot unmarshal string into Go value of type struct { Value string "json:\\"value\\"" }'),
    ({"op": "add"}, "json: cannot unmarshal object into Go value of type []api.machineMetadataOp"),
    ("", "EOF"),
    ("[", "unexpected EOF"),
    ([{"op": "move", "path": "/m/metadata/k", "value": {"value": "v"}}],
     "invalid op: expect add, remove, or replace"),
    ([{"path": "/m/metadata/k"}], "invalid op: expect add, remove, or replace"),
    ([{"op": "add", "path": "/m/metadata/k!", "value": {"value": "v"}}], "machine metadata path invalid"),
    ([{"op": "add", "path": "m/metadata/k", "value": {"value": "v"}}], "machine metadata path invalid"),
    ([{"op": "remove", "path": "/m/x/metadata/k"}], "machine metadata path invalid"),
    ([{"op": "add", "path": "/m/metadata/k"}], "invalid value: add and replace require a value"),
    ([{"op": "replace", "path": "/m/metadata/k", "value": {"value": ""}}],
     "invalid value: add and replace require a value"),
])
def test_machine_patch_errors(c, emu, body, message):
    assert_error(c.request("PATCH", "/fleet/v1/machines", body), 400, message)


def test_machine_patch_validates_all_before_applying(c, emu):
    mid = emu.machine_ids[0]
    ops = [{"op": "add", "path": "/%s/metadata/a" % mid, "value": {"value": "1"}},
           {"op": "bogus", "path": "/%s/metadata/b" % mid}]
    assert c.request("PATCH", "/fleet/v1/machines", ops).status == 400
    assert "metadata" not in c.request("GET", "/fleet/v1/machines").json()["machines"][0]


def test_machine_metadata_survives_leave_and_rejoin(c, emu):
    mid = emu.machine_ids[0]
    assert c.request("PATCH", "/fleet/v1/machines",
                     [{"op": "add", "path": "/%s/metadata/k" % mid, "value": {"value": "v"}}]).status == 204
    emu.remove_machine(mid)
    assert mid not in [m["id"] for m in c.request("GET", "/fleet/v1/machines").json()["machines"]]
    emu.add_machine(mid, "198.51.100.77")
    m = [m for m in c.request("GET", "/fleet/v1/machines").json()["machines"] if m["id"] == mid][0]
    assert m["metadata"] == {"k": "v"}


# ---------------------------------------------------------------------------
# Engine simulation.

def test_convergence_with_delay(sockdir):
    e = fe.FleetEmulator(tcp="127.0.0.1:0", page_limit=100, machines=3,
                         converge_delay=0.15).start()
    cl = Client(e)
    try:
        def unit():
            return cl.request("GET", "/fleet/v1/units/w.service").json()

        def states():
            return cl.request("GET", "/fleet/v1/state").json().get("states", [])

        assert put_unit(cl, "w.service", "launched").status == 201
        u = unit()
        # Scheduled at once, reported later.
        assert u["currentState"] == "inactive" and u["machineID"] in e.machine_ids
        assert states() == []
        assert poll(lambda: unit()["currentState"] == "launched")
        (st,) = states()
        assert st == {"hash": SLEEP_HASH, "machineID": u["machineID"], "name": "w.service",
                      "systemdActiveState": "active", "systemdLoadState": "loaded",
                      "systemdSubState": "running"}
        # launched -> loaded (fleetctl stop).
        assert put_unit(cl, "w.service", "loaded", options=None).status == 204
        assert unit()["currentState"] == "launched"
        assert poll(lambda: unit()["currentState"] == "loaded")
        (st,) = states()
        assert (st["systemdLoadState"], st["systemdActiveState"], st["systemdSubState"]) == \
            ("loaded", "inactive", "dead")
        # loaded -> inactive (fleetctl unload): unscheduled at once, state gone later.
        assert put_unit(cl, "w.service", "inactive", options=None).status == 204
        u = unit()
        assert u["currentState"] == "inactive" and "machineID" not in u
        assert poll(lambda: states() == [])
        # destroy: states vanish after the delay.
        assert put_unit(cl, "w.service", "launched", options=None).status == 204
        assert poll(lambda: len(states()) == 1)
        assert cl.request("DELETE", "/fleet/v1/units/w.service").status == 204
        assert poll(lambda: states() == [])
        assert e.wait_converged(2)
    finally:
        cl.close()
        e.stop()


def test_list_units_current_state(c):
    assert put_unit(c, "a.service", "launched").status == 201
    assert put_unit(c, "b.service", "loaded").status == 201
    assert put_unit(c, "c.service", "inactive").status == 201
    units = c.request("GET", "/fleet/v1/units").json()["units"]
    units += c.request("GET", "/fleet/v1/units?nextPageToken=" + token(2, 2)).json()["units"]
    got = {u["name"]: (u["currentState"], "machineID" in u) for u in units}
    assert got == {"a.service": ("launched", True), "b.service": ("loaded", True),
                   "c.service": ("inactive", False)}


def test_units_spread_over_machines(c, emu):
    for n in ("a.service", "b.service", "c.service"):
        assert put_unit(c, n, "launched").status == 201
    mids = {c.request("GET", "/fleet/v1/units/" + n).json()["machineID"]
            for n in ("a.service", "b.service", "c.service")}
    assert mids == set(emu.machine_ids)


def test_machine_id_requirement_and_conflicts(c, emu):
    target = emu.machine_ids[2]
    pinned = _opts(("Service", "ExecStart", "/bin/true"), ("X-Fleet", "MachineID", target))
    assert put_unit(c, "p.service", "launched", pinned).status == 201
    assert c.request("GET", "/fleet/v1/units/p.service").json()["machineID"] == target
    nowhere = _opts(("Service", "ExecStart", "/bin/true"), ("X-Fleet", "MachineID", "f" * 32))
    assert put_unit(c, "n.service", "launched", nowhere).status == 201
    u = c.request("GET", "/fleet/v1/units/n.service").json()
    assert "machineID" not in u and u["currentState"] == "inactive"
    conf = lambda i: _opts(("Service", "ExecStart", "/bin/%d" % i), ("X-Fleet", "Conflicts", "web*"))
    placed = set()
    for i in range(3):
        assert put_unit(c, "web%d.service" % i, "launched", conf(i)).status == 201
        placed.add(c.request("GET", "/fleet/v1/units/web%d.service" % i).json().get("machineID"))
    assert placed == set(emu.machine_ids)
    assert put_unit(c, "web3.service", "launched", conf(3)).status == 201
    assert "machineID" not in c.request("GET", "/fleet/v1/units/web3.service").json()


def test_global_units(c, emu):
    glob = _opts(("Service", "ExecStart", "/bin/true"), ("X-Fleet", "Global", "TRUE"))
    assert put_unit(c, "g.service", "launched", glob).status == 201
    u = c.request("GET", "/fleet/v1/units/g.service").json()
    assert "currentState" not in u and "machineID" not in u
    assert u["desiredState"] == "launched"
    listed = c.request("GET", "/fleet/v1/units").json()["units"][0]
    assert listed["currentState"] == "inactive" and "machineID" not in listed
    st = c.request("GET", "/fleet/v1/state?unitName=g.service").json()
    nxt = c.request("GET", "/fleet/v1/state?unitName=g.service&nextPageToken=" + st["nextPageToken"]).json()
    machines = [s["machineID"] for s in st["states"] + nxt["states"]]
    assert machines == emu.machine_ids
    h = fe.unit_hash([("Service", "ExecStart", "/bin/true"), ("X-Fleet", "Global", "TRUE")])
    assert {s["hash"] for s in st["states"]} == {h}
    assert put_unit(c, "g.service", "inactive", options=None).status == 204
    assert c.request("GET", "/fleet/v1/state").body == b"{}"


def test_template_is_never_scheduled(c):
    assert put_unit(c, "t@.service", "launched").status == 201
    u = c.request("GET", "/fleet/v1/units/t@.service").json()
    assert u["currentState"] == "inactive" and "machineID" not in u


# ---------------------------------------------------------------------------
# Transport: keep-alive, unix socket, Host handling.

def test_keep_alive_reuses_one_connection(c):
    c.request("GET", "/fleet/v1/machines")
    sock = c.conn.sock
    assert put_unit(c, "k.service", "inactive").status == 201
    assert put_unit(c, "k.service", "launched", options=None).status == 204
    assert_error(c.request("GET", "/fleet/v1/units/nope.service"), 404, "unit does not exist")
    assert_error(c.request("PUT", "/fleet/v1/units/k.service", "{", headers=[]), 415,
                 "expected 1 Content-Type, got 0")
    assert c.request("DELETE", "/fleet/v1/units/k.service").status == 204
    assert c.request("GET", "/fleet/v1/discovery").status == 200
    assert c.conn.sock is sock


def test_unix_and_tcp_share_registry(emu):
    tcp, unix = Client(emu), Client(emu, unix=True, host="%2Fvar%2Frun%2Ffleet.sock")
    try:
        assert put_unit(unix, "shared.service", "launched").status == 201
        assert tcp.request("GET", "/fleet/v1/units/shared.service").json()["name"] == "shared.service"
        assert tcp.request("DELETE", "/fleet/v1/units/shared.service").status == 204
        assert unix.request("GET", "/fleet/v1/units/shared.service").status == 404
        assert unix.request("GET", "/fleet/v1/discovery").body == emu.discovery
        r = unix.request("GET", "/fleet/v1/machines")
        assert r.status == 200 and r.header("Server") == "fleetd/v1.0.0"
    finally:
        tcp.close()
        unix.close()


def _raw(emu, data, unix=False):
    if unix:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(emu.unix_path)
    else:
        s = socket.create_connection(emu.tcp_address)
    s.settimeout(5)
    s.sendall(data)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out


@pytest.mark.parametrize("unix", [False, True])
def test_any_host_header_accepted(emu, unix):
    for host in (b"domain-sock", b"%2Ftmp%2Fx.sock", b"example.invalid:1"):
        out = _raw(emu, b"GET /fleet/v1/machines HTTP/1.1\r\nHost: " + host +
                   b"\r\nConnection: close\r\n\r\n", unix)
        assert out.startswith(b"HTTP/1.1 200 "), out


def test_missing_host_is_400_like_net_http(emu):
    out = _raw(emu, b"GET /fleet/v1/machines HTTP/1.1\r\n\r\n", unix=True)
    assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert out.endswith(b"400 Bad Request: missing required Host header")
    out = _raw(emu, b"GET /fleet/v1/machines HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.0 200 ")


def test_chunked_request_body(emu):
    body = json.dumps({"desiredState": "inactive", "options": SLEEP_OPTS}).encode()
    req = (b"PUT /fleet/v1/units/ch.service HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
           b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    assert _raw(emu, req).startswith(b"HTTP/1.1 201 ")


# ---------------------------------------------------------------------------
# The program: CLI, READY line, lifetime.

def _start_cli(*args, **kw):
    return subprocess.Popen([sys.executable, EMULATOR] + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _dead(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return True


def test_cli_ready_line_serves_both_and_stops_on_sigterm(sockdir):
    sock = os.path.join(sockdir, "cli.sock")
    ready = os.path.join(sockdir, "ready.txt")
    p = _start_cli("--tcp", "127.0.0.1:0", "--unix", sock, "--page-limit", "1",
                   "--machines", "2", "--converge-delay", "0", "--ready-file", ready)
    try:
        line = p.stdout.readline().strip()
        fields = dict(f.split("=", 1) for f in line.split()[1:])
        assert line.split()[0] == "READY" and fields["unix"] == sock
        host, port = fields["tcp"].rsplit(":", 1)
        assert host == "127.0.0.1"
        with open(ready) as f:
            assert f.read() == line + "\n"
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("PUT", "/fleet/v1/units/cli.service", json.dumps({"options": SLEEP_OPTS}),
                     {"Content-Type": "application/json"})
        assert conn.getresponse().read() == b""
        conn.request("GET", "/fleet/v1/machines")
        page = json.loads(conn.getresponse().read())
        assert len(page["machines"]) == 1 and page["nextPageToken"] == token(1, 2)
        conn.close()
        u = _UnixConnection(sock)
        u.request("GET", "/fleet/v1/units/cli.service")
        assert json.loads(u.getresponse().read())["name"] == "cli.service"
        u.close()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0
        assert not os.path.exists(sock)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


def test_cli_sigint_and_max_lifetime(sockdir):
    p = _start_cli("--tcp", "127.0.0.1:0")
    assert p.stdout.readline().startswith("READY tcp=127.0.0.1:")
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=10) == 0
    p.stdout.close()
    p.stderr.close()
    t0 = time.monotonic()
    p = _start_cli("--unix", os.path.join(sockdir, "l.sock"), "--max-lifetime", "0.5")
    assert p.stdout.readline().strip() == "READY unix=" + os.path.join(sockdir, "l.sock")
    assert p.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 8
    p.stdout.close()
    p.stderr.close()


def test_cli_exits_when_parent_dies(sockdir):
    # An intermediate process starts the emulator, reports its pid and exits.
    code = ("import subprocess,sys;"
            "p=subprocess.Popen([sys.executable,%r,'--tcp','127.0.0.1:0'],stdout=subprocess.PIPE);"
            "print(p.pid, flush=True);p.stdout.readline()" % EMULATOR)
    mid = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         timeout=20)
    pid = int(mid.stdout.split()[0])
    assert poll(lambda: _dead(pid), timeout=10), "emulator outlived its parent"


@pytest.mark.parametrize("args", [
    [],
    ["--tcp", "0.0.0.0:0"],
    ["--tcp", "10.1.2.3:0"],
    ["--tcp", "127.0.0.1:0", "--page-limit", "0"],
    ["--tcp", "127.0.0.1:0", "--discovery", "/nonexistent/v1.json"],
])
def test_cli_rejects_bad_arguments(args):
    r = subprocess.run([sys.executable, EMULATOR] + args, capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and r.stdout == ""


def test_loopback_parsing():
    assert fe.parse_loopback_hostport("127.0.0.1:0") == ("127.0.0.1", 0)
    assert fe.parse_loopback_hostport("[::1]:80") == ("::1", 80)
    assert fe.parse_loopback_hostport("localhost:5") == ("127.0.0.1", 5)
    for bad in ("0.0.0.0:1", "192.0.2.1:1", "example.com:1", "127.0.0.1", "127.0.0.1:x"):
        with pytest.raises(ValueError):
            fe.parse_loopback_hostport(bad)


# ---------------------------------------------------------------------------
# The real python-fleet client (PyPI `fleet` 0.1.3) against the emulator.

def _python_fleet():
    try:
        import fleet.v1 as fleet_v1
    except ImportError as e:  # a missing install must be visible, not skipped
        pytest.fail("python-fleet is not installed (pip install fleet==0.1.3): %s" % e)
    return fleet_v1


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_python_fleet_client(emu, transport):
    fleet_v1 = _python_fleet()
    if transport == "tcp":
        endpoint = emu.endpoint
    else:
        endpoint = "http+unix://" + urllib.parse.quote(emu.unix_path, safe="")
    client = fleet_v1.Client(endpoint)

    unit = fleet_v1.Unit(from_string="[Service]\nExecStart=/usr/bin/sleep 1d\n",
                         desired_state="launched")
    created = client.create_unit("pf.service", unit)
    assert created.name == "pf.service" and created.desiredState == "launched"
    assert created.currentState == "launched" and created.machineID in emu.machine_ids
    for i in range(3):  # page limit is 2: list_units must follow nextPageToken
        client.create_unit("pf%d.service" % i, fleet_v1.Unit(
            options=[{"section": "Service", "name": "ExecStart", "value": "/bin/%d" % i}]))
    assert [u.name for u in client.list_units()] == \
        ["pf.service", "pf0.service", "pf1.service", "pf2.service"]

    states = list(client.list_unit_states(unit_name="pf.service"))
    assert len(states) == 1 and states[0].hash == SLEEP_HASH
    assert states[0].systemdSubState == "running"
    assert list(client.list_unit_states(machine_id=created.machineID))[0].machineID == created.machineID

    updated = client.set_unit_desired_state("pf.service", "loaded")
    assert updated.desiredState == "loaded" and updated.currentState == "loaded"
    assert list(client.list_unit_states(unit_name="pf.service"))[0].systemdSubState == "dead"
    with pytest.raises(ValueError):
        client.set_unit_desired_state("pf.service", "running")

    machines = list(client.list_machines())
    assert [m.id for m in machines] == emu.machine_ids
    assert all(m.metadata == {} for m in machines)

    assert client.destroy_unit("pf.service") is True
    with pytest.raises(fleet_v1.APIError) as ei:
        client.get_unit("pf.service")
    assert (ei.value.code, ei.value.message) == (404, "unit does not exist")
    with pytest.raises(fleet_v1.APIError) as ei:
        client.create_unit("bad name.service", unit)
    assert (ei.value.code, ei.value.message) == (400, "invalid character ' ' in unit name")


# ---------------------------------------------------------------------------
# Regression and extra engine cases.

def test_conflicts_with_several_units_on_one_machine(sockdir):
    e = fe.FleetEmulator(tcp="127.0.0.1:0", machines=1, converge_delay=0).start()
    cl = Client(e)
    try:
        assert put_unit(cl, "a.service", "launched").status == 201
        assert put_unit(cl, "b.service", "launched").status == 201
        conf = _opts(("Service", "ExecStart", "/bin/c"), ("X-Fleet", "Conflicts", "a.service"))
        assert put_unit(cl, "c.service", "launched", conf).status == 201
        assert "machineID" not in cl.request("GET", "/fleet/v1/units/c.service").json()
        # Once the conflicting unit is gone, the engine schedules it.
        assert cl.request("DELETE", "/fleet/v1/units/a.service").status == 204
        u = cl.request("GET", "/fleet/v1/units/c.service").json()
        assert u["machineID"] == e.machine_ids[0] and u["currentState"] == "launched"
    finally:
        cl.close()
        e.stop()


def test_machine_metadata_scheduling(c, emu):
    want = _opts(("Service", "ExecStart", "/bin/true"), ("X-Fleet", "MachineMetadata", "region=us-east"))
    assert put_unit(c, "m.service", "launched", want).status == 201
    assert "machineID" not in c.request("GET", "/fleet/v1/units/m.service").json()
    mid = emu.machine_ids[1]
    ops = [{"op": "add", "path": "/%s/metadata/region" % mid, "value": {"value": "us-east"}}]
    assert c.request("PATCH", "/fleet/v1/machines", ops).status == 204
    assert c.request("GET", "/fleet/v1/units/m.service").json()["machineID"] == mid


def test_machine_patch_path_trailing_newline_invalid(c, emu):
    ops = [{"op": "add", "path": "/%s/metadata/k\n" % emu.machine_ids[0], "value": {"value": "v"}}]
    assert_error(c.request("PATCH", "/fleet/v1/machines", ops), 400, "machine metadata path invalid")


def test_replaced_unit_leaves_machine_it_no_longer_fits(c, emu):
    assert put_unit(c, "r.service", "launched").status == 201
    first = c.request("GET", "/fleet/v1/units/r.service").json()["machineID"]
    other = [m for m in emu.machine_ids if m != first][0]
    pinned = _opts(("Service", "ExecStart", "/usr/bin/sleep 1d"), ("X-Fleet", "MachineID", other))
    assert put_unit(c, "r.service", "launched", pinned).status == 201
    assert c.request("GET", "/fleet/v1/units/r.service").json()["machineID"] == other
    (st,) = c.request("GET", "/fleet/v1/state?unitName=r.service").json()["states"]
    assert st["machineID"] == other and st["hash"] == fe.unit_hash(
        [("Service", "ExecStart", "/usr/bin/sleep 1d"), ("X-Fleet", "MachineID", other)])


def test_expect_100_continue(emu):
    body = json.dumps({"desiredState": "inactive", "options": SLEEP_OPTS}).encode()
    s = socket.create_connection(emu.tcp_address)
    s.settimeout(5)
    s.sendall(b"PUT /fleet/v1/units/e.service HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
    assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n")
    s.sendall(body)
    assert s.recv(1000).startswith(b"HTTP/1.1 201 Created\r\n")
    s.close()


# Validity tables matching the cases in upstream's api/units_test.go.

def _xf(key, value):
    return ("X-Fleet", key, value)


@pytest.mark.parametrize("opts,valid", [
    ([], True),
    ([_xf("Conflicts", "foo.service"), _xf("Conflicts", "bar.service")], True),
    ([_xf("Conflicts", "foo.service"), _xf("MachineOf", "bar.service")], True),
    ([_xf("Conflicts", "b*e"), _xf("MachineOf", "foo.service")], True),
    ([_xf("Conflicts", "foo.service"), _xf("MachineOf", "foo.service")], False),
    ([_xf("Conflicts", "foo.service"), _xf("Conflicts", "bar.service"),
      _xf("MachineOf", "bar.service")], False),
    ([_xf("Conflicts", "b*e"), _xf("MachineOf", "bar.service")], False),
    ([_xf("Conflicts", "b*e"), _xf("MachineOf", "baz.service")], False),
    ([_xf("Replaces", "foo.service"), _xf("Replaces", "bar.service")], True),
    ([_xf("Replaces", "foo.service"), _xf("MachineOf", "bar.service")], True),
    ([_xf("Replaces", "foo.service"), _xf("Conflicts", "bar.service")], False),
    ([_xf("Replaces", "foo.service"), _xf("Replaces", "bar.service"),
      _xf("MachineOf", "bar.service")], False),
    ([_xf("MachineID", "abcdefghi")], True),
    ([_xf("MachineID", "abcdefghi"), _xf("MachineOf", "foo.service")], False),
    ([_xf("MachineID", "abcdefghi"), _xf("Conflicts", "bar.service")], False),
    ([_xf("MachineID", "abcdefghi"), _xf("Replaces", "bar.service")], False),
    ([_xf("Global", "true")], True),
    ([_xf("Global", "true"), _xf("Conflicts", "foo.service")], True),
    ([_xf("Global", "true"), _xf("MachineOf", "foo.service"), _xf("MachineOf", "bar.service")], False),
    ([_xf("Global", "true"), _xf("MachineID", "abcdefghi")], False),
    ([_xf("MachineID", "abcdefghi"), _xf("Global", "true")], False),
    ([_xf("Global", "true"), _xf("Replaces", "foo.service")], False),
])
def test_validate_options_table(opts, valid):
    assert (fe.validate_options(opts) is None) == valid


@pytest.mark.parametrize("name", [
    "", "0" * 249 + ".service", "0" * 506 + ".mount", "fooservice", "barmount", "bar@foo",
    "foo.", "foo.service.", "foo@foo.service.", "foo.bar", "hello.cerveza", "foo.servICE",
    "foo%.service", "foo$asd.service", "hello##.mount", "yes/no.service", "this+that.mount",
    "dog=woof@.mount", "@foo.service", "@this.mount", "foo@1.automount", "foo@1.busname",
    "foo@1.device", "foo@1.mount", "foo@1.scope", "foo@1.slice", "foo@1.snapshot", "foo@1.swap",
])
def test_validate_name_rejects(name):
    assert fe.validate_name(name) is not None


@pytest.mark.parametrize("name", [
    "foo.service", "hello.mount", "foo@123.service", "foo@.service", "yo.yo.service",
    "hello@world.path", "hello:world.service", "yes@no\\.service", "foo-bar.mount",
    "jalapano_chips.service", "0" * 248 + ".service", "foo@1.path", "foo@1.service",
    "foo@1.socket", "foo@1.target", "foo@1.timer",
])
def test_validate_name_accepts(name):
    assert fe.validate_name(name) is None


# ---------------------------------------------------------------------------
# What real fleetd (v1.0.0 on etcd, systemd running the units) does beyond
# the API reference (issue 13): trimmed option values, failed starts, the
# engine's and agents' timing, poisoned units, dropped connections, framing.

def _timed(sockdir, **delays):
    return fe.FleetEmulator(tcp="127.0.0.1:0", page_limit=100, machines=3, **delays).start()


def test_option_values_trimmed_so_the_same_options_replace(c):
    padded = [{"section": "Service", "name": "ExecStart",
               "value": "\u00a0 /usr/bin/sleep 1d\t\u3000"},
              {"section": "Unit", "name": "Description", "value": "\u2003hi "}]
    assert put_unit(c, "ws.service", "launched", padded).status == 201
    u = c.request("GET", "/fleet/v1/units/ws.service").json()
    assert [o["value"] for o in u["options"]] == ["/usr/bin/sleep 1d", "hi"]
    st = c.request("GET", "/fleet/v1/state?unitName=ws.service").json()["states"][0]
    assert st["hash"] == fe.unit_hash([("Service", "ExecStart", "/usr/bin/sleep 1d"),
                                       ("Unit", "Description", "hi")])
    # The very same body again: its hash is of the padded values, the stored
    # one of the trimmed values, so fleetd replaces the unit file (201).
    assert put_unit(c, "ws.service", "launched", padded).status == 201
    # The trimmed options are the stored unit file: 204, only the state set.
    trimmed = [{"section": "Service", "name": "ExecStart", "value": "/usr/bin/sleep 1d"},
               {"section": "Unit", "name": "Description", "value": "hi"}]
    assert put_unit(c, "ws.service", "launched", trimmed).status == 204


def test_start_fails_rule():
    ok = lambda p: p == "/usr/bin/sleep"
    opts = lambda v: [("Service", "ExecStart", v)]
    assert not fe.start_fails("a.service", opts("/usr/bin/sleep 1d"), ok)
    assert not fe.start_fails("a.service", opts("-/usr/bin/sleep 1d"), ok)
    assert fe.start_fails("a.service", opts("/usr/bin/nope 1d"), ok)
    assert fe.start_fails("a.service", opts("sleep 1d"), ok)  # not absolute
    assert not fe.start_fails("a.socket", opts("/usr/bin/nope"), ok)
    assert not fe.start_fails("a.service", [("Unit", "Description", "x")], ok)
    # The last ExecStart counts.
    assert not fe.start_fails("a.service", opts("/nope") + opts("/usr/bin/sleep 1"), ok)


def test_missing_binary_fails_after_launched(sockdir):
    e = _timed(sockdir, converge_delay=0.05, start_delay=0.4)
    cl = Client(e)
    try:
        bad = [{"section": "Service", "name": "ExecStart",
                "value": "/usr/bin/cloudplane-no-such-binary --x"}]
        assert put_unit(cl, "bad.service", "launched", bad).status == 201
        assert put_unit(cl, "good.service", "launched").status == 201

        def state(name):
            st = cl.request("GET", "/fleet/v1/state?unitName=" + name).json().get("states")
            return (st[0]["systemdActiveState"], st[0]["systemdSubState"]) if st else None

        def current(name):
            return cl.request("GET", "/fleet/v1/units/" + name).json()["currentState"]

        # `launched` as soon as the agent triggers the start, systemd's
        # verdict ~start_delay later.
        assert poll(lambda: current("good.service") == "launched")
        t_launched = time.monotonic()
        assert state("good.service") == ("inactive", "dead")
        assert poll(lambda: state("good.service") == ("active", "running"))
        assert time.monotonic() - t_launched >= 0.25
        assert poll(lambda: state("bad.service") == ("failed", "failed"))
        st = cl.request("GET", "/fleet/v1/state?unitName=bad.service").json()["states"][0]
        assert st["systemdLoadState"] == "loaded"
        # fleet itself still says launched: its heartbeat is all it knows.
        assert current("bad.service") == "launched"
    finally:
        cl.close()
        e.stop()


def test_new_unit_has_no_machine_for_the_schedule_delay(sockdir):
    e = _timed(sockdir, converge_delay=0.05, schedule_delay=0.6)
    cl = Client(e)
    try:
        t0 = time.monotonic()
        assert put_unit(cl, "late.service", "launched").status == 201
        u = cl.request("GET", "/fleet/v1/units/late.service").json()
        assert "machineID" not in u and u["currentState"] == "inactive"
        assert poll(lambda: "machineID" in cl.request(
            "GET", "/fleet/v1/units/late.service").json())
        assert time.monotonic() - t0 >= 0.5
        assert poll(lambda: cl.request(
            "GET", "/fleet/v1/units/late.service").json()["currentState"] == "launched")
        # A replaced unit keeps its machine: only new units wait.
        new = [{"section": "Service", "name": "ExecStart", "value": "/usr/bin/sleep 2d"}]
        mid = cl.request("GET", "/fleet/v1/units/late.service").json()["machineID"]
        assert put_unit(cl, "late.service", "launched", new).status == 201
        assert cl.request("GET", "/fleet/v1/units/late.service").json()["machineID"] == mid
    finally:
        cl.close()
        e.stop()


def test_inactive_shows_loaded_with_machine_before_unload(sockdir):
    e = _timed(sockdir, converge_delay=0.05, unload_delay=0.5)
    cl = Client(e)
    try:
        def unit():
            return cl.request("GET", "/fleet/v1/units/u.service").json()

        assert put_unit(cl, "u.service", "launched").status == 201
        assert poll(lambda: unit()["currentState"] == "launched")
        mid = unit()["machineID"]
        assert put_unit(cl, "u.service", "inactive", options=None).status == 204
        assert poll(lambda: unit()["currentState"] == "loaded")
        u = unit()
        assert u["machineID"] == mid
        st = cl.request("GET", "/fleet/v1/state?unitName=u.service").json()["states"]
        assert [(s["machineID"], s["systemdActiveState"]) for s in st] == [(mid, "inactive")]
        assert poll(lambda: unit()["currentState"] == "inactive")
        assert "machineID" not in unit()
        assert cl.request("GET", "/fleet/v1/state?unitName=u.service").body == b"{}"
        # Launching again while it is still being unloaded cancels the unload.
        assert put_unit(cl, "u.service", "launched", options=None).status == 204
        assert poll(lambda: unit()["currentState"] == "launched")
        assert put_unit(cl, "u.service", "inactive", options=None).status == 204
        assert poll(lambda: unit()["currentState"] == "loaded")
        assert put_unit(cl, "u.service", "launched", options=None).status == 204
        assert poll(lambda: unit()["currentState"] == "launched")
        time.sleep(0.7)
        assert unit()["currentState"] == "launched" and "machineID" in unit()
    finally:
        cl.close()
        e.stop()


def test_state_of_unknown_unit_drops_the_connection(emu):
    cl = Client(emu)
    try:
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            cl.request("GET", "/fleet/v1/state/nope.service")
    finally:
        cl.close()
    # The server goes on serving.
    cl = Client(emu)
    try:
        assert cl.request("GET", "/fleet/v1/machines").status == 200
    finally:
        cl.close()


def test_large_bodies_chunked_small_ones_have_a_length(emu):
    c = Client(emu)
    try:
        for i in range(30):  # enough options for a page well over 2 KB
            assert put_unit(c, "big%02d.service" % i, "inactive").status == 201
    finally:
        c.close()
    emu.page_limit = 100
    out = _raw(emu, b"GET /fleet/v1/units HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"\r\nTransfer-Encoding: chunked" in head and b"Content-Length" not in head
    # Decode the chunks: the JSON inside is whole.
    data, rest = b"", body
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        n = int(size_line, 16)
        if n == 0:
            break
        data, rest = data + rest[:n], rest[n + 2:]
    assert len(data) > 2048 and len(json.loads(data)["units"]) == 30
    out = _raw(emu, b"GET /fleet/v1/machines HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head = out.partition(b"\r\n\r\n")[0]
    assert b"Content-Length: " in head and b"chunked" not in head
    # HTTP/1.0 has no chunks: the body ends with the connection.
    out = _raw(emu, b"GET /fleet/v1/units HTTP/1.0\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"chunked" not in head and b"Content-Length" not in head
    assert len(json.loads(body)["units"]) == 30
    # A 204 has no Content-Length.
    out = _raw(emu, b"DELETE /fleet/v1/units/big00.service HTTP/1.1\r\nHost: x\r\n"
                    b"Connection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 204") and b"Content-Length" not in out


def test_cli_timing_flags(sockdir):
    p = subprocess.Popen([sys.executable, EMULATOR, "--tcp", "127.0.0.1:0",
                          "--schedule-delay", "0.4", "--start-delay", "0.3",
                          "--unload-delay", "0.2", "--converge-delay", "0.05"],
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().split()
        host, port = line[1].split("=", 1)[1].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        body = json.dumps({"desiredState": "launched", "options": SLEEP_OPTS})
        conn.request("PUT", "/fleet/v1/units/f.service", body,
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 201 and r.read() == b""
        conn.request("GET", "/fleet/v1/units/f.service")
        assert "machineID" not in json.loads(conn.getresponse().read())
        conn.close()
    finally:
        p.terminate()
        p.wait(10)


def test_tcp_connections_have_nagle_off_like_fleetd(emu):
    """fleetd (Go net/http) sets TCP_NODELAY; the emulator writes headers and
    body apart, so with Nagle on every answer waited for a delayed ACK. The
    server side of a TCP connection has TCP_NODELAY; a unix one still works."""
    tcp = Client(emu)
    assert tcp.request("GET", "/fleet/v1/machines").status == 200
    with emu._lock:
        server_sides = [s for s in emu._conns if s.family == socket.AF_INET]
    assert server_sides
    assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in server_sides)
    unix = Client(emu, unix=True)
    assert unix.request("GET", "/fleet/v1/machines").status == 200
    tcp.close()
    unix.close()
