#!/usr/bin/env python3
"""Generate the typed QMP dispatch module and the QMP reference from the schema.

Usage: qapi-gen.py SCHEMA [--init OUT] [--types OUT] [--module OUT] [--events OUT]
                          [--reference-module OUT] [--rst OUT]

SCHEMA is ``qapi/schema.json``: QEMU's QAPI schema language in strict JSON (see the
``doc`` at its top). The outputs, all for the build tree, are:

``--types``
    ``qapi.qapi_types``: the enums (:class:`enum.Enum`), QEMU's
    ``qapi-types-*.h``: what the runtime needs from the schema (the run states
    and shutdown causes), without the cost of importing all of it.
``--module``
    ``qapi.qmp_schema``: the enums (imported from ``qapi.qapi_types`` when
    ``--types`` is given), structs (frozen
    dataclasses), the ``QMPCommandHandlers`` protocol the monitor implements (one
    method per command, typed from the schema), the argument checking with QEMU's
    error messages, the conversion of results to JSON in member order, and the
    ``QMP_COMMANDS``/``QMP_EVENTS`` tables. It passes ``mypy --strict``.
``--events``
    ``qapi.qapi_events``: one typed sender per event,
    ``qapi_event_send_<name>(*, member: type, ...)``, which builds the event's
    data and hands it to ``qemu_api.qmp_event.qapi_event_emit`` (QEMU's
    ``qapi-events-*.h``). It passes ``mypy --strict``.
``--init``
    the ``qapi`` package ``__init__``.
``--rst``
    the QMP reference page (reStructuredText).
``--reference-module``
    ``qapi.qmp_reference``: a module whose docstring is that page, so that Sphinx
    includes it with ``.. automodule:: qapi.qmp_reference``.

A malformed schema fails with ``SCHEMA: definition NAME: reason`` and exit status 1.
"""

from __future__ import annotations

import argparse
import builtins
import json
import keyword
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

BUILTIN_TYPES = {
    "str": "str",
    "int": "int",
    "bool": "bool",
    "number": "float",
    "any": "JSONValue",
}
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
KIND_KEYS = {
    "enum": {"enum", "data", "doc", "members", "since", "notes"},
    "struct": {"struct", "data", "doc", "members", "since", "notes"},
    "command": {
        "command",
        "data",
        "returns",
        "doc",
        "members",
        "returns-doc",
        "since",
        "notes",
        "example",
        "allow-oob",
        "allow-preconfig",
        "success-response",
    },
    "event": {"event", "data", "doc", "members", "since", "notes", "example"},
}


class SchemaError(Exception):
    """A mistake in the schema, reported as ``FILE: definition NAME: reason``."""


# -- the schema model ----------------------------------------------------------------


@dataclass
class TypeRef:
    """A member or return type: a builtin, an enum/struct name, or a list of one."""

    name: str
    is_list: bool = False

    def text(self) -> str:
        return f"[{self.name}]" if self.is_list else self.name


@dataclass
class Member:
    name: str
    type: TypeRef
    optional: bool
    doc: str

    @property
    def py(self) -> str:
        return py_name(self.name)


@dataclass
class Definition:
    kind: str
    name: str
    doc: str
    since: str | None
    notes: str | None
    members: list[Member] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    value_docs: dict[str, str] = field(default_factory=dict)
    returns: TypeRef | None = None
    returns_doc: str | None = None
    example: str | None = None
    allow_oob: bool = False
    allow_preconfig: bool = False
    success_response: bool = True


def py_name(name: str, *, avoid_builtins: bool = True) -> str:
    """The Python spelling of a QAPI name (QAPI's ``c_name``).

    ``-`` becomes ``_``; names that are Python keywords (and, for members, names of
    builtins) get a trailing ``_`` (``property`` -> ``property_``).
    """
    out = name.replace("-", "_").replace(".", "_")
    if keyword.iskeyword(out) or (avoid_builtins and out in dir(builtins)):
        out += "_"
    return out


def method_name(command: str) -> str:
    """The handler method of a command: ``query-status`` -> ``query_status``."""
    return py_name(command, avoid_builtins=False)


def enum_member_name(value: str) -> str:
    """The Python name of an enum value: ``internal-error`` -> ``INTERNAL_ERROR``."""
    out = value.replace("-", "_").replace(".", "_").upper()
    if out[0].isdigit():
        out = "_" + out
    return out


def parse_type(where: str, raw: object) -> TypeRef:
    if isinstance(raw, str):
        return TypeRef(raw)
    if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], str):
        return TypeRef(raw[0], is_list=True)
    raise SchemaError(
        f'{where}: a type is a name or a one-element list like ["T"], not {raw!r}'
    )


def parse_schema(path: Path) -> tuple[str, list[Definition]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SchemaError(f"not valid JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("definitions"), list):
        raise SchemaError('the top level must be {"doc": ..., "definitions": [...]}')
    defs: list[Definition] = []
    seen: dict[str, str] = {}
    for raw in data["definitions"]:
        if not isinstance(raw, dict) or not raw:
            raise SchemaError(f"a definition must be a JSON object, not {raw!r}")
        kind = next(iter(raw))
        if kind not in KIND_KEYS:
            raise SchemaError(
                f"a definition starts with one of {', '.join(sorted(KIND_KEYS))}, "
                f"not {kind!r}"
            )
        name = raw[kind]
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise SchemaError(f"{kind} {name!r}: invalid name")
        where = f"definition {name}"
        unknown = set(raw) - KIND_KEYS[kind]
        if unknown:
            raise SchemaError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}; a {kind} "
                f"takes {', '.join(sorted(KIND_KEYS[kind]))}"
            )
        namespace = (
            "event" if kind == "event" else ("command" if kind == "command" else "type")
        )
        key = f"{namespace}:{name}"
        if key in seen:
            raise SchemaError(f"{where}: defined twice")
        seen[key] = kind
        doc = raw.get("doc")
        if not isinstance(doc, str) or not doc.strip():
            raise SchemaError(f"{where}: every definition needs a 'doc' text")
        d = Definition(kind, name, doc, raw.get("since"), raw.get("notes"))
        member_docs = raw.get("members", {})
        if not isinstance(member_docs, dict):
            raise SchemaError(f"{where}: 'members' maps member names to their docs")
        if kind == "enum":
            values = raw.get("data")
            if not isinstance(values, list) or not all(
                isinstance(v, str) for v in values
            ):
                raise SchemaError(f"{where}: an enum's 'data' is a list of strings")
            if len(set(values)) != len(values):
                raise SchemaError(f"{where}: duplicate enum value")
            d.values = values
            for v in values:
                if v not in member_docs:
                    raise SchemaError(f"{where}: value '{v}' is not documented")
            d.value_docs = dict(member_docs)
        else:
            members = raw.get("data", {})
            if not isinstance(members, dict):
                raise SchemaError(f"{where}: 'data' maps member names to types")
            if kind == "struct" and not members:
                raise SchemaError(f"{where}: a struct needs members")
            py_seen: set[str] = set()
            for mname, mtype in members.items():
                optional = mname.startswith("*")
                bare = mname[1:] if optional else mname
                if not NAME_RE.match(bare):
                    raise SchemaError(f"{where}: invalid member name {mname!r}")
                if py_name(bare) in py_seen:
                    raise SchemaError(f"{where}: members clash in Python: {bare}")
                py_seen.add(py_name(bare))
                mdoc = member_docs.get(bare)
                if not isinstance(mdoc, str):
                    raise SchemaError(f"{where}: member '{bare}' is not documented")
                d.members.append(
                    Member(bare, parse_type(f"{where}.{bare}", mtype), optional, mdoc)
                )
            extra = set(member_docs) - {m.name for m in d.members}
            if extra:
                raise SchemaError(
                    f"{where}: 'members' documents unknown member(s) "
                    f"{', '.join(sorted(extra))}"
                )
        if kind == "command":
            if "returns" in raw:
                d.returns = parse_type(f"{where}.returns", raw["returns"])
            d.returns_doc = raw.get("returns-doc")
            d.example = raw.get("example")
            d.allow_oob = bool(raw.get("allow-oob", False))
            d.allow_preconfig = bool(raw.get("allow-preconfig", False))
            d.success_response = bool(raw.get("success-response", True))
        if kind == "event":
            d.example = raw.get("example")
        defs.append(d)
    check_types(defs)
    top_doc = data.get("doc", "")
    return (top_doc if isinstance(top_doc, str) else "", defs)


def check_types(defs: list[Definition]) -> None:
    types = {d.name: d for d in defs if d.kind in ("enum", "struct")}
    for d in defs:
        refs = [(f"member '{m.name}'", m.type) for m in d.members]
        if d.returns is not None:
            refs.append(("returns", d.returns))
        for what, ref in refs:
            if ref.name in BUILTIN_TYPES:
                continue
            if ref.name not in types:
                known = ", ".join(sorted([*BUILTIN_TYPES, *types]))
                raise SchemaError(
                    f"definition {d.name}: {what} has unknown type '{ref.name}' "
                    f"(known: {known}); define it before use or fix the spelling"
                )
        if d.kind in ("command", "event"):
            for m in d.members:
                target = types.get(m.type.name)
                if (
                    d.kind == "command"
                    and target is not None
                    and (target.kind == "struct")
                ):
                    raise SchemaError(
                        f"definition {d.name}: struct-typed arguments are not "
                        f"supported yet (member '{m.name}')"
                    )


# -- Python module ---------------------------------------------------------------------


def py_type(ref: TypeRef, defs: dict[str, Definition]) -> str:
    base = BUILTIN_TYPES.get(ref.name, ref.name)
    return f"list[{base}]" if ref.is_list else base


def in_conv(ref: TypeRef, defs: dict[str, Definition]) -> str:
    """The expression of the input converter of a type."""
    builtin = ref.name in BUILTIN_TYPES
    base = f"_in_{ref.name}" if builtin else f"_in_enum_{ref.name}"
    return f"_in_list({base})" if ref.is_list else base


def out_expr(ref: TypeRef, value: str, defs: dict[str, Definition]) -> str:
    """An expression turning ``value`` (of the Python type of ``ref``) into JSON."""
    target = defs.get(ref.name)
    if target is None:
        one = "{v}"
    elif target.kind == "enum":
        one = "{v}.value"
    else:
        one = "_out_" + ref.name + "({v})"
    if ref.is_list:
        if one == "{v}":
            return f"list({value})"
        return "[" + one.format(v="x") + f" for x in {value}]"
    return one.format(v=value)


def first_line(text: str) -> str:
    return text.strip().split("\n\n")[0].replace("\n", " ")


def pydoc(text: str, indent: str) -> str:
    body = text.strip().replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = body.split("\n")
    out = [indent + '"""' + lines[0]]
    out.extend((indent + line) if line else "" for line in lines[1:])
    if len(lines) > 1:
        out.append(indent + '"""')
    else:
        out[-1] += '"""'
    return "\n".join(out)


RUNTIME = '''
def _type_error(name: str, expected: str) -> Error:
    return Error(f"Invalid parameter type for '{name}', expected: {expected}")


def _in_str(name: str, value: JSONValue) -> str:
    if not isinstance(value, str):
        raise _type_error(name, "string")
    return value


def _in_int(name: str, value: JSONValue) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not -(1 << 63) <= value < (1 << 63)
    ):
        raise _type_error(name, "integer")
    return value


def _in_bool(name: str, value: JSONValue) -> bool:
    if not isinstance(value, bool):
        raise _type_error(name, "boolean")
    return value


def _in_number(name: str, value: JSONValue) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _type_error(name, "number")
    return float(value)


def _in_any(name: str, value: JSONValue) -> JSONValue:
    return value


def _in_enum(name: str, value: JSONValue, cls: type[E]) -> E:
    text = _in_str(name, value)
    for member in cls:
        if member.value == text:
            return member
    # QEMU names list elements NULL here (qapi-visit-core.c input_type_enum).
    shown = "null" if name.endswith("]") else name
    raise Error(f"Parameter '{shown}' does not accept value '{text}'")


def _in_list(
    element: Callable[[str, JSONValue], T],
) -> Callable[[str, JSONValue], list[T]]:
    def convert(name: str, value: JSONValue) -> list[T]:
        if not isinstance(value, list):
            raise _type_error(name, "array")
        return [element(f"{name}[{i}]", v) for i, v in enumerate(value)]

    return convert


@final
class _InputVisitor:
    """Takes members out of ``arguments`` in schema order, as QEMU's visitor."""

    def __init__(self, args: dict[str, JSONValue]) -> None:
        self._args = args
        self._taken: set[str] = set()

    def required(self, name: str, convert: Callable[[str, JSONValue], T]) -> T:
        if name not in self._args:
            raise Error(f"Parameter '{name}' is missing")
        self._taken.add(name)
        return convert(name, self._args[name])

    def optional(
        self, name: str, convert: Callable[[str, JSONValue], T]
    ) -> T | None:
        if name not in self._args:
            return None
        self._taken.add(name)
        return convert(name, self._args[name])

    def check_struct(self) -> None:
        for name in self._args:
            if name not in self._taken:
                raise Error(f"Parameter '{name}' is unexpected")


def _put(out: dict[str, JSONValue], name: str, value: JSONValue | None) -> None:
    if value is not None:
        out[name] = value
'''


def gen_enum(d: Definition) -> list[str]:
    """The class of the enum ``d``."""
    out = ["", "@final", f"class {d.name}(enum.Enum):", pydoc(d.doc, "    "), ""]
    for v in d.values:
        out.append(f'    {enum_member_name(v)} = "{v}"')
        out.append(pydoc(d.value_docs[v], "    "))
    out.append("")
    return out


def gen_module(
    top_doc: str, defs: list[Definition], source: str, *, types: bool = False
) -> str:
    """The ``qapi.qmp_schema`` module.

    With ``types``, it imports the enums from ``qapi.qapi_types``
    (:func:`gen_types`) instead of defining them.
    """
    by_name = {d.name: d for d in defs if d.kind in ("enum", "struct")}
    enums = [d for d in defs if d.kind == "enum"]
    structs = [d for d in defs if d.kind == "struct"]
    commands = [d for d in defs if d.kind == "command"]
    events = [d for d in defs if d.kind == "event"]
    out: list[str] = []
    w = out.append
    w(
        f'"""The QMP schema as typed Python (generated from ``{source}``).\n\n'
        "Generated by scripts/qapi-gen.py; do not edit. The monitor implements\n"
        ":class:`QMPCommandHandlers` and dispatches through :data:`QMP_COMMANDS`;\n"
        "argument errors carry QEMU's messages.\n"
        '"""'
    )
    w("")
    w("from __future__ import annotations")
    w("")
    w("import enum")
    w("from collections.abc import Callable")
    w("from dataclasses import dataclass")
    w("from typing import Final, Protocol, TypeVar, final")
    w("")
    if enums and types:
        w(f"from qapi.qapi_types import {', '.join(sorted(d.name for d in enums))}")
    w("from qemu_api.error import Error")
    w("from qemu_api.qom import JSONValue")
    w("")
    names = (
        [d.name for d in enums]
        + [d.name for d in structs]
        + ["QAPICommand", "QMPCommandHandlers", "QMP_COMMANDS", "QMP_EVENTS"]
    )
    w("__all__ = [")
    for n in sorted(names):
        w(f'    "{n}",')
    w("]")
    w("")
    w('T = TypeVar("T")')
    w('E = TypeVar("E", bound=enum.Enum)')
    w("")
    if not types:
        for d in enums:
            out.extend(gen_enum(d))
    for d in structs:
        w("")
        w("@final")
        w("@dataclass(frozen=True, kw_only=True)")
        w(f"class {d.name}:")
        w(pydoc(d.doc, "    "))
        w("")
        for m in d.members:
            t = py_type(m.type, by_name)
            if m.optional:
                w(f"    {m.py}: {t} | None = None")
            else:
                w(f"    {m.py}: {t}")
            w(pydoc(m.doc + (" (optional)" if m.optional else ""), "    "))
        w("")
    w(RUNTIME)
    for d in enums:
        w("")
        w(f"def _in_enum_{d.name}(name: str, value: JSONValue) -> {d.name}:")
        w(f"    return _in_enum(name, value, {d.name})")
        w("")
    for d in structs:
        w("")
        w(f"def _out_{d.name}(v: {d.name}) -> dict[str, JSONValue]:")
        w("    out: dict[str, JSONValue] = {}")
        for m in d.members:
            attr = f"v.{m.py}"
            if m.optional:
                if m.type.name in BUILTIN_TYPES and not m.type.is_list:
                    w(f'    _put(out, "{m.name}", {attr})')
                else:
                    w(f"    if {attr} is not None:")
                    w(f'        out["{m.name}"] = {out_expr(m.type, attr, by_name)}')
            else:
                w(f'    out["{m.name}"] = {out_expr(m.type, attr, by_name)}')
        w("    return out")
        w("")
    # The handler protocol.
    w("")
    w("class QMPCommandHandlers(Protocol):")
    w('    """What the monitor implements: one method per QMP command.')
    w("")
    w("    Methods are named after the commands (``query-status`` ->")
    w("    ``query_status``); arguments are keyword-only, with ``None`` for an")
    w("    optional argument the client left out.")
    w('    """')
    for d in commands:
        params = "".join(
            f", {m.py}: {py_type(m.type, by_name)}" + (" | None" if m.optional else "")
            for m in d.members
        )
        if d.members:
            params = ", *" + params
        ret = py_type(d.returns, by_name) if d.returns is not None else "None"
        w("")
        w(f"    def {method_name(d.name)}(self{params}) -> {ret}:")
        w(pydoc(f"``{d.name}``: {first_line(d.doc)}", "        "))
        w("        ...")
    w("")
    w("")
    w("@final")
    w("@dataclass(frozen=True)")
    w("class QAPICommand:")
    w('    """One entry of :data:`QMP_COMMANDS`."""')
    w("")
    w("    name: str")
    w('    """The command name."""')
    w("    marshal: Callable[[QMPCommandHandlers, dict[str, JSONValue]], JSONValue]")
    w('    """Check the arguments, call the handler, return the JSON result."""')
    w("    allow_oob: bool")
    w('    """Whether ``exec-oob`` may run it."""')
    w("    allow_preconfig: bool")
    w('    """Whether it runs before the machine is configured."""')
    w("    success_response: bool")
    w('    """Whether success is answered (``{"return": ...}``)."""')
    w("    has_return: bool")
    w('    """Whether the schema declares a return value."""')
    w("")
    for d in commands:
        fn = f"_marshal_{method_name(d.name)}"
        w("")
        w(f"def {fn}(h: QMPCommandHandlers, args: dict[str, JSONValue]) -> JSONValue:")
        w("    v = _InputVisitor(args)")
        for m in d.members:
            how = "optional" if m.optional else "required"
            w(f'    {m.py} = v.{how}("{m.name}", {in_conv(m.type, by_name)})')
        w("    v.check_struct()")
        call_args = ", ".join(f"{m.py}={m.py}" for m in d.members)
        call = f"h.{method_name(d.name)}({call_args})"
        if d.returns is None:
            w(f"    {call}")
            w("    return {}")
        else:
            w(f"    ret = {call}")
            w(f"    return {out_expr(d.returns, 'ret', by_name)}")
        w("")
    w("")
    w("QMP_COMMANDS: Final[dict[str, QAPICommand]] = {")
    for d in commands:
        fn = f"_marshal_{method_name(d.name)}"
        w(
            f'    "{d.name}": QAPICommand("{d.name}", {fn}, {d.allow_oob}, '
            f"{d.allow_preconfig}, {d.success_response}, {d.returns is not None}),"
        )
    w("}")
    w('"""The commands, in schema order (QEMU registers them in this order)."""')
    w("")
    w("QMP_EVENTS: Final[dict[str, tuple[str, ...]]] = {")
    for d in events:
        members = "".join(f'"{m.name}", ' for m in d.members)
        w(f'    "{d.name}": ({members}),')
    w("}")
    w('"""The events and the names of their data members."""')
    w("")
    return "\n".join(out)


# -- event senders --------------------------------------------------------------------


def event_sender_name(event: str) -> str:
    """The sender of an event: ``RTC_CHANGE`` -> ``qapi_event_send_rtc_change``."""
    return "qapi_event_send_" + py_name(event.lower(), avoid_builtins=False)


def gen_types(defs: list[Definition], source: str) -> str:
    """The ``qapi.qapi_types`` module: the schema's enums."""
    enums = [d for d in defs if d.kind == "enum"]
    out: list[str] = []
    w = out.append
    w(
        f'"""The QMP enums (generated from ``{source}``).\n\n'
        "Generated by scripts/qapi-gen.py; do not edit. This is QEMU's generated\n"
        "``qapi-types-*.h`` for the enums: :mod:`qapi.qmp_schema` re-exports them,\n"
        "and the runtime (run states, shutdown causes, events) imports them from\n"
        "here without importing the whole schema.\n"
        '"""'
    )
    w("")
    w("from __future__ import annotations")
    w("")
    w("import enum")
    w("from typing import final")
    w("")
    w("__all__ = [")
    for d in sorted(enums, key=lambda d: d.name):
        w(f'    "{d.name}",')
    w("]")
    w("")
    for d in enums:
        out.extend(gen_enum(d))
    return "\n".join(out).rstrip() + "\n"


def gen_events(defs: list[Definition], source: str, *, types: bool = False) -> str:
    """The ``qapi.qapi_events`` module: one typed sender per event.

    With ``types``, the enums come from ``qapi.qapi_types``, so that sending
    an event does not import the whole schema.
    """
    by_name = {d.name: d for d in defs if d.kind in ("enum", "struct")}
    events = [d for d in defs if d.kind == "event"]
    used = sorted(
        {m.type.name for d in events for m in d.members if m.type.name in by_name}
    )
    converters = sorted(
        {
            f"_out_{m.type.name}"
            for d in events
            for m in d.members
            if by_name.get(m.type.name) is not None
            and by_name[m.type.name].kind == "struct"
        }
    )
    out: list[str] = []
    w = out.append
    w(
        f'"""The QMP events as typed senders (generated from ``{source}``).\n\n'
        "Generated by scripts/qapi-gen.py; do not edit. This is QEMU's generated\n"
        "``qapi-events-*.h``: one function per event, ``qapi_event_send_<name>()``,\n"
        "whose keyword arguments are the event's members with their schema types\n"
        "(``qom-path`` becomes ``qom_path``; an optional member defaults to None and\n"
        "is left out of the event). Each builds the event's data in schema order and\n"
        "hands it to :func:`qemu_api.qmp_event.qapi_event_emit`, which delivers it\n"
        "to the monitors.\n"
        '"""'
    )
    w("")
    w("from __future__ import annotations")
    w("")
    enum_types = [n for n in used if types and by_name[n].kind == "enum"]
    schema_names = [n for n in used if n not in enum_types] + converters
    if enum_types:
        w(f"from qapi.qapi_types import {', '.join(enum_types)}")
    if schema_names:
        w(f"from qapi.qmp_schema import {', '.join(schema_names)}")
    w("from qemu_api.qmp_event import qapi_event_emit")
    w("from qemu_api.qom import JSONValue")
    w("")
    w("__all__ = [")
    for d in sorted(events, key=lambda d: event_sender_name(d.name)):
        w(f'    "{event_sender_name(d.name)}",')
    w("]")
    for d in events:
        params = ", ".join(
            f"{m.py}: {py_type(m.type, by_name)}"
            + (" | None = None" if m.optional else "")
            for m in d.members
        )
        if params:
            params = "*, " + params
        doc = textwrap.wrap(f"Send ``{d.name}``: {first_line(d.doc)}", 80)
        if d.members:
            doc += ["", "Args:"]
            for m in d.members:
                opt = " (optional)" if m.optional else ""
                doc += textwrap.wrap(
                    f"{m.py}: {first_line(m.doc)}{opt}",
                    80,
                    initial_indent="    ",
                    subsequent_indent="        ",
                )
        w("")
        w("")
        w(f"def {event_sender_name(d.name)}({params}) -> None:")
        w(pydoc("\n".join(doc), "    "))
        required = [m for m in d.members if not m.optional]
        items = ", ".join(
            f'"{m.name}": {out_expr(m.type, m.py, by_name)}' for m in required
        )
        w(f"    data: dict[str, JSONValue] = {{{items}}}")
        for m in d.members:
            if m.optional:
                w(f"    if {m.py} is not None:")
                w(f'        data["{m.name}"] = {out_expr(m.type, m.py, by_name)}')
        w(f'    qapi_event_emit("{d.name}", data)')
    w("")
    return "\n".join(out)


# -- reference page --------------------------------------------------------------------


def rst_type(ref: TypeRef, defs: dict[str, Definition]) -> str:
    if ref.name in defs:
        inner = f":ref:`{ref.name} <qapi-{ref.name}>`"
    else:
        inner = f"``{ref.name}``"
    return f"array of {inner}" if ref.is_list else inner


def indent(text: str, by: str) -> str:
    return "\n".join((by + line) if line else "" for line in text.split("\n"))


def gen_rst(top_doc: str, defs: list[Definition], title: bool) -> str:
    by_name = {d.name: d for d in defs if d.kind in ("enum", "struct")}
    out: list[str] = []
    w = out.append
    if title:
        w("QMP reference")
        w("=============")
        w("")
    w(
        "The commands and events pyqemu's QMP monitor serves, generated from "
        "``qapi/schema.json``. Messages and JSON layout follow QEMU 7.2."
    )
    w("")

    def section(name: str, underline: str) -> None:
        w(name)
        w(underline * len(name))
        w("")

    def common(d: Definition) -> None:
        w(d.doc.strip())
        w("")

    def members(d: Definition, label: str) -> None:
        if not d.members:
            return
        w(f":{label}:")
        for m in d.members:
            opt = ", optional" if m.optional else ""
            w(f"   * ``{m.name}`` ({rst_type(m.type, by_name)}{opt}) -- {m.doc}")
        w("")

    def tail(d: Definition) -> None:
        if d.notes:
            w(f":Notes: {d.notes}")
            w("")
        if d.since:
            w(f":Since: QEMU {d.since}")
            w("")
        if d.example:
            w("Example::")
            w("")
            w(indent(d.example, "   "))
            w("")

    commands = [d for d in defs if d.kind == "command"]
    events = [d for d in defs if d.kind == "event"]
    types = [d for d in defs if d.kind in ("enum", "struct")]
    section("Commands", "-")
    for d in commands:
        w(f".. _qapi-cmd-{d.name}:")
        w("")
        section(d.name, "~")
        common(d)
        members(d, "Arguments")
        if d.returns is not None:
            ret = rst_type(d.returns, by_name)
            rdoc = f" -- {d.returns_doc}" if d.returns_doc else ""
            w(f":Returns: {ret}{rdoc}")
            w("")
        elif d.returns_doc:
            w(f":Returns: {d.returns_doc}")
            w("")
        tail(d)
    section("Events", "-")
    for d in events:
        section(d.name, "~")
        common(d)
        members(d, "Data")
        tail(d)
    section("Types", "-")
    for d in types:
        w(f".. _qapi-{d.name}:")
        w("")
        section(d.name, "~")
        common(d)
        if d.kind == "enum":
            w(":Values:")
            for v in d.values:
                w(f"   * ``{v}`` -- {d.value_docs[v]}")
            w("")
        else:
            members(d, "Members")
        tail(d)
    return "\n".join(out).rstrip("\n") + "\n"


INIT = '''"""Modules generated at build time from ``qapi/schema.json``.

scripts/qapi-gen.py writes them:

- :mod:`qapi.qmp_schema`: the typed QMP command table the monitor dispatches
  through;
- :mod:`qapi.qapi_events`: the typed event senders models call;
- :mod:`qapi.qmp_reference`: the QMP reference page (its docstring).

Nothing here is committed: the source directory ``qapi/`` holds only the schema and
its ``meson.build``.
"""
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("schema", type=Path)
    parser.add_argument("--init", type=Path)
    parser.add_argument("--types", type=Path)
    parser.add_argument("--module", type=Path)
    parser.add_argument("--events", type=Path)
    parser.add_argument("--reference-module", type=Path)
    parser.add_argument("--rst", type=Path)
    args = parser.parse_args()
    try:
        top_doc, defs = parse_schema(args.schema)
    except (SchemaError, OSError) as e:
        print(f"{args.schema}: {e}", file=sys.stderr)
        return 1
    source = "qapi/" + args.schema.name
    if args.init is not None:
        args.init.write_text(INIT, encoding="utf-8")
    if args.types is not None:
        args.types.write_text(gen_types(defs, source), encoding="utf-8")
    if args.module is not None:
        args.module.write_text(
            gen_module(top_doc, defs, source, types=args.types is not None),
            encoding="utf-8",
        )
    if args.events is not None:
        args.events.write_text(
            gen_events(defs, source, types=args.types is not None), encoding="utf-8"
        )
    if args.rst is not None:
        args.rst.write_text(gen_rst(top_doc, defs, title=True), encoding="utf-8")
    if args.reference_module is not None:
        text = gen_rst(top_doc, defs, title=False)
        args.reference_module.write_text(
            f"{text!r}\n\n__all__: list[str] = []\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
