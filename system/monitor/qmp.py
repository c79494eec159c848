r"""The QMP server: QEMU's JSON wire format and the monitor on a chardev.

This module models QEMU's ``monitor/qmp.c`` (the QMP monitor),
``qapi/qmp-dispatch.c`` (request checking and dispatch) and ``qobject/``
(``json-lexer.c``, ``json-streamer.c``, ``json-parser.c``, ``json-writer.c``,
the key order of ``qdict.c``):

- :class:`JSONMessageParser` splits a byte stream into JSON values exactly as
  QEMU's streamer does: values may span reads and a read may carry several;
  QEMU's extensions (single-quoted strings, the ``\'`` escape) are accepted;
  malformed input yields QEMU's ``JSON parse error, ...`` messages, after
  which the lexer skips to the next structural character or control
  character and parsing resumes.
- :func:`qmp_to_json` writes a value as QEMU does: ``", "`` and ``": "``
  separators, every non-ASCII character escaped, floats as ``%.17g``, object
  members in QEMU's ``QDict`` order (hash buckets, which is why QEMU prints
  ``{"micro": 0, "minor": 1, "major": 0}``), and ``-qmp-pretty``
  indentation.
- :class:`QMPMonitor` serves QMP on a chardev: greeting, capabilities
  negotiation, commands dispatched through the table generated from
  ``qapi/schema.json`` (:mod:`qapi.qmp_schema`), and events.

>>> parser = JSONMessageParser(lambda value, err: print(value, err))
>>> parser.feed(b'{"execute": "stop"} [1, 2')
{'execute': 'stop'} None
>>> parser.feed(b"] {'a': tru}")
[1, 2] None
None JSON parse error, invalid keyword 'tru'
>>> print(qmp_to_json({"major": 0, "minor": 1, "micro": 0}))
{"micro": 0, "minor": 1, "major": 0}
"""

from __future__ import annotations

import functools
import re
import sys
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final, final

try:
    from qapi.qmp_schema import QMP_COMMANDS, QAPICommand, QMPCapability
except ModuleNotFoundError as _missing:
    if not (_missing.name or "").startswith("qapi"):
        raise
    raise ModuleNotFoundError(
        "qapi.qmp_schema is generated at build time from qapi/schema.json by "
        "scripts/qapi-gen.py: build pyqemu (make) and put the build directory on "
        "PYTHONPATH, as the launchers and 'meson test' do",
        name=_missing.name,
    ) from None

from qemu_api.chardev import CHR_READ_BUF_LEN, CharBackend, Chardev, ChrEvent
from qemu_api.error import Error, ErrorClass, error_report
from qemu_api.qmp_event import qapi_event_add_listener, qapi_event_remove_listener
from qemu_api.qom import JSONValue
from system import runstate
from system.main_loop import MainLoop
from system.monitor.commands import MonitorCommands

__all__ = [
    "JSONEmitter",
    "JSONMessageParser",
    "QMPMonitor",
    "qdict_order",
    "qmp_to_json",
]

JSONEmitter = Callable[[JSONValue, "str | None"], None]
"""Receives each parsed value, or None and the error message of bad input."""

# -- the lexer (qobject/json-lexer.c) ------------------------------------------------

_LOOKAHEAD: Final = 0x80

# Lexer states, numbered as in QEMU (JSON_ERROR is 0, IN_RECOVERY 1).
_JSON_ERROR: Final = 0
_IN_RECOVERY: Final = 1
_IN_DQ_STRING_ESCAPE: Final = 2
_IN_DQ_STRING: Final = 3
_IN_SQ_STRING_ESCAPE: Final = 4
_IN_SQ_STRING: Final = 5
_IN_ZERO: Final = 6
_IN_EXP_DIGITS: Final = 7
_IN_EXP_SIGN: Final = 8
_IN_EXP_E: Final = 9
_IN_MANTISSA: Final = 10
_IN_MANTISSA_DIGITS: Final = 11
_IN_DIGITS: Final = 12
_IN_SIGN: Final = 13
_IN_KEYWORD: Final = 14
_IN_START: Final = 15

# Token types (QEMU's JSONTokenType, above every state).
_JSON_LCURLY: Final = 100
_JSON_RCURLY: Final = 101
_JSON_LSQUARE: Final = 102
_JSON_RSQUARE: Final = 103
_JSON_COLON: Final = 104
_JSON_COMMA: Final = 105
_JSON_INTEGER: Final = 106
_JSON_FLOAT: Final = 107
_JSON_KEYWORD: Final = 108
_JSON_STRING: Final = 109
_TOKENS: Final = frozenset(range(_JSON_LCURLY, _JSON_STRING + 1))

_MAX_TOKEN_SIZE: Final = 64 << 20
_MAX_TOKEN_COUNT: Final = 2 << 20
_MAX_NESTING: Final = 1 << 10


def _build_lexer() -> tuple[tuple[int, ...], ...]:
    """QEMU's ``json_lexer[][256]`` transition table."""
    rows = [[_JSON_ERROR] * 256 for _ in range(_IN_START + 1)]

    def terminal(state: int, token: int) -> None:
        rows[state][:] = [token | _LOOKAHEAD] * 256

    def span(state: int, lo: int, hi: int, target: int) -> None:
        for b in range(lo, hi + 1):
            rows[state][b] = target

    def chars(state: int, text: str, target: int) -> None:
        for c in text:
            rows[state][ord(c)] = target

    digits = "0123456789"
    rec = rows[_IN_RECOVERY]
    span(_IN_RECOVERY, 0x00, 0x1F, _IN_START | _LOOKAHEAD)
    span(_IN_RECOVERY, 0x20, 0xFD, _IN_RECOVERY)
    span(_IN_RECOVERY, 0xFE, 0xFF, _IN_START | _LOOKAHEAD)
    rec[ord("\t")] = _IN_RECOVERY
    chars(_IN_RECOVERY, "[]{}:,", _IN_START | _LOOKAHEAD)
    for escape, string, quote in (
        (_IN_DQ_STRING_ESCAPE, _IN_DQ_STRING, '"'),
        (_IN_SQ_STRING_ESCAPE, _IN_SQ_STRING, "'"),
    ):
        span(escape, 0x20, 0xFD, string)
        span(string, 0x20, 0xFD, string)
        chars(string, "\\", escape)
        chars(string, quote, _JSON_STRING)
    terminal(_IN_ZERO, _JSON_INTEGER)
    chars(_IN_ZERO, digits, _JSON_ERROR)
    chars(_IN_ZERO, ".", _IN_MANTISSA)
    terminal(_IN_EXP_DIGITS, _JSON_FLOAT)
    chars(_IN_EXP_DIGITS, digits, _IN_EXP_DIGITS)
    chars(_IN_EXP_SIGN, digits, _IN_EXP_DIGITS)
    chars(_IN_EXP_E, "-+", _IN_EXP_SIGN)
    chars(_IN_EXP_E, digits, _IN_EXP_DIGITS)
    terminal(_IN_MANTISSA_DIGITS, _JSON_FLOAT)
    chars(_IN_MANTISSA_DIGITS, digits, _IN_MANTISSA_DIGITS)
    chars(_IN_MANTISSA_DIGITS, "eE", _IN_EXP_E)
    chars(_IN_MANTISSA, digits, _IN_MANTISSA_DIGITS)
    terminal(_IN_DIGITS, _JSON_INTEGER)
    chars(_IN_DIGITS, digits, _IN_DIGITS)
    chars(_IN_DIGITS, "eE", _IN_EXP_E)
    chars(_IN_DIGITS, ".", _IN_MANTISSA)
    chars(_IN_SIGN, "0", _IN_ZERO)
    chars(_IN_SIGN, "123456789", _IN_DIGITS)
    terminal(_IN_KEYWORD, _JSON_KEYWORD)
    chars(_IN_KEYWORD, "abcdefghijklmnopqrstuvwxyz", _IN_KEYWORD)
    start = _IN_START
    chars(start, '"', _IN_DQ_STRING)
    chars(start, "'", _IN_SQ_STRING)
    chars(start, "0", _IN_ZERO)
    chars(start, "123456789", _IN_DIGITS)
    chars(start, "-", _IN_SIGN)
    chars(start, "{", _JSON_LCURLY)
    chars(start, "}", _JSON_RCURLY)
    chars(start, "[", _JSON_LSQUARE)
    chars(start, "]", _JSON_RSQUARE)
    chars(start, ",", _JSON_COMMA)
    chars(start, ":", _JSON_COLON)
    chars(start, "abcdefghijklmnopqrstuvwxyz", _IN_KEYWORD)
    chars(start, " \t\r\n", _IN_START)
    return tuple(tuple(row) for row in rows)


_LEXER: Final = _build_lexer()
# The fast paths of the lexer: runs of bytes that the table would take one by
# one without leaving the state.  _RUNS add them to the token (strings,
# numbers, keywords); _SKIPS drop them (white space between tokens, garbage
# while recovering from an error).  A flood of input costs C-speed regex
# matches, not a Python call per byte.
_RUNS: Final = {
    _IN_DQ_STRING: re.compile(rb"[\x20\x21\x23-\x5b\x5d-\xfd]+"),
    _IN_SQ_STRING: re.compile(rb"[\x20-\x26\x28-\x5b\x5d-\xfd]+"),
    _IN_DIGITS: re.compile(rb"[0-9]+"),
    _IN_MANTISSA_DIGITS: re.compile(rb"[0-9]+"),
    _IN_EXP_DIGITS: re.compile(rb"[0-9]+"),
    _IN_KEYWORD: re.compile(rb"[a-z]+"),
}
_OPENERS: Final = re.compile(rb"\[+|\{+")
_OPEN_SQUARE: Final = ord("[")
_SKIPS: Final = {
    _IN_START: re.compile(rb"[ \t\r\n]+"),
    _IN_RECOVERY: re.compile(
        rb"[\t\x20-\x2b\x2d-\x39\x3b-\x5a\x5c\x5e-\x7a\x7c\x7e-\xfd]+"
    ),
}

# -- the parser (qobject/json-parser.c) ------------------------------------------------


def _is_valid_codepoint(cp: int) -> bool:
    """QEMU's ``is_valid_codepoint``: no surrogates, no noncharacters."""
    if cp < 0 or cp > 0x10FFFF:
        return False
    if 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE:
        return False
    return not 0xD800 <= cp <= 0xDFFF


_MIN_CP: Final = (0x80, 0x800, 0x10000, 0x200000, 0x4000000)


def _mod_utf8_codepoint(s: bytes, pos: int) -> tuple[int, int]:
    """Decode one modified-UTF-8 character at ``pos`` (``mod_utf8_codepoint``).

    Returns ``(codepoint or -1, position after it)``.
    """
    if pos >= len(s) or s[pos] == 0:
        return (-1, pos)
    byte = s[pos]
    pos += 1
    if byte < 0x80:
        return (byte, pos)
    if byte >= 0xFE or not byte & 0x40:
        return (-1, pos)
    length = 0
    mask = 0x80
    while byte & mask:
        length += 1
        mask >>= 1
    cp = byte & (mask - 1)
    for _ in range(1, length):
        nxt = s[pos] if pos < len(s) else 0
        if (nxt & 0xC0) != 0x80:
            return (-1, pos)
        pos += 1
        cp = (cp << 6) | (nxt & 0x3F)
    if not _is_valid_codepoint(cp) or (cp < _MIN_CP[length - 2] and cp != 0):
        return (-1, pos)
    if cp == 0 and length != 2:
        return (-1, pos)
    return (cp, pos)


def _cvt4hex(s: bytes) -> int:
    if len(s) < 4:
        return -1
    try:
        text = s.decode("ascii")
    except UnicodeDecodeError:
        return -1
    if not all(c in "0123456789abcdefABCDEF" for c in text):
        return -1
    return int(text, 16)


_SIMPLE_ESCAPES: Final = {
    ord('"'): '"',
    ord("'"): "'",
    ord("\\"): "\\",
    ord("/"): "/",
    ord("b"): "\b",
    ord("f"): "\f",
    ord("n"): "\n",
    ord("r"): "\r",
    ord("t"): "\t",
}
_PLAIN_STRING: Final = re.compile(rb"[\x20-\x7e]*")


class _ParseError(Exception):
    """A JSON parse error; the first one found is reported."""


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _parse_string(tok: bytes) -> str:
    """QEMU's ``parse_string``: the token includes its quotes."""
    quote = tok[0]
    body = tok[1:-1]
    if _PLAIN_STRING.fullmatch(body) and b"\\" not in body:
        return body.decode("ascii")
    out: list[str] = []
    ptr = 1
    while tok[ptr] != quote:
        c = tok[ptr]
        if c == ord("\\"):
            beg = ptr
            ptr += 1
            esc = tok[ptr]
            ptr += 1
            simple = _SIMPLE_ESCAPES.get(esc)
            if simple is not None:
                out.append(simple)
                continue
            if esc != ord("u"):
                raise _ParseError("invalid escape sequence in string")
            cp = _cvt4hex(tok[ptr : ptr + 4])
            ptr += 4
            if 0xD800 <= cp <= 0xDBFF and tok[ptr : ptr + 2] == b"\\u":
                cp = 0x10000 + ((cp & 0x3FF) << 10)
                trailing = _cvt4hex(tok[ptr + 2 : ptr + 6])
                if 0xDC00 <= trailing <= 0xDFFF:
                    cp |= trailing & 0x3FF
                    ptr += 6
                else:
                    cp = -1
            if not _is_valid_codepoint(cp):
                raise _ParseError(
                    f"{_text(tok[beg:ptr])} is not a valid Unicode character"
                )
            out.append(chr(cp))
            continue
        cp, ptr = _mod_utf8_codepoint(tok, ptr)
        if cp < 0:
            raise _ParseError("invalid UTF-8 sequence in string")
        out.append(chr(cp))
    return "".join(out)


# The most digits of an integer that may fit uint64 (2**64 - 1 has 20): longer
# ones are doubles without being converted to int, which Python refuses for
# more than 4300 digits and which costs quadratic time below that.
_MAX_INT_DIGITS: Final = 20


def _parse_number(kind: int, tok: bytes) -> JSONValue:
    """QEMU's ``parse_literal`` for numbers.

    An integer that fits ``int64`` (or, if not negative, ``uint64``) is an
    integer; any other number is a double, as C's ``strtod`` reads it (an
    integer too large for a double is infinite, as in QEMU).

    >>> _parse_number(_JSON_INTEGER, b"18446744073709551616")
    1.8446744073709552e+19
    >>> _parse_number(_JSON_INTEGER, b"9" * 5000)
    inf
    """
    text = tok.decode("ascii")
    if kind == _JSON_INTEGER and len(text.lstrip("-")) <= _MAX_INT_DIGITS:
        value = int(text)
        if -(1 << 63) <= value < (1 << 63):
            return value
        if not text.startswith("-") and value < (1 << 64):
            return value
    return float(text)


_KEY: Final = 0
_VALUE: Final = 1


@final
class _Frame:
    """An object or array being parsed (the parser keeps its own stack)."""

    __slots__ = ("items", "key", "members", "state")

    def __init__(self, members: dict[str, JSONValue] | None) -> None:
        self.members = members
        self.items: list[JSONValue] = []
        self.key = ""
        self.state = _KEY


def _parse_scalar(tok: tuple[int, bytes]) -> JSONValue:
    kind, text = tok
    if kind == _JSON_STRING:
        return _parse_string(text)
    if kind in (_JSON_INTEGER, _JSON_FLOAT):
        return _parse_number(kind, text)
    if kind == _JSON_KEYWORD:
        word = _text(text)
        if word == "true":
            return True
        if word == "false":
            return False
        if word == "null":
            return None
        raise _ParseError(f"invalid keyword '{word}'")
    raise _ParseError("expecting value")


def _parse(tokens: list[tuple[int, bytes]]) -> JSONValue:
    """QEMU's ``json_parser_parse``, without recursion (nesting goes to 1024).

    The grammar and the messages are those of QEMU's recursive parser; the
    first error found is the one reported.
    """
    pos = 0
    stack: list[_Frame] = []

    def peek() -> tuple[int, bytes] | None:
        return tokens[pos] if pos < len(tokens) else None

    while True:
        # Parse one value (parse_value); containers push a frame.
        tok = peek()
        if tok is None:
            raise _ParseError("premature EOI")
        pos += 1
        if tok[0] in (_JSON_LCURLY, _JSON_LSQUARE):
            is_object = tok[0] == _JSON_LCURLY
            nxt = peek()
            if nxt is None:
                raise _ParseError("premature EOI")
            if nxt[0] == (_JSON_RCURLY if is_object else _JSON_RSQUARE):
                pos += 1
                value: JSONValue = {} if is_object else []
            else:
                stack.append(_Frame({} if is_object else None))
                continue
        else:
            value = _parse_scalar(tok)
        # A value is complete: hand it to the enclosing containers.
        while True:
            if not stack:
                return value
            frame = stack[-1]
            if frame.members is None:
                frame.items.append(value)
                sep = peek()
                pos += 1
                if sep is None:
                    raise _ParseError("premature EOI")
                if sep[0] == _JSON_RSQUARE:
                    stack.pop()
                    value = frame.items
                    continue
                if sep[0] != _JSON_COMMA:
                    raise _ParseError("expected separator in list")
                break
            if frame.state == _KEY:
                if not isinstance(value, str):
                    raise _ParseError("key is not a string in object")
                colon = peek()
                pos += 1
                if colon is None:
                    raise _ParseError("premature EOI")
                if colon[0] != _JSON_COLON:
                    raise _ParseError("missing : in object pair")
                frame.key = value
                frame.state = _VALUE
                break
            if frame.key in frame.members:
                raise _ParseError("duplicate key")
            frame.members[frame.key] = value
            sep = peek()
            pos += 1
            if sep is None:
                raise _ParseError("premature EOI")
            if sep[0] == _JSON_RCURLY:
                stack.pop()
                value = frame.members
                continue
            if sep[0] != _JSON_COMMA:
                raise _ParseError("expected separator in dict")
            frame.state = _KEY
            break


# -- the streamer (qobject/json-streamer.c) -------------------------------------------


@final
class JSONMessageParser:
    r"""Split a byte stream into JSON values, as QEMU's ``JSONMessageParser``.

    Each complete top-level value (an object, an array, or a lone scalar) is
    passed to ``emit(value, None)``; malformed input to
    ``emit(None, "JSON parse error, ...")``, after which parsing resumes at
    the next structural character (``{ } [ ] : ,``) or control character
    (such as a newline).

    Args:
        emit: receives each value or error.

    >>> got = []
    >>> p = JSONMessageParser(lambda v, e: got.append((v, e)))
    >>> p.feed(b'{"a": [1, 2.5, "\\u00e9"]}\n}')
    >>> got
    [({'a': [1, 2.5, 'é']}, None), (None, 'JSON parse error, expecting value')]
    """

    def __init__(self, emit: JSONEmitter) -> None:
        self._emit = emit
        self.reset()

    def reset(self) -> None:
        """Forget any partial input (QEMU re-creates the parser on CLOSED)."""
        self._state = _IN_START
        self._token = bytearray()
        self._tokens: list[tuple[int, bytes]] = []
        self._token_size = 0
        self._brace = 0
        self._bracket = 0

    def feed(self, data: bytes) -> None:
        """Lex ``data``; complete values are emitted as they are found."""
        i = 0
        n = len(data)
        while i < n:
            state = self._state
            run = _RUNS.get(state)
            if run is not None:
                m = run.match(data, i)
                if m is not None:
                    self._token += data[i : m.end()]
                    i = m.end()
                    self._check_token_size()
                    continue
            skip = _SKIPS.get(state)
            if skip is not None:
                m = skip.match(data, i)
                if m is not None:
                    i = m.end()
                    continue
            if state == _IN_START:
                m = _OPENERS.match(data, i, i + _MAX_NESTING)
                if m is not None:
                    taken = self._open_run(data[i], m.end() - i)
                    if taken:
                        i += taken
                        continue
            self._feed_byte(data[i])
            i += 1

    def _open_run(self, ch: int, count: int) -> int:
        """Take up to ``count`` opening brackets at once; return how many.

        Exactly what as many calls of :meth:`_feed_byte` would do, for as
        many as fit below the nesting, token count and token size limits;
        the one that trips a limit goes through :meth:`_feed_byte`.
        """
        if self._token or self._brace < 0 or self._bracket < 0:
            return 0
        count = min(
            count,
            _MAX_NESTING - self._brace - self._bracket,
            _MAX_TOKEN_COUNT - len(self._tokens) - 1,
            (_MAX_TOKEN_SIZE - self._token_size) // 2 - 1,
        )
        if count <= 0:
            return 0
        if ch == _OPEN_SQUARE:
            self._tokens.extend([(_JSON_LSQUARE, b"[")] * count)
            self._bracket += count
        else:
            self._tokens.extend([(_JSON_LCURLY, b"{")] * count)
            self._brace += count
        self._token_size += count
        return count

    def _feed_byte(self, ch: int) -> None:
        consumed = False
        while not consumed:
            nxt = _LEXER[self._state][ch]
            consumed = not nxt & _LOOKAHEAD
            nxt &= ~_LOOKAHEAD
            if consumed:
                self._token.append(ch)
            if nxt in _TOKENS:
                self._process_token(nxt, bytes(self._token))
                self._token.clear()
                nxt = _IN_START
            elif nxt == _IN_START:
                self._token.clear()
            elif nxt == _JSON_ERROR:
                self._process_token(_JSON_ERROR, bytes(self._token))
                self._token.clear()
                nxt = _IN_RECOVERY
            elif nxt == _IN_RECOVERY:
                self._token.clear()
            self._state = nxt
        self._check_token_size()

    def _check_token_size(self) -> None:
        if len(self._token) > _MAX_TOKEN_SIZE:
            self._process_token(self._state, bytes(self._token))
            self._token.clear()
            self._state = _IN_START

    def _process_token(self, kind: int, text: bytes) -> None:
        if kind == _JSON_LCURLY:
            self._brace += 1
        elif kind == _JSON_RCURLY:
            self._brace -= 1
        elif kind == _JSON_LSQUARE:
            self._bracket += 1
        elif kind == _JSON_RSQUARE:
            self._bracket -= 1
        elif kind == _JSON_ERROR:
            self._finish(None, f"JSON parse error, stray '{_text(text)}'")
            return
        if self._token_size + len(text) + 1 > _MAX_TOKEN_SIZE:
            self._finish(None, "JSON token size limit exceeded")
            return
        if len(self._tokens) + 1 > _MAX_TOKEN_COUNT:
            self._finish(None, "JSON token count limit exceeded")
            return
        if self._bracket + self._brace > _MAX_NESTING:
            self._finish(None, "JSON nesting depth limit exceeded")
            return
        self._tokens.append((kind, text))
        self._token_size += len(text)
        if (self._brace > 0 or self._bracket > 0) and (
            self._brace >= 0 and self._bracket >= 0
        ):
            return
        try:
            value = _parse(self._tokens)
        except _ParseError as e:
            self._finish(None, f"JSON parse error, {e}")
        else:
            self._finish(value, None)

    def _finish(self, value: JSONValue, err: str | None) -> None:
        self._brace = 0
        self._bracket = 0
        self._tokens = []
        self._token_size = 0
        self._emit(value, err)


# -- the writer (qobject/json-writer.c, qobject/qdict.c) -------------------------------

_QDICT_BUCKET_MAX: Final = 512


@functools.lru_cache(maxsize=4096)
def _qdict_bucket(key: str) -> int:
    """QEMU's ``tdb_hash(key) % QDICT_BUCKET_MAX``."""
    raw = key.encode("utf-8", "surrogatepass")
    value = (0x238F13AF * len(raw)) & 0xFFFFFFFF
    for i, byte in enumerate(raw):
        value = (value + (byte << (i * 5 % 24))) & 0xFFFFFFFF
    return ((1103515243 * value + 12345) & 0xFFFFFFFF) % _QDICT_BUCKET_MAX


def qdict_order(keys: list[str]) -> list[str]:
    """Return ``keys`` (in insertion order) in the order QEMU's ``QDict`` iterates.

    A ``QDict`` is a hash table of 512 buckets, each a list with the newest
    entry first; iteration walks the buckets in order. QEMU's JSON output
    follows that order, so pyqemu's does too.

    >>> qdict_order(["running", "singlestep", "status"])
    ['status', 'singlestep', 'running']
    """
    indexed = sorted(enumerate(keys), key=lambda p: (_qdict_bucket(p[1]), -p[0]))
    return [k for _, k in indexed]


_PLAIN_TEXT: Final = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
_WRITER_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _quoted(s: str) -> str:
    r"""QEMU's ``quoted_str``: ASCII out, everything else as ``\uXXXX``."""
    if _PLAIN_TEXT.fullmatch(s):
        return f'"{s}"'
    out = ['"']
    for ch in s:
        esc = _WRITER_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
            continue
        cp = ord(ch)
        if not _is_valid_codepoint(cp):
            cp = 0xFFFD
        if cp > 0xFFFF:
            cp -= 0x10000
            out.append(f"\\u{0xD800 + (cp >> 10):04X}\\u{0xDC00 + (cp & 0x3FF):04X}")
        elif cp < 0x20 or cp >= 0x7F:
            out.append(f"\\u{cp:04X}")
        else:
            out.append(chr(cp))
    out.append('"')
    return "".join(out)


def _write(out: list[str], value: JSONValue, pretty: bool, depth: int) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(f"{value:.17g}")
    elif isinstance(value, str):
        out.append(_quoted(value))
    elif isinstance(value, list):
        _write_container(out, "[]", [(None, v) for v in value], pretty, depth)
    else:
        members = [(k, value[k]) for k in qdict_order(list(value))]
        _write_container(out, "{}", members, pretty, depth)


def _write_container(
    out: list[str],
    brackets: str,
    members: Sequence[tuple[str | None, JSONValue]],
    pretty: bool,
    depth: int,
) -> None:
    out.append(brackets[0])
    inner = "\n" + "    " * (depth + 1)
    for i, (key, value) in enumerate(members):
        if i:
            out.append("," + (inner if pretty else " "))
        elif pretty:
            out.append(inner)
        if key is not None:
            out.append(_quoted(key) + ": ")
        _write(out, value, pretty, depth + 1)
    if pretty:
        out.append("\n" + "    " * depth)
    out.append(brackets[1])


def qmp_to_json(value: JSONValue, pretty: bool = False) -> str:
    r"""Return ``value`` as QEMU's ``qobject_to_json_pretty`` writes it.

    Args:
        value: the value; dictionaries in insertion order (QEMU's ``QDict``
            order is applied here).
        pretty: indent by four spaces per level, as ``-qmp-pretty``.

    >>> qmp_to_json({"return": {}, "id": "é"})
    '{"return": {}, "id": "\\u00E9"}'
    >>> print(qmp_to_json({"return": {}}, pretty=True))
    {
        "return": {
        }
    }
    """
    out: list[str] = []
    _write(out, value, pretty, 0)
    return "".join(out)


# -- the monitor (monitor/qmp.c, qapi/qmp-dispatch.c) ----------------------------------

_NEGOTIATION_COMMANDS: Final = {"qmp_capabilities": QMP_COMMANDS["qmp_capabilities"]}


def _error_object(err: Error) -> dict[str, JSONValue]:
    """QEMU's ``qmp_build_error_object``: the message without the hint."""
    return {"class": err.error_class.value, "desc": err.msg}


@final
class QMPMonitor:
    r"""A QMP monitor serving one chardev (QEMU's ``MonitorQMP``).

    The monitor connects to ``chr_`` as its frontend. Each client that
    connects (each ``OPENED`` event of the chardev) gets the greeting and
    must negotiate capabilities with ``qmp_capabilities``; a disconnect
    (``CLOSED``) drops its queued requests and partial input and resets the
    negotiation. Requests are read only while none is waiting and the
    previous replies have been written (backpressure through ``can_receive``),
    and run one after another from a bottom half of ``loop``, as QEMU's
    dispatcher does; ``exec-oob`` requests run at once. Replies and events
    are one JSON object per line (``\r\n``, as QEMU writes), or indented
    with ``pretty``. Several monitors may serve at once; each gets every
    event once negotiated.

    Args:
        chr_: the chardev to serve (``-qmp``/``-qmp-pretty``).
        loop: the main loop; requests are dispatched from its bottom halves.
        pretty: pretty-print the JSON.
        target: the target whose boards ``query-machines`` lists; by default
            taken from the program name (``pyqemu-system-TARGET``).
        oob: offer the ``oob`` capability in the greeting.

    Raises:
        Error: ``chr_`` already serves another frontend.

    >>> from qemu_api.chardev import qemu_chr_new, ringbuf_read, qemu_chr_delete
    >>> mon = QMPMonitor(qemu_chr_new("mon0", "ringbuf"), MainLoop(), pretty=True)
    >>> print(ringbuf_read("mon0", 400).replace("\r", ""), end="")  # doctest: +ELLIPSIS
    {
        "QMP": {
            "version": {
                "qemu": {
                    "micro": 0,
                    "minor": 2,
                    "major": 7
                },
                "package": "pyqemu ..."
            },
            "capabilities": [
                "oob"
            ]
        }
    }
    >>> mon.close()
    >>> qemu_chr_delete("mon0")
    """

    def __init__(
        self,
        chr_: Chardev,
        loop: MainLoop,
        *,
        pretty: bool = False,
        target: str | None = None,
        oob: bool = True,
    ) -> None:
        self.pretty = pretty
        """Whether replies and events are pretty-printed."""
        self._chr = chr_
        self._loop = loop
        self._offered = frozenset({QMPCapability.OOB} if oob else ())
        self._enabled: frozenset[QMPCapability] = frozenset()
        self._negotiated = False
        self._closed = False
        self._requests: deque[tuple[JSONValue, str | None]] = deque()
        self._dispatch_scheduled = False
        self._outbuf = bytearray()
        self._out_watch = False
        self._parser = JSONMessageParser(self._handle_request)
        self._handlers = MonitorCommands(self, target=target)
        self._fe = CharBackend()
        self._fe.connect(chr_)
        qapi_event_add_listener(self._emit_event)
        self._fe.set_handlers(self._can_read, self._read, self._chr_event)

    # -- the session, for the command handlers ------------------------------------

    @property
    def loop(self) -> MainLoop:
        """The main loop the monitor runs in."""
        return self._loop

    @property
    def chardev(self) -> Chardev:
        """The chardev the monitor serves."""
        return self._chr

    @property
    def negotiated(self) -> bool:
        """True once the client has sent ``qmp_capabilities``."""
        return self._negotiated

    @property
    def oob_enabled(self) -> bool:
        """True if the client enabled out-of-band execution."""
        return QMPCapability.OOB in self._enabled

    def negotiate(self, enable: list[QMPCapability]) -> None:
        """End capabilities negotiation (``qmp_qmp_capabilities``).

        Raises:
            Error: negotiation is over already (class ``CommandNotFound``), or
                a capability was not offered.
        """
        if self._negotiated:
            raise Error(
                "Capabilities negotiation is already complete, command ignored",
                error_class=ErrorClass.COMMAND_NOT_FOUND,
            )
        missing = [c.value for c in enable if c not in self._offered]
        if missing:
            raise Error(f"Capability {', '.join(missing)} not available")
        self._enabled = frozenset(enable)
        self._negotiated = True

    def command_names(self) -> list[str]:
        """The commands available now, newest registration first (QEMU order)."""
        table = QMP_COMMANDS if self._negotiated else _NEGOTIATION_COMMANDS
        return list(reversed(table))

    def close(self) -> None:
        """Stop serving: no more input, output or events; free the chardev."""
        if self._closed:
            return
        self._closed = True
        qapi_event_remove_listener(self._emit_event)
        self._requests.clear()
        self._outbuf.clear()
        self._fe.disconnect()

    # -- chardev handlers ---------------------------------------------------------

    def _can_read(self) -> int:
        if self._closed or self._requests or self._outbuf:
            return 0
        return CHR_READ_BUF_LEN

    def _read(self, data: bytes) -> None:
        try:
            self._parser.feed(data)
        except Exception as exc:
            # A bug in the parser: no input may stop the machine or leave the
            # session deaf.  Log it, drop the partial input, answer, go on.
            what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            error_report(f"internal error in the QMP input parser: {what}")
            import traceback  # only on an internal error

            sys.stderr.write("".join(traceback.format_exception(exc)))
            sys.stderr.flush()
            self._parser.reset()
            self._handle_request(
                None,
                f"Internal error parsing the input: {what} (a bug in pyqemu; the "
                "traceback is on its standard error)",
            )

    def _chr_event(self, event: ChrEvent) -> None:
        if event is ChrEvent.OPENED:
            self._negotiated = False
            self._enabled = frozenset()
            self._send(self._greeting())
        elif event is ChrEvent.CLOSED:
            self._requests.clear()
            self._parser.reset()
            self._outbuf.clear()
            self._negotiated = False
            self._enabled = frozenset()

    def _greeting(self) -> dict[str, JSONValue]:
        version = QMP_COMMANDS["query-version"].marshal(self._handlers, {})
        caps: list[JSONValue] = [c.value for c in QMPCapability if c in self._offered]
        return {"QMP": {"version": version, "capabilities": caps}}

    # -- requests -----------------------------------------------------------------

    def _handle_request(self, request: JSONValue, err: str | None) -> None:
        if self._closed:
            return
        if (
            err is None
            and isinstance(request, dict)
            and "exec-oob" in request
            and "execute" not in request
        ):
            # Out-of-band: run at once, ahead of the queue (handle_qmp_command).
            self._respond(request, None)
            return
        self._requests.append((request, err))
        if not self._dispatch_scheduled:
            self._dispatch_scheduled = True
            self._loop.bh_schedule(self._dispatch_bh, "QMP dispatcher")

    def _dispatch_bh(self) -> None:
        self._dispatch_scheduled = False
        while self._requests and not self._closed:
            request, err = self._requests.popleft()
            self._respond(request, err)
        self._resume()

    def _respond(self, request: JSONValue, err: str | None) -> None:
        rsp = self._dispatch(request, err)
        if rsp is not None:
            self._send(rsp)

    def _dispatch(
        self, request: JSONValue, err: str | None
    ) -> dict[str, JSONValue] | None:
        """Answer one request (``qmp_dispatch`` and ``monitor_qmp_dispatch``)."""
        if err is not None:
            return {"error": _error_object(Error(err))}
        if not isinstance(request, dict):
            return {"error": _error_object(Error("QMP input must be a JSON object"))}
        rsp: dict[str, JSONValue]
        try:
            cmd, ret = self._execute(request)
        except Error as e:
            error = _error_object(e)
            if not self._negotiated and e.error_class is ErrorClass.COMMAND_NOT_FOUND:
                # Still negotiating: a more useful message (monitor_qmp_dispatch).
                error = {
                    "class": e.error_class.value,
                    "desc": "Expecting capabilities negotiation with "
                    "'qmp_capabilities'",
                }
            rsp = {"error": error}
        else:
            if not cmd.success_response:
                return None
            rsp = {"return": ret}
        if "id" in request:
            rsp["id"] = request["id"]
        return rsp

    def _execute(self, request: dict[str, JSONValue]) -> tuple[QAPICommand, JSONValue]:
        allow_oob = self.oob_enabled
        exec_key: str | None = None
        for key, value in request.items():
            if key == "execute" or (key == "exec-oob" and allow_oob):
                if not isinstance(value, str):
                    raise Error(f"QMP input member '{key}' must be a string")
                if exec_key is not None:
                    raise Error(f"QMP input member '{key}' clashes with '{exec_key}'")
                exec_key = key
            elif key == "arguments":
                if not isinstance(value, dict):
                    raise Error("QMP input member 'arguments' must be an object")
            elif key != "id":
                raise Error(f"QMP input member '{key}' is unexpected")
        if exec_key is None:
            raise Error("QMP input lacks member 'execute'")
        oob = "execute" not in request
        name = request["exec-oob" if oob else "execute"]
        assert isinstance(name, str)
        table = QMP_COMMANDS if self._negotiated else _NEGOTIATION_COMMANDS
        cmd = table.get(name)
        if cmd is None:
            raise Error(
                f"The command {name} has not been found",
                error_class=ErrorClass.COMMAND_NOT_FOUND,
            )
        if oob and not cmd.allow_oob:
            raise Error(f"The command {name} does not support OOB")
        args = request.get("arguments", {})
        assert isinstance(args, dict)
        try:
            return (cmd, cmd.marshal(self._handlers, args))
        except Error:
            raise
        except Exception as exc:
            # A bug in a command: log it with its traceback, answer, go on.
            what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            error_report(f"internal error in QMP command '{name}': {what}")
            import traceback  # only on an internal error

            sys.stderr.write("".join(traceback.format_exception(exc)))
            sys.stderr.flush()
            raise Error(
                f"Internal error in command '{name}': {what} "
                "(a bug in pyqemu; the traceback is on its standard error)"
            ) from None

    # -- events -------------------------------------------------------------------

    def _emit_event(self, name: str, data: dict[str, JSONValue]) -> None:
        """Send an event to a negotiated client (``monitor_qapi_event_emit``)."""
        if self._closed or not self._negotiated:
            return
        msg: dict[str, JSONValue] = {
            "event": name,
            "timestamp": runstate.event_timestamp(),
        }
        if data:
            msg["data"] = data
        self._send(msg)

    # -- output -------------------------------------------------------------------

    def _send(self, msg: dict[str, JSONValue]) -> None:
        """Write one message; what the chardev cannot take now waits in a buffer."""
        text = qmp_to_json(msg, self.pretty) + "\n"
        self._outbuf += text.replace("\n", "\r\n").encode("ascii")
        self._flush()

    def _flush(self) -> None:
        """Write the buffer (``monitor_flush_locked``); watch for room if needed."""
        while self._outbuf and not self._closed:
            n = self._fe.write(bytes(self._outbuf))
            if n <= 0:
                break
            del self._outbuf[:n]
        if not self._outbuf or self._out_watch or self._closed:
            return
        if self._fe.add_write_watch(self._unblocked):
            self._out_watch = True
        else:
            # The backend cannot say when it has room: wait, as write_all does.
            self._fe.write_all(bytes(self._outbuf))
            self._outbuf.clear()

    def _unblocked(self) -> None:
        self._out_watch = False
        self._flush()
        self._resume()

    def _resume(self) -> None:
        """Read again once no request waits and every reply is written."""
        if not self._closed and not self._requests and not self._outbuf:
            self._fe.accept_input()
