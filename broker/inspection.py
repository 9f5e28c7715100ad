"""What the stored bytes are, and whether the profile accepts them.

Reads only a bounded head of the object. Expected outcomes are verdicts
(values with a reason code), not exceptions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import magic

from broker.profiles import Profile, normalize_type
from broker.reasons import Reason, reason

# libmagic needs at least a couple of KiB; 64 KiB covers every container header we judge.
HEAD_BYTES = 64 * 1024

# Types libmagic names differently from the name clients and profiles use.
# Key: the declared type; value: detections that are the same thing.
SAME_TYPE = {
    "text/csv": frozenset({"text/plain", "application/csv"}),
}

_local = threading.local()


def sniff(head: bytes) -> str:
    """The MIME type libmagic reads from the first bytes of a file."""
    detector = getattr(_local, "magic", None)
    if detector is None:
        # One magic.Magic object is not thread-safe: one per thread.
        detector = _local.magic = magic.Magic(mime=True)
    return normalize_type(detector.from_buffer(head))


@dataclass(frozen=True)
class Declared:
    """What the client said when it asked to upload."""

    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class Verdict:
    """The validator's judgement of one stored object."""

    accepted: bool
    content_type: str | None
    size: int
    reason: Reason | None = None

    @classmethod
    def accept(cls, content_type: str, size: int) -> Verdict:
        return cls(True, content_type, size)

    @classmethod
    def reject(cls, code: str, size: int, content_type: str | None = None) -> Verdict:
        return cls(False, content_type, size, reason(code))


def effective_type(detected: str, declared: str) -> str:
    """The detected type, under the declared name when the two are the same thing."""
    declared = normalize_type(declared)
    return declared if detected in SAME_TYPE.get(declared, ()) else detected


def judge(profile: Profile, declared: Declared, head: bytes, size: int) -> Verdict:
    """Accept or reject an object from its real size and its first bytes."""
    size_problem = profile.size_problem(size)
    if size_problem in ("empty", "too_large"):
        return Verdict.reject(size_problem, size)
    if size != declared.size:
        return Verdict.reject("size_mismatch", size)
    if size_problem is not None:
        return Verdict.reject(size_problem, size)
    detected = effective_type(sniff(head), declared.content_type)
    if detected != normalize_type(declared.content_type):
        return Verdict.reject("type_mismatch", size, detected)
    if not profile.allows_type(detected):
        return Verdict.reject("type_not_allowed", size, detected)
    if not profile.allows_extension(detected, declared.filename):
        return Verdict.reject("extension_mismatch", size, detected)
    return Verdict.accept(detected, size)
