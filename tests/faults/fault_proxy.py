"""A fault-injecting HTTP/1.1 proxy for tests (standard library only).

It sits between cloudplaned and an emulator: the account's endpoint points
at the proxy (`proxy.url(emulator_url)`), the proxy forwards to the
emulator. It listens on 127.0.0.1, port 0, and runs in the test's process on
threads; `stop()` (or leaving the `with` block) ends it, and it stops by
itself after `max_lifetime` seconds in any case.

Per request (keep-alive: many requests per client connection; the body by
Content-Length, or de-chunked), with probability `rate`, drawn from
`random.Random(seed)` in the order requests arrive, one of the enabled fault
kinds is applied instead of a faithful exchange:

  error_before  answer 500, 503 or 429 (Retry-After: 1, or an HTTP-date two
                seconds ahead) without forwarding: the request is not applied.
  error_after   forward, then answer 500 or 503 instead of the real answer:
                applied, the answer lost.
  reset_before  read the request, then reset the client connection (RST via
                SO_LINGER 0) without forwarding.
  reset_after   forward (applied), then reset without answering.
  truncate      forward, then send the real status line and headers (real
                Content-Length) and half the body, then close. An answer
                without a body is cut inside its headers instead.
  garbage       forward, then answer 200 with a body that is neither JSON
                nor XML, with a correct Content-Length.
  stall         forward, then wait `stall_seconds` before sending the real
                answer (the client may have given up meanwhile).

`methods` restricts faults to some request methods (the rate then applies to
those requests only); `kinds` is a sequence of kinds (equally likely) or a
mapping kind -> weight. `outage(True)` answers every request 503 (with
Retry-After: 1) without forwarding until `outage(False)`.

A faithful exchange uses a fresh upstream connection per request and relays
the answer byte for byte (chunked answers and Connection: close included;
the client connection is closed after an answer that asks for it). Counters
(`counters()`): `total`, `forwarded` (requests the upstream received, faults
after forwarding included), `outage`, `upstream_error` and one per kind;
`events()` lists (seq, method, path, action) per request, action being
"forward", "outage", "upstream_error" or the kind.

Not supported (not needed by the emulators): websocket upgrades and CONNECT,
absolute-form request targets, HTTP/2.
"""
import email.utils
import random
import socket
import struct
import threading
import time
import urllib.parse

KINDS = ("error_before", "error_after", "reset_before", "reset_after", "truncate", "garbage",
         "stall")
# Kinds whose request reaches the upstream (the work may have been done).
FORWARDED_KINDS = frozenset(KINDS) - {"error_before", "reset_before"}

_MAX_LINE = 65536
_MAX_HEADERS = 200
_REASONS = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable"}


class _Closed(Exception):
    """The client connection ended (EOF or a malformed request)."""


def _read_line(rfile):
    line = rfile.readline(_MAX_LINE + 1)
    if not line:
        raise _Closed()
    if len(line) > _MAX_LINE:
        raise _Closed()
    return line


def _read_head(rfile, first_line=None):
    """(start line, [(name, value)], raw header lines) of one message head."""
    start = first_line if first_line is not None else _read_line(rfile)
    headers, raw = [], []
    while True:
        line = _read_line(rfile)
        if line in (b"\r\n", b"\n"):
            return start, headers, raw
        if len(headers) >= _MAX_HEADERS:
            raise _Closed()
        raw.append(line)
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise _Closed()
        headers.append((name.strip(), value.strip()))


def _header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _read_exact(rfile, n):
    data = rfile.read(n)
    if data is None or len(data) != n:
        raise _Closed()
    return data


def _read_chunked(rfile, keep_raw):
    """A chunked body: the raw bytes (keep_raw) or the de-chunked payload."""
    out = bytearray()
    while True:
        line = _read_line(rfile)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _Closed()
        if keep_raw:
            out += line
        if size == 0:
            while True:  # trailer section up to the empty line
                trailer = _read_line(rfile)
                if keep_raw:
                    out += trailer
                if trailer in (b"\r\n", b"\n"):
                    return bytes(out)
        data = _read_exact(rfile, size)
        crlf = _read_line(rfile)
        if keep_raw:
            out += data + crlf
        else:
            out += data


def _reset(sock):
    """Closes `sock` with an RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Response:
    """One upstream answer: head bytes, body bytes (raw framing kept)."""

    def __init__(self, status, head, body, close, content_type):
        self.status, self.head, self.body = status, head, body
        self.close, self.content_type = close, content_type


class FaultProxy:
    def __init__(self, upstream, rate=0.0, seed=0, kinds=KINDS, methods=None,
                 stall_seconds=10.0, max_lifetime=900.0, upstream_timeout=60.0):
        """`upstream`: "http://host:port[/...]" (only host and port are used:
        request targets are forwarded as they come)."""
        parts = urllib.parse.urlsplit(upstream if "//" in upstream else "http://" + upstream)
        if parts.scheme != "http":
            raise ValueError("the fault proxy forwards plain http only")
        self.upstream = (parts.hostname, parts.port or 80)
        self.upstream_timeout = upstream_timeout
        self.max_lifetime = max_lifetime
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = None
        self._threads = []
        self._clients = set()
        self._outage = False
        self._counters = {}
        self._events = []
        self.configure(rate=rate, seed=seed, kinds=kinds, methods=methods,
                       stall_seconds=stall_seconds)
        self.reset_counters()

    # -- configuration -------------------------------------------------------
    def configure(self, *, rate=None, seed=None, kinds=None, methods=None,
                  stall_seconds=None, all_methods=False):
        """Changes the fault settings for the requests that arrive from now
        on. `methods=None` keeps the current filter; `all_methods=True`
        clears it. A new `seed` restarts the random sequence."""
        with self._lock:
            if rate is not None:
                if not 0.0 <= rate <= 1.0:
                    raise ValueError("rate must be within [0, 1]")
                self._rate = float(rate)
            if seed is not None or not hasattr(self, "_rng"):
                self._rng = random.Random(seed if seed is not None else 0)
            if kinds is not None:
                weights = dict(kinds) if isinstance(kinds, dict) else {k: 1.0 for k in kinds}
                unknown = set(weights) - set(KINDS)
                if unknown or not weights or any(w <= 0 for w in weights.values()):
                    raise ValueError(f"bad fault kinds {kinds!r}")
                self._kinds = sorted(weights.items(), key=lambda kv: KINDS.index(kv[0]))
            if all_methods:
                self._methods = None
            elif methods is not None:
                self._methods = frozenset(m.upper() for m in methods)
            elif not hasattr(self, "_methods"):
                self._methods = None
            if stall_seconds is not None:
                self._stall = float(stall_seconds)

    def outage(self, on):
        """While on, every request is answered 503 without forwarding."""
        with self._lock:
            self._outage = bool(on)

    def counters(self):
        with self._lock:
            return dict(self._counters)

    def events(self):
        with self._lock:
            return list(self._events)

    def reset_counters(self):
        with self._lock:
            self._counters = dict({k: 0 for k in KINDS}, total=0, forwarded=0, outage=0,
                                  upstream_error=0)
            self._events = []

    # -- lifecycle -----------------------------------------------------------
    def start(self):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self._listener.settimeout(0.2)
        self._deadline = time.monotonic() + self.max_lifetime
        thread = threading.Thread(target=self._accept_loop, name="fault-proxy-accept",
                                  daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self):
        self._stop.set()
        with self._lock:
            clients = list(self._clients)
        for sock in clients:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self):
        return self.start() if self._listener is None else self

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._listener.getsockname()[1]

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def url(self, upstream_url):
        """`upstream_url` with its host and port replaced by the proxy's."""
        parts = urllib.parse.urlsplit(upstream_url)
        return urllib.parse.urlunsplit(parts._replace(netloc=self.address))

    # -- serving -------------------------------------------------------------
    def _accept_loop(self):
        try:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                try:
                    sock, _ = self._listener.accept()
                except socket.timeout:
                    continue
                except OSError:
                    break
                sock.settimeout(None)
                with self._lock:
                    self._clients.add(sock)
                    self._threads = [t for t in self._threads if t.is_alive()]
                    thread = threading.Thread(target=self._serve, args=(sock,),
                                              name="fault-proxy-conn", daemon=True)
                    self._threads.append(thread)
                thread.start()
        finally:
            self._stop.set()
            self._listener.close()
            with self._lock:
                clients = list(self._clients)
            for sock in clients:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _decide(self, method):
        """(seq, action, status pick, retry-after pick) for one request."""
        with self._lock:
            seq = self._counters["total"]
            self._counters["total"] += 1
            # The same number of draws for every request keeps a seed's
            # sequence independent of which requests match the filter.
            r, k, s, a = (self._rng.random() for _ in range(4))
            if self._outage:
                action = "outage"
            elif (self._methods is None or method in self._methods) and r < self._rate:
                total = sum(w for _, w in self._kinds)
                at, action = k * total, self._kinds[-1][0]
                for kind, weight in self._kinds:
                    if at < weight:
                        action = kind
                        break
                    at -= weight
            else:
                action = "forward"
            return seq, action, s, a, self._stall

    def _count(self, seq, method, path, action):
        with self._lock:
            self._counters[action] = self._counters.get(action, 0) + 1
            if action not in ("outage", "upstream_error", "error_before", "reset_before"):
                self._counters["forwarded"] += 1
            self._events.append((seq, method, path, action))

    def _serve(self, sock):
        rfile = sock.makefile("rb")
        reset = False
        try:
            while not self._stop.is_set():
                try:
                    keep = self._exchange(sock, rfile)
                except _ResetClient:
                    reset = True
                    return
                if not keep:
                    return
        except (_Closed, OSError):
            return
        finally:
            with self._lock:
                self._clients.discard(sock)
            rfile.close()
            if reset:
                _reset(sock)
            else:
                try:
                    sock.close()
                except OSError:
                    pass

    def _exchange(self, sock, rfile):
        """Serves one request; False when the connection must close."""
        start, headers, raw_headers = _read_head(rfile)
        try:
            method, target, version = start.decode("latin-1").split()
        except ValueError:
            raise _Closed()
        method = method.upper()
        expect = (_header(headers, "Expect") or "").lower()
        if expect == "100-continue":
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        te = (_header(headers, "Transfer-Encoding") or "").lower()
        if te:
            if te != "chunked":
                raise _Closed()
            body = _read_chunked(rfile, keep_raw=False)
        else:
            length = _header(headers, "Content-Length")
            body = _read_exact(rfile, int(length)) if length else b""
        conn_tokens = (_header(headers, "Connection") or "").lower()
        client_close = "close" in conn_tokens or (version == "HTTP/1.0" and
                                                  "keep-alive" not in conn_tokens)
        path = target.split("?", 1)[0]

        seq, action, status_pick, ra_pick, stall = self._decide(method)
        if action == "outage":
            self._count(seq, method, path, "outage")
            sock.sendall(self._synthetic(503, retry_after="1"))
            return not client_close
        if action == "error_before":
            self._count(seq, method, path, action)
            status = (500, 503, 429)[int(status_pick * 3)]
            retry_after = None
            if status == 429:
                retry_after = "1" if ra_pick < 0.5 else email.utils.formatdate(
                    time.time() + 2, usegmt=True)
            sock.sendall(self._synthetic(status, retry_after=retry_after))
            return not client_close
        if action == "reset_before":
            self._count(seq, method, path, action)
            raise _ResetClient()

        # Forward: the request as it came, minus hop-by-hop framing we redo.
        out = [start]
        for line, (name, _) in zip(raw_headers, headers):
            if name.lower() in ("transfer-encoding", "expect", "content-length"):
                continue
            out.append(line)
        if body or method in ("POST", "PUT", "PATCH") or _header(headers, "Content-Length"):
            out.append(b"Content-Length: %d\r\n" % len(body))
        out.append(b"\r\n")
        try:
            response = self._forward(b"".join(out) + body, method)
        except (OSError, _Closed):
            self._count(seq, method, path, "upstream_error")
            sock.sendall(self._synthetic(502))
            return not client_close
        self._count(seq, method, path, action)

        if action == "forward":
            sock.sendall(response.head + response.body)
            return not (client_close or response.close)
        if action == "error_after":
            sock.sendall(self._synthetic((500, 503)[int(status_pick * 2)]))
            return not client_close
        if action == "reset_after":
            raise _ResetClient()
        if action == "truncate":
            if response.body:
                sock.sendall(response.head + response.body[:len(response.body) // 2])
            else:
                sock.sendall(response.head[:len(response.head) // 2])
            return False
        if action == "garbage":
            junk = b"\x00<<garbage {not json, not <xml>" + (b"%08x" % seq) + b"]]>\xff"
            sock.sendall(self._synthetic(200, body=junk,
                                         content_type=response.content_type or
                                         "application/json"))
            return not client_close
        if action == "stall":
            if self._stop.wait(stall):
                return False
            sock.sendall(response.head + response.body)
            return not (client_close or response.close)
        raise AssertionError(action)

    def _forward(self, request_bytes, method):
        """Sends one request on a fresh upstream connection; its answer."""
        up = socket.create_connection(self.upstream, timeout=self.upstream_timeout)
        try:
            up.sendall(request_bytes)
            ufile = up.makefile("rb")
            try:
                while True:
                    start, headers, raw = _read_head(ufile)
                    try:
                        status = int(start.split()[1])
                    except (IndexError, ValueError):
                        raise _Closed()
                    if not 100 <= status < 200:
                        break
                head = start + b"".join(raw) + b"\r\n"
                te = (_header(headers, "Transfer-Encoding") or "").lower()
                length = _header(headers, "Content-Length")
                close = "close" in (_header(headers, "Connection") or "").lower()
                if method == "HEAD" or status in (204, 304):
                    body = b""
                elif te == "chunked":
                    body = _read_chunked(ufile, keep_raw=True)
                elif length is not None:
                    body = _read_exact(ufile, int(length))
                else:  # delimited by the close of the connection
                    body, close = ufile.read(), True
                return _Response(status, head, body, close, _header(headers, "Content-Type"))
            finally:
                ufile.close()
        finally:
            up.close()

    @staticmethod
    def _synthetic(status, retry_after=None, body=None, content_type="text/plain"):
        if body is None:
            body = b"fault proxy: injected %d\n" % status
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, "Error").encode()),
                 b"Content-Type: %s\r\n" % content_type.encode("latin-1"),
                 b"Content-Length: %d\r\n" % len(body)]
        if retry_after is not None:
            lines.append(b"Retry-After: %s\r\n" % retry_after.encode("latin-1"))
        return b"".join(lines) + b"\r\n" + body


class _ResetClient(Exception):
    """Reset the client connection (RST), answering nothing more."""
