"""Benchmark: the time from starting a launcher to the Linux guest's shell prompt.

Usage: bench_boot.py [--runs N] [--idle SECONDS] [--no-profile]
                     [--launcher qemu|pyqemu|PATH ...]

Boots the guest of ``scripts/fetch-guest.py`` (Debian's arm64 kernel and the busybox
initramfs) to its prompt ``--runs`` times on each launcher and prints the median
and best times, with where the time went (first console output, the kernel's
uptime when ``/init`` ran, modules loaded, shell started). Without ``--launcher`` it
measures Debian's QEMU 7.2 and pyqemu's ``build/pyqemu-system-aarch64`` when that
can run an AArch64 guest (its ``-cpu help`` lists cortex-a57; otherwise it says why
not), then the ratio pyqemu / QEMU.

After each launcher's first boot it measures the host CPU time the launcher uses
while the shell sits idle at its prompt for ``--idle`` seconds (10 by default).
Then it boots pyqemu once more through ``profile_launcher.py`` and prints where
that boot's host time went (the vCPU in the engine and asleep, MMIO per device,
the timer's system registers, interrupts and exceptions entered, the main loop's
timers); ``--no-profile`` leaves that out.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.linux.guest import (
    QEMU,
    BootTimes,
    GuestError,
    LinuxGuest,
    fetch_guest,
    launcher_cpu_probe,
    launcher_path,
)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process *pid* and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    launcher: str, runs: int, label: str, idle: float
) -> tuple[list[BootTimes], float | None]:
    files = fetch_guest()
    results = []
    idle_share: float | None = None
    for i in range(runs):
        with LinuxGuest(
            launcher,
            files,
            name=f"bench-{label}-{i}",
            timeout_scale=1 if launcher == QEMU else 20,
        ) as guest:
            times = guest.boot()
            print(f"{label:>8} run {i + 1}: {times.describe()}", flush=True)
            pid = guest.child.pid if guest.child is not None else None
            if i == 0 and idle > 0 and pid is not None:
                # Let the boot's last work settle, then watch the idle shell.
                time.sleep(2)
                before = cpu_seconds(pid)
                time.sleep(idle)
                idle_share = (cpu_seconds(pid) - before) / idle
                print(
                    f"{label:>8} idle shell: {idle_share * 100:.1f}% of one core "
                    f"over {idle:.0f} s",
                    flush=True,
                )
            guest.console.sendline("poweroff")
            guest.wait_exit(60)
            results.append(times)
    return results, idle_share


def profile(label: str) -> None:
    """Boot pyqemu once through profile_launcher.py and print its report."""
    files = fetch_guest()
    with tempfile.TemporaryDirectory(prefix="pyqemu-profile-") as tmp:
        report = Path(tmp) / "profile.txt"
        wrapper = Path(tmp) / "pyqemu-profiled"
        script = Path(__file__).with_name("profile_launcher.py")
        wrapper.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{script}" "{report}" "$@"\n'
        )
        wrapper.chmod(0o755)
        with LinuxGuest(
            str(wrapper), files, name=f"bench-{label}-profile", timeout_scale=20
        ) as guest:
            times = guest.boot()
            print(f"{label:>8} profiled boot: {times.describe()}", flush=True)
            guest.console.sendline("poweroff")
            guest.wait_exit(60)
        print(f"{label:>8} where the profiled boot's host time went (to poweroff):")
        print(report.read_text() if report.exists() else "  (no report written)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--launcher", action="append", default=[])
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args(argv)
    names = args.launcher or ["qemu", "pyqemu"]
    medians: dict[str, float] = {}
    for name in names:
        launcher = launcher_path(name)
        problem = launcher_cpu_probe(launcher)
        if problem is not None:
            print(f"{name:>8}: not measured: {problem}")
            continue
        try:
            results, _idle = measure(launcher, args.runs, name, args.idle)
        except GuestError as e:
            print(f"{name:>8}: boot failed: {e}", file=sys.stderr)
            return 1
        prompts = [t.prompt for t in results if t.prompt is not None]
        medians[name] = statistics.median(prompts)
        print(
            f"{name:>8}: start to shell prompt: median {medians[name]:.2f} s, "
            f"best {min(prompts):.2f} s over {len(prompts)} boots"
        )
    if "pyqemu" in medians and not args.no_profile:
        profile("pyqemu")
    if "qemu" in medians and "pyqemu" in medians:
        print(
            f"   ratio: pyqemu / QEMU 7.2 = {medians['pyqemu'] / medians['qemu']:.1f} "
            f"({medians['pyqemu']:.2f} s / {medians['qemu']:.2f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
