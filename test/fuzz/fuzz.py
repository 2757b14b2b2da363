#!/usr/bin/python3
"""
test/fuzz/fuzz.py
    The chatpersist fuzzer: generates random and malformed inputs for every
    SQL entry point of the extension (its functions, and direct INSERT,
    UPDATE and DELETE on chatpersist.conversations and on its message rows,
    chatpersist.messages, through the guard triggers), predicts for each
    input the outcome the contract promises,
    runs them in batches inside the server (test/fuzz/driver.sql) and
    reports every input whose outcome or invariants differ.

Usage (normally through test/fuzz.sh, which starts a cluster):
    PGHOST=... PGPORT=... PGUSER=<superuser> PGDATABASE=<db with chatpersist> \\
        /usr/bin/python3 test/fuzz/fuzz.py [--count N] [--seed S] [--batch B]
            [--server-log FILE] [--break CHECK]

    --count     inputs to run (default 10000)
    --seed      the seed (default: random); printed first, so that any run
                can be repeated exactly: the inputs depend on the seed only
    --batch     inputs per batch, one transaction each (default 400)
    --server-log  the server's log, scanned for crashed backends at the end
    --break     oracle self-test: deliberately predict wrongly for one kind
                of input (see BREAKS) to show that the oracle reports it

It ends with the line
    fuzz: N passed, M failed
and exits non-zero if M > 0.  Needs Debian's python3 and python3-psycopg2,
and libxxhash0 (the checksum oracle hashes with XXH3 independently of the
extension).  See docs/reliability.md, section "Fuzzing".

Copyright (c) 2026, chatpersist developers
"""

import argparse
import collections
import ctypes
import hashlib
import json
import math
import os
import random
import re
import sys
import threading
import time
from decimal import Decimal

import psycopg2
import psycopg2.extras

HERE = os.path.dirname(os.path.abspath(__file__))

# --------------------------------------------------------------------------
# XXH3-64 (seed 0), from libxxhash: the checksum oracle
# --------------------------------------------------------------------------

_xxh = ctypes.CDLL("libxxhash.so.0")
_xxh.XXH3_64bits.restype = ctypes.c_uint64
_xxh.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def xxh3(data):
    return "%016x" % _xxh.XXH3_64bits(data, len(data))


assert xxh3(b"") == "2d06800538d394c2"

# --------------------------------------------------------------------------
# JSON values and their canonical text (what jsonb prints)
# --------------------------------------------------------------------------


class Num:
    """A JSON number, kept as the literal the generator wrote."""
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


class Obj:
    """A JSON object as written: its pairs in order, repeated keys allowed."""
    __slots__ = ("pairs",)

    def __init__(self, pairs):
        self.pairs = pairs

    def get(self, key, default=None):
        found = default
        for k, v in self.pairs:
            if k == key:
                found = v           # jsonb keeps the last of repeated keys
        return found

    def has(self, key):
        return any(k == key for k, _ in self.pairs)


class SqlNull:
    """An SQL NULL where a JSON value goes (a message row's message)."""


class NOTSET:
    """A column an UPDATE does not set."""


class Bad:
    """Something in place of a conversation object (import_app_state)."""
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v


class Raw:
    """A value given by its text and its canonical text (deep nesting)."""
    __slots__ = ("text", "canon")

    def __init__(self, text, canon):
        self.text = text
        self.canon = canon


NUMERIC_DSCALE_MAX = 0x3FFF
NUMERIC_DIGITS_MAX = 131072     # numeric holds values below 10^131072


def num_fault(text):
    """The SQLSTATE numeric_in raises for a JSON number literal, or None."""
    d = Decimal(text)
    if max(0, -d.as_tuple().exponent) > NUMERIC_DSCALE_MAX:
        return "22003"
    if d != 0 and d.adjusted() >= NUMERIC_DIGITS_MAX:
        return "22003"
    return None


def num_canon(text):
    """numeric_out of a JSON number literal: its scale is kept, -0 is 0."""
    d = Decimal(text)
    s = format(d, "f")
    if d == 0 and s.startswith("-"):
        s = s[1:]
    return s


_ESC = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
        "\r": "\\r", "\t": "\\t"}
_ESC_RE = re.compile(r'[\x00-\x1f"\\]')


def _esc(m):
    c = m.group(0)
    return _ESC.get(c) or "\\u%04x" % ord(c)


def str_canon(s):
    """escape_json: quote, backslash, \\b\\f\\n\\r\\t, other bytes below 0x20 as \\u00xx."""
    return '"' + _ESC_RE.sub(_esc, s) + '"'


def key_order(k):
    b = k.encode()
    return (len(b), b)


def canon(v):
    """The canonical text of a value (jsonb's output)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, Num):
        return num_canon(v.text)
    if isinstance(v, str):
        return str_canon(v)
    if isinstance(v, list):
        return "[" + ", ".join(canon(x) for x in v) + "]"
    if isinstance(v, Raw):
        return v.canon
    d = {}
    for k, x in v.pairs:
        d[k] = x
    return "{" + ", ".join(str_canon(k) + ": " + canon(d[k])
                           for k in sorted(d, key=key_order)) + "}"


def render_str(s, r, fancy):
    """A JSON string literal for s; fancy ones escape some characters anyway."""
    if not fancy or len(s) > 64:
        return json.dumps(s, ensure_ascii=False)
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in _ESC:
            out.append(_ESC[ch] if r.random() < 0.8 else "\\u%04X" % o)
        elif o < 0x20:
            out.append("\\u%04x" % o)
        elif ch == "/" and r.random() < 0.5:
            out.append("\\/")
        elif r.random() < 0.15:
            if o > 0xFFFF:
                o -= 0x10000
                out.append("\\u%04x\\u%04X" % (0xD800 + (o >> 10), 0xDC00 + (o & 0x3FF)))
            else:
                out.append(("\\u%04x" if r.random() < 0.5 else "\\u%04X") % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


WS = [" ", "\t", "\n", "\r", "  "]


def render(v, r, fancy=None):
    """Some valid JSON text of v: a third of them with random white space
    and escapes, the rest plain."""
    if fancy is None:
        fancy = r.random() < 0.33
    ws = (lambda: r.choice(WS) if r.random() < 0.15 else "") if fancy else (lambda: "")
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, Num):
        return v.text
    if isinstance(v, str):
        return render_str(v, r, fancy)
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, list):
        return "[" + ws() + ("," + ws()).join(render(x, r, fancy) + ws() for x in v) + "]"
    return "{" + ws() + ("," + ws()).join(
        render_str(k, r, fancy) + ws() + ":" + ws() + render(x, r, fancy) + ws()
        for k, x in v.pairs) + "}"


def render_fast(v):
    """Plain JSON text of v, for large values."""
    return render(v, None, False)


# --------------------------------------------------------------------------
# Validation rules of the contract, written independently of the C code
# --------------------------------------------------------------------------

ISO_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
                    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?"
                    r"(?:[Zz]|[+-]([0-9]{2})(?::?([0-9]{2}))?)?)?")


def iso_valid(s):
    """The ISO-8601 forms docs/reference.md documents for timestamps."""
    m = ISO_RE.fullmatch(s)
    if not m:
        return False
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not 1 <= mo <= 12:
        return False
    leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
    mdays = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    if not 1 <= d <= mdays[mo - 1]:
        return False
    if m.group(4) is not None:
        if int(m.group(4)) > 23 or int(m.group(5)) > 59:
            return False
        if m.group(6) is not None and int(m.group(6)) > 60:   # leap second
            return False
        if m.group(8) is not None and int(m.group(8)) > 23:
            return False
        if m.group(9) is not None and int(m.group(9)) > 59:
            return False
    return True


def ts_valid(v):
    """A number finite as a double (1e400 is not: 22023), or a valid ISO-8601 string."""
    if isinstance(v, Num):
        return math.isfinite(float(v.text))
    return isinstance(v, str) and iso_valid(v)


def message_faults(arr, null_ts_ok=False):
    """22023 if arr is not a valid message array (contract: Message objects).
    null_ts_ok: import_app_state takes a null created_at/updated_at as missing."""
    if not isinstance(arr, list):
        return ["22023"]
    seen = set()
    for m in arr:
        if not isinstance(m, Obj):
            return ["22023"]
        mid = m.get("id", KeyError)
        if not isinstance(mid, str) or not 1 <= len(mid.encode()) <= 255 or mid in seen:
            return ["22023"]
        seen.add(mid)
        for f in ("created_at", "updated_at"):
            if m.has(f) and not ts_valid(m.get(f)) and not (null_ts_ok and m.get(f) is None):
                return ["22023"]
        if m.has("deleted") and m.get("deleted") not in (True, False):
            return ["22023"]
    return []


def uniq(pairs):
    """The pairs of an object without repeated keys, each with the value jsonb keeps (the last)."""
    d = {}
    for k, v in pairs:
        d.pop(k, None)
        d[k] = v
    return list(d.items())


UUID_RE = re.compile(r"[0-9a-fA-F]{4}(?:-?[0-9a-fA-F]{4}){7}")


def uuid_norm(s):
    """uuid_in's accepted forms (hex in groups of four, optional hyphens and
    braces) as the canonical text, or None."""
    if s.startswith("{"):
        if not s.endswith("}"):
            return None
        s = s[1:-1]
    if not UUID_RE.fullmatch(s):
        return None
    h = s.replace("-", "").lower()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


# --------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------

USERS = ["0b9c2d1e-0000-4000-8000-%012x" % i for i in range(1, 6)]
CLIENT_USER = USERS[0]
HUGE_USER = "0b9c2d1e-0000-4000-8000-00000000ffff"      # the big inputs: no other case reads its rows
INT64_MAX = 2 ** 63 - 1

CONV_IDS = (["c%d" % i for i in range(6)] +
            ["x" * 255, "é" * 127 + "a", "ü", " ", "a/b\\c", "😀" * 63 + "abc",
             "Ω\u2028\ufeff"])
BAD_CONV_IDS = ["", "x" * 256, "é" * 128, "😀" * 64, "é" * 127 + "ab"]

SAMPLE_CHARS = ("abcxyz ABC019 -_.,:;!?'\"\\/\t\n\r\b\f\x01\x1f\x7f"
                "éüßΩж中文😀\U0010ffff\uffff\u2028\u2029\ufeff\u00a0")

EXTREME_NUMBERS = ["0", "-0", "-0.0", "1", "-1", "1.0", "1.00", "1e3", "1E+2", "1.50e1",
                   "100e-2", "0.5", "1e1000", "-1e1000", "1e-1000", "1e-16383",
                   "1e100000", "123456789012345678901234567890",
                   "-9223372036854775808", "9223372036854775807", "18446744073709551616",
                   "3.141592653589793238462643383279", "1732400000000", "1732400000000.5",
                   "1e308", "1e309", "-1e309", "4.9e-324", "2e-400"]
# created_at/updated_at must be finite as a double: the others are 22023
FINITE_NUMBERS = [n for n in EXTREME_NUMBERS if math.isfinite(float(n))]
INFINITE_NUMBERS = [n for n in EXTREME_NUMBERS if not math.isfinite(float(n))] + ["1e400", "-1e400", "1.8e308"]
BAD_NUMBERS = ["1e200000", "-1e140000", "1e-17000", "0e-20000"]     # 22003 in numeric_in

VALID_ISO = ["2024-11-23", "2024-11-23T22:13:20Z", "2024-11-23t22:13:20z", "2024-11-23 22:13",
             "2024-11-23T22:13:20.5+01:00", "2024-11-23T22:13:20,123456789123-0530",
             "2024-02-29T00:00:60Z", "0000-01-01T00:00:00+23:59", "9999-12-31T23:59:59.999999999",
             "2000-02-29T12:00+05", "1970-01-01T00:00:00.000Z", "2024-11-23T22:13-0000"]
BAD_ISO = ["2023-02-29", "2024-02-30", "2024-13-01", "2024-00-10", "2024-11-23T24:00:00Z",
           "2024-11-23T22:60", "2024-11-23T22:13:61", "2024-11-23T22:13:20+24:00",
           "2024-11-23T22:13:20+01:60", "2024-1-01", "24-11-23", "2024-11-23T", "2024-11-23Z",
           "2024-11-23T22", "2024-11-23T22:13:20.", "2024-11-23T22:13:20+1", "now",
           "yesterday", "", " 2024-11-23", "2024-11-23 ", "2024-11-23T22:13:20Zjunk",
           "２０２４-11-23", "2024-11-23T22:13:20+01:0x", "NaN", "Infinity", "1732400000000",
           "2024-11-23T22:13:20++01"]
# Claims settings (request.jwt.claims): the text and what current_user_id() gives
GOOD_UUID_FORMS = [USERS[1], USERS[1].upper(), USERS[1].replace("-", ""),
                   "{" + USERS[1] + "}", "0b9c-2d1e-0000-4000-8000-0000-0000-0002"]
BAD_UUID_FORMS = ["ana", "", " " + USERS[1], USERS[1] + " ", USERS[1][:-1], USERS[1] + "0",
                  "{" + USERS[1], USERS[1] + "}", "0b9c2d1e-0000-4000-8000--00000000002",
                  "-" + USERS[1].replace("-", ""), "0b9c2d1e0-000-4000-8000-000000000002",
                  "g" * 32, "x" * 5000, "０b9c2d1e-0000-4000-8000-000000000002"]


def claims_palette():
    """(claims text, expected identity or ('error', sqlstate), or None to fall through)"""
    u = USERS[1]
    out = []
    for form in GOOD_UUID_FORMS:
        out.append(('{"sub": %s, "role": "authenticated"}' % json.dumps(form), uuid_norm(form)))
    out += [
        ('{"sub": "%s"}' % u, u),
        ('{"role": "anon"}', None),
        ('{"sub": null}', None),
        ('{"sub": ""}', None),
        ('{}', None),
        ('{"sub": "bad", "sub": "%s"}' % u, u),                 # jsonb keeps the last
        ('{"\\u0073ub": "%s"}' % u, u),                         # an escaped key
        ('{"sub": "%s", "aud": [1, {"x": [true, null]}]}' % u, u),
        ('{"sub": "%s", "nested": %s}' % (u, "[" * 50 + "]" * 50), u),
        ('{"sub": 42}', ("error", "22023")),
        ('{"sub": {"id": "%s"}}' % u, ("error", "22023")),
        ('{"sub": true}', ("error", "22023")),
        ('{"sub": ["%s"]}' % u, ("error", "22023")),
        ('{"sub": "ana"}', ("error", "22023")),
        ('{"sub": " %s"}' % u, ("error", "22023")),
        ('[{"sub": "%s"}]' % u, ("error", "22023")),
        ('"%s"' % u, ("error", "22023")),
        ('42', ("error", "22023")),
        ('null', ("error", "22023")),
        ('{', ("error", "22023")),
        ('{"sub": "%s"' % u, ("error", "22023")),
        ('{"sub": "%s",}' % u, ("error", "22023")),
        ("{'sub': '%s'}" % u, ("error", "22023")),
        ('{"sub": "%s"} trailing' % u, ("error", "22023")),
        ('not json', ("error", "22023")),
        # valid JSON text that jsonb cannot hold: still a malformed claim, 22023
        ('{"sub": "%s", "x": "\\u0000"}' % u, ("error", "22023")),
        ('{"sub": "\\u0000"}', ("error", "22023")),
        ('{"sub": "%s", "x": "\\ud800"}' % u, ("error", "22023")),
        ('{"sub": "\\udc00\\ud800"}', ("error", "22023")),
        ('{"x": "\\x41"}', ("error", "22023")),
        ('{"x": "tab\there"}', ("error", "22023")),
        # a number numeric cannot hold is still a JSON number; sub is fine
        ('{"sub": "%s", "exp": 1e200000}' % u, u),
    ]
    return out


CLAIMS = claims_palette()


class Case:
    """One generated input: the statement and its arguments, the settings,
    and what the oracle expects (expect(info) -> set of outcomes)."""

    def __init__(self, fn):
        self.fn = fn
        self.items = []
        self.counts = {"uuid": 0, "text": 0, "jsonb": 0, "int8": 0, "bool": 0}
        self.stmt = None
        self.settings = []
        self.as_client = False
        self.meta = {}
        self.faults = []          # SQLSTATEs the broken input must raise (any of them)
        self.parse = None         # 'parse:SQLSTATE' when an argument is not valid input text
        self.expect_fn = None     # state-dependent expectation for valid input
        self.note = []            # what was generated, for the report
        self.checks = []          # extra Python checks: callables(case, result) -> list
        self.limits_lowered = False
        self.msg_counts = {}      # jsonb argument index -> message count (for limits)
        self.u = None             # the conversation's user
        self.ct = None            # checksum: the predicted canonical text

    TYPE_POS = {"uuid": 1, "text": 2, "jsonb": 3, "int8": 4, "bool": 5}

    def arg(self, typ, val, parse=None):
        """Add an argument; val is str, bytes or None.  parse: the SQLSTATE
        PostgreSQL's input function raises for it, if it is not valid."""
        self.counts[typ] += 1
        if isinstance(val, str):
            val = val.encode("utf-8")
        self.items.append((typ, val))
        if parse and self.parse is None:
            self.parse = "parse:" + parse
        return "$%d[%d]" % (self.TYPE_POS[typ], self.counts[typ])

    def setting(self, name, value):
        self.settings += [name, str(value)]

    def over(self, info):
        """Is a message-array argument over chatpersist.max_messages or
        max_conversation_bytes (its jsonb size, measured by the driver)?"""
        return any(n > info["max_messages"] or info["argbytes"][i - 1] > info["max_bytes"]
                   for i, n in self.msg_counts.items())

    def input_faults(self, info):
        """What the input alone makes the call raise (any of them), or an empty set."""
        return set(self.faults) | ({"54000"} if self.over(info) else set())

    def write_outcomes(self, info, u, over_limits):
        """The outcomes of a sound call that writes user u's conversations:
        as a client for another user 42501 (the guard trigger runs before
        the policy's WITH CHECK), else ok, or 54000 when the result may be
        over a limit; 22003 too when the version is at its top."""
        top = {"22003"} if at_top(info) else set()
        if self.as_client and self.meta.get("client_user") != u:
            return {"42501"} | top
        return {"ok"} | ({"54000"} if over_limits else set()) | top

    def expected(self, info):
        if self.parse:
            return {self.parse}
        if self.expect_fn:
            return self.expect_fn(info)
        return self.input_faults(info) or {"ok"}


class Generator:
    def __init__(self, seed, breaks=None):
        self.r = random.Random(seed)
        self.breaks = breaks or set()
        # the message arrays last sent for each conversation (a device's view):
        # the source of structure-aware mutations
        self.shadow = {}
        self.next_mid = 0

    # ---- values ------------------------------------------------------

    def string(self, maxlen=40):
        r = self.r
        k = r.random()
        if k < 0.5:
            return "".join(r.choice("abcdefghij klmnop") for _ in range(r.randint(0, maxlen)))
        if k < 0.95:
            return "".join(r.choice(SAMPLE_CHARS) for _ in range(r.randint(0, maxlen)))
        return r.choice(["\\u0000", "\\ud800", "null", "true", "{}", "[]", "'", "\"\"", "\\"])

    def number(self):
        r = self.r
        k = r.random()
        if k < 0.4:
            return Num(str(r.randint(-10 ** 6, 10 ** 15)))
        if k < 0.6:
            return Num(repr(r.uniform(-1e6, 1e6)))
        return Num(r.choice(EXTREME_NUMBERS))

    def value(self, depth=3):
        r = self.r
        k = r.random()
        if depth <= 0 or k < 0.5:
            return r.choice([None, True, False, self.number(), self.string(), self.number(), self.string()])
        if k < 0.75:
            return [self.value(depth - 1) for _ in range(r.randint(0, 4))]
        return Obj([(self.string(8), self.value(depth - 1)) for _ in range(r.randint(0, 4))])

    def timestamp(self):
        r = self.r
        k = r.random()
        if k < 0.45:
            return Num(str(1732400000000 + r.randint(-10 ** 6, 10 ** 6)))
        if k < 0.75:
            return r.choice(VALID_ISO)
        if k < 0.9:
            return Num(r.choice(FINITE_NUMBERS))
        return Num(repr(r.uniform(0, 2e12)))

    def new_id(self):
        r = self.r
        self.next_mid += 1
        k = r.random()
        if k < 0.9:
            return "m%d" % self.next_mid
        if k < 0.93:
            return ("x" * 255)[:255 - len(str(self.next_mid))] + str(self.next_mid)
        if k < 0.96:
            n = str(self.next_mid)
            return "é" * ((255 - len(n)) // 2) + n            # 254 or 255 bytes
        return "%s%d" % (r.choice(["ü", "中", "😀", " ", "\"", "\\", "\n", "\u2028"]), self.next_mid)

    def message(self, mid=None):
        r = self.r
        pairs = [("id", mid or self.new_id())]
        if r.random() < 0.7:
            pairs.append(("role", r.choice(["user", "assistant", "system", self.string(8)])))
        if r.random() < 0.85:
            pairs.append(("content", self.string()))
        if r.random() < 0.6:
            pairs.append(("created_at", self.timestamp()))
        if r.random() < 0.4:
            pairs.append(("updated_at", self.timestamp()))
        if r.random() < 0.15:
            pairs.append(("deleted", r.random() < 0.5))
        if r.random() < 0.2:
            extra = self.string(10)
            if extra not in ("id", "created_at", "updated_at", "deleted", "role", "content"):
                pairs.append((extra, self.value()))       # any other field is kept as it is
        r.shuffle(pairs)
        return Obj(pairs)

    def edit(self, m):
        """A changed copy of a message (same id).  Its keys are made unique
        first: reordering repeated keys would change which one jsonb keeps."""
        r = self.r
        pairs = [(k, v) for k, v in uniq(m.pairs) if k != "content" or r.random() < 0.3]
        pairs.append(("content", self.string()))
        if r.random() < 0.6:
            pairs = [(k, v) for k, v in pairs if k != "updated_at"] + [("updated_at", self.timestamp())]
        if r.random() < 0.1:
            pairs = [(k, v) for k, v in pairs if k != "deleted"] + [("deleted", True)]
        r.shuffle(pairs)
        return Obj(pairs)

    def messages(self, n=None):
        r = self.r
        if n is None:
            n = r.choice([0, 1, 1, 2, 3, 3, 4, 5, 8, 12, 20])
        return [self.message() for _ in range(n)]

    def device_view(self, key):
        """What a device would send next for a conversation: its last view,
        edited (structure-aware mutations that keep it valid)."""
        r = self.r
        base = self.shadow.get(key)
        if base is None or r.random() < 0.1:
            return self.messages()
        arr = list(base)
        if len(arr) > 30:
            i = r.randrange(len(arr) - 20)
            del arr[i:i + 20]                 # conversations do not grow without bound
        for _ in range(r.randint(0, 3)):
            op = r.random()
            if op < 0.35:
                arr.insert(r.randint(0, len(arr)), self.message())
            elif op < 0.55 and arr:
                i = r.randrange(len(arr))
                arr[i] = self.edit(arr[i])
            elif op < 0.7 and arr:
                del arr[r.randrange(len(arr))]
            elif op < 0.8 and len(arr) > 1:
                i, j = r.randrange(len(arr)), r.randrange(len(arr))
                arr[i], arr[j] = arr[j], arr[i]
            elif op < 0.9:
                other = self.shadow.get(r.choice(list(self.shadow)))
                if other:
                    ids = {m.get("id") for m in arr}
                    arr += [m for m in other[: r.randint(0, 3)] if m.get("id") not in ids]
        return arr

    # ---- faults ------------------------------------------------------

    def break_messages(self, arr):
        """A structure-aware mutation that makes arr invalid: returns the new
        value and a description.  The contract's SQLSTATE is 22023."""
        r = self.r
        arr = list(arr) or [self.message()]
        i = r.randrange(len(arr))
        m = arr[i]
        kind = r.choice(["dup", "noid", "idtype", "idempty", "id256", "id256mb", "ts", "tsiso",
                         "tsinf", "deleted", "notobj", "notarray", "dupkey"])
        pairs = [(k, v) for k, v in m.pairs]
        if kind == "dup":
            if len(arr) < 2:
                arr.append(self.message(m.get("id")))
            else:
                j = (i + 1) % len(arr)
                arr[j] = Obj([(k, v) for k, v in arr[j].pairs if k != "id"] + [("id", m.get("id"))])
        elif kind == "noid":
            arr[i] = Obj([(k, v) for k, v in pairs if k != "id"])
        elif kind == "idtype":
            arr[i] = Obj([(k, v) for k, v in pairs if k != "id"] +
                         [("id", r.choice([Num("1"), None, True, [], Obj([("id", "a")]), ["m1"]]))])
        elif kind == "idempty":
            arr[i] = Obj([(k, v) for k, v in pairs if k != "id"] + [("id", "")])
        elif kind == "id256":
            arr[i] = Obj([(k, v) for k, v in pairs if k != "id"] + [("id", "y" * 256)])
        elif kind == "id256mb":
            arr[i] = Obj([(k, v) for k, v in pairs if k != "id"] + [("id", r.choice(["é" * 128, "😀" * 64, "中" * 85 + "a"]))])
        elif kind in ("ts", "tsiso", "tsinf"):
            f = r.choice(["created_at", "updated_at"])
            bad = r.choice(BAD_ISO) if kind == "tsiso" else Num(r.choice(INFINITE_NUMBERS)) if kind == "tsinf" else r.choice(
                [None, True, False, [], Obj([]), [Num("1")], Obj([("ms", Num("1"))])])
            arr[i] = Obj([(k, v) for k, v in pairs if k != f] + [(f, bad)])
        elif kind == "deleted":
            arr[i] = Obj([(k, v) for k, v in pairs if k != "deleted"] +
                         [("deleted", r.choice(["true", Num("1"), Num("0"), None, "false", [], Obj([])]))])
        elif kind == "notobj":
            arr[i] = r.choice([Num("1"), "m1", None, True, [], [Obj([("id", "a")])]])
        elif kind == "notarray":
            return r.choice([Obj([("id", "m1")]), Obj([]), Num("0"), "[]", None, True,
                             Obj([("messages", arr)])]), kind
        elif kind == "dupkey":
            # {"id": "ok", ..., "id": <bad>}: jsonb keeps the last one
            arr[i] = Obj(pairs + [("id", r.choice([Num("7"), "", None]))])
        return arr, kind

    def parse_fault(self, text):
        """Make a JSON text invalid for jsonb_in; returns (text or bytes, SQLSTATE)."""
        r = self.r
        kind = r.random()
        if kind < 0.12 and text[:1] in "[{":
            # a strict prefix of an array or object text is never valid JSON
            return text[: r.randint(0, max(0, len(text) - 1))], "22P02"
        if kind < 0.22:
            return r.choice(["[1,]", "{\"a\":1,}", "{'id':'m1'}", "[NaN]", "[Infinity]", "[-]",
                             "[01]", "[1.]", "[.5]", "[+1]", "{id: 1}", "[] []", "[/* c */]",
                             "[\"\\x41\"]", "[\"\\u12\"]", "[\"\\uZZZZ\"]", "[\"a\tb\"]",
                             "[\"a\nb\"]", "[undefined]", "[True]", "", " ", "[\"\\\"]",
                             "[1e]", "[1e+]", "[\"\\'\"]"]), "22P02"
        if kind < 0.35:
            return r.choice(["[\"\\ud800\"]", "[\"\\udc00\"]", "[\"\\ud800\\u0041\"]",
                             "[{\"id\": \"\\ude00\\ud83d\"}]", "[\"\\uD83D\"]",
                             "{\"k\\udfff\": 1}"]), "22P02"                                  # lone surrogates
        if kind < 0.45:
            return r.choice(["[\"\\u0000\"]", "[{\"id\": \"m\\u0000\"}]", "{\"\\u0000\": 1}",
                             "[{\"id\": \"m1\", \"content\": \"a\\u0000b\"}]"]), "22P05"
        if kind < 0.6:
            b = text.encode()
            pos = r.randint(0, len(b))
            bad = r.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
                            b"\xc0\xaf", b"\x80", b"\xf4\x90\x80\x80"])
            if r.random() < 0.7 and b'"' in b:
                # inside a string, where a client would put text
                q = b.index(b'"')
                pos = q + 1
            return b[:pos] + bad + b[pos:], "22021"
        if kind < 0.7:
            d = r.choice([15000, 20000, 100000])
            return "[" * d + "]" * d, "54001"
        if kind < 0.8:
            return "[%s]" % r.choice(BAD_NUMBERS), "22003"
        if kind < 0.9:
            return '[{"id": "m1", "n": 1e200000}]', "22003"
        return text + r.choice([",", "]", "}", " x", "\x00"[:0] + "{"]), "22P02"

    # ---- cases ---------------------------------------------------------

    def key(self):
        r = self.r
        return r.choice(USERS), r.choice(CONV_IDS)

    def limits(self, case, arr_len):
        """Sometimes lower the limits to around the given array's size."""
        r = self.r
        if r.random() < 0.12:
            case.limits_lowered = True
            if r.random() < 0.6:
                case.setting("chatpersist.max_messages", max(0, arr_len + r.choice([-1, 0, 1, -2, 5])))
            else:
                case.setting("chatpersist.max_conversation_bytes", r.choice([1024, 1500, 2048, 4096, 16384]))
        if r.random() < 0.08:
            case.setting("chatpersist.history_depth", r.choice([0, 1, 2, 3, 100000]))

    def jsonb_messages(self, case, arr, key=None, allow_break=True, argname="messages"):
        """Add a message-array argument, maybe broken; records the fault."""
        r = self.r
        k = r.random()
        if allow_break and k < 0.12:
            arr, kind = self.break_messages(arr)
            case.faults.append("22023")
            case.note.append("broken %s: %s" % (argname, kind))
            if isinstance(arr, list):
                case.msg_counts[case.counts["jsonb"] + 1] = len(arr)
            return case.arg("jsonb", render(arr, r))
        if allow_break and k < 0.2:
            text, st = self.parse_fault(render(arr, r))
            case.note.append("%s not valid jsonb text (%s)" % (argname, st))
            return case.arg("jsonb", text, parse=st)
        if key is not None and not message_faults(arr):
            self.shadow[key] = arr
        idx = case.counts["jsonb"] + 1
        case.msg_counts[idx] = len(arr)
        text = render(arr, r) if len(arr) < 200 else render_fast(arr)
        return case.arg("jsonb", text)

    def conv_id(self, case, cid, null_fault="22004"):
        r = self.r
        k = r.random()
        if k < 0.015:
            case.faults.append(null_fault)
            case.note.append("NULL conversation id")
            return case.arg("text", None), None
        if k < 0.04:
            bad = r.choice(BAD_CONV_IDS)
            case.faults.append("22023")
            case.note.append("conversation id of %d bytes" % len(bad.encode()))
            return case.arg("text", bad), bad
        if k < 0.05:
            b = r.choice([b"c\xff", b"\xc3", b"\xed\xa0\x80x", b"ok\x80"])
            case.note.append("conversation id not UTF-8")
            return case.arg("text", b, parse="22021"), None
        return case.arg("text", cid), cid

    def user(self, case, u, nullable=True):
        r = self.r
        k = r.random()
        if nullable and k < 0.03:
            case.faults.append("22004")
            case.note.append("NULL user")
            return case.arg("uuid", None)
        if k < 0.045:
            case.note.append("malformed uuid")
            return case.arg("uuid", r.choice(["ana", "", USERS[0][:-1], USERS[0] + "0", "{" + USERS[0]]),
                            parse="22P02")
        return case.arg("uuid", r.choice([u, u, u, u.upper(), "{%s}" % u]))

    def gen_case(self):
        r = self.r
        fn = r.choices(
            ["save", "append", "delete", "restore", "load_one", "load_all", "changes", "history",
             "checksum", "merge2", "merge3", "stats", "whoami", "import", "migrate",
             "sql_insert", "sql_update", "sql_delete", "sql_upsert",
             "sql_minsert", "sql_mupdate", "sql_mdelete", "client", "delta"],
            weights=[22, 9, 3, 4, 3, 2, 2, 2, 10, 8, 6, 1, 5, 3, 1, 4, 5, 1, 2, 6, 5, 2, 4, 3])[0]
        return getattr(self, "case_" + fn)()

    # save_conversation, every argument combination
    def case_save(self, client=None):
        r = self.r
        c = Case("save")
        u, cid = self.key()
        if client is not None:
            u = client
        c.u = u
        c.note.append("key %s/%r" % (u, cid[:20]))
        pu = self.user(c, u)
        pc, cid = self.conv_id(c, cid)
        title = r.choice([None, "Title", "", self.string(), "t" * r.choice([300, 10000])])
        pt = c.arg("text", title)
        msgs = self.device_view((u, cid))
        if r.random() < 0.04:
            pm = c.arg("jsonb", None)
            c.faults.append("22004")
            c.note.append("NULL messages")
        else:
            pm = self.jsonb_messages(c, msgs, (u, cid))
        # metadata: j[2]
        mk = r.random()
        meta = None
        if mk < 0.5:
            meta = None
        elif mk < 0.9:
            meta = render(Obj([(self.string(6), self.value(2)) for _ in range(r.randint(0, 3))]), r)
        else:
            meta = render(r.choice([[], [Num("1")], Num("1"), "obj", None, True]), r)
            c.faults.append("22023")
            c.note.append("metadata not an object")
        pmeta = c.arg("jsonb", meta)
        force = r.choice([None, "true", "false", "false", "false"])
        pf = c.arg("bool", force)
        ev = r.choice([None, None, "cur", "cur", "cur-1", "cur-2", "cur+1", "hmin", "hmax", "0", "-1",
                       str(INT64_MAX), str(-2 ** 63), "cur-5"])
        pe = c.arg("int8", ev)
        self.limits(c, len(msgs))
        # the call: positional or named, with or without the optional arguments
        opt = []
        if force is not None or r.random() < 0.3:
            opt.append(("p_force_overwrite", pf))
        if ev is not None or r.random() < 0.3:
            opt.append(("p_expected_version", pe))
        if meta is not None or r.random() < 0.3:
            opt.append(("p_metadata", pmeta))
        req = [("p_user_id", pu), ("p_conversation_id", pc), ("p_title", pt), ("p_messages", pm)]
        style = r.random()
        if style < 0.4:
            # positional, every argument up to the last one given
            order = [pu, pc, pt, pm, pf, pe, pmeta]
            last = 4 + max([["p_force_overwrite", "p_expected_version", "p_metadata"].index(n) + 1
                            for n, _ in opt] or [0])
            call = ", ".join(order[:last])
        elif style < 0.7:
            allargs = req + opt
            r.shuffle(allargs)
            call = ", ".join("%s := %s" % a for a in allargs)
        else:
            call = ", ".join(p for _, p in req) + "".join(", %s => %s" % a for a in opt)
        c.stmt = "SELECT row_to_json(r)::text FROM chatpersist.save_conversation(%s) r" % call
        c.meta = {"force": force == "true"}

        def expect(info, c=c):
            pre = info.get("pre")
            # a merged result over the limits: verified by a rerun
            return c.input_faults(info) or c.write_outcomes(
                info, u, c.limits_lowered or bool(pre and pre["count"] + len(msgs) > 50000))
        c.expect_fn = expect
        c.checks.append(check_status)
        return c

    def case_append(self, client=None):
        r = self.r
        c = Case("append")
        u, cid = self.key()
        if client is not None:
            u = client
        c.u = u
        pu = self.user(c, u)
        pc, cid = self.conv_id(c, cid)
        view = self.shadow.get((u, cid), [])
        given = []
        for _ in range(r.choice([0, 1, 1, 1, 2, 3])):
            if view and r.random() < 0.3:
                given.append(self.edit(r.choice(view)))
            else:
                given.append(self.message())
        ids = set()
        given = [m for m in given if not (m.get("id") in ids or ids.add(m.get("id")))]
        if r.random() < 0.04:
            pm = c.arg("jsonb", None)
            c.faults.append("22004")
        else:
            pm = self.jsonb_messages(c, given)
            if not c.faults and not c.parse:
                merged = {m.get("id"): m for m in view}
                merged.update({m.get("id"): m for m in given})
                self.shadow[(u, cid)] = [merged[m.get("id")] for m in view] + \
                    [m for m in given if m.get("id") not in {x.get("id") for x in view}]
        ev = r.choice([None, None, None, "cur", "cur-1", "cur-3", "cur+1", "hmin", "0", "-5"])
        pe = c.arg("int8", ev)
        self.limits(c, len(given))
        if ev is None and r.random() < 0.5:
            c.stmt = "SELECT row_to_json(r)::text FROM chatpersist.append_messages(%s, %s, %s) r" % (pu, pc, pm)
        else:
            c.stmt = ("SELECT row_to_json(r)::text FROM chatpersist.append_messages("
                      "p_user_id => %s, p_conversation_id => %s, p_messages => %s, p_expected_version => %s) r"
                      % (pu, pc, pm, pe))

        def expect(info, c=c):
            return c.input_faults(info) or c.write_outcomes(info, u, c.limits_lowered)
        c.expect_fn = expect
        c.checks.append(check_status)
        return c

    def case_delete(self, client=None):
        r = self.r
        c = Case("delete")
        u, cid = self.key()
        if client is not None:
            u = client
        c.u = u
        pu = self.user(c, u)
        pc, cid = self.conv_id(c, cid)
        ev = r.choice([None, None, "cur", "cur-1", "cur+1", "0"])
        pe = c.arg("int8", ev)
        if ev is None and r.random() < 0.5:
            c.stmt = "SELECT row_to_json(r)::text FROM chatpersist.delete_conversation(%s, %s) r" % (pu, pc)
        else:
            c.stmt = "SELECT row_to_json(r)::text FROM chatpersist.delete_conversation(%s, %s, %s) r" % (pu, pc, pe)
        if r.random() < 0.5:
            self.shadow.pop((u, cid), None)

        def expect(info, c=c):
            pre = info.get("pre")
            bad = c.input_faults(info)
            if bad:
                return bad
            visible = not c.as_client or c.meta.get("client_user") == u
            if not pre or not visible or pre["deleted"]:
                return {"ok"}
            if info["i8"][0] is not None and info["i8"][0] != pre["version"]:
                return {"40001"}
            if at_top(info):
                return {"22003"}
            return {"ok"}
        c.expect_fn = expect
        c.checks.append(check_status)
        return c

    def case_restore(self):
        r = self.r
        c = Case("restore")
        u, cid = self.key()
        pu = self.user(c, u)
        pc, cid = self.conv_id(c, cid)
        v = r.choice(["hmin", "hmax", "hmax-1", "cur", "cur-1", "cur-2", "cur+1", "0", "-1", str(INT64_MAX), None])
        if v is None:
            c.faults.append("22004")
        pv = c.arg("int8", v)
        self.limits(c, 0)
        c.stmt = "SELECT row_to_json(r)::text FROM chatpersist.restore_version(%s, %s, %s) r" % (pu, pc, pv)

        def expect(info, c=c):
            pre = info.get("pre")
            bad = c.input_faults(info)
            if bad:
                return bad
            ver = info["i8"][0]
            ok = (pre and ver == pre["version"]) or ver in info["hist"]
            if not ok:
                return {"22023"}
            out = {"ok"}
            if c.limits_lowered:
                out.add("54000")
            if at_top(info):
                out.add("22003")
            return out
        c.expect_fn = expect
        c.checks.append(check_status)
        return c

    def case_load_one(self):
        c = Case("load_one")
        u, cid = self.key()
        pu = self.user(c, u)
        if self.r.random() < 0.03:
            pc = c.arg("text", None)
            c.faults.append("22004")
        else:
            # any text is a valid key to look up: an id over 255 bytes is simply no row
            pc = c.arg("text", self.r.choice([cid, cid, "x" * 256, "", "nope"]))
        c.stmt = ("SELECT coalesce(json_agg(json_build_object('id', r.id, 'version', r.version, "
                  "'checksum', r.checksum)), '[]')::text FROM chatpersist.load_conversation(%s, %s) r" % (pu, pc))
        return c

    def case_load_all(self):
        c = Case("load_all")
        pu = self.user(c, self.r.choice(USERS))
        c.stmt = ("SELECT coalesce(json_agg(json_build_object('id', r.id, 'version', r.version)), '[]')::text "
                  "FROM chatpersist.load_conversations(%s) r" % pu)
        return c

    def case_changes(self):
        r = self.r
        c = Case("changes")
        pu = self.user(c, r.choice(USERS))
        cur = r.choice([None, "0", "1", "-1", str(INT64_MAX), str(-2 ** 63), str(r.randint(1, 5000))])
        if cur is not None and int(cur) < 0:
            c.faults.append("22023")
        pcur = c.arg("int8", cur)
        if cur is None and r.random() < 0.5:
            call = "chatpersist.changes_since(%s)" % pu
            c.arg("int8", None)
        else:
            call = "chatpersist.changes_since(%s, %s)" % (pu, pcur)
        c.stmt = ("SELECT coalesce(json_agg(json_build_object('id', r.conversation_id, 'version', r.version, "
                  "'cursor', r.cursor)), '[]')::text FROM %s r" % call)
        return c

    def case_delta(self):
        """messages_since: the driver applies the answer to the array of the
        version asked for (history) and compares it with the rows."""
        r = self.r
        c = Case("delta")
        u, cid = self.key()
        pu = self.user(c, u)
        if r.random() < 0.03:
            pc = c.arg("text", None)
            c.faults.append("22004")
        else:
            pc = c.arg("text", r.choice([cid, cid, cid, "x" * 256, "nope"]))
        v = r.choice([None, "0", "1", "2", "-1", str(INT64_MAX), str(-2 ** 63),
                      str(r.randint(1, 40)), str(r.randint(1, 40))])
        if v is not None and int(v) < 0:
            c.faults.append("22023")
        pv = c.arg("int8", v)
        c.stmt = ("SELECT coalesce(json_agg(json_build_object('version', r.version, 'checksum', r.checksum, "
                  "'deleted', r.deleted, 'full', r.full_reload, 'changes', r.changes)), '[]')::text "
                  "FROM chatpersist.messages_since(%s, %s, %s) r" % (pu, pc, pv))
        return c

    def case_history(self):
        c = Case("history")
        u, cid = self.key()
        pu = self.user(c, u)
        if self.r.random() < 0.03:
            pc = c.arg("text", None)
            c.faults.append("22004")
        else:
            pc = c.arg("text", cid)
        c.stmt = ("SELECT coalesce(json_agg(json_build_object('version', r.version, 'checksum', r.checksum)), "
                  "'[]')::text FROM chatpersist.conversation_history(%s, %s) r" % (pu, pc))
        return c

    def case_checksum(self):
        r = self.r
        c = Case("checksum")
        k = r.random()
        if k < 0.03:
            p = c.arg("jsonb", None)
            c.faults.append("22004")
        elif k < 0.15:
            text, st = self.parse_fault(render(self.value(), r))
            p = c.arg("jsonb", text, parse=st)
        else:
            if k < 0.2:
                d = r.choice([1, 100, 5000, 12000])
                v = r.choice([Raw("[" * d + "]" * d, "[" * d + "]" * d),
                              Raw('{"a":' * d + "1" + "}" * d, '{"a": ' * d + "1" + "}" * d)])
            elif k < 0.23:
                # long strings: over the hashing buffer, and escapes across its edges
                n = r.choice([8191, 8192, 8193, 16385, 65536, 65537] * 20 + [10 ** 6, 4 * 10 ** 6])
                v = [r.choice(["a", "\"", "\n", "é", "😀", "\x01"]) * n]
            elif k < 0.3:
                v = self.messages(r.choice([0, 100, 1000]))
            elif k < 0.4:
                v = self.number()
            else:
                v = self.value(r.choice([1, 2, 3, 5]))
            if isinstance(v, Num) and num_fault(v.text):
                c.parse = "parse:" + num_fault(v.text)
            text = render(v, r) if not isinstance(v, list) or len(v) < 200 else render_fast(v)
            p = c.arg("jsonb", text)
            ct = canon(v)
            c.ct = ct
            c.checks.append(lambda case, res: check_checksum(res, case.ct))
        c.stmt = "SELECT chatpersist.checksum(%s)" % p
        return c

    def merge_pair(self):
        """base, a, b: two devices' edits of a common base."""
        r = self.r
        base = self.messages(r.choice([0, 1, 2, 4, 6, 10]))

        def side():
            arr = list(base)
            for _ in range(r.randint(0, 4)):
                op = r.random()
                if op < 0.35:
                    arr.insert(r.randint(0, len(arr)), self.message())
                elif op < 0.6 and arr:
                    i = r.randrange(len(arr))
                    arr[i] = self.edit(arr[i])
                elif op < 0.8 and arr:
                    del arr[r.randrange(len(arr))]
                elif op < 0.88 and len(arr) > 1:
                    i, j = r.randrange(len(arr)), r.randrange(len(arr))
                    arr[i], arr[j] = arr[j], arr[i]
                elif arr:
                    # the same edit on both sides happens too
                    i = r.randrange(len(arr))
                    arr[i] = Obj(list(reversed(uniq(arr[i].pairs))))
            return arr
        a, b = side(), side()
        if r.random() < 0.1:
            # both sides send the same new message id with different content
            mid = self.new_id()
            a.append(self.message(mid))
            b.insert(0, self.message(mid))
        if r.random() < 0.05:
            b = list(a)
        return base, a, b

    def case_merge2(self):
        return self.case_merge(False)

    def case_merge3(self):
        return self.case_merge(True)

    def case_merge(self, three):
        r = self.r
        c = Case("merge3" if three else "merge2")
        base, a, b = self.merge_pair()
        args = ([("p_base", base)] if three else []) + [("p_ours", a), ("p_theirs", b)]
        refs = []
        for name, arr in args:
            k = r.random()
            if k < 0.04 and name != "p_base":
                refs.append(c.arg("jsonb", None))
                c.faults.append("22004")
            elif k < 0.04:
                refs.append(c.arg("jsonb", None))     # a NULL base: two-way
                c.note.append("NULL base")
            else:
                refs.append(self.jsonb_messages(c, arr, argname=name))
        if r.random() < 0.1:
            c.limits_lowered = True
            c.setting("chatpersist.max_messages", max(0, max(len(a), len(b)) + r.choice([-1, 0])))
        if r.random() < 0.1:
            c.limits_lowered = True
            c.setting("chatpersist.max_conversation_bytes", r.choice([1024, 2048, 4096]))
        fn = "chatpersist.merge_messages(%s)" % ", ".join(refs)
        c.stmt = "SELECT %s::text" % fn

        # each argument is held to the limits (p_base too, unless NULL): the
        # default expectation, input_faults
        c.checks.append(check_merged_checksum)
        return c

    def case_stats(self):
        c = Case("stats")
        c.stmt = "SELECT json_agg(json_build_object('name', s.name, 'value', s.value))::text FROM chatpersist.stats() s"
        c.checks.append(check_stats)
        return c

    def case_whoami(self):
        r = self.r
        c = Case("whoami")
        uid = claims = sub = None
        k = r.random()
        if k < 0.3:
            uid = r.choice(GOOD_UUID_FORMS + BAD_UUID_FORMS + [""])
        if r.random() < 0.6:
            claims = r.choice(CLAIMS + [("", None)])
        if r.random() < 0.3:
            sub = r.choice(GOOD_UUID_FORMS + BAD_UUID_FORMS + [""])
        if uid is not None:
            c.setting("chatpersist.user_id", uid)
        if claims is not None:
            c.setting("request.jwt.claims", claims[0])
        if sub is not None:
            c.setting("request.jwt.claim.sub", sub)
        want = identity(uid, claims, sub)
        c.note.append("user_id=%r claims=%r claim.sub=%r" % (uid and uid[:60], claims and claims[0][:80], sub and sub[:60]))
        c.stmt = "SELECT chatpersist.current_user_id()::text"
        if isinstance(want, tuple):
            c.faults.append(want[1])
        else:
            c.checks.append(lambda case, res, want=want: [] if res["res"] == want else
                            ["current_user_id() is %r, expected %r" % (res["res"], want)])
        return c

    def case_client(self):
        """A call as a role under row-level security."""
        r = self.r
        sub = r.choice([self.case_save, self.case_append, self.case_delete, self.case_load_one,
                        self.case_load_all, self.case_history, self.case_delta, self.case_sql_update,
                        self.case_sql_insert, self.case_sql_minsert, self.case_sql_mupdate,
                        self.case_sql_mdelete])
        own = r.random() < 0.6
        c = sub(client=CLIENT_USER) if own and sub in (
            self.case_save, self.case_append, self.case_delete, self.case_sql_minsert,
            self.case_sql_mupdate, self.case_sql_mdelete) else sub()
        c.as_client = True
        k = r.random()
        if k < 0.8:
            c.setting("chatpersist.user_id", CLIENT_USER)
            c.meta["client_user"] = CLIENT_USER
        else:
            claims = r.choice(CLAIMS)
            c.setting("request.jwt.claims", claims[0])
            want = identity(None, claims, None)
            if isinstance(want, tuple):
                c.meta["client_user"] = None
                c.meta["identity_error"] = want[1]
            else:
                c.meta["client_user"] = want
        return c

    def case_import(self):
        r = self.r
        c = Case("import")
        u = r.choice(USERS)
        pu = self.user(c, u)
        convs = []
        fault = None
        for _ in range(r.randint(0, 4)):
            cid = r.choice(CONV_IDS)
            arr = self.device_view((u, cid))
            conv = [("messages", arr)]
            if r.random() < 0.5:
                conv.append(("title", r.choice(["T", "", self.string()])))
            if r.random() < 0.3:
                conv.append(("metadata", Obj([("k", self.value(1))])))
            if r.random() < 0.3:
                conv.append(("created_at", r.choice([Num("1732400000000"), "2024-11-23T22:13:20Z", Num("0")])))
            convs.append([cid, conv])
        shape = r.random()
        keyed = shape < 0.45
        k = r.random()
        if k < 0.25 and convs:
            # break the conversation jsonb keeps (an object keeps the last of repeated keys)
            i = r.randrange(len(convs))
            if keyed:
                i = max(x for x in range(len(convs)) if convs[x][0] == convs[i][0])
            what = r.choice(["title", "metadata", "messages", "created_at", "id", "msg", "conv"])
            if what == "title":
                convs[i][1].append(("title", r.choice([Num("1"), [], Obj([])])))
            elif what == "metadata":
                convs[i][1].append(("metadata", r.choice([[], Num("1"), "x"])))
            elif what == "messages":
                convs[i][1].append(("messages", r.choice([Obj([]), Num("1"), "[]", True])))
            elif what == "created_at":
                convs[i][1].append(("created_at", r.choice(["yesterday", True, [], Num("1e300"), Num("-1e300"),
                                                            "2023-02-29"])))
            elif what == "id":
                convs[i][0] = r.choice(BAD_CONV_IDS)
            elif what == "msg":
                arr, kind = self.break_messages(convs[i][1][0][1])
                convs[i][1][0] = ("messages", arr)
            else:
                convs[i][1] = Bad(r.choice([Num("1"), "conv", None, [], [Obj([("id", "m1")])]]))
            fault = what
            if what == "msg" and convs[i][1][0][1] is None:
                fault = None          # "messages": null means [] (docs/reference.md), no fault
            elif what == "msg" and not message_faults(convs[i][1][0][1], null_ts_ok=True):
                fault = None          # a null timestamp: import takes it as missing, no fault
            else:
                c.faults.append("22023")
        if keyed:
            state = Obj([("conversations", Obj([(cid, Obj(conv) if isinstance(conv, list) else conv.v)
                                                for cid, conv in convs])), ("theme", "dark")])
        elif shape < 0.8:
            state = Obj([("conversations", [Obj([("id", cid)] + conv) if isinstance(conv, list) else conv.v
                                            for cid, conv in convs])])
        elif shape < 0.95:
            state = [Obj([("id", cid)] + conv) if isinstance(conv, list) else conv.v for cid, conv in convs]
        else:
            state = r.choice([Obj([]), Obj([("conversations", "x")]), Num("1"), "s", Obj([("convs", [])])])
            c.faults.append("22023")
            fault = "shape"
        if not keyed and shape < 0.95:
            # an array may not list a conversation id twice
            ids = [cid for cid, conv in convs if isinstance(conv, list)]
            if len(set(ids)) < len(ids):
                c.faults.append("22023")
                fault = (fault + ", " if fault else "") + "a repeated conversation id"
        if fault:
            c.note.append("app_state broken: %s" % fault)
        # the conversations the import must leave with at least their message ids
        # (an object keeps the last of repeated keys; an array imports every entry)
        kept = ({cid: conv for cid, conv in convs}.items() if keyed else convs)
        expect_ids = {}
        copies = {}
        for cid, conv in kept:
            msgs = dict(conv).get("messages") if isinstance(conv, list) else None
            if isinstance(msgs, list) and not message_faults(msgs, null_ts_ok=True):
                expect_ids.setdefault(cid, set()).update(m.get("id") for m in msgs)
                # the import drops null timestamps: the stored copies lack them
                self.shadow[(u, cid)] = [Obj([(k, v) for k, v in m.pairs
                                              if not (k in ("created_at", "updated_at") and v is None)])
                                         for m in msgs]
                # ... which the driver checks against the rows' retry memory
                # (rendered with a random source of their own: the case's stays as it was)
                copies.setdefault(cid, []).extend(render(m, random.Random(0)) for m in self.shadow[(u, cid)])
        expect_ids = {k: sorted(v) for k, v in expect_ids.items()}
        if not c.faults:
            for cid, conv in convs:
                msgs = dict(conv).get("messages") if isinstance(conv, list) else None
                if isinstance(msgs, list) and message_faults(msgs, null_ts_ok=True):
                    c.faults.append("22023")
        if r.random() < 0.05:
            ps = c.arg("jsonb", None)
            c.faults.append("22004")
        else:
            ps = c.arg("jsonb", render(state, r))
        self.limits(c, max([len(dict(cv).get("messages") or []) for _, cv in convs
                            if isinstance(cv, list) and isinstance(dict(cv).get("messages"), list)] or [0]))
        c.meta = {"convs": expect_ids, "copies": {k: "[" + ", ".join(v) + "]" for k, v in copies.items()}}
        c.stmt = "SELECT chatpersist.import_app_state(%s, %s)::text" % (pu, ps)

        def expect(info, c=c):
            bad = c.input_faults(info)
            if bad:
                # conversations before the broken one may meet a lowered limit first
                return bad | ({"54000"} if c.limits_lowered else set()) | ({"22003"} if at_top(info) else set())
            return c.write_outcomes(info, u, c.limits_lowered)
        c.expect_fn = expect
        return c

    def case_migrate(self):
        r = self.r
        c = Case("migrate")
        a, b = r.sample(USERS, 2)
        if r.random() < 0.15:
            b = a
            c.faults.append("22023")
        pa = self.user(c, a)
        pb = self.user(c, b)
        self.limits(c, 10)
        c.stmt = "SELECT chatpersist.migrate_user(%s, %s)::text" % (pa, pb)
        for (uu, cid) in list(self.shadow):
            if uu == a and a != b:
                self.shadow[(b, cid)] = self.shadow.pop((uu, cid))
        c.expect_fn = lambda info, c=c: c.input_faults(info) or (
            ({"ok", "54000"} if c.limits_lowered else {"ok"}) | ({"22003"} if at_top(info) else set()))
        return c

    # ---- direct SQL through the guard trigger ------------------------

    def row_args(self, c, u, cid):
        """The column values of a direct write of a conversation (its head:
        2.0 keeps the messages in rows of their own), at fixed argument
        positions (the driver's checks rely on them): u[1] user_id, t[1] id,
        t[2] title, j[1] messages (a column 2.0 does not have: naming it is
        42703), j[2] metadata, i8[1] version, t[3] checksum, i8[2]
        message_count, bo[1] deleted, t[4] created_at, t[5] last_modified.
        Returns {column: (ref, value)} and, per column, the SQLSTATEs its
        value makes the guard trigger raise."""
        r = self.r
        cols = {}
        bad = collections.defaultdict(list)

        def faults_of(name, fn):
            before = len(c.faults)
            out = fn()
            bad[name] += c.faults[before:]
            del c.faults[before:]
            return out
        cols["user_id"] = (faults_of("user_id", lambda: self.user(c, u, nullable=False)), u)
        cols["id"] = faults_of("id", lambda: self.conv_id(c, cid, null_fault="23502"))
        title = r.choice(["T", "", self.string(), None if r.random() < 0.2 else "x"])
        cols["title"] = (c.arg("text", title), title)
        arr = self.device_view((u, cid))
        cols["messages"] = (c.arg("jsonb", render(arr, r) if len(arr) < 200 else render_fast(arr)), arr)
        if r.random() < 0.8:
            meta = render(Obj([("k", self.value(1))]), r)
        else:
            meta = render(r.choice([[], Num("2"), "m", None]), r)
            bad["metadata"].append("22023")
        cols["metadata"] = (c.arg("jsonb", meta), meta)
        ver = r.choice(["cur", "cur", "cur-1", "cur+1", "1", "42", str(INT64_MAX), "0", "-1",
                        "hmax", "hmax+1", None])
        cols["version"] = (c.arg("int8", ver), ver)
        # consistent: what a restore of the head carries.  Its messages are
        # rows of their own that this statement does not write: the head
        # alone is the dump of a conversation without messages
        consistent = r.random() < 0.5
        if consistent:
            cks = xxh3(canon([]).encode())
        else:
            cks = r.choice(["forged", "0000000000000000", "", None, "831154110e30ac6a",
                            xxh3(canon(arr).encode())])
        cols["checksum"] = (c.arg("text", cks), cks)
        cols["message_count"] = (c.arg("int8", "0" if consistent and r.random() < 0.7 else
                                        r.choice(["-1", "0", "99", str(2 ** 31 - 1)])), "n")
        dl = r.choice(["false", "false", "true", None])
        cols["deleted"] = (c.arg("bool", dl), dl)
        ca = r.choice(["2020-01-01T00:00:00Z", "epoch", None, "2020-01-01"])
        cols["created_at"] = (c.arg("text", ca), ca)
        lm = r.choice(["2020-01-01T00:00:00Z", None, "2999-01-01"])
        cols["last_modified"] = (c.arg("text", lm), lm)
        # NULL in a NOT NULL column the trigger does not compute
        for n in ("title", "deleted", "created_at"):
            if cols[n][1] is None:
                bad[n].append("23502")
        return cols, bad

    SQL_CASTS = {"user_id": "", "id": "", "title": "", "messages": "", "metadata": "", "version": "",
                 "checksum": "", "message_count": "::int4", "deleted": "", "created_at": "::timestamptz",
                 "last_modified": "::timestamptz"}

    def case_sql_insert(self, upsert=None, client=None):
        r = self.r
        c = Case("sql_upsert" if upsert else "sql_insert")
        u, cid = self.key()
        c.u = u
        cols, bad = self.row_args(c, u, cid)
        names = ["user_id", "id"] + [n for n in ["title", "metadata", "version", "checksum",
                                                 "message_count", "deleted", "created_at",
                                                 "last_modified"] if r.random() < 0.4]
        r.shuffle(names)
        sqlerr = None
        k = r.random()
        if k < 0.03:
            names.append("nonexistent")            # a bad column: PostgreSQL's 42703
            sqlerr = "42703"
        elif k < 0.05:
            names.append("messages")               # 2.0 has none: the messages are rows (42703)
            sqlerr = "42703"
        elif k < 0.07:
            if "metadata" not in names:
                names.append("metadata")
            sqlerr = "42804"                       # text into jsonb: 42804
        vals = [cols[n][0] + self.SQL_CASTS[n] if n in cols else "1" for n in names]
        if sqlerr == "42804":
            vals[names.index("metadata")] = cols["title"][0]
        stmt = "INSERT INTO chatpersist.conversations (%s) VALUES (%s)" % (", ".join(names), ", ".join(vals))
        if upsert == "nothing":
            stmt += " ON CONFLICT (user_id, id) DO NOTHING"
        elif upsert == "update":
            stmt += (" ON CONFLICT (user_id, id) DO UPDATE SET title = EXCLUDED.title, "
                     "metadata = EXCLUDED.metadata")
        c.stmt = ("WITH w AS (%s RETURNING version, checksum, message_count) "
                  "SELECT coalesce(json_agg(w), '[]')::text FROM w" % stmt)
        c.meta = {"cols": names, "upsert": upsert}
        self.limits(c, 0)
        trig = (set(bad["id"]) | (set(bad["metadata"]) if "metadata" in names else set())) - {"23502"}
        nulls = set(f for n in names for f in bad[n] if f == "23502")
        c.note.append("columns %s" % names)

        def expect(info, c=c):
            if sqlerr:
                return {sqlerr}
            pre = info.get("pre")
            visible = not c.as_client or c.meta.get("client_user") == u
            # the guard trigger validates first (the head has no messages:
            # none to hold to the limits); then row-level security's WITH
            # CHECK, the NOT NULL constraints, the primary key
            if trig:
                return trig
            # the trigger computes the next version before the constraints run
            top = {"22003"} if at_top(info) else set()
            if c.as_client and not visible:
                return {"42501"} | top
            if nulls:
                return nulls | top
            if pre and not upsert:
                return {"23505"} | top
            return {"ok"} | top
        c.expect_fn = expect
        return c

    def case_sql_upsert(self):
        return self.case_sql_insert(upsert=self.r.choice(["nothing", "update"]))

    def case_sql_update(self):
        r = self.r
        c = Case("sql_update")
        u, cid = self.key()
        c.u = u
        cols, bad = self.row_args(c, u, cid)
        names = [n for n in ["title", "metadata", "version", "checksum", "message_count",
                             "deleted", "created_at", "last_modified"] if r.random() < 0.35] or ["title"]
        # 2.0 has no messages column: the messages are rows (42703)
        nocol = r.random() < 0.03
        if nocol:
            names.append("messages")
        sets = ["%s = %s%s" % (n, cols[n][0], self.SQL_CASTS[n]) for n in names]
        newkey = r.random() < 0.04
        if newkey:
            sets.append("%s = %s" % r.choice([("id", c.arg("text", "moved")),
                                               ("user_id", c.arg("uuid", r.choice([x for x in USERS if x != u])))]))
        r.shuffle(sets)
        c.stmt = ("WITH w AS (UPDATE chatpersist.conversations SET %s "
                  "WHERE user_id = %s AND id = %s RETURNING version, checksum, message_count) "
                  "SELECT coalesce(json_agg(w), '[]')::text FROM w"
                  % (", ".join(sets), cols["user_id"][0], cols["id"][0]))
        c.meta = {"set": names}
        c.note.append("SET %s" % ", ".join(names))
        self.limits(c, 0)
        content = set(f for n in names if n in ("title", "metadata", "deleted") for f in bad[n])

        def expect(info, c=c):
            if nocol:
                return {"42703"}
            pre = info.get("pre")
            visible = not c.as_client or c.meta.get("client_user") == u
            if not pre or not visible:
                return {"ok"}                 # no row: the trigger never fires
            if newkey and pre["version"] is not None:
                return {"0A000"}
            # the stored version, or it plus one (ORMs' optimistic locking)
            if "version" in names and info["i8"][0] not in (pre["version"], pre["version"] + 1):
                return {"40001"}
            # content is validated only when it changed (invalid content always differs)
            out = set(content)
            if not out:
                out.add("ok")
            if at_top(info):
                out |= {"ok", "22003"}
            return out
        c.expect_fn = expect
        return c

    def case_sql_delete(self):
        c = Case("sql_delete")
        u, cid = self.key()
        pu = self.user(c, u, nullable=False)
        pc, cid = self.conv_id(c, cid)
        c.faults = []            # a DELETE of no row is no error, whatever the key
        c.stmt = ("WITH w AS (DELETE FROM chatpersist.conversations WHERE user_id = %s AND id = %s "
                  "RETURNING version) SELECT coalesce(json_agg(w), '[]')::text FROM w" % (pu, pc))
        self.shadow.pop((u, cid), None)
        return c

    # ---- direct SQL on message rows (chatpersist.messages, 2.0) --------
    #
    # A message row is written by INSERT (append, or at a given pos), UPDATE
    # (edit, move, remove with removed = true, bring back with removed =
    # false) and DELETE (forget); each row a statement changes is a version
    # of its own.  Arguments at fixed positions (the driver's checks rely on
    # them): u[1] user_id, t[1] conversation_id, j[1] the message (or, for
    # an INSERT of several rows, their array), t[2] the id column (INSERT)
    # or the id the WHERE clause names (UPDATE, DELETE), i8[1] pos, bo[1]
    # removed.  The driver gives the rows before the call in info["rows"]:
    # {id: [removed, md5 of the stored message's text, pos]}.
    #
    # Two messages of the array never share a pos: a row that would take
    # the pos of another live row of its conversation (an INSERT at a given
    # pos, a removed row brought back) is refused, 23505.  An INSERT of an
    # id that has a row already (that the caller can see) writes nothing in
    # the guard trigger: a plain INSERT then fails on the primary key
    # (23505, whatever the conversation's state), ON CONFLICT DO NOTHING
    # skips the row and ON CONFLICT DO UPDATE is the UPDATE of that row.

    def msg_target(self, u, cid):
        """An id of the conversation's messages as a device knows them, or a new one."""
        view = self.shadow.get((u, cid)) or []
        ids = [m.get("id") for m in view]
        if ids and self.r.random() < 0.85:
            return self.r.choice(ids)
        return self.new_id()

    def msg_key(self, c, u, cid, client):
        """u[1] and t[1] of a message row; returns (u, how the conversation id is broken)."""
        r = self.r
        if client is not None:
            u = client
        c.u = u
        c.note.append("key %s/%r" % (u, cid[:20]))
        self.user(c, u, nullable=False)
        k = r.random()
        if k < 0.015:
            c.arg("text", None)
            c.note.append("NULL conversation id")
            return u, "null"
        if k < 0.03:
            bad = r.choice(BAD_CONV_IDS)
            c.arg("text", bad)                 # no conversation has it
            c.note.append("conversation id of %d bytes" % len(bad.encode()))
            return u, "bad"
        if k < 0.04:
            c.arg("text", r.choice([b"c\xff", b"ok\x80"]), parse="22021")
            return u, "bad"
        c.arg("text", cid)
        return u, None

    @staticmethod
    def elem_fault(e, rowid=None):
        """What the guard trigger of chatpersist.messages raises for a row's
        message e (SQL NULL: the class SqlNull), or None."""
        if e is SqlNull:
            return "22004"
        if not isinstance(e, Obj) or message_faults([e]):
            return "22023"
        if rowid is not None and e.get("id") != rowid:
            return "22023"                    # the id column is not the message's id
        return None

    def msg_value(self, c, m, kind):
        """Add j[1] for one message (a row's): maybe NULL, broken or not valid
        jsonb text.  Returns the value the row gets (SqlNull, an Obj, or
        whatever a broken one is)."""
        r = self.r
        k = r.random()
        if k < 0.03:
            c.arg("jsonb", None)
            c.note.append("NULL message")
            return SqlNull
        if k < 0.12:
            arr, how = self.break_messages([m])
            e = arr[0] if isinstance(arr, list) else arr
            c.note.append("broken message: %s" % how)
            c.arg("jsonb", render(e, r))
            return e
        if k < 0.16:
            text, st = self.parse_fault(render(m, r))
            c.note.append("message not valid jsonb text (%s)" % st)
            c.arg("jsonb", text, parse=st)
            return m
        c.arg("jsonb", render(m, r))
        return m

    def case_sql_minsert(self, client=None):
        r = self.r
        c = Case("sql_minsert")
        u, cid = self.key()
        u, keyfault = self.msg_key(c, u, cid, client)
        view = self.shadow.get((u, cid)) or []
        multi = r.random() < 0.35
        conflict = None if multi or r.random() < 0.7 else r.choice(["nothing", "update"])
        if multi:
            given = self.messages(r.choice([0, 1, 2, 3, 5]))
        elif view and r.random() < 0.3:
            given = [self.edit(r.choice(view))]      # an id the conversation has
        else:
            given = [self.message()]
        if multi and view and given and r.random() < 0.1:
            given[r.randrange(len(given))] = self.message(r.choice(view).get("id"))
        cols = ["user_id", "conversation_id", "message"]
        vals = ["$1[1]", "$2[1]", "$3[1]"]
        if multi:
            k = r.random()
            if k < 0.1:
                arr, how = self.break_messages(given)
                c.note.append("broken messages: %s" % how)
                c.arg("jsonb", render(arr, r))
                elems = arr
            elif k < 0.14:
                text, st = self.parse_fault(render(given, r))
                c.note.append("messages not valid jsonb text (%s)" % st)
                c.arg("jsonb", text, parse=st)
                elems = given
            else:
                c.arg("jsonb", render(given, r))
                elems = given
            c.stmt = ("WITH w AS (INSERT INTO chatpersist.messages (user_id, conversation_id, message) "
                      "SELECT $1[1], $2[1], e FROM jsonb_array_elements($3[1]) WITH ORDINALITY AS a(e, o) "
                      "ORDER BY o RETURNING id) SELECT coalesce(json_agg(w), '[]')::text FROM w")
            rowids = None
        else:
            e = self.msg_value(c, given[0], None)
            elems = [e]
            rowids = None
            if r.random() < 0.15:
                cols.append("id")
                mid = e.get("id") if isinstance(e, Obj) and r.random() < 0.7 else r.choice(["other", "", "x" * 256])
                if not isinstance(mid, str):
                    mid = "other"
                c.arg("text", mid)
                vals.append("$2[2]")
                rowids = mid
            if r.random() < 0.15:
                cols.append("pos")
                c.arg("int8", r.choice(["pmin-1", "pmax+1", "pmin-65536", "pmax+1000", "0"]))
                vals.append("$4[1]")
            tail = ""
            if conflict == "nothing":
                tail = " ON CONFLICT (user_id, conversation_id, id) DO NOTHING"
            elif conflict == "update":
                tail = " ON CONFLICT (user_id, conversation_id, id) DO UPDATE SET message = EXCLUDED.message"
            c.stmt = ("WITH w AS (INSERT INTO chatpersist.messages (%s) VALUES (%s)%s RETURNING id) "
                      "SELECT coalesce(json_agg(w), '[]')::text FROM w" % (", ".join(cols), ", ".join(vals), tail))
        c.meta = {"mop": "insert", "multi": multi, "cols": cols, "conflict": conflict}
        c.note.append("%s row(s)%s%s" % (len(elems) if isinstance(elems, list) else "?",
                                         ", columns %s" % cols[3:] if cols[3:] else "",
                                         ", ON CONFLICT %s" % conflict if conflict else ""))
        ok_elems = isinstance(elems, list) and all(self.elem_fault(e, rowids) is None for e in elems) and \
            not message_faults(elems)
        if ok_elems and not c.parse and keyfault is None:
            known = {m.get("id") for m in view}
            self.shadow[(u, cid)] = view + [m for m in elems if m.get("id") not in known]
        self.limits(c, len(view) + (len(elems) if isinstance(elems, list) else 0))
        # what comes before any other check (before a policy reads current_user_id())
        first = self.elem_fault(elems[0], rowids) if isinstance(elems, list) and elems else None
        if not isinstance(elems, list):
            first = "22023"                       # jsonb_array_elements of a non-array
        if first is None and elems and keyfault == "null":
            first = "22004"
        if first:
            c.faults.append(first)
        c.no_rows = isinstance(elems, list) and not elems    # nothing to insert, nothing read

        def expect(info, c=c):
            pre = info.get("pre")
            rows = info.get("rows") or {}
            visible = not c.as_client or c.meta.get("client_user") == u
            if not isinstance(elems, list):
                return {"22023"}                  # jsonb_array_elements of a non-array
            possible = set()
            version = pre["version"] if pre else 0
            # the ids the guard trigger finds (with the caller's rights: a
            # client sees none of another user's rows)
            seen = set(rows) if visible and not keyfault else set()
            live_pos = {v[2]: i for i, v in rows.items() if not v[0]}
            for e in elems:
                f = self.elem_fault(e, rowids)
                if f:
                    return possible | {f}
                if keyfault == "null":
                    return possible | {"22004"}
                mid = e.get("id")
                if mid in seen:
                    # the trigger writes nothing for an id that has a row
                    if conflict is None:
                        return possible | {"23505"}   # the primary key
                    if conflict == "nothing":
                        continue                  # skipped: nothing is written
                    if rows.get(mid, [False])[0] or \
                            rows.get(mid, [None, None])[1] == hashlib.md5(canon(e).encode()).hexdigest():
                        continue                  # a removed row stays removed; the same message changes nothing
                    # ON CONFLICT DO UPDATE: the UPDATE of the row, at its pos
                    if pre["deleted"]:
                        return possible | {"55000"}
                else:
                    if keyfault or not pre or not visible:
                        return possible | {"23503"}   # no conversation (row-level security hides it)
                    if pre["deleted"]:
                        return possible | {"55000"}
                    if "pos" in c.meta["cols"] and info["i8"] and info["i8"][0] is not None:
                        taker = live_pos.get(info["i8"][0])
                        if taker is not None and taker != mid:
                            return possible | {"23505"}   # another live message has that pos
                if c.limits_lowered:
                    possible.add("54000")
                if version >= INT64_MAX:
                    return possible | {"22003"}
                seen.add(mid)
                version += 1
            return possible | {"ok"}
        c.expect_fn = expect
        return c

    def case_sql_mupdate(self, client=None):
        r = self.r
        c = Case("sql_mupdate")
        u, cid = self.key()
        u, keyfault = self.msg_key(c, u, cid, client)
        view = self.shadow.get((u, cid)) or []
        mid = self.msg_target(u, cid)
        c.arg("text", mid)
        what = r.choice(["message", "message", "message", "remove", "restore", "pos", "message+restore",
                         "remove+message", "key", "computed"])
        where_id = r.random() < (0.7 if what in ("message", "message+restore", "remove+message") else 0.85) \
            or what == "pos"
        sets = []
        setnames = []
        value = NOTSET                    # the message the statement sets (may be JSON null)
        if "message" in what:
            old = next((m for m in view if m.get("id") == mid), None)
            k = r.random()
            if k < 0.1:
                m = self.message()                # another id: 22023
            elif k < 0.2 or old is None:
                m = self.message(mid)
            elif k < 0.3:
                m = old                           # the same message: no change
            else:
                m = self.edit(old)
            value = self.msg_value(c, m, None)
            sets.append("message = $3[1]")
            setnames.append("message")
        if "remove" in what or "restore" in what:
            c.arg("bool", "true" if "remove" in what else "false")
            sets.append("removed = $5[1]")
            setnames.append("removed")
        if what == "pos":
            c.arg("int8", r.choice(["pmin-1", "pmax+1", "pmin-65536", "pmax+1000"]))
            sets.append("pos = $4[1]")
            setnames.append("pos")
        if what == "key":
            sets.append(r.choice(["id = 'moved'", "conversation_id = %s" % c.arg("text", r.choice(CONV_IDS[:6]) + "x"),
                                  "user_id = %s" % c.arg("uuid", r.choice([x for x in USERS if x != u]))]))
            setnames.append("key")
        if what == "computed":
            sets.append(r.choice(["hash = 42", "added_version = 7", "changed_version = 7",
                                  "hash = 42, changed_version = 1"]))
            setnames.append("computed")
        c.stmt = ("WITH w AS (UPDATE chatpersist.messages SET %s WHERE user_id = $1[1] AND conversation_id = $2[1]%s "
                  "RETURNING id) SELECT coalesce(json_agg(w), '[]')::text FROM w"
                  % (", ".join(sets), " AND id = $2[2]" if where_id else ""))
        c.meta = {"mop": "update", "where_id": where_id, "set": setnames}
        c.note.append("SET %s%s" % (", ".join(sets), " WHERE id = %r" % mid[:20] if where_id else " (every row)"))
        if value is not NOTSET and self.elem_fault(value, mid) is None and not c.parse and where_id:
            self.shadow[(u, cid)] = [value if m.get("id") == mid else m for m in view]
        elif "remove" in what and where_id:
            self.shadow[(u, cid)] = [m for m in view if m.get("id") != mid]
        self.limits(c, len(view))

        def expect(info, c=c):
            pre = info.get("pre")
            rows = info.get("rows") or {}
            visible = not c.as_client or c.meta.get("client_user") == u
            if keyfault or not visible:
                return {"ok"}                     # no row matches
            hit = [i for i in rows if not where_id or i == mid]
            if not hit:
                return {"ok"}
            if "key" in setnames:
                return {"0A000"}
            definite = set()
            possible = set()
            changes = 0
            live_pos = {v[2] for v in rows.values() if not v[0]}
            for i in hit:
                was_removed, digest, pos = rows[i]
                now_removed = ("remove" in what) if "removed" in setnames else was_removed
                if was_removed and now_removed:
                    continue                      # no part of the array: left as it was
                if value is not NOTSET:
                    f = self.elem_fault(value, i)
                    if f:
                        definite.add(f)
                        continue
                if not was_removed and not now_removed and "pos" not in setnames and \
                        (value is NOTSET or hashlib.md5(canon(value).encode()).hexdigest() == digest):
                    continue                      # nothing changes
                if pre["deleted"]:
                    definite.add("55000")
                    continue
                if was_removed and not now_removed:
                    # brought back at its pos: refused when another live
                    # message has it (one brought back by this statement
                    # too, in whichever order the rows come)
                    if pos in live_pos:
                        definite.add("23505")
                        continue
                    live_pos.add(pos)
                if c.limits_lowered:
                    possible.add("54000")
                if pre["version"] + changes >= INT64_MAX:
                    definite.add("22003")
                    continue
                changes += 1
            # (the rows are updated in no set order: any failing row may come first)
            return definite | possible if definite else possible | {"ok"}
        c.expect_fn = expect
        return c

    def case_sql_mdelete(self, client=None):
        r = self.r
        c = Case("sql_mdelete")
        u, cid = self.key()
        u, keyfault = self.msg_key(c, u, cid, client)
        view = self.shadow.get((u, cid)) or []
        mid = self.msg_target(u, cid)
        c.arg("text", mid)
        where_id = r.random() < 0.8
        c.stmt = ("WITH w AS (DELETE FROM chatpersist.messages WHERE user_id = $1[1] AND conversation_id = $2[1]%s "
                  "RETURNING id) SELECT coalesce(json_agg(w), '[]')::text FROM w"
                  % (" AND id = $2[2]" if where_id else ""))
        c.meta = {"mop": "delete", "where_id": where_id}
        c.note.append("DELETE %s" % ("WHERE id = %r" % mid[:20] if where_id else "every row"))
        self.shadow[(u, cid)] = [m for m in view if where_id and m.get("id") != mid]
        self.limits(c, len(view))

        def expect(info, c=c):
            pre = info.get("pre")
            rows = info.get("rows") or {}
            visible = not c.as_client or c.meta.get("client_user") == u
            if keyfault or not visible:
                return {"ok"}
            live = [i for i in rows if (not where_id or i == mid) and not rows[i][0]]
            if not live:
                return {"ok"}                     # a removed row is no part of the array
            if pre["deleted"]:
                return {"55000"}
            out = {"ok"}
            if c.limits_lowered:
                out.add("54000")
            if pre["version"] + len(live) > INT64_MAX:
                out = (out - {"ok"}) | {"22003"}
            return out
        c.expect_fn = expect
        return c

    def case_huge(self):
        """The big inputs: 100000 messages, huge strings."""
        r = self.r
        c = Case("save")
        u, cid = HUGE_USER, "huge%d" % r.randint(0, 2)
        n = r.choice([100000, 50001, 50000])
        items = ['{"id":"h%d","content":"x","created_at":%d}' % (i, 1732400000000 + i) for i in range(n)]
        if r.random() < 0.3:
            items[r.randrange(1, n)] = '{"id":"h0"}'              # a repeat, far away
            c.faults.append("22023")
            c.note.append("a repeated id")
        pu = c.arg("uuid", u)
        pc = c.arg("text", cid)
        pt = c.arg("text", "huge")
        pm = c.arg("jsonb", "[" + ",".join(items) + "]")
        c.msg_counts[1] = n
        c.arg("jsonb", None)
        c.arg("bool", None)
        c.arg("int8", None)
        raise_limit = r.random() < 0.5
        if raise_limit:
            c.setting("chatpersist.max_messages", 200000)
        c.note.append("%d messages%s" % (n, ", max_messages raised" if raise_limit else ""))
        c.stmt = ("SELECT row_to_json(r)::text FROM chatpersist.save_conversation(%s, %s, %s, %s, "
                  "p_force_overwrite => true) r" % (pu, pc, pt, pm))
        c.meta = {"force": True}
        c.checks.append(check_status)
        return c

    def case_huge_string(self):
        r = self.r
        c = Case("save")
        u, cid = HUGE_USER, "hugestr"
        s = r.choice(["y", "é", "\"", "\\n", "😀"]) * r.choice([10 ** 6, 3 * 10 ** 6])
        arr = [Obj([("id", "s1"), ("content", s)])]
        pu = c.arg("uuid", u)
        pc = c.arg("text", cid)
        pt = c.arg("text", "t")
        pm = c.arg("jsonb", render_fast(arr))
        c.msg_counts[1] = 1
        c.note.append("a string of %d bytes" % len(s.encode()))
        c.stmt = ("SELECT row_to_json(r)::text FROM chatpersist.save_conversation(%s, %s, %s, %s, true) r"
                  % (pu, pc, pt, pm))
        c.meta = {"force": True}
        c.checks.append(check_status)
        return c


def at_top(info):
    """22003 may be right: the row, or (for a key created again) its newest
    archived version, is at the largest bigint and cannot be followed."""
    pre = info.get("pre")
    if pre and pre["version"] == INT64_MAX:
        return True
    if info.get("hist") and info["hist"][-1] == INT64_MAX:
        return True                 # (also for a row row-level security hides)
    return bool(info.get("top"))


def identity(uid, claims, sub):
    """What current_user_id() must give: a uuid text, None, or ('error', sqlstate)."""
    if uid:
        n = uuid_norm(uid)
        return n if n else ("error", "22023")
    if claims and claims[0]:
        want = claims[1]
        if want is not None:
            return want
    if sub:
        n = uuid_norm(sub)
        return n if n else ("error", "22023")
    return None


# --------------------------------------------------------------------------
# Python-side checks of successful calls
# --------------------------------------------------------------------------

def check_checksum(res, ct):
    out = []
    info = res["info"]
    b = ct.encode()
    if info.get("md5") != hashlib.md5(b).hexdigest() or info.get("len") != len(b):
        out.append("the canonical text differs from the model's (%d bytes, model %d bytes: %r)"
                   % (info.get("len") or -1, len(b), ct[:120]))
    if res["res"] != xxh3(b):
        out.append("checksum %s, but XXH3 of the canonical text is %s" % (res["res"], xxh3(b)))
    return out


def check_merged_checksum(case, res):
    info = res["info"]
    if info.get("merged_text") is not None and xxh3(info["merged_text"].encode()) != info.get("merged_checksum"):
        return ["checksum of the merged array is not XXH3 of its text"]
    return []


STAT_NAMES = ["saves_created", "saves_updated", "saves_unchanged", "saves_merged", "saves_overwritten",
              "saves_deleted", "appends", "restores", "merges", "conflicts", "replays", "stale_updates_rejected",
              "inputs_rejected", "cluster_wide"]


def check_stats(case, res):
    rows = json.loads(res["res"])
    if [x["name"] for x in rows] != STAT_NAMES or any(x["value"] is None or x["value"] < 0 for x in rows):
        return ["stats() returned %s" % res["res"][:300]]
    return []


def check_status(case, res):
    """The status a write function returned is the one the contract names for
    the state it found, and its stored checksum is XXH3 of the stored text."""
    info = res["info"]
    st = info.get("status")
    pre = info.get("pre")
    out = []
    post = info.get("post")
    if post and post.get("text") is not None and xxh3(post["text"].encode()) != post["checksum"]:
        out.append("stored checksum %s is not XXH3 of the stored text" % post["checksum"])
    if st is None:
        return out
    ev = info["i8"][0] if info["i8"] else None
    fn = case.fn
    if fn == "save":
        if not pre or pre["deleted"]:
            allowed = {"created"}
        elif case.meta.get("force"):
            allowed = {"overwritten", "unchanged"}
        elif ev is not None and ev == pre["version"]:
            allowed = {"updated", "unchanged"}
        else:
            allowed = {"merged", "unchanged"}
    elif fn == "append":
        if not pre or pre["deleted"]:
            allowed = {"created"}
        elif ev is None or ev == pre["version"]:
            allowed = {"updated", "unchanged"}
        else:
            allowed = {"merged", "unchanged"}
    elif fn == "delete":
        visible = not case.as_client or case.meta.get("client_user") == case.u
        allowed = {"deleted"} if pre and visible and not pre["deleted"] else {"unchanged"}
    else:
        allowed = {"created"} if not pre else {"updated", "unchanged"}
    if st not in allowed:
        out.append("status %s, but the contract says %s here (stored: %s, expected version %s)"
                   % (st, "/".join(sorted(allowed)), pre, ev))
    return out


# --------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------

BREAKS = {
    "checksum": "predict the checksum from a canonical text with one byte changed",
    "sqlstate": "predict 22004 for a NULL messages argument as 22023",
    "merge": "treat every merge result as having lost its first message",
    "unchanged": "run a write after every failed call (tables change on failure)",
    "row": "miscount every row a write stored, bypassing the trigger",
    "crash": "make input 123 end its own backend, which the bisection must name",
}


class Runner:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed
        self.gen = Generator(self.seed)
        self.passed = 0
        self.failed = 0
        self.outcomes = collections.Counter()
        self.by_fn = collections.Counter()
        self.failures = []
        self.crashes = []
        self.ms = collections.Counter()          # driver time by entry point
        self.call_ms = collections.Counter()     # ... of which in the call itself
        self.slowest = []

    def connect(self):
        conn = psycopg2.connect("")
        conn.autocommit = True
        return conn

    def setup(self):
        log = self.args.server_log
        self.log_offset = os.path.getsize(log) if log and os.path.exists(log) else 0
        self.conn = self.connect()
        cur = self.conn.cursor()
        # the delta oracle's client algorithm, shared with test/delta_props.sh
        with open(os.path.join(HERE, "..", "..", "sql", "include", "apply_delta.sql")) as f:
            cur.execute(f.read())
        with open(os.path.join(HERE, "driver.sql")) as f:
            cur.execute(f.read())
        cur.execute("SELECT pg_backend_pid(), pg_postmaster_start_time()")
        self.pid, self.start_time = cur.fetchone()

    def wait_for_server(self):
        for _ in range(120):
            try:
                conn = self.connect()
                conn.cursor().execute("SELECT 1")
                return conn
            except psycopg2.Error:
                time.sleep(0.5)
        raise SystemExit("fuzz: the server did not come back")

    def load(self, batch, cases):
        cur = self.conn.cursor()
        rows = []
        for n, c in enumerate(cases):
            rows.append((batch, n, c.fn, c.stmt, [psycopg2.Binary(v) if v is not None else None for _, v in c.items],
                         [t for t, _ in c.items], c.settings, c.as_client, json.dumps(c.meta)))
        psycopg2.extras.execute_values(
            cur, "INSERT INTO fuzz.cases VALUES %s", rows,
            template="(%s, %s, %s, %s, %s::bytea[], %s::text[], %s::text[], %s, %s::jsonb)", page_size=50)

    def run_batch(self, batch, upto=None, skip=(), probe=False):
        """Run (a prefix of) a batch; returns True, or False if the backend died."""
        try:
            if probe:
                self.conn.autocommit = False
            cur = self.conn.cursor()
            cur.execute("SELECT fuzz.run_batch(%s, %s, %s)", (batch, upto, list(skip) or None))
            self.batch_xid = cur.fetchone()[0]
            if probe:
                self.conn.rollback()
                self.conn.autocommit = True
            return True
        except (psycopg2.OperationalError, psycopg2.InterfaceError, psycopg2.errors.QueryCanceled) as e:
            self.last_error = str(e).strip()
            try:
                self.conn.close()
            except psycopg2.Error:
                pass
            self.conn = self.wait_for_server()
            return False

    def bisect(self, batch, cases, skip):
        """The batch lost its connection: find the first case whose run ends it."""
        lo, hi = 0, len(cases)            # upto=lo survives, upto=hi dies
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.run_batch(batch, upto=mid, skip=skip, probe=True):
                lo = mid
            else:
                hi = mid
        return hi - 1

    def verdict(self, c, res):
        problems = list(res["failures"])
        outcome = res["outcome"]
        info = res["info"]
        exp = c.expected(info)
        if "sqlstate" in self.args.breaks and "22004" in exp and c.fn == "save":
            exp = {"22023"}
        if outcome == "54000" and "54000" in exp and not c.faults:
            # over a limit: the given array, or the result (rerun without limits)
            over = any(n > info["max_messages"] or info["argbytes"][i - 1] > info["max_bytes"]
                       for i, n in c.msg_counts.items())
            rr = info.get("rerun") or {}
            over = over or (rr.get("count") is not None and
                            (rr["count"] > info["max_messages"] or rr["bytes"] > info["max_bytes"]))
            over = over or (rr.get("seen_count") is not None and
                            (rr["seen_count"] > info["max_messages"] or rr["seen_bytes"] > info["max_bytes"]))
            if rr.get("error") == "22003" and at_top(info):
                over = True                       # the rerun stops at the top version: cannot tell
            if rr.get("error") and c.fn in ("sql_minsert", "sql_mupdate", "sql_mdelete"):
                # one version per row: a statement that fails later anyway
                # (a repeated id, the top version) may meet a limit on the way
                over = True
            pre = info.get("pre")
            if c.fn in ("sql_minsert", "sql_mupdate", "sql_mdelete") and pre and pre.get("bytes") is not None:
                # one version per row: the arrays on the way from the stored
                # one to the result are held to the limits too (and an
                # INSERT's first array is the stored one and a row more)
                over = over or pre["count"] > info["max_messages"] or pre["bytes"] > info["max_bytes"]
            if not over:
                problems.append("54000, but neither the input nor the result is over the limits (%s)" % rr)
        if c.as_client and c.meta.get("identity_error") and not c.parse and not exp & {"42703", "42804"}:
            # (a statement PostgreSQL cannot analyse fails before any policy runs)
            # the policies call current_user_id(): a malformed identity fails
            # every statement that reads the table (input errors come first)
            exp = {c.meta["identity_error"]} | c.input_faults(info) | \
                ({"ok"} if c.fn in ("load_one", "load_all", "history", "sql_update", "sql_delete",
                                    "sql_mupdate", "sql_mdelete") or getattr(c, "no_rows", False) else set()) | \
                ({"22003"} if c.fn in ("sql_insert", "sql_upsert") and at_top(info) else set())
            # (an INSERT's guard trigger computes the version before the policy's WITH CHECK)
        if outcome not in exp:
            problems.append("outcome %s (%s), expected %s" % (outcome, res["message"], " or ".join(sorted(exp))))
        if outcome == "ok":
            for chk in c.checks:
                problems += chk(c, res)
        return problems

    def generate(self, nb):
        cases = []
        a = self.args
        for i in range(nb):
            self.generated = getattr(self, "generated", 0) + 1
            g = self.gen
            k = g.r.random()
            # the big inputs are rare: a few per 10000
            if k < 0.0003:
                c = g.case_huge()
            elif k < 0.0006:
                c = g.case_huge_string()
            else:
                c = g.gen_case()
            if "checksum" in a.breaks and c.fn == "checksum" and c.ct is not None:
                c.ct = c.ct[:-1] + ("x" if c.ct[-1:] != "x" else "y")
            if "unchanged" in a.breaks:
                c.meta["break_write"] = True
            if "merge" in a.breaks:
                c.meta["break_merge"] = True
            if "row" in a.breaks:
                c.meta["break_row"] = True
            if "crash" in a.breaks and self.generated == 124:
                c = Case("stats")
                c.stmt = "SELECT pg_terminate_backend(pg_backend_pid())::text"
                c.note.append("this input ends its own backend (self-test)")
            cases.append(c)
        return cases

    def run(self):
        a = self.args
        print("fuzz: seed %d, %d inputs in batches of %d" % (self.seed, a.count, a.batch), flush=True)
        t0 = time.time()
        self.setup()
        batch = 0
        done = 0
        cases = self.generate(min(a.batch, a.count))
        while done < a.count:
            nb = len(cases)
            self.load(batch, cases)
            skip = []
            # the server runs this batch while the next one is generated
            def work():
                try:
                    self.ok = self.run_batch(batch, skip=skip)
                except BaseException as e:      # a defect of the driver: stop
                    self.ok = e
            worker = threading.Thread(target=work)
            worker.start()
            upcoming = self.generate(min(a.batch, a.count - done - nb))
            worker.join()
            if isinstance(self.ok, BaseException):
                raise self.ok
            while not self.ok:
                bad = self.bisect(batch, cases, skip)
                self.crashes.append((batch, bad, self.last_error))
                self.report_case(batch, bad, cases[bad], None, ["the backend died: %s" % self.last_error])
                skip.append(bad)
                self.failed += 1
                self.ok = self.run_batch(batch, skip=skip)
            cur = self.conn.cursor()
            cur.execute("SELECT n, outcome, message, res, info, failures FROM fuzz.results WHERE batch = %s ORDER BY n",
                        (batch,))
            for n, outcome, message, res, info, failures in cur.fetchall():
                c = cases[n]
                r = {"outcome": outcome, "message": message, "res": res, "info": info, "failures": failures}
                self.outcomes[outcome] += 1
                self.by_fn[c.fn] += 1
                self.ms[c.fn] += info.get("ms") or 0
                self.call_ms[c.fn] += info.get("call_ms") or 0
                self.slowest.append((info.get("ms") or 0, c.fn, "; ".join(c.note)[:100]))
                self.slowest = sorted(self.slowest, reverse=True)[:8]
                problems = self.verdict(c, r)
                if problems:
                    self.failed += 1
                    self.report_case(batch, n, c, r, problems)
                else:
                    self.passed += 1
            cur.execute("SELECT fuzz.sweep(%s)", (self.batch_xid,))
            sweep = cur.fetchone()[0]
            if sweep:
                self.failed += 1
                print("FAIL after batch %d, the tables break invariants: %s" % (batch, sweep[:5]))
            cur.execute("TRUNCATE fuzz.cases, fuzz.results")
            if batch % 5 == 4:
                # the clusters run without autovacuum: dead rows would slow every scan down
                cur.execute("VACUUM chatpersist.conversations, chatpersist.history, chatpersist.messages, "
                            "chatpersist.history_messages")
            cur.execute("SELECT pg_backend_pid(), pg_postmaster_start_time()")
            pid, start = cur.fetchone()
            if start != self.start_time:
                self.failed += 1
                print("FAIL the server restarted during batch %d" % batch)
                self.start_time = start
            if pid != self.pid and not any(b == batch for b, _, _ in self.crashes):
                self.failed += 1
                print("FAIL the backend changed during batch %d (pid %s, was %s)" % (batch, pid, self.pid))
            self.pid = pid
            done += nb
            batch += 1
            cases = upcoming
            if a.progress and batch % a.progress == 0:
                print("fuzz: %d inputs, %d failed, %.0f s" % (done, self.failed, time.time() - t0), flush=True)
        self.duration = time.time() - t0
        self.finish()

    def dump(self, batch, n, c, r):
        """Write a failing input as a psql script that runs it alone."""
        cur = self.conn.cursor()
        i8 = (r or {}).get("info", {}).get("i8")
        arrays = {"uuid": [], "text": [], "jsonb": [], "int8": [], "bool": []}
        k8 = 0
        for t, v in c.items:
            if t == "int8" and i8 is not None and k8 < len(i8):
                v = None if i8[k8] is None else str(i8[k8]).encode()
                k8 += 1
            if v is None:
                arrays[t].append("NULL")
            else:
                arrays[t].append("convert_from(decode('%s', 'hex'), 'UTF8')::%s" % (v.hex(), t))
        lines = ["-- chatpersist fuzz input %d:%d (%s), seed %d" % (batch, n, c.fn, self.seed),
                 "-- run in a database where CREATE EXTENSION chatpersist has run; the outcome",
                 "-- may depend on rows that earlier inputs of the run wrote",
                 "\\set VERBOSITY verbose", "BEGIN;"]
        for i in range(0, len(c.settings), 2):
            lines.append("SELECT set_config(%s, %s, true);" % (cur.mogrify("%s", (c.settings[i],)).decode(),
                                                             cur.mogrify("%s", (c.settings[i + 1],)).decode()))
        if c.as_client:
            lines.append("SET LOCAL ROLE chatpersist_fuzz_client;")
        lines.append("PREPARE fuzz_input(uuid[], text[], jsonb[], int8[], bool[]) AS %s;" % c.stmt)
        lines.append("EXECUTE fuzz_input(%s);" % ", ".join(
            "ARRAY[%s]::%s[]" % (", ".join(arrays[t]), t) for t in ("uuid", "text", "jsonb", "int8", "bool")))
        lines.append("ROLLBACK;")
        path = os.path.join(self.args.dump, "input-%d-%d.sql" % (batch, n))
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def report_case(self, batch, n, c, r, problems):
        self.failures.append((batch, n))
        if len(self.failures) > self.args.max_reports:
            return
        print("FAIL input %d:%d (%s)%s" % (batch, n, c.fn, " as client" if c.as_client else ""))
        for p in problems:
            print("    %s" % p[:600])
        print("    statement: %s" % c.stmt[:400])
        print("    arguments: %s" % ", ".join("%s %s" % (t, "NULL" if v is None else repr(v[:80]) +
                                                       ("...(%d bytes)" % len(v) if len(v) > 80 else ""))
                                              for t, v in c.items))
        if c.settings:
            print("    settings: %s" % c.settings)
        if c.note:
            print("    generated: %s" % "; ".join(c.note))
        if r:
            print("    state: %s" % json.dumps({k: v for k, v in r["info"].items()
                                                if k in ("pre", "hist", "i8", "status", "depth", "rerun")})[:400])
        print("    reproduce: bash test/fuzz.sh --seed %d --count %d --batch %d"
              % (self.seed, (batch + 1) * self.args.batch, self.args.batch))
        if self.args.dump:
            os.makedirs(self.args.dump, exist_ok=True)
            print("    alone: psql -f %s" % self.dump(batch, n, c, r))

    def finish(self):
        cur = self.conn.cursor()
        cur.execute("SELECT fuzz.sweep(0)")      # every row, once more
        sweep = cur.fetchone()[0]
        if sweep:
            self.failed += 1
            print("FAIL at the end, the tables break invariants: %s" % sweep[:5])
        log = self.args.server_log
        if log and os.path.exists(log):
            with open(log, errors="replace") as f:
                f.seek(self.log_offset)           # only what this run logged
                text = f.read()
            if "terminated by signal" in text or "was terminated by exception" in text:
                self.failed += 1
                print("FAIL the server log shows a crashed backend")
        total = self.passed + self.failed
        print()
        print("fuzz: seed %d: %d inputs in %.1f s (%.0f inputs/s)" % (self.seed, total, self.duration,
                                                                       total / max(self.duration, 0.001)))
        print("fuzz: outcomes: %s" % ", ".join("%s %d" % kv for kv in sorted(self.outcomes.items())))
        print("fuzz: inputs by entry point: %s" % ", ".join("%s %d" % kv for kv in sorted(self.by_fn.items())))
        if self.args.timing:
            print("fuzz: driver ms by entry point (total/in the call): %s" % ", ".join(
                "%s %.0f/%.0f" % (k, self.ms[k], self.call_ms[k]) for k in sorted(self.ms)))
            print("fuzz: slowest inputs: %s" % self.slowest)
        if self.crashes:
            print("fuzz: %d crashing inputs: %s" % (len(self.crashes), self.crashes))
        if self.args.json:
            with open(self.args.json, "w") as f:
                json.dump({"seed": self.seed, "inputs": total, "passed": self.passed, "failed": self.failed,
                           "seconds": round(self.duration, 1), "outcomes": self.outcomes,
                           "by_fn": self.by_fn, "crashes": len(self.crashes)}, f, indent=1)
        print("fuzz: %d passed, %d failed" % (self.passed, self.failed))


def main():
    p = argparse.ArgumentParser(description="chatpersist fuzzer")
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--batch", type=int, default=400)
    p.add_argument("--server-log", default=None)
    p.add_argument("--break", dest="breaks", action="append", default=[], choices=sorted(BREAKS))
    p.add_argument("--max-reports", type=int, default=30)
    p.add_argument("--progress", type=int, default=0, help="print progress every N batches")
    p.add_argument("--json", default=None, help="write the figures of the run to this file")
    p.add_argument("--timing", action="store_true", help="print the driver's time by entry point")
    p.add_argument("--dump", default=None, help="write each failing input to this directory as a psql script")
    args = p.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2 ** 31)
    sys.setrecursionlimit(20000)
    r = Runner(args)
    r.run()
    sys.exit(1 if r.failed else 0)


if __name__ == "__main__":
    main()
