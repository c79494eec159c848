"""Fuzz target ``migration``: structure-aware mutants of real migration streams.

Seeds are real streams: QEMU 7.2's (``pc`` with 2 MiB and ``virt`` with 1 MiB,
written by the installed QEMU) and pyqemu's own (virt with the migration
test device, whose VMState has every field kind; pc).  Each mutant changes
fields located by :func:`tests.fuzz.streams.tokenize` -- section headers,
ids, versions, lengths, RAM records, VMState field bytes, subsection
headers, footers, the JSON description (parsed, changed, written back) --
or truncates, splices and flips bytes, and is loaded into the board it was
made for, with or without ``skip-unknown``.

Properties, for every mutant:

- it loads, and then a fresh save of the machine loads back to the very
  same state (the save after that is byte for byte the same); or
- it is refused with an :class:`~qemu_api.error.Error` whose message is
  one line, and the machine is exactly as before (its save is unchanged);
- in both cases the run state is untouched, nothing else is raised, and it
  ends within the time limit and the memory limit.

An input is ``[board index, flags, stream...]``: bit 0 of the flags asks for
``skip-unknown``.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Final

from hw.core.machine import MachineState
from hw.i386.pc import PcMachine
from qemu_api import bql
from qemu_api.error import Error
from qemu_api.migration.qemu_file import QEMUFileWriter
from qemu_api.migration.ram import ram_blocks
from qemu_api.migration.savevm import qemu_loadvm_state, qemu_savevm_state
from qemu_api.migration.vmstate import savevm_entries, vmstate_save_state
from qemu_api.option import qemu_opts_parse
from qemu_api.rtc import configure_rtc
from qemu_api.timer import CLOCK_VIRTUAL, qemu_clock_get_ns
from system import runstate
from tests.fuzz import mutate
from tests.fuzz.engine import FuzzFailure, FuzzTarget, register, skeleton
from tests.fuzz.streams import Token, qemu_stream, tokenize
from tests.migration.machine import make_virt, write_pattern
from tests.migration.migdev import fill
from tests.runtime import reset_runtime

__all__ = ["MigrationTarget"]

_BATCH: Final = 200
"""Mutants per board before switching (building a board costs milliseconds)."""
_POOL: Final = 200


def _virt_with_device() -> MachineState:
    machine, dev = make_virt(ram_size=1 << 20)
    assert dev is not None
    fill(dev)
    write_pattern(0x1000, bytes(range(256)) * 4)
    return machine


def _virt() -> MachineState:
    machine, _ = make_virt(with_dev=False, ram_size=1 << 20)
    return machine


def _pc() -> MachineState:
    machine = PcMachine()
    machine.ram_size = 2 << 20
    machine.attach()
    machine.machine_init()
    return machine


class _Board:
    def __init__(
        self, name: str, build: Callable[[], MachineState], weight: float
    ) -> None:
        self.name = name
        self.build = build
        self.weight = weight
        self.seeds: list[bytes] = []
        self.pool: list[bytes] = []


def _save(machine: MachineState) -> bytes:
    f = QEMUFileWriter()
    qemu_savevm_state(f, machine)
    return f.getvalue()


def _fingerprint(machine: MachineState) -> tuple[bytes, int, tuple[int, ...]]:
    """Everything a load may change, cheaper to take than a whole save.

    The device states as their sections would carry them, the virtual clock
    and the contents of every RAM block.
    """
    f = QEMUFileWriter()
    for entry in savevm_entries():
        vmstate_save_state(f, entry.vmsd, entry.opaque)
    extra = [machine.ram] if machine.ram is not None else []
    ram = tuple(zlib.crc32(block.host()) for block in ram_blocks(extra=extra))
    return f.getvalue(), qemu_clock_get_ns(CLOCK_VIRTUAL), ram


@register
class MigrationTarget(FuzzTarget):
    """Migration streams: structure-aware mutation, load, round trip."""

    name = "migration"
    protocol = "migration"
    summary = "mutants of QEMU 7.2's and pyqemu's streams, loaded all or nothing"
    op_timeout = 20.0

    def setup(self, workdir: Path) -> None:
        if not bql.bql_locked():
            bql.bql_lock()
        self._boards = [
            _Board("virt+migdev", _virt_with_device, 0.7),
            _Board("pc", _pc, 0.27),
            _Board("virt", _virt, 0.03),
        ]
        seeds = workdir / "seeds"
        qemu_pc = qemu_stream("qemu-system-x86_64", "pc", "2M", seeds)
        qemu_virt = qemu_stream("qemu-system-aarch64", "virt", "1M", seeds)
        for i, board in enumerate(self._boards):
            self._use(i)
            board.seeds.append(_save(self._machine))
        self._boards[1].seeds.append(qemu_pc)
        self._boards[2].seeds.append(qemu_virt)
        self._tokens: dict[int, list[Token]] = {}
        self._current = -1
        self._left = 0

    def _use(self, index: int) -> None:
        reset_runtime()
        # An RTC on the host clock (virt's PL031) migrates an offset that
        # moves with the wall clock: on the virtual clock a save is repeatable.
        configure_rtc(qemu_opts_parse("clock=vm"))
        runstate.runstate_init(runstate.RunState.RUNNING)
        self._machine = self._boards[index].build()
        self._board = index

    def teardown(self) -> None:
        reset_runtime()

    # -- generation ----------------------------------------------------------------

    def generate(self, rng: random.Random) -> bytes:
        if self._left <= 0:
            weights = [b.weight for b in self._boards]
            self._current = rng.choices(range(len(self._boards)), weights)[0]
            self._left = _BATCH
        self._left -= 1
        board = self._boards[self._current]
        bases = board.seeds + board.pool
        base = rng.choice(bases)
        choice = rng.random()
        if choice < 0.7:
            stream = self._mutate_fields(rng, base, rng.choice((1, 1, 1, 2, 3)))
        elif choice < 0.8:
            stream = base[: rng.randrange(len(base) + 1)]
        elif choice < 0.9:
            stream = mutate.mutate_bytes(rng, base, rng.randint(1, 4))
        else:
            stream = mutate.splice(rng, base, rng.choice(bases))
        flags = 1 if rng.random() < 0.75 else 0
        return bytes((self._current, flags)) + stream

    def _fields(self, stream: bytes) -> list[Token]:
        key = hash(stream)
        tokens = self._tokens.get(key)
        if tokens is None:
            if len(self._tokens) > 2 * _POOL:
                self._tokens.clear()
            tokens = self._tokens[key] = tokenize(stream)
        return tokens

    def _mutate_fields(self, rng: random.Random, stream: bytes, rounds: int) -> bytes:
        for _ in range(rounds):
            tokens = self._fields(stream)
            if not tokens:
                return mutate.mutate_bytes(rng, stream)
            tok = rng.choice(tokens)
            stream = self._mutate_token(rng, stream, tok, tokens)
        return stream

    def _mutate_token(
        self, rng: random.Random, data: bytes, tok: Token, tokens: list[Token]
    ) -> bytes:
        head, body, tail = data[: tok.start], data[tok.start : tok.end], data[tok.end :]
        if tok.kind == "vmdesc-json":
            return head[:-4] + self._mutate_description(rng, body, head[-4:])
        choice = rng.random()
        if tok.width and choice < 0.6:
            current = int.from_bytes(body, "big")
            value = mutate.interesting_int(rng, tok.width, current)
            return head + value.to_bytes(tok.width, "big") + tail
        if choice < 0.7:
            return head + tail  # drop the field
        if choice < 0.8:
            return head + body + body + tail  # repeat it
        if choice < 0.9:
            other = rng.choice(tokens)  # another field's bytes in its place
            return head + data[other.start : other.end] + tail
        return head + mutate.mutate_bytes(rng, body, rng.randint(1, 3)) + tail

    @staticmethod
    def _mutate_description(rng: random.Random, text: bytes, length: bytes) -> bytes:
        import json

        try:
            value = json.loads(text)
        except ValueError:
            new = mutate.mutate_bytes(rng, text)
        else:
            new = mutate.dumps(mutate.mutate_json(rng, value, rng.randint(1, 3)))
        if rng.random() < 0.9:
            length = len(new).to_bytes(4, "big")
        return length + new

    def keep(self, data: bytes) -> None:
        if len(data) > 1 << 20:
            return  # longer than any seed: grown by repeats, not worth keeping
        board = self._boards[data[0] % len(self._boards)]
        if len(board.pool) >= _POOL:
            board.pool[hash(data) % _POOL] = data[2:]
        else:
            board.pool.append(data[2:])

    # -- execution -------------------------------------------------------------------

    def execute(self, data: bytes) -> str:
        if len(data) < 2:
            return "empty"
        index = data[0] % len(self._boards)
        if index != self._board:
            self._use(index)
        skip = bool(data[1] & 1)
        stream = data[2:]
        machine = self._machine
        before = _fingerprint(machine)
        state = runstate.runstate_get()
        try:
            result = qemu_loadvm_state(stream, machine, skip_unknown=skip)
        except Error as err:
            message = str(err)
            if "\n" in message:
                raise FuzzFailure(
                    f"a refusal of more than one line: {message!r}"
                ) from None
            if _fingerprint(machine) != before:
                raise FuzzFailure(
                    f"refused ({message}), but the machine changed"
                ) from None
            if runstate.runstate_get() is not state:
                raise FuzzFailure("a refused stream changed the run state") from None
            return "refused: " + skeleton(message)[:120]
        if runstate.runstate_get() is not state:
            raise FuzzFailure("loading a stream changed the run state")
        first = _save(machine)
        try:
            qemu_loadvm_state(first, machine)
        except Error as err:
            raise FuzzFailure(
                f"a fresh save of the loaded state is refused: {err}"
            ) from None
        second = _save(machine)
        if second != first:
            raise FuzzFailure("the loaded state does not survive a save and load")
        return f"loaded on {self._boards[index].name}: {len(result.skipped)} skipped"
