"""The ELF reader behind :func:`hw.core.loader.load_elf` (QEMU's ``elf_ops.h``).

It reads the file with ``pyelftools``, which :mod:`hw.core.loader` imports
only when a guest image is an ELF file: the package takes longer to import
than the rest of the emulator's start.
"""

from __future__ import annotations

import io
import struct
from typing import Final

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.elf.elffile import ELFFile

from hw.core.loader import (
    ELF_LOAD_FAILED,
    ELF_LOAD_TOO_BIG,
    ELF_LOAD_WRONG_ARCH,
    ELF_LOAD_WRONG_ENDIAN,
    EM_AARCH64,
    EM_ARM,
    ElfImage,
    ElfLoadError,
    ElfSegment,
)

__all__ = ["read_elf"]

_PT_LOAD: Final = "PT_LOAD"
_PF_X: Final = 1
_MACHINE_NAMES: Final = {EM_ARM: "EM_ARM", EM_AARCH64: "EM_AARCH64"}


def read_elf(data: bytes, elf_machine: int) -> ElfImage:
    """Read an ELF file that has the ELF magic (see :func:`~hw.core.loader.load_elf`).

    Raises:
        ElfLoadError: not an ELF file, a file for another machine or word
            size, a big-endian file, or a malformed file.
    """
    try:
        elf = ELFFile(io.BytesIO(data))
        machine = elf.header["e_machine"]
        want = _MACHINE_NAMES.get(elf_machine, str(elf_machine))
        if machine != want:
            raise ElfLoadError(
                ELF_LOAD_WRONG_ARCH,
                f"e_machine is {machine}, this board needs {want}",
            )
        if (elf.elfclass == 64) != (elf_machine == EM_AARCH64):
            raise ElfLoadError(
                ELF_LOAD_WRONG_ARCH, f"a {elf.elfclass}-bit ELF file for {want}"
            )
        if not elf.little_endian:
            raise ElfLoadError(
                ELF_LOAD_WRONG_ENDIAN, "big-endian; the board runs little-endian"
            )
        entry: int = elf.header["e_entry"]
        final_entry = entry
        segments: list[ElfSegment] = []
        low, high, total = 1 << 64, 0, 0
        for i, seg in enumerate(elf.iter_segments()):
            if seg["p_type"] != _PT_LOAD:
                continue
            paddr: int = seg["p_paddr"]
            vaddr: int = seg["p_vaddr"]
            filesz: int = seg["p_filesz"]
            memsz: int = seg["p_memsz"]
            if filesz > memsz:
                raise ElfLoadError(
                    ELF_LOAD_FAILED,
                    f"segment {i} has p_filesz 0x{filesz:x} > p_memsz 0x{memsz:x}",
                )
            body = seg.data()
            if len(body) != filesz:
                raise ElfLoadError(
                    ELF_LOAD_FAILED,
                    f"segment {i} reaches past the end of the file "
                    f"(0x{filesz:x} bytes at offset 0x{seg['p_offset']:x})",
                )
            if paddr + memsz > 1 << 64:
                raise ElfLoadError(ELF_LOAD_TOO_BIG, f"segment {i} ends past 2**64")
            if (
                vaddr != paddr
                and vaddr <= entry < vaddr + filesz
                and seg["p_flags"] & _PF_X
            ):
                final_entry = entry - vaddr + paddr
            if memsz:
                segments.append(ElfSegment(i, paddr, body, memsz))
            total += memsz
            low = min(low, paddr)
            high = max(high, paddr + memsz)
    except (ELFError, ELFParseError) as e:
        raise ElfLoadError(ELF_LOAD_FAILED, f"malformed ELF file: {e}") from None
    except (OverflowError, ValueError, struct.error, IndexError, KeyError) as e:
        # pyelftools trusts the header's offsets and sizes: a corrupt one
        # surfaces as one of these.
        raise ElfLoadError(
            ELF_LOAD_FAILED, f"malformed ELF file: {type(e).__name__}: {e}"
        ) from None
    if not segments:
        raise ElfLoadError(ELF_LOAD_FAILED, "no loadable segment")
    return ElfImage(final_entry, low, high, total, tuple(segments))
