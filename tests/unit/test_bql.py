import enum
import threading

import pytest

from qemu_api.bql import (
    BorrowError,
    BorrowMutError,
    BqlAlreadyHeldError,
    BqlCell,
    BqlError,
    BqlNotHeldError,
    BqlRefCell,
    BqlUnlockBlockedError,
    bql_assert_locked,
    bql_block_unlock,
    bql_guard,
    bql_lock,
    bql_locked,
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
