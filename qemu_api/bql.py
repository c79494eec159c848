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

import sys
import threading
from _thread import get_ident
from types import TracebackType
from typing import Generic, TypeVar, final

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
    "BqlUnlockBlockedError",
    "bql_assert_locked",
    "bql_block_unlock",
    "bql_guard",
    "bql_lock",
    "bql_locked",
    "bql_set_debug_cell",
    "bql_unlock",
]

T = TypeVar("T")

# The lock itself, the thread id of its owner (None when free) and the number
# of live BqlRefCell borrows (QEMU's bql_unlock_blocked).  The owner and the
# counter are only written by the thread that holds the lock.
_bql = threading.Lock()
_owner: int | None = None
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
    return _owner == get_ident()


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
    if _owner != get_ident():
        raise _not_held(what)


def bql_lock() -> None:
    """Take the BQL, waiting for another thread to release it if needed.

    Raises:
        BqlAlreadyHeldError: the current thread already holds the BQL (the
            lock is not recursive, as in QEMU).
    """
    global _owner
    me = get_ident()
    if _owner == me:
        raise BqlAlreadyHeldError(
            "bql_lock(): the current thread already holds the BQL and the BQL is "
            "not recursive; take it once at the outermost level (device callbacks "
            "already run with it held)"
        )
    _bql.acquire()
    _owner = me


def bql_unlock() -> None:
    """Release the BQL held by the current thread.

    Raises:
        BqlNotHeldError: the current thread does not hold the BQL.
        BqlUnlockBlockedError: a :class:`BqlRefCell` borrow is still alive
            (QEMU's ``bql_block_unlock``); leave the ``with`` block first.
    """
    global _owner
    if _owner != get_ident():
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
    _bql.release()


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
    if _owner != get_ident():
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
        if _owner != get_ident():
            raise _not_held("BqlCell.get()")
        return self._value

    def set(self, value: T) -> None:
        """Store ``value``.

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
        """
        if _owner != get_ident():
            raise _not_held("BqlCell.set()")
        self._value = value

    def replace(self, value: T) -> T:
        """Store ``value`` and return the previous value.

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
        """
        if _owner != get_ident():
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
        if _owner != get_ident():
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


@final
class BqlRef(Generic[T]):
    """The context manager returned by :meth:`BqlRefCell.borrow`.

    Each cell owns one instance, so borrowing allocates nothing; entering it
    adds a shared borrow and yields the value, leaving it drops the borrow.
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: BqlRefCell[T]) -> None:
        self._cell = cell

    def __enter__(self) -> T:
        global _unlock_blocked
        cell = self._cell
        if _owner != get_ident():
            raise _not_held("BqlRefCell.borrow()")
        if cell._borrows < 0:
            raise BorrowError(
                "BqlRefCell.borrow(): the cell is already mutably borrowed"
                f"{cell._where_text()}; leave that 'with ... borrow_mut()' "
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

    def __init__(self, cell: BqlRefCell[T]) -> None:
        self._cell = cell

    def __enter__(self) -> T:
        global _unlock_blocked
        cell = self._cell
        if _owner != get_ident():
            raise _not_held("BqlRefCell.borrow_mut()")
        if cell._borrows:
            kind = "mutably" if cell._borrows < 0 else "already"
            raise BorrowMutError(
                f"BqlRefCell.borrow_mut(): the cell is {kind} borrowed"
                f"{cell._where_text()}; leave that 'with' block first (pass "
                "the value down instead of borrowing the cell again)"
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
        self._ref_guard = BqlRef(self)
        self._mut_guard = BqlRefMut(self)

    def _where_text(self) -> str:
        if _debug_cell and self._where:
            return f" (first borrowed at {self._where})"
        return ""

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
