"""The PL011 register layouts: bitfields, masks, reset values, interrupt bits, IDs.

This module holds the bit definitions of the ARM PrimeCell UART (PL011) as
QEMU models it: the constants at the top of QEMU's ``hw/char/pl011.c`` and
``include/hw/char/pl011.h``, with the names of the PL011 Technical Reference
Manual (ARM DDI 0183).  The registers themselves -- offsets, access kinds,
reset values, the state behind each -- are declared once in the device's
register map, :attr:`hw.char.pl011.device.PL011State.registers`.

Registers with flags are :class:`~qemu_api.bits.Bitfield` values that keep
every bit written to them (QEMU stores the whole 32-bit value):

>>> cr = Control.from_int(0x0301)
>>> cr.uarten, cr.txe, cr.rxe, cr.lbe
(True, True, True, False)
"""

from __future__ import annotations

from typing import Final, final

from qemu_api.bits import BitField, Bitfield

__all__ = [
    "CR_RESET",
    "DR_BE",
    "FBRD_MASK",
    "FR_RESET",
    "IBRD_MASK",
    "IFLS_LEVELS",
    "IFLS_RESET",
    "INT_BE",
    "INT_CTS",
    "INT_DCD",
    "INT_DSR",
    "INT_E",
    "INT_FE",
    "INT_MS",
    "INT_OE",
    "INT_PE",
    "INT_RI",
    "INT_RT",
    "INT_RX",
    "INT_TX",
    "IRQMASK",
    "PL011_FIFO_DEPTH",
    "PL011_ID_ARM",
    "PL011_ID_LUMINARY",
    "PL011_MMIO_SIZE",
    "PL011_UARTCLK_DEFAULT_HZ",
    "Control",
    "Data",
    "Flags",
    "LineControl",
    "ReceiveStatus",
]

PL011_MMIO_SIZE: Final = 0x1000
"""Size of the register block (the ``"pl011"`` memory region)."""

PL011_FIFO_DEPTH: Final = 16
"""Entries of QEMU's receive FIFO (``PL011_FIFO_DEPTH``; real r1p5 parts have 32)."""


@final
class Flags(Bitfield, width=32):
    """UARTFR, the flag register.

    QEMU never sets BUSY and has no transmit FIFO, so TXFE stays set and TXFF
    clear; the modem status bits change only in loopback mode.  With the
    device's ``x-tx-fifo`` option TXFF, TXFE and BUSY follow the transmit
    FIFO and CTS the chardev's backpressure, as the PL011 TRM defines them.
    """

    cts = BitField(0, 1, bool)
    """Clear to send (loopback: CR.RTS)."""
    dsr = BitField(1, 1, bool)
    """Data set ready (loopback: CR.DTR)."""
    dcd = BitField(2, 1, bool)
    """Data carrier detect (loopback: CR.OUT1)."""
    busy = BitField(3, 1, bool)
    """UART busy transmitting (``x-tx-fifo`` only: FIFO or shift register in use)."""
    rxfe = BitField(4, 1, bool)
    """Receive FIFO empty."""
    txff = BitField(5, 1, bool)
    """Transmit FIFO full."""
    rxff = BitField(6, 1, bool)
    """Receive FIFO full."""
    txfe = BitField(7, 1, bool)
    """Transmit FIFO empty."""
    ri = BitField(8, 1, bool)
    """Ring indicator (loopback: CR.OUT2)."""


FR_RESET: Final = 0x90
"""FR after reset: TXFE and RXFE."""


@final
class LineControl(Bitfield, width=32):
    """UARTLCR_H, the line control register.

    QEMU acts on BRK and FEN only; the whole written value is stored.
    """

    brk = BitField(0, 1, bool)
    """Send break."""
    pen = BitField(1, 1, bool)
    """Parity enable."""
    eps = BitField(2, 1, bool)
    """Even parity select."""
    stp2 = BitField(3, 1, bool)
    """Two stop bits."""
    fen = BitField(4, 1, bool)
    """FIFOs enabled: the receive FIFO holds 16 entries, else 1."""
    wlen = BitField(5, 2, int)
    """Word length minus 5."""
    sps = BitField(7, 1, bool)
    """Stick parity select."""


@final
class Control(Bitfield, width=32):
    """UARTCR, the control register (reset value 0x300: TXE and RXE).

    QEMU transmits and receives whatever the enable bits say (it only logs
    writes to a disabled transmitter) and does not model hardware flow control
    (RTSEN, CTSEN) or IrDA (SIREN, SIRLP).
    """

    uarten = BitField(0, 1, bool)
    """UART enable."""
    siren = BitField(1, 1, bool)
    """SIR (IrDA) enable."""
    sirlp = BitField(2, 1, bool)
    """SIR low-power mode."""
    lbe = BitField(7, 1, bool)
    """Loopback: transmitted data and modem outputs come back as input."""
    txe = BitField(8, 1, bool)
    """Transmit enable."""
    rxe = BitField(9, 1, bool)
    """Receive enable."""
    dtr = BitField(10, 1, bool)
    """Data transmit ready (modem output; loopback: FR.DSR)."""
    rts = BitField(11, 1, bool)
    """Request to send (modem output; loopback: FR.CTS)."""
    out1 = BitField(12, 1, bool)
    """Out1 (modem output; loopback: FR.DCD)."""
    out2 = BitField(13, 1, bool)
    """Out2 (modem output; loopback: FR.RI)."""
    rtsen = BitField(14, 1, bool)
    """RTS hardware flow control enable."""
    ctsen = BitField(15, 1, bool)
    """CTS hardware flow control enable."""


CR_RESET: Final = 0x300
"""CR after reset: TXE and RXE."""


@final
class Data(Bitfield, width=32):
    """A receive FIFO entry, as UARTDR reads it: the byte and its error bits.

    QEMU queues plain bytes and, for a break, :data:`DR_BE` alone.
    """

    data = BitField(0, 8, int)
    """The received byte."""
    fe = BitField(8, 1, bool)
    """Framing error."""
    pe = BitField(9, 1, bool)
    """Parity error."""
    be = BitField(10, 1, bool)
    """Break error."""
    oe = BitField(11, 1, bool)
    """Overrun error."""


DR_BE: Final = 1 << 10
"""The FIFO entry a break leaves: data 0 with the break error bit."""


@final
class ReceiveStatus(Bitfield, width=32):
    """UARTRSR, the error bits of the last word read from DR (``DR >> 8``)."""

    fe = BitField(0, 1, bool)
    """Framing error."""
    pe = BitField(1, 1, bool)
    """Parity error."""
    be = BitField(2, 1, bool)
    """Break error."""
    oe = BitField(3, 1, bool)
    """Overrun error."""


# Interrupt bits of UARTRIS, UARTMIS, UARTIMSC and UARTICR.
INT_RI: Final = 1 << 0
"""Ring indicator modem interrupt."""
INT_CTS: Final = 1 << 1
"""Clear-to-send modem interrupt."""
INT_DCD: Final = 1 << 2
"""Data-carrier-detect modem interrupt."""
INT_DSR: Final = 1 << 3
"""Data-set-ready modem interrupt."""
INT_RX: Final = 1 << 4
"""Receive interrupt: the FIFO reached the trigger level (one entry in QEMU)."""
INT_TX: Final = 1 << 5
"""Transmit interrupt: set by every DR write, cleared only through ICR."""
INT_RT: Final = 1 << 6
"""Receive timeout interrupt (never raised by QEMU)."""
INT_FE: Final = 1 << 7
"""Framing error interrupt (never raised by QEMU)."""
INT_PE: Final = 1 << 8
"""Parity error interrupt (never raised by QEMU)."""
INT_BE: Final = 1 << 9
"""Break error interrupt (never raised by QEMU, not even by a break)."""
INT_OE: Final = 1 << 10
"""Overrun error interrupt (never raised by QEMU)."""
INT_E: Final = INT_OE | INT_BE | INT_PE | INT_FE
"""The error interrupts."""
INT_MS: Final = INT_RI | INT_DSR | INT_DCD | INT_CTS
"""The modem status interrupts."""

IRQMASK: Final = (
    INT_E | INT_MS | INT_RT | INT_TX | INT_RX,
    INT_RX,
    INT_TX,
    INT_RT,
    INT_MS,
    INT_E,
)
"""The interrupt bits behind each sysbus IRQ output, QEMU's ``irqmask[]``.

0 UARTINTR (combined), 1 UARTRXINTR, 2 UARTTXINTR, 3 UARTRTINTR,
4 UARTMSINTR, 5 UARTEINTR.
"""

IBRD_MASK: Final = 0xFFFF
"""The bits of UARTIBRD that a write keeps."""
FBRD_MASK: Final = 0x3F
"""The bits of UARTFBRD that a write keeps."""

IFLS_RESET: Final = 0x12
"""IFLS after reset: both FIFO levels at half full."""

IFLS_LEVELS: Final = (2, 4, 8, 12, 14)
"""FIFO entries of the IFLS level selects 0-4 (1/8, 1/4, 1/2, 3/4, 7/8 of 16).

The receive interrupt is raised when the receive FIFO holds at least this many
entries, the transmit interrupt when the transmit FIFO drains to this many
(``x-tx-fifo`` only; the reserved selects 5-7 act as 4).
"""

PL011_UARTCLK_DEFAULT_HZ: Final = 24_000_000
"""UARTCLK assumed for line timing while the ``clk`` input is unconnected.

virt leaves ``clk`` unconnected, as QEMU does, and describes the UART's clock to
the guest as the 24 MHz ``apb-pclk``: the guest's divisors are meant for it.
"""

PL011_ID_ARM: Final = bytes((0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1))
"""PeriphID0-3 and PCellID0-3 of the ``pl011`` type (ARM's PL011)."""
PL011_ID_LUMINARY: Final = bytes((0x11, 0x00, 0x18, 0x01, 0x0D, 0xF0, 0x05, 0xB1))
"""The ID bytes of the ``pl011_luminary`` type (Luminary Micro Stellaris)."""
