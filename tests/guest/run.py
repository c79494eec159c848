"""Run a bare-metal ELF guest on pyqemu's virt: a minimal loader for the tests.

``python -m tests.guest.run GUEST.elf [pyqemu options...]`` builds the machine
from the options (as the launcher does), copies the ELF's loadable segments into
guest memory, points the CPU at the ELF entry (``ArmCPU.set_boot_entry``) and
runs. Without ``-S`` the machine starts once the guest is loaded.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from hw.core.cpu import first_cpu
from qemu_api.bql import bql_lock, bql_locked
from qemu_api.memory import get_address_space_memory
from system import runstate
from system.vl import (
    CommandLineError,
    Emulator,
    _import_boards,
    _import_devices,
    _print_error,
    parse_command_line,
)

PT_LOAD = 1


def load_elf(data: bytes) -> int:
    """Copy the PT_LOAD segments of a little-endian ELF64 into guest memory."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError("not an ELF64 file")
    entry, phoff = struct.unpack_from("<QQ", data, 24)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    space = get_address_space_memory()
    for i in range(phnum):
        off = phoff + i * phentsize
        p_type, _flags, p_offset, _vaddr, p_paddr, p_filesz, p_memsz = (
            struct.unpack_from("<IIQQQQQ", data, off)
        )
        if p_type != PT_LOAD:
            continue
        seg = data[p_offset : p_offset + p_filesz] + bytes(p_memsz - p_filesz)
        space.write_rom(p_paddr, seg)
    return int(entry)


def main(argv: list[str]) -> int:
    elf = Path(argv[1]).read_bytes()
    args = argv[2:]
    cfg = parse_command_line("aarch64", args)
    start = not cfg.has("S")
    if start:
        cfg.options.append(("S", None))
    _import_boards()
    _import_devices()
    if not bql_locked():
        bql_lock()
    prog = "pyqemu-system-aarch64"
    emu = Emulator(cfg, sys.stdout, sys.stderr, prog)
    try:
        emu.start()
    except CommandLineError as e:
        _print_error(sys.stderr, prog, e)
        return 1
    entry = load_elf(elf)
    cpu = first_cpu()
    set_entry = getattr(cpu, "set_boot_entry", None)
    if set_entry is None:
        sys.stderr.write("run.py: the machine has no CPU (use -accel tcg)\n")
        return 1
    set_entry(entry, {})
    if start:
        runstate.vm_start()
    return emu.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
