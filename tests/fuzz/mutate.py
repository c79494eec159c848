"""Mutations shared by the targets: integers at their edges, bytes, JSON values.

Random bytes alone rarely get past a parser's first check; these mutators
aim at the values parsers get wrong: the edges of each integer width, lengths
one off, negative numbers, huge counts, deep nesting, long strings.
"""

from __future__ import annotations

import json
import random
import re
from typing import Final

__all__ = [
    "interesting_int",
    "mutate_bytes",
    "mutate_json",
    "random_bytes",
    "splice",
]

_BIG: Final = "<{} digits>"
_BIG_TEXT: Final = re.compile(r'"<(\d+) digits>"')
_EDGES: Final = (0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 100, 127, 128, 255, 256)


def interesting_int(rng: random.Random, width: int, current: int | None = None) -> int:
    """An integer that fits ``width`` bytes, chosen among the ones bugs hide at.

    >>> r = random.Random(1)
    >>> all(0 <= interesting_int(r, 2) < 1 << 16 for _ in range(100))
    True
    """
    bits = width * 8
    top = (1 << bits) - 1
    choice = rng.randrange(10)
    if choice == 0:
        value = top  # -1
    elif choice == 1:
        value = 1 << (bits - 1)  # the most negative
    elif choice == 2:
        value = (1 << (bits - 1)) - 1  # the most positive
    elif choice == 3 and current is not None:
        value = current + rng.choice((-1, 1, -2, 2, 4096, -4096))
    elif choice == 4 and current is not None:
        value = current ^ (1 << rng.randrange(bits))
    elif choice == 5:
        value = -rng.choice(_EDGES)
    elif choice == 6:
        value = rng.getrandbits(bits)
    elif choice == 7:
        value = 1 << rng.randrange(bits)
    else:
        value = rng.choice(_EDGES)
    return value & top


def random_bytes(rng: random.Random, n: int) -> bytes:
    """``n`` bytes, random or from a small alphabet of structure bytes."""
    if rng.random() < 0.3:
        return bytes(rng.choice(b"\x00\x01\x04\x05\x06\x07\x7e\xff") for _ in range(n))
    return rng.randbytes(n)


def mutate_bytes(rng: random.Random, data: bytes, rounds: int = 1) -> bytes:
    """Classic byte-level mutations: flips, edge values, deletes, inserts."""
    buf = bytearray(data)
    for _ in range(rounds):
        choice = rng.randrange(8)
        if not buf:
            buf += random_bytes(rng, rng.randint(1, 16))
            continue
        at = rng.randrange(len(buf))
        if choice == 0:
            buf[at] ^= 1 << rng.randrange(8)
        elif choice == 1:
            buf[at] = rng.choice((0, 1, 0x7F, 0x80, 0xFF))
        elif choice == 2:
            width = rng.choice((2, 4, 8))
            value = interesting_int(rng, width)
            buf[at : at + width] = value.to_bytes(width, rng.choice(("big", "little")))
        elif choice == 3:
            del buf[at : at + rng.randint(1, 64)]
        elif choice == 4:
            buf[at:at] = random_bytes(rng, rng.randint(1, 64))
        elif choice == 5:
            end = min(len(buf), at + rng.randint(1, 256))
            buf[at:at] = buf[at:end]  # duplicate a run
        elif choice == 6:
            del buf[at:]  # truncate
        else:
            buf[at] = rng.randrange(256)
    return bytes(buf)


def splice(rng: random.Random, a: bytes, b: bytes) -> bytes:
    """The start of ``a`` and the end of ``b`` (or the reverse)."""
    if not a or not b:
        return a or b
    i = rng.randrange(len(a))
    j = rng.randrange(len(b))
    return a[:i] + b[j:]


def _interesting_json(rng: random.Random) -> object:
    choice = rng.randrange(14)
    if choice == 0:
        return -rng.choice(_EDGES) - 1
    if choice == 1:
        return 10 ** rng.randint(9, 30)
    if choice == 2:
        return _BIG.format(rng.choice((19, 20, 400, 4301, 5000)))
    if choice == 3:
        return rng.choice((True, False, None))
    if choice == 4:
        return rng.choice((0.5, -0.0, 1e308, float("inf")))
    if choice == 5:
        return "x" * rng.choice((0, 1, 255, 256, 4096, 70000))
    if choice == 6:
        return rng.choice(("", "struct", "uint8", "capability", "bool", "nullptr"))
    if choice == 7:
        return []
    if choice == 8:
        return {}
    if choice == 9:
        depth = rng.choice((10, 100, 1000, 3000))
        value: object = 0
        for _ in range(depth):
            value = [value]
        return value
    if choice == 10:
        return [rng.randrange(256) for _ in range(rng.randint(1, 20))]
    if choice == 11:
        return 1 << rng.choice((31, 32, 63, 64))
    return rng.choice(_EDGES)


def _nodes(value: object, out: list[tuple[object, object]], depth: int = 0) -> None:
    """(container, key) of every node, containers first; bounded depth."""
    if depth > 40:
        return
    if isinstance(value, dict):
        for key, child in value.items():
            out.append((value, key))
            _nodes(child, out, depth + 1)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out.append((value, i))
            _nodes(child, out, depth + 1)


def mutate_json(rng: random.Random, value: object, rounds: int = 1) -> object:
    """Change ``value`` (parsed JSON) in place at random nodes; return it."""
    for _ in range(rounds):
        nodes: list[tuple[object, object]] = []
        _nodes(value, nodes)
        if not nodes:
            return _interesting_json(rng)
        container, key = rng.choice(nodes)
        choice = rng.randrange(6)
        if isinstance(container, dict):
            assert isinstance(key, str)
            if choice == 0:
                del container[key]
            elif choice == 1:
                container[key + rng.choice(("", "_", "x"))] = _interesting_json(rng)
            else:
                container[key] = _mutate_leaf(rng, container[key])
        elif isinstance(container, list):
            assert isinstance(key, int)
            if choice == 0:
                del container[key]
            elif choice == 1:
                container.insert(key, container[key])
            elif choice == 2:
                container.extend([container[key]] * rng.choice((1, 10, 1000)))
            else:
                container[key] = _mutate_leaf(rng, container[key])
    return value


def _mutate_leaf(rng: random.Random, leaf: object) -> object:
    if isinstance(leaf, bool) or leaf is None:
        return _interesting_json(rng)
    if isinstance(leaf, int) and rng.random() < 0.6:
        return rng.choice(
            (leaf + 1, leaf - 1, -leaf, leaf * 1000, -1, 0, 1 << 31, 10**9)
        )
    if isinstance(leaf, str) and rng.random() < 0.5:
        return rng.choice((leaf + leaf, leaf[:-1], leaf.upper(), "", leaf + "\x00"))
    return _interesting_json(rng)


def dumps(value: object) -> bytes:
    """JSON text of ``value``, even when nested past Python's recursion limit.

    Strings made by ``_BIG`` become integers of that many digits (Python
    cannot hold those as ``int``).

    >>> dumps([_BIG.format(3), "x"])
    b'[999, "x"]'
    """
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):
        return b"[" * 3000 + b"]" * 3000
    return _BIG_TEXT.sub(lambda m: "9" * int(m.group(1)), text).encode()
