"""QMP events: the API's listener registry and the typed senders of the schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest

from qapi import qapi_events
from qapi.qapi_events import (
    qapi_event_send_powerdown,
    qapi_event_send_reset,
    qapi_event_send_resume,
    qapi_event_send_rtc_change,
    qapi_event_send_shutdown,
    qapi_event_send_stop,
)
from qapi.qmp_schema import QMP_EVENTS, ShutdownCause
from qemu_api.qmp_event import (
    qapi_event_add_listener,
    qapi_event_emit,
    qapi_event_remove_all_listeners,
    qapi_event_remove_listener,
)
from qemu_api.qom import JSONValue

SRCROOT: Final = Path(__file__).resolve().parents[2]
QAPI_GEN: Final = SRCROOT / "scripts" / "qapi-gen.py"

Seen = list[tuple[str, dict[str, JSONValue]]]


@pytest.fixture
def seen() -> Seen:
    events: Seen = []
    qapi_event_add_listener(lambda name, data: events.append((name, data)))
    return events


# -- the registry ----------------------------------------------------------------------


def test_every_listener_gets_every_event_in_order() -> None:
    log: list[str] = []
    a = lambda name, data: log.append(f"a:{name}")  # noqa: E731
    b = lambda name, data: log.append(f"b:{name}")  # noqa: E731
    qapi_event_add_listener(a)
    qapi_event_add_listener(b)
    qapi_event_emit("ONE", {})
    qapi_event_remove_listener(a)
    qapi_event_remove_listener(a)  # not registered any more: no error
    qapi_event_emit("TWO", {})
    qapi_event_remove_all_listeners()
    qapi_event_emit("THREE", {})
    assert log == ["a:ONE", "b:ONE", "b:TWO"]


def test_a_listener_may_remove_itself_while_an_event_goes_out() -> None:
    log: list[str] = []

    def once(name: str, data: dict[str, JSONValue]) -> None:
        log.append(f"once:{name}")
        qapi_event_remove_listener(once)

    qapi_event_add_listener(once)
    qapi_event_add_listener(lambda name, data: log.append(f"other:{name}"))
    qapi_event_emit("A", {})
    qapi_event_emit("B", {})
    assert log == ["once:A", "other:A", "other:B"]


def test_the_runtime_reset_forgets_listeners(seen: Seen) -> None:
    from qemu_api.testing import reset_runtime

    reset_runtime()
    qapi_event_send_stop()
    assert seen == []


# -- the typed senders -----------------------------------------------------------------


def test_senders_build_qemus_event_data(seen: Seen) -> None:
    qapi_event_send_stop()
    qapi_event_send_resume()
    qapi_event_send_powerdown()
    qapi_event_send_reset(guest=True, reason=ShutdownCause.GUEST_RESET)
    qapi_event_send_shutdown(guest=False, reason=ShutdownCause.HOST_SIGNAL)
    qapi_event_send_rtc_change(offset=-7, qom_path="/machine/peripheral/rtc")
    assert seen == [
        ("STOP", {}),
        ("RESUME", {}),
        ("POWERDOWN", {}),
        ("RESET", {"guest": True, "reason": "guest-reset"}),
        ("SHUTDOWN", {"guest": False, "reason": "host-signal"}),
        ("RTC_CHANGE", {"offset": -7, "qom-path": "/machine/peripheral/rtc"}),
    ]


def test_one_sender_per_schema_event() -> None:
    names = {
        f"qapi_event_send_{event.lower()}" for event in QMP_EVENTS
    }  # QEMU's qapi_event_send_<event in lower case>
    assert set(qapi_events.__all__) == names
    assert {"POWERDOWN", "RTC_CHANGE", "STOP", "RESUME", "RESET", "SHUTDOWN"} <= set(
        QMP_EVENTS
    )
    assert QMP_EVENTS["RTC_CHANGE"] == ("offset", "qom-path")  # QEMU 7.2's members


def test_senders_take_keyword_arguments_only() -> None:
    send: Any = qapi_event_send_shutdown
    with pytest.raises(TypeError, match="positional"):
        send(True, ShutdownCause.NONE)


# mypy --strict on a model that sends events wrongly.
MISUSE = """\
from qapi.qapi_events import (
    qapi_event_send_reset,
    qapi_event_send_rtc_change,
    qapi_event_send_shutdown,
)
from qapi.qmp_schema import ShutdownCause

qapi_event_send_rtc_change(offset="60", qom_path="/rtc")
qapi_event_send_rtc_change(offset=60)
qapi_event_send_shutdown(True, ShutdownCause.GUEST_SHUTDOWN)
qapi_event_send_reset(guest=True, reason="guest-reset")
qapi_event_send_rtc_change(offset=60, qom_path="/rtc")
qapi_event_send_reset(guest=True, reason=ShutdownCause.GUEST_RESET)
"""


def test_wrong_event_arguments_fail_mypy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = pytest.importorskip("mypy.api")
    src = tmp_path / "misuse.py"
    src.write_text(MISUSE)
    monkeypatch.chdir(SRCROOT)
    out, err, _ = api.run(
        ["--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "c"), str(src)]
    )
    errors = [
        (int(line.split(":")[1]), line.split(": error: ")[1])
        for line in out.splitlines()
        if ": error: " in line
    ]
    assert errors == [
        (
            8,
            (
                'Argument "offset" to "qapi_event_send_rtc_change" has incompatible '
                'type "str"; expected "int"  [arg-type]'
            ),
        ),
        (
            9,
            (
                'Missing named argument "qom_path" for "qapi_event_send_rtc_change"  '
                "[call-arg]"
            ),
        ),
        (
            10,
            'Too many positional arguments for "qapi_event_send_shutdown"  [call-arg]',
        ),
        (
            11,
            (
                'Argument "reason" to "qapi_event_send_reset" has incompatible type '
                '"str"; expected "ShutdownCause"  [arg-type]'
            ),
        ),
    ], out + err


# -- the generator ---------------------------------------------------------------------

SCHEMA: Final = {
    "doc": "test",
    "definitions": [
        {
            "enum": "Colour",
            "data": ["dark-red", "blue"],
            "doc": "A colour.",
            "members": {"dark-red": "r", "blue": "b"},
        },
        {
            "struct": "Paint",
            "data": {"colour": "Colour", "*coats": "int"},
            "doc": "A paint.",
            "members": {"colour": "c", "coats": "n"},
        },
        {"event": "DRIED", "doc": "Paint dried."},
        {
            "event": "PAINTED",
            "data": {
                "wall-id": "str",
                "*paint": "Paint",
                "colours": ["Colour"],
                "*wet": "bool",
                "ratio": "number",
            },
            "doc": "A wall was painted.\n\nMore text.",
            "members": {
                "wall-id": "which wall",
                "paint": "the paint",
                "colours": "its colours",
                "wet": "still wet",
                "ratio": "a ratio",
            },
        },
    ],
}

DRIVER: Final = """\
import json
from qapi.qapi_events import qapi_event_send_dried, qapi_event_send_painted
from qapi.qmp_schema import Colour, Paint
from qemu_api.qmp_event import qapi_event_add_listener

seen = []
qapi_event_add_listener(lambda name, data: seen.append([name, data]))
qapi_event_send_dried()
qapi_event_send_painted(wall_id="w1", colours=[Colour.DARK_RED], ratio=0.5)
qapi_event_send_painted(
    wall_id="w2",
    paint=Paint(colour=Colour.BLUE, coats=2),
    colours=[],
    wet=False,
    ratio=1.0,
)
print(json.dumps(seen))
"""


def test_generated_senders_follow_the_schema(tmp_path: Path) -> None:
    pkg = tmp_path / "qapi"
    pkg.mkdir()
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    gen = subprocess.run(
        [
            sys.executable,
            str(QAPI_GEN),
            str(schema),
            "--init",
            str(pkg / "__init__.py"),
            "--module",
            str(pkg / "qmp_schema.py"),
            "--events",
            str(pkg / "qapi_events.py"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert gen.returncode == 0, gen.stderr
    text = (pkg / "qapi_events.py").read_text()
    assert (
        "def qapi_event_send_painted(*, wall_id: str, paint: Paint | None = None, "
        "colours: list[Colour], wet: bool | None = None, ratio: float) -> None:"
    ) in text
    assert "def qapi_event_send_dried() -> None:" in text
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}:{SRCROOT}:{os.environ['PYTHONPATH']}",
    }
    run = subprocess.run(
        [sys.executable, "-c", DRIVER],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [
        ["DRIED", {}],
        ["PAINTED", {"wall-id": "w1", "colours": ["dark-red"], "ratio": 0.5}],
        [
            "PAINTED",
            {
                "wall-id": "w2",
                "colours": [],
                "ratio": 1.0,
                "paint": {"colour": "blue", "coats": 2},
                "wet": False,
            },
        ],
    ]


# -- layering --------------------------------------------------------------------------


def test_models_send_events_without_the_runtime() -> None:
    """Sending an event imports neither system/ nor the test tools."""
    code = (
        "import sys\n"
        "from qapi.qapi_events import qapi_event_send_rtc_change\n"
        "import qemu_api.testing, qemu_api.rtc\n"
        "qapi_event_send_rtc_change(offset=1, qom_path='/rtc')\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in ('system', 'pytest', 'tests'))\n"
        "print(bad)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == "[]\n"
