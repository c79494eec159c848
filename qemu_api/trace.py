"""Trace events: registration, dynamic state, backends and runtime control.

This module models QEMU's ``trace/control.h``, ``trace/control.c``, ``trace/simple.c``
and the ``log`` backend of ``scripts/tracetool``. Each package has a QEMU-format
``trace-events`` file; ``scripts/tracetool.py`` turns it at build time into a typed
module ``qemu_trace.<group>`` whose ``trace_<event>()`` functions call into this module
only when the event is enabled, so a disabled tracepoint costs a call and one test.

Backends are chosen at configure time (``--enable-trace-backends=log,simple,nop``):

- ``log`` writes QEMU's line format, ``pid@seconds.micros:name`` and the event's
  formatted arguments, through :func:`qemu_api.log.qemu_log` (stderr or ``-D FILE``);
- ``simple`` writes QEMU's simpletrace binary format (version 4) to ``trace-<pid>``
  or the ``-trace file=`` file, which ``scripts/simpletrace.py`` reads back;
- ``nop`` compiles every tracepoint to an empty function.

Events are switched on at run time by glob patterns (``-trace``, ``-d trace:``,
``trace-event-set-state``):

>>> ev = TraceEvent(
...     "demo_event",
...     "value %d",
...     "value %d",
...     (("int", "value"),),
...     group="demo",
...     location="demo:1",
...     static_state=True,
... )
>>> register_group("demo", (ev,))
>>> ev.state
False
>>> trace_enable_events("demo_*")
>>> ev.state
True
>>> trace_enable_events("-demo_event")
>>> ev.state
False
"""

from __future__ import annotations

import atexit
import os
import re
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO, Final, final

from qemu_api._compat import override
from qemu_api.error import Error, warn_report
from qemu_api.log import (
    LOG_TRACE,
    qemu_log,
    qemu_log_force_flags,
    qemu_log_set_trace_hook,
    qemu_set_log_filename,
)
from qemu_api.option import split_opts

__all__ = [
    "BACKENDS",
    "TraceEvent",
    "add_state_listener",
    "is_help_option",
    "qmp_trace_event_get_state",
    "qmp_trace_event_set_state",
    "register_group",
    "set_configured_backends",
    "st_flush_trace_buffer",
    "st_set_trace_file",
    "st_set_trace_file_enabled",
    "trace_backends",
    "trace_enable_events",
    "trace_event_alias",
    "trace_event_is_pattern",
    "trace_event_name",
    "trace_event_of",
    "trace_events",
    "trace_init_backends",
    "trace_init_events",
    "trace_init_file",
    "trace_list_events",
    "trace_opt_parse",
    "trace_reset",
]

BACKENDS: Final = ("log", "simple", "nop")
"""The trace backends a build can select."""

# simpletrace format, as trace/simple.c (version 4) writes it.
HEADER_EVENT_ID: Final = 0xFFFFFFFFFFFFFFFF
HEADER_MAGIC: Final = 0xF2B177CB0AA429B4
HEADER_VERSION: Final = 4
DROPPED_EVENT_ID: Final = 0xFFFFFFFFFFFFFFFE
RECORD_TYPE_MAPPING: Final = 0
RECORD_TYPE_EVENT: Final = 1
_U64_MASK: Final = (1 << 64) - 1


@final
class TraceEvent:
    """One trace event of a ``trace-events`` file.

    Generated modules create these; device code calls the generated
    ``trace_<name>()`` functions instead.

    Args:
        name: the event name, unique in the whole build.
        fmt: the C format string, as written in ``trace-events``.
        pyfmt: the same format as a Python ``%`` format.
        args: ``(C type, name)`` of each argument.
        group: the trace-events group (package) it belongs to.
        location: ``file:line`` of its declaration.
        static_state: False for events declared ``disable`` (never traceable).

    >>> ev = TraceEvent(
    ...     "x_read",
    ...     "addr 0x%x",
    ...     "addr 0x%x",
    ...     (("uint64_t", "addr"),),
    ...     group="x",
    ...     location="x:1",
    ...     static_state=True,
    ... )
    >>> ev.format_args((0x10,))
    'addr 0x10'
    """

    __slots__ = (
        "_ptr_index",
        "args",
        "fmt",
        "group",
        "id",
        "location",
        "name",
        "pyfmt",
        "state",
        "static_state",
    )

    def __init__(
        self,
        name: str,
        fmt: str,
        pyfmt: str,
        args: tuple[tuple[str, str], ...],
        *,
        group: str,
        location: str,
        static_state: bool,
    ) -> None:
        self.name = name
        self.fmt = fmt
        self.pyfmt = pyfmt
        self.args = args
        self.group = group
        self.location = location
        self.static_state = static_state
        self.state = False
        self.id = -1
        self._ptr_index = tuple(
            i
            for i, (ctype, _) in enumerate(args)
            if ctype.rstrip().endswith("*") and "char" not in ctype
        )

    @override
    def __repr__(self) -> str:
        return f"<TraceEvent {self.name} {'on' if self.state else 'off'}>"

    def set_state(self, enable: bool) -> None:
        """Enable or disable the event (QEMU's ``trace_event_set_state_dynamic``).

        Raises:
            Error: the event is declared ``disable`` and cannot be traced.
        """
        if enable and not self.static_state:
            raise Error(
                f'cannot set dynamic tracing state for static event "{self.name}"'
            )
        self.state = enable
        _states_changed()

    def _values(self, values: tuple[object, ...]) -> tuple[object, ...]:
        if not self._ptr_index:
            return values
        out = list(values)
        for i in self._ptr_index:
            v = out[i]
            out[i] = v if isinstance(v, int) else id(v)
        return tuple(out)

    def format_args(self, values: tuple[object, ...]) -> str:
        """Return the event's format applied to *values*, as the log backend does."""
        return self.pyfmt % self._values(values)

    def emit(self, values: tuple[object, ...]) -> None:
        """Send one occurrence to every configured backend (the event is enabled)."""
        for backend in _emitters:
            backend(self, values)


_events: dict[str, TraceEvent] = {}
_groups: dict[str, tuple[TraceEvent, ...]] = {}
_patterns: list[str] = []
_aliases: dict[str, str] = {}
_configured: tuple[str, ...] = ("log",)
_emitters: list[Callable[[TraceEvent, tuple[object, ...]], None]] = []
_trace_opts_file: str | None = None
_init_on_startup = False
_state_listeners: list[Callable[[], None]] = []


def add_state_listener(listener: Callable[[], None]) -> None:
    """Call *listener()* after any change of event states.

    Code whose fast path must not pay for a disabled event (the MMIO dispatch)
    checks its events here and switches to a traced path only while they are on.
    """
    _state_listeners.append(listener)


def _states_changed() -> None:
    for listener in list(_state_listeners):
        listener()


def _log_backend(ev: TraceEvent, values: tuple[object, ...]) -> None:
    now = time.time()
    sec = int(now)
    usec = int((now - sec) * 1_000_000)
    qemu_log(
        f"{threading.get_native_id()}@{sec}.{usec:06d}:{ev.name} "
        f"{ev.format_args(values)}\n"
    )


class _SimpleTrace:
    """The simple backend's writer (``trace/simple.c``)."""

    def __init__(self) -> None:
        self.filename: str | None = None
        self.fp: BinaryIO | None = None
        self.mapped: set[int] = set()

    def open(self) -> None:
        if self.fp is not None or self.filename is None:
            return
        try:
            fd = os.open(self.filename, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            fp = os.fdopen(fd, "wb")
        except OSError as e:
            warn_report(f"could not open trace file '{self.filename}': {e.strerror}")
            return
        fp.write(struct.pack("=QQQ", HEADER_EVENT_ID, HEADER_MAGIC, HEADER_VERSION))
        self.fp = fp
        self.mapped = set()
        for ev in _events.values():
            self._map(ev)

    def close(self) -> None:
        if self.fp is not None:
            self.fp.close()
            self.fp = None

    def _map(self, ev: TraceEvent) -> None:
        assert self.fp is not None
        name = ev.name.encode()
        self.fp.write(struct.pack("=QQI", RECORD_TYPE_MAPPING, ev.id, len(name)) + name)
        self.mapped.add(ev.id)

    def write(self, ev: TraceEvent, values: tuple[object, ...]) -> None:
        fp = self.fp
        if fp is None:
            return
        if ev.id not in self.mapped:
            self._map(ev)
        payload = bytearray()
        for (ctype, _), v in zip(ev.args, ev._values(values), strict=True):
            if isinstance(v, str) and "char" in ctype:
                data = v.encode()
                payload += struct.pack("=I", len(data)) + data
            else:
                n = v if isinstance(v, int) else 0
                payload += struct.pack("=Q", n & _U64_MASK)
        header = struct.pack(
            "=QQQII",
            RECORD_TYPE_EVENT,
            ev.id,
            time.monotonic_ns(),
            24 + len(payload),
            os.getpid() & 0xFFFFFFFF,
        )
        fp.write(header + payload)


_simple = _SimpleTrace()


def _simple_backend(ev: TraceEvent, values: tuple[object, ...]) -> None:
    _simple.write(ev, values)


def set_configured_backends(backends: tuple[str, ...]) -> None:
    """Record the backends this build was configured with.

    The generated ``qemu_trace`` package calls this when imported; without it the
    ``log`` backend is used.

    Raises:
        Error: a name is not one of :data:`BACKENDS`.
    """
    global _configured
    bad = [b for b in backends if b not in BACKENDS]
    if bad:
        raise Error(
            f"unknown trace backend '{bad[0]}'", hint=f"valid: {', '.join(BACKENDS)}"
        )
    _configured = tuple(backends)
    _emitters.clear()
    if "log" in _configured:
        _emitters.append(_log_backend)
    # As QEMU with the log backend, keep LOG_TRACE on so traces reach the log.
    qemu_log_force_flags(LOG_TRACE if "log" in _configured else 0)
    if "simple" in _configured:
        _emitters.append(_simple_backend)


def trace_backends() -> tuple[str, ...]:
    """Return the configured backends.

    >>> "log" in trace_backends() or "simple" in trace_backends() or True
    True
    """
    return _configured


def register_group(group: str, events: tuple[TraceEvent, ...]) -> None:
    """Register a generated module's events (``trace_event_register_group``).

    Events get their IDs in registration order, and the patterns enabled so far
    apply to them, so ``-trace`` works for modules imported later.

    Raises:
        Error: an event name is already registered by another group.
    """
    if group in _groups:
        if _groups[group] == events:
            return
        raise Error(f"trace event group '{group}' is registered twice")
    for ev in events:
        other = _events.get(ev.name)
        if other is not None:
            raise Error(
                f"trace event '{ev.name}' of group '{group}' is already defined "
                f"at {other.location}"
            )
    _groups[group] = events
    for ev in events:
        ev.id = len(_events)
        _events[ev.name] = ev
        if _simple.fp is not None:
            _simple._map(ev)
    for line in _patterns:
        _apply(line, events, warn=False)
    if _patterns:
        _states_changed()


def _pattern_re(pattern: str) -> re.Pattern[str]:
    # g_pattern_match_simple: '*' and '?' only.
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def trace_event_is_pattern(s: str) -> bool:
    """Return whether *s* is a glob pattern rather than an event name.

    >>> trace_event_is_pattern("pl011_*"), trace_event_is_pattern("pl011_read")
    (True, False)
    """
    return "*" in s or "?" in s


def trace_event_alias(alias: str, name: str) -> None:
    """Let ``-trace`` accept *alias* for the event *name*.

    For events QEMU renamed after the version pyqemu's interface follows
    (7.2): a device keeps the current name and declares the old one, so a
    user may type either. An alias names one event; patterns match it too
    (``-trace pl011_put*`` enables what ``pl011_put_fifo`` names).

    >>> trace_event_alias("old_name", "new_name")
    >>> _aliases["old_name"]
    'new_name'
    >>> del _aliases["old_name"]
    """
    _aliases[alias] = name


def trace_event_name(name: str) -> TraceEvent | None:
    """Return the event called *name* (or an alias of it), or None."""
    ev = _events.get(name)
    if ev is None and name in _aliases:
        ev = _events.get(_aliases[name])
    return ev


def trace_event_of(tracepoint: Callable[..., object]) -> TraceEvent | None:
    """Return the event that a generated ``trace_<name>()`` function fires, or None.

    Code that calls a tracepoint on a fast path can test the event's
    :attr:`~TraceEvent.state` itself and skip the call while it is off
    (:func:`add_state_listener` tells when states change).  Anything that is
    not a generated tracepoint gives None: call it every time.

    >>> from qemu_trace.qemu_api import trace_memory_region_ops_read
    >>> trace_event_of(trace_memory_region_ops_read)
    <TraceEvent memory_region_ops_read off>
    >>> trace_event_of(print) is None
    True
    """
    module = getattr(tracepoint, "__module__", None) or ""
    name = getattr(tracepoint, "__name__", "")
    if not module.startswith("qemu_trace.") or not name.startswith("trace_"):
        return None
    ev = _events.get(name.removeprefix("trace_"))
    return (
        ev
        if ev is not None and ev.group == module.removeprefix("qemu_trace.")
        else None
    )


def trace_events(pattern: str | None = None) -> Iterator[TraceEvent]:
    """Iterate over the registered events, optionally those matching *pattern*."""
    if pattern is None:
        yield from _events.values()
        return
    rx = _pattern_re(pattern)
    for ev in _events.values():
        if rx.match(ev.name):
            yield ev


def trace_list_events() -> list[str]:
    """Return the names of every registered event (``-trace help``)."""
    return list(_events)


def is_help_option(s: str) -> bool:
    """Return whether *s* asks for help, as QEMU's ``is_help_option``.

    >>> is_help_option("help"), is_help_option("?"), is_help_option("x")
    (True, True, False)
    """
    return s in ("help", "?")


def _apply(line: str, events: tuple[TraceEvent, ...] | None, *, warn: bool) -> None:
    enable = not line.startswith("-")
    name = line if enable else line[1:]
    is_pattern = trace_event_is_pattern(name)
    rx = _pattern_re(name)
    pool = events if events is not None else tuple(_events.values())
    aliased = {_aliases[a] for a in _aliases if rx.match(a)}
    for ev in pool:
        if not rx.match(ev.name) and ev.name not in aliased:
            continue
        if not ev.static_state:
            if not is_pattern:
                if warn:
                    warn_report(f"trace event '{name}' is not traceable")
                return
            continue
        ev.state = enable
        if not is_pattern:
            return
    if not is_pattern and warn:
        warn_report(f"trace event '{name}' does not exist")


def trace_enable_events(line: str) -> None:
    """Enable (or with a leading ``-``, disable) events by name or glob pattern.

    This is what ``-trace PATTERN``, ``-d trace:PATTERN`` and each line of a
    ``-trace events=FILE`` file do. ``help`` prints the list of events. An
    unknown event name gets a warning, as in QEMU; the pattern also applies to
    event groups registered later.
    """
    if is_help_option(line):
        sys.stdout.write("".join(f"{n}\n" for n in _events))
        return
    _patterns.append(line)
    _apply(line, None, warn=True)
    _states_changed()


def trace_init_events(fname: str) -> None:
    """Apply every line of the events file *fname* (``-trace events=FILE``).

    Blank lines and lines starting with ``#`` are skipped.

    Raises:
        Error: the file cannot be read.
    """
    try:
        with open(fname) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise Error(
            f"could not read trace events file '{fname}': {e.strerror}"
        ) from None
    for line in lines:
        if line and not line.startswith("#"):
            trace_enable_events(line)


def trace_opt_parse(optarg: str) -> None:
    """Handle one ``-trace`` option: ``[enable=]PATTERN,events=FILE,file=FILE``.

    Raises:
        Error: an unknown parameter, or an unreadable events file.

    >>> trace_opt_parse("bogus=1")
    Traceback (most recent call last):
    ...
    qemu_api.error.Error: Invalid parameter 'bogus'
    """
    global _trace_opts_file, _init_on_startup
    opts: dict[str, str] = {}
    for i, part in enumerate(split_opts(optarg)):
        key, eq, value = part.partition("=")
        if not eq:
            if i != 0:
                raise Error(f"Invalid parameter '{key}'")
            key, value = "enable", part
        if key not in ("enable", "events", "file"):
            raise Error(f"Invalid parameter '{key}'")
        opts[key] = value
    if "events" in opts:
        # read before changing anything, so a bad file changes nothing
        trace_init_events_lines = _read_events_file(opts["events"])
    else:
        trace_init_events_lines = []
    if "enable" in opts:
        trace_enable_events(opts["enable"])
    for line in trace_init_events_lines:
        trace_enable_events(line)
    _init_on_startup = True
    _trace_opts_file = opts.get("file")


def _read_events_file(fname: str) -> list[str]:
    try:
        with open(fname) as f:
            return [ln for ln in f.read().splitlines() if ln and not ln.startswith("#")]
    except OSError as e:
        raise Error(
            f"could not read trace events file '{fname}': {e.strerror}"
        ) from None


def trace_init_backends() -> None:
    """Start the configured backends (``trace_init_backends``).

    With the ``simple`` backend this opens ``trace-<pid>`` unless a ``-trace
    file=`` was given, as QEMU does at startup.
    """
    if "simple" in _configured and _simple.filename is None:
        _simple.filename = f"trace-{os.getpid()}"


def trace_init_file() -> None:
    """Apply ``-trace file=FILE`` (``trace_init_file``).

    With the simple backend the file receives the binary trace; with only the
    log backend it becomes the log file, as ``-D`` does.
    """
    if "simple" in _configured:
        st_set_trace_file(_trace_opts_file)
        if _init_on_startup:
            st_set_trace_file_enabled(True)
    elif "log" in _configured and _trace_opts_file:
        qemu_set_log_filename(_trace_opts_file)
    elif _trace_opts_file:
        raise Error(
            "--trace file=...: option not supported by the selected tracing backends"
        )


def st_set_trace_file(path: str | None) -> None:
    """Set the simple backend's file (None: ``trace-<pid>``) and start writing."""
    st_set_trace_file_enabled(False)
    _simple.filename = path if path is not None else f"trace-{os.getpid()}"
    st_set_trace_file_enabled(True)


def st_set_trace_file_enabled(enable: bool) -> None:
    """Start or stop writing the simple backend's file."""
    if enable:
        _simple.open()
    else:
        _simple.close()


def st_flush_trace_buffer() -> None:
    """Write out the simple backend's buffered records."""
    if _simple.fp is not None:
        _simple.fp.flush()


def qmp_trace_event_get_state(name: str) -> list[dict[str, str]]:
    """QMP ``trace-event-get-state``: the state of the events matching *name*.

    Returns ``[{"name": ..., "state": "enabled" | "disabled" | "unavailable"}]``.

    Raises:
        Error: *name* is not a pattern and no such event exists.
    """
    matched = list(trace_events(name))
    if not matched and not trace_event_is_pattern(name):
        raise Error(f'unknown event "{name}"')
    return [
        {
            "name": ev.name,
            "state": (
                "unavailable"
                if not ev.static_state
                else "enabled"
                if ev.state
                else "disabled"
            ),
        }
        for ev in matched
    ]


def qmp_trace_event_set_state(
    name: str, enable: bool, ignore_unavailable: bool = False
) -> None:
    """QMP ``trace-event-set-state``: enable or disable the events matching *name*.

    Checks every matching event first, so an error changes nothing.

    Raises:
        Error: no such event, or a static (``disable``) event is included and
            *ignore_unavailable* is false.
    """
    matched = list(trace_events(name))
    if not matched and not trace_event_is_pattern(name):
        raise Error(f'unknown event "{name}"')
    if not ignore_unavailable:
        for ev in matched:
            if not ev.static_state:
                raise Error(
                    f'cannot set dynamic tracing state for static event "{ev.name}"'
                )
    for ev in matched:
        if ev.static_state:
            ev.state = enable
    _states_changed()


def trace_reset() -> None:
    """Disable every event and forget enabled patterns (for a new machine or test)."""
    global _trace_opts_file, _init_on_startup
    for ev in _events.values():
        ev.state = False
    _patterns.clear()
    _states_changed()
    _trace_opts_file = None
    _init_on_startup = False
    _simple.close()
    _simple.filename = None


set_configured_backends(_configured)
qemu_log_set_trace_hook(trace_enable_events)
atexit.register(st_flush_trace_buffer)
