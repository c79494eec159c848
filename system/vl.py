"""The command line: QEMU's options, machine creation and the run (``system/vl.c``).

:func:`qemu_main` parses ``argv`` the way QEMU does (``-opt ARG`` or ``--opt ARG``),
reports errors as QEMU does (``prog: -opt: message``, exit status 1, never a
traceback), builds the machine and runs the main loop until a shutdown request.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import signal
import socket
import sys
from dataclasses import dataclass, field
from typing import Final, TextIO, final

import chardev
import pyqemu_config
from accel import ACCEL_NAMES, AccelState, accel_new, set_current_accel
from hw.core.cpu import cpu_foreach, cpu_list_reset
from hw.core.machine import CpuTopology, MachineState, find_machine, machine_types
from qemu_api import log, rtc, trace
from qemu_api.bql import bql_lock, bql_locked
from qemu_api.chardev import Chardev, qemu_chr_find, qemu_chr_new, qemu_chr_reset
from qemu_api.error import Error, error_set_progname
from qemu_api.memory import reset_system_memory
from qemu_api.migration.savevm import dump_vmstate_json_to_file
from qemu_api.module import (
    module_device_infos,
    module_device_properties,
    module_load_qom_all,
)
from qemu_api.option import QemuOpts, parse_size, qemu_opts_parse, split_opts
from qemu_api.qdev import (
    DeviceState,
    qdev_device_list_properties,
    qdev_new,
    qdev_prop_register_global,
    qdev_prop_reset_globals,
    qdev_realize,
    qdev_set_id,
)
from qemu_api.qom import object_class_by_name, object_tree_reset
from qemu_api.sysbus import SysBusDevice
from qemu_api.timer import QEMUClockType, qemu_clock_set_notify, virtual_clock_reset
from system import runstate
from system.device_tree import DtbDumped
from system.main_loop import MainLoop
from system.migration import exit_status as migration_exit_status
from system.migration import migration_init, migration_shutdown, start_incoming
from system.modules import modules_init
from system.monitor import QMPMonitor
from system.qtest import QTestServer
from system.runstate import RunState, ShutdownCause

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
        if name not in OPTIONS:
            raise CommandLineError(word, "invalid option")
        arg: str | None = None
        if OPTIONS[name]:
            if i >= len(argv):
                raise CommandLineError(word, "requires an argument")
            arg = argv[i]
            i += 1
        cfg.options.append((name, arg))
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


def device_help() -> str:
    """Return the ``-device help`` text (QEMU's ``qdev_print_devinfos``)."""
    lines = ["Misc devices:"]
    # Every device type, without importing the modules that provide them.
    for cls in module_device_infos():
        if cls.abstract or not cls.user_creatable:
            continue
        line = f'name "{cls.name}"'
        if cls.bus_type is not None:
            line += f", bus {cls.bus_type}"
        if cls.desc:
            line += f', desc "{cls.desc}"'
        lines.append(line)
    return "\n".join(lines) + "\n"


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
    if spec in ("null", "stdio", "pty", "mon:stdio"):
        return qemu_chr_new(label, spec.removeprefix("mon:"))
    if spec.startswith("file:"):
        return qemu_chr_new(label, "file", {"path": spec[5:]})
    if spec.startswith("unix:"):
        path, *rest = split_opts(spec[5:])
        opts: dict[str, str | int | bool] = {"path": path}
        opts.update(qemu_opts_parse(",".join(rest)).values if rest else {})
        return qemu_chr_new(label, "socket", opts)
    if spec.startswith("tcp:"):
        hostport, *rest = split_opts(spec[4:])
        host, _, port = hostport.rpartition(":")
        opts = {"host": host or "0.0.0.0", "port": port}
        opts.update(qemu_opts_parse(",".join(rest)).values if rest else {})
        return qemu_chr_new(label, "socket", opts)
    raise Error(f"'{spec}' is not a valid char driver")


def _chardev_add(arg: str) -> None:
    """``-chardev BACKEND,id=ID[,...]``."""
    opts = qemu_opts_parse(arg, implied="backend")
    backend = opts.take("backend")
    label = opts.take("id")
    if backend is None:
        raise Error("chardev: no backend given", hint="-chardev BACKEND,id=ID,...\n")
    if label is None:
        raise Error('chardev: "id" is required')
    qemu_chr_new(label, backend, dict(opts.values))


def _device_add(arg: str, machine: MachineState) -> None:
    """``-device TYPE[,prop=val...]`` (QEMU's ``qdev_device_add``).

    Sysbus types are not user-creatable, except those the machine allows on
    its platform bus (QEMU's dynamic sysbus devices), which it wires once
    they are realized.
    """
    opts = qemu_opts_parse(arg, implied="driver")
    driver = opts.take("driver")
    if driver is None:
        raise Error("Parameter 'driver' is missing")
    cls = object_class_by_name(driver)
    if cls is None or not issubclass(cls, DeviceState):
        raise Error(
            f"'{driver}' is not a valid device model name",
            hint="Use -device help to list the devices\n",
        )
    dynamic = machine.device_is_dynamic_sysbus(cls)
    if not cls.user_creatable and not dynamic:
        raise Error("Parameter 'driver' expects a pluggable device type")
    if issubclass(cls, SysBusDevice) and not dynamic:
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


def _global_add(arg: str) -> None:
    """``-global DRIVER.PROP=VALUE`` or ``-global driver=D,property=P,value=V``."""
    if "=" in arg.split(".", 1)[0] or "." not in arg:
        opts = qemu_opts_parse(arg, accepted=frozenset({"driver", "property", "value"}))
        driver, prop, value = (
            opts.get("driver"),
            opts.get("property"),
            opts.get("value"),
        )
        if driver is None or prop is None or value is None:
            raise Error("Invalid -global: driver, property and value are needed")
    else:
        driver, _, rest = arg.partition(".")
        prop, eq, value = rest.partition("=")
        if not eq:
            raise Error(f"Invalid -global {arg}: expected DRIVER.PROPERTY=VALUE")
    qdev_prop_register_global(driver, prop, value)


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
        f"Boards: {' '.join(pyqemu_config.BOARDS) or 'none'}\n"
        f"Devices built: {' '.join(pyqemu_config.DEVICES) or 'none'}\n"
    )


def version_text() -> str:
    """Return the ``-version`` text, in QEMU's layout."""
    return (
        f"pyqemu emulator version {pyqemu_config.VERSION}\n"
        "Copyright (c) 2026 the pyqemu project developers\n"
    )


ACCELERATORS: Final = ("qtest", "tcg")


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
        self.servers: list[QTestServer | QMPMonitor] = []
        self.accel: AccelState = accel_new("qtest")

    # Each step raises CommandLineError (or Error, attributed to no option).

    def setup_logging(self) -> None:
        """``-D`` and ``-d`` (QEMU opens the log before anything else)."""
        mask = 0
        for item in self.cfg.all("d"):
            try:
                mask |= log.qemu_str_to_log_mask(item)
            except Error as e:
                # QEMU 7.2 prints the whole item list instead; one line that
                # names the bad item is clearer.
                raise CommandLineError(
                    "-d", e.msg, "Use -d help to list the log items\n"
                ) from None
        try:
            log.qemu_set_log_filename_flags(self.cfg.last("D"), mask)
        except Error as e:
            raise CommandLineError("-D", e.msg) from None

    def setup_trace(self) -> None:
        """``-trace`` options, then the backends and the trace file."""
        for arg in self.cfg.all("trace"):
            try:
                trace.trace_opt_parse(arg)
            except Error as e:
                raise CommandLineError("-trace", e.msg) from None
        trace.trace_init_backends()
        try:
            trace.trace_init_file()
        except Error as e:
            raise CommandLineError("-trace", e.msg) from None

    def accelerator(self) -> str:
        """The accelerator: ``-accel``, or qtest when ``-qtest`` is given."""
        accel = self.cfg.last("accel")
        if accel is None:
            return "qtest" if self.cfg.has("qtest") else "tcg"
        name = qemu_opts_parse(accel, implied="accel").get("accel", "")
        if name not in ACCEL_NAMES:
            raise CommandLineError("-accel", f"invalid accelerator {name}")
        return name or "tcg"

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

    def create_accel(self, name: str) -> AccelState:
        """``-accel`` with ``-icount``: the accelerator object."""
        opts: dict[str, str] = {}
        icount = self.cfg.last("icount")
        if icount is not None:
            if name != "tcg":
                raise CommandLineError(
                    "-icount",
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
                raise CommandLineError("-icount", e.msg) from None
            for key in ("align", "rr", "rrfile"):
                if parsed.get(key) is not None:
                    raise CommandLineError("-icount", f"icount: {key} is not supported")
            shift = parsed.get("shift")
            if shift is None:
                raise CommandLineError("-icount", "icount: shift=N is required")
            opts["icount-shift"] = shift
            sleep = parsed.get("sleep")
            if sleep is not None:
                opts["icount-sleep"] = sleep
        try:
            return accel_new(name, opts)
        except Error as e:
            opt = "-icount" if icount is not None else "-accel"
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

    def create_machine(self) -> MachineState:
        """``-machine``/``-M`` and ``-m``: build the board."""
        target = self.cfg.target
        arg = self.cfg.last("M")
        props = qemu_opts_parse(arg, implied="type") if arg is not None else QemuOpts()
        name = props.take("type")
        if name is None:
            defaults = [m for m in machine_types(target) if target in m.default_for]
            if not defaults:
                raise CommandLineError(
                    None,
                    "No machine specified, and there is no default",
                    "Use -machine help to list supported machines\n",
                )
            cls = defaults[0]
        else:
            try:
                cls = find_machine(name, target)
            except Error as e:
                raise CommandLineError("-machine", e.msg, e.hint) from None
        machine = cls()
        for key, value in props.values.items():
            if machine.property_find(key) is None:
                raise CommandLineError(
                    "-machine", f"Property '{cls.TYPE_NAME}.{key}' not found"
                )
            try:
                machine.property_parse(key, str(value))
            except Error as e:
                raise CommandLineError("-machine", e.msg) from None
        self.set_boot_images(machine)
        canonical = cls.aliases[0] if cls.aliases else cls.machine_name
        machine.smp = CpuTopology(cpus=self.smp_cpus(canonical))
        cpu = self.cfg.last("cpu")
        if cpu is not None:
            machine.cpu_model = cpu.split(",")[0]
        mem = self.cfg.last("m")
        if mem is not None:
            opts = qemu_opts_parse(mem, implied="size")
            text = opts.get("size", "") or ""
            try:
                # As QEMU: a size (default unit: bytes), then the legacy
                # suffix-less form means MiB.
                parse_size("size", text)
                if text[-1:].isdigit():
                    text += "M"
                machine.ram_size = parse_size("size", text)
            except Error as e:
                raise CommandLineError("-m", e.msg, e.hint) from None
            if machine.ram_size == 0 and cls.default_ram_size:
                raise CommandLineError("-m", "RAM size must not be 0")
        return machine

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

    def serial_specs(self) -> list[str]:
        """The ``-serial`` list, with QEMU's default when none is given."""
        specs = self.cfg.all("serial")
        if specs:
            return specs
        if self.cfg.has("nodefaults"):
            return []
        return ["stdio"] if self.cfg.has("nographic") else ["null"]

    def start(self) -> None:
        """Build everything the command line describes."""
        self.setup_logging()
        self.setup_trace()
        accel = self.accelerator()
        for opt in ("display",):
            for value in self.cfg.all(opt):
                if value.split(",")[0] != "none":
                    raise CommandLineError(
                        "-display", f"Display '{value}' is not available"
                    )
        object_tree_reset()
        cpu_list_reset()
        reset_system_memory()
        virtual_clock_reset()
        qdev_prop_reset_globals()
        runstate.runstate_init(RunState.PRELAUNCH)
        self.setup_rtc()
        chardev.set_main_loop(self.loop)
        self.accel = self.create_accel(accel)
        set_current_accel(self.accel)
        self.setup_accel()
        machine = self.create_machine()
        for arg in self.cfg.all("chardev"):
            try:
                _chardev_add(arg)
            except Error as e:
                raise CommandLineError("-chardev", e.msg, e.hint) from None
        for i, spec in enumerate(self.serial_specs()):
            try:
                machine.serial_hds.append(chr_new_compat(f"serial{i}", spec))
            except Error as e:
                raise CommandLineError("-serial", e.msg, e.hint) from None
        for arg in self.cfg.all("global"):
            try:
                _global_add(arg)
            except Error as e:
                # the message already starts with "-global DRIVER.PROP=VALUE: "
                raise CommandLineError(None, e.msg, e.hint) from None
        machine.attach()
        machine.machine_init()
        self.machine = machine
        for arg in self.cfg.all("device"):
            try:
                _device_add(arg, machine)
            except Error as e:
                raise CommandLineError("-device", e.msg, e.hint) from None
        machine.machine_done()
        runstate.qemu_system_reset_handler(self.reset_machine)
        runstate.qemu_system_reset(ShutdownCause.NONE)
        self.loop.machine_running = runstate.runstate_is_running
        runstate.qemu_add_vm_change_state_handler(self.vm_state_changed)
        self.accel.setup_post()
        self.loop.set_error_handler(runstate.report_internal_error)
        self.start_servers()
        migration_init(self.loop, autostart=not self.cfg.has("S"))
        dump = self.cfg.last("dump-vmstate")
        if dump is not None:
            try:
                module_load_qom_all()  # every device type, as QEMU
                dump_vmstate_json_to_file(dump, machine)
            except Error as e:
                raise CommandLineError("-dump-vmstate", e.msg, e.hint) from None
            runstate.qemu_system_shutdown_request(ShutdownCause.NONE)
            return
        incoming = self.cfg.last("incoming")
        if incoming is not None:
            try:
                start_incoming(incoming)
            except Error as e:
                raise CommandLineError("-incoming", e.msg, e.hint) from None
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

        def timers_changed(_clock: QEMUClockType) -> None:
            self.loop.notify()
            if kick is not None:
                kick()

        qemu_clock_set_notify(timers_changed)
        for name, value in (
            ("can_run", runstate.runstate_is_running),
            ("on_error", runstate.report_internal_error),
            ("host_clock_ns", self.loop.virtual_clock_now),
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
        """``-qtest`` and ``-qmp``: the protocol servers on their chardevs."""
        qtest_spec = self.cfg.last("qtest")
        if qtest_spec is not None:
            try:
                chr_ = chr_new_compat("qtest", qtest_spec)
            except Error as e:
                raise CommandLineError("-qtest", e.msg, e.hint) from None
            if chr_ is not None:
                self.servers.append(
                    QTestServer(chr_, self.loop, self.cfg.last("qtest-log"))
                )
        for opt in ("qmp", "qmp-pretty"):
            for i, spec in enumerate(self.cfg.all(opt)):
                try:
                    chr_ = chr_new_compat(f"compat_monitor{i}", spec)
                except Error as e:
                    raise CommandLineError(f"-{opt}", e.msg, e.hint) from None
                if chr_ is not None:
                    self.servers.append(
                        QMPMonitor(
                            chr_,
                            self.loop,
                            pretty=opt == "qmp-pretty",
                            target=self.cfg.target,
                        )
                    )

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


def _help_request(cfg: VMConfig, out: TextIO) -> bool:
    """Answer ``-M help``, ``-device help``, ``-device T,help``, ``-d help``."""
    if any(a.split(",")[0] in ("help", "?") for a in cfg.all("accel")):
        out.write("Accelerators supported in QEMU binary:\n")
        out.write("".join(f"{name}\n" for name in ACCEL_NAMES))
        return True
    if any(a.split(",")[0] in ("help", "?") for a in cfg.all("cpu")):
        out.write(cpu_help(cfg.target))
        return True
    if any(a in ("help", "?") for a in cfg.all("d")):
        out.write(log.qemu_log_help())
        return True
    if any(a.split(",")[0] in ("help", "?") for a in cfg.all("M")):
        out.write(machine_help(cfg.target))
        return True
    for arg in cfg.all("device"):
        opts = qemu_opts_parse(arg, implied="driver")
        driver = opts.get("driver")
        if driver is None and opts.help:
            out.write(device_help())
            return True
        if opts.help and driver is not None:
            out.write(device_props_help(driver))
            return True
    for arg in cfg.all("trace"):
        if arg in ("help", "enable=help"):
            out.write("".join(f"{n}\n" for n in trace.trace_list_events()))
            return True
    return False


def _print_error(err: TextIO, prog: str, e: CommandLineError) -> None:
    if not e.message:
        return  # already reported (QEMU's usage texts)
    where = f"{e.opt}: " if e.opt else ""
    err.write(f"{prog}: {where}{e.message}\n")
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
    try:
        _import_devices(err)
        if _help_request(cfg, out):
            return 0
    except Error as e:
        _print_error(err, prog, CommandLineError(None, e.msg, e.hint))
        return 1
    if not bql_locked():
        bql_lock()
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
