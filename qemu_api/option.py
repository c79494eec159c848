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

from dataclasses import dataclass, field
from typing import final

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


_SUFFIXES = {"B": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60}


def parse_size(name: str, value: str, default_suffix: str = "B") -> int:
    """Parse a size as ``qemu_strtosz``: a number with an optional unit suffix.

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
    """
    v = value.strip()
    suffix = default_suffix
    if v and v[-1].upper() in _SUFFIXES:
        suffix = v[-1].upper()
        v = v[:-1]
    try:
        number = float(v) if "." in v else int(v, 0)
    except ValueError:
        number = -1
    result = int(number * (1 << _SUFFIXES[suffix]))
    if number < 0 or result >= 1 << 64 or ("." in v and suffix == "B"):
        raise Error(f"Parameter '{name}' expects a non-negative number below 2^64")
    return result


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
