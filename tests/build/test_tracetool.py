"""tracetool: generation from trace-events, bad lines, backends, simpletrace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = """\
# a comment, then a blank line

dev_read(uint64_t addr, uint32_t value, const char *reg) \
"addr 0x%"PRIx64" value 0x%08x reg %s"
dev_irq(int level) "level %d"
disable dev_static(void) "never traced"
dev_ptr(void *opaque, bool on) "opaque %p on %d"
"""


def tracetool(srcroot: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(srcroot / "scripts" / "tracetool.py"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def generate(srcroot: Path, tmp: Path, backends: str, text: str = SAMPLE) -> Path:
    pkg = tmp / "qemu_trace"
    pkg.mkdir(exist_ok=True)
    src = tmp / "trace-events"
    src.write_text(text)
    res = tracetool(srcroot, "--init", "--backends", backends, str(pkg / "__init__.py"))
    assert res.returncode == 0, res.stderr
    res = tracetool(
        srcroot,
        "--group",
        "sample",
        "--backends",
        backends,
        str(src),
        str(pkg / "sample.py"),
    )
    assert res.returncode == 0, res.stderr
    return pkg / "sample.py"


def run_py(srcroot: Path, tmp: Path, code: str, **env: str):
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp,
        env={**os.environ, "PYTHONPATH": f"{tmp}:{srcroot}", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_generated_module_is_typed(srcroot, tmp_path):
    mod = generate(srcroot, tmp_path, "log").read_text()
    assert "def trace_dev_read(addr: int, value: int, reg: str) -> None:" in mod
    assert "def trace_dev_ptr(opaque: object, on: bool) -> None:" in mod
    # the disabled event is compiled out
    static = mod[mod.index("def trace_dev_static") :].split("\n\n")[0]
    assert "return" in static
    assert "emit" not in static
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(srcroot / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mc"),
            "-p",
            "qemu_trace",
        ],
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": f"{tmp_path}:{srcroot}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout


def test_log_backend_line_format(srcroot, tmp_path):
    generate(srcroot, tmp_path, "log")
    res = run_py(
        srcroot,
        tmp_path,
        "from qemu_trace.sample import *\n"
        "from qemu_api import trace\n"
        "trace_dev_read(1, 2, 'DR')\n"  # disabled: nothing
        "trace.trace_enable_events('dev_*')\n"
        "trace_dev_read(0x1000, 0xab, 'DR')\n"
        "trace_dev_irq(1)\n",
    )
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 2, res.stderr
    head, _, rest = lines[0].partition(":")
    pid, _, stamp = head.partition("@")
    assert pid.isdigit()
    sec, _, usec = stamp.partition(".")
    assert sec.isdigit()
    assert len(usec) == 6
    assert usec.isdigit()
    assert rest == "dev_read addr 0x1000 value 0x000000ab reg DR"
    assert lines[1].endswith(":dev_irq level 1")


def test_nop_backend_costs_only_the_call(srcroot, tmp_path):
    mod = generate(srcroot, tmp_path, "nop").read_text()
    body = mod[mod.index("def trace_dev_read") :].split("\n\n")[0]
    assert ".state" not in body
    assert "return" in body
    res = run_py(
        srcroot,
        tmp_path,
        "from qemu_trace.sample import *\nfrom qemu_api import trace\n"
        "trace.trace_enable_events('dev_*')\ntrace_dev_read(1, 2, 'DR')\n",
    )
    assert res.returncode == 0
    assert res.stderr == ""


def test_simple_backend_reads_back(srcroot, tmp_path):
    generate(srcroot, tmp_path, "simple")
    out = tmp_path / "trace.bin"
    res = run_py(
        srcroot,
        tmp_path,
        "from qemu_trace.sample import *\nfrom qemu_api import trace\n"
        f"trace.trace_opt_parse('dev_*,file={out}')\n"
        "trace.trace_init_backends()\ntrace.trace_init_file()\n"
        "trace_dev_read(0x1000, 0xab, 'DR')\ntrace_dev_irq(0)\n"
        "o = object()\ntrace_dev_ptr(o, True)\n"
        "print(hex(id(o)))\n",
    )
    assert res.returncode == 0, res.stderr
    res2 = subprocess.run(
        [
            sys.executable,
            str(srcroot / "scripts" / "simpletrace.py"),
            str(tmp_path / "trace-events"),
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res2.returncode == 0, res2.stderr
    lines = res2.stdout.splitlines()
    assert len(lines) == 3
    name, delta, pid, *fields = lines[0].split(" ")
    assert name == "dev_read"
    assert delta == "0.000"
    assert pid.startswith("pid=")
    assert fields == ["addr=0x1000", "value=0xab", "reg=DR"]
    assert lines[1].split(" ")[0] == "dev_irq"
    assert lines[1].endswith("level=0x0")
    assert lines[2].endswith(f"opaque={res.stdout.strip()} on=0x1")


def test_simpletrace_rejects_bad_files(srcroot, tmp_path):
    events = tmp_path / "trace-events"
    events.write_text(SAMPLE)
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00" * 24)
    res = subprocess.run(
        [
            sys.executable,
            str(srcroot / "scripts" / "simpletrace.py"),
            str(events),
            str(bad),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 1
    assert res.stderr == "simpletrace: not a simpletrace file (wrong header magic)\n"
    bad.write_bytes(b"\xff" * 8)
    res = subprocess.run(
        [
            sys.executable,
            str(srcroot / "scripts" / "simpletrace.py"),
            str(events),
            str(bad),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 1
    assert "truncated header" in res.stderr


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("dev_x(int a)", "missing format string"),
        ('dev_x(int a) "a %d', "the format string is not terminated"),
        ('dev_x(int a "a %d"', "expected 'name(type arg, ...) \"format\"'"),
        ('dev_x(foo_t a) "a %d"', "argument 'foo_t a' has unknown type 'foo_t'"),
        ('dev_x(int a, int b) "a %d"', "the format has 1 conversions for 2 arguments"),
        ('dev_x(int a) "a %s"', "%s given for non-string argument 'a'"),
        ('dev_x(const char *s) "s %d"', "%d given for string argument 's'"),
        ('vcpu dev_x(int a) "a %d"', "property 'vcpu' is not supported"),
        ('fancy dev_x(int a) "a %d"', "unknown property 'fancy'"),
        ('dev_x(int a) "a %d" BOGUS', "unknown token 'BOGUS' in the format string"),
        ('dev_x(int a) "a %d\\n"', "the format string must not end with a newline"),
    ],
)
def test_malformed_line_fails_with_location(srcroot, tmp_path, line, reason):
    src = tmp_path / "trace-events"
    src.write_text("# ok\n" + line + "\n")
    res = tracetool(
        srcroot,
        "--group",
        "g",
        "--backends",
        "log",
        str(src),
        str(tmp_path / "out.py"),
    )
    assert res.returncode == 1
    assert res.stderr == f"tracetool: {src}:2: {reason}\n"
    assert not (tmp_path / "out.py").exists()


def test_duplicate_event(srcroot, tmp_path):
    src = tmp_path / "trace-events"
    src.write_text('a(int x) "x %d"\na(int y) "y %d"\n')
    res = tracetool(
        srcroot, "--group", "g", "--backends", "log", str(src), str(tmp_path / "o.py")
    )
    assert res.returncode == 1
    assert res.stderr == f"tracetool: {src}:2: event 'a' already defined at line 1\n"


def test_unknown_backend(srcroot, tmp_path):
    res = tracetool(
        srcroot, "--init", "--backends", "log,ftrace", str(tmp_path / "i.py")
    )
    assert res.returncode == 1
    assert "unknown trace backend 'ftrace'" in res.stderr
