"""The machine's run state and QMP events (QEMU's ``system/runstate.c``).

The run state is one of QEMU's ``RunState`` values. Changing it through
:func:`vm_start`/:func:`vm_stop` emits QEMU's ``RESUME``/``STOP`` events, and
:func:`qemu_system_reset` and :func:`qemu_system_shutdown_request` emit ``RESET`` and
``SHUTDOWN``; listeners (the QMP monitors) receive every event.

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

import enum
import sys
import time
import traceback
from collections.abc import Callable

from qemu_api.error import error_report
from qemu_api.qom import JSONValue

__all__ = [
    "EventListener",
    "RunState",
    "ShutdownCause",
    "event_timestamp",
    "main_loop_should_exit",
    "qapi_event_add_listener",
    "qapi_event_remove_all_listeners",
    "qapi_event_remove_listener",
    "qapi_event_send",
    "qemu_add_vm_change_state_handler",
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
    "shutdown_requested",
    "vm_start",
    "vm_stop",
]


class RunState(enum.Enum):
    """QEMU's ``RunState`` (``qapi/run-state.json``)."""

    DEBUG = "debug"
    INMIGRATE = "inmigrate"
    INTERNAL_ERROR = "internal-error"
    IO_ERROR = "io-error"
    PAUSED = "paused"
    POSTMIGRATE = "postmigrate"
    PRELAUNCH = "prelaunch"
    FINISH_MIGRATE = "finish-migrate"
    RESTORE_VM = "restore-vm"
    RUNNING = "running"
    SAVE_VM = "save-vm"
    SHUTDOWN = "shutdown"
    SUSPENDED = "suspended"
    WATCHDOG = "watchdog"
    GUEST_PANICKED = "guest-panicked"
    COLO = "colo"


class ShutdownCause(enum.Enum):
    """QEMU's ``ShutdownCause`` (the ``reason`` of ``SHUTDOWN`` and ``RESET``)."""

    NONE = "none"
    HOST_ERROR = "host-error"
    HOST_QMP_QUIT = "host-qmp-quit"
    HOST_QMP_SYSTEM_RESET = "host-qmp-system-reset"
    HOST_SIGNAL = "host-signal"
    HOST_UI = "host-ui"
    GUEST_SHUTDOWN = "guest-shutdown"
    GUEST_RESET = "guest-reset"
    GUEST_PANIC = "guest-panic"
    SUBSYSTEM_RESET = "subsystem-reset"
    SNAPSHOT_LOAD = "snapshot-load"


# States recorded even when the machine was not running.
_STICKY_STATES = frozenset(
    {RunState.INTERNAL_ERROR, RunState.SHUTDOWN, RunState.POSTMIGRATE}
)

EventListener = Callable[[str, dict[str, JSONValue]], None]
"""A receiver of QMP events: ``(event name, data)``."""

_state = RunState.PRELAUNCH
_listeners: list[EventListener] = []
_vm_change_handlers: list[Callable[[bool, RunState], None]] = []
_reset_handler: Callable[[ShutdownCause], None] | None = None
_shutdown: ShutdownCause | None = None
_reset_request: ShutdownCause | None = None
_notify: Callable[[], None] | None = None


def qapi_event_add_listener(listener: EventListener) -> None:
    """Deliver every later event to *listener*."""
    _listeners.append(listener)


def qapi_event_remove_listener(listener: EventListener) -> None:
    """Stop delivering events to *listener* (no error if it is not registered)."""
    if listener in _listeners:
        _listeners.remove(listener)


def qapi_event_remove_all_listeners() -> None:
    """Forget every listener (for a new machine or a test)."""
    _listeners.clear()


def qapi_event_send(name: str, data: dict[str, JSONValue] | None = None) -> None:
    """Emit the QMP event *name* with *data* to every listener."""
    payload = data if data is not None else {}
    for listener in list(_listeners):
        listener(name, payload)


def runstate_init(state: RunState = RunState.PRELAUNCH) -> None:
    """Start a new machine in *state* with no pending shutdown."""
    global _state, _shutdown, _reset_request
    _state = state
    _shutdown = None
    _reset_request = None
    _vm_change_handlers.clear()


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
    qapi_event_send("RESUME")


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
        qapi_event_send("STOP")


def qemu_system_reset_handler(handler: Callable[[ShutdownCause], None] | None) -> None:
    """Install the machine's reset function (the board's cold reset)."""
    global _reset_handler
    _reset_handler = handler


def qemu_system_reset(reason: ShutdownCause) -> None:
    """Reset the machine and emit ``RESET`` (QEMU's ``qemu_system_reset``)."""
    if _reset_handler is not None:
        _reset_handler(reason)
    if reason is not ShutdownCause.NONE:
        qapi_event_send(
            "RESET",
            {"guest": reason.value.startswith("guest"), "reason": reason.value},
        )


def qemu_system_shutdown_request(reason: ShutdownCause) -> None:
    """Ask the main loop to end the process; emits ``SHUTDOWN``.

    Any thread holding the BQL may call it (a vCPU powering the machine off):
    the main loop is woken to end the run.
    """
    global _shutdown
    _shutdown = reason
    runstate_set(RunState.SHUTDOWN)
    qapi_event_send(
        "SHUTDOWN", {"guest": reason.value.startswith("guest"), "reason": reason.value}
    )
    if _notify is not None:
        _notify()


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
