import time

import pytest

from qemu_api.bql import BqlNotHeldError, bql_locked, bql_unlock
from qemu_api.error import Error
from qemu_api.qom import Container, Object, object_get_root
from qemu_api.timer import (
    CLOCK_HOST,
    CLOCK_REALTIME,
    CLOCK_VIRTUAL,
    CLOCK_VIRTUAL_RT,
    NANOSECONDS_PER_SECOND,
    SCALE_MS,
    SCALE_NS,
    SCALE_US,
    QEMUClockType,
    Timer,
    clock_set,
    clock_step,
    qemu_clock_deadline_ns,
    qemu_clock_expired,
    qemu_clock_get_ms,
    qemu_clock_get_ns,
    qemu_clock_get_us,
    qemu_clock_run_all_timers,
    qemu_clock_run_timers,
    qemu_clock_set_notify,
    timer_new_ms,
    timer_new_ns,
    timer_new_us,
    virtual_clock_reset,
)


def vnow():
    return qemu_clock_get_ns(CLOCK_VIRTUAL)


class Recorder:
    """Timer callbacks that record (name, virtual time) when they run."""

    def __init__(self):
        self.log = []

    def cb(self, name):
        def callback():
            assert bql_locked()
            self.log.append((name, vnow()))

        return callback

    def timer(self, name, clock=CLOCK_VIRTUAL, scale=SCALE_NS):
        return Timer(clock, scale, self.cb(name))


@pytest.fixture
def rec():
    return Recorder()


def test_clock_types_and_constants():
    assert [(c.name, int(c)) for c in QEMUClockType] == [
        ("REALTIME", 0),
        ("VIRTUAL", 1),
        ("HOST", 2),
        ("VIRTUAL_RT", 3),
    ]
    assert CLOCK_REALTIME is QEMUClockType.REALTIME
    assert CLOCK_VIRTUAL is QEMUClockType.VIRTUAL
    assert CLOCK_HOST is QEMUClockType.HOST
    assert CLOCK_VIRTUAL_RT is QEMUClockType.VIRTUAL_RT
    assert (SCALE_NS, SCALE_US, SCALE_MS) == (1, 1000, 1000000)
    assert NANOSECONDS_PER_SECOND == 10**9


def test_virtual_clock_starts_at_zero_and_reads_in_units():
    assert vnow() == 0
    virtual_clock_reset(3_456_789_123)
    assert qemu_clock_get_ns(CLOCK_VIRTUAL) == 3_456_789_123
    assert qemu_clock_get_ns(CLOCK_VIRTUAL_RT) == 3_456_789_123
    assert qemu_clock_get_us(CLOCK_VIRTUAL) == 3_456_789
    assert qemu_clock_get_ms(CLOCK_VIRTUAL) == 3_456


def test_host_clocks():
    a = qemu_clock_get_ns(CLOCK_REALTIME)
    b = qemu_clock_get_ns(CLOCK_REALTIME)
    assert a <= b
    assert abs(qemu_clock_get_ns(CLOCK_HOST) - time.time_ns()) < 10**9
    assert abs(qemu_clock_get_ms(CLOCK_REALTIME) - time.monotonic_ns() // 10**6) < 1000
    assert qemu_clock_get_ns(QEMUClockType(1)) == vnow()


def test_virtual_clock_does_not_move_by_itself():
    time.sleep(0.001)
    assert vnow() == 0


def test_mod_in_scale_units(rec):
    t = rec.timer("a", scale=SCALE_US)
    assert not t.pending()
    assert t.expire_time() == -1
    t.mod(5)
    assert t.pending()
    assert t.expire_time() == 5000
    assert clock_step(4999) == 4999
    assert rec.log == []
    assert clock_step(1) == 5000
    assert rec.log == [("a", 5000)]
    assert not t.pending()
    assert t.expire_time() == -1


def test_mod_ns_and_negative_expiry(rec):
    t = rec.timer("a", scale=SCALE_MS)
    t.mod_ns(1234)
    assert t.expire_time() == 1234
    t.mod_ns(-5)
    assert t.expire_time() == 0
    clock_step(0)
    assert rec.log == [("a", 0)]


def test_timer_new_helpers():
    assert timer_new_ns(CLOCK_VIRTUAL, lambda: None).scale == 1
    assert timer_new_us(CLOCK_VIRTUAL, lambda: None).scale == 1000
    assert timer_new_ms(CLOCK_HOST, lambda: None).scale == 1000000
    assert timer_new_ms(CLOCK_HOST, lambda: None).clock is CLOCK_HOST


def test_timer_constructor_errors():
    untyped_timer: type = Timer
    with pytest.raises(
        TypeError, match=r"^1 is not a QEMUClockType; use CLOCK_VIRTUAL"
    ):
        untyped_timer(1, SCALE_NS, lambda: None)
    with pytest.raises(ValueError, match="positive number of ns per unit, not 0"):
        Timer(CLOCK_VIRTUAL, 0, lambda: None)


def test_expiry_order_each_at_its_own_deadline(rec):
    rec.timer("c").mod_ns(300)
    rec.timer("a").mod_ns(100)
    rec.timer("b").mod_ns(200)
    assert clock_step(1000) == 1000
    assert rec.log == [("a", 100), ("b", 200), ("c", 300)]
    assert vnow() == 1000


def test_ties_run_in_arming_order(rec):
    t1, t2, t3 = rec.timer("1"), rec.timer("2"), rec.timer("3")
    t2.mod_ns(50)
    t1.mod_ns(50)
    t3.mod_ns(50)
    t2.mod_ns(50)  # re-arming moves t2 behind the others
    clock_step(50)
    assert rec.log == [("1", 50), ("3", 50), ("2", 50)]


def test_periodic_rearm_from_callback():
    times = []

    def tick():
        times.append(vnow())
        t.mod(qemu_clock_get_ms(CLOCK_VIRTUAL) + 1)

    t = Timer(CLOCK_VIRTUAL, SCALE_MS, tick)
    t.mod(1)
    clock_step(5 * SCALE_MS)
    assert times == [1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000]
    assert t.pending()
    assert t.expire_time() == 6_000_000


def test_callback_deletes_another_due_timer(rec):
    victim = rec.timer("victim")

    def killer():
        rec.log.append(("killer", vnow()))
        victim.delete()

    Timer(CLOCK_VIRTUAL, SCALE_NS, killer).mod_ns(10)
    victim.mod_ns(10)
    clock_step(100)
    assert rec.log == [("killer", 10)]
    assert not victim.pending()


def test_callback_arms_an_earlier_timer_within_the_step(rec):
    late = rec.timer("late")

    def first():
        rec.log.append(("first", vnow()))
        late.mod_ns(vnow() + 5)

    Timer(CLOCK_VIRTUAL, SCALE_NS, first).mod_ns(10)
    clock_step(100)
    assert rec.log == [("first", 10), ("late", 15)]


def test_callback_arms_a_timer_in_the_past(rec):
    past = rec.timer("past")

    def first():
        rec.log.append(("first", vnow()))
        past.mod_ns(1)

    Timer(CLOCK_VIRTUAL, SCALE_NS, first).mod_ns(10)
    rec.timer("after").mod_ns(20)
    clock_step(100)
    # Due at once: it runs before the clock moves on, at the current time.
    assert rec.log == [("first", 10), ("past", 10), ("after", 20)]


def test_timer_armed_in_the_past_runs_at_next_step(rec):
    clock_set(1000)
    rec.timer("old").mod_ns(400)
    assert rec.log == []
    assert qemu_clock_deadline_ns(CLOCK_VIRTUAL) == 0
    assert qemu_clock_expired(CLOCK_VIRTUAL)
    assert clock_step(0) == 1000
    assert rec.log == [("old", 1000)]


def test_clock_step_to_next_deadline(rec):
    rec.timer("a").mod_ns(700)
    rec.timer("b").mod_ns(900)
    assert clock_step() == 700
    assert rec.log == [("a", 700)]
    assert clock_step() == 900
    assert rec.log == [("a", 700), ("b", 900)]


def test_clock_step_without_deadline():
    with pytest.raises(Error) as ei:
        clock_step()
    assert str(ei.value) == (
        "cannot advance clock to the next deadline because there is no pending deadline"
    )
    assert "Arm a virtual-clock timer first" in (ei.value.hint or "")


def test_clock_step_negative():
    with pytest.raises(Error, match=r"^clock_step\(-1\): the step must be 0 or more"):
        clock_step(-1)


def test_clock_set(rec):
    rec.timer("a").mod_ns(50)
    assert clock_set(100) == 100
    assert rec.log == [("a", 50)]
    assert clock_set(100) == 100


def test_clock_set_backwards():
    clock_set(500)
    with pytest.raises(Error) as ei:
        clock_set(499)
    assert str(ei.value) == (
        "clock_set(499): the virtual clock is at 500 ns and cannot go backwards"
    )
    assert "virtual_clock_reset()" in (ei.value.hint or "")
    assert vnow() == 500


def test_clock_cannot_move_from_a_callback():
    errors = []

    def cb():
        for move in (
            lambda: clock_step(1),
            lambda: clock_set(10**6),
            virtual_clock_reset,
        ):
            try:
                move()
            except Error as exc:
                errors.append(str(exc))

    Timer(CLOCK_VIRTUAL, SCALE_NS, cb).mod_ns(5)
    clock_step(10)
    cannot_move = "a callback cannot move the virtual clock: arm a timer instead"
    assert errors == [
        f"clock_step() called from a timer callback; {cannot_move}",
        f"clock_set() called from a timer callback; {cannot_move}",
        (
            "virtual_clock_reset() called from a timer callback; reset the clock "
            "between machine runs"
        ),
    ]
    assert vnow() == 10


def test_exception_in_callback_propagates_and_leaves_a_usable_clock(rec):
    def boom():
        raise RuntimeError("device bug")

    Timer(CLOCK_VIRTUAL, SCALE_NS, boom).mod_ns(10)
    rec.timer("later").mod_ns(20)
    with pytest.raises(RuntimeError, match="device bug"):
        clock_step(100)
    assert vnow() == 10
    assert clock_step(100) == 110  # not stuck in "stepping"
    assert rec.log == [("later", 20)]


def test_deadline(rec):
    assert qemu_clock_deadline_ns(CLOCK_VIRTUAL) == -1
    assert not qemu_clock_expired(CLOCK_VIRTUAL)
    clock_set(100)
    t = rec.timer("a")
    t.mod_ns(350)
    assert qemu_clock_deadline_ns(CLOCK_VIRTUAL) == 250
    assert qemu_clock_deadline_ns(CLOCK_VIRTUAL_RT) == 250
    rec.timer("b").mod_ns(120)
    assert qemu_clock_deadline_ns(CLOCK_VIRTUAL) == 20
    assert qemu_clock_deadline_ns(CLOCK_REALTIME) == -1
    t.delete()
    assert not t.pending()
    t.delete()  # deleting an idle timer is fine


def test_delete_prevents_running(rec):
    t = rec.timer("a")
    t.mod_ns(10)
    t.delete()
    clock_step(100)
    assert rec.log == []


def test_mod_moves_a_pending_timer(rec):
    t = rec.timer("a")
    t.mod_ns(10)
    t.mod_ns(60)
    clock_step(50)
    assert rec.log == []
    clock_step(10)
    assert rec.log == [("a", 60)]


def test_mod_anticipate(rec):
    t = rec.timer("a", scale=SCALE_US)
    t.mod_anticipate(10)
    assert t.expire_time() == 10_000
    t.mod_anticipate(20)
    assert t.expire_time() == 10_000
    t.mod_anticipate_ns(5_000)
    assert t.expire_time() == 5_000
    t.mod_anticipate_ns(5_000)
    assert t.expire_time() == 5_000


def test_expired():
    t = Timer(CLOCK_VIRTUAL, SCALE_US, lambda: None)
    assert not t.expired(100)
    t.mod(10)
    assert not t.expired(9)
    assert t.expired(10)
    assert t.expired(11)


def test_virtual_rt_shares_virtual_time(rec):
    rec.timer("rt", clock=CLOCK_VIRTUAL_RT).mod_ns(30)
    rec.timer("v").mod_ns(20)
    clock_step(100)
    assert rec.log == [("v", 20), ("rt", 30)]


def test_run_timers_on_virtual_clock_does_not_move_it(rec):
    clock_set(100)
    rec.timer("due").mod_ns(100)
    rec.timer("future").mod_ns(101)
    assert qemu_clock_run_timers(CLOCK_VIRTUAL) is True
    assert rec.log == [("due", 100)]
    assert qemu_clock_run_timers(CLOCK_VIRTUAL) is False
    assert vnow() == 100


def test_realtime_and_host_timers(rec):
    now = qemu_clock_get_ns(CLOCK_REALTIME)
    due = rec.timer("rt-due", clock=CLOCK_REALTIME)
    due.mod_ns(now - 1)
    later = rec.timer("rt-later", clock=CLOCK_REALTIME)
    later.mod_ns(now + 3600 * NANOSECONDS_PER_SECOND)
    host = rec.timer("host", clock=CLOCK_HOST, scale=SCALE_MS)
    host.mod(qemu_clock_get_ms(CLOCK_HOST) - 1)
    assert qemu_clock_deadline_ns(CLOCK_REALTIME) == 0
    clock_step(10**9)  # the virtual clock does not run host timers
    assert rec.log == []
    assert qemu_clock_run_timers(CLOCK_REALTIME) is True
    assert [name for name, _ in rec.log] == ["rt-due"]
    assert later.pending()
    assert 0 < qemu_clock_deadline_ns(CLOCK_REALTIME) <= 3600 * NANOSECONDS_PER_SECOND
    assert qemu_clock_run_all_timers() is True
    assert [name for name, _ in rec.log] == ["rt-due", "host"]
    assert qemu_clock_run_all_timers() is False


def test_run_all_timers_includes_due_virtual(rec):
    rec.timer("v").mod_ns(0)
    assert qemu_clock_run_all_timers() is True
    assert rec.log == [("v", 0)]


def test_notify_when_deadline_moves_earlier():
    seen: list[QEMUClockType] = []
    qemu_clock_set_notify(seen.append)
    a = Timer(CLOCK_VIRTUAL, SCALE_NS, lambda: None)
    b = Timer(CLOCK_REALTIME, SCALE_NS, lambda: None)
    a.mod_ns(100)
    a.mod_ns(200)  # still the first one: the deadline moved, notify again
    Timer(CLOCK_VIRTUAL, SCALE_NS, lambda: None).mod_ns(300)  # not first
    b.mod_ns(10**18)
    assert seen == [CLOCK_VIRTUAL, CLOCK_VIRTUAL, CLOCK_REALTIME]
    qemu_clock_set_notify(None)
    Timer(CLOCK_VIRTUAL, SCALE_NS, lambda: None).mod_ns(1)
    assert len(seen) == 3


def test_virtual_clock_reset_deletes_every_timer(rec):
    v = rec.timer("v")
    v.mod_ns(10)
    r = rec.timer("r", clock=CLOCK_REALTIME)
    r.mod_ns(0)
    clock_set(5)
    virtual_clock_reset(1000)
    assert vnow() == 1000
    assert not v.pending()
    assert not r.pending()
    assert qemu_clock_deadline_ns(CLOCK_VIRTUAL) == -1
    assert qemu_clock_run_all_timers() is False
    v.mod_ns(1001)  # the timer objects stay usable
    clock_step(1)
    assert rec.log == [("v", 1001)]


def test_virtual_clock_reset_negative():
    with pytest.raises(
        ValueError, match=r"virtual_clock_reset\(-1\): the time must be"
    ):
        virtual_clock_reset(-1)


def test_repr():
    t = Timer(CLOCK_VIRTUAL, SCALE_US, lambda: None)
    assert repr(t) == "Timer(VIRTUAL, scale=1000, idle)"
    t.mod(3)
    assert repr(t) == "Timer(VIRTUAL, scale=1000, expire=3000 ns)"


@pytest.mark.parametrize(
    ("what", "call"),
    [
        ("Timer.mod()", lambda t: t.mod(1)),
        ("Timer.mod()", lambda t: t.mod_ns(1)),
        ("Timer.mod_anticipate()", lambda t: t.mod_anticipate(5)),
        ("Timer.delete()", lambda t: t.delete()),
        ("clock_step()", lambda t: clock_step(1)),
        ("clock_set()", lambda t: clock_set(10)),
        ("qemu_clock_run_timers()", lambda t: qemu_clock_run_timers(CLOCK_VIRTUAL)),
        ("qemu_clock_run_all_timers()", lambda t: qemu_clock_run_all_timers()),
        ("virtual_clock_reset()", lambda t: virtual_clock_reset()),
    ],
)
def test_needs_bql(what, call):
    t = Timer(CLOCK_VIRTUAL, SCALE_NS, lambda: None)
    t.mod_ns(1)
    bql_unlock()
    with pytest.raises(BqlNotHeldError) as ei:
        call(t)
    assert str(ei.value).startswith(f"{what} needs the BQL")


# -- ownership ------------------------------------------------------------------


class _TimerOwner(Object, type_name="test-timer-owner"):
    def on_timer(self) -> None:
        self.fired = True


def _attached(obj: Object, name: str) -> Object:
    return object_get_root().property_add_child(name, obj)


def test_timer_owner_is_inferred_from_a_bound_method() -> None:
    owner = _TimerOwner()
    t = Timer(CLOCK_VIRTUAL, SCALE_NS, owner.on_timer)
    assert t.owner is owner
    assert timer_new_ns(CLOCK_VIRTUAL, lambda: None).owner is None
    other = Container()
    assert timer_new_us(CLOCK_VIRTUAL, owner.on_timer, owner=other).owner is other
    assert timer_new_ms(CLOCK_VIRTUAL, lambda: None, owner=other).owner is other


def test_timer_dies_with_its_owner() -> None:
    owner = _TimerOwner()
    _attached(owner, "owner")
    t = Timer(CLOCK_VIRTUAL, SCALE_US, owner.on_timer)
    t.mod(5)
    owner.unparent()
    assert not t.pending()
    assert t.released
    assert repr(t) == "Timer(VIRTUAL, scale=1000, released)"
    clock_step(10_000)
    assert not hasattr(owner, "fired")
    # Disarming a released timer is harmless (an explicit timer_del in a
    # device's instance_finalize keeps working); arming it is an error.
    t.delete()
    with pytest.raises(Error, match="released with its owner"):
        t.mod(1)
    with pytest.raises(Error, match="released with its owner"):
        t.mod_anticipate_ns(0)
