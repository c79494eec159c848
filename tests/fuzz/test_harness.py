"""The device harness: what it finds on a declared device, and that its checks fire.

The campaigns run in their own tests (``fuzz-pl011`` ...); these check the
harness itself: a declaration yields the device's regions, register
offsets, lines and VMState, the engine counts operations, and each property
the harness checks fails on a device (or declaration) that breaks it.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from qemu_api import bql
from tests.fuzz.engine import FuzzFailure, run_campaign, targets
from tests.fuzz.target_device import (
    OP,
    READ,
    ROUNDTRIP,
    DeviceCampaign,
    DeviceTarget,
    campaign_target,
)


@pytest.fixture(autouse=True)
def _bql() -> None:
    if not bql.bql_locked():
        bql.bql_lock()


def device(name: str, tmp_path: Path) -> DeviceTarget:
    target = targets()[name]()
    assert isinstance(target, DeviceTarget)
    target.setup(tmp_path)
    return target


@pytest.mark.parametrize(
    ("name", "bases", "register", "inputs", "section"),
    [
        # virt's and pc's addresses; a register of each region (QEMU's names).
        ("pl011", [0x0900_0000], 0x018, 0, "pl011"),  # UARTFR
        ("pl031", [0x0901_0000], 0x00C, 0, "pl031"),  # RTCCR
        ("pl061", [0x0903_0000], 0x410, 8, "pl061"),  # GPIOIE
        ("hpet", [0xFED0_0000], 0x0F0, 2, "hpet"),  # main counter
        # GICD and GICC; 256 SPIs and CPU 0's 32 PPI/SGI inputs.
        ("arm_gic", [0x0800_0000, 0x0801_0000], 0x000, 288, "arm_gic"),
    ],
)
def test_a_declaration_finds_the_device_parts(
    name: str,
    bases: list[int],
    register: int,
    inputs: int,
    section: str,
    tmp_path: Path,
) -> None:
    target = device(name, tmp_path)
    try:
        assert [r.base for r in target.regions] == bases
        assert all(register in r.hot for r in target.regions)
        assert len(target.inputs) == inputs
        assert target.vmsd is not None
        assert target.vmsd.name == section
    finally:
        target.teardown()


def test_the_engine_counts_operations_not_inputs(tmp_path: Path) -> None:
    report = run_campaign(
        targets()["pl031"](),
        ops=500,
        seconds=60,
        seed=3,
        workdir=tmp_path,
        coverage=False,
    )
    assert report.failures == 0
    assert 500 <= report.ops < 500 + DeviceTarget.max_ops
    assert report.inputs < report.ops


def broken(
    name: str, tmp_path: Path, change: Callable[[DeviceCampaign], DeviceCampaign]
) -> DeviceTarget:
    """The ``name`` campaign with its declaration changed by ``change``."""
    cls = targets()[name]
    assert issubclass(cls, DeviceTarget)
    target = campaign_target(change(cls.campaign))()
    target.setup(tmp_path)
    return target


def test_an_output_line_that_disagrees_with_the_registers_is_found(
    tmp_path: Path,
) -> None:
    target = broken(
        "pl061",
        tmp_path,
        lambda c: dataclasses.replace(c, expected_level=lambda dev: 1),
    )
    try:
        with pytest.raises(FuzzFailure, match=r"the IRQ is 0 after a reset"):
            target.execute(OP.pack(READ, 0, 0x410, 0))
    finally:
        target.teardown()


def test_a_state_that_a_round_trip_changes_is_found(tmp_path: Path) -> None:
    target = broken(
        "pl011",
        tmp_path,
        lambda c: dataclasses.replace(
            c, reloaded=lambda dev, mem, saved: saved[:-1] + b"?"
        ),
    )
    try:
        target.execute(OP.pack(READ, 0, 0x18, 0))
        with pytest.raises(FuzzFailure, match=r"saves differently"):
            target.execute(OP.pack(ROUNDTRIP, 0, 0, 0))
    finally:
        target.teardown()


def test_a_read_wider_than_its_size_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = device("pl011", tmp_path)

    class Wide:
        def read(self, addr: int, size: int) -> int:
            return 1 << (8 * size)

    try:
        monkeypatch.setattr(target, "mem", Wide())
        with pytest.raises(FuzzFailure, match=r"a 2-byte read at 0x9000018 gave"):
            target.execute(OP.pack(READ, 1 << 4, 0x18, 0))
    finally:
        target.teardown()


def test_generated_inputs_replay_identically(tmp_path: Path) -> None:
    first = device("arm_gic", tmp_path)
    try:
        data = first.generate(random.Random(5))
        outcome = first.execute(data)
    finally:
        first.teardown()
    again = device("arm_gic", tmp_path)
    try:
        assert again.execute(data) == outcome
    finally:
        again.teardown()
