"""The command line: QEMU's options, machine creation and the run (``system/vl.c``).

:func:`qemu_main` parses ``argv`` the way QEMU does (``-opt ARG`` or ``--opt ARG``),
reports errors as QEMU does (``prog: -opt: message``, exit status 1, never a
traceback), builds the machine and runs the main loop until a shutdown request.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import signal
import socket
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TextIO, final

import chardev
import pyqemu_config
from accel import ACCEL_NAMES, AccelState, accel_new, set_current_accel
from chardev.char_mux import MuxChardev, open_muxes
from hw.core.cpu import cpu_foreach, cpu_list_reset
from hw.core.machine import CpuTopology, MachineState, find_machine, machine_types
from qemu_api import log, rtc, trace
from qemu_api.bql import bql_lock, bql_locked
from qemu_api.chardev import (
    Chardev,
    qemu_chr_backends,
    qemu_chr_find,
    qemu_chr_new,
    qemu_chr_reset,
)
from qemu_api.error import (
    Error,
    error_get_progname,
    error_location,
    error_set_progname,
    warn_report,
)
from qemu_api.memory import reset_system_memory
from qemu_api.module import (
    DeviceTypeInfo,
    module_device_infos,
    module_device_properties,
    module_load_qom_all,
)
from qemu_api.option import QemuOpts, parse_size, qemu_opts_parse, split_opts
from qemu_api.qdev import (
    DeviceCategory,
    DeviceState,
    qdev_device_list_properties,
    qdev_new,
    qdev_prop_register_global,
    qdev_prop_reset_globals,
    qdev_realize,
    qdev_set_id,
)
from qemu_api.qom import object_class_by_name, object_tree_reset, type_info
from qemu_api.sysbus import SysBusDevice
from qemu_api.timer import QEMUClockType, qemu_clock_set_notify, virtual_clock_reset
from system import QEMU_INTERFACE_VERSION, runstate
from system.device_tree import DtbDumped
from system.main_loop import MainLoop
from system.migration import exit_status as migration_exit_status
from system.migration import migration_init, migration_shutdown, start_incoming
from system.modules import device_boards, modules_init
from system.qtest import QTestServer
from system.runstate import RunState, ShutdownCause

if TYPE_CHECKING:
    # Imported where a monitor is created: the QMP schema and the monitors
    # are not needed by a start without one.
    from system.monitor import QMPMonitor
    from system.monitor.hmp_monitor import HMPMonitor

__all__ = [
    "OPTIONS",
    "CommandLineError",
    "Emulator",
    "VMConfig",
    "chr_new_compat",
    "parse_command_line",
    "qemu_main",
]

OPTIONS: Final[dict[str, bool]] = {
    # name: takes an argument
    "h": False,
    "help": False,
    "version": False,
    "M": True,
    "machine": True,
    "device": True,
    "global": True,
    "chardev": True,
    "serial": True,
    "nographic": False,
    "display": True,
    "nodefaults": False,
    "S": False,
    "accel": True,
    "cpu": True,
    "smp": True,
    "icount": True,
    "qtest": True,
    "qtest-log": True,
    "qmp": True,
    "qmp-pretty": True,
    "mon": True,
    "monitor": True,
    "d": True,
    "D": True,
    "trace": True,
    "m": True,
    "incoming": True,
    "dump-vmstate": True,
    "name": True,
    "no-shutdown": False,
    "no-reboot": False,
    "rtc": True,
    "msg": True,
    "daemonize": False,
    "kernel": True,
    "initrd": True,
    "append": True,
    "dtb": True,
    "bios": True,
}
"""The options pyqemu accepts, with whether each takes an argument."""

QEMU_OPTIONS_WITHOUT_ARG: Final = frozenset(
    {
        "alt-grab", "async-teardown", "ctrl-grab", "enable-kvm",
        "enable-sync-profile", "full-screen", "mem-prealloc", "no-acpi",
        "no-fd-bootchk", "no-hpet", "no-quit", "no-user-config", "nodefconfig",
        "only-migratable", "portrait", "preconfig", "s", "semihosting",
        "singlestep", "snapshot", "usb", "win2k-hack", "xen-attach",
        "xen-domid-restrict", "audio-help",
    }
)  # fmt: skip
"""QEMU 7.2 options without an argument that pyqemu does not implement yet."""

QEMU_OPTIONS_WITH_ARG: Final = frozenset(
    {
        "acpitable", "action", "add-fd", "audio", "audiodev", "blockdev", "boot",
        "cdrom", "chroot", "compat", "debugcon", "dfilter", "drive", "echr",
        "fda", "fdb", "fsdev", "fw_cfg", "gdb", "hda", "hdb", "hdc", "hdd",
        "iscsi", "k", "loadvm", "mem-path", "mtdblock", "net", "netdev", "nic",
        "numa", "object", "option-rom", "overcommit", "parallel", "pflash",
        "pidfile", "plugin", "readconfig", "rotate", "runas", "sandbox", "sd",
        "seed", "semihosting-config", "set", "smbios", "spice", "tpmdev",
        "usbdevice", "uuid", "vga", "virtfs", "vnc", "watchdog-action",
        "xen-domid",
    }
)  # fmt: skip
"""QEMU 7.2 options with an argument that pyqemu does not implement yet."""

_NOT_YET_HINT: Final = (
    "pyqemu implements a subset of QEMU 7.2's options; -help lists them.\n"
)


class CommandLineError(Exception):
    """A command-line error: printed as ``prog: -opt: message``, exit status 1."""

    def __init__(self, opt: str | None, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.opt = opt
        self.message = message
        self.hint = hint


@final
@dataclass
class VMConfig:
    """What the command line asked for, in the order given."""

    target: str
    options: list[tuple[str, str | None]] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    """Each option as typed (``-M``, ``--machine``), parallel to ``options``."""

    def located(self, name: str) -> list[tuple[str, str]]:
        """Return ``(location, argument)`` for each use of option *name*.

        The location is the option and its argument as typed, which QEMU
        puts before the errors it reports about them (``loc_set_cmdline``).
        """
        names = _ALIASES.get(name, (name,))
        return [
            (f"{w} {a}", a)
            for w, (o, a) in zip(self.words, self.options, strict=True)
            if o in names and a is not None
        ]

    def all(self, name: str) -> list[str]:
        """Return every argument given to option *name* (and its aliases)."""
        names = _ALIASES.get(name, (name,))
        return [a for o, a in self.options if o in names and a is not None]

    def last(self, name: str) -> str | None:
        """Return the last argument given to option *name*, or None."""
        values = self.all(name)
        return values[-1] if values else None

    def has(self, name: str) -> bool:
        """Return whether option *name* was given."""
        names = _ALIASES.get(name, (name,))
        return any(o in names for o, _ in self.options)


_ALIASES: Final = {
    "M": ("M", "machine"),
    "machine": ("M", "machine"),
    "h": ("h", "help"),
}


def parse_command_line(target: str, argv: list[str]) -> VMConfig:
    """Split *argv* (without the program name) into options and arguments.

    Raises:
        CommandLineError: an unknown option, a missing argument, or a bare word.

    >>> parse_command_line("aarch64", ["-M", "virt", "--nographic"]).options
    [('M', 'virt'), ('nographic', None)]
    """
    cfg = VMConfig(target)
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if not word.startswith("-") or word == "-":
            raise CommandLineError(
                None, f"{word}: disk images are not supported (no block devices)"
            )
        name = word[2:] if word.startswith("--") else word[1:]
        arg: str | None = None
        if name not in OPTIONS:
            if name in QEMU_OPTIONS_WITH_ARG and i < len(argv):
                arg = argv[i]
                i += 1
            if name in QEMU_OPTIONS_WITH_ARG or name in QEMU_OPTIONS_WITHOUT_ARG:
                raise CommandLineError(
                    word if arg is None else f"{word} {arg}",
                    "this QEMU option is not supported by pyqemu yet",
                    _NOT_YET_HINT,
                )
            raise CommandLineError(word, "invalid option")
        if OPTIONS[name]:
            if i >= len(argv):
                raise CommandLineError(word, "requires an argument")
            arg = argv[i]
            i += 1
        cfg.options.append((name, arg))
        cfg.words.append(word)
    return cfg


def _import_boards() -> None:
    for module in pyqemu_config.BOARD_MODULES:
        importlib.import_module(module)


def _import_devices(err: TextIO) -> None:
    # The tree's device packages (imported now, or on first use with
    # --enable-modules) and those installed with pip (system.modules).
    modules_init(err)


def machine_help(target: str) -> str:
    """Return the ``-machine help`` text, laid out and sorted as QEMU's."""
    lines = ["Supported machines are:"]
    entries = []
    for cls in machine_types(target):
        # QEMU's canonical name is the versioned one; the short one is its alias.
        canonical = cls.aliases[0] if cls.aliases else cls.machine_name
        alias = cls.machine_name if cls.aliases else None
        entries.append((canonical, alias, cls))
    for canonical, alias, cls in sorted(entries, key=lambda e: e[0]):
        if alias is not None:
            lines.append(f"{alias:<20} {cls.desc} (alias of {canonical})")
        default = " (default)" if target in cls.default_for else ""
        lines.append(f"{canonical:<20} {cls.desc}{default}")
    return "\n".join(lines) + "\n"


_TARGET_PACKAGES: Final = {"aarch64": "target.arm"}
"""The package of each target's CPU types (QEMU's ``target/<arch>``)."""


def _on_target(name: str, target: str) -> bool:
    """Whether *target*'s binary has the device type *name*, as QEMU's would.

    A type of a device package that only other targets' boards select, or a
    CPU type of another target's ``target/`` package, is not.
    """
    boards = device_boards(name) or tuple(
        board
        for board, devices in pyqemu_config.BOARD_DEVICES.items()
        if name in devices
    )
    if boards:
        mine = {
            alias
            for cls in machine_types(target)
            for alias in (cls.machine_name, *cls.aliases)
        }
        return not mine.isdisjoint(boards)
    ti = type_info(name)
    if ti is None:
        return True
    module = ti.cls.__module__
    for other, package in _TARGET_PACKAGES.items():
        if module == package or module.startswith(package + "."):
            return other == target
    return True


def device_help(target: str) -> str:
    """Return *target*'s ``-device help`` text (QEMU's ``qdev_print_devinfos``).

    Every device type of the target is listed, loaded or not (a module's
    types come from the registry without importing it), grouped by the
    categories its class declares (those in none under "Uncategorized"),
    sorted by name, as QEMU lays it out; devices only another target's boards
    select, and other targets' CPUs, are left out, as each QEMU binary has
    its own. Unlike QEMU, the types ``-device`` cannot create are listed
    too, marked ``no-user`` as QEMU's ``info qdm`` marks them: pyqemu's
    board devices are what a device author looks for.
    """
    infos = [
        i
        for i in module_device_infos()
        if not i.abstract and _on_target(i.name, target)
    ]
    out: list[str] = []
    groups: list[tuple[str, list[DeviceTypeInfo]]] = [
        (cat.title, [i for i in infos if int(cat) in i.categories])
        for cat in DeviceCategory
    ]
    groups.append(("Uncategorized", [i for i in infos if not i.categories]))
    for title, members in groups:
        if not members:
            continue
        out.append(f"{chr(10) if out else ''}{title} devices:\n")
        for info in members:
            line = f'name "{info.name}"'
            if info.bus_type is not None:
                line += f", bus {info.bus_type}"
            if info.desc:
                line += f', desc "{info.desc}"'
            if not info.user_creatable:
                line += ", no-user"
            out.append(line + "\n")
    return "".join(out)


def device_props_help(typename: str) -> str:
    """Return the ``-device TYPE,help`` text (QEMU's ``qdev_device_help``).

    Raises:
        Error: *typename* is not a device type.
    """
    props = module_device_properties(typename)  # from the registry, if not loaded
    if props is None:
        props = qdev_device_list_properties(typename)
    if not props:
        return f"There are no options for {typename}.\n"
    rows = []
    for p in props:
        row = f"  {p.name}=<{p.type}>"
        if p.description or p.default_value is not None:
            row = f"{row:<24} - "
        if p.description:
            row += p.description
        if p.default_value is not None:
            import json  # only for help output, not at start

            row += f" (default: {json.dumps(p.default_value)})"
        rows.append(row)
    return f"{typename} options:\n" + "".join(f"{r}\n" for r in sorted(rows))


def cpu_help(target: str) -> str:
    """Return the ``-cpu help`` text, in QEMU's layout."""
    if target != "aarch64":
        return "Available CPUs:\n"
    arm_cpu = importlib.import_module("target.arm.cpu")
    models: list[tuple[str, str]] = arm_cpu.arm_cpu_models()
    return "Available CPUs:\n" + "".join(f"  {m}\n" for m, _ in models)


def chr_new_compat(label: str, spec: str) -> Chardev | None:
    """Create a chardev from QEMU's short syntax (``qemu_chr_parse_compat``).

    Used by ``-serial``, ``-qtest`` and ``-qmp``: ``null``, ``stdio``, ``pty``,
    ``file:PATH``, ``unix:PATH[,opts]``, ``tcp:HOST:PORT[,opts]``, ``chardev:ID``
    (an existing chardev) and ``none`` (no chardev).

    Raises:
        Error: an unknown syntax, or the backend failed.
    """
    if spec == "none":
        return None
    if spec.startswith("chardev:"):
        found = qemu_chr_find(spec[8:])
        if found is None:
            raise Error(f"chardev '{spec[8:]}' not found")
        return found
    if spec.startswith("mon:"):
        # QEMU's qemu_chr_parse_compat: a mux in front of the backend; on
        # stdio, Ctrl-C goes to the guest (signal=off).
        base = _chr_new_compat_backend(f"{label}-base", spec[4:], mon=True)
        return qemu_chr_new(label, "mux", {"chardev": base.label})
    return _chr_new_compat_backend(label, spec, mon=False)


def _chr_new_compat_backend(label: str, spec: str, *, mon: bool) -> Chardev:
    if spec in ("null", "stdio", "pty"):
        opts: dict[str, str | int | bool] = {}
        if spec == "stdio" and mon:
            opts["signal"] = "off"
        return qemu_chr_new(label, spec, opts)
    if spec.startswith("file:"):
        return qemu_chr_new(label, "file", {"path": spec[5:]})
    if spec.startswith("unix:"):
        path, *rest = split_opts(spec[5:])
        opts = {"path": path}
        opts.update(qemu_opts_parse(",".join(rest)).values if rest else {})
        return qemu_chr_new(label, "socket", opts)
    if spec.startswith("tcp:"):
        hostport, *rest = split_opts(spec[4:])
        host, _, port = hostport.rpartition(":")
        opts = {"host": host or "0.0.0.0", "port": port}
        opts.update(qemu_opts_parse(",".join(rest)).values if rest else {})
        return qemu_chr_new(label, "socket", opts)
    raise Error(f"'{spec}' is not a valid char driver")


_ID_HINT: Final = (
    "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.\n"
)


def id_wellformed(ident: str) -> bool:
    """QEMU's ``id_wellformed``: a letter, then letters, digits, ``-._``.

    >>> id_wellformed("serial0"), id_wellformed("1bad"), id_wellformed("")
    (True, False, False)
    """
    return (
        bool(ident)
        and ident[0].isascii()
        and ident[0].isalpha()
        and all(c.isascii() and (c.isalnum() or c in "-._") for c in ident)
    )


def _check_id(ident: str | None) -> None:
    if ident is not None and not id_wellformed(ident):
        raise Error("Parameter 'id' expects an identifier", hint=_ID_HINT)


def _strip_chardev_prefix(err: Error, label: str) -> Error:
    """The command line reports backend errors without QMP's prefix."""
    prefix = f"Failed to add chardev '{label}': "
    if err.msg.startswith(prefix):
        return Error(err.msg.removeprefix(prefix), hint=err.hint)
    return err


def chardev_help() -> str:
    """Return the ``-chardev help`` text (QEMU's ``qemu_chr_new_from_opts``)."""
    names = [n for n in qemu_chr_backends() if n != "mux"]
    return "Available chardev backend types: \n" + "".join(f"  {n}\n" for n in names)


def _chardev_add(arg: str) -> None:
    """``-chardev BACKEND,id=ID[,...]`` (with ``mux=on``: ID-base and a mux)."""
    opts = qemu_opts_parse(arg, implied="backend")
    backend = opts.take("backend")
    label = opts.take("id")
    if label is None:
        raise Error("chardev: no id specified")
    _check_id(label)
    if qemu_chr_find(label) is not None:
        raise Error(f"Duplicate ID '{label}' for chardev")
    if backend is None:
        raise Error("chardev: no backend given", hint="-chardev BACKEND,id=ID,...\n")
    mux = opts.take("mux")
    if mux is not None and mux not in ("on", "off"):
        raise Error("Parameter 'mux' expects 'on' or 'off'")
    try:
        if mux == "on":
            base = qemu_chr_new(f"{label}-base", backend, dict(opts.values))
            qemu_chr_new(label, "mux", {"chardev": base.label})
        else:
            qemu_chr_new(label, backend, dict(opts.values))
    except Error as e:
        raise _strip_chardev_prefix(
            _strip_chardev_prefix(e, label), f"{label}-base"
        ) from None


def _device_add(arg: str, machine: MachineState, target: str | None = None) -> None:
    """``-device TYPE[,prop=val...]`` (QEMU's ``qdev_device_add``).

    Sysbus types are not user-creatable, except those the machine allows on
    its platform bus (QEMU's dynamic sysbus devices), which it wires once
    they are realized.  A device of another target's boards is not a device
    of this launcher (*target*), as in QEMU, whose binaries are built with
    their own boards' devices only.
    """
    opts = qemu_opts_parse(arg, implied="driver")
    driver = opts.take("driver")
    if not driver:
        raise Error("Parameter 'driver' is missing")
    boards = device_boards(driver)
    target_boards = (
        set() if target is None else {m.machine_name for m in machine_types(target)}
    )
    if target is not None and boards and not target_boards & set(boards):
        raise Error(
            f"'{driver}' is not a valid device model name",
            hint=f"'{driver}' is built for the boards {', '.join(boards)}, which "
            f"pyqemu-system-{target} does not have\n",
        )
    cls = object_class_by_name(driver)
    info = type_info(driver)
    if cls is None or not issubclass(cls, DeviceState) or info is None or info.abstract:
        raise Error(f"'{driver}' is not a valid device model name")
    dynamic = machine.device_is_dynamic_sysbus(cls) or driver in machine.test_devices
    if not cls.user_creatable and not dynamic:
        raise Error("Parameter 'driver' expects a pluggable device type")
    if issubclass(cls, SysBusDevice) and not dynamic:
        # QEMU 7.2's words for a pluggable sysbus type the board does not allow.
        raise Error(
            "Parameter 'driver' expects a dynamic sysbus device type for the machine"
        )
    dev = qdev_new(driver)
    dev_id = opts.take("id")
    for key, value in opts.values.items():
        try:
            dev.property_parse(key, value)
        except Error as e:
            dev.unparent()
            raise Error(
                e.msg, hint=f"Use -device {driver},help to list its properties\n"
            ) from None
    qdev_set_id(dev, dev_id)
    if isinstance(dev, SysBusDevice):
        dev.sysbus_realize()
    else:
        qdev_realize(dev)
    machine.device_plug_cb(dev)


def _global_add(arg: str) -> str | None:
    """``-global DRIVER.PROP=VALUE`` or ``-global driver=D,property=P,value=V``.

    As QEMU 7.2: a type that does not exist is only a warning (returned, to
    be printed once the machine is built); a property the type lacks is
    fatal, ``can't apply global DRIVER.PROP=VALUE: ...``, without a location.
    """
    if "=" in arg.split(".", 1)[0] or "." not in arg.split("=", 1)[0]:
        opts = qemu_opts_parse(arg, accepted=frozenset({"driver", "property", "value"}))
        driver, prop, value = (
            opts.get("driver"),
            opts.get("property"),
            opts.get("value"),
        )
        if driver is None or prop is None or value is None:
            raise Error(f"Invalid parameter '{arg}'")
    else:
        driver, _, rest = arg.partition(".")
        prop, eq, value = rest.partition("=")
        if not eq:
            # QEMU 7.2 takes "-global a.b" for a short-form boolean first.
            warn_report(f"short-form boolean option '{arg}' deprecated")
            sys.stderr.write(f"Please use {arg}=on instead\n")
            raise Error(f"Invalid parameter '{arg}'")
    cls = object_class_by_name(driver)
    if cls is None or not issubclass(cls, DeviceState):
        return f"global {driver}.{prop} has invalid class name"
    if prop not in cls._qdev_names:
        raise GlobalError(
            f"can't apply global {driver}.{prop}={value}: "
            f"Property '{driver}.{prop}' not found"
        )
    qdev_prop_register_global(driver, prop, value)
    return None


class GlobalError(Error):
    """An error applying a ``-global`` (QEMU reports it without a location)."""


def _global_error(err: Error) -> Error | None:
    """A device's error applying a ``-global``, in QEMU's words, or None."""
    if not err.msg.startswith("-global "):
        return None
    where, _, rest = err.msg.partition(": ")
    return Error(f"can't apply global {where.removeprefix('-global ')}: {rest}")


def _target_boards(prog: str) -> list[str]:
    """The ``-M`` names of the boards of the launcher's target."""
    target = prog.rpartition("-")[2]
    _import_boards()
    return sorted(cls.machine_name for cls in machine_types(target))


def usage(prog: str) -> str:
    """Return the ``-help`` text."""
    return (
        f"pyqemu emulator version {pyqemu_config.VERSION}\n"
        f"usage: {prog} [options]\n"
        "\n"
        "Standard options:\n"
        "-h or -help     display this help and exit\n"
        "-version        display version information and exit\n"
        "-machine [type=]name[,prop[=value][,...]]\n"
        "                selects emulated machine ('-machine help' for list)\n"
        "-M              as -machine\n"
        "-m [size=]megs  configure guest RAM size (default suffix M)\n"
        "-device driver[,prop[=value][,...]]\n"
        "                add device driver ('-device help' for list,\n"
        "                '-device driver,help' for its properties)\n"
        "-global driver.prop=value\n"
        "                set a default value of a driver's property\n"
        "-name string    set the name of the guest\n"
        "-rtc [base=utc|localtime|<datetime>][,clock=host|rt|vm]"
        "[,driftfix=none|slew]\n"
        "                set the RTC base and clock, enable drift fix for clock "
        "ticks (x86 only)\n"
        "\n"
        "Linux/Multiboot boot specific:\n"
        "-kernel bzImage use 'bzImage' as kernel image\n"
        "-append cmdline use 'cmdline' as kernel command line\n"
        "-initrd file    use 'file' as initial ram disk\n"
        "-dtb    file    use 'file' as device tree image\n"
        "-bios file      set the filename for the BIOS\n"
        "                (virt: the firmware in flash at address 0)\n"
        "-machine dumpdtb=file\n"
        "                write the device tree to 'file' and exit\n"
        "\n"
        "Character device options:\n"
        "-chardev null|ringbuf|file|socket|stdio|pty,id=id[,...]\n"
        "-serial dev     redirect the serial port to char device 'dev'\n"
        "                (stdio, null, pty, file:PATH, chardev:ID, unix:PATH[,...],\n"
        "                tcp:HOST:PORT[,...], none)\n"
        "\n"
        "Display options:\n"
        "-display none   no display\n"
        "-nographic      no display; the serial port goes to stdio\n"
        "\n"
        "Debug/Expert options:\n"
        "-nodefaults     don't create default devices\n"
        "-S              freeze the machine at startup (use 'cont' to start)\n"
        "-accel qtest|tcg\n"
        "                select the accelerator (qtest: no CPU runs and time\n"
        "                moves only on clock_step/clock_set; tcg, the default:\n"
        "                the CPUs run guest code)\n"
        "-cpu model      select the CPU model ('-cpu help' for list)\n"
        "-smp [cpus=]n   set the number of CPUs (1 for now)\n"
        "-icount [shift=]N[,sleep=on|off]\n"
        "                the virtual clock follows executed instructions,\n"
        "                2^N ns each (reproducible runs)\n"
        "-qtest dev      serve the qtest protocol on char device 'dev'\n"
        "-qtest-log file log the qtest protocol to 'file'\n"
        "-qmp dev        serve QMP on char device 'dev'\n"
        "                (e.g. unix:PATH,server=on,wait=off)\n"
        "-qmp-pretty dev as -qmp, with pretty-printed JSON\n"
        "-d item1,...    enable logging of specified items (use '-d help' for a list)\n"
        "-D logfile      output log to logfile (default stderr)\n"
        "-trace [[enable=]<pattern>][,events=<file>][,file=<file>]\n"
        "                specify tracing options ('-trace help' lists events)\n"
        "-incoming uri   wait for the migration stream at 'uri'\n"
        "-dump-vmstate file\n"
        "                write the device state descriptions (JSON) to 'file'\n"
        "\n"
        f"Boards: {' '.join(_target_boards(prog)) or 'none'}\n"
        f"Devices built: {' '.join(pyqemu_config.DEVICES) or 'none'}\n"
    )


def version_text() -> str:
    """Return the ``-version`` text, in QEMU's layout.

    The first line names pyqemu and its version, then the QEMU version whose
    interfaces it implements in QEMU's own words, so that tools that look
    for ``QEMU emulator version X.Y.Z`` find it.
    """
    return (
        f"pyqemu emulator version {pyqemu_config.VERSION} "
        f"(implements QEMU emulator version {QEMU_INTERFACE_VERSION})\n"
        "Copyright (c) 2026 the pyqemu project developers\n"
    )


ACCELERATORS: Final = ("qtest", "tcg")

_QEMU_DISPLAYS: Final = frozenset(
    {"gtk", "sdl", "curses", "vnc", "spice-app", "egl-headless", "dbus", "cocoa"}
)


@final
class Emulator:
    """One run of the emulator: the machine, its main loop and its servers."""

    def __init__(self, cfg: VMConfig, out: TextIO, err: TextIO, prog: str) -> None:
        self.cfg = cfg
        self.out = out
        self.err = err
        self.prog = prog
        self.loop = MainLoop()
        self.machine: MachineState | None = None
        self.servers: list[QTestServer | QMPMonitor | HMPMonitor] = []
        self.warnings: list[str] = []
        self.accel: AccelState = accel_new("qtest")

    # Each step raises CommandLineError (or Error, attributed to no option).

    def setup_logging(self) -> None:
        """``-D`` and ``-d`` (QEMU opens the log before anything else)."""
        mask = 0
        for where, item in self.cfg.located("d"):
            try:
                mask |= log.qemu_str_to_log_mask(item)
            except Error as e:
                # QEMU 7.2 prints the whole item list instead; one line that
                # names the bad item is clearer.
                raise CommandLineError(
                    where, e.msg, "Use -d help to list the log items\n"
                ) from None
        try:
            log.qemu_set_log_filename_flags(self.cfg.last("D"), mask)
        except Error as e:
            # QEMU opens the file after the options are read: no location.
            raise CommandLineError(None, e.msg) from None

    def setup_trace(self) -> None:
        """``-trace`` options, then the backends and the trace file."""
        for where, arg in self.cfg.located("trace"):
            try:
                with error_location(where):
                    trace.trace_opt_parse(arg)
            except Error as e:
                raise CommandLineError(where, e.msg) from None
        trace.trace_init_backends()
        try:
            trace.trace_init_file()
        except Error as e:
            raise CommandLineError("-trace", e.msg) from None

    def accelerator(self) -> str:
        """The accelerator: ``-accel`` (or ``-machine accel=``), else tcg.

        With ``-qtest`` and no accelerator named, qtest (QEMU 7.2 picks tcg
        there; pyqemu's qtest accelerator is what qtests want).
        """
        located = self.cfg.located("accel")
        if not located:
            legacy = self.machine_opts().get("accel")
            if legacy is not None:
                name = legacy.split(":")[0]
                if name not in ACCEL_NAMES:
                    raise CommandLineError(None, f"invalid accelerator {name}")
                return name
            return "qtest" if self.cfg.has("qtest") else "tcg"
        where, accel = located[-1]
        try:
            opts = qemu_opts_parse(accel, implied="accel")
        except Error as e:
            raise CommandLineError(where, e.msg) from None
        name = opts.take("accel") or ""
        if name not in ACCEL_NAMES:
            raise CommandLineError(where, f"invalid accelerator {name}")
        thread = opts.take("thread")
        if thread is not None and thread not in ("single", "multi"):
            raise CommandLineError(where, f"Invalid 'thread' setting {thread}")
        return name

    def machine_opts(self) -> dict[str, str]:
        """Every ``-machine`` merged, a later key winning (QEMU's ``merge_lists``).

        Raises:
            CommandLineError: an argument does not parse.
        """
        merged: dict[str, str] = {}
        for where, arg in self.cfg.located("M"):
            try:
                # keyval: the implied type ends at the first comma (no ",,"
                # escape there), so "virt,," has an empty key.
                head, comma, tail = arg.partition(",")
                if head and "=" not in head:
                    opts = qemu_opts_parse(tail) if comma else QemuOpts()
                    opts.values["type"] = head
                else:
                    opts = qemu_opts_parse(arg, implied="type")
            except Error as e:
                raise CommandLineError(where, e.msg) from None
            merged.update({k: str(v) for k, v in opts.values.items()})
        return merged

    def check_display(self) -> None:
        """``-display``: only ``none``; QEMU's other displays are not available."""
        for where, value in self.cfg.located("display"):
            kind = value.split(",")[0]
            if kind == "none":
                continue
            if kind in _QEMU_DISPLAYS:
                raise CommandLineError(None, f"Display '{kind}' is not available")
            raise CommandLineError(
                where, f"Parameter 'type' does not accept value '{kind}'"
            )

    def check_msg(self) -> None:
        """``-msg timestamp=on|off,guest-name=on|off`` (checked, not used yet)."""
        for where, value in self.cfg.located("msg"):
            try:
                opts = qemu_opts_parse(
                    value, accepted=frozenset({"timestamp", "guest-name"})
                )
            except Error as e:
                raise CommandLineError(where, e.msg) from None
            for key, val in opts.values.items():
                if val not in ("on", "off"):
                    raise CommandLineError(
                        where, f"Parameter '{key}' expects 'on' or 'off'"
                    )

    def check_ids(self) -> None:
        """Ids of ``-device`` and ``-chardev``, checked as QEMU parses them."""
        for opt, kind in (("device", "device"), ("chardev", "chardev")):
            seen: set[str] = set()
            for where, arg in self.cfg.located(opt):
                try:
                    opts = qemu_opts_parse(arg, implied="driver")
                except Error as e:
                    raise CommandLineError(where, e.msg) from None
                ident = opts.get("id")
                if ident is None:
                    continue
                if not id_wellformed(ident):
                    raise CommandLineError(
                        where, "Parameter 'id' expects an identifier", _ID_HINT
                    )
                if ident in seen:
                    raise CommandLineError(where, f"Duplicate ID '{ident}' for {kind}")
                seen.add(ident)

    def setup_rtc(self) -> None:
        """``-rtc``: the RTC's base and clock (QEMU's ``configure_rtc``).

        The option lists merge, a later key winning (QEMU's ``merge_lists``);
        a bad key is reported with the argument, a bad value without, and
        ``-rtc help`` lists the keys and fails, all as in QEMU 7.2.
        """
        merged = QemuOpts()
        for arg in self.cfg.all("rtc"):
            try:
                opts = qemu_opts_parse(arg, accepted=frozenset(rtc.RTC_OPTS))
            except Error as e:
                raise CommandLineError(f"-rtc {arg}", e.msg) from None
            if opts.help:
                self.out.write("rtc options:\n")
                self.out.write("".join(f"  {key}=<str>\n" for key in rtc.RTC_OPTS))
                raise CommandLineError("-rtc", "")  # printed; exit status 1
            merged.values.update(opts.values)
        try:
            rtc.configure_rtc(merged)
        except Error as e:
            raise CommandLineError(None, e.msg, e.hint) from None

    def setup_name(self) -> None:
        """``-name [guest=]NAME[,process=P][,debug-threads=on|off]``."""
        runstate.qemu_set_name(None)
        for where, arg in self.cfg.located("name"):
            try:
                opts = qemu_opts_parse(
                    arg,
                    implied="guest",
                    accepted=frozenset({"guest", "process", "debug-threads"}),
                )
            except Error as e:
                raise CommandLineError(where, e.msg) from None
            guest = opts.get("guest")
            if guest is not None:
                runstate.qemu_set_name(guest)

    def create_accel(self, name: str) -> AccelState:
        """``-accel`` with ``-icount``: the accelerator object."""
        opts: dict[str, str] = {}
        located = self.cfg.located("icount")
        icount = located[-1][1] if located else None
        where = located[-1][0] if located else "-icount"
        if icount is not None:
            if name != "tcg":
                raise CommandLineError(
                    where,
                    f"-icount is not allowed with {name}",
                    "Use -accel tcg.\n",
                )
            try:
                parsed = qemu_opts_parse(
                    icount,
                    implied="shift",
                    accepted=frozenset({"shift", "sleep", "align", "rr", "rrfile"}),
                )
            except Error as e:
                raise CommandLineError(where, e.msg) from None
            for key in ("align", "rr", "rrfile"):
                if parsed.get(key) is not None:
                    raise CommandLineError(where, f"icount: {key} is not supported")
            shift = parsed.get("shift")
            if shift is None:
                raise CommandLineError(where, "icount: shift=N is required")
            opts["icount-shift"] = shift
            sleep = parsed.get("sleep")
            if sleep is not None:
                opts["icount-sleep"] = sleep
        try:
            return accel_new(name, opts)
        except Error as e:
            accel_loc = self.cfg.located("accel")
            opt = (
                where
                if icount is not None
                else (accel_loc[-1][0] if accel_loc else None)
            )
            raise CommandLineError(opt, e.msg, e.hint) from None

    def smp_cpus(self, machine_name: str) -> int:
        """``-smp``: the number of CPUs (QEMU's ``smp.cpus``); only 1 for now."""
        arg = self.cfg.last("smp")
        if arg is None:
            return 1
        try:
            opts = qemu_opts_parse(
                arg,
                implied="cpus",
                accepted=frozenset(
                    {
                        "cpus",
                        "maxcpus",
                        "sockets",
                        "dies",
                        "clusters",
                        "cores",
                        "threads",
                    }
                ),
            )
        except Error as e:
            raise CommandLineError("-smp", e.msg) from None
        cpus = opts.get("cpus", "1") or "1"
        if not cpus.isdigit():
            raise CommandLineError(None, "Parameter 'smp.cpus' expects integer")
        n = int(cpus)
        if n != 1:
            raise CommandLineError(
                None,
                f"Invalid SMP CPUs {n}. The max CPUs supported by machine "
                f"'{machine_name}' is 1",
                "pyqemu runs one vCPU for now; use -smp 1 (the default).\n",
            )
        return n

    def machine_class(self) -> type[MachineState]:
        """The board ``-machine type=`` names, or the target's default."""
        target = self.cfg.target
        name = self.machine_opts().get("type")
        if name is None:
            defaults = [m for m in machine_types(target) if target in m.default_for]
            if not defaults:
                raise CommandLineError(
                    None,
                    "No machine specified, and there is no default",
                    "Use -machine help to list supported machines\n",
                )
            return defaults[0]
        try:
            return find_machine(name, target)
        except Error:
            # QEMU 7.2's words (newer QEMUs name the type).
            raise CommandLineError(
                None,
                "unsupported machine type",
                "Use -machine help to list supported machines\n",
            ) from None

    def create_machine(self) -> MachineState:
        """``-machine``/``-M`` and ``-m``: build the board."""
        props = self.machine_opts()
        props.pop("type", None)
        props.pop("accel", None)
        cls = self.machine_class()
        machine = cls()
        canonical = cls.aliases[0] if cls.aliases else cls.machine_name
        for key, value in props.items():
            if machine.property_find(key) is None:
                raise CommandLineError(
                    None, f"Property '{canonical}-machine.{key}' not found"
                )
            try:
                machine.property_parse(key, value)
            except Error as e:
                raise CommandLineError(None, e.msg, e.hint) from None
        self.set_boot_images(machine)
        machine.smp = CpuTopology(cpus=self.smp_cpus(canonical))
        cpu = self.cfg.last("cpu")
        if cpu is not None:
            machine.cpu_model = cpu.split(",")[0]
        located = self.cfg.located("m")
        if located:
            size = self.ram_size(*located[-1])
            if size:
                machine.ram_size = size
        return machine

    @staticmethod
    def ram_size(where: str, arg: str) -> int:
        """``-m [size=]SIZE[,slots=N,maxmem=SIZE]`` (QEMU's ``set_memory_options``).

        Returns the size in bytes; 0 keeps the board's default, as in QEMU.
        """
        try:
            opts = qemu_opts_parse(
                arg, implied="size", accepted=frozenset({"size", "slots", "maxmem"})
            )
            text = opts.get("size")
            if text is None:
                return 0
            # A size (default unit: bytes); the suffix-less form means MiB.
            parse_size("size", text)
            if text[-1:].isdigit():
                text += "M"
            return parse_size("size", text)
        except Error as e:
            raise CommandLineError(where, e.msg, e.hint) from None

    def set_boot_images(self, machine: MachineState) -> None:
        """``-kernel``, ``-initrd``, ``-append``, ``-dtb`` and ``-bios``.

        Each sets the machine property of the same purpose, as in QEMU
        (``kernel``, ``initrd``, ``append``, ``dtb``, ``firmware``); they are
        checked as QEMU checks them (``qemu_validate_options``).
        """
        for opt, prop in (
            ("kernel", "kernel"),
            ("initrd", "initrd"),
            ("append", "append"),
            ("dtb", "dtb"),
            ("bios", "firmware"),
        ):
            value = self.cfg.last(opt)
            if value is not None:
                machine.property_set(prop, value)
        if machine.kernel_filename is None:
            if machine.kernel_cmdline:
                raise CommandLineError(
                    None,
                    "-append only allowed with -kernel option",
                    "-append gives the command line of the -kernel image.\n",
                )
            if machine.initrd_filename is not None:
                raise CommandLineError(
                    None,
                    "-initrd only allowed with -kernel option",
                    "-initrd gives the initial ramdisk of the -kernel image.\n",
                )

    def default_monitor(self) -> bool:
        """Whether QEMU would add its default monitor (none of the monitor options)."""
        return not self.cfg.has("nodefaults") and not any(
            self.cfg.has(o) for o in ("monitor", "mon", "qmp", "qmp-pretty")
        )

    def serial_specs(self) -> list[tuple[str, str]]:
        """``(location, spec)`` of each ``-serial``, with QEMU's defaults.

        Without ``-serial``: ``null`` (QEMU's is a virtual console, which
        pyqemu does not have); with ``-nographic``, ``mon:stdio`` (the serial
        port and the human monitor share the terminal, Ctrl-a c switches)
        unless a monitor option was given, then ``stdio``.
        """
        located = self.cfg.located("serial")
        if located or self.cfg.has("nodefaults"):
            return located
        if not self.cfg.has("nographic"):
            return [("-serial null", "null")]
        if self.default_monitor():
            return [("-serial mon:stdio", "mon:stdio")]
        return [("-serial stdio", "stdio")]

    def add_hmp_monitor(self, chr_: Chardev) -> None:
        """A human monitor on *chr_* (a mux gets one more frontend for it)."""
        from system.monitor.hmp_monitor import HMPMonitor

        if isinstance(chr_, MuxChardev):
            chr_ = chr_.new_port()
        self.servers.append(HMPMonitor(chr_, self.loop, target=self.cfg.target))

    def add_qmp_monitor(self, chr_: Chardev, pretty: bool) -> None:
        """A QMP monitor on *chr_*."""
        from system.monitor import QMPMonitor

        if isinstance(chr_, MuxChardev):
            chr_ = chr_.new_port()
        self.servers.append(
            QMPMonitor(chr_, self.loop, pretty=pretty, target=self.cfg.target)
        )

    def create_monitors(self) -> None:
        """``-mon``, ``-monitor``, ``-qmp``, ``-qmp-pretty`` (QEMU's ``mon_init_func``).

        Without any of them and with ``-nographic``, the monitor shares the
        serial port's terminal (:meth:`serial_specs`).
        """
        count = 0
        for word, (name, arg) in zip(self.cfg.words, self.cfg.options, strict=True):
            if arg is None or name not in ("mon", "monitor", "qmp", "qmp-pretty"):
                continue
            where = f"{word} {arg}"
            try:
                if name == "mon":
                    self.monitor_from_opts(arg)
                    continue
                if arg == "none":
                    if name == "monitor":
                        continue
                    # -qmp has no "none" in QEMU 7.2.
                    raise CommandLineError(
                        where,
                        "'none' is not a valid char driver\nparse error: none",
                    )
                if arg.startswith("chardev:"):
                    chr_ = qemu_chr_find(arg[8:])
                    if chr_ is None:
                        raise Error(f'chardev "{arg[8:]}" not found')
                else:
                    label = f"compat_monitor{count}"
                    count += 1
                    try:
                        found = chr_new_compat(label, arg)
                    except Error as e:
                        msg = _strip_chardev_prefix(e, label).msg
                        if msg.endswith("is not a valid char driver"):
                            msg += f"\nparse error: {arg}"
                        raise CommandLineError(where, msg) from None
                    if found is None:
                        continue
                    chr_ = found
                if name == "monitor":
                    self.add_hmp_monitor(chr_)
                else:
                    self.add_qmp_monitor(chr_, pretty=name == "qmp-pretty")
            except Error as e:
                raise CommandLineError(where, e.msg, e.hint) from None

    def monitor_from_opts(self, arg: str) -> None:
        """``-mon [chardev=]ID[,mode=readline|control][,pretty=on|off]``."""
        opts = qemu_opts_parse(
            arg, implied="chardev", accepted=frozenset({"chardev", "mode", "pretty"})
        )
        mode = opts.get("mode") or "readline"
        if mode not in ("readline", "control"):
            raise Error(f"Parameter 'mode' does not accept value '{mode}'")
        pretty = opts.get("pretty") or "off"
        if pretty not in ("on", "off"):
            raise Error("Parameter 'pretty' expects 'on' or 'off'")
        label = opts.get("chardev")
        if label is None:
            raise Error("chardev: no chardev given")
        chr_ = qemu_chr_find(label)
        if chr_ is None:
            raise Error(f'chardev "{label}" not found')
        if mode == "control":
            self.add_qmp_monitor(chr_, pretty=pretty == "on")
        else:
            self.add_hmp_monitor(chr_)

    def create_serials(self, machine: MachineState) -> None:
        """``-serial``: the machine's serial ports, a monitor on ``mon:`` ones."""
        for i, (where, spec) in enumerate(self.serial_specs()):
            label = f"serial{i}"
            try:
                chr_ = chr_new_compat(label, spec)
            except Error as e:
                first = _strip_chardev_prefix(
                    _strip_chardev_prefix(e, label), f"{label}-base"
                )
                lines = "" if spec.startswith("chardev:") else f"{first.msg}\n"
                raise CommandLineError(
                    where,
                    f"{lines}could not connect serial device to character "
                    f"backend '{spec}'",
                ) from None
            machine.serial_hds.append(chr_)
            if spec.startswith("mon:") and chr_ is not None:
                try:
                    self.add_hmp_monitor(chr_)
                except Error as e:
                    raise CommandLineError(where, e.msg, e.hint) from None

    def start(self) -> None:
        """Build everything the command line describes."""
        self.check_ids()
        self.check_msg()
        for where, path in self.cfg.located("dump-vmstate"):
            try:
                with open(path, "a", encoding="utf-8"):
                    pass
            except OSError as e:
                raise CommandLineError(where, f"open {path}: {e.strerror}") from None
        self.setup_logging()
        self.setup_trace()
        accel = self.accelerator()
        self.check_display()
        object_tree_reset()
        cpu_list_reset()
        reset_system_memory()
        virtual_clock_reset()
        qdev_prop_reset_globals()
        runstate.runstate_init(RunState.PRELAUNCH)
        self.setup_rtc()
        self.setup_name()
        chardev.set_main_loop(self.loop)
        self.accel = self.create_accel(accel)
        set_current_accel(self.accel)
        self.setup_accel()
        machine = self.create_machine()
        for where, arg in self.cfg.located("chardev"):
            try:
                _chardev_add(arg)
            except Error as e:
                raise CommandLineError(where, e.msg, e.hint) from None
        self.create_monitors()
        self.create_serials(machine)
        for where, arg in self.cfg.located("global"):
            try:
                with error_location(where):
                    warning = _global_add(arg)
            except GlobalError as e:
                raise CommandLineError(None, e.msg, e.hint) from None
            except Error as e:
                raise CommandLineError(where, e.msg, e.hint) from None
            if warning is not None:
                self.warnings.append(warning)
        machine.attach()
        try:
            machine.machine_init()
        except Error as e:
            raise _global_error(e) or e from None
        except (MemoryError, OverflowError) as e:
            raise CommandLineError(
                None,
                f"cannot set up guest memory '{machine.ram_name}': "
                "Cannot allocate memory",
            ) from e
        self.machine = machine
        for where, arg in self.cfg.located("device"):
            try:
                _device_add(arg, machine, self.cfg.target)
            except Error as e:
                glob = _global_error(e)
                if glob is not None:
                    raise CommandLineError(None, glob.msg) from None
                raise CommandLineError(where, e.msg, e.hint) from None
        for warning in self.warnings:
            self.err.write(f"{self.prog}: warning: {warning}\n")
        self.warnings.clear()
        machine.machine_done()
        open_muxes()
        runstate.qemu_system_reset_handler(self.reset_machine)
        runstate.qemu_system_reset(ShutdownCause.NONE)
        self.loop.machine_running = runstate.runstate_is_running
        runstate.qemu_add_vm_change_state_handler(self.vm_state_changed)
        self.accel.setup_post()
        self.loop.set_error_handler(runstate.report_internal_error)
        self.start_servers()
        migration_init(self.loop, autostart=not self.cfg.has("S"))
        dump = self.cfg.located("dump-vmstate")
        if dump:
            where, path = dump[-1]
            from qemu_api.migration.savevm import dump_vmstate_json_to_file

            try:
                module_load_qom_all()  # every device type, as QEMU
                dump_vmstate_json_to_file(path, machine)
            except Error as e:
                raise CommandLineError(where, e.msg, e.hint) from None
            runstate.qemu_system_shutdown_request(ShutdownCause.NONE)
            return
        incoming = self.cfg.located("incoming")
        if incoming:
            where, uri = incoming[-1]
            try:
                start_incoming(uri)
            except Error as e:
                raise CommandLineError(where, e.msg, e.hint) from None
        elif not self.cfg.has("S"):
            runstate.vm_start()

    def setup_accel(self) -> None:
        """Tie the accelerator to the run state and the main loop."""
        accel = self.accel
        icount = getattr(accel, "icount_shift", None) is not None
        # The virtual clock follows host time, except under qtest (the test
        # moves it) and icount (the vCPU moves it).
        self.loop.virtual_follows_host = accel.has_cpus and not icount
        runstate.set_main_loop_notify(self.loop.notify)
        # A timer armed by the vCPU must shorten the main loop's sleep; under
        # -icount it must also end the vCPU's instruction budget, which was
        # computed for the previous deadline.
        kick = getattr(accel, "kick_all", None) if icount else None

        def timers_changed(clock: QEMUClockType) -> None:
            self.loop.timers_changed(clock)
            if kick is not None:
                kick()

        qemu_clock_set_notify(timers_changed)
        for name, value in (
            ("can_run", runstate.runstate_is_running),
            ("on_error", runstate.report_internal_error),
            ("host_clock_ns", self.loop.virtual_clock_now),
            # Due virtual-clock timers run on the vCPU thread at its device
            # accesses, without a handoff to the main loop.
            ("before_access", self.loop.vcpu_clock_sync if not icount else None),
        ):
            if hasattr(accel, name):
                setattr(accel, name, value)

    def vm_state_changed(self, running: bool, _state: RunState) -> None:
        """Resume the vCPUs when the machine runs; pause them when it stops."""
        accel = self.accel
        if running:
            resume = getattr(accel, "resume_all", None)
            if resume is not None:
                resume()
        else:
            pause = getattr(accel, "pause_all", None)
            if pause is not None:
                pause()

    def reset_machine(self, _reason: ShutdownCause) -> None:
        """Reset the board and its CPUs, the vCPUs paused (``qemu_system_reset``)."""
        machine = self.machine
        if machine is None:
            return
        pause = getattr(self.accel, "pause_all", None)
        resume = getattr(self.accel, "resume_all", None)
        if pause is not None:
            pause()
        try:
            machine.reset()
            for cpu in cpu_foreach():
                cpu.cpu_reset()
        finally:
            if resume is not None:
                resume()

    def start_servers(self) -> None:
        """``-qtest``: the qtest server on its chardev.

        A ``-qtest-log`` file that cannot be opened means no log, as in QEMU.
        """
        located = self.cfg.located("qtest")
        if not located:
            return
        where, qtest_spec = located[-1]
        try:
            chr_ = chr_new_compat("qtest", qtest_spec)
        except Error as e:
            raise CommandLineError(where, e.msg, e.hint) from None
        if chr_ is None:
            return
        log_path = self.cfg.last("qtest-log")
        if log_path is not None and log_path != "none":
            try:
                with open(log_path, "a", encoding="latin-1"):
                    pass
            except OSError:
                log_path = "none"
        try:
            self.servers.append(QTestServer(chr_, self.loop, log_path))
        except Error as e:
            raise CommandLineError(where, e.msg, e.hint) from None

    def cleanup(self) -> None:
        """Release what the run created, on every way out (``qemu_cleanup``).

        The servers stop, a pending incoming migration stops listening, and
        every chardev closes: the Unix socket files of ``-qmp``, ``-qtest``,
        ``-serial``, ``-chardev`` and ``-incoming`` are removed.
        """
        migration_shutdown()
        for server in self.servers:
            server.close()
        self.servers.clear()
        qemu_chr_reset()
        self.loop.close()

    def run(self) -> int:
        """Run the main loop until a shutdown request; return the exit status.

        SIGINT, SIGTERM and SIGHUP end the run as in QEMU: a "terminating on
        signal N" line, a ``SHUTDOWN`` event and exit status 0.
        """
        rfd, wfd = socket.socketpair()
        rfd.setblocking(False)
        wfd.setblocking(False)
        caught: list[int] = []

        def on_signal(signum: int, _frame: object) -> None:
            caught.append(signum)

        def drain() -> None:
            with contextlib.suppress(BlockingIOError):
                rfd.recv(64)
            if caught and runstate.shutdown_requested() is None:
                self.err.write(f"{self.prog}: terminating on signal {caught[0]}\n")
                self.err.flush()
                runstate.qemu_system_shutdown_request(ShutdownCause.HOST_SIGNAL)

        old_wakeup = signal.set_wakeup_fd(wfd.fileno())
        old = {
            sig: signal.signal(sig, on_signal)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
        self.loop.set_fd_handler(rfd.fileno(), drain, name="signals")
        if not gc.isenabled():
            # The launcher starts with the cycle collector off; the objects
            # built so far live as long as the machine: freeze them.
            gc.freeze()
            gc.enable()
        try:
            self.loop.run(until=runstate.main_loop_should_exit)
        finally:
            self.accel.shutdown()
            set_current_accel(None)
            runstate.set_main_loop_notify(None)
            qemu_clock_set_notify(None)
            self.loop.set_fd_handler(rfd.fileno(), None)
            for sig, handler in old.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(old_wakeup)
            rfd.close()
            wfd.close()
        return migration_exit_status()


def machine_props_help(target: str, name: str) -> str:
    """Return the ``-machine TYPE,help`` text (QEMU's ``machine_help_func``).

    Raises:
        Error: no such board.
    """
    cls = find_machine(name, target)
    canonical = cls.aliases[0] if cls.aliases else cls.machine_name
    machine = cls()
    rows = []
    for prop in machine.properties():
        if prop.type.startswith("child<"):
            continue
        row = f"  {prop.name}=<{prop.type}>"
        if prop.description:
            row = f"{row:<24} - {prop.description}"
        rows.append(row)
    machine.unparent()
    return f"{canonical}-machine options:\n" + "".join(f"{r}\n" for r in sorted(rows))


_HELP_WORDS: Final = ("help", "?")


def _help_request(cfg: VMConfig, out: TextIO, err: TextIO) -> int | None:
    """Answer the ``help`` requests; return the exit status, or None if none."""
    if any(a.split(",")[0] in _HELP_WORDS for a in cfg.all("accel")):
        out.write("Accelerators supported in QEMU binary:\n")
        out.write("".join(f"{name}\n" for name in ACCEL_NAMES))
        return 0
    if any(a.split(",")[0] in _HELP_WORDS for a in cfg.all("cpu")):
        out.write(cpu_help(cfg.target))
        return 0
    if any(a in _HELP_WORDS for a in cfg.all("d")):
        out.write(log.qemu_log_help())
        return 1  # as QEMU 7.2 (qemu_str_to_log_mask fails on "help")
    for arg in cfg.all("M"):
        opts = qemu_opts_parse(arg, implied="type")
        if opts.values.get("type") in _HELP_WORDS:
            out.write(machine_help(cfg.target))
            return 0
        if opts.help:
            machine_type = opts.values.get("type")
            if machine_type is None:
                out.write(machine_help(cfg.target))
            else:
                out.write(machine_props_help(cfg.target, str(machine_type)))
            return 0
    for where, arg in cfg.located("device"):
        opts = qemu_opts_parse(arg, implied="driver")
        driver = opts.get("driver")
        if driver in _HELP_WORDS or (driver is None and opts.help):
            out.write(device_help(cfg.target))
            return 0
        if opts.help and driver is not None:
            # From the registry: a module's types are listed without importing it.
            if driver not in {i.name for i in module_device_infos() if not i.abstract}:
                err.write(
                    f"{error_get_progname()}: {where}: Device '{driver}' not found\n"
                )
                return 0
            out.write(device_props_help(driver))
            return 0
    for arg in cfg.all("chardev"):
        if arg.split(",")[0] in _HELP_WORDS:
            out.write(chardev_help())
            return 0
    for arg in cfg.all("trace"):
        if arg in ("help", "enable=help"):
            out.write("".join(f"{n}\n" for n in trace.trace_list_events()))
            return 0
    return None


def _print_error(err: TextIO, prog: str, e: CommandLineError) -> None:
    """``prog: LOCATION: message`` for each line of the message, then the hint."""
    if not e.message:
        return  # already reported (QEMU's usage texts)
    where = f"{e.opt}: " if e.opt else ""
    for line in e.message.split("\n"):
        err.write(f"{prog}: {where}{line}\n")
    if e.hint:
        err.write(e.hint)


def qemu_main(
    target: str,
    argv: list[str],
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    r"""Run the emulator for *target* with the command line *argv*.

    Returns the exit status. Errors are printed as QEMU prints them.

    >>> import io
    >>> err = io.StringIO()
    >>> qemu_main("aarch64", ["pyqemu-system-aarch64", "-bogus"], stderr=err)
    1
    >>> err.getvalue()
    'pyqemu-system-aarch64: -bogus: invalid option\n'
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    prog = f"pyqemu-system-{target}"
    error_set_progname(prog)
    try:
        cfg = parse_command_line(target, argv[1:])
    except CommandLineError as e:
        _print_error(err, prog, e)
        return 1
    if cfg.has("version"):
        out.write(version_text())
        return 0
    if cfg.has("h"):
        out.write(usage(prog))
        return 0
    if cfg.has("daemonize"):
        _print_error(err, prog, CommandLineError("-daemonize", "not supported"))
        return 1
    _import_boards()
    if not bql_locked():
        bql_lock()
    try:
        _import_devices(err)
        status = _help_request(cfg, out, err)
    except Error as e:
        _print_error(err, prog, CommandLineError(None, e.msg, e.hint))
        return 1
    if status is not None:
        return status
    emu = Emulator(cfg, out, err, prog)
    try:
        try:
            emu.start()
        except DtbDumped:
            return 0
        except CommandLineError as e:
            _print_error(err, prog, e)
            return 1
        except Error as e:
            _print_error(err, prog, CommandLineError(None, e.msg, e.hint))
            return 1
        return emu.run()
    finally:
        emu.cleanup()
