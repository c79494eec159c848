"""QEMU command lines, good and bad, on QEMU 7.2 and on pyqemu: same results.

The corpus is ``cmdline-corpus.txt`` (how each line runs: ``cmdline_diff.py``).
For each line the exit status, standard error and standard output must be
identical, except for the lines listed in ``DIFFERENCES`` with the reason;
a listed line that no longer differs fails too, so the list stays true.
No line may end in a Python traceback.

The test fails, with the command to install it, when QEMU 7.2 is missing: it
is the oracle, not an optional extra.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Final

import pytest

from tests.qtest.cmdline_diff import Case, Result, load_corpus, run_corpus

# What differs on purpose, per corpus line (``x86_64: `` prefix kept).
DIFFERENCES: Final[dict[str, str]] = {
    # Options and features pyqemu does not have (yet): it says so.
    "-M virt image.qcow2": "no block devices: pyqemu says so",
    "-M virt -drive file=x": "not supported yet (QEMU: could not open the image)",
    "-M virt -netdev user,id=n": "not supported yet",
    "-M virt -hda disk.img": "not supported yet",
    "-M virt -snapshot": "not supported yet",
    "-M virt -k en-us": "not supported yet",
    "-M virt -vnc :1": "not supported yet",
    "-M virt -object memory-backend-ram,id=r,size=1M": "not supported yet",
    "-M virt -s": "not supported yet (no gdb stub)",
    "-M virt -smp 2": "one vCPU for now: refused with the reason",
    "-M virt -icount shift=3 -accel qtest": "Debian's QEMU has no qtest accelerator",
    # pyqemu's errors teach: a hint line QEMU does not print.
    "-M virt -chardev nope,id=x": "hint: the backend list",
    "-M virt -chardev null,id=a,bogus=1": "hint: the backend's options",
    "-M virt -cpu nosuch": "hint: -cpu help",
    "-M virt -append console=ttyAMA0": "hint: what -append is for",
    "-M virt -kernel DIR/nosuch": "the reason the kernel could not be loaded",
    "-M virt -icount shift=x": "says which shifts are valid",
    "-M virt -d nosuch": "names the bad item (QEMU prints the whole list)",
    # pyqemu's virt takes its device models on the platform bus.
    "-M virt -device pl011": "pl011 is a dynamic sysbus device of pyqemu's virt",
    "-M virt -device pl011,chardev=nope": "as above: the chardev is then checked",
    "x86_64: -M none -device or-irq": "pyqemu's none board takes or-irq for IRQ qtests",
    # Help and version texts: pyqemu's own lists and names.
    "-version": "names pyqemu, then the QEMU version it implements",
    "--version": "as -version",
    "x86_64: -version": "as -version",
    "-M help": "pyqemu's boards",
    "x86_64: -M help": "pyqemu's boards",
    "-M virt,help": "pyqemu's virt properties",
    "-accel help": "pyqemu's accelerators (qtest too)",
    "-cpu help": "pyqemu's CPU models",
    "-M virt -chardev help": "pyqemu's chardev backends",
    "-device help": "pyqemu's devices, the non-pluggable ones marked no-user",
    "-device pl011,help": "pyqemu's pl011 properties",
    "-d help": "op_plugin (Debian's build has no plugins)",
}


@pytest.fixture(scope="module")
def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Case, Result, Result]]:
    for target in ("aarch64", "x86_64"):
        if shutil.which(f"qemu-system-{target}") is None:
            pytest.fail(
                f"qemu-system-{target} (QEMU 7.2, the oracle) is not installed: run "
                "'apt-get install -y qemu-system-arm qemu-system-x86'",
                pytrace=False,
            )
    root: Path = tmp_path_factory.mktemp("corpus")
    return {c.key: (c, q, m) for c, q, m in run_corpus(load_corpus(), root, jobs=8)}


CASES: Final = load_corpus()


@pytest.mark.parametrize("key", [c.key for c in CASES])
def test_same_as_qemu(
    key: str, results: dict[str, tuple[Case, Result, Result]]
) -> None:
    _case, qemu, mine = results[key]
    assert "Traceback" not in mine.stderr, mine.stderr
    if key in DIFFERENCES:
        assert qemu != mine, "no longer differs from QEMU: remove it from DIFFERENCES"
        return
    assert qemu == mine, f"QEMU 7.2:\n{qemu.render()}pyqemu:\n{mine.render()}"


def test_every_listed_difference_is_in_the_corpus() -> None:
    keys = {c.key for c in CASES}
    assert sorted(set(DIFFERENCES) - keys) == []
