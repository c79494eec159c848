"""The big QEMU lock (BQL) and the cells that check it.

This module models QEMU's big lock from ``include/qemu/main-loop.h``
(``bql_lock()``, ``bql_unlock()``, ``bql_locked()``, ``bql_block_unlock()``)
and the interior-mutability cells of QEMU's Rust ``bql::cell`` module
(``rust/qemu-api/src/cell.rs``): :class:`BqlCell` and :class:`BqlRefCell`.

Device state lives in these cells.  Every access checks that the current
thread holds the BQL, so a device can never be touched from a thread that
skipped the lock.  Like QEMU's, the lock is **not recursive**: taking it twice
in one thread is a bug and raises :class:`BqlAlreadyHeldError`.

While a :class:`BqlRefCell` borrow is alive the lock cannot be released
(QEMU's ``bql_block_unlock(true)``): a callback cannot drop the BQL while it
still holds a reference into device state.

Register state is usually a :class:`BqlStruct`: a class whose annotated
fields each check the BQL on every read and write, so that a register write
reads like one (``self.regs.ibrd = value``), while ``with regs.borrow_mut()``
blocks keep the exclusive-borrow discipline of a :class:`BqlRefCell` for
changes that span several fields.

>>> regs = BqlRefCell([0, 0, 0])
>>> with regs.borrow_mut() as r:
...     r[1] = 0x42
>>> with regs.borrow() as r:
...     r[1]
66
>>> count = BqlCell(0)
>>> count.set(count.get() + 1)
>>> count.get()
1
"""

from __future__ import annotations

import inspect
import sys
import threading
import typing
from _thread import get_ident
from collections.abc import Callable
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar, final

from qemu_api._compat import override

__all__ = [
    "BorrowError",
    "BorrowMutError",
    "BqlAlreadyHeldError",
    "BqlCell",
    "BqlError",
    "BqlNotHeldError",
    "BqlRef",
    "BqlRefCell",
    "BqlRefMut",
    "BqlStruct",
    "BqlUnlockBlockedError",
    "bql_assert_locked",
    "bql_block_unlock",
    "bql_guard",
    "bql_lend",
    "bql_lent_pair",
    "bql_lock",
    "bql_locked",
    "bql_reclaim",
    "bql_set_debug_cell",
    "bql_unlock",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

# The lock itself, the thread id of its owner (None when free) and the number
# of live BqlRefCell borrows (QEMU's bql_unlock_blocked).  The owner and the
# counter are only written by the thread that holds the lock.
_bql = threading.Lock()
_owner: int | None = None


class _Held(threading.local):
    """Per thread: whether this thread holds the BQL.

    The checks read this flag rather than compare thread ids: a thread id is
    a large int, and ``get_ident()`` would allocate one on every access of
    device state.
    """

    held = False
    lent = False


_held = _Held()
_unlock_blocked = 0
# Record where each borrow was taken (QEMU's debug_cell feature).
_debug_cell = False


class BqlError(RuntimeError):
    """Base class of the errors raised for a misuse of the BQL."""


@final
class BqlNotHeldError(BqlError):
    """An operation that needs the BQL ran in a thread that does not hold it."""


@final
class BqlAlreadyHeldError(BqlError):
    """:func:`bql_lock` was called by the thread that already holds the BQL."""


@final
class BqlUnlockBlockedError(BqlError):
    """:func:`bql_unlock` was called while a :class:`BqlRefCell` borrow is alive."""


@final
class BorrowError(RuntimeError):
    """A shared borrow of a :class:`BqlRefCell` that is mutably borrowed."""


@final
class BorrowMutError(RuntimeError):
    """A mutable borrow of a :class:`BqlRefCell` that is already borrowed."""


def bql_locked() -> bool:
    """Return True if the current thread holds the BQL.

    >>> bql_locked()
    True
    """
    return _held.held


def _not_held(what: str) -> BqlNotHeldError:
    return BqlNotHeldError(
        f"{what} needs the BQL, but the current thread does not hold it; "
        "call qemu_api.bql.bql_lock() first or wrap the code in "
        "'with qemu_api.bql.bql_guard():'"
    )


def bql_assert_locked(what: str = "this operation") -> None:
    """Raise :class:`BqlNotHeldError` unless the current thread holds the BQL.

    QEMU code writes ``assert(bql_locked())``; this is the same check with an
    error that says what to do.

    Args:
        what: the operation that needs the lock, for the error message.

    Raises:
        BqlNotHeldError: the current thread does not hold the BQL.

    >>> bql_assert_locked("reading the timer")
    """
    if not _held.held:
        raise _not_held(what)


def bql_lock() -> None:
    """Take the BQL, waiting for another thread to release it if needed.

    Raises:
        BqlAlreadyHeldError: the current thread already holds the BQL (the
            lock is not recursive, as in QEMU).
    """
    global _owner
    me = get_ident()
    if _held.held:
        raise BqlAlreadyHeldError(
            "bql_lock(): the current thread already holds the BQL and the BQL is "
            "not recursive; take it once at the outermost level (device callbacks "
            "already run with it held)"
        )
    _bql.acquire()
    _owner = me
    _held.held = True


def bql_unlock() -> None:
    """Release the BQL held by the current thread.

    Raises:
        BqlNotHeldError: the current thread does not hold the BQL.
        BqlUnlockBlockedError: a :class:`BqlRefCell` borrow is still alive
            (QEMU's ``bql_block_unlock``); leave the ``with`` block first.
    """
    global _owner
    if not _held.held:
        raise BqlNotHeldError(
            "bql_unlock(): the current thread does not hold the BQL; "
            "only the thread that called bql_lock() may release it"
        )
    if _unlock_blocked:
        raise BqlUnlockBlockedError(
            f"bql_unlock(): {_unlock_blocked} BqlRefCell borrow(s) still alive; "
            "leave the 'with cell.borrow()/borrow_mut()' block before releasing "
            "the BQL"
        )
    _owner = None
    _held.held = False
    _bql.release()


def bql_lend() -> None:
    """Let other threads take the BQL while this thread runs guest code.

    A vCPU thread runs guest code without the BQL and takes it back for each
    device access the guest makes (QEMU's ``bql_unlock()`` around
    ``cpu_exec()`` and the lock taken in ``prepare_mmio_access``). Between
    :func:`bql_lend` and :func:`bql_reclaim` the lock is free for other
    threads, and this thread's Python code must run only inside the pair of
    :func:`bql_lent_pair` (the engine's device callbacks): there it holds the
    lock, and :func:`bql_locked` stays True in this thread throughout, so the
    pair costs one lock acquisition and release and nothing else per access.

    Raises:
        BqlNotHeldError: the current thread does not hold the BQL.
        BqlUnlockBlockedError: a :class:`BqlRefCell` borrow is still alive.

    >>> take, release = bql_lent_pair()
    >>> bql_lend()
    >>> take()
    True
    >>> bql_locked()
    True
    >>> release()
    >>> bql_reclaim()
    """
    global _owner
    if not _held.held:
        raise _not_held("bql_lend()")
    if _unlock_blocked:
        raise BqlUnlockBlockedError(
            f"bql_lend(): {_unlock_blocked} BqlRefCell borrow(s) still alive; "
            "leave the 'with cell.borrow()/borrow_mut()' block before running "
            "guest code"
        )
    _held.lent = True
    _owner = None
    _bql.release()


def bql_reclaim() -> None:
    """Take the BQL back after :func:`bql_lend`.

    Raises:
        BqlError: the current thread did not lend the BQL.
    """
    global _owner
    if not _held.lent:
        raise BqlError(
            "bql_reclaim(): the current thread did not lend the BQL; call "
            "bql_lend() first (or bql_lock() to take the BQL)"
        )
    _bql.acquire()
    _owner = get_ident()
    _held.lent = False


def bql_lent_pair() -> tuple[Callable[[], bool], Callable[[], None]]:
    """Return the functions that take and release the BQL in a lending thread.

    Only for callbacks that run in a thread between :func:`bql_lend` and
    :func:`bql_reclaim` (see there): they are the lock's own acquire and
    release, with none of :func:`bql_lock`'s checks.
    """
    return _bql.acquire, _bql.release


def bql_block_unlock(increase: bool) -> None:
    """Forbid (or allow again) releasing the BQL, as QEMU's ``bql_block_unlock``.

    Calls nest: each ``bql_block_unlock(True)`` needs a matching
    ``bql_block_unlock(False)``.  :class:`BqlRefCell` borrows do this
    automatically.

    Args:
        increase: True to add one block, False to remove one.

    Raises:
        BqlNotHeldError: the current thread does not hold the BQL.
        BqlError: ``increase`` is False but no block is active.

    >>> bql_block_unlock(True)
    >>> bql_block_unlock(False)
    """
    global _unlock_blocked
    if not _held.held:
        raise _not_held("bql_block_unlock()")
    if increase:
        _unlock_blocked += 1
    elif _unlock_blocked == 0:
        raise BqlError(
            "bql_block_unlock(False) without a matching bql_block_unlock(True)"
        )
    else:
        _unlock_blocked -= 1


def bql_set_debug_cell(enabled: bool) -> None:
    """Record where each :class:`BqlRefCell` borrow is taken.

    This is QEMU's ``debug_cell`` feature: a conflicting borrow then names the
    file and line of the borrow that is still alive.  It costs a frame lookup
    per borrow, so it is off by default; the unit tests turn it on.

    Args:
        enabled: True to record borrow locations.
    """
    global _debug_cell
    _debug_cell = enabled


@final
class _BqlGuard:
    """The context manager returned by :func:`bql_guard` (one shared instance)."""

    __slots__ = ()

    def __enter__(self) -> None:
        bql_lock()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        bql_unlock()


_BQL_GUARD = _BqlGuard()


def bql_guard() -> _BqlGuard:
    """Return a context manager that takes the BQL and releases it on exit.

    This is QEMU's ``BQL_LOCK_GUARD()``.  It is not recursive: using it while
    the current thread already holds the BQL raises
    :class:`BqlAlreadyHeldError`.

    >>> bql_unlock()
    >>> with bql_guard():
    ...     bql_locked()
    True
    >>> bql_locked()
    False
    >>> bql_lock()
    """
    return _BQL_GUARD


@final
class BqlCell(Generic[T]):
    """A value that may only be read or written while holding the BQL.

    QEMU's Rust ``BqlCell<T>``: ``get`` returns the value, ``set`` stores a new
    one.  Use it for plain values (integers, enums, immutable objects); use
    :class:`BqlRefCell` for state that is changed in place.

    ``take()`` follows Rust's ``Default``: it stores the zero value of the
    current value's type, ``type(value)()`` (``0`` for ``int`` and the
    :mod:`qemu_api.bits` integers, ``False``, ``""``, ``b""``, an empty list),
    and returns the old value.  Types without a no-argument constructor
    (enums, ``None``) must use :meth:`replace`.

    Args:
        value: the initial value.

    >>> level = BqlCell(False)
    >>> level.replace(True)
    False
    >>> level.get()
    True
    >>> n = BqlCell(5)
    >>> n.take(), n.get()
    (5, 0)
    """

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def get(self) -> T:
        """Return the value.

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
        """
        if not _held.held:
            raise _not_held("BqlCell.get()")
        return self._value

    def set(self, value: T) -> None:
        """Store ``value``.

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
        """
        if not _held.held:
            raise _not_held("BqlCell.set()")
        self._value = value

    def replace(self, value: T) -> T:
        """Store ``value`` and return the previous value.

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
        """
        if not _held.held:
            raise _not_held("BqlCell.replace()")
        old = self._value
        self._value = value
        return old

    def take(self) -> T:
        """Store the zero value of the value's type and return the old value.

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
            TypeError: the value's type has no no-argument constructor.
        """
        if not _held.held:
            raise _not_held("BqlCell.take()")
        old = self._value
        kind = type(old)
        try:
            zero = kind()
        except TypeError:
            raise TypeError(
                f"BqlCell.take(): {kind.__name__} cannot be built without "
                "arguments, so it has no zero value to leave behind; use "
                "cell.replace(new_value) instead"
            ) from None
        self._value = zero
        return old

    @override
    def __repr__(self) -> str:
        return f"BqlCell({self._value!r})"


def _caller_location() -> str:
    # Frame 0 is this function, 1 the guard's __enter__, 2 the with statement.
    frame = sys._getframe(2)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


class _Borrowable(Protocol[T_co]):
    """What the borrow guards need: a :class:`BqlRefCell` or a :class:`BqlStruct`."""

    _borrows: int
    _where: str

    @property
    def _value(self) -> T_co: ...

    def _label(self) -> str: ...

    def _where_text(self) -> str: ...


@final
class BqlRef(Generic[T]):
    """The context manager returned by :meth:`BqlRefCell.borrow`.

    Each cell owns one instance, so borrowing allocates nothing; entering it
    adds a shared borrow and yields the value, leaving it drops the borrow.
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: _Borrowable[Any]) -> None:
        # Any: a BqlStruct's value is its raw view, typed Self, which mypy
        # cannot match against the protocol; the constructors below fix T.
        self._cell: _Borrowable[T] = cell

    def __enter__(self) -> T:
        global _unlock_blocked
        cell = self._cell
        if not _held.held:
            raise _not_held(f"{cell._label()}.borrow()")
        if cell._borrows < 0:
            raise BorrowError(
                f"{cell._label()}.borrow(): the {_noun(cell)} is already mutably "
                f"borrowed{cell._where_text()}; leave that 'with ... borrow_mut()' "
                "block before borrowing again"
            )
        if _debug_cell and cell._borrows == 0:
            cell._where = _caller_location()
        cell._borrows += 1
        _unlock_blocked += 1
        return cell._value

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _unlock_blocked
        self._cell._borrows -= 1
        _unlock_blocked -= 1


@final
class BqlRefMut(Generic[T]):
    """The context manager returned by :meth:`BqlRefCell.borrow_mut`.

    Each cell owns one instance, so borrowing allocates nothing; entering it
    takes the exclusive borrow and yields the value, leaving it releases it.
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: _Borrowable[Any]) -> None:
        # Any: a BqlStruct's value is its raw view, typed Self, which mypy
        # cannot match against the protocol; the constructors below fix T.
        self._cell: _Borrowable[T] = cell

    def __enter__(self) -> T:
        global _unlock_blocked
        cell = self._cell
        if not _held.held:
            raise _not_held(f"{cell._label()}.borrow_mut()")
        if cell._borrows:
            kind = "mutably" if cell._borrows < 0 else "already"
            raise BorrowMutError(
                f"{cell._label()}.borrow_mut(): the {_noun(cell)} is {kind} "
                f"borrowed{cell._where_text()}; leave that 'with' block first "
                f"(pass the value down instead of borrowing the {_noun(cell)} again)"
            )
        if _debug_cell:
            cell._where = _caller_location()
        cell._borrows = -1
        _unlock_blocked += 1
        return cell._value

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _unlock_blocked
        self._cell._borrows = 0
        _unlock_blocked -= 1


def _noun(cell: _Borrowable[object]) -> str:
    return "cell" if isinstance(cell, BqlRefCell) else "struct"


@final
class BqlRefCell(Generic[T]):
    """A value borrowed in ``with`` blocks while holding the BQL.

    QEMU's Rust ``BqlRefCell<T>``: any number of shared borrows
    (:meth:`borrow`) or exactly one mutable borrow (:meth:`borrow_mut`) may be
    alive at a time, and the BQL cannot be released while any is alive.  The
    borrow methods return a guard object preallocated per cell, so the MMIO
    path allocates nothing.

    Python cannot stop code from mutating an object obtained through
    :meth:`borrow`; the split documents intent and catches re-entrancy bugs
    (a device callback that borrows the state its caller is changing).

    Args:
        value: the initial value.

    >>> state = BqlRefCell({"level": 0})
    >>> with state.borrow_mut() as s:
    ...     s["level"] = 1
    ...     with state.borrow():
    ...         pass
    Traceback (most recent call last):
      ...
    qemu_api.bql.BorrowError: BqlRefCell.borrow(): the cell is already mutably \
borrowed; leave that 'with ... borrow_mut()' block before borrowing again
    >>> state.get()
    {'level': 1}
    """

    __slots__ = ("_borrows", "_mut_guard", "_ref_guard", "_value", "_where")

    def __init__(self, value: T) -> None:
        self._value = value
        # > 0: number of shared borrows; -1: mutably borrowed; 0: free.
        self._borrows = 0
        self._where = ""
        self._ref_guard = BqlRef[T](self)
        self._mut_guard = BqlRefMut[T](self)

    def _where_text(self) -> str:
        if _debug_cell and self._where:
            return f" (first borrowed at {self._where})"
        return ""

    def _label(self) -> str:
        return "BqlRefCell"

    def borrow(self) -> BqlRef[T]:
        """Borrow the value for reading: ``with cell.borrow() as value:``.

        Raises (on entering the ``with`` block):
            BqlNotHeldError: the current thread does not hold the BQL.
            BorrowError: the cell is mutably borrowed.
        """
        return self._ref_guard

    def borrow_mut(self) -> BqlRefMut[T]:
        """Borrow the value for changing it: ``with cell.borrow_mut() as value:``.

        Raises (on entering the ``with`` block):
            BqlNotHeldError: the current thread does not hold the BQL.
            BorrowMutError: the cell is already borrowed.
        """
        return self._mut_guard

    def get(self) -> T:
        """Return the value (a short shared borrow).

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
            BorrowError: the cell is mutably borrowed.
        """
        with self._ref_guard as value:
            return value

    def set(self, value: T) -> None:
        """Replace the value (a short mutable borrow).

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
            BorrowMutError: the cell is borrowed.
        """
        with self._mut_guard:
            self._value = value

    def replace(self, value: T) -> T:
        """Store ``value`` and return the previous value.

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
            BorrowMutError: the cell is borrowed.
        """
        with self._mut_guard as old:
            self._value = value
            return old

    def is_borrowed(self) -> bool:
        """Return True while a shared or mutable borrow is alive."""
        return self._borrows != 0

    @override
    def __repr__(self) -> str:
        if self._borrows < 0:
            return "BqlRefCell(<mutably borrowed>)"
        return f"BqlRefCell({self._value!r})"


# -- BqlStruct: a struct whose fields check the BQL ---------------------------------

# Attributes of BqlStruct itself, which a field may not shadow.
_STRUCT_RESERVED: frozenset[str] = frozenset(
    {
        "_borrows",
        "_cell",
        "_label",
        "_mut_guard",
        "_raw_class",
        "_ref_guard",
        "_value",
        "_where",
        "_where_text",
        "borrow",
        "borrow_mut",
        "is_borrowed",
        "struct_fields",
    }
)


def _is_class_constant(annotation: object) -> bool:
    """True for ``ClassVar[...]`` and ``Final`` annotations (not fields)."""
    if isinstance(annotation, str):
        head = annotation.split("[", 1)[0].strip()
        return head.rsplit(".", 1)[-1] in ("ClassVar", "Final")
    origin = typing.get_origin(annotation) or annotation
    return origin is typing.ClassVar or origin is typing.Final


@final
class _StructField:
    """The checked attribute of one :class:`BqlStruct` field.

    Reading is a short shared borrow, writing a short mutable borrow: both
    need the BQL, a read fails while a ``borrow_mut()`` block of the struct is
    alive, a write while any borrow is.  The value lives in the struct's raw
    view (a slot), which ``with struct.borrow_mut() as raw`` hands out.
    """

    __slots__ = ("_get", "_set", "name")

    def __init__(self, qualname: str, member: Any) -> None:
        self.name = qualname
        self._get: Any = member.__get__
        self._set: Any = member.__set__

    def __get__(self, obj: BqlStruct | None, objtype: type | None = None) -> object:
        if obj is None:
            return self
        if not _held.held:
            raise _not_held(f"reading {self.name}")
        if obj._borrows < 0:
            raise BorrowError(
                f"reading {self.name}: the struct is mutably borrowed"
                f"{obj._where_text()}; code that runs inside that 'with ... "
                "borrow_mut()' block (a callback that re-entered the device?) "
                "must use the block's value, or the block must end before "
                "calling out to IRQ lines, chardevs or timers"
            )
        return self._get(obj._value)

    def __set__(self, obj: BqlStruct, value: object) -> None:
        if not _held.held:
            raise _not_held(f"writing {self.name}")
        if obj._borrows:
            kind = "mutably" if obj._borrows < 0 else "already"
            raise BorrowMutError(
                f"writing {self.name}: the struct is {kind} borrowed"
                f"{obj._where_text()}; write through the value of the 'with' "
                "block instead, or end the block before calling out to code "
                "that may re-enter the device"
            )
        self._set(obj._value, value)

    def __delete__(self, obj: BqlStruct) -> None:
        raise AttributeError(f"{self.name}: BqlStruct fields cannot be deleted")

    @override
    def __repr__(self) -> str:
        return f"<BqlStruct field {self.name}>"


class _BqlStructMeta(type):
    """Turns the annotated fields of a :class:`BqlStruct` subclass into checked ones.

    Each subclass gets empty ``__slots__`` (no stray attributes), a checked
    :class:`_StructField` per field, and a hidden raw-view subclass whose
    slots hold the values.
    """

    def __new__(
        mcls,
        name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        **kwargs: Any,
    ) -> _BqlStructMeta:
        if namespace.get("_bql_raw_view", False):
            return super().__new__(mcls, name, bases, namespace, **kwargs)
        if "__slots__" in namespace and any(
            isinstance(b, _BqlStructMeta) for b in bases
        ):
            raise TypeError(
                f"{name}: a BqlStruct takes its slots from the annotated fields; "
                "remove __slots__"
            )
        namespace.setdefault("__slots__", ())
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        if not any(isinstance(b, _BqlStructMeta) for b in bases):
            return cls  # BqlStruct itself
        fields: list[str] = []
        for klass in reversed(cls.__mro__):
            if not isinstance(klass, _BqlStructMeta) or klass.__name__ == "BqlStruct":
                continue
            for attr, ann in inspect.get_annotations(klass).items():
                if _is_class_constant(ann) or attr in fields:
                    continue
                if attr in _STRUCT_RESERVED or attr.startswith("__"):
                    raise TypeError(
                        f"{name}.{attr}: '{attr}' is a BqlStruct attribute or a "
                        "private name; rename the field"
                    )
                if attr in klass.__dict__ and not isinstance(
                    klass.__dict__[attr], _StructField
                ):
                    raise TypeError(
                        f"{name}.{attr}: a BqlStruct field has no class-level "
                        f"default; set it in __init__ (self.{attr} = ...), or "
                        "annotate a class constant with ClassVar"
                    )
                fields.append(attr)
        raw = super().__new__(
            mcls,
            name,
            (cls,),
            {
                "__slots__": tuple(fields),
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
                "__doc__": f"The raw view of {name}: its fields without checks.",
                "_bql_raw_view": True,
            },
        )
        for attr in fields:
            setattr(cls, attr, _StructField(f"{name}.{attr}", raw.__dict__[attr]))
        type.__setattr__(cls, "_raw_class", raw)
        type.__setattr__(cls, "struct_fields", tuple(fields))
        return cls


class BqlStruct(metaclass=_BqlStructMeta):
    """Device state whose fields check the BQL on every access.

    Subclass it and annotate the fields; set their values in ``__init__``.
    Each field is then a checked attribute: reading it is a short shared
    borrow and writing it a short mutable borrow of the whole struct, so a
    register write is one line (``self.regs.ibrd = value & IBRD_MASK``) and
    still needs the BQL.  Code that changes several fields together, or calls
    methods of the struct on the MMIO path, takes one borrow for the whole
    change: ``with regs.borrow_mut() as raw:`` yields the struct's *raw view*,
    the same fields without checks (so the block costs three calls, not one
    per access), and for as long as the block is alive any access through
    the struct itself fails -- a callback that re-enters the device while
    its state is half changed is caught, as with :class:`BqlRefCell`.

    This is QEMU Rust's ``BqlRefCell<Registers>`` with the borrow folded
    into each field access; mypy checks the fields as ordinary attributes.
    Python cannot stop code from changing an object read from a field in
    place (a :class:`~qemu_api.bits.Bitfield`, a list): do that inside a
    ``borrow_mut()`` block, and assign whole values through the struct.

    Class attributes that are not fields are annotated ``ClassVar`` or
    ``Final``.  A field may not have a class-level default.

    >>> class Counter(BqlStruct):
    ...     count: int
    ...     period: int
    ...
    ...     def __init__(self) -> None:
    ...         self.count = 0
    ...         self.period = 10
    >>> c = Counter()
    >>> c.count += 1  # a checked read, then a checked write
    >>> with c.borrow_mut() as raw:  # one exclusive borrow for several fields
    ...     raw.period = 20
    ...     raw.count = raw.period * 2
    ...     c.period  # what a re-entrant callback would do
    Traceback (most recent call last):
      ...
    qemu_api.bql.BorrowError: reading Counter.period: the struct is mutably \
borrowed; code that runs inside that 'with ... borrow_mut()' block (a callback \
that re-entered the device?) must use the block's value, or the block must end \
before calling out to IRQ lines, chardevs or timers
    >>> c.count, c.period
    (40, 20)
    >>> Counter.struct_fields
    ('count', 'period')
    """

    __slots__ = ("_borrows", "_cell", "_mut_guard", "_ref_guard", "_value", "_where")

    struct_fields: ClassVar[tuple[str, ...]] = ()
    """The names of the fields, in declaration order (base classes first)."""
    _raw_class: ClassVar[type[BqlStruct]]

    _borrows: int
    _cell: Self
    _value: Self
    _where: str
    _ref_guard: BqlRef[Self]
    _mut_guard: BqlRefMut[Self]

    def __new__(cls, *args: object, **kwargs: object) -> Self:
        """Make the struct and its raw view; ``__init__`` then sets the fields."""
        raw_class = cls.__dict__.get("_raw_class")
        if raw_class is None:
            raise TypeError(
                f"{cls.__name__} is not a struct to instantiate: subclass "
                "BqlStruct and annotate its fields"
            )
        self = object.__new__(cls)
        raw = object.__new__(raw_class)
        self._init_view(self, raw)
        raw._init_view(self, raw)
        return self

    def _init_view(self, cell: Self, raw: Self) -> None:
        self._cell = cell
        self._value = raw
        self._borrows = 0
        self._where = ""
        self._ref_guard = BqlRef[Self](cell)
        self._mut_guard = BqlRefMut[Self](cell)

    def _label(self) -> str:
        return type(self).__name__

    def _where_text(self) -> str:
        if _debug_cell and self._cell._where:
            return f" (first borrowed at {self._cell._where})"
        return ""

    def borrow(self) -> BqlRef[Self]:
        """Borrow the struct for reading: ``with regs.borrow() as raw:``.

        The value is the raw view; field accesses through the struct itself
        stay allowed meanwhile (shared borrows nest), writes fail.

        Raises (on entering the ``with`` block):
            BqlNotHeldError: the current thread does not hold the BQL.
            BorrowError: the struct is mutably borrowed.
        """
        return self._cell._ref_guard

    def borrow_mut(self) -> BqlRefMut[Self]:
        """Borrow the struct for changing it: ``with regs.borrow_mut() as raw:``.

        The value is the raw view; any access through the struct itself
        fails until the block ends.

        Raises (on entering the ``with`` block):
            BqlNotHeldError: the current thread does not hold the BQL.
            BorrowMutError: the struct is already borrowed.
        """
        return self._cell._mut_guard

    def is_borrowed(self) -> bool:
        """Return True while a ``borrow()`` or ``borrow_mut()`` block is alive."""
        return self._cell._borrows != 0

    @override
    def __repr__(self) -> str:
        cell = self._cell
        name = type(self).__name__
        if not _held.held:
            return f"<{name} (BQL not held)>"
        if cell._borrows < 0 and cell is self:
            return f"<{name} (mutably borrowed)>"
        raw = cell._value
        shown = ", ".join(
            f"{f}={getattr(raw, f, '<unset>')!r}" for f in type(self).struct_fields
        )
        return f"{name}({shown})"
