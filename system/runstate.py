"""The machine's run state and its QMP events (QEMU's ``system/runstate.c``).

The run state is one of QEMU's ``RunState`` values. Changing it through
:func:`vm_start`/:func:`vm_stop` emits QEMU's ``RESUME``/``STOP`` events;
:func:`qemu_system_reset`, :func:`qemu_system_shutdown_request` and
:func:`qemu_system_powerdown_request` emit ``RESET``, ``SHUTDOWN`` and
``POWERDOWN``. They go out through the typed senders generated from the schema
(:mod:`qapi.qapi_events`) to the listeners of :mod:`qemu_api.qmp_event` (the QMP
monitors). ``RunState`` and ``ShutdownCause`` are the schema's enums.

>>> from qemu_api.qmp_event import (
...     qapi_event_add_listener,
...     qapi_event_remove_all_listeners,
... )
>>> runstate_init(RunState.PRELAUNCH)
>>> seen = []
>>> qapi_event_add_listener(lambda name, data: seen.append(name))
>>> vm_start()
>>> runstate_get(), runstate_is_running(), seen
(<RunState.RUNNING: 'running'>, True, ['RESUME'])
>>> vm_stop(RunState.PAUSED)
>>> runstate_get().value, seen[-1]
('paused', 'STOP')
>>> qapi_event_remove_all_listeners()
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from qapi.qapi_events import (
    qapi_event_send_powerdown,
    qapi_event_send_reset,
    qapi_event_send_resume,
    qapi_event_send_shutdown,
    qapi_event_send_stop,
)
from qapi.qapi_types import RunState, ShutdownCause
from qemu_api._reset import runtime_reset_register
from qemu_api.error import error_report
from qemu_api.qom import JSONValue

__all__ = [
    "RunState",
    "ShutdownCause",
    "event_timestamp",
    "main_loop_should_exit",
    "qemu_add_vm_change_state_handler",
    "qemu_get_name",
    "qemu_register_powerdown_notifier",
    "qemu_set_name",
    "qemu_system_powerdown_request",
    "qemu_system_reset",
    "qemu_system_reset_handler",
    "qemu_system_reset_request",
    "qemu_system_shutdown_request",
    "report_internal_error",
    "runstate_check",
    "runstate_get",
    "runstate_init",
    "runstate_is_running",
    "runstate_set",
    "set_main_loop_notify",
    "shutdown_caused_by_guest",
    "shutdown_requested",
    "vm_start",
    "vm_stop",
]

# States recorded even when the machine was not running.
_STICKY_STATES = frozenset(
    {RunState.INTERNAL_ERROR, RunState.SHUTDOWN, RunState.POSTMIGRATE}
)
# QEMU's enum order: the causes from guest-shutdown on are the guest's.
_CAUSES = list(ShutdownCause)
_GUEST_CAUSES = frozenset(_CAUSES[_CAUSES.index(ShutdownCause.GUEST_SHUTDOWN) :])
# Resets that send no RESET event (qemu_system_reset).
_SILENT_RESETS = frozenset(
    {ShutdownCause.NONE, ShutdownCause.SUBSYSTEM_RESET, ShutdownCause.SNAPSHOT_LOAD}
)

_state = RunState.PRELAUNCH
_vm_change_handlers: list[Callable[[bool, RunState], None]] = []
_powerdown_notifiers: list[Callable[[], None]] = []
_reset_handler: Callable[[ShutdownCause], None] | None = None
_shutdown: ShutdownCause | None = None
_reset_request: ShutdownCause | None = None
_notify: Callable[[], None] | None = None


def shutdown_caused_by_guest(cause: ShutdownCause) -> bool:
    """Return whether *cause* is the guest's (QEMU's ``shutdown_caused_by_guest``).

    As in QEMU, every cause from ``guest-shutdown`` on in the enum's order
    counts, ``subsystem-reset`` and ``snapshot-load`` included.

    >>> shutdown_caused_by_guest(ShutdownCause.GUEST_RESET)
    True
    >>> shutdown_caused_by_guest(ShutdownCause.HOST_QMP_QUIT)
    False
    """
    return cause in _GUEST_CAUSES


def runstate_init(state: RunState = RunState.PRELAUNCH) -> None:
    """Start a new machine in *state*: no pending shutdown, no handlers."""
    global _state, _shutdown, _reset_request
    _state = state
    _shutdown = None
    _reset_request = None
    _vm_change_handlers.clear()
    _powerdown_notifiers.clear()


_name: list[str | None] = [None]


def qemu_set_name(name: str | None) -> None:
    """Set the guest's name (``-name``, QEMU's ``qemu_name``)."""
    _name[0] = name


def qemu_get_name() -> str | None:
    """The guest's name, or None (QMP ``query-name``, ``info name``)."""
    return _name[0]


def _runtime_reset() -> None:
    """Back to a process without a machine (``qemu_api.testing``'s reset)."""
    runstate_init(RunState.PRELAUNCH)
    qemu_set_name(None)
    qemu_system_reset_handler(None)


def runstate_get() -> RunState:
    """Return the current run state."""
    return _state


def runstate_check(state: RunState) -> bool:
    """Return whether the machine is in *state*."""
    return _state is state


def runstate_is_running() -> bool:
    """Return whether the machine runs (state ``running``)."""
    return _state is RunState.RUNNING


def runstate_set(state: RunState) -> None:
    """Set the run state without events (QEMU's ``runstate_set``)."""
    global _state
    _state = state


def qemu_add_vm_change_state_handler(handler: Callable[[bool, RunState], None]) -> None:
    """Call *handler(running, state)* on every start and stop."""
    _vm_change_handlers.append(handler)


def vm_start() -> None:
    """Start or resume the machine; emits ``RESUME`` if it was not running."""
    if _state is RunState.RUNNING:
        return
    runstate_set(RunState.RUNNING)
    for handler in list(_vm_change_handlers):
        handler(True, RunState.RUNNING)
    qapi_event_send_resume()


def vm_stop(state: RunState) -> None:
    """Stop the running machine in *state*; emits ``STOP``.

    As QEMU's ``do_vm_stop``, a machine that is not running keeps its state
    (a paused machine stays paused), except that a stop in ``internal-error``,
    ``shutdown`` or ``postmigrate`` is always recorded.
    """
    was_running = _state is RunState.RUNNING
    if not was_running and state not in _STICKY_STATES:
        return
    runstate_set(state)
    if was_running:
        for handler in list(_vm_change_handlers):
            handler(False, state)
        qapi_event_send_stop()


def qemu_system_reset_handler(handler: Callable[[ShutdownCause], None] | None) -> None:
    """Install the machine's reset function (the board's cold reset)."""
    global _reset_handler
    _reset_handler = handler


def qemu_system_reset(reason: ShutdownCause) -> None:
    """Reset the machine and emit ``RESET`` (QEMU's ``qemu_system_reset``).

    As in QEMU, the ``none`` (machine creation), ``subsystem-reset`` and
    ``snapshot-load`` resets send no event.
    """
    if _reset_handler is not None:
        _reset_handler(reason)
    if reason not in _SILENT_RESETS:
        qapi_event_send_reset(guest=shutdown_caused_by_guest(reason), reason=reason)


def qemu_system_shutdown_request(reason: ShutdownCause) -> None:
    """Ask the main loop to end the process; emits ``SHUTDOWN``.

    Any thread holding the BQL may call it (a vCPU powering the machine off):
    the main loop is woken to end the run.
    """
    global _shutdown
    _shutdown = reason
    runstate_set(RunState.SHUTDOWN)
    qapi_event_send_shutdown(guest=shutdown_caused_by_guest(reason), reason=reason)
    if _notify is not None:
        _notify()


def qemu_register_powerdown_notifier(notifier: Callable[[], None]) -> None:
    """Call *notifier* on every power-down request (the board's power button)."""
    _powerdown_notifiers.append(notifier)


def qemu_system_powerdown_request() -> None:
    """Press the power button: emit ``POWERDOWN``, then tell the notifiers.

    QEMU's ``qemu_system_powerdown``: the machine keeps running; the board's
    notifier (an ACPI or GPIO power button) tells the guest, which decides.

    >>> from qemu_api.qmp_event import (
    ...     qapi_event_add_listener,
    ...     qapi_event_remove_all_listeners,
    ... )
    >>> runstate_init()
    >>> seen = []
    >>> qapi_event_add_listener(lambda name, data: seen.append(name))
    >>> qemu_register_powerdown_notifier(lambda: seen.append("button"))
    >>> qemu_system_powerdown_request()
    >>> seen
    ['POWERDOWN', 'button']
    >>> qapi_event_remove_all_listeners()
    """
    qapi_event_send_powerdown()
    for notifier in list(_powerdown_notifiers):
        notifier()


def set_main_loop_notify(notify: Callable[[], None] | None) -> None:
    """Install the function that wakes the main loop (``qemu_notify_event``)."""
    global _notify
    _notify = notify


def qemu_system_reset_request(reason: ShutdownCause) -> None:
    """Ask the main loop to reset the machine (QEMU's ``qemu_system_reset_request``).

    A vCPU (PSCI ``SYSTEM_RESET``) calls it with the BQL held; the main loop
    resets the machine with the vCPUs paused (:func:`main_loop_should_exit`).
    """
    global _reset_request
    _reset_request = reason
    if _notify is not None:
        _notify()


def main_loop_should_exit() -> bool:
    """Serve pending reset requests; return True when the run should end.

    QEMU's ``main_loop_should_exit``, checked after each main-loop iteration.
    """
    global _reset_request
    if _shutdown is not None:
        return True
    reason = _reset_request
    if reason is not None:
        _reset_request = None
        qemu_system_reset(reason)
    return _shutdown is not None


def shutdown_requested() -> ShutdownCause | None:
    """Return the pending shutdown's cause, or None."""
    return _shutdown


def report_internal_error(what: str, exc: BaseException) -> None:
    """A model raised out of a callback: log it and stop in ``internal-error``.

    The log line names what was running (the device and the access), then the
    traceback; the monitor keeps serving, as QEMU's does in that state.
    """
    import traceback  # only on an internal error

    tb = "".join(traceback.format_exception(exc))
    error_report(f"internal error in {what}: {type(exc).__name__}: {exc}")
    sys.stderr.write(tb)
    sys.stderr.flush()
    vm_stop(RunState.INTERNAL_ERROR)


def event_timestamp() -> dict[str, JSONValue]:
    """Return a QMP event timestamp for now (seconds and microseconds)."""
    now = time.time()
    sec = int(now)
    return {"seconds": sec, "microseconds": int((now - sec) * 1_000_000)}


runtime_reset_register(_runtime_reset)
