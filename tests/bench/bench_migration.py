#!/usr/bin/env python3
"""Migration benchmark: device state save/load time and RAM throughput.

Usage: python tests/bench/bench_migration.py

Prints

  (a) the time to save and to load the device state of a virt board (every
      registered device: the test device with every field kind, and the
      PL011 when it has a VMState description), in µs, as the median of
      many runs; loading is the whole parse-check-apply path;
  (b) the throughput of migrating a 128 MiB guest to a file (``migrate
      file:PATH``) and loading it back (``migrate_incoming file:PATH``), in
      MB/s of guest RAM, for RAM full of data and for RAM that is all zero
      pages (QEMU's one-byte zero pages), with the stream sizes.

The figures depend on the machine and its load; nothing here passes or fails
except a round trip that does not restore the RAM.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from qemu_api import bql
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter
from qemu_api.migration.uri import migrate, migrate_incoming
from qemu_api.migration.vmstate import (
    SaveStateEntry,
    savevm_entries,
    vmstate_load_state,
    vmstate_save_state,
)
from qemu_api.qom import object_tree_reset
from tests.migration.machine import make_virt
from tests.migration.migdev import fill

# With the PL011 model present, the board gets its UART too.
with contextlib.suppress(ImportError):
    importlib.import_module("hw.char.pl011")

GUEST_RAM = 128 << 20
MB = 1_000_000


def median_us(fn: Callable[[], object], repeat: int = 200) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def _one_device(e: SaveStateEntry) -> tuple[float, float]:
    one = QEMUFileWriter()
    vmstate_save_state(one, e.vmsd, e.opaque)
    blob = one.getvalue()

    def save() -> None:
        vmstate_save_state(QEMUFileWriter(), e.vmsd, e.opaque)

    def load() -> None:
        vmstate_load_state(QEMUFileReader(blob), e.vmsd, e.opaque, e.vmsd.version_id)

    return median_us(save), median_us(load)


def bench_device_state() -> None:
    _, dev = make_virt(ram_size=1 << 20)
    assert dev is not None
    fill(dev)
    entries = savevm_entries()

    def save_all() -> bytes:
        f = QEMUFileWriter()
        for e in entries:
            vmstate_save_state(f, e.vmsd, e.opaque)
        return f.getvalue()

    data = save_all()

    def load_all() -> None:
        f = QEMUFileReader(data)
        for e in entries:
            vmstate_load_state(f, e.vmsd, e.opaque, e.vmsd.version_id)

    names = ", ".join(f"{e.idstr} ({e.instance_id})" for e in entries)
    print(f"device state of virt: {len(entries)} sections [{names}], {len(data)} bytes")
    print(f"  save: {median_us(save_all):8.1f} us")
    print(f"  load: {median_us(load_all):8.1f} us  (parse, check, apply, post_load)")
    for e in entries:
        save_us, load_us = _one_device(e)
        print(f"  {e.idstr:>14}: save {save_us:7.1f} us, load {load_us:7.1f} us")
    object_tree_reset()


def bench_ram(full: bool, tmp: Path) -> None:
    from qemu_api.memory import reset_system_memory
    from qemu_api.timer import virtual_clock_reset

    object_tree_reset()
    reset_system_memory()
    virtual_clock_reset()
    machine, _ = make_virt(with_dev=False, ram_size=GUEST_RAM)
    assert machine.ram is not None
    ram = machine.ram.get_ram_ptr()
    if full:
        ram[:] = os.urandom(1 << 20) * (GUEST_RAM >> 20)
    expected = bytes(ram[:: 1 << 16])
    path = tmp / "ram.mig"
    start = time.perf_counter()
    migrate(f"file:{path}")
    save_s = time.perf_counter() - start
    size = path.stat().st_size
    ram[:] = bytes(GUEST_RAM) if full else b"\x01" * GUEST_RAM
    start = time.perf_counter()
    migrate_incoming(f"file:{path}").wait()
    load_s = time.perf_counter() - start
    if bytes(ram[:: 1 << 16]) != expected:
        raise SystemExit("RAM round trip failed")
    kind = "data pages" if full else "zero pages"
    print(
        f"128 MiB guest, {kind}: stream {size / MB:7.1f} MB; migrate to file "
        f"{GUEST_RAM / MB / save_s:8.1f} MB/s ({save_s * 1000:.0f} ms), "
        f"load {GUEST_RAM / MB / load_s:8.1f} MB/s ({load_s * 1000:.0f} ms)"
    )


def main() -> int:
    bql.bql_lock()
    bench_device_state()
    with tempfile.TemporaryDirectory() as tmp:
        bench_ram(True, Path(tmp))
        bench_ram(False, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
