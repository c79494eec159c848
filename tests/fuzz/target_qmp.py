"""Fuzz target ``qmp``: grammar-based and byte-level input to a QMP monitor.

The monitor runs in process on a virt board, exactly as the emulator runs it
(the same :class:`~system.monitor.QMPMonitor`, main loop and chardev flow
control), with a second, already negotiated monitor standing for the other
clients.  Inputs are made from the schema's commands with arguments of
every type at their edges, QOM paths and property names of the board,
envelope mistakes (wrong types, extra members, ``exec-oob``, huge ids),
JSON-level mutations, then byte-level damage: flips, truncation, invalid
UTF-8, NULs, huge numbers and strings, deep nesting, many requests per read,
requests split at any byte, a client that vanishes mid-request, a client
that reads slowly.

Properties, for every input:

- nothing escapes the monitor (no exception reaches the main loop, no
  traceback is printed: the monitor's "internal error" path is a bug too);
- input that does not name a run-state command (``stop``, ``cont``,
  ``system_reset``, ``quit``, ``migrate``, HMP) leaves the run state and
  any shutdown request alone;
- the other client is served: a ``query-status`` on the second monitor is
  answered after every input, and so is one on the fuzzed monitor after it
  reconnects.

An input is ``[flags, chunking seed, payload...]``: flag 1 negotiates first,
2 hangs up before the end, 4 reads output slowly, 8 uses the pretty printer.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Final

from hw.core.machine import MachineState
from qemu_api import bql
from qemu_api.chardev import Chardev, ChardevOptions, ChrEvent, qemu_chr_new
from qemu_api.qom import Object, object_get_root, override
from system import runstate
from system.main_loop import MainLoop
from system.monitor import QMPMonitor
from tests.fuzz import mutate
from tests.fuzz.engine import FuzzFailure, FuzzTarget, register
from tests.migration.machine import make_virt
from tests.runtime import reset_runtime

__all__ = ["MemChardev", "QMPTarget"]

_KEEP_MAX: Final = 64 << 10
"""The largest input kept as a seed."""
_REBUILD: Final = 500
"""Inputs between fresh boards (qom-set and system_reset make them drift)."""

_STATE_WORDS: Final = (
    b"stop",
    b"cont",
    b"system_reset",
    b"quit",
    b"migrate",
    b"human-monitor-command",
)

_SAFE_URIS: Final = (
    "unix:/nonexistent/dir/sock",
    "file:/nonexistent/dir/f",
    "tcp:127.0.0.1:9",
    "rdma:1.2.3.4:5",
    "nothing",
    "",
    "defer",
)


def sanitize(data: bytes) -> bytes:
    """Keep fuzzed migrations from running commands or writing files.

    ``exec:`` URIs are disarmed, every ``file:`` path becomes one in a
    directory that does not exist, ``tcp:`` addresses a local port that
    refuses at once.
    """
    data = re.sub(rb"exec\s*:", b"exec;", data, flags=re.IGNORECASE)
    data = re.sub(rb"file:[^\"',\s]*", b"file:/nonexistent/dir/f", data)
    return re.sub(rb"tcp:[^\"',\s]*", b"tcp:127.0.0.1:9", data)


class MemChardev(Chardev):
    """An in-memory chardev: the test side pushes input and collects output.

    ``room`` limits what the host side takes before the test drains it (a
    slow reader); write watches run when it drains.
    """

    BACKEND = "fuzz-mem"
    SUPPORTS_WRITE_WATCH = True

    def __init__(self, label: str, options: ChardevOptions | None = None) -> None:
        super().__init__(label, options)
        self.output = bytearray()
        self.room: int | None = None

    @override
    def write(self, data: bytes) -> int:
        n = len(data) if self.room is None else min(len(data), self.room)
        self.output += data[:n]
        if self.room is not None:
            self.room -= n
        return n

    def drain(self) -> None:
        """The client reads everything; waiting writers resume."""
        self.room = None if self.room is None else 1 << 16
        self.be_writable()

    def push(self, data: bytes, loop: MainLoop) -> bytes:
        """Offer ``data`` as the frontend takes it; return what it did not take."""
        for _ in range(10_000):
            if not data:
                break
            n = self.be_write(data)
            data = data[n:]
            if n == 0:
                self.drain()
                loop.wait(0)
                if self.be_can_write() == 0:
                    break
        return data


def _qom_paths() -> list[str]:
    paths: list[str] = []

    def walk(obj: Object, depth: int) -> None:
        path = obj.canonical_path()
        if path:
            paths.append(path)
        if depth < 6:
            for child in obj.children():
                walk(child, depth + 1)

    walk(object_get_root(), 0)
    return paths or ["/machine"]


class _Grammar:
    """Requests built from the schema's commands, with typed edge values."""

    def __init__(self, paths: list[str]) -> None:
        from qapi.qmp_schema import QMP_COMMANDS

        self.commands = list(QMP_COMMANDS)
        self.paths = paths
        schema = json.loads(
            (Path(__file__).resolve().parents[2] / "qapi" / "schema.json").read_text()
        )
        self.args: dict[str, dict[str, object]] = {
            d["command"]: d.get("data") or {}
            for d in schema["definitions"]
            if "command" in d
        }

    def string(self, rng: random.Random, name: str) -> str:
        if name in ("path",):
            return rng.choice([*self.paths, "/", "", "//x", "/machine/../.."])
        if name in ("property",):
            return rng.choice(
                ["type", "realized", "chardev", "ram-size", "parent_bus", "x", ""]
            )
        if name in ("device",):
            return rng.choice(["rb0", "serial0", "nope", ""])
        if name in ("uri",):
            return rng.choice(_SAFE_URIS)
        if name in ("typename", "implements"):
            return rng.choice(["pl011", "device", "sys-bus-device", "virt", "x", ""])
        if name in ("command-line",):
            return rng.choice(
                [
                    "info status",
                    "info qtree",
                    "info mtree -f",
                    "help",
                    "info",
                    "stop",
                    "c",
                    "system_reset",
                    "info qom-tree /machine",
                    "x" * 300,
                    "info chardev",
                    "?",
                    "help info",
                    "\x00",
                    "info mtree -D -f",
                ]
            )
        if name in ("name",):
            return rng.choice(["pl011_*", "*", "nope", "", "pl011_write"])
        choice = rng.randrange(6)
        if choice == 0:
            return "x" * rng.choice((0, 1, 256, 70000))
        if choice == 1:
            return "\u00e9\U0001f600\x00\ud800"
        return rng.choice(("on", "off", "utf8", "base64", "oob", "aGk=", "!!"))

    def value(self, rng: random.Random, kind: object, name: str) -> object:
        if rng.random() < 0.08:
            return mutate._interesting_json(rng)
        if isinstance(kind, list):
            return [self.value(rng, kind[0], name) for _ in range(rng.randint(0, 3))]
        if kind == "str":
            return self.string(rng, name)
        if kind == "int":
            return rng.choice(
                (
                    0,
                    1,
                    -1,
                    4096,
                    1 << 31,
                    (1 << 63) - 1,
                    -(1 << 63),
                    (1 << 64) - 1,
                    1 << 64,
                    10**30,
                )
            )
        if kind == "bool":
            return rng.random() < 0.5
        if kind == "number":
            return rng.choice((0.5, -1.0, 1e308))
        if kind == "any":
            return mutate._interesting_json(rng)
        if kind == "QMPCapability":
            return rng.choice(("oob", "fast", ""))
        if kind == "DataFormat":
            return rng.choice(("utf8", "base64", "hex"))
        return self.string(rng, name)

    def request(self, rng: random.Random) -> dict[str, object]:
        name = rng.choice([*self.commands, "nope", "", "query-STATUS"])
        args: dict[str, object] = {}
        for spec, kind in self.args.get(name, {}).items():
            optional = spec.startswith("*")
            key = spec.lstrip("*")
            if optional and rng.random() < 0.5:
                continue
            if rng.random() < 0.05:
                continue  # a required one missing
            args[key] = self.value(rng, kind, key)
        if rng.random() < 0.05:
            args["unexpected"] = 1
        request: dict[str, object] = {"execute": name}
        if args or rng.random() < 0.2:
            request["arguments"] = args
        if rng.random() < 0.5:
            request["id"] = mutate._interesting_json(rng)
        choice = rng.randrange(20)
        if choice == 0:
            request["exec-oob"] = request.pop("execute")
        elif choice == 1:
            request["execute"] = mutate._interesting_json(rng)
        elif choice == 2:
            request["arguments"] = mutate._interesting_json(rng)
        elif choice == 3:
            request["extra"] = True
        return request


def _serialize(rng: random.Random, value: object) -> bytes:
    text = mutate.dumps(value)
    choice = rng.randrange(10)
    if choice == 0:
        text = text.replace(b'"', b"'")  # QEMU's single-quoted strings
    elif choice == 1:
        text = text.replace(b", ", b",\n ").replace(b": ", b":\t")
    return text


_REPLY: Final = re.compile(rb'^\{\s*"(?:return|error)"', re.M)
"""A reply at the start of a line (compact or pretty), not an event."""


@register
class QMPTarget(FuzzTarget):
    """QMP: grammar-based requests and byte-level garbage, in process."""

    name = "qmp"
    protocol = "qmp"
    summary = "requests from the schema, JSON and byte damage, vanishing clients"
    op_timeout = 10.0

    def setup(self, workdir: Path) -> None:
        if not bql.bql_locked():
            bql.bql_lock()
        self._ops = 0
        self.last_ops = 0
        self._build()

    def _build(self) -> None:
        reset_runtime()
        runstate.runstate_init(runstate.RunState.RUNNING)
        self._machine: MachineState = make_virt(with_dev=False, ram_size=1 << 20)[0]
        qemu_chr_new("rb0", "ringbuf", {"size": 4096})
        self.loop = MainLoop()
        self._errors: list[str] = []
        self.loop.set_error_handler(
            lambda what, exc: self._errors.append(
                f"{what}: {type(exc).__name__}: {exc}"
            )
        )
        self.fuzzed = MemChardev("fuzzed")
        self.other = MemChardev("other")
        self.mon = QMPMonitor(self.fuzzed, self.loop, target="aarch64")
        self.other_mon = QMPMonitor(self.other, self.loop, target="aarch64")
        self.other.be_event(ChrEvent.OPENED)
        self._ask(self.other, b'{"execute": "qmp_capabilities"}')
        self.grammar = _Grammar(_qom_paths())
        self.pool: list[bytes] = []

    def teardown(self) -> None:
        self.mon.close()
        self.other_mon.close()
        reset_runtime()

    # -- generation -----------------------------------------------------------------

    def generate(self, rng: random.Random) -> bytes:
        choice = rng.random()
        if choice < 0.45:
            payload = b"".join(
                _serialize(rng, self.grammar.request(rng))
                + rng.choice((b"", b"\n", b" "))
                for _ in range(rng.choice((1, 1, 1, 2, 5, 20)))
            )
        elif choice < 0.6:
            request = mutate.mutate_json(
                rng, self.grammar.request(rng), rng.randint(1, 3)
            )
            payload = _serialize(rng, request)
        elif choice < 0.8 and self.pool:
            payload = mutate.mutate_bytes(rng, rng.choice(self.pool), rng.randint(1, 4))
        elif choice < 0.85:
            payload = self._garbage(rng)
        else:
            payload = mutate.mutate_bytes(
                rng, _serialize(rng, self.grammar.request(rng)), rng.randint(1, 4)
            )
        flags = rng.choice((1, 1, 1, 0, 3, 5, 9, 1))
        return bytes((flags, rng.randrange(256))) + payload

    @staticmethod
    def _garbage(rng: random.Random) -> bytes:
        choice = rng.randrange(8)
        if choice == 0:
            return b"[" * rng.choice((1024, 1025, 3000)) + b"]" * rng.choice((0, 3000))
        if choice == 1:
            return (
                b'{"execute": "query-status", "id": '
                + b"7" * rng.choice((4300, 4301, 100000))
                + b"}"
            )
        if choice == 2:
            return b'{"execute": "' + b"a" * rng.choice((70000, 1 << 20)) + b'"}'
        if choice == 3:
            return rng.randbytes(rng.randint(1, 2000))
        if choice == 4:
            return b'{"execute": "query-status", "id": "\xc0\x80\xed\xa0\x80\xff"}'
        if choice == 5:
            return b"{'execute': 'qom-get', 'arguments': {'path': '\\u0000'}}"
        if choice == 6:
            return b'{"execute": "query-status"' + b"\x00" * 100
        return b"}" * 50 + b"]" * 50 + b'{"id": 1}'

    def keep(self, data: bytes) -> None:
        if len(data) > _KEEP_MAX:
            return  # big inputs are made afresh; keeping them fills memory
        if len(self.pool) < 300:
            self.pool.append(data[2:])
        else:
            self.pool[hash(data) % 300] = data[2:]

    # -- execution ------------------------------------------------------------------

    def _ask(self, chr_: MemChardev, request: bytes) -> bytes:
        chr_.output.clear()
        left = chr_.push(request, self.loop)
        for _ in range(50):
            self.loop.wait(0)
            chr_.drain()
            if chr_.output.endswith(b"\r\n"):
                break
        if left:
            raise FuzzFailure(f"the monitor stopped taking input: {left[:80]!r}")
        return bytes(chr_.output)

    def time_limit(self, data: bytes) -> float:
        """``op_timeout``, plus a second per 64 KiB of input.

        Parsing is linear in the input, and a request may be fed a byte at a
        time: a 20 MiB request is slow, not hung.  (On 1.3 MiB of nested
        brackets pyqemu answers in about 1 s, QEMU 7.2 in 6 s.)
        """
        return self.op_timeout + len(data) / (64 << 10)

    def cost(self, data: bytes) -> int:
        """The requests the last input had answered (a request is an operation)."""
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
        payload = sanitize(data[2:])
        rng = random.Random(seed)
        chr_ = self.fuzzed
        chr_.room = 64 if flags & 4 else None
        self.mon.pretty = bool(flags & 8)
        state = runstate.runstate_get()
        handlers = list(runstate._vm_change_handlers)
        chr_.be_event(ChrEvent.OPENED)
        if flags & 1:
            chr_.push(b'{"execute": "qmp_capabilities"}', self.loop)
        stop = len(payload) if not flags & 2 else rng.randrange(len(payload) + 1)
        at = 0
        while at < stop:
            n = min(stop - at, rng.choice((1, 7, 64, 4096, 1 << 20)))
            left = chr_.push(payload[at : at + n], self.loop)
            at += n - len(left)
            self.loop.wait(0)
            if left and chr_.be_can_write() == 0:
                chr_.drain()
                self.loop.wait(0)
        for _ in range(3):
            chr_.drain()
            self.loop.wait(0)
        chr_.be_event(ChrEvent.CLOSED)
        chr_.room = None
        if self._errors:
            raise FuzzFailure("an exception reached the main loop: " + self._errors[0])
        changed = runstate.runstate_get() is not state or (
            runstate.shutdown_requested() is not None
        )
        if changed and not any(w in payload for w in _STATE_WORDS):
            raise FuzzFailure(
                f"input with no run-state command moved the run state from "
                f"{state.value} to {runstate.runstate_get().value}"
            )
        outcome = self._outcome(bytes(chr_.output))
        self.last_ops = len(_REPLY.findall(chr_.output))
        # Put the machine back for the next input.
        if changed:
            runstate.runstate_init(runstate.RunState.RUNNING)
            for handler in handlers:
                runstate.qemu_add_vm_change_state_handler(handler)
        self._check_served()
        return outcome

    def _check_served(self) -> None:
        reply = self._ask(self.other, b'{"execute": "query-status", "id": "other"}')
        if b'"id": "other"' not in reply:
            raise FuzzFailure(f"the other client got no reply: {reply[-200:]!r}")
        self.fuzzed.be_event(ChrEvent.OPENED)
        self.fuzzed.push(b'{"execute": "qmp_capabilities"}', self.loop)
        reply = self._ask(self.fuzzed, b'{"execute": "query-status", "id": "again"}')
        self.fuzzed.be_event(ChrEvent.CLOSED)
        if b'"id": "again"' not in reply:
            raise FuzzFailure(f"a new client got no reply: {reply[-200:]!r}")

    @staticmethod
    def _outcome(output: bytes) -> str:
        classes = sorted(set(re.findall(rb'"class": "(\w+)"', output)))
        descs = sorted(
            {
                re.sub(rb"[0-9]+|'[^']*'", b"#", d)[:60]
                for d in re.findall(rb'"desc": "([^"]*)"', output)
            }
        )
        returns = output.count(b'"return"')
        return repr((classes, descs[:4], min(returns, 3)))
