r"""QEMU's debug log: ``qemu_log_mask`` and the ``-d`` log items.

This module models ``include/qemu/log.h``, ``include/qemu/log-for-trace.h``
and ``util/log.c``, plus the ``log_mask_ln!`` macro of QEMU's Rust ``log``
module.  A device reports a guest mistake with::

    qemu_log_mask(LOG_GUEST_ERROR, f"pl011_read: Bad offset {offset:#x}\n")

The message is written only if one of the mask bits is enabled (``-d
guest_errors`` on the command line, :func:`qemu_set_log` in code); a disabled
call costs one integer test.  Messages are written as is, like C's
``qemu_log``: C callers end them with ``"\n"``; :func:`log_mask_ln` adds the
newline for you.

The log goes to standard error (looked up at write time, so pytest's
``capsys`` sees it) or to the file set by :func:`qemu_set_log_filename`
(QEMU's ``-D``).  As in QEMU, nothing is written while the mask is zero and no
file was ever opened.

>>> qemu_set_log(LOG_GUEST_ERROR)
>>> import sys
>>> sys.stderr = sys.stdout  # doctest output shows stdout only
>>> log_mask_ln(LOG_GUEST_ERROR, "pl011: bad offset 0xfe8")
pl011: bad offset 0xfe8
>>> qemu_log_mask(LOG_UNIMP, "not shown: unimp is disabled\n")
>>> sys.stderr = sys.__stderr__
>>> qemu_set_log(0)
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import IO, NamedTuple, final

from qemu_api.error import Error

__all__ = [
    "CPU_LOG_EXEC",
    "CPU_LOG_INT",
    "CPU_LOG_MMU",
    "CPU_LOG_PAGE",
    "CPU_LOG_PCALL",
    "CPU_LOG_PLUGIN",
    "CPU_LOG_RESET",
    "CPU_LOG_TB_CPU",
    "CPU_LOG_TB_FPU",
    "CPU_LOG_TB_IN_ASM",
    "CPU_LOG_TB_NOCHAIN",
    "CPU_LOG_TB_OP",
    "CPU_LOG_TB_OP_IND",
    "CPU_LOG_TB_OP_OPT",
    "CPU_LOG_TB_OUT_ASM",
    "CPU_LOG_TB_VPU",
    "LOG_GUEST_ERROR",
    "LOG_INVALID_MEM",
    "LOG_PER_THREAD",
    "LOG_STRACE",
    "LOG_TB_OP_PLUGIN",
    "LOG_TRACE",
    "LOG_UNIMP",
    "QEMU_LOG_ITEMS",
    "QEMULogItem",
    "log_mask_ln",
    "qemu_get_log_filename",
    "qemu_get_log_mask",
    "qemu_log",
    "qemu_log_enabled",
    "qemu_log_force_flags",
    "qemu_log_help",
    "qemu_log_mask",
    "qemu_log_reset",
    "qemu_log_separate",
    "qemu_log_set_trace_hook",
    "qemu_loglevel_mask",
    "qemu_set_log",
    "qemu_set_log_filename",
    "qemu_set_log_filename_flags",
    "qemu_str_to_log_mask",
]

# Mask bits, with the values of include/qemu/log.h and log-for-trace.h.
CPU_LOG_TB_OUT_ASM = 1 << 0
"""``-d out_asm``: generated host code for each translation block."""
CPU_LOG_TB_IN_ASM = 1 << 1
"""``-d in_asm``: target code for each translation block."""
CPU_LOG_TB_OP = 1 << 2
"""``-d op``: TCG ops for each translation block."""
CPU_LOG_TB_OP_OPT = 1 << 3
"""``-d op_opt``: TCG ops after optimization."""
CPU_LOG_INT = 1 << 4
"""``-d int``: interrupts and exceptions."""
CPU_LOG_EXEC = 1 << 5
"""``-d exec``: trace before each executed translation block."""
CPU_LOG_PCALL = 1 << 6
"""``-d pcall``: x86 protected-mode far calls."""
CPU_LOG_TB_CPU = 1 << 8
"""``-d cpu``: CPU registers before each translation block."""
CPU_LOG_RESET = 1 << 9
"""``-d cpu_reset``: CPU state before CPU resets."""
LOG_UNIMP = 1 << 10
"""``-d unimp``: unimplemented device functionality."""
LOG_GUEST_ERROR = 1 << 11
"""``-d guest_errors``: the guest did something invalid."""
CPU_LOG_MMU = 1 << 12
"""``-d mmu``: MMU activity."""
CPU_LOG_TB_NOCHAIN = 1 << 13
"""``-d nochain``: do not chain translation blocks."""
CPU_LOG_PAGE = 1 << 14
"""``-d page``: pages at the start of user-mode emulation."""
LOG_TRACE = 1 << 15
"""Set when ``-d trace:PATTERN`` enabled trace events (``log-for-trace.h``)."""
CPU_LOG_TB_OP_IND = 1 << 16
"""``-d op_ind``: TCG ops before indirect lowering."""
CPU_LOG_TB_FPU = 1 << 17
"""``-d fpu``: FPU registers in the ``cpu`` log."""
CPU_LOG_PLUGIN = 1 << 18
"""``-d plugin``: output from TCG plugins."""
LOG_STRACE = 1 << 19
"""``-d strace``: user-mode system calls."""
LOG_PER_THREAD = 1 << 20
"""``-d tid``: one log file per thread (the file name needs ``%d``)."""
CPU_LOG_TB_VPU = 1 << 21
"""``-d vpu``: vector registers in the ``cpu`` log."""
LOG_TB_OP_PLUGIN = 1 << 22
"""``-d op_plugin``: TCG ops before plugin injection."""
LOG_INVALID_MEM = 1 << 23
"""``-d invalid_mem``: invalid memory accesses."""


@final
class QEMULogItem(NamedTuple):
    """One ``-d`` item: its mask, its name and its help text (``QEMULogItem``)."""

    mask: int
    name: str
    help: str


QEMU_LOG_ITEMS: tuple[QEMULogItem, ...] = (
    QEMULogItem(
        CPU_LOG_TB_OUT_ASM,
        "out_asm",
        "show generated host assembly code for each compiled TB",
    ),
    QEMULogItem(
        CPU_LOG_TB_IN_ASM, "in_asm", "show target assembly code for each compiled TB"
    ),
    QEMULogItem(CPU_LOG_TB_OP, "op", "show micro ops for each compiled TB"),
    QEMULogItem(CPU_LOG_TB_OP_OPT, "op_opt", "show micro ops after optimization"),
    QEMULogItem(CPU_LOG_TB_OP_IND, "op_ind", "show micro ops before indirect lowering"),
    QEMULogItem(
        LOG_TB_OP_PLUGIN, "op_plugin", "show micro ops before plugin injection"
    ),
    QEMULogItem(CPU_LOG_INT, "int", "show interrupts/exceptions in short format"),
    QEMULogItem(
        CPU_LOG_EXEC, "exec", "show trace before each executed TB (lots of logs)"
    ),
    QEMULogItem(
        CPU_LOG_TB_CPU,
        "cpu",
        "show CPU registers before entering a TB (lots of logs)",
    ),
    QEMULogItem(CPU_LOG_TB_FPU, "fpu", "include FPU registers in the 'cpu' logging"),
    QEMULogItem(CPU_LOG_MMU, "mmu", "log MMU-related activities"),
    QEMULogItem(
        CPU_LOG_PCALL,
        "pcall",
        "x86 only: show protected mode far calls/returns/exceptions",
    ),
    QEMULogItem(CPU_LOG_RESET, "cpu_reset", "show CPU state before CPU resets"),
    QEMULogItem(LOG_UNIMP, "unimp", "log unimplemented functionality"),
    QEMULogItem(
        LOG_GUEST_ERROR,
        "guest_errors",
        "log when the guest OS does something invalid (eg accessing a\n"
        "non-existent register)",
    ),
    QEMULogItem(CPU_LOG_PAGE, "page", "dump pages at beginning of user mode emulation"),
    QEMULogItem(
        CPU_LOG_TB_NOCHAIN,
        "nochain",
        'do not chain compiled TBs so that "exec" and "cpu" show\ncomplete traces',
    ),
    QEMULogItem(CPU_LOG_PLUGIN, "plugin", "output from TCG plugins"),
    QEMULogItem(
        LOG_STRACE,
        "strace",
        "log every user-mode syscall, its input, and its result",
    ),
    QEMULogItem(
        LOG_PER_THREAD,
        "tid",
        "open a separate log file per thread; filename must contain '%d'",
    ),
    QEMULogItem(CPU_LOG_TB_VPU, "vpu", "include VPU registers in the 'cpu' logging"),
    QEMULogItem(LOG_INVALID_MEM, "invalid_mem", "log invalid memory accesses"),
)
"""The ``-d`` items, in QEMU's order (``qemu_log_items`` in ``util/log.c``)."""

_ITEMS_BY_NAME = {item.name: item.mask for item in QEMU_LOG_ITEMS}
_ALL_ITEMS_MASK = 0
for _item in QEMU_LOG_ITEMS:
    _ALL_ITEMS_MASK |= _item.mask

# qemu_loglevel: read on every qemu_log_mask call, so it is a plain global int.
_loglevel = 0
# The -D file name after %d substitution (None: standard error).
_filename: str | None = None
# Whether a log destination is open (QEMU's global_file != NULL).
_log_open = False
_file: IO[str] | None = None
# Owns every file the log opened (the -D file and the per-thread files).
_files = contextlib.ExitStack()
# Owns every file the log opened (the -D file and the per-thread files).
_files = contextlib.ExitStack()
# Bumped when the files are closed, so per-thread streams know to reopen.
_generation = 0
_per_thread = False
_thread_files = threading.local()
_lock = threading.Lock()
_trace_hook: Callable[[str], None] | None = None
_forced_flags = 0


def qemu_loglevel_mask(mask: int) -> bool:
    """Return True if any bit of ``mask`` is enabled.

    Args:
        mask: one or more ``LOG_*``/``CPU_LOG_*`` bits.

    >>> qemu_loglevel_mask(LOG_GUEST_ERROR)
    False
    """
    return (_loglevel & mask) != 0


def qemu_get_log_mask() -> int:
    """Return the enabled mask (QEMU's ``qemu_loglevel``).

    >>> qemu_set_log(LOG_UNIMP)
    >>> qemu_get_log_mask() & (LOG_UNIMP | LOG_GUEST_ERROR) == LOG_UNIMP
    True
    >>> qemu_set_log(0)
    """
    return _loglevel


def qemu_get_log_filename() -> str | None:
    """Return the log file name, or None when the log goes to standard error."""
    return _filename


def qemu_log_enabled() -> bool:
    """Return True if :func:`qemu_log` writes somewhere."""
    return _per_thread or _log_open


def qemu_log_separate() -> bool:
    """Return True if the log goes somewhere other than standard error."""
    return _per_thread or (_log_open and _filename is not None)


def _open_log(name: str) -> IO[str]:
    """Open (and truncate) a log file, as QEMU's ``fopen(filename, "w")``."""
    return open(name, "w", encoding="utf-8")


def _thread_stream() -> IO[str] | None:
    """Return the current thread's log file with ``-d tid``, opening it."""
    stream: IO[str] | None = getattr(_thread_files, "stream", None)
    if stream is not None and getattr(_thread_files, "generation", -1) == _generation:
        return stream
    if _filename is None:
        return None
    name = _filename.replace("%d", str(threading.get_native_id()), 1)
    with _lock:
        try:
            stream = _files.enter_context(_open_log(name))
        except OSError:
            return None
    _thread_files.stream = stream
    _thread_files.generation = _generation
    return stream


def _write(msg: str) -> None:
    if _per_thread:
        stream = _thread_stream()
    elif not _log_open:
        return
    else:
        stream = _file if _file is not None else sys.stderr
    if stream is None:
        return
    with _lock:
        stream.write(msg)
        stream.flush()


def qemu_log(msg: str) -> None:
    """Write ``msg`` to the log as is (no newline is added).

    Nothing is written while no log destination is open, that is while the
    mask is zero (QEMU's ``qemu_log``).

    Args:
        msg: the text to write.
    """
    _write(msg)


def qemu_log_mask(mask: int, msg: str) -> None:
    r"""Write ``msg`` as is if any bit of ``mask`` is enabled.

    Args:
        mask: the ``LOG_*``/``CPU_LOG_*`` bits this message belongs to.
        msg: the text, ending with ``"\n"`` as in C.
    """
    if _loglevel & mask:
        _write(msg)


def log_mask_ln(mask: int, msg: str) -> None:
    """Write ``msg`` and a newline if any bit of ``mask`` is enabled.

    QEMU Rust's ``log_mask_ln!``.

    Args:
        mask: the ``LOG_*``/``CPU_LOG_*`` bits this message belongs to.
        msg: the text, without a trailing newline.
    """
    if _loglevel & mask:
        _write(msg + "\n")


def _close_files() -> None:
    """Close every log file (called with _lock held)."""
    global _file, _files, _generation
    _files.close()
    _files = contextlib.ExitStack()
    _file = None
    _generation += 1


def _valid_template(filename: str | None, per_thread: bool) -> str | None:
    """Check and expand a ``-D`` template (``valid_filename_template``)."""
    if filename is not None:
        pos = filename.find("%")
        if pos >= 0:
            if filename[pos + 1 : pos + 2] != "d" or "%" in filename[pos + 2 :]:
                raise Error(
                    f"Bad logfile template: {filename}",
                    hint="A log file name may contain one '%d' (replaced by the "
                    "process id, or the thread id with -d tid) and no other '%'\n",
                )
            if per_thread:
                return filename
            return filename.replace("%d", str(os.getpid()), 1)
    if per_thread:
        raise Error("Filename template with '%d' required for 'tid'")
    return filename


def _set_log_internal(filename: str | None, changed_name: bool, flags: int) -> None:
    """Apply a new mask and possibly a new file (``qemu_set_log_internal``)."""
    global _loglevel, _filename, _log_open, _file, _per_thread
    flags |= _forced_flags
    if _per_thread:
        flags |= LOG_PER_THREAD
    elif _filename is not None:
        flags &= ~LOG_PER_THREAD
    per_thread = bool(flags & LOG_PER_THREAD)

    if changed_name:
        if _per_thread:
            raise Error("Cannot change log filename after setting 'tid'")
        newname = _valid_template(filename, per_thread)
    else:
        newname = _filename
        if per_thread:
            _valid_template(newname, True)

    need_to_open = bool(flags & ~LOG_PER_THREAD) and not per_thread
    reopen = need_to_open and (changed_name or not _log_open)
    # Open the new file before changing any state, so that a failure leaves
    # the log as it was.
    new_files = contextlib.ExitStack()
    new_file: IO[str] | None = None
    if reopen and newname is not None:
        try:
            new_file = new_files.enter_context(_open_log(newname))
        except OSError as exc:
            raise Error.from_os_error(f"Error opening logfile {newname}", exc) from None

    with _lock:
        if changed_name:
            _close_files()
            _log_open = False
            _filename = newname
        if per_thread:
            _per_thread = True
        _loglevel = flags & ~LOG_PER_THREAD
        if reopen:
            _files.enter_context(new_files)
            _file = new_file
            _log_open = True


def qemu_set_log(mask: int) -> None:
    """Enable exactly the log items in ``mask`` (QEMU's ``qemu_set_log``).

    The first non-zero mask opens the log destination: the file set with
    :func:`qemu_set_log_filename` (truncated, as QEMU opens it with ``"w"``)
    or standard error.  As in QEMU it stays open when the mask returns to 0.

    Args:
        mask: ``LOG_*``/``CPU_LOG_*`` bits, for example from
            :func:`qemu_str_to_log_mask`.

    Raises:
        Error: ``LOG_PER_THREAD`` (``-d tid``) without a ``%d`` file name
            template, or the log file cannot be opened.

    >>> qemu_set_log(LOG_GUEST_ERROR | LOG_UNIMP)
    >>> qemu_loglevel_mask(LOG_UNIMP)
    True
    >>> qemu_set_log(0)
    """
    _set_log_internal(None, False, mask)


def qemu_set_log_filename(path: str | None) -> None:
    """Send the log to ``path``, or to standard error for None (QEMU's ``-D``).

    A ``%d`` in ``path`` is replaced by the process id (by the thread id with
    ``-d tid``).  The file is opened, and truncated, when logging is enabled.

    Args:
        path: the file name template, or None for standard error.

    Raises:
        Error: the template is invalid, ``-d tid`` is already active, or the
            file cannot be opened.
    """
    _set_log_internal(path, True, _loglevel | (LOG_PER_THREAD if _per_thread else 0))


def qemu_set_log_filename_flags(path: str | None, mask: int) -> None:
    """Set the log file and the mask in one step (QEMU's ``-D`` with ``-d``).

    This is the only way to turn on ``-d tid``: a ``%d`` in ``path`` is then
    kept and replaced by each thread's id.  (Once a file name is set,
    :func:`qemu_set_log` ignores :data:`LOG_PER_THREAD`, as QEMU does.)

    Args:
        path: the file name template, or None for standard error.
        mask: ``LOG_*``/``CPU_LOG_*`` bits.

    Raises:
        Error: the template is invalid (``-d tid`` needs a ``%d``), ``-d tid``
            is already active, or the file cannot be opened.
    """
    _set_log_internal(path, True, mask)


def qemu_log_force_flags(mask: int) -> None:
    """Keep the bits of ``mask`` enabled whatever mask is set later.

    QEMU built with the ``log`` trace backend always sets :data:`LOG_TRACE`, so
    that enabled trace events reach the log; :mod:`qemu_api.trace` calls this
    when the build has that backend.

    Args:
        mask: ``LOG_*`` bits to keep enabled (0 stops forcing any).
    """
    global _forced_flags
    _forced_flags = mask
    qemu_set_log(_loglevel)


def qemu_log_set_trace_hook(hook: Callable[[str], None] | None) -> None:
    """Install the handler of ``-d trace:PATTERN`` items.

    The tracing code calls this with its ``trace_enable_events``; until then
    ``trace:`` items are unknown, as in a QEMU built without the log trace
    backend.

    Args:
        hook: called with each ``PATTERN``, or None to remove the handler.
    """
    global _trace_hook
    _trace_hook = hook


def qemu_str_to_log_mask(s: str) -> int:
    """Parse a ``-d`` item list such as ``"guest_errors,unimp"`` into a mask.

    Items are separated by commas; ``all`` selects every item; with a trace
    hook installed (:func:`qemu_log_set_trace_hook`), ``trace:PATTERN`` calls
    the hook with ``PATTERN`` and sets :data:`LOG_TRACE`.  An empty string
    gives 0 (QEMU's ``-d`` treats a zero mask as an error; ``help`` is the
    caller's to handle, with :func:`qemu_log_help`).

    Args:
        s: the item list.

    Returns:
        The mask.

    Raises:
        Error: an item is unknown; the hint is the ``-d help`` text, which
            QEMU prints in that case.

    >>> qemu_str_to_log_mask("guest_errors,unimp") == LOG_GUEST_ERROR | LOG_UNIMP
    True
    >>> qemu_str_to_log_mask("guest_error")
    Traceback (most recent call last):
      ...
    qemu_api.error.Error: Unknown log item 'guest_error' in '-d guest_error'
    """
    mask = 0
    if not s:
        return 0
    for part in s.split(","):
        if part == "all":
            mask |= _ALL_ITEMS_MASK
        elif _trace_hook is not None and part.startswith("trace:") and part[6:]:
            _trace_hook(part[6:])
            mask |= LOG_TRACE
        else:
            item_mask = _ITEMS_BY_NAME.get(part)
            if item_mask is None:
                raise Error(
                    f"Unknown log item '{part}' in '-d {s}'",
                    hint=qemu_log_help(),
                )
            mask |= item_mask
    return mask


def qemu_log_help() -> str:
    """Return the ``-d help`` text, as QEMU's ``qemu_print_log_usage`` prints it.

    >>> print(qemu_log_help().splitlines()[0])
    Log items (comma separated):
    >>> print(qemu_log_help().splitlines()[1])
    out_asm         show generated host assembly code for each compiled TB
    """
    lines = ["Log items (comma separated):\n"]
    lines.extend(f"{item.name:<15} {item.help}\n" for item in QEMU_LOG_ITEMS)
    if _trace_hook is not None:
        lines.append("trace:PATTERN   enable trace events\n")
        lines.append('\nUse "-d trace:help" to get a list of trace events.\n\n')
    return "".join(lines)


def qemu_log_reset() -> None:
    """Return the log to its startup state: mask 0, standard error, no ``tid``.

    Closes the log file.  For tests and for a new machine in the same process.
    The trace hook and the flags of :func:`qemu_log_force_flags` stay.
    """
    global _loglevel, _filename, _log_open, _per_thread
    with _lock:
        _close_files()
        _loglevel = 0
        _filename = None
        _log_open = False
        _per_thread = False
    if _forced_flags:
        qemu_set_log(0)
