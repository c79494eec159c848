#!/usr/bin/env python3
"""Generate a typed Python trace module from a QEMU-format ``trace-events`` file.

Usage: tracetool.py --group NAME --backends LIST [--source-name PATH] INPUT OUTPUT

Each line of INPUT is blank, a ``#`` comment, or an event::

    [disable ]name(type arg, ...) "format"

as QEMU's ``scripts/tracetool`` reads it. OUTPUT becomes a module with one function
``trace_<name>(arg, ...)`` per event, typed from the C argument types (integers and
``bool`` as :class:`int`/:class:`bool`, ``const char *`` as :class:`str`, pointers as
:class:`object`), registering its events with :mod:`qemu_api.trace`. A malformed line
fails with ``FILE:LINE: reason`` and exit status 1.

With ``--init`` instead of INPUT and ``--group``, OUTPUT becomes the package
``__init__`` that records the configured backends.
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
from dataclasses import dataclass
from pathlib import Path

BACKENDS = ("log", "simple", "nop")

EVENT_RE = re.compile(
    r"^(?P<props>(?:\w+\s+)*)(?P<name>\w+)\((?P<args>[^)]*)\)\s*(?P<fmt>\".*)?$"
)
PROPS = {"disable"}
UNSUPPORTED_PROPS = {"tcg", "vcpu"}

# C integer types tracetool accepts (with or without const/unsigned spellings).
INT_TYPES = {
    "int",
    "unsigned",
    "unsigned int",
    "long",
    "unsigned long",
    "long long",
    "unsigned long long",
    "short",
    "unsigned short",
    "char",
    "unsigned char",
    "signed char",
    "size_t",
    "ssize_t",
    "off_t",
    "uintptr_t",
    "intptr_t",
    "int8_t",
    "int16_t",
    "int32_t",
    "int64_t",
    "uint8_t",
    "uint16_t",
    "uint32_t",
    "uint64_t",
    "hwaddr",
    "vaddr",
    "ram_addr_t",
    "target_ulong",
    "unsigned long int",
}
CONV_RE = re.compile(
    r"%(?P<flags>[-+ #0]*)(?P<width>\d*)(?:\.(?P<prec>\d+))?"
    r"(?P<len>hh|h|ll|l|z|j|t|L)?(?P<conv>[diouxXcsp%])"
)


class TraceError(Exception):
    """A malformed trace-events line."""


@dataclass(frozen=True)
class Arg:
    ctype: str
    name: str

    @property
    def kind(self) -> str:
        """'str', 'ptr', 'bool' or 'int'."""
        t = " ".join(self.ctype.replace("const ", "").split())
        if t in ("char *", "char*"):
            return "str"
        if t.endswith("*"):
            return "ptr"
        if t == "bool":
            return "bool"
        return "int"

    @property
    def pytype(self) -> str:
        return {"str": "str", "ptr": "object", "bool": "bool", "int": "int"}[self.kind]


@dataclass(frozen=True)
class Event:
    name: str
    args: tuple[Arg, ...]
    fmt: str
    disabled: bool
    lineno: int


def parse_args(text: str) -> tuple[Arg, ...]:
    text = text.strip()
    if text in ("", "void"):
        return ()
    args = []
    names: set[str] = set()
    for raw in text.split(","):
        part = " ".join(raw.split())
        m = re.match(r"^(?P<type>.*?[\s*])(?P<name>\w+)$", part)
        if not m or not m.group("type").strip():
            raise TraceError(f"argument '{part}' is not 'type name'")
        ctype = m.group("type").strip().replace(" *", "*").replace("*", " *").strip()
        name = m.group("name")
        arg = Arg(ctype, name)
        if arg.kind == "int" and " ".join(ctype.replace("const ", "").split()) not in (
            INT_TYPES
        ):
            raise TraceError(f"argument '{part}' has unknown type '{ctype}'")
        if keyword.iskeyword(name) or name in names:
            raise TraceError(f"argument name '{name}' is a keyword or repeated")
        names.add(name)
        args.append(arg)
    return tuple(args)


TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|PRI([diouxX])(?:8|16|32|64|PTR|MAX)\b|\S+')


def parse_format(fmt: str) -> str:
    """Turn a C format (string literals and PRIx64-style macros) into one string."""
    fmt = fmt.strip()
    if not fmt.startswith('"'):
        raise TraceError("the format string must be in double quotes")
    out = []
    for m in TOKEN_RE.finditer(fmt):
        tok = m.group(0)
        if tok.startswith('"'):
            if len(tok) < 2 or not tok.endswith('"'):
                raise TraceError("the format string is not terminated")
            out.append(tok[1:-1])
        elif m.group(1):
            out.append(m.group(1))
        else:
            raise TraceError(f"unknown token '{tok}' in the format string")
    body = "".join(out)
    if body.endswith("\\n"):
        raise TraceError("the format string must not end with a newline")
    return body.replace('\\"', '"').replace("\\t", "\t").replace("\\\\", "\\")


def python_format(cfmt: str, args: tuple[Arg, ...]) -> str:
    """Return the Python %-format for *cfmt*, checking it against *args*."""
    out = []
    pos = 0
    nconv = 0
    for m in CONV_RE.finditer(cfmt):
        out.append(cfmt[pos : m.start()].replace("%", "%%"))
        pos = m.end()
        conv = m.group("conv")
        if conv == "%":
            out.append("%%")
            continue
        if nconv >= len(args):
            raise TraceError("the format has more conversions than arguments")
        arg = args[nconv]
        nconv += 1
        if conv == "s" and arg.kind != "str":
            raise TraceError(f"%s given for non-string argument '{arg.name}'")
        if conv != "s" and arg.kind == "str":
            raise TraceError(f"%{conv} given for string argument '{arg.name}'")
        spec = m.group("flags") + m.group("width")
        if m.group("prec"):
            spec += "." + m.group("prec")
        if conv == "p":
            out.append("0x%" + spec + "x")
        elif conv == "u":
            out.append("%" + spec + "d")
        else:
            out.append("%" + spec + conv)
    rest = cfmt[pos:]
    if "%" in rest:
        raise TraceError(f"unsupported conversion in '{rest}'")
    out.append(rest)
    if nconv != len(args):
        raise TraceError(
            f"the format has {nconv} conversions for {len(args)} arguments"
        )
    return "".join(out)


def parse_line(line: str) -> Event | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    m = EVENT_RE.match(stripped)
    if not m:
        raise TraceError("expected 'name(type arg, ...) \"format\"'")
    props = set(m.group("props").split())
    unknown = props - PROPS
    if unknown & UNSUPPORTED_PROPS:
        raise TraceError(f"property '{sorted(unknown)[0]}' is not supported")
    if unknown:
        raise TraceError(f"unknown property '{sorted(unknown)[0]}'")
    if m.group("fmt") is None:
        raise TraceError("missing format string")
    args = parse_args(m.group("args"))
    fmt = parse_format(m.group("fmt"))
    python_format(fmt, args)  # checks the conversions
    return Event(m.group("name"), args, fmt, "disable" in props, 0)


def read_events(path: Path) -> list[Event]:
    events: list[Event] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        try:
            ev = parse_line(line)
        except TraceError as e:
            raise TraceError(f"{path}:{lineno}: {e}") from None
        if ev is None:
            continue
        if ev.name in seen:
            raise TraceError(
                f"{path}:{lineno}: event '{ev.name}' already defined at line "
                f"{seen[ev.name]}"
            )
        seen[ev.name] = lineno
        events.append(Event(ev.name, ev.args, ev.fmt, ev.disabled, lineno))
    return events


def generate(events: list[Event], group: str, source: str, backends: list[str]) -> str:
    active = [b for b in backends if b != "nop"]
    lines = [
        f'"""Trace events of group ``{group}``, generated from ``{source}``.',
        "",
        "Generated by scripts/tracetool.py at build time; do not edit.",
        '"""',
        "",
        "from qemu_api.trace import TraceEvent, register_group",
        "",
        "__all__ = [",
        *(f'    "trace_{ev.name}",' for ev in events),
        "]",
        "",
    ]
    for i, ev in enumerate(events):
        argspec = ", ".join(f"({a.ctype!r}, {a.name!r})" for a in ev.args)
        if len(ev.args) == 1:
            argspec += ","
        lines.append(
            f"_E{i} = TraceEvent({ev.name!r}, {ev.fmt!r}, "
            f"{python_format(ev.fmt, ev.args)!r}, ({argspec}), "
            f"group={group!r}, location={f'{source}:{ev.lineno}'!r}, "
            f"static_state={not ev.disabled!r})"
        )
    lines.append("")
    evlist = ", ".join(f"_E{i}" for i in range(len(events)))
    if len(events) == 1:
        evlist += ","
    lines.append(f"register_group({group!r}, ({evlist}))")
    for i, ev in enumerate(events):
        params = ", ".join(f"{a.name}: {a.pytype}" for a in ev.args)
        call = ", ".join(a.name for a in ev.args)
        if len(ev.args) == 1:
            call += ","
        lines += [
            "",
            "",
            f"def trace_{ev.name}({params}) -> None:",
            f'    """Trace event ``{ev.name}`` ({source}:{ev.lineno})."""',
        ]
        if ev.disabled or not active:
            lines.append("    return")
        else:
            lines += [f"    if _E{i}.state:", f"        _E{i}.emit(({call}))"]
    return "\n".join(lines) + "\n"


def generate_init(backends: list[str]) -> str:
    return (
        '"""Generated trace modules of this build, one per trace-events file.\n\n'
        'Generated by scripts/tracetool.py at build time; do not edit.\n"""\n\n'
        "from qemu_api.trace import set_configured_backends\n\n"
        f"BACKENDS: tuple[str, ...] = {tuple(backends)!r}\n"
        "set_configured_backends(BACKENDS)\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group")
    parser.add_argument("--backends", required=True)
    parser.add_argument("--source-name")
    parser.add_argument("--init", action="store_true")
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    bad = [b for b in backends if b not in BACKENDS]
    if bad or not backends:
        print(
            f"tracetool: unknown trace backend '{','.join(bad)}' (valid: "
            f"{', '.join(BACKENDS)})",
            file=sys.stderr,
        )
        return 1
    if args.init:
        args.paths[-1].write_text(generate_init(backends))
        return 0
    if len(args.paths) != 2 or not args.group:
        parser.error("INPUT, OUTPUT and --group are required")
    src, dst = args.paths
    try:
        events = read_events(src)
    except TraceError as e:
        print(f"tracetool: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"tracetool: {src}: {e.strerror}", file=sys.stderr)
        return 1
    dst.write_text(generate(events, args.group, args.source_name or str(src), backends))
    return 0


if __name__ == "__main__":
    sys.exit(main())
