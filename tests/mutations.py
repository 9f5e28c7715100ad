"""Hostile variations of a valid file: what a fuzzer or a broken network makes of it.

Each mutation is a pure function of the bytes and a seeded random generator, so a
failing case is reproduced by its seed alone.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

Mutation = Callable[[bytes, random.Random], bytes]


def flip_bits(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(out))
        out[at] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def _span(data: bytes, rng: random.Random) -> tuple[int, int]:
    start = rng.randrange(len(data))
    return start, min(len(data), start + rng.randint(1, max(1, len(data) // 4)))


def duplicate_chunk(data: bytes, rng: random.Random) -> bytes:
    start, end = _span(data, rng)
    return data[:end] + data[start:end] + data[end:]


def reorder_chunks(data: bytes, rng: random.Random) -> bytes:
    a, b = sorted(rng.sample(range(len(data) + 1), 2)) if len(data) > 2 else (0, len(data))
    c = rng.randint(b, len(data))
    return data[:a] + data[b:c] + data[a:b] + data[c:]


def bogus_length(data: bytes, rng: random.Random) -> bytes:
    """A length or offset field overwritten with an absurd value."""
    value = rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFF, len(data) * 1000])
    layout = rng.choice([">I", "<I", ">H", "<H"])
    packed = struct.pack(layout, value & (0xFFFF if layout.endswith("H") else 0xFFFFFFFF))
    at = rng.randrange(max(1, len(data) - len(packed)))
    return data[:at] + packed + data[at + len(packed):]


def insert_junk(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    junk = rng.choice([b"\x00" * 64, b"\xff" * 64, rng.randbytes(rng.randint(1, 512)),
                       b"<?php system($_GET[0]); ?>", b"=cmd|' /C calc'!A0,"])
    return data[:at] + junk + data[at:]


MUTATIONS: tuple[Mutation, ...] = (flip_bits, truncate, duplicate_chunk, reorder_chunks,
                                   bogus_length, insert_junk)


def mutants(data: bytes, seed: int, count: int) -> list[tuple[str, bytes]]:
    """`count` mutations of `data`, each named by its mutation; stacked now and then."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        mutated, names = data, []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            if not mutated:
                break
            mutation = rng.choice(MUTATIONS)
            mutated = mutation(mutated, rng)
            names.append(mutation.__name__)
        out.append(("+".join(names), mutated))
    return out
