r"""The human monitor (HMP) behind QMP's ``human-monitor-command``.

This module models the parts of QEMU's ``monitor/hmp.c`` (command lookup and
argument parsing), ``monitor/hmp-cmds.c``, ``hw/core/qdev-monitor.c``
(``info qtree``), ``qom/qom-hmp-cmds.c`` (``info qom-tree``) and
``chardev/char.c`` (``info chardev``) that pyqemu has, with QEMU's texts:

========================  ==============================================
``help [cmd]``            the command list, or the help of ``cmd``
``info chardev``          ``LABEL: filename=FILENAME`` per chardev
``info mtree [-f][-D]``   the memory tree (``-f``: flat views, ``-D``:
                          disabled regions too)
``info qom-tree [path]``  the QOM composition tree below ``/machine``
``info qtree``            buses and devices with properties
``info status``           ``VM status: running`` or ``paused (state)``
``info irq``              interrupt statistics (none kept: empty)
``info migrate``          the migration globals and the last migration
``info registers [-a]``   the monitor's CPU's registers (``-a``: all)
``info version``          the QMP version triple and the package
``stop``/``s``            stop the machine
``cont``/``c``            resume it
``system_reset``          reset the machine
``quit``/``q``            exit
========================  ==============================================

As in QEMU, each HMP command calls the QMP command it presents
(``info status`` calls ``query-status``), and the output uses ``\r\n`` line
endings.

>>> from system.monitor.commands import MonitorCommands
>>> handle_hmp_command(MonitorCommands(None), "frobnicate now")
"unknown command: 'frobnicate'\r\n"
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, final

from hw.core.cpu import cpu_foreach
from qapi.qmp_schema import QMPCommandHandlers
from qemu_api.error import Error
from qemu_api.memory import mtree_info
from qemu_api.qdev import BusState, DeviceState, qdev_get_machine
from qemu_api.qom import JSONValue, Object, object_get_root, object_resolve_path
from qemu_api.sysbus import SysBusDevice, sysbus_get_default

__all__ = [
    "HMP_COMMANDS",
    "HMP_INFO_COMMANDS",
    "HMPArgs",
    "HMPCommand",
    "handle_hmp_command",
    "size_to_str",
]

HMPArgs = dict[str, "str | bool"]
"""Parsed arguments: flags (``-f``) as booleans, strings as strings."""


@final
class _Output:
    """What a command prints (QEMU's ``monitor_printf`` into ``outbuf``)."""

    def __init__(
        self,
        qmp: QMPCommandHandlers,
        cpu_index: int = 0,
        history: Sequence[str] | None = None,
    ) -> None:
        self.qmp = qmp
        self.cpu_index = cpu_index
        self.history = history
        self._parts: list[str] = []

    def print(self, text: str) -> None:
        self._parts.append(text)

    def error(self, err: Error) -> None:
        """``hmp_handle_error``: ``Error: MESSAGE``."""
        self._parts.append(f"Error: {err.msg}\n")

    def text(self) -> str:
        return "".join(self._parts).replace("\n", "\r\n")


HMPHandler = Callable[[_Output, HMPArgs], None]


@final
@dataclass(frozen=True)
class HMPCommand:
    """One entry of an HMP command table (QEMU's ``HMPCommand``).

    ``name`` may list aliases (``cont|c``); ``args_type`` is QEMU's argument
    description (``key:-f`` for a flag, ``key:s?`` for an optional word,
    ``key:S?`` for the optional rest of the line); ``params`` and ``help``
    are what ``help`` prints.
    """

    name: str
    args_type: str
    params: str
    help: str
    handler: HMPHandler
    sub_table: tuple[HMPCommand, ...] = ()


class _ArgError(Exception):
    """An argument error; its message is printed as is."""


def _isspace(c: str) -> bool:
    return c in " \t\n\r\v\f"


def _skip_space(line: str, p: int) -> int:
    while p < len(line) and _isspace(line[p]):
        p += 1
    return p


def _get_str(line: str, p: int) -> tuple[str, int] | None:
    """QEMU's ``get_str``: a word, or a double-quoted string with escapes."""
    p = _skip_space(line, p)
    if p >= len(line):
        return None
    out: list[str] = []
    if line[p] == '"':
        p += 1
        while p < len(line) and line[p] != '"':
            if line[p] == "\\":
                c = line[p + 1] if p + 1 < len(line) else ""
                p += 2
                if c == "n":
                    out.append("\n")
                elif c == "r":
                    out.append("\r")
                elif c in ("\\", "'", '"'):
                    out.append(c)
                else:
                    return None
            else:
                out.append(line[p])
                p += 1
        if p >= len(line):
            return None
        return ("".join(out), p + 1)
    start = p
    while p < len(line) and not _isspace(line[p]):
        p += 1
    return (line[start:p], p)


def _parse_arguments(cmd: HMPCommand, line: str, p: int) -> HMPArgs:
    """QEMU's ``monitor_parse_arguments`` for the argument types pyqemu uses."""
    short = cmd.name.split("|")[0]
    args: HMPArgs = {}
    specs = [s for s in cmd.args_type.split(",") if s]
    for i, spec in enumerate(specs):
        key, _, kind = spec.partition(":")
        rest = ",".join(specs[i + 1 :])
        if kind.startswith("-"):
            flag = kind[1]
            p = _skip_space(line, p)
            if p < len(line) and line[p] == "-":
                opt = line[p + 1] if p + 1 < len(line) else ""
                if opt == flag:
                    args[key] = True
                    p += 2
                elif f"-{opt}" not in rest:
                    raise _ArgError(f"{short}: unsupported option -{opt}\n")
        elif kind in ("s", "s?"):
            p = _skip_space(line, p)
            if kind == "s?" and p >= len(line):
                continue
            got = _get_str(line, p)
            if got is None:
                raise _ArgError(f"{short}: string expected\n")
            args[key], p = got
        elif kind in ("S", "S?"):
            p = _skip_space(line, p)
            if kind == "S?" and p >= len(line):
                continue
            if p >= len(line):
                raise _ArgError(f"{short}: string expected\n")
            args[key] = line[p:]
            p = len(line)
    p = _skip_space(line, p)
    if p < len(line):
        raise _ArgError(f"{short}: extraneous characters at the end of line\n")
    return args


def _compare_cmd(name: str, names: str) -> bool:
    """QEMU's ``hmp_compare_cmd``: ``name`` is one of ``a|b|c``."""
    return name in names.split("|")


def _command_name(line: str, p: int) -> tuple[str, int] | None:
    """QEMU's ``get_command_name``: up to a space or ``/``."""
    p = _skip_space(line, p)
    if p >= len(line):
        return None
    start = p
    while p < len(line) and line[p] != "/" and not _isspace(line[p]):
        p += 1
    return (line[start:p], p)


def _find(table: tuple[HMPCommand, ...], name: str) -> HMPCommand | None:
    for cmd in table:
        if _compare_cmd(name, cmd.name):
            return cmd
    return None


def handle_hmp_command(
    qmp: QMPCommandHandlers,
    command_line: str,
    cpu_index: int = 0,
    history: Sequence[str] | None = None,
) -> str:
    r"""Run one HMP command line and return what it prints (``handle_hmp_command``).

    Args:
        qmp: the QMP command handlers the HMP commands call.
        command_line: the line, as typed at the ``(qemu)`` prompt.
        cpu_index: the monitor's current CPU (``info registers``, ``info cpus``).
        history: the monitor's line history, oldest first, for ``info
            history``; None for a monitor without line editing (QMP's
            ``human-monitor-command``), where it prints nothing, as in QEMU.

    Returns:
        The output with ``\r\n`` line endings; empty for a blank line.
    """
    out = _Output(qmp, cpu_index, history)
    table = HMP_COMMANDS
    p = 0
    cmd: HMPCommand | None = None
    while True:
        got = _command_name(command_line, p)
        if got is None:
            if cmd is None:
                return ""
            break
        name, end = got
        found = _find(table, name)
        if found is None:
            out.print(f"unknown command: '{command_line[:end]}'\n")
            return out.text()
        cmd = found
        p = _skip_space(command_line, end)
        if not cmd.sub_table or p >= len(command_line):
            break
        table = cmd.sub_table
    try:
        args = _parse_arguments(cmd, command_line, p)
    except _ArgError as e:
        out.print(str(e))
        out.print(f'Try "help {command_line[:p].strip()}" for more information\n')
        return out.text()
    try:
        cmd.handler(out, args)
    except Error as e:
        out.error(e)
    return out.text()


# -- help ------------------------------------------------------------------------


def _help_dump_one(out: _Output, cmd: HMPCommand, prefix: list[str]) -> None:
    lead = "".join(f"{a} " for a in prefix)
    out.print(f"{lead}{cmd.name} {cmd.params} -- {cmd.help}\n")


def _help_dump(
    out: _Output, table: tuple[HMPCommand, ...], args: list[str], index: int
) -> None:
    """QEMU's ``help_cmd_dump``."""
    if index >= len(args):
        for cmd in table:
            _help_dump_one(out, cmd, args[:index])
        return
    for cmd in table:
        if _compare_cmd(args[index], cmd.name):
            if cmd.sub_table:
                _help_dump(out, cmd.sub_table, args, index + 1)
            else:
                _help_dump_one(out, cmd, args[:index])
            return
    out.print("unknown command: '" + " ".join(args[: index + 1]) + "'\n")


def _split_words(text: str) -> list[str]:
    words: list[str] = []
    p = 0
    while True:
        got = _get_str(text, p)
        if got is None:
            return words
        word, p = got
        words.append(word)


def _hmp_help(out: _Output, args: HMPArgs) -> None:
    name = args.get("name")
    words = _split_words(name) if isinstance(name, str) else []
    _help_dump(out, HMP_COMMANDS, words, 0)


def _hmp_info_help(out: _Output, args: HMPArgs) -> None:
    _help_dump(out, HMP_COMMANDS, ["info"], 0)


# -- run state ---------------------------------------------------------------------


def _hmp_stop(out: _Output, args: HMPArgs) -> None:
    out.qmp.stop()


def _hmp_cont(out: _Output, args: HMPArgs) -> None:
    out.qmp.cont()


def _hmp_system_reset(out: _Output, args: HMPArgs) -> None:
    out.qmp.system_reset()


def _hmp_quit(out: _Output, args: HMPArgs) -> None:
    out.qmp.quit()


def _hmp_info_status(out: _Output, args: HMPArgs) -> None:
    """``hmp_info_status``."""
    info = out.qmp.query_status()
    text = "VM status: " + ("running" if info.running else "paused")
    if info.singlestep:
        text += " (single step mode)"
    if not info.running and info.status.value != "paused":
        text += f" ({info.status.value})"
    out.print(text + "\n")


def _hmp_info_registers(out: _Output, args: HMPArgs) -> None:
    """``hmp_info_registers``: the monitor's CPU, or all with -a."""
    cpus = cpu_foreach()
    if not args.get("cpustate_all"):
        cpus = [c for c in cpus if c.cpu_index == out.cpu_index]
    if not cpus:
        out.print("No CPU available\n")
        return
    for cpu in cpus:
        out.print(f"\nCPU#{cpu.cpu_index}\n")
        out.print(cpu.dump_state(fpu=True))


def _hmp_info_cpus(out: _Output, args: HMPArgs) -> None:
    """``hmp_info_cpus``: one line per CPU, the monitor's CPU starred."""
    for info in out.qmp.query_cpus_fast():
        mark = "*" if info.cpu_index == out.cpu_index else " "
        out.print(f"{mark} CPU #{info.cpu_index}: thread_id={info.thread_id}\n")


def _hmp_info_version(out: _Output, args: HMPArgs) -> None:
    """``hmp_info_version``: the QMP version triple, then the package."""
    info = out.qmp.query_version()
    out.print(f"{info.qemu.major}.{info.qemu.minor}.{info.qemu.micro}{info.package}\n")


def _hmp_info_name(out: _Output, args: HMPArgs) -> None:
    """``hmp_info_name``: the ``-name``, if one was given."""
    name = out.qmp.query_name().name
    if name is not None:
        out.print(f"{name}\n")


def _hmp_info_irq(out: _Output, args: HMPArgs) -> None:
    """``hmp_info_irq``: interrupt statistics of the controllers that keep them.

    As QEMU 7.2, which prints nothing for boards whose interrupt controllers
    keep no statistics (the GIC, the I/O APIC): none of pyqemu's do.
    """


# Migration globals, as QEMU 7.2's ``migration_global_dump`` prints them for
# the default machine options.
_MIGRATION_GLOBALS: Final = (
    "globals:\n"
    "store-global-state: on\n"
    "only-migratable: off\n"
    "send-configuration: on\n"
    "send-section-footer: on\n"
    "decompress-error-check: on\n"
    "clear-bitmap-shift: 18\n"
)


def _hmp_info_migrate(out: _Output, args: HMPArgs) -> None:
    """``hmp_info_migrate``: the globals, then the last migration's state."""
    out.print(_MIGRATION_GLOBALS)
    info = out.qmp.query_migrate()
    if not isinstance(info, dict):
        return
    status = info.get("status")
    if isinstance(status, str):
        error = info.get("error-desc")
        if status == "failed" and isinstance(error, str):
            out.print(f"Migration status: {status} ({error})\n")
        else:
            out.print(f"Migration status: {status}\n")
        out.print(f"total time: {info.get('total-time', 0)} ms\n")
        for key, label in (("downtime", "downtime"), ("setup-time", "setup")):
            value = info.get(key)
            if isinstance(value, int):
                out.print(f"{label}: {value} ms\n")
    ram = info.get("ram")
    if isinstance(ram, dict):
        transferred = ram.get("transferred")
        total = ram.get("total")
        if isinstance(transferred, int):
            out.print(f"transferred ram: {transferred >> 10} kbytes\n")
        if isinstance(total, int):
            out.print(f"total ram: {total >> 10} kbytes\n")


# -- info chardev, info mtree --------------------------------------------------------


def _hmp_info_chardev(out: _Output, args: HMPArgs) -> None:
    """``hmp_info_chardev``."""
    for info in out.qmp.query_chardev():
        out.print(f"{info.label}: filename={info.filename}\n")


def _hmp_info_history(out: _Output, args: HMPArgs) -> None:
    """``hmp_info_history``: the readline history, this line last."""
    for i, line in enumerate(out.history or ()):
        out.print(f"{i}: '{line}'\n")


def _hmp_info_mtree(out: _Output, args: HMPArgs) -> None:
    """``hmp_info_mtree``."""
    out.print(
        mtree_info(
            flatview=bool(args.get("flatview", False)),
            disabled=bool(args.get("disabled", False)),
        )
    )


# -- info qom-tree (qom/qom-hmp-cmds.c) ------------------------------------------------


def _print_qom_composition(out: _Output, obj: Object, indent: int) -> None:
    name = "" if obj is object_get_root() else (obj.name_in_parent or "")
    out.print(f"{' ' * indent}/{name} ({obj.typename()})\n")
    children = sorted(obj.children(), key=lambda c: c.name_in_parent or "")
    for child in children:
        _print_qom_composition(out, child, indent + 2)


def _hmp_info_qom_tree(out: _Output, args: HMPArgs) -> None:
    """``hmp_info_qom_tree``: ambiguous partial paths do not resolve, as in QEMU."""
    path = args.get("path")
    if isinstance(path, str):
        obj = object_resolve_path(path)
        if obj is None:
            out.print(f"Path '{path}' could not be resolved.\n")
            return
    else:
        obj = qdev_get_machine()
    _print_qom_composition(out, obj, 0)


# -- info qtree (hw/core/qdev-monitor.c) -----------------------------------------------


def size_to_str(val: int) -> str:
    """QEMU's ``size_to_str``: three significant digits and a binary unit.

    >>> size_to_str(128 * 1024 * 1024), size_to_str(1000), size_to_str(0)
    ('128 MiB', '0.977 KiB', '0 B')
    """
    suffixes = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
    _, exp = math.frexp(val / (1000.0 / 1024.0))
    i = int((exp - 1) / 10)
    div = 1 << (i * 10)
    return f"{val / div:0.3g} {suffixes[i]}B"


_INT_TYPES: Final = frozenset(
    {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "usize"}
)


def _print_prop(prop_type: str, value: JSONValue) -> str | None:
    """``object_property_print(human=true)``; None when QEMU prints nothing."""
    if prop_type == "bool" and isinstance(value, bool):
        return "true" if value else "false"
    if prop_type == "size" and isinstance(value, int):
        return f"{value} ({size_to_str(value)})"
    if prop_type in _INT_TYPES and isinstance(value, int):
        # The string output visitor prints every integer as int64.
        signed = value - (1 << 64) if value >= 1 << 63 else value
        return f"{signed} (0x{signed & ((1 << 64) - 1):x})"
    if prop_type == "str" or prop_type.startswith("link<"):
        if value is None:
            return '""'
        if isinstance(value, str):
            return f'"{value}"'
    return None


def _qdev_print(out: _Output, dev: DeviceState, indent: int) -> None:
    pad = " " * indent
    out.print(f'{pad}dev: {dev.typename()}, id "{dev.id or ""}"\n')
    pad = " " * (indent + 2)
    # QEMU keeps GPIO lists and clocks newest first (QLIST_INSERT_HEAD).
    for name, gpios in reversed(dev._gpios.items()):
        if gpios.inputs:
            out.print(f'{pad}gpio-in "{name or ""}" {len(gpios.inputs)}\n')
        if gpios.outputs:
            out.print(f'{pad}gpio-out "{name or ""}" {len(gpios.outputs)}\n')
    for name, ncl in reversed(dev._clocks.items()):
        kind = "out" if ncl.output else "in"
        out.print(f'{pad}clock-{kind} "{name}" freq_hz={ncl.clock.display_freq()}\n')
    # Properties, the device's own class first, then up to (not including) device.
    klass: type[DeviceState] = type(dev)
    while klass is not DeviceState:
        parent = next(
            (b for b in klass.__mro__[1:] if issubclass(b, DeviceState)), DeviceState
        )
        inherited = len(parent.class_properties())
        for info in klass.class_properties()[inherited:]:
            text = _print_prop(info.type, dev.property_get(info.name))
            if text is not None:
                out.print(f"{pad}{info.name} = {text or '<null>'}\n")
        klass = parent
    if isinstance(dev, SysBusDevice):
        for n in range(dev.num_mmio):
            addr = dev.mmio_addr(n)
            size = min(dev.mmio_get_region(n).size, (1 << 64) - 1)
            shown = (1 << 64) - 1 if addr is None else addr
            out.print(f"{pad}mmio {shown:016x}/{size:016x}\n")
    for bus in dev._child_buses:
        _qbus_print(out, bus, indent + 2)


def _qbus_print(out: _Output, bus: BusState, indent: int) -> None:
    out.print(f"{' ' * indent}bus: {bus.bus_name}\n")
    out.print(f"{' ' * (indent + 2)}type {bus.typename()}\n")
    # Newest first, as QEMU's bus_add_child inserts at the head.
    for dev in bus.devices():
        _qdev_print(out, dev, indent + 2)


def _hmp_info_qtree(out: _Output, args: HMPArgs) -> None:
    """``hmp_info_qtree``: the tree from the main system bus."""
    _qbus_print(out, sysbus_get_default(), 0)


def _hmp_info(out: _Output, args: HMPArgs) -> None:
    _hmp_info_help(out, args)


HMP_INFO_COMMANDS: Final[tuple[HMPCommand, ...]] = (
    HMPCommand("chardev", "", "", "show the character devices", _hmp_info_chardev),
    HMPCommand("cpus", "", "", "show infos for each CPU", _hmp_info_cpus),
    HMPCommand("history", "", "", "show the command line history", _hmp_info_history),
    HMPCommand(
        "irq", "", "", "show the interrupts statistics (if available)", _hmp_info_irq
    ),
    HMPCommand("migrate", "", "", "show migration status", _hmp_info_migrate),
    HMPCommand("name", "", "", "show the current VM name", _hmp_info_name),
    HMPCommand(
        "mtree",
        "flatview:-f,disabled:-D",
        "[-f][-D]",
        "show memory tree (-f: dump flat view for address spaces;"
        "-D: dump disabled regions)",
        _hmp_info_mtree,
    ),
    HMPCommand(
        "qom-tree", "path:s?", "[path]", "show QOM composition tree", _hmp_info_qom_tree
    ),
    HMPCommand("qtree", "", "", "show device tree", _hmp_info_qtree),
    HMPCommand(
        "registers",
        "cpustate_all:-a",
        "[-a]",
        "show the cpu registers (-a: all - show register info for all cpus)",
        _hmp_info_registers,
    ),
    HMPCommand(
        "status",
        "",
        "",
        "show the current VM status (running|paused)",
        _hmp_info_status,
    ),
    HMPCommand("version", "", "", "show the version of QEMU", _hmp_info_version),
)
"""The ``info`` subcommands, sorted by name as QEMU sorts its tables."""

HMP_COMMANDS: Final[tuple[HMPCommand, ...]] = (
    HMPCommand("cont|c", "", "", "resume emulation", _hmp_cont),
    HMPCommand("help|?", "name:S?", "[cmd]", "show the help", _hmp_help),
    HMPCommand(
        "info",
        "item:s?",
        "[subcommand]",
        "show various information about the system state",
        _hmp_info,
        HMP_INFO_COMMANDS,
    ),
    HMPCommand("quit|q", "", "", "quit the emulator", _hmp_quit),
    HMPCommand("stop|s", "", "", "stop emulation", _hmp_stop),
    HMPCommand("system_reset", "", "", "reset the system", _hmp_system_reset),
)
"""The HMP commands, sorted by name."""
