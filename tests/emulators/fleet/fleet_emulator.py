#!/usr/bin/env python3
"""CoreOS fleet v1 API emulator for tests (Python 3, standard library only).

Speaks the wire protocol of fleetd v1.0.0 (the last release; the project is
archived) as described in shared/protocols/fleet.md and as implemented by the
upstream sources coreos/fleet api/*.go, schema/, registry/, job/, unit/ and the
vendored go-systemd unit parser. Where upstream behaviour is odd, the emulator
copies it and says so at the line that does; where the reference asks for a
choice, the choice is commented.

Run as a program:

  python3 fleet_emulator.py [--tcp 127.0.0.1:0] [--unix /path/to/sock]
      [--page-limit 100] [--machines 3] [--converge-delay 0.3]
      [--schedule-delay 0] [--start-delay 0] [--unload-delay 0]
      [--discovery PATH] [--ready-file PATH] [--max-lifetime 900]
      [--event-log PATH]

At least one of --tcp / --unix; both serve the same registry. Once listening
it prints `READY tcp=127.0.0.1:PORT unix=PATH` (fields as applicable) to
stdout and, with --ready-file, writes the same line to that file atomically.
It stops after --max-lifetime seconds (0 = never), on SIGTERM/SIGINT, and when
its parent process goes away.

Or import it:

  emu = FleetEmulator(tcp="127.0.0.1:0", unix_path=None, page_limit=2)
  emu.start()          # emu.tcp_address -> ("127.0.0.1", port)
  ...
  emu.stop()

Beyond the API reference it does what a real fleetd (v1.0.0 on etcd, systemd
running the units) was seen to do: option values are stored trimmed (so the
same padded options are a replace, 201, every time); a .service whose
ExecStart program is missing fails (`failed/failed`) after it shows
`launched`; with --schedule-delay / --start-delay / --unload-delay a new unit
has no machine for a while, `launched` precedes systemd's verdict, and an
inactive unit shows `loaded` with its machine before it unloads; an invalid
desiredState is 500 on create and 204 on update, after which the unit is
poisoned (GET 500, left out of lists); GET /state/<unknown> drops the
connection; bodies over 2 KB are chunked and a 204 has no Content-Length.
The delays default to 0 so existing tests stay fast and synchronous.

Thread-safety: one lock guards the registry; every HTTP connection runs on
its own thread; the engine (convergence timers) runs on one more thread.
"""

import argparse
import base64
import hashlib
import heapq
import os
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import http.server
from email.utils import formatdate

FLEET_VERSION = "v1.0.0"  # fleetd's version.Version comes from `git describe`.
DEFAULT_PAGE_LIMIT = 100  # fleetd's token_limit default.

# realpath: under Bazel the script runs through a runfiles symlink; the
# fixtures sit beside the real checkout.
_HERE = os.path.dirname(os.path.realpath(__file__))
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(_HERE)))
DEFAULT_DISCOVERY_PATH = os.path.normpath(
    os.path.join(_REPO_ROOT, "..", "shared", "fixtures", "fleet", "v1.json"))

JOB_STATES = ("inactive", "loaded", "launched")

# systemd LOAD/ACTIVE/SUB triples the simulated agent reports per target state.
_SYSTEMD_STATES = {
    "loaded": ("loaded", "inactive", "dead"),
    "launched": ("loaded", "active", "running"),
}


class _Panic(Exception):
    """A Go handler would have panicked: net/http drops the connection."""


# ---------------------------------------------------------------------------
# Go-compatible string quoting (fmt %q) and JSON encoding.

def _go_is_print(ch):
    # Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and
    # the ASCII space. Python's isprintable() is the same set in practice.
    return ch == " " or (ch.isprintable() and not ch.isspace())


def _go_quote_rune_body(ch, quote):
    o = ord(ch)
    if 0xDC80 <= o <= 0xDCFF:  # a raw byte smuggled in by surrogateescape
        return "\\x%02x" % (o - 0xDC00)
    if ch == quote or ch == "\\":
        return "\\" + ch
    if _go_is_print(ch):
        return ch
    simple = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
              "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    if ch in simple:
        return simple[ch]
    if o < 0x20 or o == 0x7F:
        return "\\x%02x" % o
    if 0xD800 <= o <= 0xDFFF:
        return "\ufffd"
    if o < 0x10000:
        return "\\u%04x" % o
    return "\\U%08x" % o


def go_quote(s):
    """fmt.Sprintf("%q", s) for a string (raw bytes as surrogateescapes)."""
    return '"' + "".join(_go_quote_rune_body(c, '"') for c in s) + '"'


def go_quote_rune(ch):
    """fmt.Sprintf("%q", r) for a rune."""
    if 0xDC80 <= ord(ch) <= 0xDCFF:
        ch = "\ufffd"  # ranging over invalid UTF-8 yields utf8.RuneError
    return "'" + _go_quote_rune_body(ch, "'") + "'"


_HEX = "0123456789abcdef"


def _go_json_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if o < 0x80:
            if o >= 0x20 and ch not in '\\"<>&':
                out.append(ch)
            elif ch in '\\"':
                out.append("\\" + ch)
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\r":
                out.append("\\r")
            elif ch == "\t":
                out.append("\\t")
            else:  # control characters and Go's HTML-safe <, >, &
                out.append("\\u00" + _HEX[o >> 4] + _HEX[o & 0xF])
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\\ufffd")  # invalid UTF-8 is written as U+FFFD
        elif o in (0x2028, 0x2029):
            out.append("\\u202" + _HEX[o & 0xF])
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_json_encode(value):
    """Compact JSON as Go's encoding/json writes it (dict order preserved)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _go_json_string(value)
    if isinstance(value, dict):
        return "{" + ",".join(_go_json_string(k) + ":" + go_json_encode(v)
                              for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json_encode(v) for v in value) + "]"
    raise TypeError("cannot encode %r" % (value,))


# ---------------------------------------------------------------------------
# Go-compatible JSON decoding (json.Decoder.Decode into fleet's structs).

class JSONDecodeError(Exception):
    """The message is what Go's decoder would have returned."""


class _JObject:
    """A JSON object as an ordered list of (key, value) pairs."""
    __slots__ = ("pairs",)

    def __init__(self, pairs):
        self.pairs = pairs


class _JNumber:
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


def _quote_char(c):
    # encoding/json quoteChar: the offending byte, quoted as a Go rune.
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    return "'" + _go_quote_rune_body(chr(c), "'") + "'"


class _GoJSONParser:
    """A recursive-descent JSON parser whose errors read like Go 1.7's."""

    _WS = b" \t\r\n"

    def __init__(self, data):
        self.d = data
        self.i = 0

    def _err(self, context):
        raise JSONDecodeError("invalid character %s %s"
                              % (_quote_char(self.d[self.i]), context))

    def _eof(self):
        raise JSONDecodeError("unexpected EOF")

    def _peek(self):
        if self.i >= len(self.d):
            self._eof()
        return self.d[self.i]

    def _skip_ws(self):
        while self.i < len(self.d) and self.d[self.i] in self._WS:
            self.i += 1

    def parse_top(self):
        self._skip_ws()
        if self.i >= len(self.d):
            raise JSONDecodeError("EOF")
        # Decoder.Decode reads exactly one value; anything after it is left
        # unread, so trailing garbage is not an error.
        return self._value()

    def _value(self):
        self._skip_ws()
        c = self._peek()
        if c == 0x7B:  # {
            return self._object()
        if c == 0x5B:  # [
            return self._array()
        if c == 0x22:
            return self._string()
        if c == 0x2D or 0x30 <= c <= 0x39:
            return self._number()
        for word, val in ((b"true", True), (b"false", False), (b"null", None)):
            if c == word[0]:
                self.i += 1
                for expect in word[1:]:
                    got = self._peek()
                    if got != expect:
                        self._err("in literal %s (expecting %s)"
                                  % (word.decode(), _quote_char(expect)))
                    self.i += 1
                return val
        self._err("looking for beginning of value")

    def _object(self):
        self.i += 1
        pairs = []
        self._skip_ws()
        if self._peek() == 0x7D:
            self.i += 1
            return _JObject(pairs)
        while True:
            self._skip_ws()
            if self._peek() != 0x22:
                self._err("looking for beginning of object key string")
            key = self._string()
            self._skip_ws()
            if self._peek() != 0x3A:
                self._err("after object key")
            self.i += 1
            pairs.append((key, self._value()))
            self._skip_ws()
            c = self._peek()
            if c == 0x2C:
                self.i += 1
                continue
            if c == 0x7D:
                self.i += 1
                return _JObject(pairs)
            self._err("after object key:value pair")

    def _array(self):
        self.i += 1
        items = []
        self._skip_ws()
        if self._peek() == 0x5D:
            self.i += 1
            return items
        while True:
            items.append(self._value())
            self._skip_ws()
            c = self._peek()
            if c == 0x2C:
                self.i += 1
                continue
            if c == 0x5D:
                self.i += 1
                return items
            self._err("after array element")

    def _hex4(self):
        v = 0
        for _ in range(4):
            c = self._peek()
            if c in b"0123456789":
                v = v * 16 + c - 0x30
            elif c in b"abcdef":
                v = v * 16 + c - 0x57
            elif c in b"ABCDEF":
                v = v * 16 + c - 0x37
            else:
                self._err("in \\u hexadecimal character escape")
            self.i += 1
        return v

    def _string(self):
        self.i += 1
        out = []
        raw = bytearray()

        def flush():
            if raw:
                # Go replaces each invalid UTF-8 sequence with U+FFFD.
                out.append(raw.decode("utf-8", "replace"))
                raw.clear()

        while True:
            c = self._peek()
            if c == 0x22:
                self.i += 1
                flush()
                return "".join(out)
            if c < 0x20:
                self._err("in string literal")
            if c != 0x5C:
                raw.append(c)
                self.i += 1
                continue
            self.i += 1
            e = self._peek()
            simple = {0x22: '"', 0x5C: "\\", 0x2F: "/", 0x62: "\b",
                      0x66: "\f", 0x6E: "\n", 0x72: "\r", 0x74: "\t"}
            if e in simple:
                flush()
                out.append(simple[e])
                self.i += 1
                continue
            if e != 0x75:
                self._err("in string escape code")
            self.i += 1
            cp = self._hex4()
            flush()
            if 0xD800 <= cp < 0xDC00:
                # A high surrogate needs a following \uDC00-\uDFFF escape.
                save = self.i
                if (self.d[self.i:self.i + 2] == b"\\u"
                        and len(self.d) >= self.i + 6):
                    self.i += 2
                    try:
                        lo = self._hex4()
                    except JSONDecodeError:
                        self.i = save
                        lo = None
                    if lo is not None and 0xDC00 <= lo <= 0xDFFF:
                        out.append(chr(0x10000 + ((cp - 0xD800) << 10)
                                       + (lo - 0xDC00)))
                        continue
                    self.i = save
                out.append("\ufffd")
            elif 0xDC00 <= cp <= 0xDFFF:
                out.append("\ufffd")
            else:
                out.append(chr(cp))

    def _number(self):
        start = self.i
        d = self.d
        if d[self.i] == 0x2D:
            self.i += 1
            c = self._peek()
            if not 0x30 <= c <= 0x39:
                self._err("in numeric literal")
        if d[self.i] == 0x30:
            self.i += 1
        else:
            while self.i < len(d) and 0x30 <= d[self.i] <= 0x39:
                self.i += 1
        if self.i < len(d) and d[self.i] == 0x2E:
            self.i += 1
            if not 0x30 <= self._peek() <= 0x39:
                self._err("after decimal point in numeric literal")
            while self.i < len(d) and 0x30 <= d[self.i] <= 0x39:
                self.i += 1
        if self.i < len(d) and d[self.i] in b"eE":
            self.i += 1
            if self._peek() in b"+-":
                self.i += 1
            if not 0x30 <= self._peek() <= 0x39:
                self._err("in exponent of numeric literal")
            while self.i < len(d) and 0x30 <= d[self.i] <= 0x39:
                self.i += 1
        return _JNumber(d[start:self.i].decode("ascii"))


def _json_kind(v):
    if isinstance(v, _JObject):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    return "number"


def _type_error(v, go_type):
    # Go 1.7's UnmarshalTypeError text (fleet v1.0.0 predates Go 1.8's
    # "Go struct field" wording).
    return JSONDecodeError("json: cannot unmarshal %s into Go value of type %s"
                           % (_json_kind(v), go_type))


def _decode_struct(obj, go_type, fields, out):
    """Decodes a JSON object into a struct the way encoding/json does.

    fields maps a field name to a decoder taking (value, previous). Keys
    match field names case-insensitively, unknown keys are ignored and a
    later duplicate wins. Pairs are visited in document order, so the first
    type error raised is the one Go reports (it keeps decoding and returns
    the first). Returns out, updated.
    """
    if not isinstance(obj, _JObject):
        raise _type_error(obj, go_type)
    lower = {f.lower(): f for f in fields}
    for key, val in obj.pairs:
        field = lower.get(key.lower())
        if field is not None:
            out[field] = fields[field](val, out.get(field))
    return out


def _string_field(v, prev):
    if v is None:
        return prev  # null leaves a string untouched
    if not isinstance(v, str):
        raise _type_error(v, "string")
    return v


def _option_element(v):
    if v is None:
        return None  # a nil *schema.UnitOption
    f = _decode_struct(v, "schema.UnitOption",
                       {"name": _string_field, "section": _string_field,
                        "value": _string_field}, {})
    return (f.get("section") or "", f.get("name") or "", f.get("value") or "")


def _options_field(v, prev):
    if v is None:
        return []  # null sets a slice to nil
    if not isinstance(v, list):
        raise _type_error(v, "[]*schema.UnitOption")
    return [_option_element(item) for item in v]


def decode_unit_body(data):
    """Decodes a PUT body into (name, options, desired_state).

    options is a list of (section, name, value) tuples, where None stands
    for a JSON null element (a nil *schema.UnitOption upstream).
    Raises JSONDecodeError with Go's message.
    """
    v = _GoJSONParser(data).parse_top()
    if v is None:
        return "", [], ""
    f = _decode_struct(v, "schema.Unit",
                       {"currentState": _string_field,
                        "desiredState": _string_field,
                        "machineID": _string_field, "name": _string_field,
                        "options": _options_field}, {})
    return (f.get("name") or "", f.get("options") or [],
            f.get("desiredState") or "")


_METADATA_VALUE_TYPE = 'struct { Value string "json:\\"value\\"" }'


def _metadata_value_field(v, prev):
    if v is None:
        return prev  # null into a struct changes nothing
    f = _decode_struct(v, _METADATA_VALUE_TYPE, {"value": _string_field},
                       {"value": prev or ""})
    return f.get("value") or ""


def _patch_op(v):
    if v is None:
        return ("", "", "")
    f = _decode_struct(v, "api.machineMetadataOp",
                       {"op": _string_field, "path": _string_field,
                        "Value": _metadata_value_field}, {})
    return (f.get("op") or "", f.get("path") or "", f.get("Value") or "")


def decode_patch_body(data):
    """Decodes a PATCH /machines body into [(op, path, value)]."""
    v = _GoJSONParser(data).parse_top()
    if v is None:
        return []
    if not isinstance(v, list):
        raise _type_error(v, "[]api.machineMetadataOp")
    return [_patch_op(item) for item in v]


# ---------------------------------------------------------------------------
# Page tokens (api/pagination.go).

_B64_URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64_MAP = {ord(c): i for i, c in enumerate(_B64_URL)}


class TokenError(Exception):
    pass


def go_base64_url_decode(src):
    """base64.URLEncoding.DecodeString as in Go 1.7 (padding required,
    CR/LF ignored). Raises TokenError("illegal base64 data at input byte N")."""
    if isinstance(src, str):
        src = src.encode("utf-8", "surrogateescape")
    out = bytearray()
    si = 0
    n = len(src)

    def corrupt(off):
        return TokenError("illegal base64 data at input byte %d" % off)

    def skip_nl(si):
        while si < n and src[si] in (0x0A, 0x0D):
            si += 1
        return si

    si = skip_nl(si)
    end = False
    err = None
    while si < n and not end:
        dbuf = [0, 0, 0, 0]
        dlen = 4
        for j in range(4):
            if si == n:
                raise corrupt(si - j)  # padding is mandatory
            c = src[si]
            si = skip_nl(si + 1)
            if c == 0x3D:  # '='
                if j in (0, 1):
                    raise corrupt(si - 1)
                if j == 2:
                    if si == n:
                        raise corrupt(n)
                    if src[si] != 0x3D:
                        raise corrupt(si - 1)
                    si = skip_nl(si + 1)
                if si < n:
                    err = corrupt(si)  # trailing garbage
                dlen, end = j, True
                break
            d = _B64_MAP.get(c)
            if d is None:
                raise corrupt(si - 1)
            dbuf[j] = d
        val = (dbuf[0] << 18) | (dbuf[1] << 12) | (dbuf[2] << 6) | dbuf[3]
        chunk = bytes(((val >> 16) & 0xFF, (val >> 8) & 0xFF, val & 0xFF))
        out += chunk[:dlen - 1]
    if err is not None:
        raise err
    return bytes(out)


def encode_page_token(limit, page):
    return base64.urlsafe_b64encode(struct.pack("<HH", limit, page)).decode()


def decode_page_token(value):
    """Returns (limit, page); raises TokenError with fleet's message."""
    raw = go_base64_url_decode(value)
    # binary.Read of a 4-byte struct: nothing read -> EOF, part -> unexpected.
    if len(raw) == 0:
        raise TokenError("EOF")
    if len(raw) < 4:
        raise TokenError("unexpected EOF")
    return struct.unpack("<HH", raw[:4])


def find_page(query, limit):
    """findNextPageToken + DefaultPageToken: returns the page number."""
    values = query.get("nextPageToken", [])
    if len(values) > 1:
        raise TokenError("too many values for page token")
    if not values:
        return 1
    tok_limit, page = decode_page_token(values[0])
    if tok_limit != limit:
        raise TokenError("token limit must be %d" % limit)
    if page == 0:
        raise TokenError("token page must be greater than zero")
    return page


def paginate(items, page, limit):
    """extract*PageData: returns (items, next_token or None).

    The index arithmetic is uint16 upstream, so it wraps; a wrapped stop
    below start makes Go panic on the slice expression."""
    total = len(items)
    start = ((page - 1) * limit) & 0xFFFF
    stop = (page * limit) & 0xFFFF
    nxt = None
    if start < total:
        if stop > total:
            stop = total
        else:
            nxt = encode_page_token(limit, (page + 1) & 0xFFFF)
        if stop < start:
            raise _Panic()
        return items[start:stop], nxt
    return [], None


# ---------------------------------------------------------------------------
# Unit files: go-systemd serialization, its parser's errors, hashing.

def serialize_unit(options):
    """go-systemd unit.Serialize: sections in first-seen order."""
    sections = []
    idx = {}
    for sec, name, value in options:
        if sec not in idx:
            idx[sec] = []
            sections.append(sec)
        idx[sec].append((name, value))
    parts = []
    for i, sec in enumerate(sections):
        parts.append("[" + sec + "]\n")
        for name, value in idx[sec]:
            parts.append(name + "=" + value + "\n")
        if i < len(sections) - 1:
            parts.append("\n")
    return "".join(parts).encode("utf-8", "surrogateescape")


def unit_hash(options):
    """unit.UnitFile.Hash(): hex SHA-1 of the serialized unit file."""
    return hashlib.sha1(serialize_unit(options)).hexdigest()


_LINE_MAX = 2048  # go-systemd SYSTEMD_LINE_MAX


def _rune_width(p):
    """(full, width) for the UTF-8 rune at the start of p (Go semantics)."""
    if not p:
        return False, 0
    b0 = p[0]
    if b0 < 0x80:
        return True, 1
    if 0xC2 <= b0 <= 0xDF:
        need, lo, hi = 2, 0x80, 0xBF
    elif 0xE0 <= b0 <= 0xEF:
        need = 3
        lo, hi = {0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F)}.get(b0, (0x80, 0xBF))
    elif 0xF0 <= b0 <= 0xF4:
        need = 4
        lo, hi = {0xF0: (0x90, 0xBF), 0xF4: (0x80, 0x8F)}.get(b0, (0x80, 0xBF))
    else:
        return True, 1  # invalid lead byte: one RuneError byte
    for k in range(1, need):
        if k >= len(p):
            return False, 1
        if not ((lo if k == 1 else 0x80) <= p[k] <= (hi if k == 1 else 0xBF)):
            return True, 1
    return True, need


class _GoBufReader:
    """bufio.Reader (4096 bytes) over a bytes.Buffer, tracking exactly how
    much is buffered, because go-systemd's line-length check depends on it."""

    SIZE = 4096

    def __init__(self, data):
        self.data = data
        self.r = 0  # absolute offsets into data
        self.w = 0
        self.eof = False
        self.last_rune_size = -1

    def buffered(self):
        return self.w - self.r

    def _fill(self):
        space = self.SIZE - (self.w - self.r)
        n = min(space, len(self.data) - self.w)
        if n == 0:
            self.eof = True  # bytes.Buffer.Read: 0, io.EOF
        else:
            self.w += n

    def read_rune(self):
        while (self.r + 4 > self.w
               and not _rune_width(self.data[self.r:self.w])[0]
               and not self.eof and self.w - self.r < self.SIZE):
            self._fill()
        self.last_rune_size = -1
        if self.r == self.w:
            self.eof = False  # readErr clears the error
            return None, 0
        full, size = _rune_width(self.data[self.r:self.w])
        if not full:
            size = 1
        chunk = self.data[self.r:self.r + size]
        try:
            ch = chunk.decode("utf-8") if size > 1 or chunk[0] < 0x80 else "\ufffd"
        except UnicodeDecodeError:
            ch, size = "\ufffd", 1
        self.r += size
        self.last_rune_size = size
        return ch, size

    def unread_rune(self):
        if self.last_rune_size >= 0 and self.r >= self.last_rune_size:
            self.r -= self.last_rune_size
        self.last_rune_size = -1

    def read_bytes(self, delim):
        """Returns (bytes, hit_eof)."""
        acc = bytearray()
        while True:
            i = self.data.find(delim, self.r, self.w)
            if i >= 0:
                acc += self.data[self.r:i + 1]
                self.r = i + 1
                return bytes(acc), False
            if self.eof:
                acc += self.data[self.r:self.w]
                self.r = self.w
                self.eof = False
                return bytes(acc), True
            if self.buffered() >= self.SIZE:
                acc += self.data[self.r:self.w]
                self.r = self.w
                continue  # ErrBufferFull: ReadBytes keeps accumulating
            self._fill()

    def peek_has_newline(self, n):
        return any(b in (0x0A, 0x0D) for b in self.data[self.r:self.r + n])


_GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005" \
            "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def _go_trim_space(b):
    return b.decode("utf-8", "surrogateescape").strip(_GO_SPACE)


class _UnitParseError(Exception):
    pass


def gosystemd_deserialize_error(data):
    """Runs go-systemd's unit.Deserialize lexer over data; returns its error
    text, or None. Only the error matters to fleet's ValidateOptions."""
    buf = _GoBufReader(data)

    def to_eol():
        line, eof = buf.read_bytes(b"\n")
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.endswith(b"\n"):  # upstream trims \r before \n: "x\r\n" keeps \r
            line = line[:-1]
        return line, eof

    def lex_next_section():
        ch, _ = buf.read_rune()
        if ch is None:
            return None
        if ch == "[":
            return lex_section_name
        if ch in "#;":
            return ignore_line(lex_next_section)
        return lex_next_section

    def lex_section_name():
        sec, eof = buf.read_bytes(b"]")
        if eof:
            raise _UnitParseError("unable to find end of section")
        return section_suffix

    def section_suffix():
        garbage, _ = to_eol()
        garbage = _go_trim_space(garbage)
        if garbage:
            # The lexer never sets l.section, and %v of []byte prints decimals.
            raw = garbage.encode("utf-8", "surrogateescape")
            raise _UnitParseError("found garbage after section name : [%s]"
                                  % " ".join(str(b) for b in raw))
        return next_section_or_option

    def ignore_line(nxt):
        def step():
            while True:
                line, _ = to_eol()
                if line.endswith(b" "):  # bytes.TrimSuffix: one space
                    line = line[:-1]
                if not line.endswith(b"\\"):
                    break
            return nxt
        return step

    def next_section_or_option():
        ch, _ = buf.read_rune()
        if ch is None:
            return None
        if ch in _GO_SPACE:
            return next_section_or_option
        if ch == "[":
            return lex_section_name
        if ch in "#;":
            return ignore_line(next_section_or_option)
        buf.unread_rune()
        return option_name

    def option_name():
        while True:
            ch, _ = buf.read_rune()
            if ch is None:
                raise _UnitParseError("EOF")
            if ch in "\r\n":
                raise _UnitParseError(
                    "unexpected newline encountered while parsing option name")
            if ch == "=":
                break
        return option_value(0)

    def option_value(depth):
        def step():
            line, eof = to_eol()
            if not _go_trim_space(line):
                return next_section_or_option
            idx = line.rfind(b"\\")
            if idx == -1 or idx != len(line) - 1:
                return next_section_or_option
            return option_value(depth + 1)
        return step

    step = lex_next_section
    try:
        while step is not None:
            if buf.buffered() >= _LINE_MAX:
                # systemd truncates long lines; go-systemd refuses them, but
                # only looks when at least LINE_MAX bytes are buffered.
                if not buf.peek_has_newline(_LINE_MAX):
                    return "line too long (max %d bytes)" % _LINE_MAX
            step = step()
    except _UnitParseError as e:
        return str(e)
    return None


# ---------------------------------------------------------------------------
# Names and options (api/units.go, unit/unit.go, job/job.go).

_VALID_UNIT_TYPES = {"automount", "busname", "device", "mount", "path",
                     "scope", "service", "slice", "snapshot", "socket",
                     "swap", "target", "timer"}
_VALID_TEMPLATE_TYPES = {"path", "service", "socket", "target", "timer"}
_VALID_NAME_CHARS = set("0123456789abcdefghijklmnopqrstuvwxyz"
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ:-_.\\@")


def _blen(s):
    return len(s.encode("utf-8", "surrogateescape"))


def validate_name(name):
    """api.ValidateName; returns the error message or None."""
    length = _blen(name)
    if length == 0:
        return "unit name cannot be empty"
    if length > 256:
        return "unit name exceeds maximum length (256)"
    dot = name.rfind(".")
    if dot == -1:
        return 'unit name must contain "."'
    if dot == len(name) - 1:
        return 'unit name cannot end in "."'
    suffix = name[dot + 1:]
    if suffix not in _VALID_UNIT_TYPES:
        return "invalid unit type: %s" % go_quote(suffix)
    if "@" in name and suffix not in _VALID_TEMPLATE_TYPES:
        return "invalid unit type for template: %s" % go_quote(suffix)
    for ch in name[:dot]:
        if ch not in _VALID_NAME_CHARS:
            return "invalid character %s in unit name" % go_quote_rune(ch)
    if name.startswith("@"):
        return 'unit name cannot start in "@"'
    return None


def _name_info(name):
    """unit.NewUnitNameInfo: (full, name, prefix, template, instance)."""
    s = name.rfind(".")
    if s == -1:
        return None
    base, suffix = name[:s], name[s:]
    a = base.find("@")
    if a == -1:
        return (name, base, base, "", "")
    return (name, base, base[:a], base[:a] + "@" + suffix, base[a + 1:])


def is_template(name):
    info = _name_info(name)
    return info is not None and info[3] != "" and info[4] == ""


def _parse_multivalue(line):
    # unit.parseMultivalueLine: only "quoted values" are split, on spaces.
    if not (line.startswith('"') and line.endswith('"')):
        return [line]
    values, cur, inside = [], [], False
    for ch in line:
        if ch == '"':
            inside = not inside
            continue
        if ch == " " and not inside:
            values.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    values.append("".join(cur))
    return values


def fleet_requirements(options, unit_name=""):
    """job.Job.requirements(): [X-Fleet] key -> values, with %n/%N/%p/%i
    expanded when the job has a name (ValidateOptions passes none)."""
    info = _name_info(unit_name)
    req = {}
    for sec, key, value in options:
        if sec != "X-Fleet":
            continue
        vals = _parse_multivalue(value)
        if info is not None:
            full, base, prefix, _, inst = info
            vals = [v.replace("%n", full).replace("%N", base)
                    .replace("%p", prefix).replace("%i", inst) for v in vals]
        req.setdefault(key, []).extend(vals)
    return req


def _truthy(s):
    return s.lower() in ("true", "yes", "1", "on", "t")


def _split_combine(values):
    out = []
    for v in values:
        out.extend(v.split())  # strings.Fields
    return out


def _dedupe(values):
    seen, out = set(), []
    for v in values:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


class _Reqs:
    def __init__(self, options, unit_name=""):
        r = fleet_requirements(options, unit_name)
        self.conflicts = _split_combine(r.get("X-Conflicts", [])) + \
            _split_combine(r.get("Conflicts", []))
        self.replaces = list(r.get("Replaces", []))
        self.peers = list(r.get("X-ConditionMachineOf", [])) + \
            list(r.get("MachineOf", []))
        self.required_target = None
        for key in ("MachineID", "X-ConditionMachineID",
                    "X-ConditionMachineBootID"):
            if r.get(key):
                self.required_target = r[key][0]
                break
        g = r.get("Global", [])
        self.is_global = bool(g) and _truthy(g[-1])
        self.metadata = {}
        for key in ("X-ConditionMachineMetadata", "MachineMetadata"):
            for pair in r.get(key, []):
                kv = pair.split("=")
                if len(kv) != 2 or not kv[0] or not kv[1]:
                    continue
                self.metadata.setdefault(kv[0], set()).add(kv[1])


def go_path_match(pattern, name):
    """path.Match; a malformed pattern never matches (fleet drops the err)."""
    rx = ["\\A"]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            rx.append("[^/]*")
        elif c == "?":
            rx.append("[^/]")
        elif c == "\\":
            i += 1
            if i >= n:
                return False
            rx.append(re.escape(pattern[i]))
        elif c == "[":
            i += 1
            neg = i < n and pattern[i] == "^"
            if neg:
                i += 1
            items = []
            while True:
                if i < n and pattern[i] == "]" and items:
                    break
                lo, i = _class_char(pattern, i)
                if lo is None:
                    return False
                hi = lo
                if i < n and pattern[i] == "-":
                    hi, i = _class_char(pattern, i + 1)
                    if hi is None:
                        return False
                items.append(re.escape(lo) + ("-" + re.escape(hi)
                                              if hi != lo else ""))
            rx.append("[" + ("^" if neg else "") + "".join(items) + "]")
        else:
            rx.append(re.escape(c))
        i += 1
    rx.append("\\Z")
    try:
        return re.match("".join(rx), name, re.S) is not None
    except re.error:
        return False


def _class_char(p, i):
    if i >= len(p) or p[i] in "-]":
        return None, i
    if p[i] == "\\":
        i += 1
        if i >= len(p):
            return None, i
    return p[i], i + 1


def validate_options(options):
    """api.ValidateOptions; returns the error message or None."""
    err = gosystemd_deserialize_error(serialize_unit(options))
    if err is not None:
        return err
    r = _Reqs(options)  # no unit name: ValidateOptions builds an unnamed Job
    conflicts, replaces, peers = (_dedupe(r.conflicts), _dedupe(r.replaces),
                                  _dedupe(r.peers))
    for peer in peers:
        for conflict in conflicts:
            if go_path_match(conflict, peer):
                return ("unresolvable requirements: peer %s matches conflict %s"
                        % (go_quote(peer), go_quote(conflict)))
        for replace in replaces:
            if go_path_match(replace, peer):
                return ("unresolvable requirements: peer %s matches replace %s"
                        % (go_quote(peer), go_quote(replace)))
    has_target = r.required_target is not None
    if has_target and peers:
        return "MachineID cannot be used with Peers"
    if has_target and conflicts:
        return "MachineID cannot be used with Conflicts"
    if has_target and r.is_global:
        return "MachineID cannot be used with Global"
    if has_target and replaces:
        return "MachineID cannot be used with Replaces"
    if r.is_global and peers:
        return "Global cannot be used with Peers"
    if r.is_global and replaces:
        return "Global cannot be used with Replaces"
    if conflicts and replaces:
        return "Conflicts cannot be used with Replaces"
    return None


def _job_state_error(state):
    return "invalid value %s for JobState" % go_quote(state)


# ---------------------------------------------------------------------------
# URL helpers (Go net/url and net/http ServeMux).

_HEXDIGITS = b"0123456789abcdefABCDEF"


def go_unescape(s, query):
    """url.QueryUnescape / path unescape; None when an escape is malformed."""
    b = s.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(b):
        c = b[i]
        if c == 0x25:
            h = b[i + 1:i + 3]
            if len(h) != 2 or h[0] not in _HEXDIGITS or h[1] not in _HEXDIGITS:
                return None
            out.append(int(h, 16))
            i += 3
            continue
        if c == 0x2B and query:
            out.append(0x20)
        else:
            out.append(c)
        i += 1
    return out.decode("utf-8", "surrogateescape")


def go_parse_query(raw):
    """url.ParseQuery as Go 1.7 does it ('&' and ';' separate; bad pairs are
    dropped)."""
    values = {}
    for part in re.split("[&;]", raw):
        if not part:
            continue
        key, _, value = part.partition("=")
        key = go_unescape(key, True)
        value = go_unescape(value, True)
        if key is None or value is None:
            continue
        values.setdefault(key, []).append(value)
    return values


def go_clean_path(p):
    """net/http cleanPath: path.Clean, keeping a trailing slash."""
    if p == "":
        return "/"
    if not p.startswith("/"):
        p = "/" + p
    parts = []
    for seg in p.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts:
                parts.pop()
            continue
        parts.append(seg)
    np = "/" + "/".join(parts)
    if p.endswith("/") and np != "/":
        np += "/"
    return np


def _escape_path(p):
    safe = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
               b"0123456789-_.~$&+,/:;=@!*'()")
    return "".join(chr(b) if b in safe else "%%%02X" % b
                   for b in p.encode("utf-8", "surrogateescape"))


# ---------------------------------------------------------------------------
# Registry and engine.

def trim_option_values(options):
    """What fleetd stores of a unit's options: it keeps the unit as a unit
    file and reads it back with go-systemd's parser, which trims leading and
    trailing white space (Go's unicode.IsSpace, so U+00A0, U+2003, U+3000...
    too) from every value. The stored hash is that of the trimmed file, so a
    PUT of the same options with padded values compares unequal (201,
    replace) every time it is sent."""
    return [(sec, name, value.strip(_GO_SPACE)) for sec, name, value in options]


_EXEC_PREFIXES = "-@:+!"


def start_fails(name, options, executable_ok=None):
    """Whether systemd fails to start the unit: a .service whose last
    [Service] ExecStart names a program that is not an absolute path to an
    executable file. The simulated machines share the emulator host's file
    system (executable_ok, default os.access(X_OK), decides), so
    `/usr/bin/sleep 1d` runs and `/usr/bin/no-such-binary` fails as systemd
    does: ACTIVE/SUB `failed`/`failed` once the start is attempted."""
    if not name.endswith(".service"):
        return False
    exec_start = None
    for sec, key, value in options:
        if sec == "Service" and key == "ExecStart":
            exec_start = value
    if not exec_start:
        return False
    program = exec_start.lstrip(_EXEC_PREFIXES).split(None, 1)
    if not program:
        return True
    path = program[0]
    if not path.startswith("/"):
        return True
    ok = executable_ok or (lambda p: os.path.isfile(p) and os.access(p, os.X_OK))
    return not ok(path)


class _Unit:
    __slots__ = ("name", "options", "desired", "target", "is_global",
                 "reqs", "hash", "fails", "not_before", "unloading",
                 "poisoned")

    def __init__(self, name, options, desired, fails=False):
        self.name = name
        self.options = options
        self.desired = desired
        self.target = ""  # machine the engine scheduled it to
        self.reqs = _Reqs(options, name)
        self.is_global = self.reqs.is_global
        self.hash = unit_hash(options)
        self.fails = fails        # systemd fails to start it
        self.not_before = 0.0     # monotonic time before which it is not scheduled
        self.unloading = False    # stopped on its machine, unload pending
        self.poisoned = False     # its stored desired state is not a JobState


class Response:
    """One HTTP response the handler will write."""

    def __init__(self, status, body=b"", content_type=None, headers=None,
                 server_header=True):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or []
        self.server_header = server_header


def _json_response(status, obj, server_header=True):
    return Response(status, go_json_encode(obj).encode("utf-8"),
                    "application/json", server_header=server_header)


def _error(status, message=""):
    # api/serialization.go sendError: code always, message possibly "".
    return _json_response(status, {"error": {"code": status,
                                             "message": message}})


class FleetEmulator:
    """An in-memory fleet cluster behind the fleet v1 HTTP API.

    Args:
      tcp: "host:port" to listen on (loopback only; port 0 picks one), or None.
      unix_path: unix socket path to listen on, or None.
      page_limit: fleetd's token_limit (1..65535).
      machines: number of simulated machines, or a list of dicts
        {"id": ..., "primaryIP": ..., "metadata": {...}}.
      converge_delay: seconds before the simulated agents report a change
        (0 applies it before the HTTP response is sent).
      schedule_delay: seconds a new unit stays unscheduled (no machineID)
        before the engine places it; real fleetd takes about a second (its
        reconcile interval). 0 schedules at once.
      start_delay: seconds between the agent triggering a start (the unit
        shows `launched`, its UnitState still `loaded/inactive/dead`) and
        systemd's verdict (`active/running`, or `failed/failed` when the
        program is missing); real fleetd: about 0.5 s. 0 reports both at once.
      unload_delay: seconds a unit set to `inactive` shows `loaded` with its
        machine (stopped there) before the agent unloads it; 0 drops the
        machine at once.
      executable_ok: predicate on an ExecStart program path (default: an
        executable file on this host); see start_fails().
      discovery_path: the discovery document served verbatim.
      fleet_version: the version in the `Server: fleetd/<version>` header.
    """

    def __init__(self, tcp=None, unix_path=None, page_limit=DEFAULT_PAGE_LIMIT,
                 machines=3, converge_delay=0.3, discovery_path=None,
                 fleet_version=FLEET_VERSION, verbose=False, schedule_delay=0.0,
                 start_delay=0.0, unload_delay=0.0, executable_ok=None, event_log=None):
        if not 1 <= int(page_limit) <= 0xFFFF:
            raise ValueError("page_limit must be in 1..65535")
        self.page_limit = int(page_limit)
        self.converge_delay = float(converge_delay)
        self.schedule_delay = float(schedule_delay)
        self.start_delay = float(start_delay)
        self.unload_delay = float(unload_delay)
        self.executable_ok = executable_ok
        self.fleet_version = fleet_version
        self.verbose = verbose
        # Benchmarks: "<unix time> request METHOD /path?query -> status" per
        # request and "<unix time> converge|start <unit> <desired>" when the
        # agents report a unit's change (never bodies or headers).
        self._event_log = open(event_log, "a", buffering=1) if event_log else None
        self._event_lock = threading.Lock()
        path = discovery_path or DEFAULT_DISCOVERY_PATH
        with open(path, "rb") as f:
            self.discovery = f.read()
        self._tcp_spec = tcp
        self._unix_path = unix_path
        self._lock = threading.RLock()
        self._units = {}
        self._machines = {}   # id -> (primaryIP, base metadata dict)
        self._dyn_meta = {}   # id -> {key: value or "" for deleted}
        self._states = {}     # (unit, machine) -> (load, active, sub, hash)
        self._heartbeat = {}  # unit -> machine
        self._gen = {}        # unit -> generation of the last change
        self._timers = []     # heap of (due, seq, kind, unit, generation)
        self._seq = 0
        self._engine_cv = threading.Condition(self._lock)
        self._available = True
        self._stopping = False
        self._servers = []
        self._threads = []
        self._conns = set()
        self.tcp_address = None
        self.unix_path = None
        if isinstance(machines, int):
            for i in range(machines):
                self.add_machine(self.machine_id_for_index(i),
                                 "198.51.100.%d" % (i + 1))
        else:
            for m in machines:
                self.add_machine(m["id"], m.get("primaryIP", ""),
                                 m.get("metadata") or {})

    # -- lifecycle ---------------------------------------------------------

    @staticmethod
    def machine_id_for_index(i):
        """The deterministic 32-hex machine id of simulated machine i."""
        return hashlib.sha256(("fleet-emulator-machine-%d" % i).encode()).hexdigest()[:32]

    def start(self):
        """Binds the listeners and starts serving; returns self."""
        if self._tcp_spec is None and self._unix_path is None:
            raise ValueError("need a tcp address or a unix socket path")
        try:
            if self._tcp_spec is not None:
                host, port = parse_loopback_hostport(self._tcp_spec)
                srv = _TCPServer((host, port), _Handler)
                srv.emulator = self
                self._servers.append(srv)
                self.tcp_address = srv.server_address[:2]
            if self._unix_path is not None:
                _prepare_unix_path(self._unix_path)
                srv = _UnixServer(self._unix_path, _Handler)
                srv.emulator = self
                srv.socket_ino = os.stat(self._unix_path).st_ino
                self._servers.append(srv)
                self.unix_path = self._unix_path
        except BaseException:
            self._close_servers()
            raise
        for srv in self._servers:
            t = threading.Thread(target=srv.serve_forever,
                                 kwargs={"poll_interval": 0.05},
                                 name="fleet-emulator-serve", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._engine_loop,
                             name="fleet-emulator-engine", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        """Stops listening, closes open connections and the engine."""
        with self._lock:
            self._stopping = True
            self._engine_cv.notify_all()
        stoppers = [threading.Thread(target=srv.shutdown) for srv in self._servers]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        self._close_servers()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)

    def _close_servers(self):
        for srv in self._servers:
            srv.server_close()
            if isinstance(srv, _UnixServer):
                try:
                    if os.stat(srv.server_address).st_ino == srv.socket_ino:
                        os.unlink(srv.server_address)
                except (OSError, AttributeError):
                    pass
        self._servers = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def ready_line(self):
        fields = ["READY"]
        if self.tcp_address is not None:
            host = self.tcp_address[0]
            if ":" in host:
                host = "[" + host + "]"
            fields.append("tcp=%s:%d" % (host, self.tcp_address[1]))
        if self.unix_path is not None:
            fields.append("unix=%s" % self.unix_path)
        return " ".join(fields)

    @property
    def endpoint(self):
        """http://host:port of the TCP listener."""
        host, port = self.tcp_address
        return "http://%s:%d" % (("[%s]" % host) if ":" in host else host, port)

    # -- test controls -----------------------------------------------------

    def set_available(self, available):
        """False makes every request 503 (fleetd before it reaches etcd)."""
        with self._lock:
            self._available = bool(available)

    def add_machine(self, machine_id, primary_ip="", metadata=None):
        with self._lock:
            self._machines[machine_id] = (primary_ip, dict(metadata or {}))
            self._reschedule_locked(self._global_names_locked())

    def remove_machine(self, machine_id):
        """The machine leaves; its dynamic metadata persists (upstream too)."""
        with self._lock:
            self._machines.pop(machine_id, None)
            changed = self._global_names_locked()
            for u in self._units.values():
                if u.target == machine_id:
                    u.target = ""
                    changed.add(u.name)
            for key in [k for k in self._states if k[1] == machine_id]:
                del self._states[key]
                changed.add(key[0])
            for name, m in list(self._heartbeat.items()):
                if m == machine_id:
                    del self._heartbeat[name]
            self._reschedule_locked(changed)

    @property
    def machine_ids(self):
        with self._lock:
            return sorted(self._machines)

    def wait_converged(self, timeout=5.0):
        """Blocks until no convergence is pending; True if it got there."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._timers:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._engine_cv.wait(min(left, 0.05))
            return True

    # -- engine ------------------------------------------------------------

    def _machine_metadata_locked(self, mid):
        base = dict(self._machines[mid][1])
        for k, v in self._dyn_meta.get(mid, {}).items():
            # registry.mergeMetadata: "" marks a deleted key.
            if v == "":
                base.pop(k, None)
            else:
                base[k] = v
        return base

    def _metadata_ok_locked(self, reqs, mid):
        meta = self._machine_metadata_locked(mid)
        return all(meta.get(k) in vals for k, vals in reqs.metadata.items())

    def _global_names_locked(self):
        return {n for n, u in self._units.items() if u.is_global}

    def _wants_machine(self, u):
        return u.desired in ("loaded", "launched") and not is_template(u.name)

    def _pick_machine_locked(self, u):
        """A small version of fleet's scheduler: required machine, metadata,
        MachineOf peers, Conflicts in both directions, then the machine with
        the fewest units (ties broken by id)."""
        cands = sorted(self._machines)
        r = u.reqs
        if r.required_target is not None:
            cands = [m for m in cands if m == r.required_target]
        cands = [m for m in cands if self._metadata_ok_locked(r, m)]
        for peer in r.peers:
            pu = self._units.get(peer)
            if pu is None or not pu.target:
                return ""
            cands = [m for m in cands if m == pu.target]
        load = {m: 0 for m in cands}
        blocked = set()
        for other in self._units.values():
            if other is u or not other.target or other.target not in load:
                continue
            load[other.target] += 1
            if (any(go_path_match(c, other.name) for c in r.conflicts) or
                    any(go_path_match(c, u.name) for c in other.reqs.conflicts)):
                blocked.add(other.target)
        cands = [m for m in cands if m not in blocked]
        if not cands:
            return ""
        return min(cands, key=lambda m: (load[m], m))

    def _fits_locked(self, u, mid):
        """Whether machine mid still satisfies u's machine requirements."""
        if mid not in self._machines:
            return False
        if u.reqs.required_target is not None and u.reqs.required_target != mid:
            return False
        return self._metadata_ok_locked(u.reqs, mid)

    def _reschedule_locked(self, changed):
        """Engine pass: unschedule what should not run, schedule what should;
        then queue agent reports for every unit whose picture changed."""
        now = time.monotonic()
        for u in self._units.values():
            if u.is_global or u.poisoned or u.unloading:
                continue
            if u.target and not self._wants_machine(u) and self.unload_delay > 0 \
                    and self._fits_locked(u, u.target) \
                    and any(k[0] == u.name for k in self._states):
                # Loaded on its machine: the agent stops it there first
                # (`loaded` with the machine), then unloads (see _converge).
                u.unloading = True
                changed.add(u.name)
                continue
            if u.target and (not self._wants_machine(u)
                             or not self._fits_locked(u, u.target)):
                u.target = ""
                changed.add(u.name)
        progress = True
        while progress:  # peers may become schedulable once others are
            progress = False
            for name in sorted(self._units):
                u = self._units[name]
                if (u.is_global or u.poisoned or u.target
                        or not self._wants_machine(u)):
                    continue
                if u.not_before > now:
                    # Not yet seen by the engine's reconciler.
                    self._push_timer_locked(u.not_before, "schedule", name, 0)
                    continue
                m = self._pick_machine_locked(u)
                if m:
                    u.target = m
                    changed.add(name)
                    progress = True
        for name in changed:
            self._queue_converge_locked(name)

    def _push_timer_locked(self, due, kind, name, gen):
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, kind, name, gen))
        self._engine_cv.notify_all()

    def _queue_converge_locked(self, name):
        gen = self._gen.get(name, 0) + 1
        self._gen[name] = gen
        if self.converge_delay <= 0:
            self._converge_locked(name)
            return
        self._push_timer_locked(time.monotonic() + self.converge_delay,
                                "converge", name, gen)

    def _final_systemd_state(self, u):
        if u.desired == "launched" and u.fails:
            return ("loaded", "failed", "failed")
        return _SYSTEMD_STATES[u.desired]

    def _converge_locked(self, name):
        """What the agents report once they have acted on the unit."""
        u = self._units.get(name)
        if u is not None and u.poisoned:
            return  # nobody can read its target state: everything stays
        old = {k: v for k, v in self._states.items() if k[0] == name}
        for key in old:
            del self._states[key]
        self._heartbeat.pop(name, None)
        if u is None or is_template(name):
            return
        if u.unloading and u.target:
            # Stopped on its machine; unloaded after unload_delay.
            self._states[(name, u.target)] = _SYSTEMD_STATES["loaded"] + (u.hash,)
            self._push_timer_locked(time.monotonic() + self.unload_delay, "unload",
                                    name, self._gen.get(name, 0))
            return
        if u.desired not in _SYSTEMD_STATES:
            return
        final = self._final_systemd_state(u)
        if u.is_global:
            machines = [m for m in self._machines
                        if self._metadata_ok_locked(u.reqs, m)]
        else:
            machines = [u.target] if u.target else []
        pending = False
        for m in machines:
            was = old.get((name, m))
            if (u.desired == "launched" and self.start_delay > 0
                    and was != final + (u.hash,)):
                # The agent has triggered the start; systemd's verdict is
                # reported start_delay later. Meanwhile fleet already says
                # `launched` (the heartbeat) over a stopped UnitState.
                self._states[(name, m)] = _SYSTEMD_STATES["loaded"] + (u.hash,)
                pending = True
            else:
                self._states[(name, m)] = final + (u.hash,)
        if pending:
            self._push_timer_locked(time.monotonic() + self.start_delay, "start",
                                    name, self._gen.get(name, 0))
        if u.desired == "launched" and u.target and not u.is_global:
            self._heartbeat[name] = u.target

    def log_event(self, text):
        if self._event_log is not None:
            with self._event_lock:
                self._event_log.write("%.6f %s\n" % (time.time(), text))

    def _fire_locked(self, kind, name, gen):
        if kind == "schedule":
            self._reschedule_locked(set())
            return
        if self._gen.get(name) != gen:
            return  # superseded by a later change of the unit
        u = self._units.get(name)
        if kind in ("converge", "start"):
            self.log_event("%s %s %s" % (kind, name, u.desired if u is not None else "-"))
        if kind == "converge":
            self._converge_locked(name)
        elif kind == "start":
            if u is None or u.poisoned or u.desired != "launched":
                return
            final = self._final_systemd_state(u) + (u.hash,)
            for key in [k for k in self._states if k[0] == name]:
                self._states[key] = final
        elif kind == "unload":
            if u is None or u.poisoned or not u.unloading:
                return
            u.unloading = False
            u.target = ""
            for key in [k for k in self._states if k[0] == name]:
                del self._states[key]
            self._heartbeat.pop(name, None)
            self._reschedule_locked(set())

    def _engine_loop(self):
        with self._lock:
            while not self._stopping:
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _, _, kind, name, gen = heapq.heappop(self._timers)
                    self._fire_locked(kind, name, gen)
                    self._engine_cv.notify_all()
                wait = None
                if self._timers:
                    wait = max(0.0, self._timers[0][0] - time.monotonic())
                self._engine_cv.wait(wait if wait is not None else 1.0)

    # -- views -------------------------------------------------------------

    def _current_state_locked(self, u):
        # registry.determineJobState
        if not u.target or (u.name, u.target) not in self._states:
            return "inactive"
        if self._heartbeat.get(u.name) != u.target:
            return "loaded"
        return "launched"

    def _unit_json_locked(self, u, with_schedule):
        d = {}
        if with_schedule:
            d["currentState"] = self._current_state_locked(u)
        d["desiredState"] = u.desired
        if with_schedule and u.target:
            d["machineID"] = u.target
        d["name"] = u.name
        opts = []
        for sec, name, value in u.options:
            o = {}
            if name:
                o["name"] = name
            if sec:
                o["section"] = sec
            if value:
                o["value"] = value
            opts.append(o)
        if opts:
            d["options"] = opts
        return d

    def _state_json(self, key, st):
        d = {}
        if st[3]:
            d["hash"] = st[3]
        if key[1]:
            d["machineID"] = key[1]
        if key[0]:
            d["name"] = key[0]
        for field, val in (("systemdActiveState", st[1]),
                           ("systemdLoadState", st[0]),
                           ("systemdSubState", st[2])):
            if val:
                d[field] = val
        return d

    def _machine_json_locked(self, mid):
        d = {}
        if mid:
            d["id"] = mid
        meta = self._machine_metadata_locked(mid)
        if meta:
            d["metadata"] = {k: meta[k] for k in sorted(meta)}
        if self._machines[mid][0]:
            d["primaryIP"] = self._machines[mid][0]
        return d

    # -- HTTP routing --------------------------------------------------------

    _PREFIXES = ("/v1-alpha", "/fleet/v1")

    def handle(self, method, path, raw_query, headers, body):
        """Routes one request (path already URL-decoded). headers is a list
        of (name, value). Returns a Response; raises _Panic to drop the
        connection the way a panicking Go handler does."""
        if not self._available:
            # api.Server swaps the whole (middleware-wrapped) mux for this
            # handler, so there is no Server header either.
            return _json_response(
                503, {"error": {"code": 503, "message":
                                "fleet server unable to communicate with etcd"}},
                server_header=False)
        clean = go_clean_path(path)
        if method != "CONNECT" and clean != path:
            # net/http ServeMux redirects to the cleaned path.
            loc = _escape_path(clean) + ("?" + raw_query if raw_query else "")
            if method == "GET":
                note = ('<a href="%s">Moved Permanently</a>.\n\n'
                        % loc.replace("&", "&amp;").replace("<", "&lt;")
                        .replace(">", "&gt;").replace('"', "&#34;")
                        .replace("'", "&#39;"))
                return Response(301, note.encode(), "text/html; charset=utf-8",
                                [("Location", loc)])
            return Response(301, b"", None, [("Location", loc)])
        query = go_parse_query(raw_query)
        for prefix in self._PREFIXES:
            if path == prefix:
                return _error(405)
            if not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix):]
            if rest == "/discovery":
                if method != "GET":
                    return _error(400, "only HTTP GET supported against this resource")
                return Response(200, self.discovery, "application/json")
            if rest == "/machines":
                return self._machines_resource(method, query, body)
            for res, handler in (("/units", self._units_resource),
                                 ("/state", self._state_resource)):
                if rest == res:
                    return handler(method, None, query, headers, body)
                if rest.startswith(res + "/"):
                    item = rest[len(res) + 1:]
                    # api.isItemPath: no trailing slash, exactly one segment.
                    if not item or "/" in item:
                        return _error(404)
                    return handler(method, item, query, headers, body)
            return _error(404)
        if path == "/metrics":
            return Response(200, self._metrics_text(),
                            "text/plain; version=0.0.4")
        if path == "/":
            return _error(405)
        return _error(404)

    def _metrics_text(self):
        # fleetd serves Prometheus metrics here; the emulator has a token few.
        with self._lock:
            n_units, n_machines = len(self._units), len(self._machines)
        return ("# HELP fleet_emulator_units Units in the emulated registry.\n"
                "# TYPE fleet_emulator_units gauge\n"
                "fleet_emulator_units %d\n"
                "# HELP fleet_emulator_machines Machines in the emulated cluster.\n"
                "# TYPE fleet_emulator_machines gauge\n"
                "fleet_emulator_machines %d\n" % (n_units, n_machines)).encode()

    # /units ------------------------------------------------------------------

    def _units_resource(self, method, item, query, headers, body):
        if item is None:
            if method != "GET":
                return _error(405, "only GET supported against this resource")
            try:
                page = find_page(query, self.page_limit)
            except TokenError as e:
                return _error(400, str(e))
            with self._lock:
                # registry.Units skips (and logs) a unit whose target
                # state does not parse: a poisoned unit is not listed.
                units = [self._unit_json_locked(self._units[n], True)
                         for n in sorted(self._units)
                         if not self._units[n].poisoned]
            items, nxt = paginate(units, page, self.page_limit)
            out = {}
            if nxt:
                out["nextPageToken"] = nxt
            if items:
                out["units"] = items
            return _json_response(200, out)
        if method == "GET":
            with self._lock:
                u = self._units.get(item)
                if u is None:
                    return _error(404, "unit does not exist")
                if u.poisoned:
                    # registry.Unit fails on the stored target state and the
                    # handler answers 500 with no message, for good.
                    return _error(500)
                # client.RegistryClient.Unit: global units have no schedule.
                return _json_response(200, self._unit_json_locked(u, not u.is_global))
        if method == "DELETE":
            with self._lock:
                if item not in self._units:
                    return _error(404, "unit does not exist")
                del self._units[item]
                self._reschedule_locked({item})
            return Response(204)
        if method == "PUT":
            return self._put_unit(item, headers, body)
        return _error(405, "only GET, PUT and DELETE supported against this resource")

    def _put_unit(self, item, headers, body):
        # api/units.go unitsResource.set, step by step.
        ctypes = [v for k, v in headers if k.lower() == "content-type"]
        if len(ctypes) != 1:
            return _error(415, "expected 1 Content-Type, got %d" % len(ctypes))
        if ctypes[0].split(";", 1)[0].strip(" \t\r\n\v\f") != "application/json":
            return _error(415, "only acceptable Content-Type is application/json")
        try:
            name, options, desired = decode_unit_body(body)
        except JSONDecodeError as e:
            return _error(400, "unable to decode body: %s" % e)
        if name == "":
            name = item
        if item != name:
            return _error(400, "name in URL %s differs from unit name in request body %s"
                          % (go_quote(item), go_quote(name)))
        err = validate_name(name)
        if err:
            return _error(400, err)
        with self._lock:
            existing = self._units.get(name)
            if options and any(o is None for o in options):
                raise _Panic()  # nil *UnitOption is dereferenced upstream
            if existing is not None and existing.poisoned:
                # The handler's lookup of the existing unit fails first.
                return _error(500)
            new_unit = False
            if existing is None:
                if not options:
                    return _error(409, "unit does not exist and options field empty")
                err = validate_options(options)
                if err:
                    return _error(400, err)
                new_unit = True
            elif options:
                # Same unit file (by hash) means "only set the target state".
                # The stored hash is of the trimmed values, so padded values
                # never compare equal: 201 and a replace (trim_option_values).
                new_unit = unit_hash(options) != existing.hash
            if new_unit:
                # An unknown desiredState fails inside the registry: 500
                # with an empty message, and nothing is stored (as fleetd).
                if desired and desired not in JOB_STATES:
                    return _error(500)
                stored = trim_option_values(options)
                u = _Unit(name, stored, desired or "inactive",
                          start_fails(name, stored, self.executable_ok))
                if existing is not None:
                    u.target = existing.target  # the job's target key survives
                elif self.schedule_delay > 0:
                    u.not_before = time.monotonic() + self.schedule_delay
                self._units[name] = u
                self._reschedule_locked({name})
                return Response(201)
            if not desired:
                return _error(409, "must provide DesiredState to update existing unit")
            if is_template(name) and desired != "inactive":
                return _error(400, "cannot activate template %s" % go_quote(name))
            if desired not in JOB_STATES:
                # As fleetd: this path stores any string (204); from then on
                # the registry cannot read the unit back, so every GET of it
                # is 500, lists leave it out and the engine leaves it alone.
                existing.poisoned = True
                existing.desired = desired
                return Response(204)
            existing.desired = desired
            existing.unloading = False
            self._reschedule_locked({name})
            return Response(204)

    # /state ------------------------------------------------------------------

    def _state_resource(self, method, item, query, headers, body):
        if method != "GET":
            return _error(405, "only GET supported against this resource")
        with self._lock:
            keys = sorted(self._states)
            if item is not None:
                for key in keys:
                    if key[0] == item:
                        return _json_response(200, self._state_json(key, self._states[key]))
                # fleetd v1.0.0 dereferences a nil state here: the handler
                # panics and net/http drops the connection without an answer
                # (the 404 "unit state does not exist" is never sent).
                raise _Panic()
            try:
                page = find_page(query, self.page_limit)
            except TokenError as e:
                return _error(400, str(e))
            mfilter = query.get("machineID", [""])[0]
            ufilter = query.get("unitName", [""])[0]
            states = [self._state_json(k, self._states[k]) for k in keys
                      if (not mfilter or k[1] == mfilter)
                      and (not ufilter or k[0] == ufilter)]
        items, nxt = paginate(states, page, self.page_limit)
        out = {}
        if nxt:
            out["nextPageToken"] = nxt
        if items:
            out["states"] = items
        return _json_response(200, out)

    # /machines ---------------------------------------------------------------

    # Go's "$" (no multiline) is Python's "\Z".
    _META_PATH = re.compile(r"^/([^/]+)/metadata/([A-Za-z0-9_.-]+)\Z", re.S)

    def _machines_resource(self, method, query, body):
        if method == "GET":
            try:
                page = find_page(query, self.page_limit)
            except TokenError as e:
                return _error(400, str(e))
            with self._lock:
                machines = [self._machine_json_locked(m) for m in sorted(self._machines)]
            items, nxt = paginate(machines, page, self.page_limit)
            out = {}
            if items:
                out["machines"] = items
            if nxt:
                out["nextPageToken"] = nxt
            return _json_response(200, out)
        if method == "PATCH":
            # Content-Type is not checked on PATCH upstream.
            try:
                ops = decode_patch_body(body)
            except JSONDecodeError as e:
                return _error(400, str(e))
            for op, path, value in ops:
                if op not in ("add", "remove", "replace"):
                    return _error(400, "invalid op: expect add, remove, or replace")
                if not self._META_PATH.match(path):
                    return _error(400, "machine metadata path invalid")
                if op != "remove" and not value:
                    return _error(400, "invalid value: add and replace require a value")
            with self._lock:
                for op, path, value in ops:
                    mid, key = self._META_PATH.match(path).groups()
                    # DeleteMachineMetadata stores "" so merging drops the key.
                    self._dyn_meta.setdefault(mid, {})[key] = "" if op == "remove" else value
                self._reschedule_locked(self._global_names_locked())
            # sendResponse(rw, 204, nil): Content-Type is set, body dropped.
            return Response(204, b"", "application/json")
        return _error(405, "only GET and PATCH supported against this resource")


# ---------------------------------------------------------------------------
# HTTP plumbing.

def parse_loopback_hostport(spec):
    """"127.0.0.1:0" / "[::1]:0" / "localhost:0" -> (host, port); only
    loopback addresses are accepted."""
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = spec.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("bad --tcp address %r (want HOST:PORT)" % spec)
    if host == "localhost":
        host = "127.0.0.1"
    import ipaddress
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError("--tcp host must be a loopback IP address, got %r" % host)
    if not ip.is_loopback:
        raise ValueError("--tcp host must be loopback, got %r" % host)
    return host, int(port)


def _prepare_unix_path(path):
    if os.path.exists(path) or os.path.islink(path):
        import stat
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise OSError("%s exists and is not a socket" % path)
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # stale socket from a dead process
        else:
            raise OSError("%s is in use by a live server" % path)
        finally:
            probe.close()


class _TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # fleetd (Go's net/http) listens with the system's backlog; socketserver's
    # default of 5 drops the SYNs of a burst of new connections (e.g. 64 at
    # once from one account), which the client resends only after 1, 3, 7 s...
    request_queue_size = 1024

    def __init__(self, addr, handler):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, handler)


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 1024


class _BadRequest(Exception):
    pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # fleetd is Go's net/http, whose TCP connections have TCP_NODELAY
        # set; this server writes the headers and the body separately, so
        # without it the body waits for the client's delayed ACK (~40 ms per
        # answer, found by bench/pending_ops.py's GetUnit probe). The unix
        # socket has no Nagle to turn off.
        if self.connection.family in (socket.AF_INET, socket.AF_INET6):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        emu = self.server.emulator
        with emu._lock:
            emu._conns.add(self.connection)

    def finish(self):
        emu = self.server.emulator
        with emu._lock:
            emu._conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def version_string(self):
        return "fleetd/" + self.server.emulator.fleet_version

    def send_response_only(self, code, message=None):
        # net/http answers an HTTP/1.0 request with an HTTP/1.0 status line.
        if message is None:
            message = self.responses.get(code, ("",))[0]
        proto = "HTTP/1.0" if self.request_version == "HTTP/1.0" else "HTTP/1.1"
        if not hasattr(self, "_headers_buffer"):
            self._headers_buffer = []
        self._headers_buffer.append(("%s %d %s\r\n" % (proto, code, message))
                                    .encode("latin-1", "strict"))

    def log_message(self, fmt, *args):
        if self.server.emulator.verbose:
            sys.stderr.write("fleet-emulator: %s\n" % (fmt % args))

    def log_request(self, code="-", size="-"):
        if self.server.emulator.verbose:
            # Method and path only: never bodies or headers.
            sys.stderr.write("fleet-emulator: %s %s -> %s\n"
                             % (self.command, self.path.split("?", 1)[0], code))
        self.server.emulator.log_event("request %s %s -> %s" % (self.command, self.path, code))

    def __getattr__(self, name):
        # Any method token reaches the router, as with Go's net/http.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _raw_400(self, detail=""):
        # What net/http writes itself when it cannot parse a request.
        body = ("400 Bad Request" + (": " + detail if detail else "")).encode()
        self.wfile.write(b"HTTP/1.1 400 Bad Request\r\n"
                         b"Content-Type: text/plain; charset=utf-8\r\n"
                         b"Connection: close\r\n"
                         b"Content-Length: " + str(len(body)).encode() +
                         b"\r\n\r\n" + body)
        self.close_connection = True

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise _BadRequest("")
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _BadRequest("")
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            return b""
        if len(set(v.strip() for v in lengths)) != 1 or not lengths[0].strip().isdigit():
            raise _BadRequest("")
        n = int(lengths[0].strip())
        return self.rfile.read(n) if n else b""

    def _serve(self):
        emu = self.server.emulator
        hosts = self.headers.get_all("Host") or []
        if self.request_version == "HTTP/1.1" and not hosts:
            self._raw_400("missing required Host header")
            return
        if len(hosts) > 1:
            self._raw_400("too many Host headers")
            return
        try:
            body = self._read_body()
        except _BadRequest as e:
            self._raw_400(str(e))
            return
        target = self.path
        if self.command == "OPTIONS" and target == "*":
            # net/http answers this itself, before any handler runs.
            self.send_response_only(200)
            self.send_header("Date", formatdate(usegmt=True))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not target.startswith("/"):
            if "://" not in target:
                self._raw_400()
                return
            after = target.split("://", 1)[1]
            slash = after.find("/")
            target = after[slash:] if slash >= 0 else "/"
        raw_path, _, raw_query = target.partition("?")
        raw_path = raw_path.split("#", 1)[0]
        path = go_unescape(raw_path, False)
        if path is None:
            self._raw_400()
            return
        try:
            resp = emu.handle(self.command, path, raw_query,
                              list(self.headers.items()), body)
        except _Panic:
            self.close_connection = True  # net/http recovers and hangs up
            return
        self._write(resp)

    # net/http buffers this much of a handler's body before deciding on the
    # framing (bufferBeforeChunkingSize); fleet's handlers never set a length.
    CHUNKING_THRESHOLD = 2048

    def _write(self, resp):
        self.send_response_only(resp.status)
        if resp.server_header:
            self.send_header("Server", self.version_string())
        self.send_header("Date", formatdate(usegmt=True))
        for k, v in resp.headers:
            self.send_header(k, v)
        if resp.content_type:
            self.send_header("Content-Type", resp.content_type)
        no_body = resp.status in (204, 304) or 100 <= resp.status < 200
        chunked = False
        if no_body:
            pass  # as net/http: a 204 carries no Content-Length at all
        elif len(resp.body) > self.CHUNKING_THRESHOLD and self.command != "HEAD":
            if self.request_version == "HTTP/1.1":
                self.send_header("Transfer-Encoding", "chunked")
                chunked = True
            else:
                # HTTP/1.0 has no chunks: the body ends when the connection does.
                self.send_header("Connection", "close")
                self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD" and resp.body and not no_body:
            if chunked:
                # net/http flushes its 4 KB write buffer as chunks; the sizes
                # are not part of the protocol, any split is legal.
                body = resp.body
                for i in range(0, len(body), 4096):
                    part = body[i:i + 4096]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.write(resp.body)
        self.log_request(resp.status)


# ---------------------------------------------------------------------------
# Command line.

def _write_ready_file(path, line):
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    with open(tmp, "w") as f:
        f.write(line + "\n")
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="CoreOS fleet v1 API emulator for tests.")
    ap.add_argument("--tcp", help="loopback HOST:PORT to listen on (port 0 picks one)")
    ap.add_argument("--unix", help="unix socket path to listen on")
    ap.add_argument("--page-limit", type=int, default=DEFAULT_PAGE_LIMIT,
                    help="fleetd token_limit: items per page (default 100)")
    ap.add_argument("--machines", type=int, default=3,
                    help="number of simulated machines (default 3)")
    ap.add_argument("--converge-delay", type=float, default=0.3,
                    help="seconds before agents report a state change (default 0.3)")
    ap.add_argument("--schedule-delay", type=float, default=0.0,
                    help="seconds a new unit has no machine (real fleetd: ~1; default 0)")
    ap.add_argument("--start-delay", type=float, default=0.0,
                    help="seconds from `launched` to systemd's verdict (real fleetd: ~0.5; default 0)")
    ap.add_argument("--unload-delay", type=float, default=0.0,
                    help="seconds an inactive unit shows `loaded` with its machine (default 0)")
    ap.add_argument("--discovery", default=DEFAULT_DISCOVERY_PATH,
                    help="discovery document to serve verbatim")
    ap.add_argument("--ready-file", help="also write the READY line here (atomically)")
    ap.add_argument("--max-lifetime", type=float, default=900,
                    help="exit after this many seconds (0 = no limit; default 900)")
    ap.add_argument("--fleet-version", default=FLEET_VERSION,
                    help="version in the Server: fleetd/<version> header")
    ap.add_argument("--verbose", action="store_true",
                    help="log method, path and status of each request to stderr")
    ap.add_argument("--event-log",
                    help="append timestamped requests (with query) and unit changes here")
    args = ap.parse_args(argv)
    if not args.tcp and not args.unix:
        ap.error("at least one of --tcp and --unix is required")
    if not 1 <= args.page_limit <= 0xFFFF:
        ap.error("--page-limit must be in 1..65535")
    if args.machines < 0:
        ap.error("--machines must be >= 0")
    try:
        parent = os.getppid()
        emu = FleetEmulator(tcp=args.tcp, unix_path=args.unix,
                            page_limit=args.page_limit, machines=args.machines,
                            converge_delay=args.converge_delay,
                            schedule_delay=args.schedule_delay,
                            start_delay=args.start_delay,
                            unload_delay=args.unload_delay,
                            discovery_path=args.discovery,
                            fleet_version=args.fleet_version,
                            verbose=args.verbose, event_log=args.event_log)
        emu.start()
    except (OSError, ValueError) as e:
        sys.stderr.write("fleet_emulator: %s\n" % e)
        return 2
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    line = emu.ready_line()
    try:
        if args.ready_file:
            _write_ready_file(args.ready_file, line)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except OSError as e:
        sys.stderr.write("fleet_emulator: %s\n" % e)
        emu.stop()
        return 2
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
