"""system: QemuOpts parsing, run state and events, the main loop."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from qemu_api.bql import bql_lock, bql_unlock
from qemu_api.error import Error
from qemu_api.option import parse_bool, parse_size, qemu_opts_parse, split_opts
from qemu_api.qmp_event import qapi_event_add_listener, qapi_event_remove_all_listeners
from qemu_api.timer import (
    CLOCK_REALTIME,
    CLOCK_VIRTUAL,
    SCALE_MS,
    SCALE_NS,
    Timer,
    qemu_clock_get_ns,
    qemu_clock_set_notify,
)
from system import runstate
from system.main_loop import MainLoop
from system.runstate import RunState, ShutdownCause


def test_split_and_parse_opts() -> None:
    assert split_opts("a,,b,c=d,,e") == ["a,b", "c=d,e"]
    opts = qemu_opts_parse(
        "socket,id=c0,path=/tmp/x,server,wait=off", implied="backend"
    )
    assert opts.values == {
        "backend": "socket",
        "id": "c0",
        "path": "/tmp/x",
        "server": "on",
        "wait": "off",
    }
    assert opts.get_bool("server", False) is True
    assert opts.get_bool("wait", True) is False
    assert opts.get_bool("nodelay", True) is True
    assert qemu_opts_parse("pl011,?", implied="driver").help


def test_opts_errors() -> None:
    with pytest.raises(Error, match=r"^Invalid parameter 'colour'$"):
        qemu_opts_parse("a=1,colour=2", accepted=frozenset({"a"}))
    with pytest.raises(Error, match=r"^Invalid parameter ''$"):  # as QEMU 7.2
        qemu_opts_parse("a=1,=x")
    with pytest.raises(Error, match="Parameter 'server' expects 'on' or 'off'"):
        parse_bool("server", "perhaps")


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [
        ("0", "B", 0),
        ("4096", "B", 4096),
        ("1K", "B", 1024),
        ("2G", "B", 2 << 30),
        ("128", "M", 128 << 20),
        ("0x10", "B", 16),
        ("1.5M", "B", 3 << 19),
    ],
)
def test_parse_size(text: str, unit: str, expected: int) -> None:
    assert parse_size("size", text, unit) == expected


# Each as QEMU 7.2 answers it for -m (qemu-system-aarch64 -M virt -m TEXT).
@pytest.mark.parametrize(
    "bad",
    [
        *("", "-1", "12Q", "1.5", "x", "1.0e400", "1e3", "nan", "64M ", "-0", ".5G"),
        *("0x1.5M", "64MB", "99999999999999999999M", "9" * 5000 + "M"),
    ],
)
def test_parse_size_rejects(bad: str) -> None:
    with pytest.raises(Error, match="expects a non-negative number below 2"):
        parse_size("size", bad)


@pytest.mark.parametrize(
    "big", ["17E", "16E", "17179869184G", "18446744073709551616", "9" * 5000]
)
def test_parse_size_out_of_range(big: str) -> None:
    with pytest.raises(
        Error, match=r"^Value '.+' is out of range for parameter 'size'$"
    ):
        parse_size("size", big)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *((" 64M", 64 << 20), ("+64M", 64 << 20), ("1.M", 1 << 20), ("0.5k", 512)),
        *(("1.0", 1), ("0x10M", 16 << 20), ("18446744073709551615", (1 << 64) - 1)),
        ("1.00000000000000000001G", 1 << 30),
    ],
)
def test_parse_size_like_qemu(text: str, expected: int) -> None:
    assert parse_size("size", text) == expected


def test_runstate_events_and_reset() -> None:
    events: list[tuple[str, object]] = []
    runstate.runstate_init(RunState.PRELAUNCH)
    qapi_event_add_listener(lambda n, d: events.append((n, d)))
    resets: list[ShutdownCause] = []
    runstate.qemu_system_reset_handler(resets.append)
    try:
        runstate.vm_start()
        runstate.vm_start()  # already running: no second RESUME
        runstate.vm_stop(RunState.PAUSED)
        runstate.vm_stop(RunState.PAUSED)  # not running: no second STOP
        runstate.qemu_system_reset(ShutdownCause.HOST_QMP_SYSTEM_RESET)
        runstate.qemu_system_shutdown_request(ShutdownCause.HOST_QMP_QUIT)
    finally:
        qapi_event_remove_all_listeners()
        runstate.qemu_system_reset_handler(None)
    assert events == [
        ("RESUME", {}),
        ("STOP", {}),
        ("RESET", {"guest": False, "reason": "host-qmp-system-reset"}),
        ("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"}),
    ]
    assert resets == [ShutdownCause.HOST_QMP_SYSTEM_RESET]
    assert runstate.shutdown_requested() is ShutdownCause.HOST_QMP_QUIT
    assert runstate.runstate_check(RunState.SHUTDOWN)


def test_internal_error_stops_the_machine(capsys: pytest.CaptureFixture[str]) -> None:
    runstate.runstate_init(RunState.RUNNING)
    try:
        raise ValueError("bad register")
    except ValueError as exc:
        runstate.report_internal_error("pl011 read at 0x9000000 size 4", exc)
    err = capsys.readouterr().err
    assert (
        "internal error in pl011 read at 0x9000000 size 4: ValueError: bad register"
        in err
    )
    assert "Traceback (most recent call last)" in err
    assert runstate.runstate_get() is RunState.INTERNAL_ERROR


def test_main_loop_fd_handlers_and_bottom_halves() -> None:
    loop = MainLoop()
    a, b = socket.socketpair()
    got: list[bytes] = []
    try:
        loop.set_fd_handler(a.fileno(), lambda: got.append(a.recv(100)), name="a")
        b.send(b"ping")
        loop.wait(1_000_000_000)
        assert got == [b"ping"]
        order: list[str] = []
        loop.bh_schedule(lambda: order.append("bh1"))
        loop.bh_schedule(lambda: loop.bh_schedule(lambda: order.append("bh3")))
        loop.wait(0)
        assert order == ["bh1"]  # a BH scheduled by a BH runs next time
        loop.wait(0)
        assert order == ["bh1", "bh3"]
        loop.set_fd_handler(a.fileno(), None, None)
        b.send(b"again")
        loop.wait(0)
        assert got == [b"ping"]
    finally:
        loop.close()
        a.close()
        b.close()


def test_main_loop_errors_go_to_the_handler() -> None:
    loop = MainLoop()
    seen: list[tuple[str, str]] = []
    loop.set_error_handler(lambda what, exc: seen.append((what, str(exc))))

    def boom() -> None:
        raise RuntimeError("model bug")

    loop.bh_schedule(boom, name="pl011 receive")
    loop.bh_schedule(lambda: seen.append(("next", "ran")))
    loop.wait(0)
    assert seen == [("pl011 receive", "model bug"), ("next", "ran")]
    loop.close()


def test_realtime_timers_wake_the_loop() -> None:
    loop = MainLoop()
    fired: list[int] = []
    t = Timer(CLOCK_REALTIME, SCALE_MS, lambda: fired.append(1))
    t.mod(qemu_clock_get_ns(CLOCK_REALTIME) // 1_000_000 + 20)
    loop.run(until=lambda: bool(fired))
    assert fired == [1]
    loop.close()


def test_virtual_clock_follows_host_only_while_running() -> None:
    loop = MainLoop()
    running = False
    loop.virtual_follows_host = True
    loop.machine_running = lambda: running
    fired: list[int] = []
    t = Timer(
        CLOCK_VIRTUAL, SCALE_MS, lambda: fired.append(qemu_clock_get_ns(CLOCK_VIRTUAL))
    )
    t.mod(5)
    loop.wait(10_000_000)
    assert qemu_clock_get_ns(CLOCK_VIRTUAL) == 0  # paused: time stands still
    running = True
    loop.run(until=lambda: bool(fired))
    assert fired == [5_000_000]  # the timer ran at its own deadline
    loop.close()


def test_the_vcpu_runs_due_virtual_timers_itself() -> None:
    # Before each device access the vCPU brings the virtual clock to host
    # time and runs the timers due, at their own deadlines, without the loop.
    loop = MainLoop()
    running = False
    loop.virtual_follows_host = True
    loop.machine_running = lambda: running
    fired: list[int] = []
    t = Timer(
        CLOCK_VIRTUAL, SCALE_NS, lambda: fired.append(qemu_clock_get_ns(CLOCK_VIRTUAL))
    )
    loop.wait(0)
    t.mod_ns(1)
    time.sleep(0.002)
    loop.vcpu_clock_sync()  # stopped: time stands still
    assert fired == []
    assert qemu_clock_get_ns(CLOCK_VIRTUAL) == 0
    running = True
    loop.wait(0)  # the loop starts following host time
    start = qemu_clock_get_ns(CLOCK_VIRTUAL)
    assert fired == [1]
    t.mod_ns(start + 2_000_000)
    time.sleep(0.003)
    loop.vcpu_clock_sync()
    assert fired == [1, start + 2_000_000]
    assert qemu_clock_get_ns(CLOCK_VIRTUAL) >= start + 3_000_000
    loop.close()


def _sleep_in_loop(loop: MainLoop, limit_ns: int, arm: Timer, delta_ns: int) -> float:
    """Run one loop iteration in a thread; arm ``arm`` while it sleeps."""
    woke: list[float] = []

    def iterate() -> None:
        start = time.monotonic()
        loop.wait(limit_ns)
        woke.append(time.monotonic() - start)

    thread = threading.Thread(target=iterate)
    bql_unlock()
    try:
        thread.start()
        time.sleep(0.05)
        bql_lock()
        try:
            arm.mod_ns(qemu_clock_get_ns(CLOCK_VIRTUAL) + delta_ns)
        finally:
            bql_unlock()
        thread.join(10)
    finally:
        bql_lock()
    return woke[0]


def test_a_virtual_timer_wakes_the_loop_only_if_it_expires_sooner() -> None:
    loop = MainLoop()
    loop.virtual_follows_host = True
    loop.machine_running = lambda: True
    qemu_clock_set_notify(loop.timers_changed)
    try:
        loop.wait(0)
        t = Timer(CLOCK_VIRTUAL, SCALE_NS, lambda: None)
        # Sleeping for at most 3 s: a timer due in 1 ms wakes it.
        assert _sleep_in_loop(loop, 3_000_000_000, t, 1_000_000) < 1.5
        t.delete()
        # Sleeping for at most 0.4 s: a timer due in 10 s need not wake it.
        assert _sleep_in_loop(loop, 400_000_000, t, 10_000_000_000) >= 0.35
        t.delete()
    finally:
        qemu_clock_set_notify(None)
        loop.close()


def test_main_loop_pipe_read_handler_sees_eof() -> None:
    loop = MainLoop()
    r, w = os.pipe()
    chunks: list[bytes] = []
    loop.set_fd_handler(r, lambda: chunks.append(os.read(r, 10)))
    os.write(w, b"xy")
    os.close(w)
    loop.wait(100_000_000)
    loop.wait(100_000_000)
    assert chunks[:2] == [b"xy", b""]
    loop.close()
    os.close(r)


def test_failing_timers_run_by_the_vcpu_go_to_the_handler() -> None:
    loop = MainLoop()
    loop.virtual_follows_host = True
    loop.machine_running = lambda: True
    seen: list[tuple[str, str]] = []
    loop.set_error_handler(lambda what, exc: seen.append((what, str(exc))))

    def boom() -> None:
        raise RuntimeError("timer bug")

    loop.wait(0)  # the loop starts following host time
    t = Timer(CLOCK_VIRTUAL, SCALE_NS, boom)
    t.mod_ns(qemu_clock_get_ns(CLOCK_VIRTUAL) + 1)
    time.sleep(0.001)
    loop.vcpu_clock_sync()
    assert seen == [("virtual clock timers", "timer bug")]
    loop.close()
    # A closed loop no longer moves the clock from the vCPU.
    now = qemu_clock_get_ns(CLOCK_VIRTUAL)
    time.sleep(0.001)
    loop.vcpu_clock_sync()
    assert qemu_clock_get_ns(CLOCK_VIRTUAL) == now
