"""Migration in the running emulator (QEMU's ``migration/migration.c`` glue).

:mod:`qemu_api.migration` writes and reads the stream; this module ties it to the
run state and the main loop: QMP ``migrate`` stops the machine, sends the stream
and leaves the source in ``postmigrate``; ``-incoming URI`` (or ``-incoming
defer`` then QMP ``migrate-incoming``) waits in ``inmigrate``, loads the stream
when it arrives and then runs the machine if the source ran (unless ``-S``). A
failed incoming migration ends the process with status 1, as QEMU's does.
"""

from __future__ import annotations

from collections.abc import Callable

from qemu_api.error import Error, error_report
from qemu_api.migration.uri import (
    IncomingMigration,
    MigrationStatus,
    migrate,
    migrate_incoming,
    migration_incoming_get_current,
    query_migrate,
)
from qemu_api.qom import JSONValue
from system import runstate
from system.main_loop import MainLoop
from system.runstate import RunState, ShutdownCause

__all__ = [
    "exit_status",
    "migration_init",
    "migration_shutdown",
    "qmp_migrate",
    "qmp_migrate_incoming",
    "qmp_query_migrate",
    "start_incoming",
]

_loop: MainLoop | None = None
_autostart = True
_deferred = False
_exit_status = 0
_incoming: IncomingMigration | None = None


def migration_init(loop: MainLoop, *, autostart: bool) -> None:
    """Give migration the main loop; *autostart* is false with ``-S``."""
    global _loop, _autostart, _deferred, _exit_status, _incoming
    _loop = loop
    _autostart = autostart
    _deferred = False
    _exit_status = 0
    _incoming = None


def migration_shutdown() -> None:
    """Stop a pending incoming migration at exit (QEMU's ``migration_shutdown``).

    Its transport closes; a ``unix:`` socket file is removed.
    """
    global _incoming
    inc, _incoming = _incoming, None
    if inc is not None:
        inc.cancel()


def exit_status() -> int:
    """The process exit status migration asks for (1 after a failed incoming)."""
    return _exit_status


def _incoming_done(inc: IncomingMigration) -> None:
    global _exit_status
    if inc.state.status is not MigrationStatus.COMPLETED:
        error_report(f"load of migration failed: {inc.state.error_desc}")
        _exit_status = 1
        runstate.qemu_system_shutdown_request(ShutdownCause.HOST_ERROR)
        return
    result = inc.result
    source_state = result.runstate if result is not None else None
    if source_state == "running" and _autostart:
        runstate.vm_start()
    elif source_state == "running" or source_state is None:
        runstate.runstate_set(RunState.PAUSED)
    else:
        try:
            runstate.runstate_set(RunState(source_state))
        except ValueError:
            runstate.runstate_set(RunState.PAUSED)


def start_incoming(uri: str) -> None:
    """``-incoming URI``: wait in ``inmigrate`` for the stream at *uri*.

    ``defer`` waits for QMP ``migrate-incoming`` instead.

    Raises:
        Error: a bad URI or a transport that cannot be opened.
    """
    global _deferred
    runstate.runstate_set(RunState.INMIGRATE)
    if uri == "defer":
        _deferred = True
        return
    _listen(uri)


def _listen(uri: str) -> None:
    loop = _loop
    if loop is None:
        raise Error("migration: the main loop is not set up (migration_init)")

    def watch(fd: int, callback: Callable[[], None] | None) -> None:
        loop.set_fd_handler(fd, callback, None, "migration")

    global _incoming
    try:
        _incoming = migrate_incoming(uri, watch=watch, on_done=_incoming_done)
    except Error:
        # A transport that cannot be opened is the caller's error (the status
        # is back to none).  A file: stream is read and loaded at once; its
        # failure was reported by _incoming_done, which ends the run.
        if migration_incoming_get_current().status is not MigrationStatus.FAILED:
            raise


def qmp_migrate_incoming(uri: str) -> None:
    """QMP ``migrate-incoming``: start listening after ``-incoming defer``.

    Raises:
        Error: the emulator was not started with ``-incoming defer``, an
            incoming migration already started, or the URI is bad.
    """
    global _deferred
    if not runstate.runstate_check(RunState.INMIGRATE):
        raise Error("'-incoming' was not specified on the command line")
    if not _deferred:
        raise Error(
            "The incoming migration has already been started",
            hint="migrate-incoming needs -incoming defer\n",
        )
    _listen(uri)
    _deferred = False


def qmp_migrate(
    uri: str, *, blk: bool = False, inc: bool = False, resume: bool = False
) -> None:
    """QMP ``migrate``: send the machine to *uri* and stay in ``postmigrate``.

    The machine stops (``STOP`` event) while the stream is written. On success
    it stays paused in ``postmigrate``; on failure it runs again if it ran.

    Raises:
        Error: block migration or resume asked, a migration is already
            running, or the stream could not be written.
    """
    if blk or inc:
        raise Error("pyqemu has no block devices: 'blk' and 'inc' are not supported")
    if resume:
        raise Error("pyqemu migrates stopped machines only: 'resume' is not supported")
    state = runstate.runstate_get()
    if state in (RunState.INMIGRATE, RunState.FINISH_MIGRATE):
        raise Error("There's a migration process in progress")
    was_running = state is RunState.RUNNING
    dest_state = "running" if was_running else state.value
    if was_running:
        runstate.vm_stop(RunState.FINISH_MIGRATE)
    try:
        migrate(uri, runstate=dest_state)
    except Error:
        if was_running:
            runstate.vm_start()
        raise
    runstate.runstate_set(RunState.POSTMIGRATE)


def qmp_query_migrate() -> dict[str, JSONValue]:
    """QMP ``query-migrate``: the outgoing (or incoming) migration's state."""
    return query_migrate()
