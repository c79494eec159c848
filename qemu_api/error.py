"""Errors carrying QEMU's error classes and hints.

This module models QEMU's ``Error`` object from ``include/qapi/error.h`` and
its reporting from ``include/qemu/error-report.h``: a human-readable message,
an :class:`ErrorClass` that QMP reports as ``{"class": ...}``, and an optional
hint (``error_append_hint``) printed on the lines after the message.

Where C code fills an ``Error **errp``, Python code raises :class:`Error`;
callers that add context catch it, :meth:`Error.prepend` their prefix (QEMU's
``error_prepend``) and re-raise.

>>> err = Error("Property 'baudrate' not found", hint="Did you mean 'baud'?")
>>> str(err)
"Property 'baudrate' not found"
>>> print(err.prepend("pl011: ").pretty())
pl011: Property 'baudrate' not found
Did you mean 'baud'?
"""

from __future__ import annotations

import contextlib
import enum
import sys
from collections.abc import Iterator
from typing import final

__all__ = [
    "Error",
    "ErrorClass",
    "error_get_progname",
    "error_location",
    "error_location_get",
    "error_report",
    "error_report_err",
    "error_set_progname",
    "warn_report",
]


@final
class ErrorClass(enum.Enum):
    """QEMU's ``QapiErrorClass``: the error classes QMP reports.

    New code uses :attr:`GENERIC_ERROR`; the others exist for compatibility
    with clients that look at the class (``qapi/error.json``).
    """

    GENERIC_ERROR = "GenericError"
    COMMAND_NOT_FOUND = "CommandNotFound"
    DEVICE_NOT_ACTIVE = "DeviceNotActive"
    DEVICE_NOT_FOUND = "DeviceNotFound"
    KVM_MISSING_CAP = "KVMMissingCap"


class Error(Exception):
    """An error with a message, an error class and an optional hint.

    ``str(error)`` is the message alone, as ``error_get_pretty()``; use
    :meth:`pretty` for the message followed by the hint.

    Args:
        msg: the message, one line without a trailing newline or period, as
            QEMU's ``error_setg`` wants it.
        error_class: the QMP error class.
        hint: extra lines of advice (``error_append_hint``); a trailing
            newline is optional.

    >>> e = Error("Device 'uart9' not found", error_class=ErrorClass.DEVICE_NOT_FOUND)
    >>> e.error_class.value
    'DeviceNotFound'
    >>> e.hint is None
    True
    """

    def __init__(
        self,
        msg: str,
        *,
        error_class: ErrorClass = ErrorClass.GENERIC_ERROR,
        hint: str | None = None,
    ) -> None:
        super().__init__(msg)
        self._msg = msg
        self.error_class = error_class
        self.hint = hint

    @property
    def msg(self) -> str:
        """The message, without the hint."""
        return self._msg

    @classmethod
    def from_os_error(
        cls,
        msg: str,
        exc: OSError,
        *,
        hint: str | None = None,
    ) -> Error:
        """Build an error from an ``OSError``, as QEMU's ``error_setg_errno``.

        The message becomes ``"<msg>: <strerror>"``.

        Args:
            msg: what failed.
            exc: the operating-system error.
            hint: optional hint lines.

        >>> import errno
        >>> e = OSError(errno.ENOENT, "No such file or directory")
        >>> str(Error.from_os_error("Could not open 'x.log'", e))
        "Could not open 'x.log': No such file or directory"
        """
        reason = exc.strerror or str(exc)
        return cls(f"{msg}: {reason}", hint=hint)

    def prepend(self, prefix: str) -> Error:
        """Put ``prefix`` in front of the message, as QEMU's ``error_prepend``.

        The error is changed in place and returned, so a caller can write
        ``raise err.prepend("uart0: ")``.

        Args:
            prefix: the text to put in front, usually ending in ``": "``.

        Returns:
            This error.

        >>> e = Error("size must be a power of two")
        >>> str(e.prepend("ringbuf: ").prepend("chardev 'log': "))
        "chardev 'log': ringbuf: size must be a power of two"
        """
        self._msg = prefix + self._msg
        self.args = (self._msg,)
        return self

    def append_hint(self, text: str) -> Error:
        r"""Add lines to the hint, as QEMU's ``error_append_hint``.

        Args:
            text: the text to add; QEMU callers end each line with ``"\n"``.

        Returns:
            This error.

        >>> e = Error("bad size").append_hint("Valid sizes: 1, 2, 4\n")
        >>> e.hint
        'Valid sizes: 1, 2, 4\n'
        """
        self.hint = (self.hint or "") + text
        return self

    def pretty(self) -> str:
        r"""Return the message and the hint as ``error_report_err`` prints them.

        The result has no program-name prefix and no trailing newline.

        >>> print(Error("no such backend", hint="Try 'null'\n").pretty())
        no such backend
        Try 'null'
        """
        if not self.hint:
            return self._msg
        return f"{self._msg}\n{self.hint.rstrip(chr(10))}"


_progname = "pyqemu"


def error_set_progname(name: str) -> None:
    """Set the program name that prefixes reported errors (``argv[0]``).

    Args:
        name: the program name, such as ``"qemu-system-aarch64"``.
    """
    global _progname
    _progname = name


def error_get_progname() -> str:
    """Return the program name that prefixes reported errors.

    >>> error_get_progname()
    'pyqemu'
    """
    return _progname


_locations: list[str] = []


@contextlib.contextmanager
def error_location(where: str | None) -> Iterator[None]:
    r"""Attribute reports made in the block to *where* (QEMU's ``loc_push_*``).

    While the block runs, :func:`error_report`, :func:`warn_report` and
    :func:`error_report_err` print ``"<progname>: <where>: <msg>"``; the
    command line uses the option and its argument as typed
    (``-device pl011,id=x``), as QEMU's ``loc_set_cmdline``. None clears
    the location for the block (QEMU's ``loc_push_none``).

    >>> import io, contextlib
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err), error_location("-m 64,x=1"):
    ...     error_report("Invalid parameter 'x'")
    >>> err.getvalue().split(": ", 1)[1]
    "-m 64,x=1: Invalid parameter 'x'\n"
    """
    _locations.append(where or "")
    try:
        yield
    finally:
        _locations.pop()


def error_location_get() -> str:
    """Return the current location's prefix: ``"<where>: "``, or ``""``."""
    return f"{_locations[-1]}: " if _locations and _locations[-1] else ""


def error_report(msg: str) -> None:
    """Print ``"<progname>: <msg>"`` and a newline on standard error.

    QEMU's ``error_report``; the current :func:`error_location`, if any,
    comes before the message.  ``sys.stderr`` is looked up at each call.

    Args:
        msg: the message, without a trailing newline.
    """
    sys.stderr.write(f"{_progname}: {error_location_get()}{msg}\n")


def warn_report(msg: str) -> None:
    """Print ``"<progname>: warning: <msg>"`` and a newline on standard error.

    QEMU's ``warn_report``, after the current :func:`error_location`.

    Args:
        msg: the message, without a trailing newline.
    """
    sys.stderr.write(f"{_progname}: {error_location_get()}warning: {msg}\n")


def error_report_err(err: Error) -> None:
    """Report ``err`` on standard error: the message, then the hint lines.

    QEMU's ``error_report_err``: ``"<progname>: <msg>"`` followed by the hint
    as is.

    Args:
        err: the error to report.
    """
    stream = sys.stderr
    stream.write(f"{_progname}: {error_location_get()}{err.msg}\n")
    if err.hint:
        hint = err.hint if err.hint.endswith("\n") else err.hint + "\n"
        stream.write(hint)
