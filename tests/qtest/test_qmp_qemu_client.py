"""End to end: the real launcher driven by QEMU's own QMP client, ``qemu.qmp``.

``build/pyqemu-system-aarch64 -M virt -display none -S -qmp unix:SOCK,...`` is
started as a user would start it, and ``qemu.qmp.QMPClient`` (QEMU's library,
pinned in subprojects/test.txt) negotiates, queries, starts and stops the
machine, reads QOM properties, gets an error and quits. The build directory
is ``$PYQEMU_BUILD_ROOT`` (``<repo>/build`` by default).
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from qemu.qmp import EventListener, ExecuteError, QMPClient

BUILD = Path(
    os.environ.get("PYQEMU_BUILD_ROOT", Path(__file__).resolve().parents[2] / "build")
)
LAUNCHER = BUILD / "pyqemu-system-aarch64"
TIMEOUT = 30.0


class Emulator:
    """A running launcher with a QMP socket."""

    def __init__(self, sock: Path, *extra: str) -> None:
        if not LAUNCHER.is_file():
            pytest.fail(
                f"{LAUNCHER} is not built: configure and build first "
                "(./configure && make), or point PYQEMU_BUILD_ROOT at a build "
                "directory",
                pytrace=False,
            )
        self.sock = sock
        self.proc = subprocess.Popen(
            [
                str(LAUNCHER),
                *("-M", "virt", "-display", "none", "-S"),
                *("-qmp", f"unix:{sock},server=on,wait=off"),
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + TIMEOUT
        while not sock.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                _, err = self.stop()
                pytest.fail(
                    f"the emulator did not create {sock}; status "
                    f"{self.proc.returncode}, stderr:\n{err}",
                    pytrace=False,
                )
            time.sleep(0.02)

    def wait(self) -> tuple[int, str]:
        """Wait for the process to exit; return its status and standard error."""
        _, err = self.proc.communicate(timeout=TIMEOUT)
        return (self.proc.returncode, err.decode(errors="replace"))

    def stop(self) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.kill()
        out, err = self.proc.communicate(timeout=TIMEOUT)
        return (out.decode(errors="replace"), err.decode(errors="replace"))


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    emu = Emulator(tmp_path / "qmp.sock")
    try:
        yield emu
    finally:
        emu.stop()


async def next_event(listener: EventListener, name: str) -> dict[str, object]:
    event = await asyncio.wait_for(listener.get(), TIMEOUT)
    assert event["event"] == name
    return dict(event)


async def session(sock: Path) -> None:
    qmp = QMPClient("pyqemu-qtest")
    await asyncio.wait_for(qmp.connect(str(sock)), TIMEOUT)
    greeting = qmp.greeting
    assert greeting is not None
    assert greeting.QMP.version == {
        "qemu": {"micro": 0, "minor": 1, "major": 0},
        "package": "pyqemu",
    }
    assert greeting.QMP.capabilities == ["oob"]

    status = await qmp.execute("query-status")
    assert status == {"status": "prelaunch", "singlestep": False, "running": False}

    listener = EventListener(("RESUME", "STOP", "SHUTDOWN"))
    with qmp.listen(listener):
        assert await qmp.execute("cont") == {}
        await next_event(listener, "RESUME")
        status = await qmp.execute("query-status")
        assert status == {"status": "running", "singlestep": False, "running": True}

        assert await qmp.execute("stop") == {}
        await next_event(listener, "STOP")
        status = await qmp.execute("query-status")
        assert status == {"status": "paused", "singlestep": False, "running": False}

        props = await qmp.execute("qom-list", {"path": "/machine"})
        assert isinstance(props, list)
        names = {p["name"] for p in props}
        assert {"unattached", "gic"} <= names
        realized = await qmp.execute(
            "qom-get", {"path": "/machine/gic", "property": "realized"}
        )
        assert realized is True

        with pytest.raises(ExecuteError) as err:
            await qmp.execute("qom-get", {"path": "/machine/nope", "property": "x"})
        assert err.value.error_class == "DeviceNotFound"
        assert err.value.error.error.desc == "Device '/machine/nope' not found"

        with pytest.raises(ExecuteError) as err:
            await qmp.execute("qom-get", {"path": "/machine"})
        assert err.value.error_class == "GenericError"
        assert err.value.error.error.desc == "Parameter 'property' is missing"

        text = await qmp.execute(
            "human-monitor-command", {"command-line": "info status"}
        )
        assert text == "VM status: paused\r\n"

        assert await qmp.execute("quit") == {}
        event = await next_event(listener, "SHUTDOWN")
        assert event["data"] == {"guest": False, "reason": "host-qmp-quit"}
    await qmp.disconnect()


def test_qemu_qmp_client_session(emulator: Emulator) -> None:
    mode = stat.S_IMODE(emulator.sock.stat().st_mode)
    assert stat.S_ISSOCK(emulator.sock.stat().st_mode)
    assert mode == 0o600, oct(mode)
    asyncio.run(session(emulator.sock))
    status, err = emulator.wait()
    assert status == 0, err
    assert err == ""


def test_a_second_client_gets_a_fresh_session(emulator: Emulator) -> None:
    async def first() -> None:
        qmp = QMPClient("first")
        await asyncio.wait_for(qmp.connect(str(emulator.sock)), TIMEOUT)
        assert await qmp.execute("cont") == {}
        await qmp.disconnect()

    async def second() -> None:
        qmp = QMPClient("second")
        await asyncio.wait_for(qmp.connect(str(emulator.sock)), TIMEOUT)
        status = await qmp.execute("query-status")
        assert status == {"status": "running", "singlestep": False, "running": True}
        await qmp.execute("quit")
        await qmp.disconnect()

    asyncio.run(first())
    asyncio.run(second())
    status, err = emulator.wait()
    assert status == 0, err
