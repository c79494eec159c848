"""Devices: qdev properties, realize, three-phase reset, GPIO lines and clocks.

This module mirrors QEMU's ``include/hw/qdev-core.h`` (``hw/core/qdev.c``),
``include/hw/qdev-properties.h`` (``hw/core/qdev-properties.c``),
``include/hw/resettable.h`` (``hw/core/resettable.c``) and the qdev parts of
``include/hw/qdev-clock.h``, shaped like QEMU Rust's ``qdev.rs``.

A device is a :class:`DeviceState` subclass. It declares its properties as
typed class attributes (:func:`prop_bool`, :func:`prop_u32`, :func:`prop_chr`,
...): mypy sees ``self.migrate_clk`` as ``bool`` and rejects assigning a
``str``; the same declaration becomes the QOM property (``qom-get``/``qom-set``),
the ``-device TYPE,help`` data (:meth:`DeviceState.class_properties`) and the
validation with QEMU's error messages. Properties may be set until the device
is realized.

Life cycle, as in QEMU:

1. ``instance_init`` creates what the device owns: MMIO regions, GPIO lines
   (:meth:`DeviceState.init_gpio_in`, :meth:`DeviceState.init_gpio_out`),
   clock inputs (:meth:`DeviceState.init_clock_in`), timers. It does not call
   ``super().instance_init()`` (a class that does is refused when defined);
   if it raises, everything it created is released.
2. The board sets properties and calls :func:`qdev_realize` (or
   ``sysbus_realize``). The device's ``realize`` hook validates its
   configuration and raises :class:`~qemu_api.error.Error` with a helpful
   message if it is wrong; the device then stays unrealized, with what
   realize had started undone, and can be fixed and realized again. Realize
   installs chardev handlers and builds DMA views.
3. Reset is three-phase (:class:`Resettable`): every ``reset_enter`` of the
   tree runs before any ``reset_hold``, then the ``reset_exit`` phases.
4. Unrealize disarms the device's timers, removes its chardev handlers and
   releases what realize created. Unparenting unrealizes, then finalizes:
   everything the device owns dies with it (timers, interrupt inputs, chardev
   handlers, clocks, memory regions, address spaces), so nothing calls into
   it afterwards. See :class:`~qemu_api.qom.OwnedResource`.

>>> class Blinky(DeviceState, type_name="doc-blinky"):
...     period = prop_u32("period", default=10, doc="blink period in ticks")
...
...     @override
...     def realize(self) -> None:
...         if self.period == 0:
...             raise Error("period must not be 0", hint="set period=1 or more")
>>> dev = Blinky()
>>> dev.period = 0
>>> try:
...     qdev_realize(dev)
... except Error as e:
...     print(e)
period must not be 0
>>> dev.period = 5
>>> qdev_realize(dev)
>>> dev.realized, dev.canonical_path()  # doctest: +ELLIPSIS
(True, '/machine/unattached/device[...]')
>>> dev.period = 6  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
qemu_api.error.Error: Attempt to set property 'period' on anonymous device ... realized
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, Generic, Literal, Self, TypeVar, final, overload

from qemu_api.chardev import CharBackend, Chardev, qemu_chr_find
from qemu_api.clock import Clock, ClockCallback, ClockEvent
from qemu_api.error import Error, ErrorClass
from qemu_api.irq import InterruptSource, IRQHandler, IRQState, qemu_allocate_irq
from qemu_api.qom import (
    Interface,
    JSONValue,
    Object,
    ObjectProperty,
    ObjectPropertyInfo,
    container_get,
    object_class_by_name,
    object_dynamic_cast,
    object_get_root,
    object_property_allow_set_link,
    override,
    type_info,
    visit_type_bool,
    visit_type_int,
    visit_type_str,
)

__all__ = [
    "MAX_OR_LINES",
    "MAX_SPLIT_LINES",
    "TYPE_BUS",
    "TYPE_DEVICE",
    "TYPE_OR_IRQ",
    "TYPE_RESETTABLE_INTERFACE",
    "TYPE_SPLIT_IRQ",
    "BusState",
    "DeviceCategory",
    "DeviceListener",
    "DeviceState",
    "GlobalProperty",
    "OrIRQ",
    "QdevProperty",
    "ResetType",
    "Resettable",
    "ResettableState",
    "SplitIRQ",
    "device_cold_reset",
    "device_listener_register",
    "device_listener_unregister",
    "prop_array",
    "prop_bool",
    "prop_chr",
    "prop_i32",
    "prop_i64",
    "prop_link",
    "prop_size",
    "prop_string",
    "prop_u8",
    "prop_u16",
    "prop_u32",
    "prop_u64",
    "prop_usize",
    "qbus_new",
    "qdev_connect_clock_in",
    "qdev_connect_gpio_out",
    "qdev_connect_gpio_out_named",
    "qdev_device_list_properties",
    "qdev_get_gpio_in",
    "qdev_get_gpio_in_named",
    "qdev_get_machine",
    "qdev_get_peripheral",
    "qdev_get_peripheral_anon",
    "qdev_init_clock_in",
    "qdev_init_clock_out",
    "qdev_init_gpio_in",
    "qdev_init_gpio_in_named",
    "qdev_init_gpio_out",
    "qdev_init_gpio_out_named",
    "qdev_new",
    "qdev_prop_register_global",
    "qdev_prop_reset_globals",
    "qdev_realize",
    "qdev_realize_and_unref",
    "qdev_set_id",
    "qdev_set_parent_bus",
    "qdev_try_new",
    "qdev_unrealize",
    "resettable_assert_reset",
    "resettable_is_in_reset",
    "resettable_release_reset",
    "resettable_reset",
]

TYPE_DEVICE: Final = "device"
"""QOM type name of :class:`DeviceState`."""
TYPE_BUS: Final = "bus"
"""QOM type name of :class:`BusState`."""
TYPE_RESETTABLE_INTERFACE: Final = "resettable"
"""QOM type name of the :class:`Resettable` interface."""
TYPE_SPLIT_IRQ: Final = "split-irq"
"""QOM type name of :class:`SplitIRQ`."""
TYPE_OR_IRQ: Final = "or-irq"
"""QOM type name of :class:`OrIRQ`."""
MAX_SPLIT_LINES: Final = 16
"""Most outputs of a :class:`SplitIRQ`."""
MAX_OR_LINES: Final = 64
"""Most inputs of an :class:`OrIRQ`."""

_GPIO_IN_DEFAULT: Final = "unnamed-gpio-in"
_GPIO_OUT_DEFAULT: Final = "unnamed-gpio-out"

G = TypeVar("G")
S = TypeVar("S")
T = TypeVar("T")
ObjT = TypeVar("ObjT", bound=Object)
BusT = TypeVar("BusT", bound="BusState")
DevT = TypeVar("DevT", bound="DeviceState")


# -- three-phase reset ---------------------------------------------------------


@final
class ResetType(enum.Enum):
    """Why a reset happens (QEMU's ``ResetType``)."""

    COLD = "cold"
    """Power-on reset (``RESET_TYPE_COLD``)."""
    SNAPSHOT_LOAD = "snapshot-load"
    """Reset before loading a snapshot (``RESET_TYPE_SNAPSHOT_LOAD``)."""
    WAKEUP = "wakeup"
    """Wake-up from suspend (``RESET_TYPE_WAKEUP``)."""
    S390_CPU_NORMAL = "s390-cpu-normal"
    """s390 CPU normal reset (``RESET_TYPE_S390_CPU_NORMAL``)."""
    S390_CPU_INITIAL = "s390-cpu-initial"
    """s390 CPU initial reset (``RESET_TYPE_S390_CPU_INITIAL``)."""


@final
@dataclass
class ResettableState:
    """Per-object reset bookkeeping (QEMU's ``ResettableState``).

    Attributes:
        count: how many resets are in progress on the object.
        hold_phase_pending: the hold phase still has to run.
        exit_phase_in_progress: the exit phase is running.
    """

    count: int = 0
    hold_phase_pending: bool = False
    exit_phase_in_progress: bool = False


class Resettable(Interface, type_name=TYPE_RESETTABLE_INTERFACE):
    """The three-phase reset interface (QEMU's ``ResettableClass``).

    Implementations override :meth:`reset_enter`, :meth:`reset_hold` and
    :meth:`reset_exit` (calling ``super()`` keeps the parent type's phase, as
    ``resettable_class_set_parent_phases`` does in C), and
    :meth:`resettable_children` to name the objects reset with them.

    - *enter*: reset the object's own state; do not touch other objects
      (no IRQ changes).
    - *hold*: act on other objects, e.g. lower output IRQs.
    - *exit*: leave reset; may start timers or raise lines again.
    """

    def _qom_instance_init(self) -> None:
        """Create the reset state."""
        self._reset_state = ResettableState()

    @property
    def reset_state(self) -> ResettableState:
        """The reset bookkeeping of this object."""
        return self._reset_state

    def reset_enter(self, reset_type: ResetType) -> None:
        """Enter phase: reset this object's own state."""

    def reset_hold(self, reset_type: ResetType) -> None:
        """Hold phase: the object is in reset; may act on other objects."""

    def reset_exit(self, reset_type: ResetType) -> None:
        """Exit phase: the object leaves reset."""

    def resettable_children(self) -> Iterable[Resettable]:
        """The objects reset together with this one (``child_foreach``)."""
        return ()


_enter_phase_in_progress = False


def _phase_enter(obj: Resettable, reset_type: ResetType) -> None:
    s = obj._reset_state
    if s.exit_phase_in_progress:
        raise Error("cannot enter reset while the exit phase is in progress")
    action_needed = s.count == 0
    s.count += 1
    if s.count > 50:
        raise Error("reset nesting too deep: is there a loop in the reset tree?")
    for child in list(obj.resettable_children()):
        _phase_enter(child, reset_type)
    if action_needed:
        obj.reset_enter(reset_type)
        s.hold_phase_pending = True


def _phase_hold(obj: Resettable, reset_type: ResetType) -> None:
    s = obj._reset_state
    for child in list(obj.resettable_children()):
        _phase_hold(child, reset_type)
    if s.hold_phase_pending:
        s.hold_phase_pending = False
        obj.reset_hold(reset_type)


def _phase_exit(obj: Resettable, reset_type: ResetType) -> None:
    s = obj._reset_state
    s.exit_phase_in_progress = True
    try:
        for child in list(obj.resettable_children()):
            _phase_exit(child, reset_type)
        if s.count <= 0:
            raise Error("resettable_release_reset() without a matching assert")
        s.count -= 1
        if s.count == 0:
            obj.reset_exit(reset_type)
    finally:
        s.exit_phase_in_progress = False


def resettable_assert_reset(obj: Resettable, reset_type: ResetType) -> None:
    """Put ``obj`` and its reset subtree in reset: all enter phases, then holds.

    QEMU's ``resettable_assert_reset``; pair it with
    :func:`resettable_release_reset`.
    """
    global _enter_phase_in_progress
    if _enter_phase_in_progress:
        raise Error("a reset was started from inside an enter phase")
    _enter_phase_in_progress = True
    try:
        _phase_enter(obj, reset_type)
    finally:
        _enter_phase_in_progress = False
    _phase_hold(obj, reset_type)


def resettable_release_reset(obj: Resettable, reset_type: ResetType) -> None:
    """Take ``obj`` and its subtree out of reset: the exit phases.

    QEMU's ``resettable_release_reset``.
    """
    if _enter_phase_in_progress:
        raise Error("a reset was released from inside an enter phase")
    _phase_exit(obj, reset_type)


def resettable_reset(obj: Resettable, reset_type: ResetType) -> None:
    """Reset ``obj`` and everything below it (QEMU's ``resettable_reset``).

    Every enter phase of the tree runs (children before parents), then every
    hold phase, then every exit phase.
    """
    resettable_assert_reset(obj, reset_type)
    resettable_release_reset(obj, reset_type)


def resettable_is_in_reset(obj: Resettable) -> bool:
    """Whether ``obj`` is between assert and release of a reset."""
    return obj._reset_state.count > 0


# -- qdev properties -----------------------------------------------------------


class _PropertyBase:
    """The untyped part of a qdev property: what the framework needs."""

    def __init__(
        self,
        name: str,
        prop_type: str,
        doc: str | None,
        default: JSONValue,
        has_default: bool,
    ) -> None:
        self.name = name
        self.type = prop_type
        self.description = doc
        self.default_value = default
        self.has_default = has_default
        self.attr = ""

    def __set_name__(self, owner: type[object], attr: str) -> None:
        self.attr = attr

    def info(self) -> ObjectPropertyInfo:
        """The ``-device TYPE,help`` row of this property."""
        return ObjectPropertyInfo(
            self.name,
            self.type,
            self.description,
            self.default_value if self.has_default else None,
        )

    def _install(self, dev: DeviceState) -> None:
        raise NotImplementedError

    def _check_realize(self, dev: DeviceState) -> None:
        """Refuse to realize ``dev`` if the property is not set as it must be."""


class QdevProperty(_PropertyBase, Generic[G, S]):
    """A typed qdev property, declared as a class attribute of a device.

    Reading ``dev.attr`` gives a ``G``; assigning takes an ``S`` (the same
    type for most properties; a chardev property reads as a
    :class:`~qemu_api.chardev.CharBackend` and is assigned a
    :class:`~qemu_api.chardev.Chardev`). Assignments are validated and are
    refused once the device is realized. Create them with the ``prop_*``
    functions.
    """

    def __init__(
        self,
        name: str,
        prop_type: str,
        doc: str | None,
        default: JSONValue,
        has_default: bool,
    ) -> None:
        super().__init__(name, prop_type, doc, default, has_default)
        # Each device keeps its own value in its instance dictionary, under a
        # key that is not an identifier (no attribute can clash with it).  A
        # table on the descriptor keyed by device would keep every device
        # alive whose value refers back to it (a CharBackend holds its
        # owner and handlers): the value must die with the device.
        self._key = f"qdev-property:{name}"

    @overload
    def __get__(self, obj: None, owner: type[object] | None = None) -> Self: ...
    @overload
    def __get__(self, obj: DeviceState, owner: type[object] | None = None) -> G: ...
    def __get__(
        self, obj: DeviceState | None, owner: type[object] | None = None
    ) -> Self | G:
        """Read the property of ``obj`` (the descriptor itself on the class)."""
        if obj is None:
            return self
        return self._get(obj)

    def __set__(self, obj: DeviceState, value: S) -> None:
        """Set the property of ``obj``, before realize."""
        self._check_settable(obj)
        self._store(obj, value)

    def _check_settable(self, dev: DeviceState) -> None:
        dev._check_settable(self.name)

    def _get(self, dev: DeviceState) -> G:
        """The value ``dev`` holds (installed by :meth:`_install`)."""
        value: G = vars(dev)[self._key]
        return value

    def _put(self, dev: DeviceState, value: G) -> None:
        vars(dev)[self._key] = value

    def _initial(self, dev: DeviceState) -> G:
        raise NotImplementedError

    def _store(self, dev: DeviceState, value: S) -> None:
        raise NotImplementedError

    def _parse(self, dev: DeviceState, value: JSONValue) -> S:
        raise NotImplementedError

    def _dump(self, value: G) -> JSONValue:
        raise NotImplementedError

    def _release(self, dev: DeviceState) -> None:
        """Undo the property's effects when the device is torn down."""

    @override
    def _install(self, dev: DeviceState) -> None:
        self._put(dev, self._initial(dev))

        def getter() -> JSONValue:
            return self._dump(self._get(dev))

        def setter(value: JSONValue) -> None:
            dev._check_settable(self.name)
            self._store(dev, self._parse(dev, value))

        dev.property_add(
            ObjectProperty(
                self.name,
                self.type,
                getter=getter,
                setter=setter,
                description=self.description,
                default_value=self.default_value,
                has_default=self.has_default,
                release=lambda: self._release(dev),
            )
        )


@final
class _BoolProperty(QdevProperty[bool, bool]):
    def __init__(self, name: str, default: bool, doc: str | None) -> None:
        super().__init__(name, "bool", doc, default, True)
        self._default = default

    @override
    def _initial(self, dev: DeviceState) -> bool:
        return self._default

    @override
    def _store(self, dev: DeviceState, value: bool) -> None:
        if not isinstance(value, bool):
            raise Error(f"Invalid parameter type for '{self.name}', expected: boolean")
        self._put(dev, value)

    @override
    def _parse(self, dev: DeviceState, value: JSONValue) -> bool:
        return visit_type_bool(self.name, value)

    @override
    def _dump(self, value: bool) -> JSONValue:
        return value


def _range_error(dev: DeviceState, name: str, value: object, lo: int, hi: int) -> Error:
    return Error(
        f"Property '{dev.typename()}.{name}' doesn't take value '{value}' "
        f"(minimum: {lo}, maximum: {hi})"
    )


@final
class _IntProperty(QdevProperty[int, int]):
    def __init__(
        self,
        name: str,
        prop_type: str,
        minimum: int,
        maximum: int,
        default: int,
        doc: str | None,
    ) -> None:
        if not minimum <= default <= maximum:
            raise ValueError(
                f"default {default} of property '{name}' is outside "
                f"{minimum}..{maximum}"
            )
        super().__init__(name, prop_type, doc, default, True)
        self._default = default
        self.minimum = minimum
        self.maximum = maximum

    @override
    def _initial(self, dev: DeviceState) -> int:
        return self._default

    @override
    def _store(self, dev: DeviceState, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Error(f"Invalid parameter type for '{self.name}', expected: integer")
        if not self.minimum <= value <= self.maximum:
            raise _range_error(dev, self.name, value, self.minimum, self.maximum)
        self._put(dev, value)

    @override
    def _parse(self, dev: DeviceState, value: JSONValue) -> int:
        return visit_type_int(self.name, value)

    @override
    def _dump(self, value: int) -> JSONValue:
        return value


@final
class _StringProperty(QdevProperty[str | None, str | None]):
    def __init__(self, name: str, default: str | None, doc: str | None) -> None:
        super().__init__(name, "str", doc, default, default is not None)
        self._default = default

    @override
    def _initial(self, dev: DeviceState) -> str | None:
        return self._default

    @override
    def _store(self, dev: DeviceState, value: str | None) -> None:
        if value is not None and not isinstance(value, str):
            raise Error(f"Invalid parameter type for '{self.name}', expected: string")
        self._put(dev, value)

    @override
    def _parse(self, dev: DeviceState, value: JSONValue) -> str | None:
        return visit_type_str(self.name, value)

    @override
    def _dump(self, value: str | None) -> JSONValue:
        return value if value is not None else ""


@final
class _ChrProperty(QdevProperty[CharBackend, Chardev | None]):
    def __init__(self, name: str, doc: str | None) -> None:
        super().__init__(name, "str", doc, None, False)

    @override
    def _initial(self, dev: DeviceState) -> CharBackend:
        return CharBackend()

    @override
    def _store(self, dev: DeviceState, value: Chardev | None) -> None:
        label = value.label if value is not None else ""
        try:
            self._get(dev).connect(value)
        except Error as e:
            raise e.prepend(
                f"Property '{dev.typename()}.{self.name}' can't take value '{label}': "
            ) from None

    @override
    def _parse(self, dev: DeviceState, value: JSONValue) -> Chardev | None:
        label = visit_type_str(self.name, value)
        if not label:
            return None
        chr_ = qemu_chr_find(label)
        if chr_ is None:
            raise Error(
                f"Property '{dev.typename()}.{self.name}' can't find value '{label}'",
                hint="create the character device first, e.g. -chardev "
                f"null,id={label}",
            )
        return chr_

    @override
    def _dump(self, value: CharBackend) -> JSONValue:
        return value.chr.label if value.chr is not None else ""

    @override
    def _release(self, dev: DeviceState) -> None:
        if self._key in vars(dev):
            self._get(dev).disconnect()


@final
class _LinkProperty(QdevProperty[ObjT | None, ObjT | None]):
    def __init__(
        self, name: str, target_type: type[ObjT], doc: str | None, required: bool
    ) -> None:
        super().__init__(name, f"link<{target_type.TYPE_NAME}>", doc, None, False)
        self._target_type = target_type
        self.required = required

    @override
    def _initial(self, dev: DeviceState) -> ObjT | None:
        return None

    @override
    def _check_settable(self, dev: DeviceState) -> None:
        _allow_set_link_before_realize(dev, self.name, None)

    @override
    def _store(self, dev: DeviceState, value: ObjT | None) -> None:
        dev.property_set_link(self.name, value)

    @override
    def _check_realize(self, dev: DeviceState) -> None:
        if self.required and self._get(dev) is None:
            tname = self._target_type.TYPE_NAME
            raise Error(
                f"'{self.name}' link is not set",
                hint=f"Device '{dev.typename()}' needs its link<{tname}> property "
                f"'{self.name}' before it is realized: "
                f"dev.property_set_link('{self.name}', target), or "
                f"dev.property_set('{self.name}', '/qom/path/of/target').\n",
            )

    @override
    def _install(self, dev: DeviceState) -> None:
        self._put(dev, None)

        def set_target(target: ObjT | None) -> None:
            self._put(dev, target)

        dev.property_add_link(
            self.name,
            self._target_type,
            lambda: self._get(dev),
            set_target,
            _allow_set_link_before_realize,
        )
        prop = dev.property_find(self.name)
        if prop is not None:
            prop.description = self.description


_IntKind = Literal["uint8", "uint16", "uint32", "uint64", "int32", "int64"]
_INT_RANGES: Final[dict[str, tuple[int, int]]] = {
    "uint8": (0, 0xFF),
    "uint16": (0, 0xFFFF),
    "uint32": (0, 0xFFFF_FFFF),
    "uint64": (0, 0xFFFF_FFFF_FFFF_FFFF),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
}


@final
class _ArrayProperty(QdevProperty[tuple[int, ...], Sequence[int]]):
    def __init__(self, name: str, element: str, doc: str | None) -> None:
        super().__init__(name, "list", doc, None, False)
        self.element = element
        self.minimum, self.maximum = _INT_RANGES[element]

    @override
    def _initial(self, dev: DeviceState) -> tuple[int, ...]:
        return ()

    @override
    def _store(self, dev: DeviceState, value: Sequence[int]) -> None:
        out: list[int] = []
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, int):
                raise Error(
                    f"Invalid parameter type for '{self.name}[{i}]', expected: integer"
                )
            if not self.minimum <= v <= self.maximum:
                raise _range_error(
                    dev, f"{self.name}[{i}]", v, self.minimum, self.maximum
                )
            out.append(v)
        self._put(dev, tuple(out))

    @override
    def _parse(self, dev: DeviceState, value: JSONValue) -> Sequence[int]:
        if not isinstance(value, list):
            raise Error(f"Invalid parameter type for '{self.name}', expected: array")
        return [visit_type_int(f"{self.name}[{i}]", v) for i, v in enumerate(value)]

    @override
    def _dump(self, value: tuple[int, ...]) -> JSONValue:
        return list(value)


def prop_bool(
    name: str, *, default: bool = False, doc: str | None = None
) -> QdevProperty[bool, bool]:
    """Declare a ``"bool"`` property (``DEFINE_PROP_BOOL``).

    Args:
        name: the property name, e.g. ``"migrate-clk"``.
        default: the value a new device starts with.
        doc: the description shown by ``-device TYPE,help``.
    """
    return _BoolProperty(name, default, doc)


def _int_prop(
    name: str, kind: str, default: int, doc: str | None
) -> QdevProperty[int, int]:
    lo, hi = _INT_RANGES[kind] if kind in _INT_RANGES else (0, (1 << 64) - 1)
    return _IntProperty(name, kind, lo, hi, default, doc)


def prop_u8(
    name: str, *, default: int = 0, doc: str | None = None
) -> QdevProperty[int, int]:
    """Declare a ``"uint8"`` property, range-checked 0..255 (``DEFINE_PROP_UINT8``)."""
    return _int_prop(name, "uint8", default, doc)


def prop_u16(
    name: str, *, default: int = 0, doc: str | None = None
) -> QdevProperty[int, int]:
    """Declare a ``"uint16"`` property (``DEFINE_PROP_UINT16``)."""
    return _int_prop(name, "uint16", default, doc)


def prop_u32(
    name: str, *, default: int = 0, doc: str | None = None
) -> QdevProperty[int, int]:
    """Declare a ``"uint32"`` property (``DEFINE_PROP_UINT32``)."""
    return _int_prop(name, "uint32", default, doc)


def prop_u64(
    name: str, *, default: int = 0, doc: str | None = None
) -> QdevProperty[int, int]:
    """Declare a ``"uint64"`` property (``DEFINE_PROP_UINT64``)."""
    return _int_prop(name, "uint64", default, doc)


def prop_i32(
    name: str, *, default: int = 0, doc: str | None = None
) -> QdevProperty[int, int]:
    """Declare an ``"int32"`` property (``DEFINE_PROP_INT32``)."""
    return _int_prop(name, "int32", default, doc)


def prop_i64(
    name: str, *, default: int = 0, doc: str | None = None
) -> QdevProperty[int, int]:
    """Declare an ``"int64"`` property (``DEFINE_PROP_INT64``)."""
    return _int_prop(name, "int64", default, doc)


def prop_size(
    name: str, *, default: int = 0, doc: str | None = None
) -> QdevProperty[int, int]:
    """Declare a ``"size"`` property, a 64-bit byte count (``DEFINE_PROP_SIZE``)."""
    return _int_prop(name, "size", default, doc)


def prop_usize(
    name: str, *, default: int = 0, doc: str | None = None
) -> QdevProperty[int, int]:
    """Declare a ``"usize"`` property, a 64-bit count (``DEFINE_PROP_USIZE``)."""
    return _int_prop(name, "usize", default, doc)


def prop_string(
    name: str, *, default: str | None = None, doc: str | None = None
) -> QdevProperty[str | None, str | None]:
    """Declare a ``"str"`` property; None means unset (``DEFINE_PROP_STRING``)."""
    return _StringProperty(name, default, doc)


def prop_chr(
    name: str = "chardev", *, doc: str | None = None
) -> QdevProperty[CharBackend, Chardev | None]:
    """Declare a character-device frontend property (``DEFINE_PROP_CHR``).

    The device reads a :class:`~qemu_api.chardev.CharBackend` (its frontend,
    created with the device); assigning a :class:`~qemu_api.chardev.Chardev`
    connects it. Through QOM the value is the chardev id, looked up with
    :func:`~qemu_api.chardev.qemu_chr_find`; an unknown id is refused with
    "Property 'TYPE.chardev' can't find value 'ID'".
    """
    return _ChrProperty(name, doc)


def prop_link(
    name: str,
    target_type: type[ObjT],
    *,
    doc: str | None = None,
    required: bool = False,
) -> QdevProperty[ObjT | None, ObjT | None]:
    """Declare a ``link<TYPE>`` property to another object (``DEFINE_PROP_LINK``).

    The device reads the target (or None); the board sets it before realize,
    typed with ``dev.property_set_link(name, target)`` or by QOM path with
    ``dev.property_set(name, path)``. The target must be a ``target_type``:
    anything else is refused with QEMU's "Invalid parameter type for 'NAME',
    expected: TYPE". After realize the link cannot change.

    A DMA master declares QEMU's ``memory`` link to the region it masters
    (``DEFINE_PROP_LINK("memory", ..., TYPE_MEMORY_REGION, MemoryRegion *)``)
    and builds its view of it in realize::

        class DmaEngine(SysBusDevice, type_name="dma-engine"):
            memory = prop_link("memory", MemoryRegion, required=True)

            def realize(self) -> None:
                super().realize()
                assert self.memory is not None  # required=True checked it
                self.dma = GuestMemory(
                    AddressSpace(self.memory, self.memory.name, owner=self)
                )

    Args:
        name: the property name.
        target_type: the class every target must be an instance of.
        doc: the description shown by ``-device TYPE,help``.
        required: refuse to realize while the link is unset, with QEMU's
            "'NAME' link is not set".
    """
    return _LinkProperty(name, target_type, doc, required)


def prop_array(
    name: str, element: _IntKind = "uint32", *, doc: str | None = None
) -> QdevProperty[tuple[int, ...], Sequence[int]]:
    """Declare an array of integers (``DEFINE_PROP_ARRAY``), type ``"list"``.

    Reads as a tuple; assign any sequence. Each element is range-checked for
    ``element`` (``"uint8"`` ... ``"int64"``). Through QOM it is a JSON list.
    """
    return _ArrayProperty(name, element, doc)


def _set_after_realize_error(dev: DeviceState, name: str, link: bool = False) -> Error:
    what = "link property" if link else "property"
    where = f"device '{dev.id}'" if dev.id is not None else "anonymous device"
    return Error(
        f"Attempt to set {what} '{name}' on {where} (type '{dev.typename()}') "
        "after it was realized",
        hint="set properties between creating the device and realizing it",
    )


def _allow_set_link_before_realize(
    owner: Object, name: str, target: Object | None
) -> None:
    """Link check of qdev links (``qdev_prop_allow_set_link_before_realize``)."""
    if isinstance(owner, DeviceState) and owner.realized:
        raise _set_after_realize_error(owner, name, link=True)


# -- GPIO and clock bookkeeping --------------------------------------------------


@final
@dataclass
class _NamedGPIOList:
    name: str | None
    inputs: list[IRQState] = field(default_factory=list)
    outputs: list[InterruptSource] = field(default_factory=list)


@final
@dataclass
class _NamedClock:
    clock: Clock
    output: bool


# -- buses and devices -----------------------------------------------------------


class BusState(Object, Resettable, type_name=TYPE_BUS, abstract=True):
    """A bus that devices plug into (QEMU's ``BusState``).

    Reset follows buses: resetting a bus resets its devices, and resetting a
    device resets the buses it provides. Create buses with :func:`qbus_new`.
    """

    @override
    def _qom_instance_init(self) -> None:
        """Start with no devices."""
        self.parent_device: DeviceState | None = None
        self.bus_name = ""
        self._devices: list[DeviceState] = []

    def devices(self) -> list[DeviceState]:
        """The devices on this bus, most recently plugged first (QEMU order)."""
        return list(self._devices)

    @override
    def resettable_children(self) -> Iterable[Resettable]:
        """The devices on the bus."""
        return list(self._devices)


def qbus_new(bus_type: type[BusT], parent: DeviceState | None, name: str) -> BusT:
    """Create a bus named ``name`` provided by ``parent`` (``qbus_new``).

    With a parent device the bus becomes its QOM child ``name``.
    """
    bus = bus_type()
    bus.bus_name = name
    bus.parent_device = parent
    if parent is not None:
        parent.property_add_child(name, bus)
        parent._child_buses.append(bus)
    return bus


@final
class DeviceCategory(enum.IntEnum):
    """The ``-device help`` groups (QEMU's ``DeviceCategory``), in QEMU's order.

    The value's :attr:`title` is the group's heading; a device in no
    category is listed under "Uncategorized".

    >>> DeviceCategory.BRIDGE.title, DeviceCategory.MISC.title
    ('Controller/Bridge/Hub', 'Misc')
    """

    BRIDGE = 0
    USB = 1
    STORAGE = 2
    NETWORK = 3
    INPUT = 4
    DISPLAY = 5
    SOUND = 6
    MISC = 7
    CPU = 8
    WATCHDOG = 9

    @property
    def title(self) -> str:
        """The heading QEMU prints for the group, without " devices:"."""
        return _CATEGORY_TITLES[self]


_CATEGORY_TITLES: Final = {
    DeviceCategory.BRIDGE: "Controller/Bridge/Hub",
    DeviceCategory.USB: "USB",
    DeviceCategory.STORAGE: "Storage",
    DeviceCategory.NETWORK: "Network",
    DeviceCategory.INPUT: "Input",
    DeviceCategory.DISPLAY: "Display",
    DeviceCategory.SOUND: "Sound",
    DeviceCategory.MISC: "Misc",
    DeviceCategory.CPU: "CPU",
    DeviceCategory.WATCHDOG: "Watchdog",
}


class DeviceState(Object, Resettable, type_name=TYPE_DEVICE, abstract=True):
    """Base of every device (QEMU's ``DeviceState``, ``TYPE_DEVICE``).

    Class attributes a subclass may set:

    - ``bus_type``: the bus type name the device plugs into (None: no bus).
    - ``desc``: one line describing the device, for ``-device help``.
    - ``categories``: the :class:`DeviceCategory` groups ``-device help``
      lists it in (QEMU's ``set_bit(DEVICE_CATEGORY_..., dc->categories)``).
    - ``user_creatable``: whether ``-device`` may create it.

    Hooks to override: ``instance_init``, :meth:`realize`, :meth:`unrealize`
    and the reset phases of :class:`Resettable`.
    """

    bus_type: ClassVar[str | None] = None
    desc: ClassVar[str | None] = None
    categories: ClassVar[frozenset[DeviceCategory]] = frozenset()
    user_creatable: ClassVar[bool] = True
    _qdev_props: ClassVar[tuple[_PropertyBase, ...]] = ()
    _qdev_names: ClassVar[frozenset[str]] = frozenset()

    @override
    def __init_subclass__(
        cls, *, type_name: str | None = None, abstract: bool = False, **kwargs: object
    ) -> None:
        """Collect the qdev properties declared in the class body, then register."""
        own = [v for v in cls.__dict__.values() if isinstance(v, _PropertyBase)]
        props = list(cls._qdev_props)
        names = {p.name for p in props}
        for p in own:
            if p.name in names:
                raise TypeError(
                    f"device class {cls.__qualname__} declares property '{p.name}' "
                    "twice (or again after a parent class): property names must "
                    "be unique"
                )
            names.add(p.name)
            props.append(p)
        cls._qdev_props = tuple(props)
        cls._qdev_names = frozenset(p.name for p in props)
        super().__init_subclass__(type_name=type_name, abstract=abstract, **kwargs)

    @override
    def _qom_instance_init(self) -> None:
        """Install the declared properties with their defaults."""
        self.id: str | None = None
        self._realized = False
        self.parent_bus: BusState | None = None
        self._child_buses: list[BusState] = []
        self._gpios: dict[str | None, _NamedGPIOList] = {}
        self._clocks: dict[str, _NamedClock] = {}
        self.property_add_bool("realized", lambda: self._realized, self._set_realized)
        self.property_add_link(
            "parent_bus", BusState, lambda: self.parent_bus, lambda _b: None, None
        )
        for prop in type(self)._qdev_props:
            prop._install(self)

    @override
    def instance_post_init(self) -> None:
        """Apply the global properties that match this device's type.

        QEMU's ``qdev_prop_set_globals``: ``-global TYPE.prop=value`` applies to
        every device of TYPE or a subtype, in registration order.
        """
        for glob in _global_props:
            if (
                object_dynamic_cast(self, glob.driver) is not None
                and glob.prop in self._qdev_names
            ):
                glob.used = True
                try:
                    self.property_parse(glob.prop, glob.value)
                except Error as err:
                    raise err.prepend(
                        f"-global {glob.driver}.{glob.prop}={glob.value}: "
                    ) from None

    # -- hooks ------------------------------------------------------------

    def realize(self) -> None:
        """Realize hook: check the configuration and finish construction.

        Raise :class:`~qemu_api.error.Error` with a message that says what to
        fix; the device then stays unrealized. Overrides should call
        ``super().realize()``.
        """

    def unrealize(self) -> None:
        """Unrealize hook: undo what :meth:`realize` did."""

    # -- state ------------------------------------------------------------

    @property
    def realized(self) -> bool:
        """Whether the device is realized (the QOM ``realized`` property)."""
        return self._realized

    @classmethod
    def class_properties(cls) -> list[ObjectPropertyInfo]:
        """The declared properties: name, type, default, description.

        This is the data of ``-device TYPE,help``.
        """
        return [p.info() for p in cls._qdev_props]

    def _check_settable(self, name: str) -> None:
        if self._realized:
            raise _set_after_realize_error(self, name)

    def _set_realized(self, value: bool) -> None:
        if value and not self._realized:
            self._do_realize()
        elif not value and self._realized:
            self._do_unrealize()

    def _do_realize(self) -> None:
        bus_type = type(self).bus_type
        if bus_type is not None and self.parent_bus is None:
            raise Error(
                f"Device '{self.typename()}' needs a bus of type '{bus_type}' "
                "to be realized",
                hint="plug it with qdev_realize(dev, bus); for a sysbus device "
                "use sysbus_realize(dev)",
            )
        for prop in type(self)._qdev_props:
            prop._check_realize(self)
        unattached = False
        if self.parent is None:
            container_get(qdev_get_machine(), "unattached").property_add_child(
                "device[*]", self
            )
            unattached = True
        # What the device acquires from here on belongs to the realized phase
        # and is released at unrealize (or at once if realize fails).
        self._qom_scope = []
        try:
            self.realize()
        except BaseException:
            self._end_realized_phase()
            if unattached:
                self._detach()
            raise
        try:
            for listener in tuple(_device_listeners):
                listener.realize(self)
        except BaseException:
            try:
                self.unrealize()
            finally:
                self._end_realized_phase()
                if unattached:
                    self._detach()
            raise
        self._realized = True

    def _end_realized_phase(self) -> None:
        """Quiesce everything the device owns; release what the realized phase took."""
        for res in (*self._qom_owned, *self._qom_scope):
            res.owner_quiesce()
        if self._qom_scope is not self._qom_owned:
            scope = self._qom_scope
            self._qom_scope = self._qom_owned
            while scope:
                scope.pop().owner_release()

    def _do_unrealize(self) -> None:
        try:
            for bus in self._child_buses:
                for dev in bus.devices():
                    dev._set_realized(False)
            for listener in reversed(_device_listeners):
                listener.unrealize(self)
            self.unrealize()
        finally:
            self._end_realized_phase()
            self._realized = False

    @override
    def _qom_instance_finalize(self) -> None:
        """Disconnect the GPIO outputs: a dead device drives no line."""
        for lst in self._gpios.values():
            for src in lst.outputs:
                src.connect(None)

    @override
    def instance_unparent(self) -> None:
        """Unrealize, drop the child buses and leave the parent bus."""
        if self._realized:
            self._do_unrealize()
        for bus in list(self._child_buses):
            bus.unparent()
        self._child_buses.clear()
        if self.parent_bus is not None:
            _bus_remove_child(self.parent_bus, self)
        super().instance_unparent()

    @override
    def resettable_children(self) -> Iterable[Resettable]:
        """The buses this device provides."""
        return list(self._child_buses)

    def cold_reset(self) -> None:
        """Reset the device and what is below it (``device_cold_reset``)."""
        resettable_reset(self, ResetType.COLD)

    # -- GPIO -------------------------------------------------------------

    def _gpio_list(self, name: str | None) -> _NamedGPIOList:
        lst = self._gpios.get(name)
        if lst is None:
            lst = self._gpios[name] = _NamedGPIOList(name)
        return lst

    def init_gpio_in_named(self, handler: IRQHandler, name: str | None, n: int) -> None:
        """Create ``n`` GPIO inputs called ``name[i]`` (``qdev_init_gpio_in_named``).

        ``handler(line, level)`` runs when a line changes; numbering continues
        after the inputs already created with the same name. Each input is a
        QOM child ``NAME[i]`` of the device, so it lives as long as the device:
        once the device is finalized the line delivers nothing, whoever still
        drives it.
        """
        lst = self._gpio_list(name)
        if name is not None and lst.outputs:
            raise Error(
                f"GPIO list '{name}' of '{self.typename()}' is already an output"
            )
        base = name if name is not None else _GPIO_IN_DEFAULT
        start = len(lst.inputs)
        for i in range(start, start + n):
            irq = qemu_allocate_irq(handler, i)
            self.property_add_child(f"{base}[{i}]", irq)
            # A child lives until the device is finalized, even when it was
            # created while the device was realized.
            self.disown_resource(irq)
            lst.inputs.append(irq)

    def init_gpio_in(self, handler: IRQHandler, n: int) -> None:
        """Create ``n`` anonymous GPIO inputs (``qdev_init_gpio_in``)."""
        self.init_gpio_in_named(handler, None, n)

    def init_gpio_out_named(
        self, sources: Sequence[InterruptSource], name: str | None
    ) -> None:
        """Register output lines as GPIO outputs ``name[i]``.

        QEMU's ``qdev_init_gpio_out_named``.

        Each becomes a ``link<irq>`` property, through which the board
        connects it (:meth:`connect_gpio_out_named`).
        """
        lst = self._gpio_list(name)
        if name is not None and lst.inputs:
            raise Error(
                f"GPIO list '{name}' of '{self.typename()}' is already an input"
            )
        base = name if name is not None else _GPIO_OUT_DEFAULT
        for src in sources:
            i = len(lst.outputs)
            self.property_add_link(
                f"{base}[{i}]",
                IRQState,
                _source_getter(src),
                src.connect,
                object_property_allow_set_link,
            )
            lst.outputs.append(src)

    def init_gpio_out(self, sources: Sequence[InterruptSource]) -> None:
        """Register anonymous GPIO outputs (``qdev_init_gpio_out``)."""
        self.init_gpio_out_named(sources, None)

    def get_gpio_in_named(self, name: str | None, n: int) -> IRQState:
        """The input line ``name[n]`` (``qdev_get_gpio_in_named``).

        Raises:
            Error: the device has no such input.
        """
        lst = self._gpios.get(name)
        count = len(lst.inputs) if lst else 0
        if not 0 <= n < count:
            label = name if name is not None else _GPIO_IN_DEFAULT
            raise Error(
                f"device type '{self.typename()}' has no GPIO input '{label}[{n}]' "
                f"(it has {count})"
            )
        assert lst is not None
        return lst.inputs[n]

    def get_gpio_in(self, n: int) -> IRQState:
        """The anonymous input line ``n`` (``qdev_get_gpio_in``)."""
        return self.get_gpio_in_named(None, n)

    def _out_prop(self, name: str | None, n: int) -> str:
        lst = self._gpios.get(name)
        count = len(lst.outputs) if lst else 0
        label = name if name is not None else _GPIO_OUT_DEFAULT
        if not 0 <= n < count:
            raise Error(
                f"device type '{self.typename()}' has no GPIO output '{label}[{n}]' "
                f"(it has {count})"
            )
        return f"{label}[{n}]"

    def connect_gpio_out_named(
        self, name: str | None, n: int, irq: IRQState | None
    ) -> None:
        """Connect output ``name[n]`` to ``irq`` (``qdev_connect_gpio_out_named``).

        An ``irq`` that is not in the QOM tree yet is put under
        ``/machine/unattached/non-qdev-gpio[*]``, as QEMU does.
        """
        prop = self._out_prop(name, n)
        if irq is not None and irq.parent is None:
            container_get(qdev_get_machine(), "unattached").property_add_child(
                "non-qdev-gpio[*]", irq
            )
        self.property_set_link(prop, irq)

    def connect_gpio_out(self, n: int, irq: IRQState | None) -> None:
        """Connect anonymous output ``n`` to ``irq`` (``qdev_connect_gpio_out``)."""
        self.connect_gpio_out_named(None, n, irq)

    def get_gpio_out_connector(self, name: str | None, n: int) -> IRQState | None:
        """What output ``name[n]`` is connected to (``qdev_get_gpio_out_connector``)."""
        self._out_prop(name, n)
        lst = self._gpios[name]
        return lst.outputs[n].irq

    def num_gpio_in(self, name: str | None = None) -> int:
        """The number of GPIO inputs ``name[*]`` (``NamedGPIOList.num_in``).

        ``None`` counts the anonymous inputs; a list that does not exist has
        none.  qtest's ``irq_intercept_in`` walks the inputs with it.
        """
        lst = self._gpios.get(name)
        return len(lst.inputs) if lst is not None else 0

    def num_gpio_out(self, name: str | None = None) -> int:
        """The number of GPIO outputs ``name[*]`` (``NamedGPIOList.num_out``).

        ``None`` counts the anonymous outputs; a list that does not exist has
        none.
        """
        lst = self._gpios.get(name)
        return len(lst.outputs) if lst is not None else 0

    # -- clocks -----------------------------------------------------------

    def _add_clock(self, name: str, output: bool) -> Clock:
        if self._realized:
            raise Error(
                f"clock '{name}' added to device '{self.typename()}' after realize",
                hint="create clocks in instance_init",
            )
        if name in self._clocks:
            raise Error(f"device '{self.typename()}' already has a clock '{name}'")
        clk = self.property_add_child(name, Clock())
        self._clocks[name] = _NamedClock(clk, output)
        return clk

    def init_clock_in(
        self,
        name: str,
        callback: ClockCallback | None = None,
        events: ClockEvent = ClockEvent.UPDATE,
    ) -> Clock:
        """Create clock input ``name`` (``qdev_init_clock_in``).

        The clock is the QOM child ``name`` of the device; ``callback`` runs on
        the ``events`` that the board's clock tree propagates, until the
        device is finalized.
        """
        clk = self._add_clock(name, False)
        if callback is not None:
            clk.set_callback(callback, events)
            # The clock is a child: it and its callback live until the
            # device is finalized.
            self.disown_resource(clk)
        return clk

    def init_clock_out(self, name: str) -> Clock:
        """Create clock output ``name`` (``qdev_init_clock_out``)."""
        return self._add_clock(name, True)

    def _get_clock(self, name: str, output: bool) -> Clock:
        ncl = self._clocks.get(name)
        if ncl is None or ncl.output != output:
            kind = "clock-out" if output else "clock-in"
            raise Error(
                f"Can not find {kind} '{name}' for device type '{self.typename()}'"
            )
        return ncl.clock

    def get_clock_in(self, name: str) -> Clock:
        """Clock input ``name`` (``qdev_get_clock_in``)."""
        return self._get_clock(name, False)

    def get_clock_out(self, name: str) -> Clock:
        """Clock output ``name`` (``qdev_get_clock_out``)."""
        return self._get_clock(name, True)

    def connect_clock_in(self, name: str, source: Clock) -> None:
        """Drive clock input ``name`` from ``source`` (``qdev_connect_clock_in``).

        Raises:
            Error: no such input, the device is realized, or the input is
                already connected.
        """
        clk = self.get_clock_in(name)
        if self._realized:
            raise Error(
                f"clock input '{name}' of device '{self.typename()}' connected "
                "after realize",
                hint="connect clocks before realizing the device",
            )
        clk.set_source(source)


def _source_getter(src: InterruptSource) -> Callable[[], IRQState | None]:
    return lambda: src.irq


def _bus_remove_child(bus: BusState, dev: DeviceState) -> None:
    if dev in bus._devices:
        bus._devices.remove(dev)
    dev.parent_bus = None


def qdev_set_parent_bus(dev: DeviceState, bus: BusState) -> None:
    """Plug ``dev`` into ``bus`` (``qdev_set_parent_bus``).

    Raises:
        Error: the device does not take a bus, takes another bus type, or is
            already on a bus.
    """
    bus_type = type(dev).bus_type
    if bus_type is None:
        raise Error(
            f"Device '{dev.typename()}' does not plug into a bus",
            hint="realize it with qdev_realize(dev)",
        )
    if bus.dynamic_cast(_bus_class(bus_type)) is None:
        raise Error(
            f"Device '{dev.typename()}' can't go on {bus.typename()} bus "
            f"'{bus.bus_name}': it needs a '{bus_type}' bus"
        )
    if dev.parent_bus is not None and dev.parent_bus is not bus:
        raise Error(
            f"Device '{dev.typename()}' is already on bus '{dev.parent_bus.bus_name}'"
        )
    if dev.parent_bus is None:
        bus._devices.insert(0, dev)
        dev.parent_bus = bus


def _bus_class(name: str) -> type[Object]:
    cls = object_class_by_name(name)
    return cls if cls is not None else BusState


def qdev_get_machine() -> Object:
    """The ``/machine`` object (a container until a board creates the machine)."""
    return container_get(object_get_root(), "/machine")


def qdev_get_peripheral() -> Object:
    """The ``/machine/peripheral`` container, for devices with an id."""
    return container_get(qdev_get_machine(), "peripheral")


def qdev_get_peripheral_anon() -> Object:
    """The ``/machine/peripheral-anon`` container, for ``-device`` without id."""
    return container_get(qdev_get_machine(), "peripheral-anon")


def qdev_set_id(dev: DeviceState, dev_id: str | None) -> str:
    """Give ``dev`` its id and place it in the tree (``qdev_set_id``).

    With an id it becomes ``/machine/peripheral/ID``; without, a
    ``/machine/peripheral-anon/device[N]``.

    Returns:
        The child property name.

    Raises:
        Error: the id is already in use.
    """
    if dev.realized:
        raise Error("the id of a device must be set before it is realized")
    if dev_id is not None:
        if qdev_get_peripheral().property_find(dev_id) is not None:
            raise Error(
                f"Duplicate device ID '{dev_id}'", hint="each device id must be unique"
            )
        qdev_get_peripheral().property_add_child(dev_id, dev)
        dev.id = dev_id
        return dev_id
    qdev_get_peripheral_anon().property_add_child("device[*]", dev)
    name = dev.name_in_parent
    assert name is not None
    return name


def _device_class(typename: str) -> type[DeviceState]:
    cls = object_class_by_name(typename)
    if cls is None or not issubclass(cls, DeviceState):
        raise Error(
            f"'{typename}' is not a valid device model name",
            error_class=ErrorClass.GENERIC_ERROR,
            hint="list device types with qdev_device_list_properties() or -device help",
        )
    info = type_info(typename)
    if info is not None and info.abstract:
        raise Error(f"'{typename}' is an abstract device type and cannot be created")
    return cls


def qdev_new(typename: str) -> DeviceState:
    """Create a device of type ``typename`` (``qdev_new``).

    Raises:
        Error: unknown, non-device or abstract type.
    """
    return _device_class(typename)()


def qdev_try_new(typename: str) -> DeviceState | None:
    """Like :func:`qdev_new`, but None if the type does not exist."""
    cls = object_class_by_name(typename)
    if cls is None or not issubclass(cls, DeviceState):
        return None
    return qdev_new(typename)


def qdev_realize(dev: DeviceState, bus: BusState | None = None) -> None:
    """Plug ``dev`` into ``bus`` (if given) and realize it (``qdev_realize``).

    A device without a QOM parent is put under ``/machine/unattached``. If the
    device's realize hook raises, the device is left as it was before: not
    realized, not on the bus, not in the tree.

    Raises:
        Error: the device is already realized, the bus does not fit, or the
            device refused its configuration.
    """
    if dev.realized:
        raise Error(f"device '{dev.typename()}' is already realized")
    plugged: BusState | None = None
    if bus is not None:
        if dev.parent_bus is None:
            plugged = bus
        qdev_set_parent_bus(dev, bus)
    try:
        dev.property_set("realized", True)
    except Exception:
        if plugged is not None:
            _bus_remove_child(plugged, dev)
        raise


def qdev_realize_and_unref(dev: DeviceState, bus: BusState | None = None) -> None:
    """Realize ``dev`` handing ownership to the tree (``qdev_realize_and_unref``).

    Python needs no reference to drop: this is :func:`qdev_realize`, kept
    under QEMU's name for boards that are ported from C.
    """
    qdev_realize(dev, bus)


def qdev_unrealize(dev: DeviceState) -> None:
    """Unrealize ``dev`` (``qdev_unrealize``)."""
    dev.property_set("realized", False)


class DeviceListener:
    """Told when any device is realized or unrealized (QEMU's ``DeviceListener``).

    Subclass it, override the hooks and pass an instance to
    :func:`device_listener_register`.  Migration uses one to register each
    realized device that has a ``vmsd`` (QEMU's ``vmstate_register`` in
    ``device_set_realized``).
    """

    def realize(self, dev: DeviceState) -> None:
        """Called after ``dev`` is realized."""

    def unrealize(self, dev: DeviceState) -> None:
        """Called before ``dev`` is unrealized."""


_device_listeners: list[DeviceListener] = []


def device_listener_register(listener: DeviceListener) -> None:
    """Start telling ``listener`` about realized and unrealized devices."""
    _device_listeners.append(listener)


def device_listener_unregister(listener: DeviceListener) -> None:
    """Stop telling ``listener`` about devices."""
    _device_listeners.remove(listener)


def device_cold_reset(dev: DeviceState) -> None:
    """Cold-reset ``dev`` and its buses (``device_cold_reset``)."""
    dev.cold_reset()


def qdev_device_list_properties(typename: str) -> list[ObjectPropertyInfo]:
    """The declared properties of device type ``typename`` (``device-list-properties``).

    Raises:
        Error: ``typename`` is not a device type.
    """
    cls = object_class_by_name(typename)
    if cls is None or not issubclass(cls, DeviceState):
        raise Error(f"'{typename}' is not a valid device model name")
    return cls.class_properties()


def qdev_init_gpio_in(dev: DeviceState, handler: IRQHandler, n: int) -> None:
    """See :meth:`DeviceState.init_gpio_in`."""
    dev.init_gpio_in(handler, n)


def qdev_init_gpio_in_named(
    dev: DeviceState, handler: IRQHandler, name: str | None, n: int
) -> None:
    """See :meth:`DeviceState.init_gpio_in_named`."""
    dev.init_gpio_in_named(handler, name, n)


def qdev_init_gpio_out(dev: DeviceState, sources: Sequence[InterruptSource]) -> None:
    """See :meth:`DeviceState.init_gpio_out`."""
    dev.init_gpio_out(sources)


def qdev_init_gpio_out_named(
    dev: DeviceState, sources: Sequence[InterruptSource], name: str | None
) -> None:
    """See :meth:`DeviceState.init_gpio_out_named`."""
    dev.init_gpio_out_named(sources, name)


def qdev_get_gpio_in(dev: DeviceState, n: int) -> IRQState:
    """See :meth:`DeviceState.get_gpio_in`."""
    return dev.get_gpio_in(n)


def qdev_get_gpio_in_named(dev: DeviceState, name: str | None, n: int) -> IRQState:
    """See :meth:`DeviceState.get_gpio_in_named`."""
    return dev.get_gpio_in_named(name, n)


def qdev_connect_gpio_out(dev: DeviceState, n: int, irq: IRQState | None) -> None:
    """See :meth:`DeviceState.connect_gpio_out`."""
    dev.connect_gpio_out(n, irq)


def qdev_connect_gpio_out_named(
    dev: DeviceState, name: str | None, n: int, irq: IRQState | None
) -> None:
    """See :meth:`DeviceState.connect_gpio_out_named`."""
    dev.connect_gpio_out_named(name, n, irq)


def qdev_init_clock_in(
    dev: DeviceState,
    name: str,
    callback: ClockCallback | None = None,
    events: ClockEvent = ClockEvent.UPDATE,
) -> Clock:
    """See :meth:`DeviceState.init_clock_in`."""
    return dev.init_clock_in(name, callback, events)


def qdev_init_clock_out(dev: DeviceState, name: str) -> Clock:
    """See :meth:`DeviceState.init_clock_out`."""
    return dev.init_clock_out(name)


def qdev_connect_clock_in(dev: DeviceState, name: str, source: Clock) -> None:
    """See :meth:`DeviceState.connect_clock_in`."""
    dev.connect_clock_in(name, source)


# -- IRQ splitter and OR gate -----------------------------------------------------


@final
class SplitIRQ(DeviceState, type_name=TYPE_SPLIT_IRQ):
    """One input copied to ``num-lines`` outputs (``hw/core/split-irq.c``).

    >>> split = SplitIRQ()
    >>> split.num_lines = 2
    >>> qdev_realize(split)
    >>> seen = []
    >>> for i in range(2):
    ...     split.connect_gpio_out(i, qemu_allocate_irq(lambda n, l: seen.append(l), i))
    >>> split.get_gpio_in(0).raise_()
    >>> seen
    [1, 1]
    """

    # Needs wiring by its creator (QEMU's or-irq/split-irq are not pluggable).
    user_creatable = False

    desc = "IRQ splitter"
    num_lines = prop_u16("num-lines", default=1, doc="number of output lines")

    @override
    def instance_init(self) -> None:
        """Create the single input."""
        self.out_irq: list[InterruptSource] = []
        self.init_gpio_in(self._handler, 1)

    def _handler(self, n: int, level: int) -> None:
        for out in self.out_irq:
            out.set(level)

    @override
    def realize(self) -> None:
        """Check ``num-lines`` and create the outputs."""
        n = self.num_lines
        if not 1 <= n <= MAX_SPLIT_LINES:
            raise Error(
                f"IRQ splitter number of lines {n} is not between 1 and "
                f"{MAX_SPLIT_LINES}"
            )
        if not self.out_irq:
            self.out_irq = [InterruptSource() for _ in range(n)]
            self.init_gpio_out(self.out_irq)


@final
class OrIRQ(DeviceState, type_name=TYPE_OR_IRQ):
    """An output that is the OR of ``num-lines`` inputs (``hw/core/or-irq.c``).

    >>> gate = OrIRQ()
    >>> gate.num_lines = 2
    >>> qdev_realize(gate)
    >>> seen = []
    >>> gate.connect_gpio_out(0, qemu_allocate_irq(lambda n, l: seen.append(l), 0))
    >>> gate.get_gpio_in(1).raise_()
    >>> gate.get_gpio_in(0).raise_()
    >>> gate.get_gpio_in(1).lower()
    >>> gate.get_gpio_in(0).lower()
    >>> seen
    [1, 1, 1, 0]
    """

    # Needs wiring by its creator (QEMU's or-irq/split-irq are not pluggable).
    user_creatable = False

    desc = "IRQ OR gate"
    num_lines = prop_u16("num-lines", default=1, doc="number of input lines")

    @override
    def instance_init(self) -> None:
        """Create the single output."""
        self.out_irq = InterruptSource()
        self.levels: list[bool] = []
        self.init_gpio_out([self.out_irq])

    def _handler(self, n: int, level: int) -> None:
        self.levels[n] = bool(level)
        self.out_irq.set(int(any(self.levels)))

    @override
    def realize(self) -> None:
        """Check ``num-lines`` and create the inputs."""
        n = self.num_lines
        if not 1 <= n <= MAX_OR_LINES:
            raise Error(
                f"IRQ OR gate number of lines {n} is not between 1 and {MAX_OR_LINES}"
            )
        if not self.levels:
            self.levels = [False] * n
            self.init_gpio_in(self._handler, n)

    @override
    def reset_hold(self, reset_type: ResetType) -> None:
        """Forget the input levels (QEMU's ``or_irq_reset``)."""
        super().reset_hold(reset_type)
        self.levels = [False] * len(self.levels)


@final
@dataclass
class GlobalProperty:
    """One ``-global DRIVER.PROPERTY=VALUE`` (QEMU's ``GlobalProperty``)."""

    driver: str
    prop: str
    value: str
    used: bool = False


_global_props: list[GlobalProperty] = []


def qdev_prop_register_global(driver: str, prop: str, value: str) -> None:
    """Register ``-global DRIVER.PROP=VALUE`` for every later device of DRIVER.

    Raises:
        Error: DRIVER is not a device type, or it has no property PROP.

    >>> qdev_prop_register_global("doc-nothing", "x", "1")
    Traceback (most recent call last):
    ...
    qemu_api.error.Error: -global doc-nothing.x=1: 'doc-nothing' is not a valid ...
    """
    where = f"-global {driver}.{prop}={value}"
    cls = object_class_by_name(driver)
    if cls is None or not issubclass(cls, DeviceState):
        raise Error(f"{where}: '{driver}' is not a valid device model name")
    if prop not in cls._qdev_names:
        raise Error(f"{where}: property '{prop}' not found in '{driver}'")
    _global_props.append(GlobalProperty(driver, prop, value))


def qdev_prop_reset_globals() -> None:
    """Forget every global property (for a new machine or a test)."""
    _global_props.clear()
