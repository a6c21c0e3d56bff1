"""The fault proxy itself, against a tiny local HTTP/1.1 server: faithful
forwarding on a keep-alive connection, each fault kind as specified (and
whether the upstream saw the request), reproducible seeds, the method
filter and outage mode."""
import email.utils
import http.client
import http.server
import json
import socket
import threading
import time

import pytest

from fault_proxy import FORWARDED_KINDS, KINDS, FaultProxy


class _Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen = []  # (method, path, body)
        self.lock = threading.Lock()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.seen.append((self.command, self.path, body))
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"parts": ', b'[1, 2, 3]', b'}'):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.command == "DELETE":
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps({"method": self.command, "path": self.path,
                           "body": body.decode()}).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.path == "/close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


@pytest.fixture
def upstream():
    server = _Upstream()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def make_proxy(upstream):
    proxies = []

    def make(**kwargs):
        proxy = FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}", **kwargs).start()
        proxies.append(proxy)
        return proxy
    yield make
    for proxy in proxies:
        proxy.stop()


def connect(proxy, timeout=5):
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)


def request(conn, method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response, response.read()


def test_listens_on_loopback_and_url_rewrites(make_proxy):
    proxy = make_proxy()
    assert proxy.address.startswith("127.0.0.1:") and proxy.port > 0
    assert proxy.url("http://127.0.0.1:1/api/2.0/") == f"http://{proxy.address}/api/2.0/"


def test_faithful_forwarding_on_one_keep_alive_connection(make_proxy, upstream):
    proxy = make_proxy()
    conn = connect(proxy)
    sock_before = None
    for i in range(5):
        response, data = request(conn, "POST", f"/items/{i}", body=json.dumps({"i": i}))
        assert response.status == 201
        assert json.loads(data) == {"method": "POST", "path": f"/items/{i}",
                                    "body": json.dumps({"i": i})}
        # One client connection for all of them (keep-alive).
        sock_before = sock_before or conn.sock
        assert conn.sock is sock_before
    response, data = request(conn, "GET", "/chunked")
    assert response.status == 200 and json.loads(data) == {"parts": [1, 2, 3]}
    response, data = request(conn, "DELETE", "/items/1")
    assert response.status == 204 and data == b""
    assert conn.sock is sock_before
    response, data = request(conn, "GET", "/close")
    assert response.status == 200 and response.getheader("Connection") == "close"
    assert json.loads(data)["path"] == "/close"
    conn.close()
    counters = proxy.counters()
    assert counters["total"] == counters["forwarded"] == 8
    assert all(counters[k] == 0 for k in KINDS)
    assert [m for m, _, _ in upstream.seen] == ["POST"] * 5 + ["GET", "DELETE", "GET"]


def test_expect_continue_and_chunked_request_body(make_proxy, upstream):
    proxy = make_proxy()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Length: 4\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"abcd")
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert json.loads(response.read())["body"] == "abcd"
    conn = connect(proxy)
    conn.request("PUT", "/chunk", body=iter([b"he", b"llo"]),
                  headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
    response = conn.getresponse()
    assert json.loads(response.read())["body"] == "hello"
    assert upstream.seen[-1] == ("PUT", "/chunk", b"hello")


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind(make_proxy, upstream, kind):
    proxy = make_proxy(rate=1.0, kinds=[kind], stall_seconds=0.6)
    conn = connect(proxy, timeout=3)
    started = time.monotonic()
    error = response = data = None
    try:
        response, data = request(conn, "POST", "/items", body='{"a": 1}')
    except (http.client.HTTPException, OSError) as e:
        error = e
    elapsed = time.monotonic() - started
    seen = [p for _, p, _ in upstream.seen]
    assert (seen == ["/items"]) == (kind in FORWARDED_KINDS), (kind, seen)
    assert proxy.counters()[kind] == 1 and proxy.counters()["total"] == 1
    assert proxy.counters()["forwarded"] == (1 if kind in FORWARDED_KINDS else 0)
    assert proxy.events() == [(0, "POST", "/items", kind)]
    if kind == "error_before":
        assert response.status in (500, 503, 429)
    elif kind == "error_after":
        assert response.status in (500, 503)
    elif kind in ("reset_before", "reset_after"):
        # A reset, not an orderly close.
        assert isinstance(error, ConnectionResetError), repr(error)
    elif kind == "truncate":
        assert isinstance(error, http.client.IncompleteRead), repr(error)
        assert 0 < len(error.partial) < error.expected + len(error.partial)
    elif kind == "garbage":
        assert response.status == 200 and int(response.getheader("Content-Length")) == len(data)
        with pytest.raises(ValueError):
            json.loads(data)
    elif kind == "stall":
        assert response.status == 201 and json.loads(data)["path"] == "/items"
        assert elapsed >= 0.6
    # The connection still works for the next request where it was kept.
    if kind in ("error_before", "error_after", "garbage", "stall"):
        proxy.configure(rate=0.0)
        response, data = request(conn, "GET", "/after")
        assert response.status == 200


def test_stall_outlasts_a_client_deadline(make_proxy, upstream):
    proxy = make_proxy(rate=1.0, kinds=["stall"], stall_seconds=1.0)
    conn = connect(proxy, timeout=0.3)
    with pytest.raises(socket.timeout):
        request(conn, "PUT", "/slow", body="{}")
    assert [p for _, p, _ in upstream.seen] == ["/slow"]  # applied all the same


def test_error_before_statuses_and_retry_after_forms(make_proxy, upstream):
    proxy = make_proxy(rate=1.0, kinds=["error_before"], seed=3)
    conn = connect(proxy)
    statuses, forms = set(), set()
    for _ in range(60):
        response, _ = request(conn, "GET", "/x")
        statuses.add(response.status)
        if response.status == 429:
            value = response.getheader("Retry-After")
            if value == "1":
                forms.add("seconds")
            else:
                when = email.utils.parsedate_to_datetime(value).timestamp()
                assert 0 < when - time.time() <= 3
                forms.add("date")
        else:
            assert response.getheader("Retry-After") is None
    assert statuses == {500, 503, 429} and forms == {"seconds", "date"}
    assert upstream.seen == []


def actions(proxy, n, method="GET"):
    conn = connect(proxy, timeout=3)
    for _ in range(n):
        try:
            request(conn, method, "/r", body="{}" if method != "GET" else None)
        except (http.client.HTTPException, OSError):
            conn.close()
            conn = connect(proxy, timeout=3)
    conn.close()
    return [a for _, _, _, a in proxy.events()]


def test_seeds_are_reproducible(make_proxy):
    kinds = ["error_before", "error_after", "reset_before", "reset_after", "truncate",
             "garbage"]
    first = actions(make_proxy(rate=0.5, seed=7, kinds=kinds), 40)
    second = actions(make_proxy(rate=0.5, seed=7, kinds=kinds), 40)
    other = actions(make_proxy(rate=0.5, seed=8, kinds=kinds), 40)
    assert first == second
    assert first != other
    assert {"forward"} < set(first)


def test_method_filter_and_kind_override(make_proxy, upstream):
    proxy = make_proxy(rate=0.5, seed=1, kinds=["truncate"], methods=["POST"])
    gets = actions(proxy, 20, "GET")
    assert set(gets) == {"forward"}
    proxy.reset_counters()
    posts = actions(proxy, 40, "POST")
    assert set(posts) == {"forward", "truncate"}
    assert 8 <= posts.count("truncate") <= 32
    proxy.configure(all_methods=True)
    proxy.reset_counters()
    assert "truncate" in actions(proxy, 20, "GET")


def test_outage(make_proxy, upstream):
    proxy = make_proxy()
    proxy.outage(True)
    conn = connect(proxy)
    for _ in range(3):
        response, _ = request(conn, "POST", "/o", body="{}")
        assert response.status == 503 and response.getheader("Retry-After") == "1"
    assert upstream.seen == [] and proxy.counters()["outage"] == 3
    proxy.outage(False)
    response, _ = request(conn, "POST", "/o", body="{}")
    assert response.status == 201 and len(upstream.seen) == 1


def test_upstream_down_is_502(make_proxy):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proxy = FaultProxy(f"http://127.0.0.1:{port}").start()
    try:
        response, _ = request(connect(proxy), "GET", "/")
        assert response.status == 502 and proxy.counters()["upstream_error"] == 1
    finally:
        proxy.stop()


def test_stop_ends_connections(make_proxy):
    proxy = make_proxy()
    conn = connect(proxy)
    request(conn, "GET", "/a")
    port = proxy.port
    proxy.stop()
    with pytest.raises((http.client.HTTPException, OSError)):
        request(conn, "GET", "/b")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
