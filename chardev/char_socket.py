"""The ``socket`` chardev backend: a stream socket, Unix or TCP.

This module models QEMU's ``chardev/char-socket.c`` and the socket helpers
of ``util/qemu-sockets.c`` it uses:

- ``-chardev socket,id=ID,path=PATH[,server=on][,wait=off]``: a Unix socket;
- ``-chardev socket,id=ID,host=HOST,port=PORT[,server=on][,wait=off]
  [,nodelay=on][,ipv4=on|ipv6=on]``: TCP;
- as a client (``server=off``, the default) it connects at creation, and
  fails if it cannot, unless ``reconnect=SECONDS`` (or ``reconnect-ms``)
  asks it to keep trying in the background and after each disconnection.

A server serves one client at a time, as QEMU's: while a client is
connected, further clients wait in the listen backlog.  ``wait=on`` (the
default of a server) blocks the creation until the first client connects,
after printing ``pyqemu waiting for connection on: disconnected:...`` on
standard error.  A Unix server socket is made readable and writable by its
owner only (mode 0600) and any file at its path is removed first, as
QEMU's ``unix_listen_saddr`` does; the socket file is removed when the
chardev is closed.

The frontend gets :attr:`~qemu_api.chardev.ChrEvent.OPENED` when a
connection is established and :attr:`~qemu_api.chardev.ChrEvent.CLOSED`
when it ends; output while no peer is connected is discarded.  ``filename``
is QEMU's ``query-chardev`` text: ``disconnected:unix:PATH,server=on``,
``unix:PATH,server=on``, ``tcp:127.0.0.1:4444,server=on <-> 127.0.0.1:5555``.

>>> import os, tempfile, socket
>>> from qemu_api.chardev import qemu_chr_delete, qemu_chr_new
>>> from system.main_loop import MainLoop
>>> from chardev.char_fd import set_main_loop
>>> loop = MainLoop()
>>> set_main_loop(loop)
>>> path = os.path.join(tempfile.mkdtemp(), "serial.sock")
>>> opts = {"path": path, "server": "on", "wait": "off"}
>>> chr = qemu_chr_new("serial0", "socket", opts)
>>> chr.filename == f"disconnected:unix:{path},server=on"
True
>>> oct(os.stat(path).st_mode & 0o777)
'0o600'
>>> client = socket.socket(socket.AF_UNIX)
>>> client.connect(path)
>>> loop.wait(1_000_000_000)
>>> chr.filename == f"unix:{path},server=on", chr.be_open
(True, True)
>>> client.close()
>>> qemu_chr_delete("serial0")
>>> os.path.exists(path)
False
>>> set_main_loop(None)
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any, final

from qemu_api._compat import override
from qemu_api.chardev import ChardevOptions, ChrEvent
from qemu_api.error import Error, error_get_progname, error_report
from qemu_api.timer import CLOCK_REALTIME, Timer, qemu_clock_get_ms, timer_new_ms

from .char_fd import FdChardev, _opt_bool, _opt_number, _opt_str

__all__ = ["InetSocketAddress", "SocketAddress", "SocketChardev", "UnixSocketAddress"]

_UNIX_PATH_MAX = 108
"""``sizeof(struct sockaddr_un.sun_path)`` on Linux."""


@final
@dataclass(frozen=True)
class UnixSocketAddress:
    """A Unix socket address (QAPI ``UnixSocketAddress``)."""

    path: str
    """The socket file's path."""


@final
@dataclass(frozen=True)
class InetSocketAddress:
    """A TCP address (QAPI ``InetSocketAddress``); numeric once listening."""

    host: str
    """Host name or numeric address; empty for all addresses."""
    port: str
    """Port number or service name."""


_Sockaddr = str | tuple[Any, ...]

SocketAddress = UnixSocketAddress | InetSocketAddress
"""A socket chardev's address (QAPI ``SocketAddress``)."""


def _numeric(sockaddr: object) -> tuple[str, str]:
    """(host, port) of an AF_INET/AF_INET6 ``getsockname()`` result."""
    if isinstance(sockaddr, tuple) and len(sockaddr) >= 2:
        return str(sockaddr[0]), str(sockaddr[1])
    return "", ""


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@final
class SocketChardev(FdChardev):
    """The ``socket`` backend (QEMU's ``TYPE_CHARDEV_SOCKET``).

    Options, as ``-chardev socket``:

    - ``path``: a Unix socket path; or ``host`` and ``port``: a TCP
      address (``port=0`` lets the host choose; :attr:`addr` tells which);
    - ``server`` (default ``off``): listen instead of connecting;
    - ``wait`` (server only, default ``on``): wait for the first client
      when created;
    - ``nodelay`` (or ``delay=off``): disable Nagle's algorithm (TCP);
    - ``reconnect`` (seconds) or ``reconnect-ms`` (client only): connect in
      the background and retry that often;
    - ``ipv4``/``ipv6``: restrict TCP to one address family.

    Raises:
        Error: the options are inconsistent, in QEMU's words.
    """

    BACKEND = "socket"
    OPTIONS = frozenset(
        {
            "path",
            "host",
            "port",
            "server",
            "wait",
            "nodelay",
            "delay",
            "reconnect",
            "reconnect-ms",
            "ipv4",
            "ipv6",
        }
    )

    def __init__(self, label: str, options: ChardevOptions | None = None) -> None:
        super().__init__(label, options)
        opts = options or {}
        path = _opt_str(opts, "path")
        host = _opt_str(opts, "host")
        port = _opt_str(opts, "port")
        if path and host:
            raise Error(
                "None or one of 'path' or 'host' option required.",
                hint="Give path=PATH for a Unix socket, or host=HOST,port=PORT "
                "for TCP.\n",
            )
        if not path and not host:
            raise Error(
                "chardev: socket: no host given",
                hint="Give path=PATH for a Unix socket, or host=HOST,port=PORT "
                "for TCP.\n",
            )
        if host and not port:
            raise Error(
                "chardev: socket: no port given",
                hint="Give port=PORT with host=HOST (port=0 picks a free port "
                "for a server).\n",
            )
        if "delay" in opts and "nodelay" in opts:
            raise Error("'delay' and 'nodelay' are mutually exclusive")
        self.nodelay = not _opt_bool(opts, "delay", True) or _opt_bool(
            opts, "nodelay", False
        )
        """True if Nagle's algorithm is disabled on TCP connections."""
        self.is_listen = _opt_bool(opts, "server", False)
        """True for a server."""
        has_wait = "wait" in opts or self.is_listen
        wait = _opt_bool(opts, "wait", True)
        has_reconnect = "reconnect" in opts
        has_reconnect_ms = "reconnect-ms" in opts
        reconnect = _opt_number(opts, "reconnect", 0)
        reconnect_ms = _opt_number(opts, "reconnect-ms", 0)
        if self.is_listen:
            for name, has in (
                ("reconnect", has_reconnect),
                ("reconnect-ms", has_reconnect_ms),
            ):
                if has:
                    raise Error(
                        f"'{name}' option is incompatible with socket in server "
                        "listen mode",
                        hint="A server waits for clients; reconnect is for "
                        "server=off.\n",
                    )
        elif has_wait:
            raise Error(
                "'wait' option is incompatible with socket in client connect mode",
                hint="wait=on|off is for server=on.\n",
            )
        if has_reconnect and has_reconnect_ms:
            raise Error("'reconnect' and 'reconnect-ms' are mutually exclusive")
        self.is_waitconnect = has_wait and wait
        """True if creation waits for the first client."""
        self.reconnect_ms = reconnect * 1000 if has_reconnect else reconnect_ms
        """The client's retry interval in milliseconds; 0 for none."""
        self._family = socket.AF_UNSPEC
        if path:
            if len(os.fsencode(path)) > _UNIX_PATH_MAX:
                raise Error(
                    f"UNIX socket path '{path}' is too long",
                    hint=f"Path must be less than {_UNIX_PATH_MAX} bytes\n",
                )
            self._addr: SocketAddress = UnixSocketAddress(path)
        else:
            assert host is not None
            assert port is not None
            self._addr = InetSocketAddress(host, port)
            ipv4 = _opt_bool(opts, "ipv4", False)
            ipv6 = _opt_bool(opts, "ipv6", False)
            if ipv4 != ipv6:
                self._family = socket.AF_INET if ipv4 else socket.AF_INET6
        self._listener: socket.socket | None = None
        self._listener_id: tuple[int, int] | None = None
        self._conn: socket.socket | None = None
        self._connecting: socket.socket | None = None
        self._timer: Timer | None = None
        self._connect_err_reported = False
        self._update_disconnected_filename()

    # -- addresses -------------------------------------------------------------------

    @property
    def addr(self) -> SocketAddress:
        """The socket's address.

        A listening TCP server's address is numeric and has the port the
        host chose for ``port=0``.
        """
        return self._addr

    @property
    def connected(self) -> bool:
        """True while a peer is connected (QEMU's ``connected`` property)."""
        return self._conn is not None

    def _address_text(self, prefix: str) -> str:
        """QEMU's ``qemu_chr_socket_address``."""
        server = ",server=on" if self.is_listen else ""
        addr = self._addr
        if isinstance(addr, UnixSocketAddress):
            return f"{prefix}unix:{addr.path}{server}"
        return f"{prefix}tcp:{addr.host}:{addr.port}{server}"

    def _update_disconnected_filename(self) -> None:
        self.filename = self._address_text("disconnected:")

    def _connected_filename(self, conn: socket.socket) -> str:
        """QEMU's ``qemu_chr_compute_filename``."""
        addr = self._addr
        if isinstance(addr, UnixSocketAddress):
            if self.is_listen:
                return f"unix:{addr.path},server=on"
            return f"unix:{addr.path}"
        try:
            lhost, lport = _numeric(conn.getsockname())
            phost, pport = _numeric(conn.getpeername())
        except OSError:
            return "unknown"
        server = ",server=on" if self.is_listen else ""
        return f"tcp:{_bracket(lhost)}:{lport}{server} <-> {_bracket(phost)}:{pport}"

    # -- opening ---------------------------------------------------------------------

    @override
    def open(self) -> bool:
        """Listen or connect (``qmp_chardev_open_socket``).

        Returns:
            Always False.  The chardev sends OPENED itself when a peer
            connects (which ``wait=on`` and a client without ``reconnect``
            do before this returns).

        Raises:
            Error: the socket cannot be created, bound or connected.
        """
        self._bind_loop()
        try:
            if self.is_listen:
                self._listen()
                if self.is_waitconnect:
                    self._accept_sync()
                else:
                    self._watch_listener(True)
            elif self.reconnect_ms > 0:
                self._timer = timer_new_ms(CLOCK_REALTIME, self._reconnect_timeout)
                self._connect_async()
            else:
                self._connect_sync()
        except BaseException:
            self.close()
            raise
        return False

    def _listen(self) -> None:
        addr = self._addr
        if isinstance(addr, UnixSocketAddress):
            self._listener = self._listen_unix(addr.path)
        else:
            self._listener = self._listen_inet(addr)
            host, port = _numeric(self._listener.getsockname())
            self._addr = InetSocketAddress(host, port)
        self._listener.setblocking(False)
        self._update_disconnected_filename()

    def _listen_unix(self, path: str) -> socket.socket:
        """QEMU's ``unix_listen_saddr``, with the socket made owner-only."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise Error.from_os_error(
                    f"Failed to unlink socket {path}", exc
                ) from None
            try:
                sock.bind(path)
            except OSError as exc:
                raise Error.from_os_error(
                    f"Failed to bind socket to {path}", exc
                ) from None
            st = os.stat(path)
            self._listener_id = (st.st_dev, st.st_ino)
            # Nobody can connect before listen(): no window with wider access.
            try:
                os.chmod(path, 0o600)
            except OSError as exc:
                raise Error.from_os_error(
                    f"Failed to set the permissions of socket {path}", exc
                ) from None
            try:
                sock.listen(1)
            except OSError as exc:
                raise Error.from_os_error("Failed to listen on socket", exc) from None
        except BaseException:
            sock.close()
            raise
        return sock

    def _listen_inet(self, addr: InetSocketAddress) -> socket.socket:
        """QEMU's ``inet_listen_saddr`` (without port ranges)."""
        try:
            infos = socket.getaddrinfo(
                addr.host or None,
                addr.port,
                self._family,
                socket.SOCK_STREAM,
                0,
                socket.AI_PASSIVE,
            )
        except socket.gaierror as exc:
            raise Error(
                f"address resolution failed for {addr.host}:{addr.port}: {exc.strerror}"
            ) from None
        last: OSError | None = None
        created = False
        for family, kind, proto, _, sockaddr in infos:
            try:
                sock = socket.socket(family, kind, proto)
            except OSError as exc:
                last = exc
                continue
            created = True
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(sockaddr)
                sock.listen(1)
            except OSError as exc:
                sock.close()
                if exc.errno != errno.EADDRINUSE:
                    raise Error.from_os_error("Failed to bind socket", exc) from None
                last = exc
                continue
            return sock
        what = (
            "Failed to find an available port"
            if created
            else "Failed to create a socket"
        )
        if last is not None:
            raise Error.from_os_error(what, last)
        raise Error(what)

    def _watch_listener(self, on: bool) -> None:
        loop = self._loop
        listener = self._listener
        if loop is None or listener is None:
            return
        loop.set_fd_handler(
            listener.fileno(),
            self._accept if on else None,
            None,
            f"chardev '{self.label}' listener",
        )

    def _accept_sync(self) -> None:
        """Block until the first client connects (``tcp_chr_accept_server_sync``)."""
        listener = self._listener
        assert listener is not None
        sys.stderr.write(
            f"{error_get_progname()}: info: pyqemu waiting for connection on: "
            f"{self.filename}\n"
        )
        sys.stderr.flush()
        listener.setblocking(True)
        try:
            conn, _ = listener.accept()
        finally:
            listener.setblocking(False)
        self._new_client(conn)

    def _accept(self) -> None:
        """The listener is readable: take one client (``tcp_chr_accept``)."""
        listener = self._listener
        if listener is None or self._conn is not None:
            return
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            error_report(f"chardev '{self.label}': accept failed: {exc.strerror}")
            return
        self._new_client(conn)

    def _connect_error(self, exc: OSError) -> Error:
        addr = self._addr
        if isinstance(addr, UnixSocketAddress):
            where = addr.path
        else:
            where = f"{addr.host}:{addr.port}"
        return Error.from_os_error(f"Failed to connect to '{where}'", exc)

    def _client_socket(self) -> tuple[socket.socket, _Sockaddr]:
        """Create an unconnected client socket and the address to connect to."""
        addr = self._addr
        if isinstance(addr, UnixSocketAddress):
            return socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), addr.path
        try:
            infos = socket.getaddrinfo(
                addr.host, addr.port, self._family, socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise Error(
                f"address resolution failed for {addr.host}:{addr.port}: {exc.strerror}"
            ) from None
        family, kind, proto, _, sockaddr = infos[0]
        return socket.socket(family, kind, proto), sockaddr

    def _connect_sync(self) -> None:
        """Connect now or fail (``tcp_chr_connect_client_sync``)."""
        addr = self._addr
        last: OSError | None = None
        if isinstance(addr, UnixSocketAddress):
            targets: list[tuple[int, int, int, _Sockaddr]] = [
                (socket.AF_UNIX, socket.SOCK_STREAM, 0, addr.path)
            ]
        else:
            try:
                infos = socket.getaddrinfo(
                    addr.host, addr.port, self._family, socket.SOCK_STREAM
                )
            except socket.gaierror as exc:
                raise Error(
                    f"address resolution failed for {addr.host}:{addr.port}: "
                    f"{exc.strerror}"
                ) from None
            targets = [(f, k, p, sa) for f, k, p, _, sa in infos]
        for family, kind, proto, sockaddr in targets:
            sock = socket.socket(family, kind, proto)
            try:
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            self._new_client(sock)
            return
        assert last is not None
        raise self._connect_error(last)

    def _connect_async(self) -> None:
        """Start a non-blocking connection (``tcp_chr_connect_client_async``)."""
        try:
            sock, sockaddr = self._client_socket()
        except Error as err:
            self._connect_failed(err)
            return
        sock.setblocking(False)
        rc = sock.connect_ex(sockaddr)
        if rc == 0:
            self._new_client(sock)
            return
        if rc != errno.EINPROGRESS:
            sock.close()
            self._connect_failed(self._connect_error(OSError(rc, os.strerror(rc))))
            return
        self._connecting = sock
        loop = self._loop
        assert loop is not None
        loop.set_fd_handler(
            sock.fileno(), None, self._connect_done, f"chardev '{self.label}' connect"
        )

    def _stop_connecting(self) -> socket.socket | None:
        sock, self._connecting = self._connecting, None
        if sock is not None and self._loop is not None:
            self._loop.set_fd_handler(sock.fileno(), None, None)
        return sock

    def _connect_done(self) -> None:
        """The background connection finished (``qemu_chr_socket_connected``)."""
        sock = self._stop_connecting()
        if sock is None:
            return
        rc = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if rc != 0:
            sock.close()
            self._connect_failed(self._connect_error(OSError(rc, os.strerror(rc))))
            return
        self._new_client(sock)

    def _connect_failed(self, err: Error) -> None:
        """Report the first failure of a series; retry later.

        QEMU's ``check_report_connect_error``.
        """
        if not self._connect_err_reported:
            error_report(f"Unable to connect character device {self.label}: {err.msg}")
            self._connect_err_reported = True
        self._restart_timer()

    def _restart_timer(self) -> None:
        timer = self._timer
        if timer is not None and self.reconnect_ms > 0 and not timer.pending():
            timer.mod(qemu_clock_get_ms(CLOCK_REALTIME) + self.reconnect_ms)

    def _reconnect_timeout(self) -> None:
        """Time to try again (``socket_reconnect_timeout``)."""
        if self._conn is not None or self._connecting is not None or self._closed:
            return
        self._connect_async()

    # -- connections -----------------------------------------------------------------

    def _new_client(self, conn: socket.socket) -> None:
        """Take ``conn`` as the connection.

        QEMU's ``tcp_chr_new_client`` and ``tcp_chr_connect``.
        """
        if self._conn is not None:
            conn.close()
            return
        conn.setblocking(False)
        if self.nodelay and conn.family in (socket.AF_INET, socket.AF_INET6):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._watch_listener(False)
        self._conn = conn
        self._connect_err_reported = False
        self.filename = self._connected_filename(conn)
        self._set_fds(conn.fileno(), conn.fileno())
        self.be_event(ChrEvent.OPENED)

    def _disconnect(self) -> None:
        """End the connection (``tcp_chr_disconnect``)."""
        conn = self._conn
        if conn is None:
            return
        self._clear_fds()
        self._conn = None
        conn.close()
        self._watch_listener(True)
        self._update_disconnected_filename()
        self.be_event(ChrEvent.CLOSED)
        if self._write_watches and self._loop is not None:
            # Waiting writers resume; their output is now discarded.
            self._loop.bh_schedule(self.be_writable, f"chardev '{self.label}' hup")
        self._restart_timer()

    @override
    def _raw_read(self, size: int) -> bytes:
        conn = self._conn
        return conn.recv(size) if conn is not None else b""

    @override
    def _raw_write(self, data: bytes) -> int:
        conn = self._conn
        if conn is None:
            return len(data)
        return conn.send(data, socket.MSG_NOSIGNAL)

    @override
    def _input_eof(self) -> None:
        self._disconnect()

    @override
    def _read_failed(self, exc: OSError) -> None:
        self._disconnect()

    @override
    def _write_failed(self, exc: OSError) -> None:
        # As tcp_chr_write: if input is being read, let the read handler see
        # the end of the data first; otherwise disconnect now.
        if self.be_can_write() <= 0:
            self._disconnect()

    @override
    def close(self) -> None:
        """Close the connection and the listener; remove the socket file."""
        if self._timer is not None:
            self._timer.delete()
            self._timer = None
        self._release()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        connecting = self._stop_connecting()
        if connecting is not None:
            connecting.close()
        listener, self._listener = self._listener, None
        if listener is not None:
            if self._loop is not None:
                self._loop.set_fd_handler(listener.fileno(), None, None)
            listener.close()
            self._unlink_socket_file()
        self._update_disconnected_filename()
        if self.be_open:
            self.be_event(ChrEvent.CLOSED)

    def _unlink_socket_file(self) -> None:
        """Remove our socket file (``socket_listen_cleanup``), if still ours."""
        addr = self._addr
        ident, self._listener_id = self._listener_id, None
        if not isinstance(addr, UnixSocketAddress) or ident is None:
            return
        try:
            st = os.stat(addr.path)
            if (st.st_dev, st.st_ino) == ident:
                os.unlink(addr.path)
        except OSError:
            pass
