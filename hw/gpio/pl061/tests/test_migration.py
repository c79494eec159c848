"""The PL061's VMState: QEMU 7.2's layout (21 big-endian ``uint32``), round trips.

tests/migration/test_qemu_compat.py loads streams QEMU 7.2 itself wrote.
"""

from __future__ import annotations

import struct

from hw.gpio.pl061.device import PL061State
from hw.gpio.pl061.tests.conftest import ALL, DIR, IE, IEV, RIS, Gpio, make_gpio
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter
from qemu_api.migration.vmstate import vmstate_load_state, vmstate_save_state

VMSD = PL061State.vmsd
FIELDS = (
    "locked",
    "data",
    "old_out_data",
    "old_in_data",
    "dir",
    "isense",
    "ibe",
    "iev",
    "im",
    "istate",
    "afsel",
    "dr2r",
    "dr4r",
    "dr8r",
    "odr",
    "pur",
    "pdr",
    "slr",
    "den",
    "cr",
    "amsel",
)
RESET = dict.fromkeys(FIELDS, 0) | {"locked": 1, "dr2r": 0xFF, "cr": 0xFF}


def save(dev: PL061State) -> bytes:
    f = QEMUFileWriter()
    vmstate_save_state(f, VMSD, dev)
    return f.getvalue()


def stream(**values: int) -> bytes:
    state = RESET | values
    return struct.pack(">21I", *(state[name] for name in FIELDS))


def test_layout_is_qemus(virt_gpio: Gpio) -> None:
    g = virt_gpio
    g.write(DIR, 0x0F)
    g.write(ALL, 0x05)
    g.write(IEV, 0x30)
    g.write(IE, 0x10)
    g.set_input(4, 1)
    assert save(g.dev) == stream(
        data=0x15,
        old_out_data=0x05,
        old_in_data=0x15,
        dir=0x0F,
        iev=0x30,
        im=0x10,
        istate=0x10,
    )


def test_default_pullups_reset_state(gpio: Gpio) -> None:
    assert save(gpio.dev) == stream(old_out_data=0xFF)


def test_load_restores_the_registers_without_driving_lines(virt_gpio: Gpio) -> None:
    other = make_gpio(pullups=0, pulldowns=0xFF, name="gpio2")
    before = list(other.outputs), list(other.intr)
    data = stream(data=0x03, dir=0x01, istate=0x02, im=0x02, old_out_data=0x01)
    vmstate_load_state(QEMUFileReader(data), VMSD, other.dev, 4)
    assert (list(other.outputs), list(other.intr)) == before
    assert other.read(ALL) == 0x03
    assert other.read(RIS) == 0x02
    assert save(other.dev) == data


def test_a_write_replaces_out_of_range_loaded_bits(virt_gpio: Gpio) -> None:
    # QEMU keeps what a stream gives and stores "value & 0xff" on a write.
    g = virt_gpio
    data = stream(dir=0x1FF, im=0x300)
    vmstate_load_state(QEMUFileReader(data), VMSD, g.dev, 4)
    assert (g.read(DIR), g.read(IE)) == (0x1FF, 0x300)
    g.write(DIR, 0x01)
    g.write(IE, 0x02)
    assert (g.read(DIR), g.read(IE)) == (0x01, 0x02)
