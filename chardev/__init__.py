"""Host chardev backends: ``file``, ``socket``, ``stdio`` and ``pty``.

This package is QEMU's ``chardev/`` directory for the backends that talk to
the host (``char-fd.c``, ``char-file.c``, ``char-socket.c``,
``char-stdio.c``, ``char-pty.c``,
``char-mux.c``); the chardev core, the registry and the
``null``/``ringbuf`` backends are in :mod:`qemu_api.chardev`.

Importing the package registers the backends, so that
:func:`~qemu_api.chardev.qemu_chr_new` accepts them by name with QEMU's
``-chardev`` option names.  Host backends watch their descriptors in the
emulator's main loop, set once with :func:`~chardev.char_fd.set_main_loop`::

    import chardev
    from qemu_api.chardev import qemu_chr_new

    chardev.set_main_loop(loop)
    qemu_chr_new("serial0", "socket", {"path": "/tmp/s", "server": "on", "wait": "off"})

For QMP ``query-chardev``, every chardev has ``filename`` (QEMU's text, such
as ``unix:/tmp/s,server=on`` or ``pty:/dev/pts/3``) and ``frontend_open``.

>>> import chardev
>>> from qemu_api.chardev import qemu_chr_backends
>>> [b for b in qemu_chr_backends() if b in ("file", "pty", "socket", "stdio")]
['file', 'pty', 'socket', 'stdio']
"""

from qemu_api.chardev import qemu_chr_new, register_chardev_backend

from .char_fd import FdChardev, get_main_loop, set_main_loop
from .char_file import FileChardev
from .char_mux import MuxChardev, MuxPort, open_muxes
from .char_pty import PtyChardev
from .char_socket import (
    InetSocketAddress,
    SocketAddress,
    SocketChardev,
    UnixSocketAddress,
)
from .char_stdio import StdioChardev, term_exit

__all__ = [
    "FdChardev",
    "FileChardev",
    "InetSocketAddress",
    "MuxChardev",
    "MuxPort",
    "PtyChardev",
    "SocketAddress",
    "SocketChardev",
    "StdioChardev",
    "UnixSocketAddress",
    "get_main_loop",
    "open_muxes",
    "qemu_chr_new",
    "set_main_loop",
    "term_exit",
]

for _cls in (FileChardev, SocketChardev, StdioChardev, PtyChardev, MuxChardev):
    register_chardev_backend(_cls)
