"""QEMU's option strings, ``key=value,key=value`` (``include/qemu/option.h``).

Used by the command line for ``-machine``, ``-device``, ``-chardev``, ``-qmp`` and
the like. Values are split at single commas (``,,`` is a literal comma); an option
list may have an implied first key (``-machine virt`` means ``type=virt``); a bare
``key`` means ``key=on``; ``help`` or ``?`` asks for help.

>>> opts = qemu_opts_parse("virt,gic-version=3,dumpdtb=a,,b", implied="type")
>>> opts.get("type"), opts.get("gic-version"), opts.get("dumpdtb")
('virt', '3', 'a,b')
>>> qemu_opts_parse("pl011,help", implied="driver").help
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, final

from qemu_api.error import Error

__all__ = [
    "QemuOpts",
    "parse_bool",
    "parse_size",
    "qemu_opts_parse",
    "split_opts",
]


def split_opts(s: str) -> list[str]:
    """Split *s* at single commas; ``,,`` stands for a literal comma.

    >>> split_opts("a=1,b=x,,y,c")
    ['a=1', 'b=x,y', 'c']
    """
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == ",":
            if s[i + 1 : i + 2] == ",":
                cur.append(",")
                i += 2
                continue
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


@final
@dataclass
class QemuOpts:
    """One parsed option string: ordered ``key -> value`` plus the help flag."""

    values: dict[str, str] = field(default_factory=dict)
    help: bool = False

    def get(self, key: str, default: str | None = None) -> str | None:
        """Return the value of *key*, or *default*."""
        return self.values.get(key, default)

    def take(self, key: str, default: str | None = None) -> str | None:
        """Remove *key* and return its value, or *default*."""
        return self.values.pop(key, default)

    def get_bool(self, key: str, default: bool) -> bool:
        """Return *key* as a boolean (``on``/``off``, ...).

        Raises:
            Error: the value is not a boolean.
        """
        v = self.values.get(key)
        return default if v is None else parse_bool(key, v)

    def __contains__(self, key: object) -> bool:
        return key in self.values


def parse_bool(name: str, value: str) -> bool:
    """Parse a QEMU boolean: ``on``/``yes``/``true``/``y`` or ``off``/``no``/...

    >>> parse_bool("server", "on"), parse_bool("server", "off")
    (True, False)
    >>> parse_bool("server", "maybe")
    Traceback (most recent call last):
    ...
    qemu_api.error.Error: Parameter 'server' expects 'on' or 'off'
    """
    if value in ("on", "yes", "true", "y"):
        return True
    if value in ("off", "no", "false", "n"):
        return False
    raise Error(f"Parameter '{name}' expects 'on' or 'off'")


_SUFFIXES: Final = {"B": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60}
_U64_MAX: Final = (1 << 64) - 1
# strtoull: white space, a sign, digits (base 10; base 16 with an optional 0x).
_DECIMAL: Final = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)")
_HEX: Final = re.compile(
    r"[ \t\n\v\f\r]*([+-]?)(?:0[xX](?=[0-9a-fA-F]))?([0-9a-fA-F]+)"
)
# What strtod reads after the point: digits, an exponent.
_FRACTION: Final = re.compile(r"\.([0-9]+)([eE][+-]?[0-9]+)?")
_SIZE_HINT: Final = (
    "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
    "and exabytes, respectively.\n"
)


class _OutOfRangeError(Exception):
    """The number does not fit 64 bits (QEMU's ``-ERANGE``)."""


class _InvalidSizeError(Exception):
    """The text is not a size (QEMU's ``-EINVAL``)."""


def _strtou64(match: re.Match[str] | None, base: int) -> tuple[int, int, str]:
    """(value, end, sign) of a ``qemu_strtou64`` match; out of range raises."""
    if match is None:
        raise _InvalidSizeError
    sign, digits = match.groups()
    significant = digits.lstrip("0")
    # Never convert absurdly long digit strings: 20 decimal (16 hex) digits
    # hold any 64-bit value.
    if len(significant) > (20 if base == 10 else 16):
        raise _OutOfRangeError
    value = int(significant or "0", base)
    if value > _U64_MAX:
        raise _OutOfRangeError
    return value, match.end(), sign


def _do_strtosz(text: str, default_suffix: str) -> int:
    """QEMU 7.2's ``do_strtosz`` with ``end == NULL`` (``util/cutils.c``)."""
    try:
        val, end, sign = _strtou64(_DECIMAL.match(text), 10)
    except _OutOfRangeError:
        # ERANGE, unless more follows the digits (then EINVAL).
        m = _DECIMAL.match(text)
        if m is not None and m.end() < len(text):
            raise _InvalidSizeError from None
        raise
    if sign == "-":
        raise _InvalidSizeError
    valf = 0
    if val == 0 and text[end : end + 1] in ("x", "X"):
        # Hex: reparse, no fraction (7.2 still takes a suffix, deprecated).
        try:
            val, end, sign = _strtou64(_HEX.match(text), 16)
        except _OutOfRangeError:
            m = _HEX.match(text)
            if m is not None and m.end() < len(text):
                raise _InvalidSizeError from None
            raise
        if text[end : end + 1] == ".":
            raise _InvalidSizeError
    elif text[end : end + 1] == ".":
        m = _FRACTION.match(text, end)
        if m is None:
            end += 1  # strtod found no number: "1.k" is 1k
        elif m.group(2) is not None:
            raise _InvalidSizeError  # an exponent makes the whole input invalid
        else:
            fraction = float("0." + m.group(1))
            valf = min(int(fraction * (1 << 64)), _U64_MAX)
            end = m.end()
    suffix = text[end : end + 1].upper()
    if suffix in _SUFFIXES:
        end += 1
    else:
        suffix = default_suffix.upper()
    if end < len(text):
        raise _InvalidSizeError
    shift = _SUFFIXES[suffix]
    if shift == 0:
        if valf:
            raise _InvalidSizeError  # a fraction needs a scale
        return val
    # 64.64 fixed point times the scale, 0.5 rounded upwards.
    product = (valf << shift) + (1 << 63)
    result = (val << shift) + (product >> 64)
    if result > _U64_MAX:
        raise _OutOfRangeError
    return result


def parse_size(name: str, value: str, default_suffix: str = "B") -> int:
    """Parse a size as QEMU's ``qemu_strtosz``: a number with an optional suffix.

    The integer part is decimal (or ``0x`` hex), an optional fraction
    needs a suffix, and the suffix ``B``, ``K``, ``M``, ``G``, ``T``, ``P``
    or ``E`` scales by powers of 1024 (``default_suffix`` when there is
    none); QEMU 7.2's rules and messages, whatever the length of the text.

    Raises:
        Error: the text is not a size, or the size does not fit 64 bits.

    >>> (
    ...     parse_size("size", "128M"),
    ...     parse_size("size", "1.5k"),
    ...     parse_size("m", "256", "M"),
    ... )
    (134217728, 1536, 268435456)
    >>> parse_size("size", "12Q")
    Traceback (most recent call last):
    ...
    qemu_api.error.Error: Parameter 'size' expects a non-negative number below 2^64
    >>> parse_size("size", "9" * 5000)
    Traceback (most recent call last):
    ...
    qemu_api.error.Error: Value '999...999' is out of range for parameter 'size'
    """
    try:
        return _do_strtosz(value, default_suffix)
    except _OutOfRangeError:
        shown = value if len(value) <= 64 else f"{value[:3]}...{value[-3:]}"
        raise Error(f"Value '{shown}' is out of range for parameter '{name}'") from None
    except _InvalidSizeError:
        raise Error(
            f"Parameter '{name}' expects a non-negative number below 2^64",
            hint=_SIZE_HINT,
        ) from None


def qemu_opts_parse(
    s: str, implied: str | None = None, accepted: frozenset[str] | None = None
) -> QemuOpts:
    """Parse an option string.

    Args:
        s: the string, e.g. ``"socket,id=c0,path=/tmp/s,server=on"``.
        implied: the key a leading bare value stands for (``"type"`` for
            ``-machine``), or None.
        accepted: the keys this option list knows (None: any key).

    Raises:
        Error: an empty key, a repeated key, or a key not in *accepted*
            (QEMU's ``Invalid parameter 'x'``).
    """
    opts = QemuOpts()
    for i, part in enumerate(split_opts(s)):
        if part in ("help", "?"):
            opts.help = True
            continue
        key, eq, value = part.partition("=")
        if not eq:
            if i == 0 and implied is not None:
                key, value = implied, part
            elif part == "":
                if i == 0 and len(s) == 0:
                    continue
                raise Error("Invalid parameter ''")
            else:
                value = "on"
        if not key:
            raise Error("Invalid parameter ''")  # QEMU names the empty key
        if accepted is not None and key not in accepted:
            raise Error(f"Invalid parameter '{key}'")
        opts.values[key] = value
    return opts
