"""The engine facts the vCPU loop and the CPU model rely on (accel/tcg/engine.py)."""

from __future__ import annotations

import ctypes
import mmap
import threading
import time

import pytest

from accel.tcg.engine import UnicornEngine
from accel.tcg.engine_api import Access, ExitKind, Reg, sysreg_key

BASE = 0x4000_0000
# Hand-assembled A64 instructions.
NOP = 0xD503201F
WFI = 0xD503207F
B_SELF = 0x14000000  # b .
ADD_X0_1 = 0x91000400  # add x0, x0, #1
B_BACK1 = 0x17FFFFFF  # b .-4
SVC_42 = 0xD4000841  # svc #0x42
HVC_0 = 0xD4000002  # hvc #0
UDF = 0x00000000  # udf #0
LDR_X4_X3_POST8 = 0xF8408464  # ldr x4, [x3], #8
STR_W1_X2 = 0xB9000041  # str w1, [x2]
LDR_W5_X2 = 0xB9400045  # ldr w5, [x2]
MRS_X1_CNTVCT = 0xD53BE041  # mrs x1, cntvct_el0
MSR_CNTV_CTL_X4 = 0xD51BE324  # msr cntv_ctl_el0, x4
CNTVCT = sysreg_key(3, 3, 14, 0, 2)
CNTV_CTL = sysreg_key(3, 3, 14, 3, 1)


class Guest:
    def __init__(self, *insns: int, hooked: frozenset[int] = frozenset()) -> None:
        self.reads: list[int] = []
        self.stop_on_read = False
        self.writes: list[tuple[int, int]] = []
        self.engine = UnicornEngine(
            "cortex-a57", self._sysreg_read, self._sysreg_write, hooked
        )
        self.ram = mmap.mmap(-1, 0x10000)
        self._buf = ctypes.c_char.from_buffer(self.ram)
        self.engine.map_ram(BASE, 0x10000, ctypes.addressof(self._buf), False)
        for i, insn in enumerate(insns):
            self.ram[4 * i : 4 * i + 4] = insn.to_bytes(4, "little")

    def _sysreg_read(self, key: int) -> int | None:
        self.reads.append(key)
        if self.stop_on_read:
            self.engine.stop()
        return 0x1234

    def _sysreg_write(self, key: int, value: int) -> bool:
        self.writes.append((key, value))
        return True


def test_svc_stops_with_pc_past_it_and_is_not_taken() -> None:
    g = Guest(NOP, SVC_42, NOP)
    ex = g.engine.run(BASE)
    assert ex.kind is ExitKind.EXCEPTION
    assert ex.intno == 2  # EXCP_SWI
    assert g.engine.reg_read(Reg.PC) == BASE + 8
    assert g.engine.reg_read(Reg.PSTATE) & 0xF == 0b0101  # still EL1h


def test_undefined_instruction_stops_at_it() -> None:
    g = Guest(NOP, UDF)
    ex = g.engine.run(BASE)
    assert (ex.kind, ex.intno) == (ExitKind.EXCEPTION, 1)
    assert g.engine.reg_read(Reg.PC) == BASE + 4


def test_unmapped_load_stops_at_the_load_without_writeback() -> None:
    g = Guest(LDR_X4_X3_POST8, NOP)
    g.engine.reg_write(3, 0x0A00_0000)
    g.engine.reg_write(4, 7)
    ex = g.engine.run(BASE)
    assert ex.kind is ExitKind.MEM_FAULT
    assert (ex.address, ex.size, ex.access) == (0x0A00_0000, 8, Access.READ)
    assert g.engine.reg_read(Reg.PC) == BASE
    assert g.engine.reg_read(3) == 0x0A00_0000  # no post-index writeback
    assert g.engine.reg_read(4) == 7


def test_wfi_ends_the_run_past_it() -> None:
    g = Guest(NOP, WFI, NOP)
    ex = g.engine.run(BASE)
    assert ex.kind is ExitKind.HALTED
    assert g.engine.reg_read(Reg.PC) == BASE + 8


def test_ram_is_the_host_buffer_both_ways() -> None:
    g = Guest(STR_W1_X2, LDR_W5_X2, WFI)
    g.ram[0x800:0x804] = (0x11223344).to_bytes(4, "little")
    g.engine.reg_write(2, BASE + 0x800)
    g.engine.reg_write(1, 0xCAFE)
    g.engine.run(BASE)
    assert g.engine.reg_read(5) == 0xCAFE
    assert g.ram[0x800:0x804] == (0xCAFE).to_bytes(4, "little")


def test_mmio_goes_to_the_callbacks_with_absolute_addresses() -> None:
    seen: list[tuple[str, int, int, int]] = []

    def read(addr: int, size: int) -> int:
        seen.append(("r", addr, size, 0))
        return 0x5A

    def write(addr: int, value: int, size: int) -> None:
        seen.append(("w", addr, size, value))

    g = Guest(STR_W1_X2, LDR_W5_X2, WFI)
    g.engine.map_mmio(0x0900_0000, 0x1000, read, write)
    g.engine.reg_write(2, 0x0900_0018)
    g.engine.reg_write(1, 0x41)
    g.engine.run(BASE)
    assert seen == [("w", 0x0900_0018, 4, 0x41), ("r", 0x0900_0018, 4, 0)]
    assert g.engine.reg_read(5) == 0x5A


def test_mmio_callbacks_run_inside_lock_and_after_before() -> None:
    seen: list[str] = []

    def read(addr: int, size: int) -> int:
        seen.append("read")
        return 1

    def write(addr: int, value: int, size: int) -> None:
        seen.append("write")

    g = Guest(STR_W1_X2, LDR_W5_X2, WFI)
    g.engine.map_mmio(
        0x0900_0000,
        0x1000,
        read,
        write,
        lambda: seen.append("lock"),
        lambda: seen.append("unlock"),
        lambda: seen.append("before"),
    )
    g.engine.reg_write(2, 0x0900_0018)
    g.engine.run(BASE)
    write_access = ["lock", "before", "write", "unlock"]
    assert seen == [*write_access, "lock", "before", "read", "unlock"]


def test_an_exception_before_an_access_ends_the_run_without_the_access() -> None:
    seen: list[str] = []

    def before() -> None:
        raise ValueError("clock bug")

    def read(addr: int, size: int) -> int:
        seen.append("read")
        return 0

    g = Guest(LDR_W5_X2, WFI)
    g.engine.map_mmio(
        0x0900_0000,
        0x1000,
        read,
        lambda a, v, s: None,
        before=before,
    )
    g.engine.reg_write(2, 0x0900_0004)
    with pytest.raises(ValueError, match="clock bug"):
        g.engine.run(BASE)
    assert seen == []


def test_hooked_system_registers_go_to_the_model() -> None:
    g = Guest(MRS_X1_CNTVCT, MSR_CNTV_CTL_X4, WFI, hooked=frozenset({CNTVCT, CNTV_CTL}))
    g.engine.reg_write(4, 3)
    g.engine.run(BASE)
    assert g.engine.reg_read(1) == 0x1234
    assert g.reads == [CNTVCT]
    assert g.writes == [(CNTV_CTL, 3)]


def test_stop_from_another_thread_ends_a_busy_loop() -> None:
    g = Guest(ADD_X0_1, B_BACK1)
    threading.Timer(0.05, g.engine.stop).start()
    start = time.monotonic()
    ex = g.engine.run(BASE)
    assert ex.kind is ExitKind.STOPPED
    assert time.monotonic() - start < 5
    # The guest ran meanwhile (without the GIL: this thread's timer fired).
    assert g.engine.reg_read(0) > 1000


def test_block_counting_counts_instructions_exactly() -> None:
    g = Guest(NOP, NOP, NOP, ADD_X0_1, B_BACK1)
    g.engine.count_blocks(True)
    g.engine.run(BASE, count=1003)
    # 3 nops, then iterations of (add, b): the budget ends the run at the end
    # of the block that reaches it (stops land between blocks), and the
    # count says exactly what ran.
    iterations = g.engine.reg_read(0)
    assert iterations >= 500
    assert g.engine.block_count == 3 + 2 * iterations
    assert g.engine.reg_read(Reg.PC) == BASE + 12


def test_an_exception_in_a_device_callback_ends_the_run_and_is_raised() -> None:
    def read(addr: int, size: int) -> int:
        raise ValueError(f"model bug at {addr:#x}")

    g = Guest(LDR_W5_X2, WFI)
    g.engine.map_mmio(0x0900_0000, 0x1000, read, lambda a, v, s: None)
    g.engine.reg_write(2, 0x0900_0004)
    with pytest.raises(ValueError, match="model bug at 0x9000004"):
        g.engine.run(BASE)


MRS_X2_CNTVCT = 0xD53BE042  # mrs x2, cntvct_el0
LDR_X1_X1 = 0xF9400021  # ldr x1, [x1]


def test_a_stop_never_repeats_a_device_write() -> None:
    # A stop requested before a store in the same block (here by the MRS
    # hook) must not make the engine abandon the store after the device saw
    # it and run it again.
    g = Guest(
        MRS_X1_CNTVCT,
        ADD_X0_1,
        STR_W1_X2,
        ADD_X0_1,
        STR_W1_X2,
        WFI,
        hooked=frozenset({CNTVCT}),
    )
    writes: list[int] = []
    g.engine.map_mmio(
        0x0900_0000, 0x1000, lambda a, s: 0, lambda a, v, s: writes.append(a)
    )
    g.stop_on_read = True
    g.engine.reg_write(2, 0x0900_0000)
    pc = BASE
    while g.engine.run(pc).kind is not ExitKind.HALTED:
        pc = g.engine.reg_read(Reg.PC)
    assert writes == [0x0900_0000, 0x0900_0000]
    assert g.engine.reg_read(0) == 2
    assert g.engine.reg_read(1) == 0x1234


def test_a_stop_never_replays_a_load_through_its_own_base() -> None:
    g = Guest(MRS_X2_CNTVCT, LDR_X1_X1, WFI, hooked=frozenset({CNTVCT}))
    g.stop_on_read = True
    g.ram[0x800:0x808] = (BASE + 0x900).to_bytes(8, "little")
    g.ram[0x900:0x908] = (0x1111).to_bytes(8, "little")
    g.engine.reg_write(1, BASE + 0x800)
    pc = BASE
    while g.engine.run(pc).kind is not ExitKind.HALTED:
        pc = g.engine.reg_read(Reg.PC)
    assert g.engine.reg_read(1) == BASE + 0x900


MSR_TPIDR_EL1_X1 = 0xD518D081  # msr tpidr_el1, x1
MRS_X0_TPIDR_EL1 = 0xD538D080  # mrs x0, tpidr_el1
LDXR_X0_X1 = 0xC85F7C20  # ldxr x0, [x1]
SCR_EL3 = sysreg_key(3, 6, 1, 1, 0)
HCR_EL2 = sysreg_key(3, 4, 1, 1, 0)


def test_other_system_registers_run_in_the_engine() -> None:
    g = Guest(
        MSR_TPIDR_EL1_X1,
        MRS_X0_TPIDR_EL1,
        MRS_X1_CNTVCT,
        WFI,
        hooked=frozenset({CNTVCT}),
    )
    g.engine.reg_write(1, 0xFEED)
    assert g.engine.run(BASE).kind is ExitKind.HALTED
    # Only the hooked register reached the model; TPIDR_EL1 went through the
    # engine, which kept the value.
    assert g.reads == [CNTVCT]
    assert g.writes == []
    assert g.engine.reg_read(0) == 0xFEED
    assert g.engine.reg_read(1) == 0x1234
    assert g.engine.sysreg_passed() == 2


def test_an_alignment_fault_reports_its_syndrome_and_address() -> None:
    # Non-secure AArch64 EL1, as the CPU model runs guests; LDXR checks alignment.
    g = Guest(NOP, LDXR_X0_X1)
    g.engine.sysreg_write(SCR_EL3, 0x501)
    g.engine.sysreg_write(HCR_EL2, 1 << 31)
    g.engine.reg_write(1, BASE + 0x1003)
    ex = g.engine.run(BASE)
    assert (ex.kind, ex.intno) == (ExitKind.EXCEPTION, 4)  # EXCP_DATA_ABORT
    assert g.engine.reg_read(Reg.PC) == BASE + 4  # the faulting instruction
    # ESR: EC 0x25 (data abort from the same EL), IL, FSC 0b100001 (alignment).
    assert ex.syndrome >> 26 == 0x25
    assert ex.syndrome >> 25 & 1 == 1
    assert ex.syndrome & 0x3F == 0x21
    assert ex.vaddress == BASE + 0x1003


def test_the_block_hook_is_in_translated_code_only_while_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A block that loops: each iteration enters the loop's block again.
    g = Guest(ADD_X0_1, B_BACK1, WFI)
    engine = g.engine
    assert not engine.block_hook_installed()
    seen: list[int] = []

    def watcher(address: int) -> bool:
        seen.append(address)
        return len(seen) == 5

    engine.watch_blocks(watcher)
    assert engine.block_hook_installed()
    engine.run(BASE)
    # The hook was put into the loop's translation: the watcher saw it and
    # ended the run before the fifth iteration.
    assert seen == [BASE] * 5
    assert engine.reg_read(0) == 4
    engine.watch_blocks(None)
    # Unwanted, it stays in the translations for a while (no retranslation
    # when the watcher comes back soon) ...
    assert engine.block_hook_installed()
    # ... and leaves them at the first run after that.
    monkeypatch.setattr("accel.tcg.engine.BLOCK_HOOK_LINGER_S", 0.0)
    threading.Timer(0.05, engine.stop).start()
    engine.run(BASE)
    assert not engine.block_hook_installed()
    assert len(seen) == 5
    # Wanted again: back in the translations.
    engine.watch_blocks(watcher)
    seen.clear()
    engine.run(BASE)
    assert seen == [BASE] * 5
