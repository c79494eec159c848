"""The guest's fetcher and initramfs builder, without booting anything.

scripts/fetch-guest.py reads the host's apt sources for its Debian mirror, keeps a
cache that a second run only checks (no apt at all), and takes any arm64 kernel and
busybox on hosts without apt; scripts/mkinitramfs.py writes the cpio archive and
resolves module dependencies from each module's ``.modinfo`` (checked here against
binutils' ``readelf``).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.linux.guest import SOURCE_ROOT, GuestFiles, fetch_guest

FETCH = SOURCE_ROOT / "scripts" / "fetch-guest.py"
READELF = "readelf"  # binutils: reads the ELF files of any architecture


def load_script(name: str) -> ModuleType:
    path = SOURCE_ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fetcher = load_script("fetch-guest")
mkinitramfs = load_script("mkinitramfs")


@pytest.fixture(scope="module")
def guest() -> GuestFiles:
    return fetch_guest()


@pytest.fixture(scope="module")
def modules_dir(guest: GuestFiles) -> Path:
    manifest = json.loads((guest.kernel.parent / "guest.json").read_text())
    return Path(manifest["modules_dir"])


def run_fetcher(*args: str, keep_env: bool = False) -> subprocess.CompletedProcess[str]:
    """The fetcher with a PATH that has no apt-get, apt-cache or dpkg-deb.

    Without ``keep_env`` it ignores the PYQEMU_GUEST_* variables of the caller.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if keep_env or not k.startswith("PYQEMU_GUEST_")
    }
    env["PATH"] = ""
    return subprocess.run(
        [sys.executable, str(FETCH), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def read_cpio(blob: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """A newc reader written from the format's description (path: mode, data, rdev)."""
    entries: dict[str, tuple[int, bytes, tuple[int, int]]] = {}
    pos = 0
    while True:
        assert blob[pos : pos + 6] == b"070701", pos
        f = [int(blob[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        name = blob[pos + 110 : pos + 110 + f[11] - 1].decode()
        pos += 110 + f[11]
        pos += -pos % 4
        data = blob[pos : pos + f[6]]
        pos += f[6]
        pos += -pos % 4
        if name == "TRAILER!!!":
            assert pos == len(blob)
            return entries
        entries[name] = (f[1], data, (f[9], f[10]))


def test_host_sources_both_formats(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# a comment\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n"
        "deb-src http://mirror.example/debian bookworm main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb deb-src\nURIs: http://sec.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\nSigned-By: /s.gpg\n\n"
        "Types: deb\nURIs: http://off.example/debian\nSuites: trixie\nEnabled: no\n"
    )
    found = fetcher.host_sources(tmp_path)
    assert [(s.uri, s.suites, s.signed_by) for s in found] == [
        ("http://mirror.example/debian", ("bookworm",), "/k.gpg"),
        ("http://sec.example/debian-security", ("bookworm-security",), "/s.gpg"),
    ]
    mirror, security, _ = fetcher.debian_mirrors(None, None, tmp_path)
    assert (mirror, security) == (
        "http://mirror.example/debian",
        "http://sec.example/debian-security",
    )


def test_no_debian_sources_asks_for_a_mirror(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "deb http://archive.example/ubuntu noble main\n"
    )
    with pytest.raises(fetcher.FetchError, match="--mirror URI"):
        fetcher.debian_mirrors(None, None, tmp_path)


def test_warm_cache_runs_no_apt(guest: GuestFiles) -> None:
    # The same inputs as the fetch of the guest fixture (whatever the environment).
    result = run_fetcher("--dir", str(guest.kernel.parent), keep_env=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "up to date" in result.stdout
    assert "no download" in result.stdout


def test_no_apt_and_no_files_says_what_to_do(tmp_path: Path) -> None:
    result = run_fetcher("--dir", str(tmp_path / "guest"))
    assert result.returncode == 1
    assert "PYQEMU_GUEST_KERNEL" in result.stdout
    assert "--busybox" in result.stdout


def fake_image(release: str) -> bytes:
    r"""A small arm64 Image: a header and a kernel banner.

    The header's magic "ARM\x64" is at offset 0x38 (Documentation/arm64/booting.rst).
    """
    header = bytearray(64)
    header[0x38:0x3C] = b"ARM\x64"
    return bytes(header) + f"Linux version {release} (builder) #1 SMP\n".encode()


def test_local_kernel_busybox_and_modules(
    guest: GuestFiles, modules_dir: Path, tmp_path: Path
) -> None:
    # An Image.gz is accepted and unpacked; the release comes from the kernel's
    # banner; the initramfs gets the modules; a second run finds it all in place.
    image = fake_image("6.1.0-test-arm64")
    (tmp_path / "Image.gz").write_bytes(gzip.compress(image))
    out = tmp_path / "guest"
    args = (
        "--dir",
        str(out),
        "--kernel",
        str(tmp_path / "Image.gz"),
        "--busybox",
        str(guest.kernel.parent / "busybox"),
        "--modules",
        str(modules_dir),
    )
    result = run_fetcher(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "Image").read_bytes() == image
    manifest = json.loads((out / "guest.json").read_text())
    assert manifest["release"] == "6.1.0-test-arm64"
    files = read_cpio((out / "initramfs.cpio").read_bytes())
    assert files["etc/modules"][1] == b"evdev\ngpio_keys\n"
    again = run_fetcher(*args)
    assert "up to date" in again.stdout, again.stdout + again.stderr
    # Another kernel at the same path is noticed.
    (tmp_path / "Image.gz").write_bytes(gzip.compress(fake_image("6.1.0-other")))
    third = run_fetcher(*args)
    assert "up to date" not in third.stdout
    assert json.loads((out / "guest.json").read_text())["release"] == "6.1.0-other"


def test_local_inputs_are_checked(guest: GuestFiles, tmp_path: Path) -> None:
    busybox = str(guest.kernel.parent / "busybox")
    result = run_fetcher(
        "--dir", str(tmp_path), "--kernel", busybox, "--busybox", busybox
    )
    assert result.returncode == 1
    assert "is not an arm64 Linux Image" in result.stdout
    (tmp_path / "Image").write_bytes(fake_image("6.1.0-test"))
    image = str(tmp_path / "Image")
    result = run_fetcher(
        "--dir", str(tmp_path / "out"), "--kernel", image, "--busybox", image
    )
    assert result.returncode == 1
    assert "not a 64-bit little-endian ELF file" in result.stderr
    result = run_fetcher("--dir", str(tmp_path), "--kernel", image)
    assert result.returncode == 2
    assert "give both" in result.stdout


def test_initramfs_layout_and_reproducibility(
    guest: GuestFiles, modules_dir: Path
) -> None:
    blob = guest.initrd.read_bytes()
    files = read_cpio(blob)
    init_mode, init_data, _ = files["init"]
    assert init_mode == stat.S_IFREG | 0o755
    assert init_data == (SOURCE_ROOT / "scripts/guest/rootfs/init").read_bytes()
    assert files["dev/console"][0] == stat.S_IFCHR | 0o600
    assert files["dev/console"][2] == (5, 1)
    assert files["bin/sh"][:2] == (stat.S_IFLNK | 0o777, b"busybox")
    assert files["etc/acpi/PWRF/00000080"][0] == stat.S_IFREG | 0o755
    release = guest.release
    dep = files[f"lib/modules/{release}/modules.dep"][1].decode()
    assert dep == (
        "kernel/drivers/input/evdev.ko:\nkernel/drivers/input/keyboard/gpio_keys.ko:\n"
    )
    gpio_keys = (
        modules_dir / "kernel/drivers/input/keyboard/gpio_keys.ko"
    ).read_bytes()
    assert (
        files[f"lib/modules/{release}/kernel/drivers/input/keyboard/gpio_keys.ko"][1]
        == gpio_keys
    )
    # Same inputs, same bytes.
    again, _ = mkinitramfs.build(
        guest.kernel.parent / "busybox", modules_dir, list(fetcher.MODULES)
    )
    assert again == blob


def readelf_depends(path: Path) -> list[str]:
    out = subprocess.run(
        [READELF, "-p", ".modinfo", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        _, _, text = line.partition("]")
        text = text.strip()
        if text.startswith("depends="):
            return [d for d in text.removeprefix("depends=").split(",") if d]
    return []


def test_module_dependencies_match_readelf(modules_dir: Path) -> None:
    order, built_in, missing = mkinitramfs.collect_modules(
        modules_dir, ["virtio_net", "rtc-pl031", "no_such_module"]
    )
    assert built_in == ["rtc_pl031"]
    assert missing == ["no_such_module"]
    names = [m.name for m in order]
    assert names[-1] == "virtio_net"
    for m in order:
        want = readelf_depends(modules_dir / m.rel)
        assert list(m.deps) == want, m.name
        for dep in m.deps:
            assert names.index(dep) < names.index(m.name)
    assert len(order) >= 3  # virtio_net needs net_failover, which needs failover
