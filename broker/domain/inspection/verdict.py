"""What the validator concludes about one object, as data."""

from __future__ import annotations

from dataclasses import dataclass

from broker.common.reasons import Reason, reason


@dataclass(frozen=True)
class Declared:
    """What the client said when it asked to upload."""

    filename: str
    content_type: str
    size: int | None  # None when the client declared no size


@dataclass(frozen=True)
class Finding:
    """Why a check refuses a file: a reason code, and a detail for logs and records."""

    code: str
    detail: str = ""
    message: str | None = None  # what to tell the uploader, instead of the code's sentence


@dataclass(frozen=True)
class Verdict:
    """The validator's judgement of one stored object."""

    accepted: bool
    content_type: str | None
    size: int
    reason: Reason | None = None
    detail: str = ""
    sha256: str | None = None
    # Each part's SHA-256 (hex) when asked for: what a copy in parts must reproduce.
    part_sha256: tuple[str, ...] | None = None
    # What judged it: the inspection rules' version, and whether (and by what) it was
    # scanned for malware.
    judged_by: str = ""

    @classmethod
    def accept(cls, content_type: str, size: int, sha256: str | None = None,
               part_sha256: tuple[str, ...] | None = None, detail: str = "") -> Verdict:
        return cls(True, content_type, size, detail=detail, sha256=sha256,
                   part_sha256=part_sha256)

    @classmethod
    def reject(cls, code: str, size: int, content_type: str | None = None,
               detail: str = "", message: str | None = None, judged_by: str = "") -> Verdict:
        """A refusal; `message` says it for this file, instead of the code's sentence."""
        found = reason(code)
        return cls(False, content_type, size,
                   Reason(code, message) if message else found, detail, judged_by=judged_by)

    @classmethod
    def from_finding(cls, finding: Finding, size: int, content_type: str | None) -> Verdict:
        return cls.reject(finding.code, size, content_type, finding.detail, finding.message)
