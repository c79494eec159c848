#!/usr/bin/env python3
"""Build the unicorn engine from its pinned source, patched, into the tool venv.

Usage: build-unicorn.py VENV SUBPROJECTS BUILD_DIR [--required | --disable]

``subprojects/runtime.txt`` installs unicorn's wheel: its Python binding and a
library built for every architecture unicorn knows.  This script replaces
that library with one built from the same release's source distribution
(pinned by hash in ``subprojects/unicorn-source.txt``) with the patches in
``subprojects/packagefiles/unicorn/`` applied, for the AArch64 target only
(about a minute on two cores).  The binding is unchanged.

Why: unicorn 2.1.4 calls a helper at the start of every translated block
where QEMU tests a flag inline (patch 0001); CPU-bound guests run about 1.6
times faster without it (``tests/bench/bench_cpu.py`` prints the figures).

The result is cached in ``BUILD_DIR/subprojects/unicorn`` and recorded in a
stamp next to the library (``pyqemu-engine.txt``), so re-running configure
does nothing, and a recreated venv gets the library back without compiling.
The wheel's own library is kept beside it (``libunicorn.so.2.wheel``):
``--disable`` puts it back.  Without ``--required``, a machine lacking
cmake, a C compiler or patch(1) keeps the wheel's library with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ARCHS = "aarch64"
"""The unicorn targets built: the CPUs pyqemu's boards have."""

LIBRARY = "libunicorn.so.2"
STAMP = "pyqemu-engine.txt"
WHEEL_COPY = LIBRARY + ".wheel"
RECIPE = "1"
"""Bumped when this script builds differently: part of the cache key."""


class BuildError(Exception):
    """The engine could not be built; the message says why."""


def _run(cmd: list[str], cwd: Path, log: Path) -> None:
    with log.open("a") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        result = subprocess.run(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise BuildError(
            f"{cmd[0]} failed (exit {result.returncode}); the end of {log}:\n  "
            + "\n  ".join(tail)
        )


def _pin(subprojects: Path) -> tuple[str, str]:
    """The requirement line of unicorn-source.txt and its version."""
    path = subprojects / "unicorn-source.txt"
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, rest = line.partition("==")
            version = rest.split()[0] if rest else ""
            if name.strip() != "unicorn" or not version or "--hash=" not in line:
                raise BuildError(
                    f"{path}: expected 'unicorn==VERSION --hash=sha256:...', "
                    f"got {line!r}"
                )
            return line, version
    raise BuildError(f"{path}: no requirement line")


def _venv_python(venv: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "python3"), "-c", code],
        capture_output=True,
        text=True,
        check=False,
    )


def _venv_unicorn(venv: Path) -> tuple[str, Path]:
    """The installed unicorn's version and the directory of its library."""
    code = (
        "import importlib.metadata as m, importlib.util as u, os; "
        "s = u.find_spec('unicorn'); "
        "print(m.version('unicorn')); "
        "print(os.path.dirname(s.origin))"
    )
    result = _venv_python(venv, code)
    if result.returncode != 0:
        raise BuildError(f"the venv has no unicorn package: {result.stderr.strip()}")
    version, package = result.stdout.split("\n")[:2]
    return version.strip(), Path(package.strip()) / "lib"


def _key(pin: str, patches: list[Path]) -> str:
    h = hashlib.sha256()
    h.update(f"{RECIPE}\0{ARCHS}\0{pin}\0".encode())
    for patch in patches:
        h.update(patch.name.encode() + b"\0" + patch.read_bytes() + b"\0")
    return h.hexdigest()


def _missing_tools() -> list[str]:
    tools = {"cmake": "cmake", "cc": "a C compiler (cc)", "patch": "patch"}
    return [what for tool, what in tools.items() if shutil.which(tool) is None]


def _build(venv: Path, pin: str, patches: list[Path], out: Path, log: Path) -> None:
    """Download, patch and build the library into ``out``."""
    work = out.parent
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        tmpdir = Path(tmp)
        req = tmpdir / "requirement.txt"
        req.write_text(pin + "\n")
        dist = work / "dist"
        dist.mkdir(exist_ok=True)
        _run(
            [
                str(venv / "bin" / "python3"),
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--require-hashes",
                "-r",
                str(req),
                "-d",
                str(dist),
            ],
            tmpdir,
            log,
        )
        version = pin.partition("==")[2].split()[0]
        sdist = dist / f"unicorn-{version}.tar.gz"
        if not sdist.is_file():
            raise BuildError(f"pip did not leave {sdist}")
        with tarfile.open(sdist) as tar:
            tar.extractall(tmpdir, filter="data")
        root = tmpdir / f"unicorn-{version}"
        for patch in patches:
            _run(["patch", "-p1", "-N", "-s", "-i", str(patch)], root, log)
        build = tmpdir / "build"
        jobs = str(os.cpu_count() or 1)
        _run(
            [
                "cmake",
                "-S",
                str(root / "src"),
                "-B",
                str(build),
                "-DCMAKE_BUILD_TYPE=Release",
                "-DUNICORN_BUILD_TESTS=off",
                f"-DUNICORN_ARCH={ARCHS}",
            ],
            root,
            log,
        )
        _run(["cmake", "--build", str(build), "-j", jobs], root, log)
        built = (build / LIBRARY).resolve()
        if not built.is_file():
            raise BuildError(f"cmake did not build {build / LIBRARY}")
        shutil.copyfile(built, out)


def _install(lib_dir: Path, library: Path, stamp: str) -> None:
    target = lib_dir / LIBRARY
    wheel = lib_dir / WHEEL_COPY
    if not wheel.exists():
        shutil.copy2(target, wheel)
    tmp = lib_dir / (LIBRARY + ".new")
    shutil.copyfile(library, tmp)
    tmp.chmod(0o755)
    os.replace(tmp, target)
    (lib_dir / STAMP).write_text(stamp)


def _check_loads(venv: Path) -> None:
    code = (
        "from unicorn import Uc, UC_ARCH_ARM64, UC_MODE_ARM; "
        "Uc(UC_ARCH_ARM64, UC_MODE_ARM)"
    )
    result = _venv_python(venv, code)
    if result.returncode != 0:
        raise BuildError(
            f"the built engine does not load: {result.stderr.strip()[-400:]}"
        )


def restore_wheel(lib_dir: Path) -> bool:
    """Put the wheel's library back; True if it had been replaced."""
    wheel = lib_dir / WHEEL_COPY
    if not wheel.exists():
        return False
    os.replace(wheel, lib_dir / LIBRARY)
    (lib_dir / STAMP).unlink(missing_ok=True)
    return True


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    flags = {a for a in argv if a.startswith("--")}
    if len(args) != 3 or not flags <= {"--required", "--disable"}:
        print(__doc__, file=sys.stderr)
        return 2
    venv, subprojects, build_dir = (Path(a).absolute() for a in args)
    try:
        version, lib_dir = _venv_unicorn(venv)
        if "--disable" in flags:
            if restore_wheel(lib_dir):
                print(f"CPU engine: unicorn {version}'s wheel as published (restored)")
            return 0
        pin, pinned = _pin(subprojects)
        if version != pinned:
            raise BuildError(
                f"the venv has unicorn {version}, subprojects/unicorn-source.txt "
                f"pins {pinned}: the two pins must name the same release"
            )
        patches = sorted((subprojects / "packagefiles" / "unicorn").glob("*.patch"))
        key = _key(pin, patches)
        names = ", ".join(p.name for p in patches) or "no patches"
        stamp = (
            f"{key}\nunicorn {version} built from source for {ARCHS} "
            f"with {names} (scripts/build-unicorn.py)\n"
        )
        current = lib_dir / STAMP
        if current.is_file() and current.read_text() == stamp:
            print(f"CPU engine: unicorn {version} built from source (unchanged)")
            return 0
        cache = build_dir / "subprojects" / "unicorn"
        cache.mkdir(parents=True, exist_ok=True)
        cached = cache / f"{LIBRARY}-{key[:16]}"
        if not cached.is_file():
            missing = _missing_tools()
            if missing:
                raise BuildError("missing " + ", ".join(missing))
            log = cache / "build.log"
            log.write_text("")
            print(f"CPU engine: building unicorn {version} from source ({names})")
            partial = cache / (cached.name + ".partial")
            _build(venv, pin, patches, partial, log)
            os.replace(partial, cached)
        _install(lib_dir, cached, stamp)
        _check_loads(venv)
        print(f"CPU engine: unicorn {version} built from source ({names})")
        return 0
    except BuildError as exc:
        if "--required" in flags:
            print(f"ERROR: could not build the CPU engine: {exc}", file=sys.stderr)
            return 1
        print(
            f"WARNING: could not build the CPU engine ({exc}); using unicorn's "
            "wheel as published: CPU-bound guests run slower",
            file=sys.stderr,
        )
        with contextlib.suppress(BuildError):
            restore_wheel(_venv_unicorn(venv)[1])
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
