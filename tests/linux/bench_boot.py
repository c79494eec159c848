"""Benchmark: the time from starting a launcher to the Linux guest's shell prompt.

Usage: bench_boot.py [--runs N] [--launcher qemu|pyqemu|PATH ...]

Boots the guest of ``scripts/fetch-guest.py`` (Debian's arm64 kernel and the busybox
initramfs) to its prompt ``--runs`` times on each launcher and prints the median
and best times, with where the time went (first console output, the kernel's
uptime when ``/init`` ran, modules loaded, shell started). Without ``--launcher`` it
measures Debian's QEMU 7.2 and pyqemu's ``build/pyqemu-system-aarch64`` when that
can run an AArch64 guest (its ``-cpu help`` lists cortex-a57; otherwise it says why
not), then the ratio pyqemu / QEMU.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from tests.linux.guest import (
    QEMU,
    BootTimes,
    GuestError,
    LinuxGuest,
    fetch_guest,
    launcher_cpu_probe,
    launcher_path,
)


def measure(launcher: str, runs: int, label: str) -> list[BootTimes]:
    files = fetch_guest()
    results = []
    for i in range(runs):
        with LinuxGuest(
            launcher,
            files,
            name=f"bench-{label}-{i}",
            timeout_scale=1 if launcher == QEMU else 20,
        ) as guest:
            times = guest.boot()
            print(f"{label:>8} run {i + 1}: {times.describe()}", flush=True)
            guest.console.sendline("poweroff")
            guest.wait_exit(60)
            results.append(times)
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--launcher", action="append", default=[])
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
            results = measure(launcher, args.runs, name)
        except GuestError as e:
            print(f"{name:>8}: boot failed: {e}", file=sys.stderr)
            return 1
        prompts = [t.prompt for t in results if t.prompt is not None]
        medians[name] = statistics.median(prompts)
        print(
            f"{name:>8}: start to shell prompt: median {medians[name]:.2f} s, "
            f"best {min(prompts):.2f} s over {len(prompts)} boots"
        )
    if "qemu" in medians and "pyqemu" in medians:
        print(
            f"   ratio: pyqemu / QEMU 7.2 = {medians['pyqemu'] / medians['qemu']:.1f} "
            f"({medians['pyqemu']:.2f} s / {medians['qemu']:.2f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
