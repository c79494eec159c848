"""The ARM PrimeCell UART (PL011), register for register as QEMU models it.

This is QEMU's ``hw/char/pl011.c`` (``include/hw/char/pl011.h``) in Python,
quirks included.  The register state is a :class:`~qemu_api.bql.BqlStruct`
(:class:`PL011Registers`), the registers are declared once in
:attr:`PL011State.registers` (a :class:`~qemu_api.register.RegisterMap`: the
decode, QEMU's "Bad offset" log lines, the trace names and the reset values
come from it), and the migration state is described from typed references to
the same fields (:attr:`PL011State.vmsd`); the bit layouts are in
:mod:`hw.char.pl011.registers`.

- One MMIO region of 4 KiB, implemented with 32-bit accesses (QEMU's
  ``impl.min/max_access_size = 4``): the memory core turns a 1- or 2-byte
  access into one 32-bit access at the same address and an 8-byte access into
  two, and the register is ``offset >> 2`` (:attr:`Decode.WHOLE
  <qemu_api.register.Decode.WHOLE>`).
- Six sysbus IRQ outputs: 0 UARTINTR (combined), 1 UARTRXINTR, 2 UARTTXINTR,
  3 UARTRTINTR, 4 UARTMSINTR, 5 UARTEINTR (see
  :data:`~hw.char.pl011.registers.IRQMASK`).
- A receive FIFO of 16 entries, or 1 while LCR_H.FEN is clear; the receive
  interrupt triggers at one entry. There is no transmit FIFO: a DR write goes
  straight to the chardev, waiting while the backend is full (unless
  ``x-tx-fifo`` is on, below).
- Loopback (CR.LBE) feeds transmitted bytes, breaks and the modem outputs back
  into the receiver, and ignores the chardev's input meanwhile.
- Clock input ``clk``, used only for the ``pl011_baudrate_change`` trace
  (and, with ``x-tx-fifo``, for the line timing).
- Properties ``chardev`` (may be absent), ``migrate-clk`` (default on) and
  ``x-tx-fifo`` (default off).

``x-tx-fifo=on`` (not in QEMU; ``-global pl011.x-tx-fifo=on`` on virt) gives
the UART what the PL011 TRM describes and QEMU leaves out, without ever
blocking the machine on its chardev:

- a transmit FIFO as deep as the receive FIFO (1 entry while LCR_H.FEN is
  clear), drained one character per frame time in virtual time (start, data,
  parity and stop bits at ``UARTCLK / (16 * (IBRD + FBRD / 64))`` baud);
  FR.TXFF, TXFE and BUSY follow it, a DR write to a full FIFO is dropped
  with a guest-error line, and the transmit interrupt is raised when the FIFO
  drains through the IFLS level.  No timer runs per character: every
  register access first brings the line up to the current virtual time
  (:meth:`PL011State.tx_catch_up`), which writes the characters that ended
  to the chardev at once; the timer runs when the interrupt line rises and
  otherwise at most a FIFO's time after a character ended;
- the receive interrupt at the IFLS level and the receive timeout interrupt
  after 32 bit periods without input;
- flow control: CTS is the chardev taking output (a refused byte waits in the
  shift register, CTS drops, INT_CTS is raised, a write watch resumes the
  line); with CR.RTSEn the chardev is given input only up to the receive
  level; in loopback, CR.CTSEn stops the transmitter while RTS is low, and
  transmitted characters go to the receiver at the line rate instead of the
  chardev;
- its state in the ``pl011/tx-fifo`` migration subsection, sent only with the
  option, so streams without it stay QEMU's.

The guest's view through an address space:

>>> from qemu_api.memory import get_address_space_memory
>>> from qemu_api.qdev import device_cold_reset
>>> uart = pl011_create(0x0900_0000, None, None)
>>> device_cold_reset(uart)
>>> mem = get_address_space_memory()
>>> hex(mem.read(0x0900_0018, 4)), hex(mem.read(0x0900_0030, 4))  # FR, CR
('0x90', '0x300')
>>> _ = mem.write(0x0900_0030, 0x381, 4)  # UARTEN, TXE, RXE, loopback
>>> _ = mem.write(0x0900_0000, ord("A"), 1)  # a byte store to DR
>>> hex(mem.read(0x0900_0000, 4)), hex(mem.read(0x0900_0018, 4))
('0x41', '0x90')
>>> [hex(mem.read(0x0900_0FE0 + 4 * i, 4)) for i in range(4)]
['0x11', '0x10', '0x14', '0x0']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, ClassVar, Final, final

from hw.char.pl011.registers import (
    CR_RESET,
    DR_BE,
    FBRD_MASK,
    FR_RESET,
    IBRD_MASK,
    IFLS_LEVELS,
    IFLS_RESET,
    INT_CTS,
    INT_DCD,
    INT_DSR,
    INT_MS,
    INT_RI,
    INT_RT,
    INT_RX,
    INT_TX,
    IRQMASK,
    PL011_FIFO_DEPTH,
    PL011_ID_ARM,
    PL011_ID_LUMINARY,
    PL011_MMIO_SIZE,
    PL011_UARTCLK_DEFAULT_HZ,
    Control,
    Data,
    Flags,
    LineControl,
    ReceiveStatus,
)
from hw.core.sysbus_fdt import PlatformBusFDTData
from qemu_api.bql import BqlCell, BqlStruct
from qemu_api.chardev import Chardev, ChrEvent, ChrWatch
from qemu_api.clock import Clock, ClockEvent
from qemu_api.error import Error
from qemu_api.irq import InterruptSource, IRQState
from qemu_api.log import LOG_GUEST_ERROR, qemu_log_mask
from qemu_api.memory import MemoryRegion, MemoryRegionOps, OpsImpl
from qemu_api.migration.vmstate import (
    VMStateDescription,
    vmstate_array,
    vmstate_bool,
    vmstate_buffer,
    vmstate_clock,
    vmstate_info_uint32,
    vmstate_int32,
    vmstate_int64,
    vmstate_timer_ptr,
    vmstate_uint8,
    vmstate_uint32,
    vmstate_unused,
)
from qemu_api.qdev import ResetType, prop_bool, prop_chr
from qemu_api.qom import override
from qemu_api.register import (
    RO,
    RW,
    W1C,
    WI,
    Decode,
    R,
    Register,
    RegisterArray,
    RegisterLog,
    RegisterMap,
)
from qemu_api.sysbus import SysBusDevice, sysbus_realize
from qemu_api.timer import CLOCK_VIRTUAL, SCALE_NS, Timer, qemu_clock_get_ns
from qemu_api.trace import trace_event_alias
from qemu_trace.pl011 import (
    trace_pl011_baudrate_change,
    trace_pl011_can_receive,
    trace_pl011_fifo_rx_full,
    trace_pl011_fifo_rx_put,
    trace_pl011_fifo_tx_put,
    trace_pl011_fifo_tx_xmit,
    trace_pl011_irq_state,
    trace_pl011_read,
    trace_pl011_read_fifo,
    trace_pl011_receive,
    trace_pl011_write,
)

# QEMU 9.2 renamed two events; -trace accepts QEMU 7.2's names for them too.
trace_event_alias("pl011_put_fifo", "pl011_fifo_rx_put")
trace_event_alias("pl011_put_fifo_full", "pl011_fifo_rx_full")

__all__ = [
    "TYPE_PL011",
    "TYPE_PL011_LUMINARY",
    "PL011Luminary",
    "PL011Registers",
    "PL011State",
    "pl011_baudrate",
    "pl011_create",
    "pl011_frame_bits",
]

TYPE_PL011: Final = "pl011"
"""QOM type name of the ARM PL011 (:class:`PL011State`)."""
TYPE_PL011_LUMINARY: Final = "pl011_luminary"
"""QOM type name of the Luminary Micro variant (:class:`PL011Luminary`)."""

_U32: Final = 0xFFFF_FFFF
# One-byte strings for the transmit path, so a DR write allocates nothing.
_BYTE: Final = tuple(bytes((i,)) for i in range(256))


# The transmitter's states (x-tx-fifo): nothing to send; a frame on the line
# until tx_frame_end; a byte in the shift register waiting for CTS (CR.CTSEn
# in loopback) or for the chardev to take it (backpressure).
TX_IDLE: Final = 0
TX_SENDING: Final = 1
TX_WAIT_CTS: Final = 2
TX_BLOCKED: Final = 3
_TX_STATES: Final = (TX_IDLE, TX_SENDING, TX_WAIT_CTS, TX_BLOCKED)
_FR_BUSY: Final = 1 << 3
_FR_TXFF: Final = 1 << 5
_FR_TXFE: Final = 1 << 7
_FR_TX_BITS: Final = _FR_BUSY | _FR_TXFF | _FR_TXFE
# Bit periods of receive silence that raise the receive timeout interrupt.
RT_BITS: Final = 32
# The bit period while IBRD is 0 (a divisor never programmed): 115200 baud.
_UNPROGRAMMED_BIT_NS: Final = 1_000_000_000 / 115_200


def pl011_frame_bits(lcr: LineControl) -> int:
    """Bits on the line per character: start, data, parity and stop bits.

    >>> pl011_frame_bits(LineControl(0x70))  # 8N1, FIFOs on
    10
    >>> pl011_frame_bits(LineControl(0x0E))  # 5 data bits, parity, 2 stop bits
    9
    """
    return 1 + 5 + lcr.wlen + (1 if lcr.pen else 0) + (2 if lcr.stp2 else 1)


def pl011_baudrate(clk_hz: int, ibrd: int, fbrd: int) -> int:
    """The baud rate that ``pl011_baudrate_change`` traces (``pl011_get_baudrate``).

    ``clk / (64 * IBRD + FBRD) * 4`` in QEMU's integer arithmetic (an
    ``unsigned int`` result), 0 while IBRD is 0.

    >>> pl011_baudrate(24_000_000, 13, 1)
    115244
    """
    if ibrd == 0:
        return 0
    return ((clk_hz // ((ibrd << 6) + fbrd)) << 2) & _U32


@final
class PL011Registers(BqlStruct):
    """The register state of a PL011: the fields QEMU migrates.

    A :class:`~qemu_api.bql.BqlStruct`: each field checks the BQL when read
    or written through the struct (``uart.regs.ibrd``), and the methods
    below, the register-level operations that do no I/O, run on the struct's
    raw view inside one ``with regs.borrow_mut() as raw:`` block.  The device
    (:class:`PL011State`) drives the IRQ lines and the chardev at the points
    QEMU does, after such a block ends.  Methods that can change an interrupt
    level return True when QEMU calls ``pl011_update()`` at that point.

    Attributes:
        flags: UARTFR.
        line_control: UARTLCR_H (QEMU's ``lcr``).
        rsr: UARTRSR, the error bits of the last word read from DR.
        control: UARTCR (QEMU's ``cr``).
        dmacr: UARTDMACR.
        int_enabled: UARTIMSC.
        int_level: UARTRIS.
        read_fifo: the receive FIFO, 16 words of data and error bits.
        ilpr: UARTILPR.
        ibrd: UARTIBRD.
        fbrd: UARTFBRD.
        ifl: UARTIFLS.
        read_pos: index of the oldest FIFO entry (a C ``int``).
        read_count: FIFO entries in use; loopback can push it past the depth.
        read_trigger: entries that raise the receive interrupt (always 1
            unless ``fifo_levels``).
        fifo_levels: the device's ``x-tx-fifo`` option: IFLS levels, the
            transmit FIFO and flow control (set at realize, not migrated).
        tx_fifo: the transmit FIFO (``x-tx-fifo``), oldest byte first.
        tx_count: bytes in the transmit FIFO.
        tx_shift: the byte in the transmit shift register.
        tx_state: the transmitter's state (``TX_IDLE``...).
        tx_frame_end: while sending, when the frame on the line ends (ns of
            the virtual clock).
        tx_backpressure: the chardev refused output: CTS is deasserted.

    With the FIFOs off (LCR_H.FEN clear, as after reset) one entry fills it:

    >>> regs = PL011Registers()
    >>> with regs.borrow_mut() as raw:
    ...     raw.fifo_rx_put(0x41), raw.read_count, raw.flags.rxfe, raw.flags.rxff
    (True, 1, False, True)
    >>> with regs.borrow_mut() as raw:
    ...     hex(raw.read_rxdata()), raw.read_count, hex(int(raw.flags))
    ('0x41', 0, '0x90')
    >>> regs.ibrd = 13  # one field: a checked write, no block needed
    """

    flags: Flags
    line_control: LineControl
    rsr: ReceiveStatus
    control: Control
    dmacr: int
    int_enabled: int
    int_level: int
    read_fifo: Annotated[list[int], PL011_FIFO_DEPTH]
    ilpr: int
    ibrd: int
    fbrd: int
    ifl: int
    read_pos: int
    read_count: int
    read_trigger: int
    fifo_levels: bool
    tx_fifo: bytearray
    tx_count: int
    tx_shift: int
    tx_state: int
    tx_frame_end: int
    tx_backpressure: bool

    def __init__(self) -> None:
        self.flags = Flags(FR_RESET)
        self.line_control = LineControl()
        self.rsr = ReceiveStatus()
        self.control = Control(CR_RESET)
        self.dmacr = 0
        self.int_enabled = 0
        self.int_level = 0
        self.read_fifo = [0] * PL011_FIFO_DEPTH
        self.ilpr = 0
        self.ibrd = 0
        self.fbrd = 0
        self.ifl = IFLS_RESET
        self.read_pos = 0
        self.read_count = 0
        self.read_trigger = 1
        self.fifo_levels = False
        self.tx_fifo = bytearray(PL011_FIFO_DEPTH)
        self.tx_count = 0
        self.tx_shift = 0
        self.tx_state = TX_IDLE
        self.tx_frame_end = 0
        self.tx_backpressure = False

    def reset(self) -> None:
        """The part of ``pl011_reset`` that is not a register's reset value.

        :meth:`PL011State.registers.reset <qemu_api.register.RegisterMap.reset>`
        stores the registers' reset values first; this empties the FIFOs
        (their contents are kept) and resets the receive trigger.
        """
        self.read_trigger = 1
        self.reset_rx_fifo()
        self.reset_tx_fifo()
        if self.fifo_levels:
            # The transmitter stops; CTS reads as asserted until the chardev
            # refuses output again.
            self.tx_count = 0
            self.tx_state = TX_IDLE
            self.tx_backpressure = False
            self.update_tx_flags()
            self.flags.cts = True
            self.set_read_trigger()

    def loopback_enabled(self) -> bool:
        """CR.LBE: transmitted data and modem outputs come back as input."""
        return self.control.lbe

    def fifo_depth(self) -> int:
        """16 entries with LCR_H.FEN set, else 1 (``pl011_get_fifo_depth``)."""
        return PL011_FIFO_DEPTH if self.line_control.fen else 1

    def reset_rx_fifo(self) -> None:
        """Empty the receive FIFO (its contents stay as stale words)."""
        self.read_count = 0
        self.read_pos = 0
        self.flags.rxff = False
        self.flags.rxfe = True

    def reset_tx_fifo(self) -> None:
        """Reset the transmit flags: never full, always empty.

        With ``fifo_levels`` the FIFO keeps its contents (see
        :meth:`PL011State.write_line_control`) and the flags follow it.
        """
        if self.fifo_levels:
            self.update_tx_flags()
            return
        self.flags.txff = False
        self.flags.txfe = True

    # -- the transmit FIFO (x-tx-fifo) --------------------------------------------

    def tx_trigger(self) -> int:
        """FIFO entries at which the transmit interrupt is raised when draining.

        IFLS.TXIFLSEL with the FIFOs on; 0 (the holding register emptied)
        with them off.
        """
        if not self.line_control.fen:
            return 0
        return IFLS_LEVELS[min(self.ifl & 7, 4)]

    def update_tx_flags(self) -> None:
        """TXFF, TXFE and BUSY from the transmit FIFO, as the TRM defines them.

        TXFF: the FIFO (one entry with LCR_H.FEN clear) is full; TXFE: it is
        empty (the shift register may still send); BUSY: a byte is in the FIFO
        or the shift register.
        """
        count = self.tx_count
        if count == 0:
            bits = _FR_TXFE if self.tx_state == TX_IDLE else _FR_TXFE | _FR_BUSY
        elif count >= self.fifo_depth():
            bits = _FR_TXFF | _FR_BUSY
        else:
            bits = _FR_BUSY
        self.flags = Flags((int(self.flags) & ~_FR_TX_BITS) | bits)

    def tx_push(self, ch: int) -> bool:
        """Queue a byte the guest wrote to DR; False if the FIFO is full.

        Writing data above the trigger level clears the transmit interrupt.
        """
        count = self.tx_count
        if count >= self.fifo_depth():
            return False
        self.tx_fifo[count] = ch
        count += 1
        self.tx_count = count
        trace_pl011_fifo_tx_put(ch, count, self.fifo_depth())
        if count > self.tx_trigger():
            self.int_level &= ~INT_TX
        self.update_tx_flags()
        return True

    def tx_pop(self, n: int) -> None:
        """Move ``n`` bytes out of the FIFO, the last into the shift register.

        Raises the transmit interrupt if the FIFO drained past its trigger
        level (the PL011 signals the crossing, not the level).
        """
        if n <= 0:
            return
        old = self.tx_count
        fifo = self.tx_fifo
        self.tx_shift = fifo[n - 1]
        del fifo[:n]
        fifo.extend(bytes(n))
        self.tx_count = old - n
        trigger = self.tx_trigger()
        if old > trigger >= old - n:
            self.int_level |= INT_TX

    def rts_output(self) -> bool:
        """The RTS output: CR.RTS, or with CR.RTSEn, room below the RX level."""
        if self.control.rtsen:
            return self.read_count < self.read_trigger
        return self.control.rts

    def cts_input(self) -> bool:
        """The CTS input: RTS in loopback, else the chardev is taking output."""
        if self.control.lbe:
            return self.rts_output()
        return not self.tx_backpressure

    def update_cts(self) -> bool:
        """FR.CTS from :meth:`cts_input`; a change raises INT_CTS (True then)."""
        cts = self.cts_input()
        if self.flags.cts == cts:
            return False
        self.flags.cts = cts
        self.int_level |= INT_CTS
        return True

    def fifo_rx_put(self, value: int) -> bool:
        """Queue a received word (``pl011_fifo_rx_put``).

        There is no full check: the caller limits chardev input with
        ``can_receive``, but loopback and breaks can overfill the FIFO, which
        then overwrites its oldest entries while RXFF stays set.

        Returns:
            True when the FIFO reached the trigger level and INT_RX was set:
            QEMU updates the IRQ lines then.
        """
        depth = self.fifo_depth()
        slot = (self.read_pos + self.read_count) & (depth - 1)
        self.read_fifo[slot] = value
        self.read_count += 1
        self.flags.rxfe = False
        trace_pl011_fifo_rx_put(value, self.read_count, depth)
        if self.read_count == depth:
            trace_pl011_fifo_rx_full()
            self.flags.rxff = True
        if self.fifo_levels:
            # The TRM's level: asserted while at or above the trigger level.
            if self.read_count >= self.read_trigger:
                self.int_level |= INT_RX
                return True
            return False
        if self.read_count == self.read_trigger:
            self.int_level |= INT_RX
            return True
        return False

    def read_rxdata(self) -> int:
        """Pop the receive FIFO for a DR read (``pl011_read_rxdata``).

        An empty FIFO returns the stale word at ``read_pos``. RSR takes the
        word's error bits, and INT_RX clears when the FIFO drops below the
        trigger level (so every read of an empty FIFO clears it).
        """
        depth = self.fifo_depth()
        self.flags.rxff = False
        c = self.read_fifo[self.read_pos]
        if self.read_count > 0:
            self.read_count -= 1
            self.read_pos = (self.read_pos + 1) & (depth - 1)
        if self.read_count == 0:
            self.flags.rxfe = True
        if self.fifo_levels:
            if self.read_count < self.read_trigger:
                self.int_level &= ~INT_RX
            if self.read_count == 0:
                self.int_level &= ~INT_RT
        elif self.read_count == self.read_trigger - 1:
            self.int_level &= ~INT_RX
        trace_pl011_read_fifo(self.read_count & _U32, depth)
        self.rsr = ReceiveStatus(c >> 8)
        return c

    def loopback_tx(self, value: int) -> bool:
        """In loopback mode, queue a transmitted word as received input.

        QEMU's ``pl011_loopback_tx``: real hardware loops back after the
        transmit FIFO at the line rate; the model loops back at once.
        """
        if not self.loopback_enabled():
            return False
        return self.fifo_rx_put(value)

    def loopback_break(self, enable: bool) -> bool:
        """In loopback mode, a break being sent arrives as a break word."""
        if enable:
            return self.loopback_tx(DR_BE)
        return False

    def loopback_mdmctrl(self) -> bool:
        """In loopback mode, the modem outputs become the modem inputs.

        FR.RI = CR.OUT2, FR.DCD = CR.OUT1, FR.CTS = CR.RTS, FR.DSR = CR.DTR,
        and the modem status interrupt bits copy the new levels (QEMU's
        ``pl011_loopback_mdmctrl``). Runs on every CR write while LBE is set,
        including the write that sets it.
        """
        if not self.loopback_enabled():
            return False
        cr = self.control
        fr = self.flags
        fr.ri = cr.out2
        fr.dcd = cr.out1
        fr.cts = cr.rts
        fr.dsr = cr.dtr
        il = self.int_level & ~INT_MS
        il |= INT_DSR if fr.dsr else 0
        il |= INT_DCD if fr.dcd else 0
        il |= INT_CTS if fr.cts else 0
        il |= INT_RI if fr.ri else 0
        self.int_level = il
        return True

    def set_read_trigger(self) -> None:
        """The receive interrupt level: one entry, or IFLS's with ``fifo_levels``.

        QEMU keeps the IFLS-based level (``(ifl >> 1) & 0x1c`` with the FIFO
        on) under ``#if 0``: Linux reads the FIFO only from the interrupt, so
        it is raised as soon as the FIFO is not empty.  With ``x-tx-fifo`` the
        level is IFLS.RXIFLSEL's (:data:`~hw.char.pl011.registers.IFLS_LEVELS`)
        while LCR_H.FEN is set, and the receive timeout interrupt reports
        what stays below it.
        """
        if self.fifo_levels and self.line_control.fen:
            self.read_trigger = IFLS_LEVELS[min((self.ifl >> 3) & 7, 4)]
        else:
            self.read_trigger = 1

    @override
    def __repr__(self) -> str:
        return (
            f"<PL011Registers FR={int(self.flags):#x} LCR_H={int(self.line_control):#x}"
            f" CR={int(self.control):#x} RIS={self.int_level:#x}"
            f" IMSC={self.int_enabled:#x} FIFO {self.read_count}@{self.read_pos}>"
        )


class PL011State(SysBusDevice, type_name=TYPE_PL011):
    """The ARM PrimeCell UART, QEMU's ``TYPE_PL011``.

    Create it with :func:`pl011_create` or as any sysbus device; reset it
    before use (a machine reset does).

    Attributes:
        regs: the register state.
        iomem: the 4 KiB register region (sysbus MMIO 0).
        interrupts: the six IRQ outputs (sysbus IRQs 0-5).
        clk: the clock input ``clk``.
        tx_timer: ends the frame on the line (``x-tx-fifo``).
        rt_timer: the receive timeout (``x-tx-fifo``).
    """

    device_id: ClassVar[bytes] = PL011_ID_ARM
    """PeriphID0-3 and PCellID0-3, one byte per 32-bit register."""
    user_creatable = False

    regs: PL011Registers
    clk: Clock
    tx_timer: Timer
    rt_timer: Timer

    chardev = prop_chr("chardev", doc="the serial port's character device")
    migrate_clk = prop_bool(
        "migrate-clk", default=True, doc="migrate the 'clk' input's period"
    )
    tx_fifo = prop_bool(
        "x-tx-fifo",
        default=False,
        doc="transmit FIFO drained at the line rate, IFLS interrupt levels, "
        "receive timeout and hardware flow control (not in QEMU)",
    )

    @override
    def instance_init(self) -> None:
        self.regs = PL011Registers()
        self.logged_disabled_uart = BqlCell(False)
        self.tx_timer = Timer(CLOCK_VIRTUAL, SCALE_NS, self.tx_frame_done)
        self.rt_timer = Timer(CLOCK_VIRTUAL, SCALE_NS, self.receive_timeout)
        self._tx_watch: ChrWatch | None = None
        # x-tx-fifo, as a plain attribute for the MMIO path (set at realize).
        self._tx_lazy = False
        # The character time on the line, 0 until computed (frame_ns).
        self._frame_ns = 0
        self.iomem = MemoryRegion.io(self, "pl011", PL011_MMIO_SIZE, PL011_OPS, self)
        self.init_mmio(self.iomem)
        self.interrupts = tuple(InterruptSource() for _ in IRQMASK)
        for irq in self.interrupts:
            self.init_irq(irq)
        self._irq_lines = tuple(zip(self.interrupts, IRQMASK, strict=True))
        self.clk = self.init_clock_in("clk", self.clock_update, ClockEvent.UPDATE)

    @override
    def realize(self) -> None:
        super().realize()
        self.regs.fifo_levels = self._tx_lazy = self.tx_fifo
        self.iomem.invalidate_resolved()  # the accesses depend on _tx_lazy
        self.chardev.set_handlers(self.can_receive, self.receive, self.event)

    @override
    def reset_hold(self, reset_type: ResetType) -> None:
        super().reset_hold(reset_type)
        self.registers.reset(self)
        with self.regs.borrow_mut() as regs:
            regs.reset()
        self._frame_ns = 0
        if self.tx_fifo:
            self.tx_timer.delete()
            self.rt_timer.delete()
            self._tx_unwatch()

    def add_fdt_node(self, data: PlatformBusFDTData) -> None:
        """Describe this UART on a platform bus (``-device pl011`` on virt).

        The node is the one virt's ``create_uart`` makes for UART0, at the
        UART's window on the bus with its first (combined) interrupt; a Linux
        guest binds it as the next ``ttyAMA``.
        """
        fdt = data.fdt
        node = data.node_path(self, "pl011")
        fdt.add_subnode(node)
        fdt.setprop_string_array(node, "compatible", ["arm,pl011", "arm,primecell"])
        fdt.setprop_cells(node, "reg", *data.reg(self, 0))
        fdt.setprop_cells(node, "interrupts", *data.interrupts(self, 0))
        if data.clock_phandle is not None:
            fdt.setprop_cells(node, "clocks", data.clock_phandle, data.clock_phandle)
            fdt.setprop_string_array(node, "clock-names", ["uartclk", "apb_pclk"])

    # -- interrupts ------------------------------------------------------------

    def update(self) -> None:
        """Drive each IRQ output from RIS & IMSC and its mask (``pl011_update``)."""
        regs = self.regs
        flags = regs.int_level & regs.int_enabled
        trace_pl011_irq_state(flags != 0)
        for irq, mask in self._irq_lines:
            irq.set(1 if flags & mask else 0)

    # -- registers with side effects --------------------------------------------

    def read_rxdata(self) -> int:
        """A DR read: pop the FIFO, update the IRQs, let the chardev send more."""
        with self.regs.borrow_mut() as regs:
            c = regs.read_rxdata()
        if self.tx_fifo:
            self.modem_changed()
        self.update()
        self.chardev.accept_input()
        return c

    def write_txdata(self, ch: int) -> None:
        """Transmit a byte (``pl011_write_txdata``), whatever the enable bits say."""
        control = self.regs.control
        uarten = control.uarten
        txe = control.txe
        looping = control.lbe
        if not uarten and not self.logged_disabled_uart.get():
            # Logged once: popular guests (Linux among them) never set UARTEN.
            qemu_log_mask(LOG_GUEST_ERROR, "PL011 data written to disabled UART\n")
            self.logged_disabled_uart.set(True)
        if not txe:
            qemu_log_mask(LOG_GUEST_ERROR, "PL011 data written to disabled TX UART\n")
        if self.tx_fifo:
            self.tx_put(ch)
            return
        # No transmit FIFO: wait until the backend takes the byte, as QEMU does.
        self.chardev.write_all(_BYTE[ch])
        if looping:
            with self.regs.borrow_mut() as regs:
                update = regs.loopback_tx(ch)
            if update:
                self.update()
        self.regs.int_level |= INT_TX
        self.update()

    def write_line_control(self, value: int) -> None:
        """An LCR_H write: FIFO reset on an FEN change, break on a BRK change."""
        lcr = LineControl(value)
        old = self.regs.line_control
        if old.fen != lcr.fen:
            with self.regs.borrow_mut() as regs:
                regs.reset_rx_fifo()
                regs.reset_tx_fifo()
            if self.tx_fifo:
                # The transmit FIFO keeps what the guest queued: nothing it
                # wrote is lost; the new depth applies to what it writes next.
                with self.regs.borrow_mut() as regs:
                    regs.line_control = lcr
                    regs.update_tx_flags()
                    regs.line_control = old
        if old.brk != lcr.brk:
            self.chardev.send_break(lcr.brk)
            # Looped back with the old LCR_H, so with the old FIFO depth.
            with self.regs.borrow_mut() as regs:
                update = regs.loopback_break(lcr.brk)
            if update:
                self.update()
        with self.regs.borrow_mut() as regs:
            regs.line_control = lcr
            regs.set_read_trigger()
        if self.tx_fifo:
            self._frame_ns = 0
            self.modem_changed()
            self.tx_rearm()

    def control_written(self) -> None:
        """After a CR write: in loopback, the modem outputs become the inputs."""
        with self.regs.borrow_mut() as regs:
            update = regs.loopback_mdmctrl()
        if update:
            self.update()
        if self.tx_fifo:
            self.modem_changed()
            self.tx_rearm()

    def ifls_written(self) -> None:
        """After an IFLS write: the new receive level (and RTS, with RTSEn)."""
        self.regs.set_read_trigger()
        if self.tx_fifo:
            self.modem_changed()
            self.tx_rearm()

    # -- the transmit FIFO and flow control (x-tx-fifo) ---------------------------

    def bit_ns(self) -> float:
        """One bit period on the line, in ns, from IBRD, FBRD and UARTCLK.

        ``(64 * IBRD + FBRD) / (4 * UARTCLK)`` seconds (the TRM's
        ``UARTCLK / (16 * BAUDDIV)`` baud).  UARTCLK is the ``clk`` input,
        or :data:`~hw.char.pl011.registers.PL011_UARTCLK_DEFAULT_HZ` while it
        is unconnected; a divisor never programmed (IBRD 0) sends at 115200
        baud.
        """
        regs = self.regs
        ibrd = regs.ibrd
        if ibrd == 0:
            return _UNPROGRAMMED_BIT_NS
        clk_hz = self.clk.get_hz() or PL011_UARTCLK_DEFAULT_HZ
        return ((ibrd << 6) + regs.fbrd) * 1e9 / (4 * clk_hz)

    def frame_ns(self) -> int:
        """How long one character takes on the line with the current LCR_H.

        Cached until LCR_H, IBRD, FBRD or the clock change.
        """
        frame = self._frame_ns
        if frame == 0:
            bits = pl011_frame_bits(self.regs.line_control)
            frame = self._frame_ns = max(1, round(bits * self.bit_ns()))
        return frame

    def tx_put(self, ch: int) -> None:
        """A DR write with the transmit FIFO: queue, start the transmitter."""
        frame = self._frame_ns or self.frame_ns()
        when = -1
        with self.regs.borrow_mut() as regs:
            level = regs.int_level
            if regs.tx_state == TX_IDLE and regs.tx_count == 0:
                # Straight into the shift register: what queueing and
                # loading it would do (the holding register empties at once).
                trace_pl011_fifo_tx_put(ch, 1, regs.fifo_depth())
                if regs.tx_trigger() == 0:
                    regs.int_level |= INT_TX
                regs.tx_shift = ch
                self._tx_begin(regs, qemu_clock_get_ns(CLOCK_VIRTUAL), frame)
                full = False
            elif not regs.tx_push(ch):
                full = True
            else:
                full = False
                state = regs.tx_state
                if state == TX_IDLE:
                    regs.tx_pop(1)
                    self._tx_begin(regs, qemu_clock_get_ns(CLOCK_VIRTUAL), frame)
                elif state == TX_SENDING:
                    # The byte may bring the interrupt's level crossing back.
                    when = self._tx_next_event(regs, frame)
            changed = regs.int_level != level
        if when >= 0:
            self.tx_timer.mod_anticipate_ns(when)
        if full:
            qemu_log_mask(
                LOG_GUEST_ERROR, "PL011 data written to full TX FIFO (TXFF set)\n"
            )
        elif changed:
            self.update()

    def _tx_begin(self, regs: PL011Registers, now: int, frame: int) -> None:
        """Put the shift register's byte on the line, if CTS allows."""
        if regs.control.ctsen and not regs.cts_input():
            regs.tx_state = TX_WAIT_CTS
        else:
            regs.tx_state = TX_SENDING
            regs.tx_frame_end = now + frame
            self.tx_timer.mod_anticipate_ns(self._tx_next_event(regs, frame))
        regs.update_tx_flags()

    @staticmethod
    def _tx_next_event(regs: PL011Registers, frame: int) -> int:
        """When the sending transmitter next needs its timer (virtual ns).

        Between two such times the line runs on its own: what the guest can
        see of it (FR, RIS) is brought up to date when it looks
        (:meth:`tx_catch_up`).  The timer is needed exactly when the TX
        interrupt line rises (the FIFO drains through the IFLS level with
        INT_TX enabled), and in loopback at every frame's end (the receiver
        takes each character).  Otherwise it only hands the characters that
        ended to the chardev when nobody looks: when the last one ends, but
        not sooner than a FIFO's depth of character times after the current
        one ends, so that a character waits at most that long and a guest
        that writes one character at a time costs no timer per character.
        """
        end = regs.tx_frame_end
        if regs.control.lbe:
            return end
        count = regs.tx_count
        trigger = regs.tx_trigger()
        if count > trigger and regs.int_enabled & INT_TX:
            # Pop number count - trigger crosses the level; pop j happens
            # when frame j - 1 after the current one ends.
            return end + (count - trigger - 1) * frame
        return end + max(count, PL011_FIFO_DEPTH) * frame

    def tx_rearm(self) -> None:
        """A register that the timer's next event depends on changed."""
        if not self._tx_lazy:
            return
        frame = self.frame_ns()
        with self.regs.borrow() as regs:
            if regs.tx_state != TX_SENDING:
                return
            when = self._tx_next_event(regs, frame)
        self.tx_timer.mod_anticipate_ns(when)

    def tx_catch_up(self, now: int) -> None:
        """Bring the transmitter to ``now``: the characters whose frames ended.

        They go to the chardev in one write, and the FIFO, FR and the TX
        interrupt status become what sending them one frame after the other
        made them.  If the chardev takes only some, the first one refused
        stays in the shift register with CTS deasserted, as if it had been
        refused at the end of its own frame, and a write watch resumes the
        line.  Loopback is left to the per-frame timer.
        """
        regs = self.regs
        if regs.tx_state != TX_SENDING or regs.tx_frame_end > now:
            return
        frame = self._frame_ns or self.frame_ns()
        with regs.borrow() as raw:
            if raw.control.lbe:
                return
            end = raw.tx_frame_end
            count = raw.tx_count
            if count == 0:
                due = 1
                out = _BYTE[raw.tx_shift]
            else:
                due = 1 + min(count, (now - end) // frame)
                out = _BYTE[raw.tx_shift] + bytes(raw.tx_fifo[: due - 1])
        fe = self.chardev
        taken = fe.write(out) if fe.backend_connected() else due
        trace_pl011_fifo_tx_xmit(due, taken, count)
        blocked = False
        if taken < due:
            self._tx_watch = fe.add_write_watch(self.tx_writable)
            if self._tx_watch is None:
                # Nothing to wait for: the chardev discards output now.
                taken = due
            else:
                blocked = True
        with regs.borrow_mut() as raw:
            level = raw.int_level
            if blocked:
                raw.tx_pop(taken)
                raw.tx_frame_end = end + taken * frame
                raw.tx_state = TX_BLOCKED
                raw.tx_backpressure = True
            elif due <= count:
                raw.tx_pop(due)
                raw.tx_frame_end = end + due * frame
            else:
                raw.tx_pop(count)
                raw.tx_frame_end = end + count * frame
                raw.tx_state = TX_IDLE
            raw.update_tx_flags()
            changed = raw.int_level != level
        # A timer left pending finds nothing to do; the next character's
        # start keeps it (mod_anticipate) instead of moving it each time.
        if blocked:
            self.modem_changed()
        if changed:
            self.update()

    def _tx_next(self, regs: PL011Registers, now: int, frame: int) -> None:
        """The shift register is free: load the next byte or go idle."""
        if regs.tx_count > 0:
            regs.tx_pop(1)
            self._tx_begin(regs, now, frame)
        else:
            regs.tx_state = TX_IDLE
            regs.update_tx_flags()

    def tx_start(self, now: int) -> None:
        """Start the line with the shift register's byte (CTS permitting)."""
        frame = self.frame_ns()
        with self.regs.borrow_mut() as regs:
            level = regs.int_level
            self._tx_begin(regs, now, frame)
            changed = regs.int_level != level
        if changed:
            self.update()

    def tx_next(self, now: int) -> None:
        """The shift register is free: load the next byte or go idle."""
        frame = self.frame_ns()
        with self.regs.borrow_mut() as regs:
            level = regs.int_level
            self._tx_next(regs, now, frame)
            changed = regs.int_level != level
        if changed:
            self.update()

    def tx_frame_done(self) -> None:
        """The transmitter's timer: characters ended on the line.

        They go to the chardev (:meth:`tx_catch_up`; in loopback, one by one
        to the receiver), and the timer is armed for the next event
        (:meth:`_tx_next_event`), not for every character.
        """
        now = qemu_clock_get_ns(CLOCK_VIRTUAL)
        if self.regs.control.lbe:
            self.tx_loopback(now)
            return
        self.tx_catch_up(now)
        frame = self.frame_ns()
        with self.regs.borrow() as regs:
            if regs.tx_state != TX_SENDING:
                return
            when = self._tx_next_event(regs, frame)
        self.tx_timer.mod_ns(when)

    def tx_writable(self) -> None:
        """The chardev has room again: send the byte the shift register holds."""
        self._tx_watch = None
        if self.regs.tx_state != TX_BLOCKED:
            return
        fe = self.chardev
        byte = _BYTE[self.regs.tx_shift]
        if fe.backend_connected() and fe.write(byte) == 0:
            self._tx_watch = fe.add_write_watch(self.tx_writable)
            if self._tx_watch is not None:
                return
        self.regs.tx_backpressure = False
        self.tx_next(qemu_clock_get_ns(CLOCK_VIRTUAL))
        self.modem_changed()

    def _tx_unwatch(self) -> None:
        if self._tx_watch is not None:
            self._tx_watch.remove()
            self._tx_watch = None

    def tx_loopback(self, now: int) -> None:
        """In loopback, frames that ended go into the receiver, one by one."""
        while True:
            with self.regs.borrow_mut() as regs:
                if regs.tx_state != TX_SENDING or regs.tx_frame_end > now:
                    break
                end = regs.tx_frame_end
                rx = regs.fifo_rx_put(regs.tx_shift)
            if rx:
                self.update()
            self.rt_timer.mod_ns(end + round(RT_BITS * self.bit_ns()))
            self.modem_changed()
            self.tx_next(end)
        self.update()

    def modem_changed(self) -> None:
        """Re-evaluate CTS (and INT_CTS); resume a transmitter waiting for it."""
        with self.regs.borrow_mut() as regs:
            changed = regs.update_cts()
            resume = regs.tx_state == TX_WAIT_CTS and regs.cts_input()
        if resume:
            self.tx_start(qemu_clock_get_ns(CLOCK_VIRTUAL))
        if changed:
            self.update()

    def receive_timeout(self) -> None:
        """32 bit periods without input while data waits: INT_RT."""
        if self.regs.read_count > 0:
            self.regs.int_level |= INT_RT
            self.update()

    def mmio_read(self, offset: int, size: int) -> int:
        """A guest read (``pl011_read``); with x-tx-fifo the line catches up first."""
        if self._tx_lazy:
            self.tx_catch_up(qemu_clock_get_ns(CLOCK_VIRTUAL))
        return self.registers.read(self, offset, size)

    def mmio_write(self, offset: int, value: int, size: int) -> None:
        """A guest write (``pl011_write``); the line catches up first, as for reads."""
        if self._tx_lazy:
            self.tx_catch_up(qemu_clock_get_ns(CLOCK_VIRTUAL))
        self.registers.write(self, offset, value, size)

    def mmio_resolve_read(
        self, offset: int, size: int
    ) -> Callable[[int, int], int] | None:
        """The register's own read for the address space to call directly.

        None with x-tx-fifo, whose reads catch the line up first.
        """
        if self._tx_lazy:
            return None
        return self.registers.resolve_read(self, offset, size)

    def mmio_resolve_write(
        self, offset: int, size: int
    ) -> Callable[[int, int, int], None] | None:
        """The register's own write, as :meth:`mmio_resolve_read`."""
        if self._tx_lazy:
            return None
        return self.registers.resolve_write(self, offset, size)

    def imsc_written(self) -> None:
        """After an IMSC write: the IRQ lines, and when the TX line may rise."""
        self.update()
        self.tx_rearm()

    def masked_interrupts(self) -> int:
        """UARTMIS: the raw interrupts that are enabled."""
        regs = self.regs
        return regs.int_level & regs.int_enabled

    def read_id(self, index: int) -> int:
        """PeriphID0-3 and PCellID0-3, from the class's ID bytes."""
        return self.device_id[index]

    # -- clock -----------------------------------------------------------------

    def trace_baudrate_change(self) -> None:
        """Trace the baud rate that IBRD, FBRD and the clock give."""
        self._frame_ns = 0
        regs = self.regs
        ibrd = regs.ibrd
        fbrd = regs.fbrd
        clk_hz = self.clk.get_hz()
        trace_pl011_baudrate_change(
            pl011_baudrate(clk_hz, ibrd, fbrd), clk_hz, ibrd, fbrd
        )
        self.tx_rearm()

    def clock_update(self, event: ClockEvent) -> None:
        """The ``clk`` input changed: trace the new baud rate."""
        self.trace_baudrate_change()

    # -- chardev ---------------------------------------------------------------

    def can_receive(self) -> int:
        """Free FIFO entries (``pl011_can_receive``), whatever the enable bits say.

        Negative when loopback overfilled the FIFO (QEMU's unsigned
        subtraction returned as ``int``).
        """
        with self.regs.borrow() as regs:
            lcr = int(regs.line_control)
            used = regs.read_count
            depth = regs.fifo_depth()
            # With RTS flow control the peer stops at the receive level.
            limit = (
                regs.read_trigger if regs.fifo_levels and regs.control.rtsen else depth
            )
        available = limit - used
        trace_pl011_can_receive(lcr, used & _U32, depth, available & _U32)
        return available

    def receive(self, buf: bytes) -> None:
        """Queue bytes from the chardev; dropped while looping back."""
        trace_pl011_receive(len(buf))
        if self.regs.control.lbe:
            return
        for byte in buf:
            with self.regs.borrow_mut() as regs:
                update = regs.fifo_rx_put(byte)
            if update:
                self.update()
        if self.tx_fifo:
            self.received()

    def received(self) -> None:
        """Input arrived (x-tx-fifo): restart the receive timeout, update RTS."""
        now = qemu_clock_get_ns(CLOCK_VIRTUAL)
        self.rt_timer.mod_ns(now + round(RT_BITS * self.bit_ns()))
        self.modem_changed()

    def event(self, event: ChrEvent) -> None:
        """A break from the chardev queues a break word, unless looping back."""
        if event is not ChrEvent.BREAK:
            return
        with self.regs.borrow_mut() as regs:
            looping = regs.loopback_enabled()
            update = not looping and regs.fifo_rx_put(DR_BE)
        if update:
            self.update()
        if self.tx_fifo and not looping:
            self.received()

    # -- migration -------------------------------------------------------------

    def clock_needed(self) -> bool:
        """Whether the ``pl011/clock`` subsection is sent (``migrate-clk``)."""
        return self.migrate_clk

    def tx_fifo_needed(self) -> bool:
        """Whether the ``pl011/tx-fifo`` subsection is sent (``x-tx-fifo``)."""
        return self.tx_fifo

    def pre_save(self) -> None:
        """With ``x-tx-fifo``, save the line as it is now (:meth:`tx_catch_up`)."""
        if self._tx_lazy:
            self.tx_catch_up(qemu_clock_get_ns(CLOCK_VIRTUAL))

    def tx_fifo_post_load(self, version_id: int) -> None:
        """Check the transmitter state and set the line going again.

        Raises:
            Error: the stream has the transmit FIFO but this device has not
                the option, or the state is out of range.
        """
        if not self.tx_fifo:
            raise Error(
                "the stream holds the PL011 transmit FIFO state, but this "
                "pl011 has x-tx-fifo=off",
                hint="Start the destination with -global pl011.x-tx-fifo=on, "
                "as the source.\n",
            )
        with self.regs.borrow_mut() as regs:
            if not 0 <= regs.tx_count <= PL011_FIFO_DEPTH:
                raise Error(
                    f"tx_count {regs.tx_count} is outside the transmit FIFO; "
                    f"expected 0 to {PL011_FIFO_DEPTH}"
                )
            if regs.tx_state not in _TX_STATES:
                raise Error(
                    f"tx_state {regs.tx_state} is not a transmitter state; "
                    f"expected 0 to {len(_TX_STATES) - 1}"
                )
            state = regs.tx_state
            end = regs.tx_frame_end
        self._tx_unwatch()
        self._frame_ns = 0
        if state == TX_SENDING:
            self.tx_timer.mod_ns(end)
        elif state == TX_BLOCKED:
            # Offer the held byte to this side's chardev once it can take
            # output (from the main loop: loading updates no IRQ line).
            self._tx_watch = self.chardev.add_write_watch(self.tx_writable)
            if self._tx_watch is None:
                with self.regs.borrow_mut() as regs:
                    regs.tx_backpressure = False
                    regs.tx_state = TX_SENDING
                    regs.tx_frame_end = end
                self.tx_timer.mod_ns(end)

    def post_load(self, version_id: int) -> None:
        """Check and convert a loaded state (``pl011_post_load``).

        The IRQ lines are not updated: the interrupt controller migrates its
        own input levels.

        Raises:
            Error: ``read_pos`` or ``read_count`` is outside the FIFO.
        """
        self._frame_ns = 0
        with self.regs.borrow_mut() as regs:
            if not 0 <= regs.read_pos < PL011_FIFO_DEPTH:
                raise Error(
                    f"read_pos {regs.read_pos} is outside the receive FIFO; "
                    f"expected 0 to {PL011_FIFO_DEPTH - 1}"
                )
            if not 0 <= regs.read_count <= PL011_FIFO_DEPTH:
                raise Error(
                    f"read_count {regs.read_count} is outside the receive "
                    f"FIFO; expected 0 to {PL011_FIFO_DEPTH}"
                )
            if not regs.line_control.fen and regs.read_count > 0 and regs.read_pos > 0:
                # Older QEMU kept the one entry of a disabled FIFO anywhere;
                # this model keeps it in entry 0.
                regs.read_fifo[0] = regs.read_fifo[regs.read_pos]
                regs.read_pos = 0
            regs.ibrd &= IBRD_MASK
            regs.fbrd &= FBRD_MASK

    # -- declarations ----------------------------------------------------------

    registers = RegisterMap["PL011State"](
        "pl011",
        PL011_MMIO_SIZE,
        [
            Register(
                "DR",
                0x000,
                RW,
                read=read_rxdata,
                write=write_txdata,
                write_mask=0xFF,
                fields=Data,
                doc="UARTDR: a read pops the receive FIFO, a write transmits",
            ),
            Register(
                "RSR",
                0x004,
                RW,
                field=lambda s: s.regs.rsr,
                pre_write=lambda s, value: 0,
                doc="UARTRSR/UARTECR: receive status; any write clears it",
            ),
            Register(
                "FR",
                0x018,
                R | WI,
                field=lambda s: s.regs.flags,
                reset=FR_RESET,
                doc="UARTFR: flags; writes are ignored",
            ),
            Register(
                "ILPR",
                0x020,
                RW,
                field=lambda s: s.regs.ilpr,
                doc="UARTILPR: IrDA low-power counter (stored, not used)",
            ),
            Register(
                "IBRD",
                0x024,
                RW,
                field=lambda s: s.regs.ibrd,
                write_mask=IBRD_MASK,
                post_write=trace_baudrate_change,
                doc="UARTIBRD: integer baud rate divisor",
            ),
            Register(
                "FBRD",
                0x028,
                RW,
                field=lambda s: s.regs.fbrd,
                write_mask=FBRD_MASK,
                post_write=trace_baudrate_change,
                doc="UARTFBRD: fractional baud rate divisor",
            ),
            Register(
                "LCR_H",
                0x02C,
                RW,
                field=lambda s: s.regs.line_control,
                write=write_line_control,
                trace_name="LCRH",
                doc="UARTLCR_H: line control (FIFO enable, send break)",
            ),
            Register(
                "CR",
                0x030,
                RW,
                field=lambda s: s.regs.control,
                reset=CR_RESET,
                post_write=control_written,
                doc="UARTCR: enables, loopback, modem outputs",
            ),
            Register(
                "IFLS",
                0x034,
                RW,
                field=lambda s: s.regs.ifl,
                reset=IFLS_RESET,
                post_write=ifls_written,
                doc="UARTIFLS: interrupt FIFO level select (used with x-tx-fifo)",
            ),
            Register(
                "IMSC",
                0x038,
                RW,
                field=lambda s: s.regs.int_enabled,
                post_write=imsc_written,
                doc="UARTIMSC: interrupt mask set/clear",
            ),
            Register(
                "RIS",
                0x03C,
                RO,
                field=lambda s: s.regs.int_level,
                doc="UARTRIS: raw interrupt status",
            ),
            Register(
                "MIS",
                0x040,
                RO,
                read=masked_interrupts,
                doc="UARTMIS: masked interrupt status",
            ),
            Register(
                "ICR",
                0x044,
                W1C,
                field=lambda s: s.regs.int_level,
                post_write=update,
                doc="UARTICR: interrupt clear (write only)",
            ),
            Register(
                "DMACR",
                0x048,
                RW,
                field=lambda s: s.regs.dmacr,
                unimp=0x3,
                doc="UARTDMACR: DMA control (DMA is not implemented)",
            ),
            RegisterArray(
                "ID",
                0xFE0,
                8,
                RO,
                read=read_id,
                trace_name="ID",
                doc="PeriphID0-3 and PCellID0-3, one ID byte each",
            ),
        ],
        decode=Decode.WHOLE,
        log=RegisterLog.bad_offset(
            "pl011_read: Bad offset 0x{addr:x}\n",
            "pl011_write: Bad offset 0x{addr:x}\n",
            unimp="pl011: DMA not implemented\n",
        ),
        trace_read=trace_pl011_read,
        trace_write=trace_pl011_write,
    )
    """QEMU's ``pl011_read``/``pl011_write`` as a table: the PL011's registers."""

    vmsd = VMStateDescription["PL011State"](
        "pl011",
        version_id=2,
        minimum_version_id=2,
        pre_save=pre_save,
        post_load=post_load,
        fields=[
            vmstate_unused(4),  # readbuff, dropped in QEMU 9.2
            vmstate_uint32(lambda s: s.regs.flags),
            vmstate_uint32(lambda s: s.regs.line_control, name="lcr"),
            vmstate_uint32(lambda s: s.regs.rsr),
            vmstate_uint32(lambda s: s.regs.control, name="cr"),
            vmstate_uint32(lambda s: s.regs.dmacr),
            vmstate_uint32(lambda s: s.regs.int_enabled),
            vmstate_uint32(lambda s: s.regs.int_level),
            vmstate_array(
                lambda s: s.regs.read_fifo, vmstate_info_uint32, PL011_FIFO_DEPTH
            ),
            vmstate_uint32(lambda s: s.regs.ilpr),
            vmstate_uint32(lambda s: s.regs.ibrd),
            vmstate_uint32(lambda s: s.regs.fbrd),
            vmstate_uint32(lambda s: s.regs.ifl),
            vmstate_int32(lambda s: s.regs.read_pos),
            vmstate_int32(lambda s: s.regs.read_count),
            vmstate_int32(lambda s: s.regs.read_trigger),
        ],
        subsections=[
            VMStateDescription(
                "pl011/clock",
                version_id=1,
                minimum_version_id=1,
                needed=clock_needed,
                fields=[vmstate_clock(lambda s: s.clk)],
            ),
            VMStateDescription(
                "pl011/tx-fifo",
                version_id=1,
                minimum_version_id=1,
                needed=tx_fifo_needed,
                post_load=tx_fifo_post_load,
                fields=[
                    vmstate_buffer(lambda s: s.regs.tx_fifo, PL011_FIFO_DEPTH),
                    vmstate_int32(lambda s: s.regs.tx_count),
                    vmstate_uint8(lambda s: s.regs.tx_shift),
                    vmstate_uint8(lambda s: s.regs.tx_state),
                    vmstate_int64(lambda s: s.regs.tx_frame_end),
                    vmstate_bool(lambda s: s.regs.tx_backpressure),
                    vmstate_timer_ptr(lambda s: s.rt_timer),
                ],
            ),
        ],
    )
    """QEMU's ``vmstate_pl011``, byte for byte: the section ``pl011``, version 2."""


PL011_OPS: Final = MemoryRegionOps[PL011State](
    read=PL011State.mmio_read,
    write=PL011State.mmio_write,
    resolve_read=PL011State.mmio_resolve_read,
    resolve_write=PL011State.mmio_resolve_write,
    impl=OpsImpl(min_access_size=4, max_access_size=4),
)
"""QEMU's ``pl011_ops``: native endian, 32-bit callbacks, every size valid."""


@final
class PL011Luminary(PL011State, type_name=TYPE_PL011_LUMINARY):
    """The Luminary Micro Stellaris variant: only the ID bytes differ."""

    device_id = PL011_ID_LUMINARY


def pl011_create(
    addr: int, irq: IRQState | None, chardev: Chardev | None
) -> PL011State:
    """Create, realize and map a PL011 with IRQ 0 connected (``pl011_create``).

    Args:
        addr: where to map the registers in system memory.
        irq: the input UARTINTR (the combined interrupt) drives, or None.
        chardev: the chardev, or None for a UART whose output goes nowhere.

    Returns:
        The realized device; it is not reset yet.
    """
    dev = PL011State()
    dev.chardev = chardev
    sysbus_realize(dev)
    dev.mmio_map(0, addr)
    dev.connect_irq(0, irq)
    return dev
