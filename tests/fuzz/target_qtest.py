"""Fuzz target ``qtest``: grammar-based and byte-level lines to the qtest server.

The server runs in process on a virt board (RAM at 0x40000000, the PL011 at
0x09000000), as the emulator runs it.  Lines are made from the protocol's
grammar: every command, with numbers in every notation (hex, octal, signs,
white space) at the edges of their ranges, addresses in RAM, in devices
and nowhere, sizes around the limits, base64 and hex data of every length,
QOM paths of the board for the IRQ commands; then damaged at the byte
level (extra spaces, NULs, non-ASCII, truncation), with lines split at any
byte, many per read, and clients that vanish mid-line.  Sizes between
1 MiB and the 1 GiB limit are left out: they are correct but slow.

Properties, for every input:

- every complete line gets exactly one reply (``OK``, ``FAIL`` or ``ERR``;
  ``IRQ`` lines may come in between);
- nothing escapes and no traceback is printed (a device's internal error
  prints one: a bug in that model, reported here too);
- the run state does not change;
- a client connecting afterwards is served.

An input is ``[flags, chunking seed, lines...]``: flag 2 hangs up before the
end.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path
from typing import Final

from qemu_api import bql
from qemu_api.chardev import ChrEvent
from system import runstate
from system.main_loop import MainLoop
from system.qtest import MAX_TRANSFER, QTestServer
from tests.fuzz import mutate
from tests.fuzz.engine import FuzzFailure, FuzzTarget, register
from tests.fuzz.target_qmp import MemChardev, _qom_paths
from tests.migration.machine import make_virt
from tests.runtime import reset_runtime

__all__ = ["QTestTarget"]

_REBUILD: Final = 1000
_RAM: Final = 0x4000_0000
_UART: Final = 0x0900_0000
_SIZES: Final = (0, 1, 2, 3, 4, 7, 8, 16, 255, 256, 4096, 4097, 65536, 1 << 20)
_TRANSFERS: Final = (b"read", b"b64read", b"memset", b"write", b"b64write")
"""The commands whose third word is a size in bytes."""
_HUGE: Final = (MAX_TRANSFER + 1, (1 << 64) - 1, 1 << 64, 1 << 63)
_COMMANDS: Final = (
    "readb",
    "readw",
    "readl",
    "readq",
    "writeb",
    "writew",
    "writel",
    "writeq",
    "read",
    "write",
    "b64read",
    "b64write",
    "memset",
    "inb",
    "inw",
    "inl",
    "outb",
    "outw",
    "outl",
    "clock_step",
    "clock_set",
    "irq_intercept_in",
    "irq_intercept_out",
    "set_irq_in",
    "endianness",
    "module_load",
)


def _number(rng: random.Random, value: int) -> str:
    """``value`` in one of the notations strtoull reads, sometimes mangled."""
    choice = rng.randrange(12)
    if choice == 0:
        return f"{value:#o}".replace("0o", "0")
    if choice == 1:
        return str(value)
    if choice == 2:
        return f"-{value:#x}"
    if choice == 3:
        return f"+{value:#X}"
    if choice == 4:
        return f"\t {value:#x}"
    if choice == 5:
        return f"{value:#x}" + rng.choice(("z", "0" * 30, "", " "))
    if choice == 6:
        return "9" * rng.choice((20, 21, 5000))
    return f"{value:#x}"


class _Grammar:
    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def address(self, rng: random.Random) -> int:
        choice = rng.randrange(6)
        if choice == 0:
            return _RAM + rng.randrange(1 << 20)
        if choice == 1:
            return _UART + rng.randrange(0x1000)
        if choice == 2:
            return rng.getrandbits(64)
        if choice == 3:
            return (1 << 64) - rng.randrange(1, 4096)
        if choice == 4:
            return _RAM + (1 << 20) - rng.randrange(1, 16)
        return rng.getrandbits(32)

    def size(self, rng: random.Random) -> int:
        return rng.choice(_HUGE) if rng.random() < 0.05 else rng.choice(_SIZES)

    def line(self, rng: random.Random) -> str:
        cmd = rng.choice(_COMMANDS)
        a = _number(rng, self.address(rng))
        if cmd.startswith(("read", "in")) and cmd not in ("read",):
            words = [cmd, a]
        elif cmd.startswith(("write", "out")) and cmd != "write":
            words = [cmd, a, _number(rng, mutate.interesting_int(rng, 8))]
        elif cmd in ("read", "b64read"):
            words = [cmd, a, _number(rng, self.size(rng))]
        elif cmd == "write":
            n = self.size(rng)
            data = rng.randbytes(max(min(n, 1 << 16) + rng.choice((0, 0, -1, 1)), 0))
            words = [cmd, a, _number(rng, n), "0x" + data.hex()]
        elif cmd == "b64write":
            n = self.size(rng)
            data = rng.randbytes(max(min(n, 1 << 16) + rng.choice((0, 0, -1, 3)), 0))
            text = base64.b64encode(data).decode()
            if rng.random() < 0.2:
                text = text[: rng.randrange(len(text) + 1)] + "!*="
            words = [cmd, a, _number(rng, n), text]
        elif cmd == "memset":
            words = [
                cmd,
                a,
                _number(rng, self.size(rng)),
                _number(rng, rng.randrange(512)),
            ]
        elif cmd in ("clock_step", "clock_set"):
            words = [cmd] + (
                [_number(rng, mutate.interesting_int(rng, 8))]
                if rng.random() < 0.8
                else []
            )
        elif cmd.startswith("irq_intercept"):
            words = [cmd, rng.choice(self.paths)]
        elif cmd == "set_irq_in":
            words = [
                cmd,
                rng.choice(self.paths),
                rng.choice(("unnamed-gpio-in", "sysbus-irq", "x", "")),
                _number(rng, rng.choice((0, 1, 2, 64, -1 & 0xFFFFFFFF))),
                _number(rng, rng.choice((0, 1, -1 & 0xFFFFFFFF, 2))),
            ]
        elif cmd == "module_load":
            words = [cmd, "block-", "iscsi"]
        else:
            words = [cmd]
        if rng.random() < 0.05:
            words.append(rng.choice(("extra", "")))
        if rng.random() < 0.05 and len(words) > 1:
            words.pop()
        return " ".join(words)


@register
class QTestTarget(FuzzTarget):
    """qtest: grammar-based lines and byte-level garbage, in process."""

    name = "qtest"
    protocol = "qtest"
    summary = "every command at its edges, byte damage, split lines, lost clients"
    op_timeout = 10.0

    def time_limit(self, data: bytes) -> float:
        """``op_timeout``, plus a second per 4 MiB of memory the lines transfer.

        A 1 GiB ``read`` (the protocol's limit) is slow, not hung: pyqemu
        answers 64 MiB of MMIO space in about 2 s where QEMU 7.2 takes 11 s.
        """
        moved = 0
        for line in data[2:].split(b"\n"):
            words = line.split()
            if len(words) >= 3 and words[0] in _TRANSFERS:
                try:
                    moved += min(max(int(words[2], 0), 0), MAX_TRANSFER)
                except ValueError:
                    continue
        return self.op_timeout + moved / (4 << 20)

    def setup(self, workdir: Path) -> None:
        if not bql.bql_locked():
            bql.bql_lock()
        self._ops = 0
        self.last_ops = 0
        self.pool: list[bytes] = []
        self._build()

    def _build(self) -> None:
        reset_runtime()
        runstate.runstate_init(runstate.RunState.RUNNING)
        make_virt(with_dev=False, ram_size=1 << 20)
        self.loop = MainLoop()
        self._errors: list[str] = []
        self.loop.set_error_handler(
            lambda what, exc: self._errors.append(
                f"{what}: {type(exc).__name__}: {exc}"
            )
        )
        self.chr = MemChardev("qtest")
        self.server = QTestServer(self.chr, self.loop, "none", accel_qtest=True)
        self.grammar = _Grammar(_qom_paths())

    def teardown(self) -> None:
        self.server.close()
        reset_runtime()

    def generate(self, rng: random.Random) -> bytes:
        choice = rng.random()
        lines = [self.grammar.line(rng) for _ in range(rng.choice((1, 1, 2, 5, 30)))]
        text = ("\n".join(lines) + "\n").encode("latin-1")
        if choice < 0.6:
            payload = text
        elif choice < 0.8 and self.pool:
            payload = mutate.mutate_bytes(rng, rng.choice(self.pool), rng.randint(1, 4))
        elif choice < 0.85:
            payload = rng.randbytes(rng.randint(1, 3000))
        else:
            payload = mutate.mutate_bytes(rng, text, rng.randint(1, 4))
        flags = 2 if rng.random() < 0.1 else 0
        return bytes((flags, rng.randrange(256))) + payload

    def keep(self, data: bytes) -> None:
        if len(data) > 64 << 10:
            return  # big inputs are made afresh; keeping them fills memory
        if len(self.pool) < 300:
            self.pool.append(data[2:])
        else:
            self.pool[hash(data) % 300] = data[2:]

    def cost(self, data: bytes) -> int:
        """The command lines the last input had answered (a line is an operation)."""
        return max(self.last_ops, 1)

    def execute(self, data: bytes) -> str:
        self.last_ops = 0
        self._ops += 1
        if self._ops % _REBUILD == 0:
            self.teardown()
            self._build()
        if len(data) < 2:
            return "empty"
        flags, seed = data[0], data[1]
        payload = data[2:]
        rng = random.Random(seed)
        chr_ = self.chr
        state = runstate.runstate_get()
        chr_.output.clear()
        chr_.be_event(ChrEvent.OPENED)
        stop = len(payload) if not flags & 2 else rng.randrange(len(payload) + 1)
        at = 0
        while at < stop:
            n = min(stop - at, rng.choice((1, 5, 100, 4096, 1 << 20)))
            left = chr_.push(payload[at : at + n], self.loop)
            at += n - len(left)
            self.loop.wait(0)
        chr_.drain()
        self.loop.wait(0)
        complete = payload[:stop].count(b"\n")
        replies = [
            line
            for line in bytes(chr_.output).split(b"\n")
            if line and not line.startswith(b"IRQ ")
        ]
        chr_.be_event(ChrEvent.CLOSED)
        if self._errors:
            raise FuzzFailure("an exception reached the main loop: " + self._errors[0])
        if len(replies) != complete:
            raise FuzzFailure(f"{complete} complete lines got {len(replies)} replies")
        self.last_ops = complete
        for reply in replies:
            if not reply.startswith((b"OK", b"FAIL", b"ERR")):
                raise FuzzFailure(f"a reply that is not OK/FAIL/ERR: {reply[:80]!r}")
        if runstate.runstate_get() is not state:
            raise FuzzFailure(
                f"qtest input moved the run state from {state.value} to "
                f"{runstate.runstate_get().value}"
            )
        chr_.output.clear()
        chr_.be_event(ChrEvent.OPENED)
        chr_.push(b"endianness\n", self.loop)
        chr_.be_event(ChrEvent.CLOSED)
        if bytes(chr_.output) != b"OK little\n":
            raise FuzzFailure(f"a new client was not served: {bytes(chr_.output)!r}")
        kinds = sorted(
            {
                r.split(b" ", 2)[0] + b" " + r.split(b" ", 2)[1][:12]
                if r.startswith(b"FAIL ") and b" " in r[5:]
                else r[:2]
                for r in replies
            }
        )
        return repr(kinds[:6])
