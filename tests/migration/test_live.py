"""pyqemu-to-pyqemu live migration over a unix socket, between two processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.migration.live_peer import PERIOD_NS, STEP_NS


def peer(mode: str, sock: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.migration.live_peer", mode, str(sock)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def output(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert isinstance(result, dict)
    return result


def test_device_mid_activity_continues_on_the_destination(tmp_path: Path) -> None:
    sock = tmp_path / "live.sock"
    dest = peer("dest", sock)
    for _ in range(200):
        if sock.exists() or dest.poll() is not None:
            break
        time.sleep(0.05)
    assert sock.exists(), "the destination never listened"
    source = output(peer("source", sock))
    reference = output(peer("reference", sock))
    received = output(dest)
    assert source["status"] == "completed"
    # Mid-activity: the timer had fired and was pending at migration time.
    trace = source["trace"]
    assert isinstance(trace, list)
    count, last, period, scratch = trace[-1]
    assert count == 10 * STEP_NS // PERIOD_NS
    assert (period, scratch) == (PERIOD_NS, 0x5A5A)
    assert last % PERIOD_NS == 0
    # The destination resumes at the same virtual time, with the same state.
    assert received["at"] == source["at"] == 10 * STEP_NS
    assert received["runstate"] == "running"
    assert received["loaded"] == ["arm_gic (0)", "pl011 (0)", "mig-test-dev (0)"]
    assert received["ram"] == "live"
    # Same register reads, and the timer fires at the same virtual times.
    assert received["trace"] == reference["trace"]
