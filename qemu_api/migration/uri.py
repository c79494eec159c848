"""Migration transports and the state of a migration (QEMU's ``migration.c``).

This module mirrors the URI handling of QEMU's ``migration/migration.c``
(``qmp_migrate``, ``qemu_start_incoming_migration``) with the transports of
``migration/{file,socket,exec}.c``, and the ``MigrationState`` that
``query-migrate`` reports:

=================  =============================  ================================
URI                outgoing (:func:`migrate`)     incoming (:func:`migrate_incoming`)
=================  =============================  ================================
``file:PATH``      writes the file                reads the file
``unix:PATH``      connects to the socket         listens, accepts one client
``tcp:HOST:PORT``  connects                       listens, accepts one client
``exec:COMMAND``   pipes into ``sh -c COMMAND``   reads ``sh -c COMMAND``'s output
=================  =============================  ================================

An incoming URI may end in ``,skip-unknown=on``: sections of devices and RAM
blocks the machine lacks are then skipped with a warning instead of failing
the load.

An outgoing migration writes the whole stream at once, with the machine
stopped; the caller then leaves the source paused (QEMU's ``postmigrate``).
An incoming migration listens (or opens its file or command) when it
starts; it completes when the whole stream has arrived and loaded, either
blocking (:meth:`IncomingMigration.wait`) or driven by the main loop through
file-descriptor handlers.

>>> parse_migration_uri("unix:/tmp/mig.sock,skip-unknown=on")
MigrationURI(scheme='unix', address='/tmp/mig.sock', skip_unknown=True)
>>> parse_migration_uri("tcp:[::1]:4444").host_port()
('::1', 4444)
>>> parse_migration_uri("rdma:host:1")
Traceback (most recent call last):
  ...
qemu_api.error.Error: Parameter 'uri' expects a valid migration protocol...
"""

from __future__ import annotations

import contextlib
import enum
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, final

from qemu_api.error import Error
from qemu_api.migration.qemu_file import QEMUFileWriter
from qemu_api.migration.ram import TARGET_PAGE_SIZE
from qemu_api.migration.savevm import (
    LoadResult,
    MachineLike,
    SaveStats,
    qemu_loadvm_check_start,
    qemu_loadvm_max_size,
    qemu_loadvm_state,
    qemu_savevm_state,
)
from qemu_api.qom import JSONValue, override

if TYPE_CHECKING:
    # Imported where an exec: URI starts its command: most runs have none.
    import subprocess

__all__ = [
    "FdWatch",
    "IncomingMigration",
    "MigrationState",
    "MigrationStatus",
    "MigrationURI",
    "migrate",
    "migrate_get_current",
    "migrate_incoming",
    "migration_incoming_get_current",
    "parse_migration_uri",
    "query_migrate",
]

FdWatch = Callable[[int, Callable[[], None] | None], None]
"""Registers a read handler for a descriptor (None removes it), e.g.
``lambda fd, cb: loop.set_fd_handler(fd, cb)``."""

_SCHEMES: Final = ("file", "unix", "tcp", "exec")
_CHUNK: Final = 1 << 20


@final
class MigrationStatus(enum.Enum):
    """QEMU's ``MigrationStatus`` values that pyqemu reaches."""

    NONE = "none"
    SETUP = "setup"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"


@final
class MigrationURI:
    """A parsed migration URI.

    Attributes:
        scheme: ``file``, ``unix``, ``tcp`` or ``exec``.
        address: the path, ``HOST:PORT`` or command.
        skip_unknown: the ``skip-unknown=on`` option.
    """

    __slots__ = ("address", "scheme", "skip_unknown")

    def __init__(self, scheme: str, address: str, skip_unknown: bool) -> None:
        self.scheme = scheme
        self.address = address
        self.skip_unknown = skip_unknown

    def host_port(self) -> tuple[str, int]:
        """Split a ``tcp:`` address into host and port (IPv6 in brackets).

        Raises:
            Error: the address has no valid port.
        """
        host, sep, port = self.address.rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
            raise Error(
                f"tcp:{self.address}: expected tcp:HOST:PORT with a port number "
                "from 0 to 65535"
            )
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return host or "localhost", int(port)

    @override
    def __repr__(self) -> str:
        return (
            f"MigrationURI(scheme={self.scheme!r}, address={self.address!r}, "
            f"skip_unknown={self.skip_unknown!r})"
        )


def parse_migration_uri(uri: str) -> MigrationURI:
    """Split a migration URI into its transport, address and options.

    Raises:
        Error: an unknown transport, an empty address, or an unknown option
            (QEMU's message for an unknown transport).
    """
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme not in _SCHEMES:
        raise Error(
            "Parameter 'uri' expects a valid migration protocol: 'file:PATH', "
            f"'unix:PATH', 'tcp:HOST:PORT' or 'exec:COMMAND', not '{uri}'"
        )
    skip = False
    address = rest
    head, comma, tail = rest.rpartition(",")
    if comma and tail.startswith("skip-unknown="):
        value = tail.partition("=")[2]
        if value not in ("on", "off", "true", "false", "yes", "no"):
            raise Error(f"{uri}: skip-unknown must be 'on' or 'off', not '{value}'")
        skip = value in ("on", "true", "yes")
        address = head
    elif scheme != "exec" and "," in rest:
        option = rest.partition(",")[2]
        raise Error(
            f"{uri}: unknown option '{option}'; the only option is skip-unknown=on"
        )
    if not address:
        raise Error(f"{uri}: the {scheme}: URI needs an address after the colon")
    return MigrationURI(scheme, address, skip)


# -- the outgoing side ---------------------------------------------------------------


@final
class MigrationState:
    """One side's migration state, as ``query-migrate`` shows it.

    Attributes:
        status: where the migration is.
        error_desc: why it failed.
        stats: what an outgoing migration wrote.
        result: what an incoming migration loaded.
        total_time_ms: from start to completion.
        setup_time_ms: opening the transport.
        downtime_ms: the time the machine was stopped for the migration.
    """

    __slots__ = (
        "downtime_ms",
        "error_desc",
        "result",
        "setup_time_ms",
        "stats",
        "status",
        "total_time_ms",
    )

    def __init__(self) -> None:
        self.status = MigrationStatus.NONE
        self.error_desc: str | None = None
        self.stats: SaveStats | None = None
        self.result: LoadResult | None = None
        self.total_time_ms = 0
        self.setup_time_ms = 0
        self.downtime_ms = 0

    def reset(self) -> None:
        """Forget the previous migration (status ``none``)."""
        self.status = MigrationStatus.NONE
        self.error_desc = None
        self.stats = None
        self.result = None
        self.total_time_ms = 0
        self.setup_time_ms = 0
        self.downtime_ms = 0

    def fail(self, err: Error) -> None:
        """Record a failure (status ``failed`` with the error's message)."""
        self.status = MigrationStatus.FAILED
        self.error_desc = err.msg

    def query(self) -> dict[str, JSONValue]:
        """Return the ``query-migrate`` object (QEMU's ``MigrationInfo``).

        >>> MigrationState().query()
        {}
        """
        if self.status is MigrationStatus.NONE:
            return {}
        info: dict[str, JSONValue] = {"status": self.status.value}
        if self.status is MigrationStatus.FAILED and self.error_desc is not None:
            info["error-desc"] = self.error_desc
        stats = self.stats
        if self.status is MigrationStatus.COMPLETED and stats is not None:
            ram = stats.ram
            seconds = max(self.total_time_ms, 1) / 1000
            info["setup-time"] = self.setup_time_ms
            info["downtime"] = self.downtime_ms
            info["total-time"] = self.total_time_ms
            info["ram"] = {
                "transferred": ram.transferred,
                "remaining": 0,
                "total": ram.total,
                "duplicate": ram.duplicate,
                "skipped": 0,
                "normal": ram.normal,
                "normal-bytes": ram.normal_bytes,
                "dirty-sync-count": 1,
                "page-size": TARGET_PAGE_SIZE,
                "mbps": round(stats.total_bytes * 8 / 1e6 / seconds, 4),
                "pages-per-second": 0,
                "precopy-bytes": ram.transferred,
                "downtime-bytes": stats.total_bytes,
                "postcopy-bytes": 0,
            }
        return info


_outgoing = MigrationState()
_incoming_state = MigrationState()


def migrate_get_current() -> MigrationState:
    """Return the state of the last outgoing migration (``migrate_get_current``)."""
    return _outgoing


def migration_incoming_get_current() -> MigrationState:
    """Return the state of the incoming migration.

    QEMU's ``migration_incoming_get_current``.
    """
    return _incoming_state


def query_migrate() -> dict[str, JSONValue]:
    """Return what QMP ``query-migrate`` answers.

    The outgoing migration's state if there was one, else the incoming
    one's (QEMU fills both in; only one is ever active in a process).
    """
    if _outgoing.status is not MigrationStatus.NONE:
        return _outgoing.query()
    return _incoming_state.query()


def _open_sink(
    target: MigrationURI,
) -> tuple[Callable[[bytes], object], Callable[[], None]]:
    """Open the outgoing transport; return its write and close functions."""
    scheme = target.scheme
    if scheme == "file":
        fd = os.open(target.address, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)

        def write_file(data: bytes) -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]

        return write_file, lambda: os.close(fd)
    if scheme == "exec":
        import subprocess

        proc = subprocess.Popen(  # the command is the user's, as in QEMU
            ["/bin/sh", "-c", target.address], stdin=subprocess.PIPE
        )
        stdin = proc.stdin
        assert stdin is not None

        def close_exec() -> None:
            stdin.close()
            code = proc.wait()
            if code != 0:
                raise Error(
                    f"exec:{target.address}: the command exited with status {code}"
                )

        return stdin.write, close_exec
    if scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(target.address)
        except OSError:
            sock.close()
            raise
    else:
        host, port = target.host_port()
        sock = socket.create_connection((host, port))

    def close_socket() -> None:
        try:
            sock.shutdown(socket.SHUT_WR)
        finally:
            sock.close()

    return sock.sendall, close_socket


def migrate(
    uri: str,
    *,
    machine: MachineLike | None = None,
    runstate: str = "running",
) -> MigrationState:
    """Send the current machine's whole state to ``uri`` (QMP ``migrate``).

    The call returns when the stream is written (the destination has read
    it, for sockets and pipes).  Call it with the machine stopped; on success
    leave the source paused in ``postmigrate``, as QEMU does.

    Args:
        uri: ``file:PATH``, ``unix:PATH``, ``tcp:HOST:PORT`` or
            ``exec:COMMAND``.
        machine: the board; ``/machine`` by default.
        runstate: the run state the destination enters after loading:
            ``"running"`` if the source was running before it was stopped
            for the migration, else its run state (``"paused"``,
            ``"prelaunch"``).

    Returns:
        :func:`migrate_get_current`, with status ``completed``.

    Raises:
        Error: a bad URI, a transport that cannot be opened, or a device
            that cannot be saved; the state's status is then ``failed``.
    """
    state = _outgoing
    state.reset()
    start = time.monotonic()
    state.status = MigrationStatus.SETUP
    try:
        target = parse_migration_uri(uri)
        try:
            write, close = _open_sink(target)
        except OSError as exc:
            raise Error.from_os_error(f"Failed to connect to '{uri}'", exc) from exc
        setup_done = time.monotonic()
        state.setup_time_ms = int((setup_done - start) * 1000)
        state.status = MigrationStatus.ACTIVE
        f = QEMUFileWriter(write)
        try:
            state.stats = qemu_savevm_state(f, machine, runstate=runstate)
        finally:
            try:
                close()
            except OSError as exc:
                raise Error.from_os_error(f"migration to '{uri}'", exc) from exc
    except Error as err:
        state.fail(err)
        state.total_time_ms = int((time.monotonic() - start) * 1000)
        raise
    end = time.monotonic()
    state.total_time_ms = int((end - start) * 1000)
    state.downtime_ms = int((end - setup_done) * 1000)
    state.status = MigrationStatus.COMPLETED
    return state


# -- the incoming side ---------------------------------------------------------------


def _listen_unix(path: str) -> socket.socket:
    """Listen on a Unix socket readable and writable by its owner only.

    QEMU's ``unix_listen_saddr``: any file at ``path`` is removed first.  The
    socket is made mode 0600 before ``listen()``, so whatever the umask,
    nobody else could ever connect.
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise Error.from_os_error(f"Failed to unlink socket {path}", exc) from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.bind(path)
        except OSError as exc:
            raise Error.from_os_error(f"Failed to bind socket to {path}", exc) from None
        try:
            os.chmod(path, 0o600)
            sock.listen(1)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise Error.from_os_error(
                f"Failed to listen on socket {path}", exc
            ) from None
    except BaseException:
        sock.close()
        raise
    return sock


def _listen_tcp(target: MigrationURI) -> socket.socket:
    """Listen on a TCP address (QEMU's ``inet_listen_saddr``)."""
    host, port = target.host_port()
    try:
        infos = socket.getaddrinfo(
            host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise Error(
            f"address resolution failed for {host}:{port}: {exc.strerror}"
        ) from None
    last: OSError | None = None
    # IPv4 first, as Python's create_server(): "localhost" listens where a
    # source connecting to 127.0.0.1 finds it.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    for family, kind, proto, _, sockaddr in infos:
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            last = exc
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(1)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock
    if last is None:
        raise Error(f"address resolution failed for {host}:{port}: no address")
    raise Error.from_os_error("Failed to bind socket", last)


@final
class IncomingMigration:
    """An incoming migration: a transport waiting for a stream, then the load.

    Made by :func:`migrate_incoming`.  The stream is collected in memory
    until the sender closes its side, then loaded all or nothing.  It is
    checked as it arrives: a stream whose start is wrong (bad magic, another
    machine type) is refused after a few bytes, and one longer than the
    machine's state could be (:func:`~qemu_api.migration.savevm.
    qemu_loadvm_max_size`) before it fills the memory.

    Attributes:
        uri: the parsed URI.
        state: the incoming :class:`MigrationState`.
        result: the load's result once completed.
    """

    __slots__ = (
        "_buf",
        "_conn",
        "_done",
        "_fd",
        "_file",
        "_limit",
        "_listener",
        "_machine",
        "_on_done",
        "_proc",
        "_sock_id",
        "_start_ok",
        "_watch",
        "result",
        "state",
        "uri",
    )

    def __init__(
        self,
        uri: MigrationURI,
        machine: MachineLike | None,
        on_done: Callable[[IncomingMigration], None] | None,
    ) -> None:
        self.uri = uri
        self.state = _incoming_state
        self.result: LoadResult | None = None
        self._machine = machine
        self._on_done = on_done
        self._buf = bytearray()
        self._listener: socket.socket | None = None
        self._sock_id: tuple[int, int] | None = None
        self._conn: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._file = -1
        self._fd = -1
        self._done = False
        self._start_ok = False
        self._limit = qemu_loadvm_max_size(machine)
        self._watch: FdWatch | None = None

    def _open(self) -> None:
        """Open the transport (QEMU's ``qemu_start_incoming_migration``).

        Raises:
            Error: it cannot be opened, in QEMU's words.
        """
        scheme = self.uri.scheme
        address = self.uri.address
        if scheme == "file":
            try:
                self._file = os.open(address, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise Error.from_os_error(f"Unable to open {address}", exc) from None
            self._fd = self._file
        elif scheme == "exec":
            import subprocess

            try:
                self._proc = subprocess.Popen(
                    ["/bin/sh", "-c", address], stdout=subprocess.PIPE
                )
            except OSError as exc:
                raise Error.from_os_error(f"Failed to start '{address}'", exc) from None
            assert self._proc.stdout is not None
            self._fd = self._proc.stdout.fileno()
        elif scheme == "unix":
            self._listener = _listen_unix(address)
            st = os.stat(address)
            self._sock_id = (st.st_dev, st.st_ino)
            self._fd = self._listener.fileno()
        else:
            self._listener = _listen_tcp(self.uri)
            self._fd = self._listener.fileno()

    def listen_address(self) -> str | None:
        """Return ``HOST:PORT`` (or the path) the incoming socket listens on."""
        if self._listener is None:
            return None
        name = self._listener.getsockname()
        if isinstance(name, tuple):
            return f"{name[0]}:{name[1]}"
        return str(name)

    def fileno(self) -> int:
        """Return the descriptor to watch for readability, -1 when none is left."""
        return self._fd

    def _set_fd(self, fd: int) -> None:
        if self._watch is not None and self._fd >= 0 and self._file < 0:
            self._watch(self._fd, None)
        self._fd = fd
        if self._watch is not None and fd >= 0:
            self._watch(fd, self._on_readable)

    def _take(self, chunk: bytes) -> None:
        """Collect ``chunk``, checking the stream as it grows.

        Raises:
            Error: the start of the stream is wrong, or it is too long.
        """
        self._buf += chunk
        if not self._start_ok:
            # A copy of the start: the buffer must stay resizable.
            start = bytes(self._buf[:4096])
            self._start_ok = qemu_loadvm_check_start(start, self._machine)
        if len(self._buf) > self._limit:
            raise Error(
                f"migration: the stream is longer than {self._limit} bytes, more "
                "than this machine's state can take; it is not a stream for this "
                "machine"
            )

    def _step(self, blocking: bool) -> bool:
        """Accept or read once; return True when the whole stream has arrived.

        Raises:
            OSError: the transport failed.
            Error: the stream is wrong (see :meth:`_take`).
        """
        if self._done:
            return True
        if self._listener is not None and self._conn is None:
            self._listener.setblocking(blocking)
            try:
                conn, _ = self._listener.accept()
            except BlockingIOError:
                return False
            conn.setblocking(blocking)
            self._conn = conn
            self._set_fd(conn.fileno())
            return False
        try:
            if self._conn is not None:
                chunk = self._conn.recv(_CHUNK)
            else:
                if self._file < 0:
                    os.set_blocking(self._fd, blocking)
                chunk = os.read(self._fd, _CHUNK)
        except BlockingIOError:
            return False
        if chunk:
            self._take(chunk)
            return False
        self._done = True
        return True

    def _on_readable(self) -> None:
        try:
            done = self._step(blocking=False)
        except OSError as exc:
            self._finish_error(Error.from_os_error("migration: read failed", exc))
            return
        except Error as err:
            self._finish_error(err)
            return
        if done:
            self._set_fd(-1)
            self._close_transport()
            with contextlib.suppress(Error):  # recorded in the state
                self._load()

    def _read_file(self) -> None:
        """Read a ``file:`` stream whole (files are always readable).

        Raises:
            Error: the stream was refused or could not be read; the state is
                ``failed`` and ``on_done`` has run.
        """
        try:
            while not self._step(blocking=True):
                pass
        except OSError as exc:
            err = Error.from_os_error("migration: read failed", exc)
            self._finish_error(err)
            raise err from exc
        except Error as err:
            self._finish_error(err)
            raise
        self._close_transport()

    def _close_transport(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            self._unlink_socket()
        if self._proc is not None:
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            if self._done:
                self._proc.wait()
            else:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._file >= 0:
            os.close(self._file)
            self._file = -1
        self._fd = -1

    def _unlink_socket(self) -> None:
        """Remove our ``unix:`` socket file, if it is still ours."""
        ident, self._sock_id = self._sock_id, None
        if ident is None:
            return
        try:
            st = os.stat(self.uri.address)
            if (st.st_dev, st.st_ino) == ident:
                os.unlink(self.uri.address)
        except OSError:
            pass

    def _finish_error(self, err: Error) -> None:
        self._set_fd(-1)
        self._close_transport()
        self._buf = bytearray()
        self.state.fail(err)
        if self._on_done is not None:
            self._on_done(self)

    def _load(self) -> LoadResult:
        state = self.state
        start = time.monotonic()
        try:
            self.result = qemu_loadvm_state(
                self._buf, self._machine, skip_unknown=self.uri.skip_unknown
            )
        except Error as err:
            state.fail(err)
            if self._on_done is not None:
                self._on_done(self)
            raise
        finally:
            self._buf = bytearray()
        state.result = self.result
        state.total_time_ms = int((time.monotonic() - start) * 1000)
        state.status = MigrationStatus.COMPLETED
        if self._on_done is not None:
            self._on_done(self)
        return self.result

    def wait(self) -> LoadResult:
        """Block until the whole stream has arrived, then load it.

        The calling thread waits on the transport while it holds the BQL
        (the load needs it), so nothing else runs meanwhile; a running
        emulator passes ``watch`` to :func:`migrate_incoming` instead.

        Returns:
            What was loaded.

        Raises:
            Error: the transport failed or the stream was rejected (the
                machine is unchanged and the state's status is ``failed``).
        """
        if not self._done:
            self._read_file()
        return self._load()

    def cancel(self) -> None:
        """Stop listening or reading; the machine is left as it is.

        A ``unix:`` socket file is removed.
        """
        self._set_fd(-1)
        self._close_transport()
        self._buf = bytearray()
        if self.state.status in (MigrationStatus.SETUP, MigrationStatus.ACTIVE):
            self.state.status = MigrationStatus.NONE

    @override
    def __repr__(self) -> str:
        return f"IncomingMigration({self.uri.scheme}:{self.uri.address})"


def migrate_incoming(
    uri: str,
    *,
    skip_unknown: bool | None = None,
    machine: MachineLike | None = None,
    watch: FdWatch | None = None,
    on_done: Callable[[IncomingMigration], None] | None = None,
) -> IncomingMigration:
    """Start an incoming migration (``-incoming URI``, QMP ``migrate-incoming``).

    The transport opens now (a ``unix:`` or ``tcp:`` socket listens before
    this returns, so a source may connect at once).  Without ``watch``,
    call :meth:`IncomingMigration.wait` to receive and load the stream; with
    ``watch``, the main loop drives it and ``on_done`` runs when it has
    completed or failed (check ``incoming.state.status``).  A ``file:`` URI
    is read and loaded at once.

    A transport that cannot be opened is an error and leaves no trace: the
    state's status is ``none`` again, as in QEMU, so the caller may try
    another URI.

    Args:
        uri: ``file:PATH``, ``unix:PATH``, ``tcp:HOST:PORT`` or
            ``exec:COMMAND``, optionally ending in ``,skip-unknown=on``.
        skip_unknown: overrides the URI's ``skip-unknown`` option.
        machine: the board; ``/machine`` by default.
        watch: registers read handlers with the main loop.
        on_done: called after the load (successful or not) when ``watch``
            is used.

    Returns:
        The incoming migration.

    Raises:
        Error: a bad URI or a transport that cannot be opened (the status
            is ``none``); or, for a ``file:`` URI with ``watch``, a stream
            that was refused (the status is ``failed`` and ``on_done`` has
            run).
    """
    target = parse_migration_uri(uri)
    if skip_unknown is not None:
        target.skip_unknown = skip_unknown
    _incoming_state.reset()
    inc = IncomingMigration(target, machine, on_done)
    _incoming_state.status = MigrationStatus.SETUP
    try:
        inc._open()
    except Error:
        _incoming_state.reset()
        raise
    _incoming_state.status = MigrationStatus.ACTIVE
    if watch is not None:
        inc._watch = watch
        if inc._file >= 0:
            # Files are always readable (and cannot be watched): read it now
            # and load it.
            inc._read_file()
            inc._load()
        else:
            watch(inc._fd, inc._on_readable)
    return inc
