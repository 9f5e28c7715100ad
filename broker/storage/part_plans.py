"""Planning a multipart upload's parts, and checking what storage holds against the plan.

S3's rules: every part but the last is 5 MiB to 5 GiB, at most 10,000 parts, objects
up to 5 TiB. A declared size gets a plan (every part `part_size` bytes, the last the
rest), and each part URL is signed for its exact length. Without a declared size
(Uppy's Companion protocol) the client sizes its parts and only the profile's maximum
bounds them: a part number it cannot reach is not signed, and a total over it is not
completed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIB = 1024 * 1024
MIN_PART = 5 * MIB
MAX_PART = 5 * 1024 * MIB
MAX_PARTS = 10_000
MAX_OBJECT = 5 * 1024 * 1024 * MIB
BATCH_MAX = 100  # part URLs per request


@dataclass(frozen=True)
class StoredPart:
    """A part storage holds (from ListParts)."""

    part_number: int
    size: int
    etag: str
    checksum_sha256: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"part_number": self.part_number, "size": self.size, "etag": self.etag}


@dataclass(frozen=True)
class PartPlan:
    """`size` bytes in `part_count` parts of `part_size` (the last holds the rest)."""

    size: int
    part_size: int

    @property
    def part_count(self) -> int:
        return max(1, math.ceil(self.size / self.part_size))

    def length_of(self, part_number: int) -> int:
        if part_number < self.part_count:
            return self.part_size
        return self.size - self.part_size * (self.part_count - 1)


def plan_parts(size: int, preferred: int) -> PartPlan:
    """Parts of `preferred` bytes, larger when 10,000 of them would not hold the file
    (rounded up to a whole MiB)."""
    if size > MAX_OBJECT:
        raise ValueError(f"{size} bytes is over storage's {MAX_OBJECT}-byte object limit")
    needed = math.ceil(size / MAX_PARTS)
    part_size = max(preferred, MIN_PART, math.ceil(needed / MIB) * MIB)
    return PartPlan(size, min(part_size, MAX_PART))


def highest_part_number(max_size: int) -> int:
    """The highest part number an object of at most `max_size` can use, when every part
    but the last holds at least 5 MiB."""
    return min(MAX_PARTS, max_size // MIN_PART + 1)


@dataclass(frozen=True)
class PartProblem:
    """Why what storage holds cannot be completed as planned."""

    code: str  # parts_missing, part_size_mismatch
    message: str


def check_against_plan(plan: PartPlan, stored: list[StoredPart]) -> PartProblem | None:
    """Every planned part present with its planned length, nothing else."""
    by_number = {p.part_number: p for p in stored}
    missing = [n for n in range(1, plan.part_count + 1) if n not in by_number]
    if missing:
        return PartProblem("parts_missing", f"Storage does not have part(s) "
                           f"{_numbers(missing)} of {plan.part_count}; send them, then "
                           "complete again.")
    wrong = [p.part_number for p in stored if p.part_number > plan.part_count
             or p.size != plan.length_of(p.part_number)]
    if wrong:
        return PartProblem("part_size_mismatch", f"Part(s) {_numbers(wrong)} do not have "
                           "their planned size; send them again, then complete again.")
    return None


def check_unplanned(stored: list[StoredPart]) -> PartProblem | None:
    """Parts a client planned itself: contiguous from 1, every one but the last at
    least 5 MiB (the total is the profile's to judge)."""
    numbers = sorted(p.part_number for p in stored)
    if not numbers or numbers != list(range(1, len(numbers) + 1)):
        present = set(numbers)
        gaps = [n for n in range(1, (numbers[-1] if numbers else 1) + 1) if n not in present]
        return PartProblem("parts_missing", f"Storage does not have part(s) {_numbers(gaps)}.")
    small = [p.part_number for p in stored if p.part_number < len(numbers) and p.size < MIN_PART]
    if small:
        return PartProblem("part_size_mismatch", f"Part(s) {_numbers(small)} are under the "
                           "5 MiB every part but the last must hold.")
    return None


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:10])
    return shown + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")
