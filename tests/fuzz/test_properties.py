"""Property-based tests (hypothesis) of the parsers every hostile input meets.

- the QMP lexer's fast paths produce exactly what the byte-at-a-time
  transition table produces, for any bytes split anywhere;
- any JSON value QEMU can write, written by :func:`qmp_to_json`, parses back
  to itself;
- sizes and qtest numbers parse as models of QEMU's C functions say;
- the VM description reader, given any description and any bytes, returns
  or raises :class:`~qemu_api.error.Error`, and never reads backwards;
- a QMP session (a state machine): whatever garbage arrives, ``stop`` and
  ``cont`` alone move the run state, and every request is answered.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from qemu_api import bql
from qemu_api.error import Error
from qemu_api.migration.qemu_file import QEMUFileReader
from qemu_api.migration.vmdesc import vmdesc_decode
from qemu_api.option import parse_size
from system import runstate
from system.monitor import qmp as qmp_module
from system.monitor.qmp import JSONMessageParser, qmp_to_json
from system.qtest import qtest_parse_number
from tests.fuzz.target_qmp import QMPTarget
from tests.runtime import reset_runtime

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(autouse=True)
def _bql() -> None:
    if not bql.bql_locked():
        bql.bql_lock()


# -- the QMP lexer -------------------------------------------------------------------

_JSONISH = st.lists(
    st.sampled_from(
        [
            b"[",
            b"]",
            b"{",
            b"}",
            b":",
            b",",
            b" ",
            b"\n",
            b"\t",
            b'"',
            b"'",
            b"\\",
            b"true",
            b"nul",
            b"-",
            b"0",
            b"12",
            b"3.5e+7",
            b"e",
            b"\x00",
            b"\xff",
            b"\xc3\xa9",
            b"\\u00e9",
            b'"execute"',
            b"[[[[",
        ]
    )
    | st.binary(max_size=8),
    max_size=60,
).map(b"".join)


def _emitted(data: bytes, splits: list[int], fast: bool) -> list[tuple[Any, Any]]:
    got: list[tuple[Any, Any]] = []
    parser = JSONMessageParser(lambda v, e: got.append((repr(v), e)))
    if fast:
        at = 0
        for size in splits:
            parser.feed(data[at : at + size])
            at += size
        parser.feed(data[at:])
    else:
        for i in range(len(data)):
            parser.feed(data[i : i + 1])
    return got


@SETTINGS
@given(_JSONISH, st.lists(st.integers(0, 40), max_size=8))
def test_lexer_fast_paths_match_the_table(data: bytes, splits: list[int]) -> None:
    fast = _emitted(data, splits, fast=True)
    saved = (qmp_module._RUNS, qmp_module._SKIPS, qmp_module._OPENERS)
    try:
        qmp_module._RUNS = {}  # type: ignore[misc]
        qmp_module._SKIPS = {}  # type: ignore[misc]
        qmp_module._OPENERS = re.compile(rb"(?!)")  # type: ignore[misc]
        slow = _emitted(data, [], fast=False)
    finally:
        qmp_module._RUNS, qmp_module._SKIPS, qmp_module._OPENERS = saved  # type: ignore[misc]
    assert fast == slow


_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(1 << 63), (1 << 64) - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


@SETTINGS
@given(_VALUES, st.booleans())
def test_what_qemu_writes_parses_back(value: Any, pretty: bool) -> None:
    got: list[tuple[Any, Any]] = []
    parser = JSONMessageParser(lambda v, e: got.append((v, e)))
    parser.feed(qmp_to_json(value, pretty).encode() + b"\n")
    if not isinstance(value, dict | list):
        parser.feed(b" ")  # a lone number ends at the next character
    assert len(got) == 1
    parsed, err = got[0]
    assert err is None
    expected = value
    if isinstance(value, str):
        # QEMU's writer replaces what is not a valid code point with U+FFFD.
        expected = "".join(
            c if not 0xD800 <= ord(c) <= 0xDFFF else "\ufffd" for c in value
        )
    if isinstance(value, str | int | float | bool) or value is None:
        assert parsed == expected


# -- numbers ---------------------------------------------------------------------------

_UNITS = {"": 0, "B": 0, "k": 10, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60}


@SETTINGS
@given(st.integers(0, 1 << 70), st.sampled_from(sorted(_UNITS)))
def test_sizes_scale_or_are_out_of_range(n: int, unit: str) -> None:
    value = n << _UNITS[unit]
    if value >= 1 << 64:
        with pytest.raises(Error, match=r"out of range|expects a non-negative"):
            parse_size("size", f"{n}{unit}")
    else:
        assert parse_size("size", f"{n}{unit}") == value


@SETTINGS
@given(
    st.integers(0, (1 << 66)),
    st.sampled_from(["{:d}", "{:#x}", "{:#X}", "0{:o}"]),
    st.sampled_from(["", "-", "+"]),
    st.sampled_from(["", " ", "\t \n"]),
)
def test_qtest_numbers_are_strtoull(n: int, form: str, sign: str, space: str) -> None:
    text = space + sign + form.format(n)
    negative = sign == "-"
    top = (1 << 64) - 1
    try:
        got = qtest_parse_number(text, 0, top, wrap=True)
    except ValueError:
        assert n > top
    else:
        assert n <= top
        assert got == ((-n if negative else n) % (1 << 64))


# -- the VM description reader -------------------------------------------------------

_FIELD = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["a", "b", "c"]),
        "type": st.sampled_from(
            ["uint8", "int32", "bool", "struct", "capability", "x"]
        ),
    },
    optional={
        "size": st.one_of(st.integers(-5, 9), st.booleans(), st.text(max_size=2)),
        "array_len": st.one_of(st.integers(-2, 1 << 40), st.none()),
    },
)


def _desc(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    fields = st.lists(
        _FIELD
        if depth == 0
        else st.one_of(
            _FIELD,
            _FIELD.flatmap(
                lambda f: _desc(depth - 1).map(
                    lambda d: {**f, "type": "struct", "struct": d}
                )
            ),
        ),
        max_size=4,
    )
    return st.fixed_dictionaries(
        {"fields": fields},
        optional={
            "subsections": st.lists(
                st.fixed_dictionaries({"fields": fields}), max_size=2
            )
        },
    )


@SETTINGS
@given(_desc(2), st.binary(max_size=64))
def test_description_reader_returns_or_refuses(
    desc: dict[str, Any], data: bytes
) -> None:
    f = QEMUFileReader(data)
    with contextlib.suppress(Error):
        vmdesc_decode(f, desc)
    assert 0 <= f.pos <= len(data)


# -- a QMP session as a state machine -------------------------------------------------


class QMPSession(RuleBasedStateMachine):
    """Garbage, requests and reconnections; the model is the run state."""

    def __init__(self) -> None:
        super().__init__()
        reset_runtime()
        self.target = QMPTarget()
        self.target._build()
        self.running = True
        self.ids = 0

    def teardown(self) -> None:
        self.target.teardown()

    def _request(self, text: str) -> bytes:
        chr_ = self.target.fuzzed
        chr_.be_event(runstate_opened())
        chr_.push(b'{"execute": "qmp_capabilities"}', self.target.loop)
        reply = self.target._ask(chr_, text.encode())
        chr_.be_event(runstate_closed())
        return reply

    @rule(data=st.binary(max_size=300))
    def garbage(self, data: bytes) -> None:
        if any(w in data for w in (b"stop", b"cont", b"system_reset", b"quit")):
            return
        chr_ = self.target.fuzzed
        chr_.be_event(runstate_opened())
        chr_.push(data, self.target.loop)
        self.target.loop.wait(0)
        chr_.be_event(runstate_closed())

    @rule()
    def stop(self) -> None:
        assert b'"return": {}' in self._request('{"execute": "stop"}')
        self.running = False

    @rule()
    def cont(self) -> None:
        assert b'"return": {}' in self._request('{"execute": "cont"}')
        self.running = True

    @rule()
    def query(self) -> None:
        self.ids += 1
        reply = self._request(f'{{"execute": "query-status", "id": {self.ids}}}')
        assert f'"id": {self.ids}'.encode() in reply

    @invariant()
    def run_state_is_the_models(self) -> None:
        expected = (
            runstate.RunState.RUNNING if self.running else runstate.RunState.PAUSED
        )
        assert runstate.runstate_get() is expected
        assert not self.target._errors


def runstate_opened() -> Any:
    from qemu_api.chardev import ChrEvent

    return ChrEvent.OPENED


def runstate_closed() -> Any:
    from qemu_api.chardev import ChrEvent

    return ChrEvent.CLOSED


QMPSession.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
test_qmp_session = QMPSession.TestCase
