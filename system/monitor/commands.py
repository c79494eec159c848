"""The QMP commands: what each command of ``qapi/schema.json`` does.

This module holds the command implementations that QEMU spreads over
``monitor/qmp-cmds.c``, ``monitor/qmp-cmds-control.c``,
``hw/core/machine-qmp-cmds.c``, ``qom/qom-qmp-cmds.c``, ``chardev/char.c``
and ``trace/qmp.c``. :class:`MonitorCommands` implements the
:class:`~qapi.qmp_schema.QMPCommandHandlers` protocol generated from the
schema, so ``mypy`` checks every handler's signature against its
declaration; the monitor dispatches to it after the generated code has
checked the arguments. Handlers report failures by raising
:class:`~qemu_api.error.Error`, whose class and message become the QMP
error.

>>> from system.runstate import RunState, runstate_init
>>> runstate_init(RunState.PRELAUNCH)
>>> cmds = MonitorCommands(None)
>>> cmds.query_status()
StatusInfo(running=False, singlestep=False, status=<RunState.PRELAUNCH: 'prelaunch'>)
>>> cmds.cont()
>>> cmds.query_status().status.value
'running'
"""

from __future__ import annotations

from typing import Protocol, final

import pyqemu_config
from hw.core.cpu import cpu_foreach
from hw.core.machine import MachineState, machine_types
from qapi.qmp_schema import (
    ChardevInfo,
    CommandInfo,
    CpuInfoFast,
    CpuInstanceProperties,
    DataFormat,
    MachineInfo,
    NameInfo,
    ObjectPropertyInfo,
    ObjectTypeInfo,
    QMPCapability,
    RunState,
    StatusInfo,
    SysEmuTarget,
    TraceEventInfo,
    TraceEventState,
    VersionInfo,
    VersionTriple,
)
from qemu_api import chardev, trace
from qemu_api.error import Error, ErrorClass, error_get_progname
from qemu_api.module import module_load_unlisted
from qemu_api.qdev import DeviceState, qdev_device_list_properties
from qemu_api.qom import (
    JSONValue,
    object_class_by_name,
    object_resolve_path,
    object_resolve_path_full,
    qom_get,
    qom_set,
    type_get_names,
    type_info,
)
from system import QEMU_INTERFACE_VERSION, migration, runstate
from system.monitor.hmp import handle_hmp_command
from system.runstate import ShutdownCause

__all__ = ["MonitorCommands", "QMPSession", "current_target"]


class QMPSession(Protocol):
    """What the commands need from the monitor they run in."""

    def negotiate(self, enable: list[QMPCapability]) -> None:
        """End capabilities negotiation with ``enable`` (``qmp_capabilities``)."""
        ...

    def command_names(self) -> list[str]:
        """The commands available now (``query-commands``)."""
        ...


def current_target(explicit: str | None = None) -> str | None:
    """The emulator's target: ``explicit``, else the one in the program name.

    The launchers set the program name to ``pyqemu-system-TARGET``
    (:func:`qemu_api.error.error_set_progname`); without one the target of
    the running board is used when it has only one.

    >>> current_target("x86_64")
    'x86_64'
    """
    if explicit is not None:
        return explicit
    prog = error_get_progname()
    if prog.startswith("pyqemu-system-"):
        return prog.removeprefix("pyqemu-system-")
    machine = object_resolve_path("/machine")
    if isinstance(machine, MachineState) and len(machine.targets) == 1:
        return machine.targets[0]
    return None


def _version_triple() -> VersionTriple:
    parts = [int(p) if p.isdigit() else 0 for p in QEMU_INTERFACE_VERSION.split(".")]
    parts += [0] * (3 - len(parts))
    return VersionTriple(major=parts[0], minor=parts[1], micro=parts[2])


def _machine_infos(cls: type[MachineState], target: str) -> list[MachineInfo]:
    """The ``query-machines`` rows of one board class.

    A board with aliases is listed as QEMU lists its versioned machines: the
    first alias (``virt-7.2``) is the name and ``machine_name`` (``virt``)
    the alias, as ``-machine help`` shows them; further aliases get rows of
    their own. pyqemu models no CPUs: ``cpu-max`` is 1 (QEMU's value for a
    board without a CPU limit) and there is no ``default-cpu-type``.
    """

    def row(name: str, alias: str | None, is_default: bool | None) -> MachineInfo:
        return MachineInfo(
            name=name,
            alias=alias,
            is_default=is_default,
            cpu_max=1,
            hotpluggable_cpus=False,
            numa_mem_supported=False,
            deprecated=False,
            default_ram_id=cls.ram_name,
        )

    default = True if target in cls.default_for else None
    if not cls.aliases:
        return [row(cls.machine_name, None, default)]
    return [
        row(cls.aliases[0], cls.machine_name, default),
        *(row(alias, None, None) for alias in cls.aliases[1:]),
    ]


def _data_format(fmt: DataFormat | None) -> chardev.DataFormat:
    return chardev.DataFormat(fmt.value) if fmt is not None else chardev.DataFormat.UTF8


def _check_vcpu(vcpu: int | None) -> None:
    """Pyqemu models no CPUs: any vCPU index is invalid (trace/qmp.c ``get_cpu``)."""
    if vcpu is not None:
        raise Error(f"invalid vCPU index {vcpu & 0xFFFFFFFF}")


def _system_reset() -> None:
    """Reset the machine as QEMU's main loop does on a reset request.

    ``main_loop_should_exit``: reset every device, send ``RESET``, and leave a
    machine that is not running (or migrating) in ``prelaunch``, which also
    clears ``internal-error``.
    """
    runstate.qemu_system_reset(ShutdownCause.HOST_QMP_SYSTEM_RESET)
    if not any(
        runstate.runstate_check(s)
        for s in (
            runstate.RunState.RUNNING,
            runstate.RunState.INMIGRATE,
            runstate.RunState.FINISH_MIGRATE,
        )
    ):
        runstate.runstate_set(runstate.RunState.PRELAUNCH)


@final
class MonitorCommands:
    """The QMP command handlers of one monitor.

    Args:
        session: the monitor (capabilities negotiation and the command
            list); None outside a monitor, where ``qmp_capabilities`` and
            ``query-commands`` are not available.
        target: the target for ``query-machines`` (see :func:`current_target`).
    """

    def __init__(
        self, session: QMPSession | None, *, target: str | None = None
    ) -> None:
        self._session = session
        self._target = target

    def _require_session(self) -> QMPSession:
        if self._session is None:
            raise Error("this command needs a QMP monitor")
        return self._session

    # -- control ----------------------------------------------------------------

    def qmp_capabilities(self, *, enable: list[QMPCapability] | None) -> None:
        """End capabilities negotiation (``qmp_qmp_capabilities``)."""
        self._require_session().negotiate(enable or [])

    def query_version(self) -> VersionInfo:
        """The version (``qmp_query_version``).

        ``qemu`` is the QEMU release whose interface pyqemu implements
        (:data:`system.QEMU_INTERFACE_VERSION`), so that clients that check
        it work; ``package`` names pyqemu and its own version.
        """
        return VersionInfo(
            qemu=_version_triple(), package=f"pyqemu {pyqemu_config.VERSION}"
        )

    def query_name(self) -> NameInfo:
        """The guest's name (``qmp_query_name``)."""
        return NameInfo(name=runstate.qemu_get_name())

    def query_commands(self) -> list[CommandInfo]:
        """The commands of this monitor (``qmp_query_commands``)."""
        return [CommandInfo(name=n) for n in self._require_session().command_names()]

    # -- run state --------------------------------------------------------------

    def query_status(self) -> StatusInfo:
        """The run state (``qmp_query_status``)."""
        return StatusInfo(
            running=runstate.runstate_is_running(),
            singlestep=False,
            status=RunState(runstate.runstate_get().value),
        )

    def query_cpus_fast(self) -> list[CpuInfoFast]:
        """The machine's CPUs (``qmp_query_cpus_fast``)."""
        return [
            CpuInfoFast(
                cpu_index=cpu.cpu_index,
                qom_path=cpu.canonical_path() or "",
                thread_id=cpu.thread_id(),
                # virt's possible_cpu_arch_ids: socket, cluster, core, thread.
                props=CpuInstanceProperties(
                    socket_id=0, cluster_id=0, core_id=cpu.cpu_index, thread_id=0
                ),
                target=SysEmuTarget(cpu.arch_name()),
            )
            for cpu in cpu_foreach()
        ]

    def stop(self) -> None:
        """Stop the machine if it runs (``qmp_stop``, ``do_vm_stop``)."""
        if runstate.runstate_is_running():
            runstate.vm_stop(runstate.RunState.PAUSED)

    def cont(self) -> None:
        """Start or resume the machine (``qmp_cont``).

        Raises:
            Error: the machine needs a reset first, or a migration is not
                finished.
        """
        state = runstate.runstate_get()
        if state in (runstate.RunState.INTERNAL_ERROR, runstate.RunState.SHUTDOWN):
            raise Error("Resetting the Virtual Machine is required")
        if state is runstate.RunState.SUSPENDED:
            return
        if state is runstate.RunState.FINISH_MIGRATE:
            raise Error("Migration is not finalized yet")
        if state is runstate.RunState.INMIGRATE:
            return
        runstate.vm_start()

    def system_reset(self) -> None:
        """Reset the machine (``qmp_system_reset``).

        In QEMU the main loop handles the reset request before the dispatcher
        sends the reply, so ``RESET`` comes first; so it does here.
        """
        _system_reset()

    def system_powerdown(self) -> None:
        """Press the power button (``qmp_system_powerdown``).

        As in QEMU 7.2, the main loop handles the request before the reply
        goes out: ``POWERDOWN`` comes first.
        """
        runstate.qemu_system_powerdown_request()

    def quit(self) -> None:
        """Ask the main loop to end (``qmp_quit``); ``SHUTDOWN`` precedes the reply.

        The reply is written before the main loop looks at the request, so
        the client gets both before the process exits.
        """
        runstate.qemu_system_shutdown_request(ShutdownCause.HOST_QMP_QUIT)

    # -- migration ------------------------------------------------------------

    def migrate(
        self,
        *,
        uri: str,
        blk: bool | None,
        inc: bool | None,
        detach: bool | None,
        resume: bool | None,
    ) -> None:
        """Send the machine to ``uri`` (``qmp_migrate``, :mod:`system.migration`)."""
        del detach  # QEMU ignores it too
        migration.qmp_migrate(uri, blk=bool(blk), inc=bool(inc), resume=bool(resume))

    def migrate_incoming(self, *, uri: str) -> None:
        """Start an incoming migration after ``-incoming defer``."""
        migration.qmp_migrate_incoming(uri)

    def query_migrate(self) -> JSONValue:
        """The last migration's state (``qmp_query_migrate``)."""
        return migration.qmp_query_migrate()

    def query_machines(self) -> list[MachineInfo]:
        """The boards of the target (``qmp_query_machines``)."""
        target = current_target(self._target)
        rows: list[MachineInfo] = []
        if target is None:
            return rows
        for cls in machine_types(target):
            rows.extend(_machine_infos(cls, target))
        return rows

    # -- QOM --------------------------------------------------------------------

    def qom_list(self, *, path: str) -> list[ObjectPropertyInfo]:
        """The properties of an object, name and type (``qmp_qom_list``).

        Raises:
            Error: no such object (``DeviceNotFound``), or an ambiguous path.
        """
        found = object_resolve_path_full(path)
        if found.obj is None:
            if found.ambiguous:
                raise Error(f"Path '{path}' is ambiguous")
            raise Error(
                f"Device '{path}' not found", error_class=ErrorClass.DEVICE_NOT_FOUND
            )
        return [
            ObjectPropertyInfo(name=p.name, type_=p.type)
            for p in found.obj.properties()
        ]

    def qom_get(self, *, path: str, property_: str) -> JSONValue:
        """Read a property (``qmp_qom_get``)."""
        return qom_get(path, property_)

    def qom_set(self, *, path: str, property_: str, value: JSONValue) -> None:
        """Write a property (``qmp_qom_set``)."""
        qom_set(path, property_, value)

    def qom_list_types(
        self, *, implements: str | None, abstract: bool | None
    ) -> list[ObjectTypeInfo]:
        """The QOM types (``qmp_qom_list_types``)."""
        # Types of modules not loaded yet are listed from the registry.
        module_load_unlisted()
        return [
            ObjectTypeInfo(
                name=name, abstract=True if is_abstract else None, parent=parent
            )
            for name, parent, is_abstract in type_get_names(
                implements, include_abstract=bool(abstract)
            )
        ]

    def device_list_properties(self, *, typename: str) -> list[ObjectPropertyInfo]:
        """The properties a device type declares (``qmp_device_list_properties``).

        Raises:
            Error: unknown type (``DeviceNotFound``), or not a concrete device.
        """
        cls = object_class_by_name(typename)
        if cls is None:
            raise Error(
                f"Device '{typename}' not found",
                error_class=ErrorClass.DEVICE_NOT_FOUND,
            )
        info = type_info(typename)
        if not issubclass(cls, DeviceState) or (info is not None and info.abstract):
            raise Error("Parameter 'typename' expects a non-abstract device type")
        return [
            ObjectPropertyInfo(
                name=p.name,
                type_=p.type,
                description=p.description,
                default_value=p.default_value,
            )
            for p in qdev_device_list_properties(typename)
        ]

    # -- chardevs ---------------------------------------------------------------

    def query_chardev(self) -> list[ChardevInfo]:
        """The chardevs (``qmp_query_chardev``)."""
        return [
            ChardevInfo(
                label=c.label, filename=c.filename, frontend_open=c.frontend_open
            )
            for c in chardev.qemu_chr_list()
        ]

    def ringbuf_write(
        self, *, device: str, data: str, format_: DataFormat | None
    ) -> None:
        """Write into a ringbuf chardev (``qmp_ringbuf_write``)."""
        chardev.ringbuf_write(device, data, _data_format(format_))

    def ringbuf_read(
        self, *, device: str, size: int, format_: DataFormat | None
    ) -> str:
        """Read from a ringbuf chardev (``qmp_ringbuf_read``)."""
        return chardev.ringbuf_read(device, size, _data_format(format_))

    # -- HMP and tracing ----------------------------------------------------------

    def human_monitor_command(self, *, command_line: str, cpu_index: int | None) -> str:
        """Run an HMP command line (``qmp_human_monitor_command``).

        ``cpu-index`` selects the monitor's CPU for the command (``info
        registers``), as QEMU's ``monitor_set_cpu``.

        Raises:
            Error: ``cpu-index`` names no CPU.
        """
        if cpu_index is None:
            return handle_hmp_command(self, command_line)
        if not any(cpu.cpu_index == cpu_index for cpu in cpu_foreach()):
            raise Error("Parameter 'cpu-index' expects a CPU number")
        return handle_hmp_command(self, command_line, cpu_index)

    def trace_event_get_state(
        self, *, name: str, vcpu: int | None
    ) -> list[TraceEventInfo]:
        """The state of matching trace events (``qmp_trace_event_get_state``).

        QEMU builds the list by prepending, so the last event comes first.
        """
        _check_vcpu(vcpu)
        return [
            TraceEventInfo(
                name=ev["name"], state=TraceEventState(ev["state"]), vcpu=False
            )
            for ev in reversed(trace.qmp_trace_event_get_state(name))
        ]

    def trace_event_set_state(
        self,
        *,
        name: str,
        enable: bool,
        ignore_unavailable: bool | None,
        vcpu: int | None,
    ) -> None:
        """Enable or disable matching trace events (``qmp_trace_event_set_state``)."""
        _check_vcpu(vcpu)
        trace.qmp_trace_event_set_state(name, enable, bool(ignore_unavailable))
