r"""QEMUFile: the byte stream a migration is written to and read from.

This module mirrors QEMU's ``migration/qemu-file.h`` (``migration/qemu-file.c``):
``qemu_put_byte``/``qemu_put_be16``/``qemu_put_be32``/``qemu_put_be64``/
``qemu_put_buffer`` on the writing side, their ``qemu_get_*`` counterparts and
``qemu_peek_byte``/``qemu_peek_buffer`` on the reading side.  Every multi-byte
number on the wire is big-endian; strings are "counted": one length byte, then
the bytes, no terminating NUL.

The writer buffers and hands full chunks to a sink (a file's ``write``, a
socket's ``sendall``); without a sink it keeps the whole stream in memory.  The
reader works on a complete stream held in memory: migration parses and
validates a whole stream before it changes anything, so it needs all of it
first.  A read past the end raises :class:`QEMUFileError` saying where.

>>> w = QEMUFileWriter()
>>> w.put_be32(0x5145564D)
>>> w.put_counted_string("pl011")
>>> w.getvalue()
b'QEVM\x05pl011'
>>> r = QEMUFileReader(w.getvalue())
>>> hex(r.get_be32()), r.get_counted_string(), r.remaining()
('0x5145564d', 'pl011', 0)
>>> r.get_byte()
Traceback (most recent call last):
  ...
qemu_api.migration.qemu_file.QEMUFileError: the stream ends at offset 0xa: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, final

from qemu_api.error import Error

__all__ = [
    "QEMUFileError",
    "QEMUFileReader",
    "QEMUFileWriter",
    "Sink",
    "stream_text",
]

Sink = Callable[[bytes], object]
"""Where a writer sends its full chunks: ``file.write``, ``socket.sendall``."""

_CHUNK: Final = 1 << 20


@final
class QEMUFileError(Error):
    """A migration stream ended early or could not be written."""


@final
class QEMUFileWriter:
    r"""The writing side of a migration stream (QEMU's outgoing ``QEMUFile``).

    Args:
        sink: called with each full chunk of bytes; None keeps the whole
            stream in memory for :meth:`getvalue`.
        chunk: how many bytes to collect before calling ``sink``.

    >>> chunks = []
    >>> w = QEMUFileWriter(chunks.append, chunk=4)
    >>> w.put_be64(1)
    >>> w.put_byte(2)
    >>> w.flush()
    >>> chunks, w.transferred()
    ([b'\x00\x00\x00\x00\x00\x00\x00\x01', b'\x02'], 9)
    """

    __slots__ = ("_buf", "_chunk", "_flushed", "_sink")

    def __init__(self, sink: Sink | None = None, chunk: int = _CHUNK) -> None:
        self._sink = sink
        self._chunk = chunk
        self._buf = bytearray()
        self._flushed = 0

    def _maybe_flush(self) -> None:
        if self._sink is not None and len(self._buf) >= self._chunk:
            self.flush()

    def put_byte(self, value: int) -> None:
        """Write one byte (``qemu_put_byte``); ``value`` is taken modulo 256."""
        self._buf.append(value & 0xFF)
        self._maybe_flush()

    def put_be16(self, value: int) -> None:
        """Write a big-endian 16-bit number (``qemu_put_be16``)."""
        self._buf += (value & 0xFFFF).to_bytes(2, "big")
        self._maybe_flush()

    def put_be32(self, value: int) -> None:
        """Write a big-endian 32-bit number (``qemu_put_be32``).

        Negative values are written in two's complement, as C's cast does.
        """
        self._buf += (value & 0xFFFF_FFFF).to_bytes(4, "big")
        self._maybe_flush()

    def put_be64(self, value: int) -> None:
        """Write a big-endian 64-bit number (``qemu_put_be64``).

        Negative values are written in two's complement, as C's cast does.
        """
        self._buf += (value & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "big")
        self._maybe_flush()

    def put_buffer(self, data: bytes | bytearray | memoryview) -> None:
        """Write bytes as they are (``qemu_put_buffer``)."""
        self._buf += data
        self._maybe_flush()

    def put_counted_string(self, text: str) -> None:
        """Write a length byte and the UTF-8 bytes of ``text``.

        Raises:
            QEMUFileError: the string is longer than 255 bytes.
        """
        data = text.encode()
        if len(data) > 255:
            raise QEMUFileError(
                f"'{text[:40]}...' is {len(data)} bytes long; a counted string "
                "in a migration stream holds at most 255"
            )
        self._buf.append(len(data))
        self._buf += data
        self._maybe_flush()

    def transferred(self) -> int:
        """Return the number of bytes written so far (``qemu_file_transferred``)."""
        return self._flushed + len(self._buf)

    def flush(self) -> None:
        """Hand the buffered bytes to the sink (``qemu_fflush``).

        Raises:
            QEMUFileError: the sink failed (the message says why).
        """
        if self._sink is None or not self._buf:
            return
        data = bytes(self._buf)
        self._buf.clear()
        try:
            self._sink(data)
        except OSError as exc:
            raise QEMUFileError.from_os_error(
                "cannot write the migration stream", exc
            ) from exc
        self._flushed += len(data)

    def getvalue(self) -> bytes:
        """Return the whole stream written so far (a writer without a sink).

        Raises:
            QEMUFileError: the writer has a sink, so the bytes are gone.
        """
        if self._sink is not None:
            raise QEMUFileError(
                "getvalue(): this writer sends its bytes to a sink; create it "
                "with QEMUFileWriter() to keep the stream in memory"
            )
        return bytes(self._buf)


_CONTROL: Final = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}


def stream_text(raw: bytes) -> str:
    r"""Decode a name read from a stream, safe to put in a one-line message.

    UTF-8, with invalid bytes and control characters written ``\xNN``:
    a corrupt stream's names never break a message over several lines.

    >>> stream_text(b"pl011"), stream_text(b"a\nb\xff")
    ('pl011', 'a\\x0ab\\xff')
    """
    return raw.decode("utf-8", errors="backslashreplace").translate(_CONTROL)


def _plural(n: int) -> str:
    return "byte" if n == 1 else "bytes"


@final
class QEMUFileReader:
    r"""The reading side of a migration stream, over the whole stream in memory.

    Args:
        data: the complete stream.

    >>> r = QEMUFileReader(b"\x05\x0bpl011/clock")
    >>> r.peek_byte(), r.peek_byte(1), bytes(r.peek_buffer(5, 2))
    (5, 11, b'pl011')
    >>> r.skip(2)
    >>> bytes(r.get_buffer(11))
    b'pl011/clock'
    """

    __slots__ = ("_data", "_flat", "_len", "pos")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = memoryview(data).cast("B")
        self._len = len(self._data)
        self._flat: bytes | bytearray | None = None
        self.pos = 0
        """The offset of the next byte to read."""

    def remaining(self) -> int:
        """Return how many bytes are left after :attr:`pos`."""
        return self._len - self.pos

    def size(self) -> int:
        """Return the length of the whole stream."""
        return self._len

    def _negative(self, n: int) -> QEMUFileError:
        return QEMUFileError(
            f"a length of {n} bytes at offset {self.pos:#x}: lengths read from a "
            "stream must not be negative"
        )

    def _short(self, needed: int, at: int) -> QEMUFileError:
        left = max(self._len - at, 0)
        more = needed - left
        return QEMUFileError(
            f"the stream ends at offset {self._len:#x}: needed {more} more "
            f"{_plural(more)}"
        )

    def get_byte(self) -> int:
        """Read one byte (``qemu_get_byte``).

        Raises:
            QEMUFileError: the stream has ended.
        """
        pos = self.pos
        if pos >= self._len:
            raise self._short(1, pos)
        self.pos = pos + 1
        return self._data[pos]

    def _get(self, n: int) -> int:
        pos = self.pos
        end = pos + n
        if end > self._len:
            raise self._short(n, pos)
        self.pos = end
        return int.from_bytes(self._data[pos:end], "big")

    def get_be16(self) -> int:
        """Read a big-endian 16-bit number (``qemu_get_be16``).

        Raises:
            QEMUFileError: fewer than 2 bytes are left.
        """
        return self._get(2)

    def get_be32(self) -> int:
        """Read a big-endian 32-bit number (``qemu_get_be32``).

        Raises:
            QEMUFileError: fewer than 4 bytes are left.
        """
        return self._get(4)

    def get_be64(self) -> int:
        """Read a big-endian 64-bit number (``qemu_get_be64``).

        Raises:
            QEMUFileError: fewer than 8 bytes are left.
        """
        return self._get(8)

    def get_int(self, size: int, signed: bool) -> int:
        """Read a big-endian number of ``size`` bytes.

        Raises:
            QEMUFileError: fewer than ``size`` bytes are left.
        """
        pos = self.pos
        end = pos + size
        if end > self._len or size < 0:
            raise self._short(size, pos) if size >= 0 else self._negative(size)
        self.pos = end
        return int.from_bytes(self._data[pos:end], "big", signed=signed)

    def get_buffer(self, n: int) -> memoryview:
        """Return the next ``n`` bytes, without copying (``qemu_get_buffer``).

        Raises:
            QEMUFileError: fewer than ``n`` bytes are left, or ``n`` is
                negative (a length read from a corrupt stream).
        """
        pos = self.pos
        end = pos + n
        if end > self._len or n < 0:
            raise self._short(n, pos) if n >= 0 else self._negative(n)
        self.pos = end
        return self._data[pos:end]

    def get_counted_string(self) -> str:
        """Read a length byte and that many bytes, as :func:`stream_text`.

        Raises:
            QEMUFileError: the stream ends inside the string.
        """
        n = self.get_byte()
        return stream_text(bytes(self.get_buffer(n)))

    def skip(self, n: int) -> None:
        """Move past ``n`` bytes (``qemu_file_skip``).

        Raises:
            QEMUFileError: fewer than ``n`` bytes are left, or ``n`` is
                negative: the position never moves backwards.
        """
        if self.pos + n > self._len or n < 0:
            raise self._short(n, self.pos) if n >= 0 else self._negative(n)
        self.pos += n

    def peek_byte(self, offset: int = 0) -> int:
        """Return the byte ``offset`` bytes ahead, or -1 past the end.

        QEMU's ``qemu_peek_byte``: nothing is consumed.
        """
        at = self.pos + offset
        return self._data[at] if at < self._len else -1

    def peek_buffer(self, n: int, offset: int = 0) -> memoryview:
        """Return up to ``n`` bytes starting ``offset`` bytes ahead.

        QEMU's ``qemu_peek_buffer``: nothing is consumed, and the result is
        shorter than ``n`` near the end of the stream.
        """
        start = min(self.pos + max(offset, 0), self._len)
        return self._data[start : min(start + max(n, 0), self._len)]

    def find(self, needle: bytes, offset: int = 0) -> int:
        """Return where ``needle`` next occurs, ``offset`` bytes ahead or later.

        The result counts from :attr:`pos` (so it can be passed to
        :meth:`skip`), or is -1 when the rest of the stream lacks it.  The
        stream is searched in place, without copying it.

        >>> r = QEMUFileReader(b"abcabc")
        >>> r.skip(1)
        >>> r.find(b"a"), r.find(b"a", 3), r.find(b"x")
        (2, -1, -1)
        """
        flat = self._flat
        if flat is None:
            obj = self._data.obj
            if isinstance(obj, bytes | bytearray) and len(obj) == self._len:
                flat = obj
            else:
                flat = bytes(self._data)  # once: find() works on bytes
            self._flat = flat
        at = flat.find(needle, self.pos + max(offset, 0))
        return at - self.pos if at >= 0 else -1
