import enum
import threading
import types
from typing import ClassVar, Final

import pytest

from qemu_api.bql import (
    BorrowError,
    BorrowMutError,
    BqlAlreadyHeldError,
    BqlCell,
    BqlError,
    BqlNotHeldError,
    BqlRefCell,
    BqlStruct,
    BqlUnlockBlockedError,
    bql_assert_locked,
    bql_block_unlock,
    bql_guard,
    bql_lend,
    bql_lent_pair,
    bql_lock,
    bql_locked,
    bql_reclaim,
    bql_set_debug_cell,
    bql_unlock,
)


def run_in_thread(fn):
    """Run fn in another thread; return its result or the exception it raised."""
    out = []

    def body():
        try:
            out.append(fn())
        except BaseException as exc:
            out.append(exc)

    t = threading.Thread(target=body)
    t.start()
    t.join(5)
    assert not t.is_alive()
    return out[0]


class Mode(enum.Enum):
    A = 1


# --- the lock -----------------------------------------------------------------


def test_fixture_holds_the_lock():
    assert bql_locked()


def test_lock_unlock_cycle():
    bql_unlock()
    assert not bql_locked()
    bql_lock()
    assert bql_locked()


def test_lock_is_not_recursive():
    with pytest.raises(BqlAlreadyHeldError, match="already holds the BQL") as ei:
        bql_lock()
    assert "not recursive" in str(ei.value)
    assert isinstance(ei.value, RuntimeError)
    assert bql_locked()


def test_unlock_without_lock_raises():
    bql_unlock()
    with pytest.raises(BqlNotHeldError, match=r"bql_unlock\(\): the current thread"):
        bql_unlock()


def test_other_thread_does_not_hold_the_lock():
    assert run_in_thread(bql_locked) is False


def test_a_lent_bql_is_free_for_other_threads_and_taken_back():
    cell = BqlCell(1)
    take, release = bql_lent_pair()

    def other() -> int:
        bql_lock()
        try:
            cell.set(cell.get() + 1)
            return cell.get()
        finally:
            bql_unlock()

    bql_lend()
    try:
        # Another thread takes the BQL while this one has lent it ...
        assert run_in_thread(other) == 2
        # ... and a callback here takes it back around a device access.
        assert take()
        try:
            assert bql_locked()
            cell.set(cell.get() + 1)
        finally:
            release()
    finally:
        bql_reclaim()
    assert bql_locked()
    assert cell.get() == 3


def test_lend_and_reclaim_refuse_misuse():
    with pytest.raises(BqlError, match=r"bql_reclaim\(\): the current thread did not"):
        bql_reclaim()
    cell = BqlRefCell([0])
    with cell.borrow(), pytest.raises(BqlUnlockBlockedError, match="borrow"):
        bql_lend()
    assert bql_locked()
    bql_unlock()
    with pytest.raises(BqlNotHeldError, match=r"bql_lend\(\)"):
        bql_lend()


def test_other_thread_cannot_unlock():
    exc = run_in_thread(bql_unlock)
    assert isinstance(exc, BqlNotHeldError)
    assert bql_locked()


def test_lock_blocks_other_thread_until_released():
    taken = threading.Event()
    order = []

    def body():
        bql_lock()
        order.append("other")
        taken.set()
        bql_unlock()

    t = threading.Thread(target=body)
    t.start()
    assert not taken.wait(0.05)
    order.append("main")
    bql_unlock()
    assert taken.wait(5)
    t.join(5)
    bql_lock()
    assert order == ["main", "other"]


def test_guard_takes_and_releases():
    bql_unlock()
    with bql_guard():
        assert bql_locked()
    assert not bql_locked()


def test_guard_releases_on_exception():
    bql_unlock()
    with pytest.raises(ValueError, match="boom"), bql_guard():
        raise ValueError("boom")
    assert not bql_locked()


def test_guard_while_held_raises():
    with pytest.raises(BqlAlreadyHeldError), bql_guard():
        pass
    assert bql_locked()


def test_guard_in_other_thread():
    def body():
        with bql_guard():
            return bql_locked()

    bql_unlock()
    assert run_in_thread(body) is True
    bql_lock()


def test_assert_locked():
    bql_assert_locked()
    bql_unlock()
    with pytest.raises(BqlNotHeldError, match="reading the clock needs the BQL") as ei:
        bql_assert_locked("reading the clock")
    assert "bql_guard()" in str(ei.value)


def test_block_unlock_prevents_unlock():
    bql_block_unlock(True)
    bql_block_unlock(True)
    with pytest.raises(BqlUnlockBlockedError, match="2 BqlRefCell borrow"):
        bql_unlock()
    bql_block_unlock(False)
    bql_block_unlock(False)
    bql_unlock()
    assert not bql_locked()


def test_block_unlock_unbalanced():
    with pytest.raises(BqlError, match="without a matching"):
        bql_block_unlock(False)


def test_block_unlock_needs_bql():
    bql_unlock()
    with pytest.raises(BqlNotHeldError, match=r"bql_block_unlock\(\) needs the BQL"):
        bql_block_unlock(True)


# --- BqlCell ------------------------------------------------------------------


def test_cell_get_set_replace():
    c = BqlCell(1)
    assert c.get() == 1
    c.set(2)
    assert c.get() == 2
    assert c.replace(3) == 2
    assert c.get() == 3
    assert repr(c) == "BqlCell(3)"


@pytest.mark.parametrize(
    ("value", "zero"),
    [(7, 0), (True, False), ("x", ""), (b"ab", b""), ([1], []), ({1: 2}, {})],
)
def test_cell_take_leaves_zero_value(value, zero):
    c = BqlCell(value)
    assert c.take() == value
    assert c.get() == zero
    assert type(c.get()) is type(value)


def test_cell_take_without_zero_value():
    c = BqlCell(Mode.A)
    with pytest.raises(TypeError, match="Mode cannot be built without arguments") as ei:
        c.take()
    assert "cell.replace(new_value)" in str(ei.value)
    assert c.get() is Mode.A


@pytest.mark.parametrize(
    ("method", "args"),
    [("get", ()), ("set", (1,)), ("replace", (1,)), ("take", ())],
)
def test_cell_needs_bql(method, args):
    c = BqlCell(0)
    bql_unlock()
    with pytest.raises(BqlNotHeldError, match=rf"BqlCell.{method}\(\) needs the BQL"):
        getattr(c, method)(*args)


def test_cell_from_other_thread_raises():
    c = BqlCell(0)
    exc = run_in_thread(c.get)
    assert isinstance(exc, BqlNotHeldError)
    assert "bql_lock()" in str(exc)


# --- BqlRefCell ---------------------------------------------------------------


def test_refcell_borrow_mut_changes_value():
    c = BqlRefCell([0, 0])
    with c.borrow_mut() as v:
        v[0] = 5
    with c.borrow() as v:
        assert v == [5, 0]
    assert not c.is_borrowed()


def test_refcell_guards_are_preallocated():
    c = BqlRefCell(0)
    assert c.borrow() is c.borrow()
    assert c.borrow_mut() is c.borrow_mut()


def test_refcell_shared_borrows_nest():
    c = BqlRefCell(1)
    with c.borrow() as a, c.borrow() as b:
        assert a == b == 1
        assert c.is_borrowed()
    assert not c.is_borrowed()


def test_refcell_borrow_mut_while_borrowed():
    c = BqlRefCell(1)
    with c.borrow():
        with pytest.raises(BorrowMutError, match="already borrowed") as ei:
            c.borrow_mut().__enter__()
        assert "test_bql.py:" in str(ei.value)
        assert "first borrowed at" in str(ei.value)
    with c.borrow_mut():
        pass


def test_refcell_borrow_mut_twice():
    c = BqlRefCell(1)
    with c.borrow_mut():
        line = test_refcell_borrow_mut_twice.__code__.co_firstlineno + 2
        with pytest.raises(BorrowMutError, match="mutably borrowed") as ei:
            c.borrow_mut().__enter__()
        assert f"test_bql.py:{line})" in str(ei.value)
        assert "leave that 'with' block first" in str(ei.value)


def test_refcell_borrow_while_mut_borrowed():
    c = BqlRefCell(1)
    with c.borrow_mut():
        with pytest.raises(BorrowError, match="already mutably borrowed"):
            c.borrow().__enter__()
        with pytest.raises(BorrowError):
            c.get()
        with pytest.raises(BorrowMutError):
            c.set(2)
        with pytest.raises(BorrowMutError):
            c.replace(2)
        assert repr(c) == "BqlRefCell(<mutably borrowed>)"
    assert c.get() == 1


def test_refcell_without_debug_has_no_location():
    bql_set_debug_cell(False)
    c = BqlRefCell(1)
    with c.borrow_mut(), pytest.raises(BorrowMutError) as ei:
        c.borrow_mut().__enter__()
    assert "first borrowed at" not in str(ei.value)


def test_refcell_released_on_exception():
    c = BqlRefCell(1)
    with pytest.raises(KeyError), c.borrow_mut():
        raise KeyError("x")
    assert not c.is_borrowed()
    bql_unlock()  # no borrow left to block it


def test_refcell_get_set_replace():
    c = BqlRefCell("a")
    assert c.get() == "a"
    c.set("b")
    assert c.replace("c") == "b"
    assert c.get() == "c"
    assert repr(c) == "BqlRefCell('c')"
    with c.borrow():
        assert c.get() == "c"  # shared borrows nest


def test_refcell_blocks_unlock():
    c = BqlRefCell(1)
    with c.borrow(), pytest.raises(BqlUnlockBlockedError, match="leave the 'with"):
        bql_unlock()
    with c.borrow_mut(), pytest.raises(BqlUnlockBlockedError):
        bql_unlock()
    bql_unlock()
    assert not bql_locked()


@pytest.mark.parametrize("method", ["borrow", "borrow_mut"])
def test_refcell_needs_bql(method):
    c = BqlRefCell(1)
    bql_unlock()
    with pytest.raises(BqlNotHeldError, match=rf"BqlRefCell.{method}\(\) needs"):
        getattr(c, method)().__enter__()
    assert not c.is_borrowed()


def test_refcell_from_other_thread_raises():
    c = BqlRefCell(1)
    exc = run_in_thread(c.get)
    assert isinstance(exc, BqlNotHeldError)


# --- BqlStruct ----------------------------------------------------------------------


class Uart(BqlStruct):
    """Registers of a small UART: the fields check the BQL and the borrow."""

    DEPTH: ClassVar[int] = 4
    WIDTH: Final = 8

    ctrl: int
    fifo: list[int]
    count: int

    def __init__(self):
        self.ctrl = 0
        self.fifo = [0] * self.DEPTH
        self.count = 0

    def push(self, byte):
        self.fifo[self.count] = byte
        self.count += 1


def test_struct_fields_read_and_write_like_attributes():
    u = Uart()
    u.ctrl = 0x301
    u.ctrl |= 0x80
    assert u.ctrl == 0x381
    assert Uart.struct_fields == ("ctrl", "fifo", "count")
    assert (Uart.DEPTH, Uart.WIDTH) == (4, 8)  # class constants are not fields


def test_struct_needs_bql_to_read_and_write():
    u = Uart()
    bql_unlock()
    with pytest.raises(BqlNotHeldError, match=r"reading Uart\.ctrl needs the BQL"):
        _ = u.ctrl
    with pytest.raises(BqlNotHeldError, match=r"writing Uart\.ctrl needs the BQL"):
        u.ctrl = 1
    with pytest.raises(BqlNotHeldError, match=r"Uart\.borrow_mut\(\) needs the BQL"):
        u.borrow_mut().__enter__()
    bql_lock()
    assert u.ctrl == 0


def test_struct_from_other_thread_raises():
    u = Uart()
    exc = run_in_thread(lambda: u.count)
    assert isinstance(exc, BqlNotHeldError)

    def write():
        u.count = 5

    assert isinstance(run_in_thread(write), BqlNotHeldError)
    assert u.count == 0


def test_struct_borrow_mut_yields_the_raw_view():
    u = Uart()
    with u.borrow_mut() as raw:
        assert isinstance(raw, Uart)
        assert raw is not u
        raw.push(0x41)
        raw.push(0x42)
        assert u.is_borrowed()
    assert not u.is_borrowed()
    assert (u.fifo[:2], u.count) == ([0x41, 0x42], 2)


def test_struct_reentrant_access_during_a_mutable_borrow_is_caught():
    u = Uart()

    def callback():
        # What a chardev or IRQ callback re-entering the device would do.
        return u.count

    with u.borrow_mut() as raw:
        raw.count = 1
        with pytest.raises(
            BorrowError, match=r"reading Uart\.count: the struct is mut"
        ):
            callback()
        with pytest.raises(
            BorrowMutError, match=r"writing Uart\.ctrl: the struct is m"
        ):
            u.ctrl = 1
        with pytest.raises(BorrowMutError, match=r"Uart\.borrow_mut\(\): the struct"):
            u.borrow_mut().__enter__()
        with pytest.raises(BorrowError, match=r"Uart\.borrow\(\): the struct is"):
            raw.borrow().__enter__()  # the raw view borrows the same struct
    assert (u.count, u.ctrl) == (1, 0)


def test_struct_shared_borrow_allows_reads_not_writes():
    u = Uart()
    with u.borrow() as raw, u.borrow():
        assert u.ctrl == raw.ctrl == 0
        with pytest.raises(
            BorrowMutError, match=r"writing Uart\.ctrl: the struct is al"
        ):
            u.ctrl = 1
    u.ctrl = 1


def test_struct_borrow_blocks_unlock_and_names_the_first_borrow():
    u = Uart()
    with u.borrow_mut(), pytest.raises(BqlUnlockBlockedError):
        bql_unlock()
    bql_set_debug_cell(True)
    try:
        with u.borrow_mut(), pytest.raises(BorrowError) as ei:
            _ = u.ctrl
    finally:
        bql_set_debug_cell(False)
    assert "first borrowed at" in str(ei.value)
    assert "test_bql.py" in str(ei.value)


def test_struct_has_no_stray_attributes():
    u = Uart()
    with pytest.raises(AttributeError):
        object.__setattr__(u, "ctlr", 1)  # a typo that mypy would catch
    with pytest.raises(AttributeError, match="cannot be deleted"):
        del u.ctrl


def test_struct_subclass_inherits_the_fields():
    class Luminary(Uart):
        extra: int

        def __init__(self):
            super().__init__()
            self.extra = 7

    lum = Luminary()
    assert Luminary.struct_fields == ("ctrl", "fifo", "count", "extra")
    with lum.borrow_mut() as raw:
        raw.push(1)
        raw.extra += 1
    assert (lum.count, lum.extra) == (1, 8)
    bql_unlock()
    with pytest.raises(BqlNotHeldError):
        _ = lum.extra
    bql_lock()


def test_struct_repr():
    u = Uart()
    assert repr(u) == "Uart(ctrl=0, fifo=[0, 0, 0, 0], count=0)"
    with u.borrow_mut():
        assert repr(u) == "<Uart (mutably borrowed)>"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"__annotations__": {"x": "int"}, "x": 0}, "has no class-level default"),
        ({"__annotations__": {"borrow": "int"}}, "is a BqlStruct attribute"),
        ({"__annotations__": {"x": "int"}, "__slots__": ("x",)}, "remove __slots__"),
    ],
)
def test_struct_declaration_errors(body, message):
    with pytest.raises(TypeError, match=message):
        types.new_class("Bad", (BqlStruct,), exec_body=lambda ns: ns.update(body))


def test_bqlstruct_itself_is_not_instantiable():
    with pytest.raises(TypeError, match="not a struct to instantiate"):
        BqlStruct()
