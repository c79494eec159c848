"""The main loop: one thread multiplexing file descriptors, bottom halves and timers.

This models QEMU's ``util/main-loop.c`` and ``util/async.c`` on Python's
:mod:`selectors`. Chardev sockets, the QMP monitors and the qtest socket register
read/write handlers with :meth:`MainLoop.set_fd_handler`; work to do "soon" is a
bottom half (:meth:`MainLoop.bh_schedule`). Every callback runs with the BQL held;
the loop drops the lock only while it sleeps in ``select``, as QEMU does.

The virtual clock belongs to the accelerator: under ``-accel qtest`` it moves only
on ``clock_step``/``clock_set``; otherwise, while the machine runs, the loop moves
it with host time (:attr:`MainLoop.virtual_follows_host`).

An exception escaping a callback is a bug in a model: it goes to the loop's error
handler (the machine then stops in ``internal-error``), and the loop goes on.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import final

from qemu_api.bql import bql_lock, bql_locked, bql_unlock
from qemu_api.timer import (
    CLOCK_HOST,
    CLOCK_REALTIME,
    CLOCK_VIRTUAL,
    CLOCK_VIRTUAL_RT,
    QEMUClockType,
    clock_set,
    qemu_clock_deadline_ns,
    qemu_clock_get_ns,
    qemu_clock_run_timers,
    qemu_clock_sync_host_bql_held,
    virtual_clock_follow_host,
)

__all__ = ["ErrorHandler", "FdHandler", "MainLoop"]

FdHandler = Callable[[], None]
"""A read or write handler: called when the descriptor is ready."""

ErrorHandler = Callable[[str, BaseException], None]
"""Receives ``(what was running, the exception)`` for a failed callback."""

_MAX_SLEEP_NS = 1_000_000_000


@final
class MainLoop:
    """One event loop; the emulator has exactly one.

    >>> from qemu_api.bql import bql_locked
    >>> loop = MainLoop()
    >>> ran = []
    >>> loop.bh_schedule(lambda: ran.append(bql_locked()))
    >>> loop.wait(0)
    >>> ran
    [True]
    """

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._handlers: dict[int, tuple[FdHandler | None, FdHandler | None, str]] = {}
        self._bhs: deque[tuple[Callable[[], None], str]] = deque()
        self._error_handler: ErrorHandler | None = None
        self.virtual_follows_host = False
        """Move the virtual clock with host time while the machine runs."""
        self.machine_running: Callable[[], bool] = lambda: False
        """Tells whether the machine runs (so that virtual time may move)."""
        self._host_base: int | None = None
        # While the loop sleeps: when it wakes up anyway (host monotonic ns),
        # or None (not sleeping, or no timeout).
        self._wake_at: int | None = None
        self._thread = threading.get_ident()
        # QEMU's qemu_notify_event: other threads (the vCPU) wake the loop by
        # writing a byte to this pair.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r.fileno(), selectors.EVENT_READ)

    def notify(self) -> None:
        """Wake the loop from another thread (QEMU's ``qemu_notify_event``).

        Safe to call from any thread, with or without the BQL: the loop's next
        ``select`` returns at once and it recomputes its timeout, runs its
        bottom halves and checks its exit condition.
        """
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    def timers_changed(self, clock: QEMUClockType) -> None:
        """A timer became the first of ``clock``: wake the loop if it must.

        The notifier of :func:`~qemu_api.timer.qemu_clock_set_notify` (BQL
        held).  A virtual-clock timer that follows host time does not wake
        the loop when it expires after the loop's planned wakeup: the loop
        then finds it when it wakes.  So a device that moves its timer from
        the vCPU thread, which runs due timers itself before each device
        access (:meth:`vcpu_clock_sync`), does not cost a wakeup each time.
        """
        wake = self._wake_at
        if wake is None:
            return  # awake: it looks at the timers before it sleeps again
        base = self._host_base
        if base is not None and (clock is CLOCK_VIRTUAL or clock is CLOCK_VIRTUAL_RT):
            deadline = qemu_clock_deadline_ns(CLOCK_VIRTUAL)
            if deadline >= 0 and base + qemu_clock_get_ns(clock) + deadline >= wake:
                return
        self.notify()

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while self._wake_r.recv(512):
                pass

    def virtual_clock_now(self) -> int:
        """Return the virtual time now, in ns, without moving the clock.

        While the virtual clock follows host time (a running machine outside
        qtest and icount) this is where the clock *is* in host terms, which
        the next loop iteration catches up to; otherwise it is the clock's
        value. Any thread may call it: the CPU reads its counters from it.
        """
        base = self._host_base
        if base is not None and self.virtual_follows_host:
            return max(time.monotonic_ns() - base, qemu_clock_get_ns(CLOCK_VIRTUAL))
        return qemu_clock_get_ns(CLOCK_VIRTUAL)

    @property
    def vcpu_clock_sync(self) -> Callable[[], None]:
        """Bring the virtual clock to host time and run the timers due (BQL held).

        The vCPU thread calls this before each device access while the clock
        follows host time, so the device reads the current virtual time and
        finds its due timers run, as on QEMU, where the virtual clock reads
        the host's and a vCPU that holds the BQL needs nobody else to run
        them.  Without it a due timer waits for the main loop's next wakeup
        and the BQL handoff to it.  Does nothing while the clock does not
        follow host time (qtest, icount) or the machine is stopped.  Never
        raises: a failing timer callback goes to the error handler, as in
        the loop.

        It is :func:`~qemu_api.timer.qemu_clock_sync_host_bql_held` itself,
        which the loop points at host time while it follows it: one call per
        access, made by the engine's device-access callback right after it
        takes the BQL.
        """
        return qemu_clock_sync_host_bql_held

    def _set_host_base(self, base: int | None) -> None:
        self._host_base = base
        virtual_clock_follow_host(base, None if base is None else self._timer_failed)

    def _timer_failed(self, exc: BaseException) -> None:
        handler = self._error_handler
        if handler is None:
            raise exc
        handler("virtual clock timers", exc)

    def set_error_handler(self, handler: ErrorHandler | None) -> None:
        """Install the receiver of exceptions escaping callbacks."""
        self._error_handler = handler

    def set_fd_handler(
        self,
        fd: int,
        read: FdHandler | None,
        write: FdHandler | None = None,
        name: str = "",
    ) -> None:
        """Watch *fd*: *read*/*write* run when it is readable/writable.

        Passing None for both removes the descriptor (``qemu_set_fd_handler``).
        """
        events = (selectors.EVENT_READ if read else 0) | (
            selectors.EVENT_WRITE if write else 0
        )
        if fd in self._handlers:
            if events:
                self._sel.modify(fd, events)
            else:
                self._sel.unregister(fd)
        elif events:
            self._sel.register(fd, events)
        if events:
            self._handlers[fd] = (read, write, name or f"fd {fd}")
        else:
            self._handlers.pop(fd, None)
        if threading.get_ident() != self._thread:
            self.notify()

    def bh_schedule(self, callback: Callable[[], None], name: str = "") -> None:
        """Run *callback* at the next iteration (a one-shot bottom half)."""
        self._bhs.append((callback, name or getattr(callback, "__qualname__", "bh")))
        if threading.get_ident() != self._thread:
            self.notify()

    def _call(self, callback: Callable[[], object], what: str) -> None:
        try:
            callback()
        except Exception as exc:
            if self._error_handler is None:
                raise
            self._error_handler(what, exc)

    def _sync_virtual_clock(self) -> None:
        """Move the virtual clock with host time while the machine runs."""
        if not (self.virtual_follows_host and self.machine_running()):
            if self._host_base is not None:
                self._set_host_base(None)
            return
        now = time.monotonic_ns()
        if self._host_base is None:
            self._set_host_base(now - qemu_clock_get_ns(CLOCK_VIRTUAL))
            return
        target = now - self._host_base
        if target > qemu_clock_get_ns(CLOCK_VIRTUAL):
            self._call(lambda: clock_set(target), "virtual clock timers")

    def _timeout_ns(self, limit_ns: int) -> int:
        timeout = limit_ns if limit_ns >= 0 else _MAX_SLEEP_NS
        if self._bhs:
            return 0
        clocks = [CLOCK_REALTIME, CLOCK_HOST]
        if self.virtual_follows_host and self.machine_running():
            clocks.append(CLOCK_VIRTUAL)
        for clock in clocks:
            d = qemu_clock_deadline_ns(clock)
            if d >= 0:
                timeout = min(timeout, d)
        return max(timeout, 0)

    def wait(self, limit_ns: int = -1) -> None:
        """Run one iteration: sleep at most *limit_ns* (-1: until something happens).

        The caller holds the BQL; it is released during the sleep.
        """
        held = bql_locked()
        if not held:
            bql_lock()
        try:
            self._sync_virtual_clock()
            timeout = self._timeout_ns(limit_ns)
            self._wake_at = time.monotonic_ns() + timeout
            bql_unlock()
            try:
                ready = self._sel.select(timeout / 1e9)
            finally:
                # Awake: the next timeout is computed with the BQL held, so
                # a timer armed from now on needs no wakeup.
                self._wake_at = None
                bql_lock()
            for key, mask in ready:
                if key.fd == self._wake_r.fileno():
                    self._drain_wakeups()
                    continue
                entry = self._handlers.get(key.fd)
                if entry is None:
                    continue
                read, _, name = entry
                if mask & selectors.EVENT_READ and read is not None:
                    self._call(read, name)
                entry = self._handlers.get(key.fd)
                if entry is not None and mask & selectors.EVENT_WRITE and entry[1]:
                    self._call(entry[1], name)
            for _ in range(len(self._bhs)):
                callback, name = self._bhs.popleft()
                self._call(callback, name)
            self._call(lambda: qemu_clock_run_timers(CLOCK_REALTIME), "timers")
            self._call(lambda: qemu_clock_run_timers(CLOCK_HOST), "timers")
            self._sync_virtual_clock()
        finally:
            if not held:
                bql_unlock()

    def run(self, until: Callable[[], bool]) -> None:
        """Iterate until *until()* returns True (checked after each iteration)."""
        while not until():
            self.wait()

    def close(self) -> None:
        """Stop watching every descriptor (and stop following host time)."""
        if self._host_base is not None:
            self._set_host_base(None)
        for fd in list(self._handlers):
            self.set_fd_handler(fd, None, None)
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()
