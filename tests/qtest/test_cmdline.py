"""The launcher's command line through real processes.

Help texts, errors, logging and tracing options are checked against QEMU
7.2's behaviour: the same wording and layout where pyqemu follows QEMU, and
never a Python traceback for bad input. Known differences from QEMU are
tests that name the difference.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Final

import pytest

import pyqemu_config
from tests.oracle import qemu72
from tests.qtest.libqtest import QTestState, qemu_binary

TARGETS: Final = ("aarch64", "x86_64")

needs_pl011 = pytest.mark.skipif(
    "pl011" not in pyqemu_config.DEVICES, reason="pl011 is not built"
)


def run(*args: str, target: str = "aarch64") -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [str(qemu_binary(target)), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in res.stderr, res.stderr
    assert "Traceback" not in res.stdout, res.stdout
    return res


def error_of(*args: str, target: str = "aarch64") -> str:
    """Run a command line that must fail; return its standard error."""
    res = run(*args, target=target)
    assert res.returncode == 1, (res.returncode, res.stderr)
    assert res.stdout == ""
    return res.stderr


# -- information ---------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_version(target: str) -> None:
    res = run("-version", target=target)
    assert res.returncode == 0
    first, second = res.stdout.splitlines()
    # pyqemu's name and version, then QEMU's words for the interface it
    # implements (tools match "QEMU emulator version X.Y.Z").
    assert first == (
        f"pyqemu emulator version {pyqemu_config.VERSION} "
        "(implements QEMU emulator version 7.2.0)"
    )
    assert second.startswith("Copyright (c) ")
    assert run("--version", target=target).stdout == res.stdout


@pytest.mark.parametrize("target", TARGETS)
def test_help(target: str) -> None:
    res = run("-help", target=target)
    assert res.returncode == 0
    assert f"usage: pyqemu-system-{target} [options]" in res.stdout
    for opt in ("-machine", "-device", "-qtest dev", "-qtest-log", "-accel", "-S "):
        assert f"\n{opt}" in res.stdout, opt
    assert run("-h", target=target).stdout == res.stdout


# QEMU 7.2's lines for the boards pyqemu has ("%-20s %s").
QEMU_MACHINES: Final = {
    "aarch64": [
        "none                 empty machine",
        "virt                 QEMU 7.2 ARM Virtual Machine (alias of virt-7.2)",
        "virt-7.2             QEMU 7.2 ARM Virtual Machine",
    ],
    "x86_64": [
        "none                 empty machine",
        (
            "pc                   Standard PC (i440FX + PIIX, 1996) (alias of "
            "pc-i440fx-7.2)"
        ),
        "pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) (default)",
    ],
}


@pytest.mark.parametrize("target", TARGETS)
def test_machine_help_lines_are_qemus(target: str) -> None:
    res = run("-M", "help", target=target)
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert lines[0] == "Supported machines are:"
    assert sorted(lines[1:]) == QEMU_MACHINES[target]
    assert run("-machine", "help", target=target).stdout == res.stdout
    assert run("-M", "?", target=target).stdout == res.stdout


def test_machine_help_is_sorted_as_qemu() -> None:
    lines = run("-M", "help").stdout.splitlines()[1:]
    assert lines == QEMU_MACHINES["aarch64"]


DEVICE_LINE: Final = re.compile(
    r'name "[^"]+"(, bus [\w-]+)?(, desc "[^"]*")?(, no-user)?'
)


def test_device_help() -> None:
    res = run("-M", "none", "-device", "help")
    assert res.returncode == 0
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    devices = [line for line in lines if DEVICE_LINE.fullmatch(line)]
    assert all(
        DEVICE_LINE.fullmatch(line) or line.endswith("devices:") for line in lines
    )
    # Every registered device, the ones -device cannot create marked as in
    # QEMU's "info qdm"; CPUs in QEMU's "CPU devices" group.
    assert 'name "or-irq", desc "IRQ OR gate", no-user' in devices
    assert 'name "pl011", bus System, no-user' in devices
    assert "CPU devices:" in lines
    # Each binary lists its own target's devices, as QEMU's do: the PC's
    # HPET and IOAPIC are not on aarch64, the virt board's devices and the
    # Arm CPUs are not on x86_64.
    assert not [d for d in devices if '"hpet"' in d or '"ioapic"' in d]
    x86 = run("-M", "none", "-device", "help", target="x86_64").stdout
    assert 'name "hpet", bus System, no-user' in x86.splitlines()
    assert 'name "or-irq", desc "IRQ OR gate", no-user' in x86.splitlines()
    for absent in ('"pl011"', '"arm_gic"', "-arm-cpu", "CPU devices:"):
        assert absent not in x86


def test_device_property_help() -> None:
    res = run("-device", "or-irq,help")
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert lines[0] == "or-irq options:"
    (num_lines,) = [line for line in lines if line.startswith("  num-lines=")]
    assert num_lines.startswith("  num-lines=<uint16>")
    assert num_lines.endswith("(default: 1)")
    assert " - number of input lines" in num_lines
    res = run("-device", "split-irq,help")
    assert "  num-lines=<uint16>" in res.stdout


@needs_pl011
def test_device_property_help_pl011() -> None:
    out = run("-device", "pl011,help").stdout
    assert out.startswith("pl011 options:\n")
    assert re.search(r"^  chardev=<str> +- ", out, re.MULTILINE)
    assert re.search(r"^  migrate-clk=<bool> .*\(default: ", out, re.MULTILINE)


@needs_pl011
def test_device_property_help_bool_default_is_qemus() -> None:
    out = run("-device", "pl011,help").stdout
    assert re.search(r"^  migrate-clk=<bool> .*\(default: true\)$", out, re.MULTILINE)


def test_device_property_help_layout_is_qemus() -> None:
    out = run("-device", "or-irq,help").stdout
    assert "  num-lines=<uint16>     - number of input lines (default: 1)\n" in out


def test_device_property_help_of_unknown_device() -> None:
    # QEMU 7.2: an error line, and exit status 0.
    res = run("-M", "none", "-device", "nosuch,help")
    assert (res.returncode, res.stdout) == (0, "")
    assert res.stderr == (
        "pyqemu-system-aarch64: -device nosuch,help: Device 'nosuch' not found\n"
    )


def test_log_help() -> None:
    res = run("-d", "help")
    assert res.returncode == 1  # as QEMU 7.2
    lines = res.stdout.splitlines()
    assert lines[0] == "Log items (comma separated):"
    guest = "guest_errors    log when the guest OS does something invalid (eg "
    assert f"{guest}accessing a" in lines
    assert "unimp           log unimplemented functionality" in lines
    assert "trace:PATTERN   enable trace events" in lines
    assert res.stdout.endswith(
        '\nUse "-d trace:help" to get a list of trace events.\n\n'
    )


def test_trace_help_lists_events() -> None:
    res = run("-trace", "help")
    assert res.returncode == 0
    events = res.stdout.splitlines()
    assert "memory_region_ops_read" in events
    assert "memory_region_ops_write" in events
    assert all(re.fullmatch(r"[a-z0-9_]+", e) for e in events)
    assert run("-trace", "enable=help").stdout == res.stdout


# -- errors ------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_unknown_option(target: str) -> None:
    prog = f"pyqemu-system-{target}"
    assert error_of("-bogus", target=target) == f"{prog}: -bogus: invalid option\n"
    assert error_of("--bogus", target=target) == f"{prog}: --bogus: invalid option\n"


@pytest.mark.parametrize("opt", ["-M", "-device", "-qtest", "-m", "-d", "-trace"])
def test_missing_argument(opt: str) -> None:
    assert error_of(opt) == f"pyqemu-system-aarch64: {opt}: requires an argument\n"


def test_unknown_machine() -> None:
    lines = error_of("-M", "bogus").splitlines()
    assert lines[0].startswith("pyqemu-system-aarch64: ")
    assert "unsupported machine type" in lines[0]
    assert lines[1] == "Use -machine help to list supported machines"
    # pc is not an aarch64 board
    assert "unsupported machine type" in error_of("-M", "pc")


def test_no_default_machine_on_aarch64() -> None:
    assert error_of("-display", "none") == (
        "pyqemu-system-aarch64: No machine specified, and there is no default\n"
        "Use -machine help to list supported machines\n"
    )


def test_bad_log_item() -> None:
    err = error_of("-M", "none", "-d", "guest_errors,bogus")
    assert err.startswith("pyqemu-system-aarch64: -d guest_errors,bogus: ")
    assert "'bogus'" in err


def test_log_file_that_cannot_be_opened() -> None:
    assert error_of("-M", "none", "-D", "/nonexistent/dir/log", "-d", "unimp") == (
        "pyqemu-system-aarch64: Error opening logfile /nonexistent/dir/log: "
        "No such file or directory\n"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["-M", "virt", "-m", "lots"],
        ["-M", "virt,bogus=on"],
        ["-M", "none", "-device", "nosuch"],
        ["-M", "none", "-device", "or-irq,num-lines=many"],
        ["-M", "none", "-device", "or-irq,bogus=1"],
        ["-M", "none", "-accel", "kvm"],
        ["-M", "none", "-qtest", "nosuch:path"],
        ["-M", "none", "-qtest", "unix:/nonexistent/dir/sock"],
        ["-M", "none", "-chardev", "socket"],
        ["-M", "none", "-serial", "file:/nonexistent/dir/out"],
        ["-M", "none", "-global", "nodot"],
        ["-M", "none", "-display", "gtk"],
        ["disk.img"],
    ],
)
def test_bad_input_is_one_clean_error(args: list[str]) -> None:
    err = error_of(*args)
    assert err.startswith("pyqemu-system-aarch64: "), err
    assert len(err.splitlines()) <= 3, err


# -- logging and tracing over qtest ----------------------------------------------------


@needs_pl011
def test_guest_errors_go_to_the_log_file(tmp_path: Path) -> None:
    log = tmp_path / "guest.log"
    args = ["-M", "virt", "-nodefaults", "-d", "guest_errors", "-D", str(log)]
    with QTestState(args) as qts:
        qts.readl(0x09000100)  # no PL011 register there
        qts.writel(0x09000100, 1)
    text = log.read_text()
    assert "pl011_read: Bad offset 0x100\n" in text
    assert "pl011_write: Bad offset 0x100\n" in text


def test_invalid_memory_accesses_are_logged(tmp_path: Path) -> None:
    log = tmp_path / "mem.log"
    args = ["-M", "virt", "-nodefaults", "-d", "invalid_mem", "-D", str(log)]
    with QTestState(args) as qts:
        qts.readl(0x50000000)
        qts.writew(0x50000000, 1)
        assert qts.stderr() == ""
    assert log.read_text().splitlines() == [
        "Invalid read at addr 0x50000000, size 4, region '(null)', reason: rejected",
        "Invalid write at addr 0x50000000, size 2, region '(null)', reason: rejected",
    ]


def test_invalid_memory_accesses_are_guest_errors_as_in_qemu_7_2(
    tmp_path: Path,
) -> None:
    log = tmp_path / "mem.log"
    args = ["-M", "virt", "-nodefaults", "-d", "guest_errors", "-D", str(log)]
    with QTestState(args) as qts:
        qts.readl(0x50000000)
    assert "Invalid read at addr 0x50000000, size 4" in log.read_text()


def test_log_goes_to_stderr_without_d_file() -> None:
    with QTestState(["-M", "none", "-d", "invalid_mem"]) as qts:
        qts.readb(0x1234)
    assert (
        "Invalid read at addr 0x1234, size 1, region '(null)', reason: rejected\n"
        in qts.stderr()
    )


TRACE_READ: Final = re.compile(
    r"(?:\d+@\d+\.\d{6}:)?memory_region_ops_read cpu -1 mr 0x[0-9a-f]+ "
    r"addr 0x([0-9a-f]+) value 0x11 size 4 name 'pl011'"
)


@needs_pl011
def test_trace_memory_region_ops() -> None:
    args = ["-M", "virt", "-nodefaults", "-trace", "memory_region_ops_*"]
    with QTestState(args) as qts:
        qts.readl(0x09000FE0)
        qts.writel(0x09000038, 0)
        qts.readl(0x40000000)  # RAM: no trace
    lines = qts.stderr().splitlines()
    reads = [line for line in lines if "memory_region_ops_read" in line]
    writes = [line for line in lines if "memory_region_ops_write" in line]
    assert len(reads) == 1
    assert TRACE_READ.fullmatch(reads[0]), reads
    assert len(writes) == 1
    assert re.search(r"value 0x0 size 4 name 'pl011'$", writes[0])


@needs_pl011
def test_trace_memory_region_ops_line_format() -> None:
    """The log backend's line: ``pid@seconds.micros:`` then QEMU's event text.

    The event text (absolute address, value, size, region name) is QEMU's; the
    ``pid@time:`` prefix is always written, where QEMU 7.2 writes it with
    ``-msg timestamp=on`` only.
    """
    args = ["-M", "virt", "-nodefaults", "-trace", "memory_region_ops_read"]
    with QTestState(args) as qts:
        qts.readl(0x09000FE0)
    (line,) = [ln for ln in qts.stderr().splitlines() if "memory_region_ops_read" in ln]
    assert re.fullmatch(
        r"\d+@\d+\.\d{6}:memory_region_ops_read cpu -1 mr 0x[0-9a-f]+ "
        r"addr 0x9000fe0 value 0x11 size 4 name 'pl011'",
        line,
    )


# -- -S ------------------------------------------------------------------------------


def run_state(qts: QTestState) -> object:
    status = qts.qmp("query-status")
    assert isinstance(status, dict)
    return status["status"]


def test_option_s_starts_paused() -> None:
    with QTestState(["-M", "virt", "-nodefaults", "-S"], qmp=True) as qts:
        assert run_state(qts) == "prelaunch"
        qts.qmp("cont")
        assert run_state(qts) == "running"
    with QTestState(["-M", "virt", "-nodefaults"], qmp=True) as qts:
        assert run_state(qts) == "running"


def test_option_s_serves_qtest_while_paused() -> None:
    with QTestState(["-M", "virt", "-nodefaults", "-S"]) as qts:
        qts.writel(0x40000000, 3)
        assert qts.readl(0x40000000) == 3
        assert qts.clock_step(5) == 5


@needs_pl011
def test_chardev_logfile_matches_qemu(tmp_path: Path) -> None:
    """``-chardev ...,logfile=`` copies the UART's output as QEMU 7.2 does."""
    uart = 0x0900_0000
    text = b"logged\r\n"
    logs = {}
    for name, binary in (("qemu", qemu72()), ("pyqemu", None)):
        log = tmp_path / f"{name}.log"
        log.write_bytes(b"truncated")
        args = ["-M", "virt", "-nodefaults", "-S", "-serial", "chardev:c"]
        args += ["-chardev", f"null,id=c,logfile={log}"]
        with QTestState(args, binary=binary, accel=None) as qts:
            qts.writel(uart + 0x30, 0x301)  # UARTCR: UARTEN, TXE, RXE
            for byte in text:
                qts.writel(uart, byte)
            qts.readl(uart + 0x18)  # a round trip: the writes are done
            logs[name] = log.read_bytes()
    assert logs["qemu"] == text
    assert logs["pyqemu"] == logs["qemu"]
    bad = "null,id=c,logfile=/nonexistent/dir/log"
    res = run("-M", "virt", "-S", "-display", "none", "-chardev", bad)
    assert res.returncode == 1
    assert res.stderr == (
        f"pyqemu-system-aarch64: -chardev {bad}: Could not create "
        "'/nonexistent/dir/log': No such file or directory\n"
    )
