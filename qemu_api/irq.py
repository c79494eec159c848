"""Interrupt lines: ``qemu_irq`` and the device-side :class:`InterruptSource`.

This module mirrors QEMU's ``include/hw/irq.h`` and ``hw/core/irq.c``, shaped
like QEMU Rust's ``irq.rs``:

- :class:`IRQState` is the *input* end of a line (QEMU's ``qemu_irq``): a QOM
  object (``TYPE_IRQ``) holding a handler and the line number ``n`` passed to
  it. Whoever owns the input (an interrupt controller, a GPIO input of a
  device) creates it with :func:`qemu_allocate_irq`.
- :class:`InterruptSource` is the *output* end that a device drives. It holds
  the connected :class:`IRQState` (or None) in a
  :class:`~qemu_api.bql.BqlCell`; the board connects it, through
  ``SysBusDevice.connect_irq`` or ``DeviceState.connect_gpio_out``. Driving an
  unconnected source does nothing, as ``qemu_set_irq(NULL, level)``.

``raise`` is a Python keyword, so the "set the line to 1" method is spelled
:meth:`IRQState.raise_` / :meth:`InterruptSource.raise_` (PEP 8's trailing
underscore); the C-style :func:`qemu_irq_raise` exists as well.

Changing a level is the hot path of a device model: it is one cell read and
one call, with nothing allocated.

>>> seen = []
>>> line = qemu_allocate_irq(lambda n, level: seen.append((n, level)), 3)
>>> out = InterruptSource()
>>> out.raise_()  # not connected: nothing happens
>>> out.connect(line)
>>> out.raise_()
>>> out.pulse()
>>> seen
[(3, 1), (3, 1), (3, 0)]

A line's handler calls into the object that owns the input, so the line dies
with it: a GPIO input is a QOM child of its device, and a line from
:func:`qemu_allocate_irq` is owned by the object whose method the handler is
(or by ``owner=``). Once the owner is finalized, level changes on the line
reach nobody, exactly as on a line whose handler ignores them; whoever drives
it keeps working:

>>> from qemu_api.qom import Container
>>> ctl = Container()  # stands in for an interrupt controller
>>> line = qemu_allocate_irq(lambda n, level: seen.append(("ctl", level)), 0, owner=ctl)
>>> out.connect(line)
>>> out.raise_()
>>> root = Container()
>>> _ = root.property_add_child("ctl", ctl)
>>> ctl.unparent()
>>> out.lower()  # the controller is gone: nothing is delivered
>>> seen[-1]
('ctl', 1)

The IRQ splitter and OR gate (``TYPE_SPLIT_IRQ``, ``TYPE_OR_IRQ``) are
devices, so they live in :mod:`qemu_api.qdev` (``SplitIRQ``, ``OrIRQ``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Final, TypeAlias, final

from qemu_api.bql import BqlCell
from qemu_api.qom import Object, callback_owner, override
from qemu_trace.qemu_api import trace_qemu_irq_set

__all__ = [
    "TYPE_IRQ",
    "IRQHandler",
    "IRQInterceptHandler",
    "IRQState",
    "InterruptSource",
    "qemu_allocate_irq",
    "qemu_allocate_irqs",
    "qemu_irq_intercept_in",
    "qemu_irq_lower",
    "qemu_irq_pulse",
    "qemu_irq_raise",
    "qemu_set_irq",
]

TYPE_IRQ: Final = "irq"
"""QOM type name of :class:`IRQState`."""

IRQHandler: TypeAlias = Callable[[int, int], None]
"""An interrupt input handler: ``handler(n, level)``.

``n`` is the line number given to :func:`qemu_allocate_irq`; ``level`` is
the new level (0 or 1 for ordinary lines).
"""


IRQInterceptHandler: TypeAlias = Callable[["IRQState", int, int], None]
"""An interceptor of an input line: ``handler(original, n, level)``.

``original`` is a line that carries the intercepted line's former handler:
``original.set(level)`` delivers the change as if nothing intercepted it.
"""


def _no_handler(n: int, level: int) -> None:
    """Handler of a line that nobody listens to."""


@final
class IRQState(Object, type_name=TYPE_IRQ):
    """The input end of an interrupt line (QEMU ``qemu_irq``).

    Create it with :func:`qemu_allocate_irq`; a bare ``IRQState()`` ignores
    every level change. When its owner is finalized (or the line itself, as a
    QOM child of a device), the handler is dropped: the line then ignores
    every level change, as a bare one does.
    """

    @override
    def _qom_instance_init(self) -> None:
        """Start as a line that ignores every level change."""
        self._handler: IRQHandler = _no_handler
        self._n = 0

    @override
    def instance_finalize(self) -> None:
        """Drop the handler: the line delivers nothing any more."""
        self._handler = _no_handler

    @property
    def n(self) -> int:
        """The line number passed to the handler."""
        return self._n

    def set(self, level: int) -> None:
        """Set the line to ``level`` (``qemu_set_irq``)."""
        trace_qemu_irq_set(self, self._n, level)
        self._handler(self._n, level)

    def raise_(self) -> None:
        """Set the line to 1 (``qemu_irq_raise``)."""
        self.set(1)

    def lower(self) -> None:
        """Set the line to 0 (``qemu_irq_lower``)."""
        self.set(0)

    def pulse(self) -> None:
        """Set the line to 1 then to 0 (``qemu_irq_pulse``)."""
        self.set(1)
        self.set(0)

    def owner_quiesce(self) -> None:
        """Keep delivering while the owner is unrealized (as QEMU does)."""

    def owner_release(self) -> None:
        """The owner is gone: drop the handler; the line delivers nothing."""
        self._handler = _no_handler


def _new_irq(handler: IRQHandler, n: int) -> IRQState:
    irq = IRQState()
    irq._handler = handler
    irq._n = n
    return irq


def qemu_allocate_irq(
    handler: IRQHandler, n: int, *, owner: Object | None = None
) -> IRQState:
    """Create the input end of a line, calling ``handler(n, level)``.

    Args:
        handler: called with the line number and the new level.
        n: the line number.
        owner: the object the handler calls into; by default the QOM object
            whose method ``handler`` is (:func:`~qemu_api.qom.callback_owner`).
            When it is finalized the line stops delivering.

    Raises:
        Error: the owner is already finalized.

    >>> qemu_allocate_irq(lambda n, level: None, 5).n
    5
    """
    irq = _new_irq(handler, n)
    if owner is None:
        owner = callback_owner(handler)
    if owner is not None:
        owner.own_resource(irq)
    return irq


def qemu_allocate_irqs(
    handler: IRQHandler, count: int, *, owner: Object | None = None
) -> list[IRQState]:
    """Create ``count`` lines numbered 0 to ``count - 1`` sharing ``handler``.

    ``owner`` is as for :func:`qemu_allocate_irq`.

    >>> [irq.n for irq in qemu_allocate_irqs(lambda n, level: None, 3)]
    [0, 1, 2]
    """
    return [qemu_allocate_irq(handler, i, owner=owner) for i in range(count)]


def qemu_irq_intercept_in(
    gpio_in: Sequence[IRQState], handler: IRQInterceptHandler
) -> None:
    """Divert every level change of the lines ``gpio_in`` to ``handler``.

    QEMU's ``qemu_irq_intercept_in``, used by qtest's ``irq_intercept_in``:
    each line keeps its number, and ``handler(original, n, level)`` receives
    a copy of the line with its former handler, to forward the change.

    >>> seen = []
    >>> line = qemu_allocate_irq(lambda n, level: seen.append(("dev", n, level)), 4)
    >>> def spy(original: IRQState, n: int, level: int) -> None:
    ...     seen.append(("spy", n, level))
    ...     original.set(level)
    >>> qemu_irq_intercept_in([line], spy)
    >>> line.raise_()
    >>> seen
    [('spy', 4, 1), ('dev', 4, 1)]
    """
    for irq in gpio_in:
        # The copy belongs to the intercepted line: finalizing the line (with
        # its device) drops the partial that holds it.
        original = _new_irq(irq._handler, irq._n)
        irq._handler = functools.partial(handler, original)


def qemu_set_irq(irq: IRQState | None, level: int) -> None:
    """Set ``irq`` to ``level``; nothing happens if ``irq`` is None."""
    if irq is not None:
        irq._handler(irq._n, level)


def qemu_irq_raise(irq: IRQState | None) -> None:
    """Set ``irq`` to 1; nothing happens if ``irq`` is None."""
    qemu_set_irq(irq, 1)


def qemu_irq_lower(irq: IRQState | None) -> None:
    """Set ``irq`` to 0; nothing happens if ``irq`` is None."""
    qemu_set_irq(irq, 0)


def qemu_irq_pulse(irq: IRQState | None) -> None:
    """Set ``irq`` to 1 then 0; nothing happens if ``irq`` is None."""
    qemu_set_irq(irq, 1)
    qemu_set_irq(irq, 0)


@final
class InterruptSource:
    """The output end of an interrupt line, owned by the device that drives it.

    A device declares one per output line and registers it in
    ``instance_init`` (``SysBusDevice.init_irq`` or
    ``DeviceState.init_gpio_out``); the board connects it later. Level changes
    on an unconnected source are ignored.

    Every access checks that the current thread holds the BQL.
    """

    __slots__ = ("_cell",)

    def __init__(self) -> None:
        self._cell: BqlCell[IRQState | None] = BqlCell(None)

    @property
    def irq(self) -> IRQState | None:
        """The connected input, or None."""
        return self._cell.get()

    def connect(self, irq: IRQState | None) -> None:
        """Connect this output to ``irq`` (None disconnects).

        Boards normally connect through the device's GPIO or sysbus IRQ
        properties instead, which also record the link in the QOM tree.
        """
        self._cell.set(irq)

    def is_connected(self) -> bool:
        """Whether an input is connected."""
        return self._cell.get() is not None

    def set(self, level: int) -> None:
        """Drive the line to ``level`` (a ``bool`` counts as 1 or 0)."""
        irq = self._cell.get()
        if irq is not None:
            trace_qemu_irq_set(irq, irq._n, level)
            irq._handler(irq._n, level)

    def raise_(self) -> None:
        """Drive the line to 1."""
        self.set(1)

    def lower(self) -> None:
        """Drive the line to 0."""
        self.set(0)

    def pulse(self) -> None:
        """Drive the line to 1, then to 0."""
        self.set(1)
        self.set(0)

    @override
    def __repr__(self) -> str:
        irq = self._cell.get()
        return f"<InterruptSource -> {irq!r}>"
