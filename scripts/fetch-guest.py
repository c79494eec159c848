#!/usr/bin/env python3
r"""Fetch pyqemu's Linux guest: Debian's arm64 kernel and busybox, and an initramfs.

Usage:
  fetch-guest.py [--dir DIR] [--refresh] [--kernel IMAGE] [--busybox BUSYBOX]
                 [--modules DIR] [--mirror URI] [--security-mirror URI]

Writes into DIR (default ``build/guest``):

- ``Image``: the kernel of Debian bookworm's ``linux-image-arm64`` (the
  ``linux-image-6.1.0-N-arm64`` package it depends on), unmodified;
- ``initramfs.cpio``: the initramfs ``scripts/mkinitramfs.py`` builds from Debian's
  ``busybox-static`` for arm64, the guest's ``/init`` (``scripts/guest/rootfs``) and
  the kernel modules the power button needs;
- ``guest.json``: what was fetched (packages, versions, SHA256 of every file used).

The packages come from Debian's archive through the host's own tools, without
touching the host's package configuration: ``apt-get`` runs with a private state,
cache and sources list under ``DIR/apt`` for the arm64 architecture only (the mirror
is the one the host's Debian sources use, or ``--mirror``), ``apt-get download``
fetches the two packages, and ``dpkg-deb -x`` unpacks them; nothing is installed.
Each ``.deb`` is checked against the SHA256 of the signed package index and each
unpacked file against the package's own ``md5sums``.

A second run with everything in place does no network access: it checks the SHA256
of the files against ``guest.json`` and rebuilds the initramfs only when its inputs
changed. ``--refresh`` asks the archive again (for a newer kernel).

Hosts without ``apt-get`` and ``dpkg-deb`` (or any host, to use other files) point
the build at an arm64 kernel ``Image`` (or ``Image.gz``) and a static arm64
busybox instead, with options or the environment variables ``make`` and the tests
pass through:

  PYQEMU_GUEST_KERNEL=/path/Image PYQEMU_GUEST_BUSYBOX=/path/busybox \\
  PYQEMU_GUEST_MODULES=/path/lib/modules/RELEASE   (optional) make run
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent
MKINITRAMFS = SRC / "scripts" / "mkinitramfs.py"
ROOTFS = SRC / "scripts" / "guest" / "rootfs"

SUITE = "bookworm"
KERNEL_META = "linux-image-arm64"
BUSYBOX = "busybox-static"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
# Debian's arm64 kernel builds the PL011, PL031, PL061, GICv2 and generic timer
# drivers in; the power button (gpio-keys) and its event device (evdev) are modules.
# The other names are loaded too when another kernel builds them as modules.
MODULES = ("rtc-pl031", "gpio-pl061", "evdev", "gpio_keys")
DEBIAN_SUITES: tuple[str, ...] = (
    "buster",
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "sid",
)
DEBIAN_SUITES += ("oldstable", "stable", "testing", "unstable")
ARM64_IMAGE_MAGIC = b"ARM\x64"
MANIFEST = "guest.json"
MANIFEST_VERSION = 1


class FetchError(Exception):
    """A failure the user can act on: the message says what to do."""


def say(msg: str) -> None:
    print(f"fetch-guest: {msg}", flush=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold DIR/.lock: parallel tests that fetch wait for the first one."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


#
# The host's Debian sources, for the mirror URIs and the keyring
#


@dataclass(frozen=True)
class Source:
    uri: str
    suites: tuple[str, ...]
    signed_by: str | None


def host_sources(root: Path = Path("/etc/apt")) -> list[Source]:
    """The ``deb`` entries of the host's sources.list and sources.list.d files."""
    found: list[Source] = []
    files = [root / "sources.list"]
    parts = root / "sources.list.d"
    if parts.is_dir():
        files += sorted(parts.glob("*.list")) + sorted(parts.glob("*.sources"))
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                key = ""
                for line in stanza.splitlines():
                    if line.startswith("#") or not line.strip():
                        continue
                    if line[0].isspace() and key:
                        fields[key] += " " + line.strip()
                        continue
                    key, _, value = line.partition(":")
                    key = key.strip().lower()
                    fields[key] = value.strip()
                if "deb" not in fields.get("types", "").split():
                    continue
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                signed = fields.get("signed-by")
                for uri in fields.get("uris", "").split():
                    found.append(
                        Source(uri, tuple(fields.get("suites", "").split()), signed)
                    )
        else:
            for line in text.splitlines():
                m = re.match(r"\s*deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)", line)
                if m is None:
                    continue
                opts = dict(o.partition("=")[::2] for o in (m.group(1) or "").split())
                found.append(Source(m.group(2), (m.group(3),), opts.get("signed-by")))
    return found


def debian_mirrors(
    mirror: str | None, security: str | None, root: Path = Path("/etc/apt")
) -> tuple[str, str | None, Path]:
    """The archive and security mirror URIs and the keyring that signs them."""
    main_src: Source | None = None
    sec_src: Source | None = None
    for src in host_sources(root):
        for suite in src.suites:
            base = suite.split("/")[0].split("-")[0]
            if base not in DEBIAN_SUITES:
                continue
            if suite.endswith(("-security", "/updates")):
                sec_src = sec_src or src
            else:
                main_src = main_src or src
    keyring = KEYRING
    for found in (main_src, sec_src):
        if found is not None and found.signed_by and Path(found.signed_by).is_file():
            keyring = Path(found.signed_by)
            break
    if mirror is None:
        if main_src is None:
            raise FetchError(
                "this host's apt sources name no Debian archive (an Ubuntu host?): "
                "give a Debian mirror with --mirror URI (or PYQEMU_DEBIAN_MIRROR), and "
                "its security archive with --security-mirror URI for the newest kernel"
            )
        mirror = main_src.uri
        if security is None and sec_src is not None:
            security = sec_src.uri
    if not keyring.is_file():
        raise FetchError(
            f"Debian's archive keyring {keyring} is missing: install the "
            "debian-archive-keyring package (apt-get install debian-archive-keyring)"
        )
    return mirror, security, keyring


#
# apt with a private state: arm64 only, the host's configuration untouched
#


def host_proxies() -> list[str]:
    """The host's ``Acquire::*::Proxy`` settings, carried over to the private apt."""
    if shutil.which("apt-config") is None:
        return []
    result = subprocess.run(
        ["apt-config", "dump", "Acquire"], capture_output=True, text=True, check=False
    )
    return [
        line
        for line in result.stdout.splitlines()
        if re.match(r'Acquire::[a-z]+::Proxy(::[^ ]+)? "', line)
    ]


class PrivateApt:
    """apt-get and apt-cache on a private configuration, state and cache.

    Its ``APT_CONFIG`` file is read before anything of the host's and replaces
    ``/etc/apt/apt.conf.d`` by an empty directory: only the host's proxy settings
    carry over.
    """

    def __init__(self, root: Path, mirror: str, security: str | None, keyring: Path):
        self.root = root
        for d in (
            "etc/apt.conf.d",
            "etc/preferences.d",
            "etc/sources.list.d",
            "state/lists/partial",
            "cache/archives/partial",
        ):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "state" / "status").touch()
        opts = f"[arch=arm64 signed-by={keyring}]"
        lines = [f"deb {opts} {mirror} {s} main\n" for s in (SUITE, f"{SUITE}-updates")]
        if security:
            lines.append(f"deb {opts} {security} {SUITE}-security main\n")
        (root / "etc" / "sources.list").write_text("".join(lines))
        conf = root / "apt.conf"
        settings = {
            "Dir::Etc::main": conf,
            "Dir::Etc::parts": root / "etc/apt.conf.d",
            "Dir::Etc::sourcelist": root / "etc/sources.list",
            "Dir::Etc::sourceparts": root / "etc/sources.list.d",
            "Dir::Etc::preferences": root / "etc/preferences",
            "Dir::Etc::preferencesparts": root / "etc/preferences.d",
            "Dir::State": root / "state",
            "Dir::State::status": root / "state/status",
            "Dir::Cache": root / "cache",
            "APT::Architecture": "arm64",
            "Acquire::Languages": "none",
            # The index is kept compressed and no source cache is made (60 MB less).
            "Acquire::GzipIndexes": "true",
            "Dir::Cache::srcpkgcache": "",
        }
        text = "".join(f'{k} "{v}";\n' for k, v in settings.items())
        text += 'APT::Architectures { "arm64"; };\n'
        text += "".join(f"{line}\n" for line in host_proxies())
        conf.write_text(text)
        self.env = dict(os.environ, APT_CONFIG=str(conf))

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> None:
        """Run an apt tool with its output (its progress) shown."""
        result = subprocess.run([tool, *args], cwd=cwd, env=self.env, check=False)
        if result.returncode != 0:
            raise FetchError(
                f"{tool} {' '.join(args)} failed (exit {result.returncode})"
            )

    def records(self, *packages: str) -> dict[str, dict[str, str]]:
        """The candidate versions' records in the (signed) package index."""
        result = subprocess.run(
            ["apt-cache", "show", "--no-all-versions", *packages],
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
        )
        records: dict[str, dict[str, str]] = {}
        for stanza in result.stdout.split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line and not line[0].isspace():
                    key, _, value = line.partition(":")
                    fields[key] = value.strip()
            if "Package" in fields:
                records.setdefault(fields["Package"], fields)
        for package in packages:
            if package not in records:
                raise FetchError(
                    f"{package} is not in the arm64 index of Debian {SUITE}: "
                    f"{result.stderr.strip() or 'no record'}"
                )
        return records


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    sha256: str
    size: int
    filename: str  # the .deb's name as apt-get download writes it

    def describe(self) -> dict[str, object]:
        return {
            "package": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
        }


def package(rec: dict[str, str]) -> Package:
    name, version = rec["Package"], rec["Version"]
    arch = rec.get("Architecture", "arm64")
    deb = f"{name}_{version.replace(':', '%3a')}_{arch}.deb"
    return Package(name, version, rec["SHA256"], int(rec["Size"]), deb)


def kernel_package(rec: dict[str, str]) -> str:
    """The linux-image-6.1.0-N-arm64 package that linux-image-arm64 depends on."""
    depends = rec.get("Depends", "")
    for alt in depends.split(","):
        name = alt.split("|")[0].split("(")[0].strip()
        if name.startswith("linux-image-"):
            return name
    raise FetchError(f"{KERNEL_META} depends on no linux-image package: {depends!r}")


def download(apt: PrivateApt, pkg: Package, debs: Path) -> Path:
    path = debs / pkg.filename
    if path.is_file() and sha256(path) == pkg.sha256:
        say(f"{pkg.filename}: already downloaded")
        return path
    say(f"downloading {pkg.name} {pkg.version} ({mb(pkg.size)})")
    args = ["download", f"{pkg.name}={pkg.version}"]
    if os.geteuid() == 0:
        # apt's download sandbox user cannot write to a directory of the build
        # tree; the SHA256 check below does not depend on it.
        args = ["-o", "APT::Sandbox::User=root", *args]
    apt.run("apt-get", *args, cwd=debs)
    if not path.is_file():
        raise FetchError(f"apt-get download did not write {path}")
    digest = sha256(path)
    if digest != pkg.sha256:
        path.unlink()
        raise FetchError(
            f"{pkg.filename}: SHA256 {digest} differs from the index's {pkg.sha256}"
        )
    say(f"{pkg.filename}: SHA256 matches the package index")
    return path


def unpack(deb: Path, dest: Path) -> Path:
    """``dpkg-deb -x`` into dest, then check the files against the package's md5sums."""
    stamp = dest / ".unpacked-from"
    digest = sha256(deb)
    if stamp.is_file() and stamp.read_text() == digest:
        say(f"{deb.name}: already unpacked and checked")
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
    control = subprocess.run(
        ["dpkg-deb", "--ctrl-tarfile", str(deb)], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(control)) as tar:
        member = tar.extractfile("./md5sums")
        if member is None:
            raise FetchError(f"{deb.name} has no md5sums to check its files against")
        sums = member.read().decode()
    count = 0
    for line in sums.splitlines():
        digest, _, name = line.partition("  ")
        h = hashlib.md5(usedforsecurity=False)
        with (tmp / name).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != digest:
            raise FetchError(f"{deb.name}: unpacked {name} differs from its md5sums")
        count += 1
    (tmp / stamp.name).write_text(digest)
    tmp.rename(dest)
    say(f"{deb.name}: unpacked {count} files, all match the package's md5sums")
    return dest


#
# Inputs given by the user instead of Debian's packages
#


def kernel_release(image: bytes) -> str:
    """The release in the kernel's banner ("Linux version 6.1.0-57-arm64 (...")."""
    for m in re.finditer(rb"Linux version ([0-9][^ \0]{0,63}) \(", image):
        return m.group(1).decode(errors="replace")
    return ""


def check_image(data: bytes, origin: str) -> bytes:
    """An arm64 Linux ``Image`` (uncompressed, as ``Image.gz`` is gunzipped)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data[0x38:0x3C] != ARM64_IMAGE_MAGIC:
        raise FetchError(
            f"{origin} is not an arm64 Linux Image (no 'ARM\\x64' magic at 0x38): "
            "give the kernel's arch/arm64/boot/Image or Image.gz"
        )
    return data


def install_file(data: bytes, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(dest)


def inputs_digest(busybox_sha: str, modules: Path | None) -> str:
    """What the initramfs depends on: its builder, the rootfs, busybox, the modules."""
    h = hashlib.sha256()
    h.update(MKINITRAMFS.read_bytes())
    for path in sorted(ROOTFS.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(ROOTFS).as_posix().encode())
            h.update(b"x" if os.access(path, os.X_OK) else b"-")
            h.update(path.read_bytes())
    h.update(busybox_sha.encode())
    h.update(str(modules).encode())
    h.update(",".join(MODULES).encode())
    return h.hexdigest()


def build_initramfs(out: Path, busybox: Path, modules: Path | None) -> None:
    cmd = [sys.executable, str(MKINITRAMFS), "--busybox", str(busybox)]
    if modules is not None:
        cmd += ["--modules", str(modules)]
        for m in MODULES:
            cmd += ["--module", m]
    cmd.append(str(out / "initramfs.cpio"))
    if subprocess.run(cmd, check=False).returncode != 0:
        raise FetchError("building the initramfs failed (see above)")


#
# The cache: guest.json
#


def load_manifest(out: Path) -> dict[str, object] | None:
    try:
        data = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def intact(out: Path, manifest: dict[str, object], *names: str) -> bool:
    """Whether the named files exist with the SHA256 that guest.json records."""
    files = manifest.get("files")
    if not isinstance(files, dict):
        return False
    for name in names:
        path = out / name
        if not path.is_file() or sha256(path) != files.get(name):
            say(f"{path} is missing or changed")
            return False
    return True


def write_manifest(out: Path, manifest: dict[str, object]) -> None:
    manifest["files"] = {
        name: sha256(out / name) for name in ("Image", "busybox", "initramfs.cpio")
    }
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(out / MANIFEST)


def summary(out: Path, manifest: dict[str, object]) -> None:
    packages = manifest.get("packages")
    for item in packages if isinstance(packages, list) else []:
        if isinstance(item, dict):
            say(f"  {item['package']} {item['version']} ({mb(int(item['size']))} .deb)")
    for name in ("Image", "initramfs.cpio"):
        say(f"  {out / name} ({mb((out / name).stat().st_size)})")


#
# The two ways: Debian's packages, or files the user gives
#


def fetch_debian(out: Path, args: argparse.Namespace) -> dict[str, object]:
    for tool in ("apt-get", "apt-cache", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise FetchError(
                f"{tool} is missing: this host cannot download Debian's packages.\n"
                "Point the build at an arm64 kernel and a static arm64 busybox:\n"
                "  scripts/fetch-guest.py --kernel IMAGE --busybox BUSYBOX "
                "[--modules lib/modules/RELEASE]\n"
                "or set PYQEMU_GUEST_KERNEL, PYQEMU_GUEST_BUSYBOX (and "
                "PYQEMU_GUEST_MODULES) for make run and make check"
            )
    mirror, security, keyring = debian_mirrors(args.mirror, args.security_mirror)
    apt = PrivateApt(out / "apt", mirror, security, keyring)
    t = time.monotonic()
    say(f"[1/4] updating the arm64 package index of Debian {SUITE} (in {apt.root})")
    apt.run("apt-get", "update")
    say(f"      {time.monotonic() - t:.1f} s")
    meta = apt.records(KERNEL_META)[KERNEL_META]
    kernel_name = kernel_package(meta)
    recs = apt.records(kernel_name, BUSYBOX)
    kernel, busybox = package(recs[kernel_name]), package(recs[BUSYBOX])
    say(f"      {KERNEL_META} {meta['Version']} -> {kernel.name} {kernel.version}")
    debs = out / "debs"
    debs.mkdir(exist_ok=True)
    t = time.monotonic()
    say("[2/4] downloading the packages")
    kdeb = download(apt, kernel, debs)
    bdeb = download(apt, busybox, debs)
    for stale in debs.glob("*.deb"):
        if stale not in (kdeb, bdeb):
            stale.unlink()
    say(f"      {time.monotonic() - t:.1f} s")
    t = time.monotonic()
    say("[3/4] unpacking and checking the files (dpkg-deb -x)")
    kdir = unpack(kdeb, out / "pkgs" / kernel.name)
    bdir = unpack(bdeb, out / "pkgs" / busybox.name)
    for stale in (out / "pkgs").iterdir():
        if stale.name not in (kernel.name, busybox.name):
            shutil.rmtree(stale)
    images = sorted((kdir / "boot").glob("vmlinuz-*"))
    if len(images) != 1:
        raise FetchError(
            f"{kernel.name} holds {len(images)} boot/vmlinuz-* files, not one"
        )
    release = images[0].name.removeprefix("vmlinuz-")
    image = check_image(images[0].read_bytes(), str(images[0]))
    if kernel_release(image) != release:
        raise FetchError(
            f"{images[0].name} says it is release {kernel_release(image)!r}, "
            f"not {release!r}"
        )
    install_file(image, out / "Image")
    install_file((bdir / "bin" / "busybox").read_bytes(), out / "busybox")
    modules = kdir / "lib" / "modules" / release
    say(f"      {time.monotonic() - t:.1f} s")
    return {
        "source": "debian",
        "suite": SUITE,
        "release": release,
        "packages": [kernel.describe(), busybox.describe()],
        "modules_dir": str(modules),
    }


def fetch_local(
    out: Path, kernel: Path, busybox: Path, modules: Path | None
) -> dict[str, object]:
    image = check_image(kernel.read_bytes(), str(kernel))
    install_file(image, out / "Image")
    install_file(busybox.read_bytes(), out / "busybox")
    return {
        "source": "local",
        "release": kernel_release(image) or (modules.name if modules else ""),
        "packages": [],
        "modules_dir": str(modules.resolve()) if modules else None,
        **local_inputs(kernel, busybox, modules),
    }


def local_inputs(kernel: Path, busybox: Path, modules: Path | None) -> dict[str, str]:
    """What identifies the files given with --kernel, --busybox and --modules."""
    for what, path in (("kernel", kernel), ("busybox", busybox)):
        if not path.is_file():
            raise FetchError(f"the {what} {path} does not exist")
    if modules is not None and not modules.is_dir():
        raise FetchError(f"the modules directory {modules} does not exist")
    return {
        "kernel": str(kernel.resolve()),
        "kernel_sha256": sha256(kernel),
        "busybox_from": str(busybox.resolve()),
        "busybox_sha256": sha256(busybox),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Fetch and check the Linux guest (kernel and initramfs) of pyqemu.",
        epilog="Environment: PYQEMU_GUEST_KERNEL, PYQEMU_GUEST_BUSYBOX, "
        "PYQEMU_GUEST_MODULES (as --kernel, --busybox, --modules), "
        "PYQEMU_DEBIAN_MIRROR, PYQEMU_DEBIAN_SECURITY_MIRROR (as --mirror, "
        "--security-mirror).",
    )
    env = os.environ.get
    parser.add_argument(
        "--dir",
        type=Path,
        default=SRC / "build" / "guest",
        help="the cache and output directory (default: build/guest)",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="ask the archive for newer packages even with a warm cache",
    )
    parser.add_argument(
        "--kernel",
        type=Path,
        default=env("PYQEMU_GUEST_KERNEL"),
        help="use this arm64 Image (or Image.gz) instead of Debian's",
    )
    parser.add_argument(
        "--busybox",
        type=Path,
        default=env("PYQEMU_GUEST_BUSYBOX"),
        help="use this static arm64 busybox instead of Debian's",
    )
    parser.add_argument(
        "--modules",
        type=Path,
        default=env("PYQEMU_GUEST_MODULES"),
        help="the lib/modules/RELEASE directory of --kernel",
    )
    parser.add_argument(
        "--mirror",
        default=env("PYQEMU_DEBIAN_MIRROR"),
        help="a Debian archive URI (default: the host's apt sources)",
    )
    parser.add_argument(
        "--security-mirror",
        default=env("PYQEMU_DEBIAN_SECURITY_MIRROR"),
        help="a Debian security archive URI (default: the host's)",
    )
    args = parser.parse_args(argv)
    out: Path = args.dir.resolve()
    local = args.kernel is not None or args.busybox is not None
    if local and (args.kernel is None or args.busybox is None):
        say(
            "error: --kernel and --busybox (PYQEMU_GUEST_KERNEL, PYQEMU_GUEST_BUSYBOX) "
            "go together: give both"
        )
        return 2
    start = time.monotonic()
    try:
        with locked(out):
            old = load_manifest(out)
            want_source = "local" if local else "debian"
            fresh = (
                old is not None
                and old.get("version") == MANIFEST_VERSION
                and old.get("source") == want_source
                and not args.refresh
                and (
                    not local
                    or (
                        all(
                            old.get(k) == v
                            for k, v in local_inputs(
                                args.kernel, args.busybox, args.modules
                            ).items()
                        )
                        and old.get("modules_dir")
                        == (str(args.modules.resolve()) if args.modules else None)
                    )
                )
                and intact(out, old, "Image", "busybox")
            )
            modules_dir = old.get("modules_dir") if old is not None else None
            modules = Path(modules_dir) if isinstance(modules_dir, str) else None
            if old is not None and fresh and (modules is None or modules.is_dir()):
                digest = inputs_digest(sha256(out / "busybox"), modules)
                if old.get("initramfs_inputs") == digest and intact(
                    out, old, "initramfs.cpio"
                ):
                    say(f"guest up to date in {out} (no download)")
                    summary(out, old)
                    return 0
                say("[4/4] rebuilding the initramfs (missing, or its inputs changed)")
                build_initramfs(out, out / "busybox", modules)
                old["initramfs_inputs"] = digest
                write_manifest(out, old)
                summary(out, old)
                return 0
            if local:
                manifest = fetch_local(out, args.kernel, args.busybox, args.modules)
            else:
                manifest = fetch_debian(out, args)
            modules_dir = manifest.get("modules_dir")
            modules = Path(modules_dir) if isinstance(modules_dir, str) else None
            t = time.monotonic()
            say("[4/4] building the initramfs")
            build_initramfs(out, out / "busybox", modules)
            say(f"      {time.monotonic() - t:.1f} s")
            manifest["version"] = MANIFEST_VERSION
            manifest["initramfs_inputs"] = inputs_digest(
                sha256(out / "busybox"), modules
            )
            write_manifest(out, manifest)
            say(f"guest ready in {out} ({time.monotonic() - start:.1f} s)")
            summary(out, manifest)
    except FetchError as e:
        say(f"error: {e}")
        return 1
    except (OSError, subprocess.CalledProcessError) as e:
        say(f"error: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
