r"""The ``file`` chardev backend: output to a host file, optional input file.

This module models QEMU's ``chardev/char-file.c``: ``-chardev
file,id=ID,path=FILE[,append=on][,input-path=IN]`` (QMP ``chardev-add`` calls
the files ``out`` and ``in``).  The output file is created if needed and
truncated unless ``append=on``.  With an input file, its contents are the
device's input; at its end the frontend gets
:attr:`~qemu_api.chardev.ChrEvent.CLOSED`.

>>> import os, tempfile
>>> from qemu_api.chardev import CharBackend, qemu_chr_delete, qemu_chr_new
>>> from system.main_loop import MainLoop
>>> from chardev.char_fd import set_main_loop
>>> set_main_loop(MainLoop())
>>> path = os.path.join(tempfile.mkdtemp(), "serial.log")
>>> log = qemu_chr_new("log", "file", {"path": path})
>>> log.filename
'file'
>>> fe = CharBackend()
>>> fe.connect(log)
>>> fe.write(b"Hello\n")
6
>>> fe.disconnect()
>>> qemu_chr_delete("log")
>>> open(path, "rb").read()
b'Hello\n'
>>> os.unlink(path)
>>> set_main_loop(None)
"""

from __future__ import annotations

import os
from typing import final

from qemu_api._compat import override
from qemu_api.chardev import ChardevOptions
from qemu_api.error import Error

from .char_fd import FdChardev, _close_fd, _open_file, _opt_bool, _opt_str

__all__ = ["FileChardev"]


def _one_of(options: ChardevOptions, cmdline: str, qmp: str) -> str | None:
    a = _opt_str(options, cmdline)
    b = _opt_str(options, qmp)
    if a is not None and b is not None:
        raise Error(
            f"Parameters '{cmdline}' and '{qmp}' name the same file",
            hint=f"Give only one: '{cmdline}' (-chardev) or '{qmp}' (QMP).\n",
        )
    return a if a is not None else b


@final
class FileChardev(FdChardev):
    """The ``file`` backend (QEMU's ``TYPE_CHARDEV_FILE``).

    Options: ``path`` (or QMP's ``out``), the output file, required;
    ``append`` (``on``/``off``, default ``off``); ``input-path`` (or QMP's
    ``in``), a file to read input from.

    Raises:
        Error: no output file was given, or an option is invalid.
    """

    BACKEND = "file"
    OPTIONS = frozenset({"path", "out", "append", "input-path", "in"})

    def __init__(self, label: str, options: ChardevOptions | None = None) -> None:
        super().__init__(label, options)
        opts = options or {}
        path = _one_of(opts, "path", "out")
        if not path:
            raise Error(
                "chardev: file: no filename given",
                hint="Give path=FILE: the file receives the device's output.\n",
            )
        self.path = path
        """The output file."""
        self.input_path = _one_of(opts, "input-path", "in")
        """The input file, or None."""
        self.append = _opt_bool(opts, "append", False)
        """True if output is appended to an existing file."""
        self._out = -1
        self._in = -1

    @override
    def open(self) -> bool:
        """Open (create, truncate or append to) the files.

        Raises:
            Error: a file cannot be opened (QEMU's ``Could not open 'PATH'``).
        """
        self._bind_loop()
        try:
            flags = os.O_WRONLY | os.O_CREAT
            flags |= os.O_APPEND if self.append else os.O_TRUNC
            self._out = _open_file(self.path, flags)
            os.set_blocking(self._out, False)
            if self.input_path is not None:
                self._in = _open_file(self.input_path, os.O_RDONLY)
                os.set_blocking(self._in, False)
        except BaseException:
            self.close()
            raise
        self._set_fds(self._in, self._out)
        return True

    @override
    def close(self) -> None:
        """Close the files."""
        self._release()
        _close_fd(self._out)
        _close_fd(self._in)
        self._out = self._in = -1
