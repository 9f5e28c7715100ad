"""Judging a stored object: one entry point, `inspect`, and its verdict.

Order: real size against declaration and profile; libmagic on the first
64 KiB; detected type against the declaration, the profile and the file name's
extension; a deep check for the detected type (images, SVG and XML, PDF, Office
Open XML, text and CSV); last, the malware scan, which also hashes the stream.
Every step reads bounded pieces or streams: memory does not grow with the file.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO, Protocol

from broker.common.errors import StorageError
from broker.domain import type_names
from broker.domain.inspection.heif import HEIF_TYPES, walk_heif
from broker.domain.inspection.images import markup_in, walk_image
from broker.domain.inspection.ooxml import OOXML_TYPES, check_ooxml
from broker.domain.inspection.pdf import check_pdf
from broker.domain.inspection.scanner import Scanner, ScannerUnavailable, ScanResult
from broker.domain.inspection.sniff import HEAD_BYTES, effective_type, sniff
from broker.domain.inspection.structure import by_structure
from broker.domain.inspection.svg import check_svg, check_xml, sanitized_svg
from broker.domain.inspection.text import neutralized_csv, scan_text
from broker.domain.inspection.verdict import Declared, Finding, Verdict
from broker.domain.inspection.video import VIDEO_TYPES, check_video
from broker.domain.pictures import (
    DECODERS,
    DEFAULT_LIMITS,
    PictureFile,
    PictureJob,
    PictureLimits,
    PicturesUnavailable,
    rendered,
)
from broker.domain.profiles import FORBIDDEN_TYPES, Profile, normalize_type
from broker.storage import HashedStream, ObjectChanged

__all__ = ["HEAD_BYTES", "RULES_VERSION", "Declared", "Inspection", "ObjectSource",
           "PictureLimits", "ScannerUnavailable", "Served", "Verdict", "inspect",
           "served_for_release", "stale"]

SVG = "image/svg+xml"
XML_TYPES = frozenset({"text/xml", "application/xml"})
# What an encrypted Office file looks like to libmagic: an OLE container, not a zip.
_ENCRYPTED_OFFICE = frozenset({"application/x-ole-storage", "application/encrypted",
                               "application/cdfv2-encrypted", "application/cdfv2"})

log = logging.getLogger(__name__)
# The inspection rules' version: changed whenever a check judges some file differently,
# so stored uploads judged by older rules can be found and judged again.
RULES_VERSION = "2026.12.05"
# Failures of the services a check reads through: no verdict, retry later.
OUTAGES = (StorageError, ObjectChanged, ScannerUnavailable, PicturesUnavailable)

# Produces the bytes to serve from the judged object (neutralised, sanitized, re-encoded).
Rewrite = Callable[["ObjectSource"], Iterator[bytes]]


class ObjectSource(Protocol):
    """Read access to one stored object, in the three shapes the checks need."""

    @property
    def size(self) -> int: ...

    def head(self, length: int) -> bytes: ...

    def open(self) -> BinaryIO: ...

    def chunks(self) -> Iterable[bytes]: ...


@dataclass(frozen=True)
class Served:
    """What is served for an accepted file besides or instead of its own bytes: a
    rewrite of them (neutralised, sanitized, re-encoded; its type when that differs),
    and renditions made from its pixels."""

    rewrite: Rewrite | None = None
    content_type: str | None = None
    renditions: tuple[PictureFile, ...] = ()


@dataclass(frozen=True)
class Inspection:
    """A verdict, and for accepted files what is served made from them."""

    verdict: Verdict
    served: Served = Served()

    @property
    def rewrite(self) -> Rewrite | None:
        return self.served.rewrite


def inspect(source: ObjectSource, profile: Profile, declared: Declared,
            scanner: Scanner, part_size: int | None = None,
            pictures: PictureLimits = DEFAULT_LIMITS) -> Inspection:
    """Judge the object. ScannerUnavailable means: no verdict yet, try again later.
    With `part_size`, an accepted verdict carries each part's SHA-256 too. The verdict
    says what judged it (`judged_by`)."""
    inspection = _judged(source, profile, declared, scanner, part_size, pictures)
    verdict = inspection.verdict
    judged_by = f"rules {RULES_VERSION}; " + (verdict.judged_by or "not scanned")
    return replace(inspection, verdict=replace(verdict, judged_by=judged_by))


def _judged(source: ObjectSource, profile: Profile, declared: Declared,
            scanner: Scanner, part_size: int | None, pictures: PictureLimits
            ) -> Inspection:
    size = source.size
    if problem := _size_problem(profile, declared, size):
        said = (f"The uploaded file is {size:,} bytes, but {declared.size:,} bytes were "
                "declared." if problem == "size_mismatch" else None)
        return Inspection(Verdict.reject(problem, size, message=said))
    declared_type = normalize_type(declared.content_type)
    try:
        sniffed = sniff(source.head(HEAD_BYTES))
    except OUTAGES:
        raise
    except Exception as exc:  # libmagic choking on hostile bytes is a verdict too
        log.warning("libmagic failed; judged malformed", exc_info=True)
        return Inspection(Verdict.reject("malformed", size, None, f"libmagic: {exc}"[:500]))
    detected = effective_type(sniffed, declared_type)
    if detected in _ENCRYPTED_OFFICE and declared_type in OOXML_TYPES:
        return Inspection(Verdict.reject("encrypted", size, detected))
    disagreement = ""
    structural = by_structure(source.open, size, sniffed, declared_type)
    if structural is not None and structural != detected:
        disagreement = f"libmagic reads {sniffed}; the file's structure says {structural}"
        detected = structural
    if detected != declared_type:
        return Inspection(Verdict.reject(
            "type_mismatch", size, detected, disagreement,
            message=f"The file is {type_names.one(detected)}, not "
                    f"{type_names.one(declared_type)}."))
    if detected in FORBIDDEN_TYPES:
        return Inspection(Verdict.reject("forbidden_type", size, detected, disagreement))
    if not profile.allows_type(detected):
        return Inspection(Verdict.reject("type_not_allowed", size, detected, disagreement,
                                         message=profile.refusal_of_type(detected)))
    if not profile.allows_extension(detected, declared.filename):
        return Inspection(Verdict.reject("extension_mismatch", size, detected, disagreement))
    finding, served = _guarded_deep_check(source, detected, profile, pictures)
    if finding is not None:
        if disagreement:
            finding = Finding(finding.code, f"{finding.detail} ({disagreement})",
                              finding.message)
        return Inspection(Verdict.from_finding(finding, size, detected))
    verdict = _scan(source, scanner, detected, profile, part_size)
    if verdict.accepted and served.made_from not in (None, verdict.sha256):
        raise ObjectChanged(f"the object changed while it was judged ({size} bytes)")
    return Inspection(verdict, served.files)


def _size_problem(profile: Profile, declared: Declared, size: int) -> str | None:
    problem = profile.size_problem(size)
    if problem in ("empty", "too_large"):
        return problem
    if declared.size is not None and size != declared.size:
        return "size_mismatch"
    return problem


@dataclass(frozen=True)
class _Made:
    """What the deep check made to serve, and the SHA-256 of the bytes it made it from
    (pictures are read whole once; the scan's hash must match)."""

    files: Served = Served()
    made_from: str | None = None


def _guarded_deep_check(source: ObjectSource, content_type: str, profile: Profile,
                        pictures: PictureLimits) -> tuple[Finding | None, _Made]:
    """The deep check, where any failure of a parser on hostile bytes is a verdict."""
    try:
        return _deep_check(source, content_type, profile, pictures)
    except OUTAGES:
        raise
    except Exception as exc:  # parsers are third-party code fed hostile input
        log.warning("a %s parser failed; judged malformed", content_type, exc_info=True)
        return Finding("malformed", f"{content_type} parser failed: "
                                    f"{type(exc).__name__}: {exc}"[:500]), _Made()


def _deep_check(source: ObjectSource, content_type: str, profile: Profile,
                pictures: PictureLimits) -> tuple[Finding | None, _Made]:
    if content_type in DECODERS:
        return _picture(source, content_type, profile, pictures)
    if content_type == SVG:
        if profile.visibility == "public" and not profile.sanitize_svg:
            return Finding("type_not_allowed", "public SVG needs sanitize_svg"), _Made()
        with source.open() as fp:
            finding = check_svg(fp)
        return finding, _Made(_streamed(sanitized_svg) if profile.sanitize_svg else Served())
    if content_type in XML_TYPES:
        with source.open() as fp:
            return check_xml(fp), _Made()
    if content_type == "application/pdf":
        with source.open() as fp:
            return check_pdf(fp, source.size), _Made()
    if content_type in OOXML_TYPES:
        with source.open() as fp:
            return check_ooxml(fp, content_type), _Made()
    if content_type in VIDEO_TYPES:
        with source.open() as fp:
            return check_video(fp, source.size, content_type), _Made()
    if content_type in ("text/plain", "text/csv"):
        report = scan_text(source.chunks, content_type == "text/csv", profile.text_encodings)
        if report.finding is not None:
            return report.finding, _Made()
        if report.formula_cells and profile.csv_formulas == "reject":
            return Finding("formula_injection",
                           f"{report.formula_cells} cells that would run as formulas"), _Made()
        if report.formula_cells:
            return None, _Made(_streamed(neutralized_csv(report.encoding)))
    return None, _Made()


def _picture(source: ObjectSource, content_type: str, profile: Profile,
             pictures: PictureLimits, walk: bool = True) -> tuple[Finding | None, _Made]:
    """The container walked, then the pixels decoded (and what is served written from
    them) in a contained process: the file is read once, whole (the profile bounds it)."""
    hashed = HashedStream(source.chunks())
    data = b"".join(hashed)
    walker = walk_heif if content_type in HEIF_TYPES else walk_image
    if walk and (finding := walker(io.BytesIO(data), len(data), content_type)):
        return finding, _Made()
    outcome = rendered(PictureJob(data, content_type, profile.max_pixels, profile.max_frames,
                                  profile.reencodes_images, profile.rendition_specs), pictures)
    if outcome.refusal is not None:
        return Finding(outcome.refusal.code, outcome.refusal.detail), _Made()
    for block in outcome.metadata:
        if finding := markup_in(block, "picture's EXIF or XMP metadata"):
            return finding, _Made()
    served = outcome.served
    return None, _Made(Served(
        _bytes(served.data) if served else None,
        served.content_type if served and served.content_type != content_type else None,
        outcome.renditions), hashed.hexdigest())


def served_for_release(source: ObjectSource, content_type: str, profile: Profile,
                       pictures: PictureLimits = DEFAULT_LIMITS) -> Served:
    """What is served for a file of this type in this profile, judged or not (an
    operator's release serves a quarantined file as an accepted one would be)."""
    if content_type in DECODERS:  # what was found in the container is what is released
        finding, made = _picture(source, content_type, profile, pictures, walk=False)
        if finding is not None:  # no pixels to write: serve nothing made from them
            raise ValueError(f"the picture cannot be re-encoded: {finding.detail}")
        return made.files
    if content_type == SVG and profile.sanitize_svg:
        return _streamed(sanitized_svg)
    return Served()


def _bytes(data: bytes) -> Rewrite:
    return lambda _source: iter([data])


def _streamed(transform: Callable[[Iterable[bytes]], Iterator[bytes]]) -> Served:
    """Served as the object's stream of chunks, transformed."""
    return Served(lambda source: transform(source.chunks()))


def _scan(source: ObjectSource, scanner: Scanner, content_type: str, profile: Profile,
          part_size: int | None) -> Verdict:
    """Stream the whole object once: through the scanner (when it takes a file this
    large), and through SHA-256, which pins the bytes that are served."""
    size = source.size
    limit = profile.scan_max_size or scanner.stream_max
    unscanned = scanner.stream_max is not None and limit is not None and size > limit
    if unscanned and not profile.serve_unscanned_over_limit:
        return Verdict.reject("too_large_to_scan", size, content_type,
                              f"{size} bytes; the scanner takes {limit}")
    hashed = HashedStream(source.chunks(), part_size)
    stream = iter(hashed)
    result = ScanResult() if unscanned else scanner.scan(stream)
    if result.over_limits and not profile.serve_unscanned_over_limit:
        return Verdict.reject("too_large_to_scan", size, content_type,
                              f"the scanner skipped what was over its limits: "
                              f"{result.signature}", judged_by=_scanned_by(scanner, result))
    if not result.clean and not result.over_limits:
        return Verdict.reject("malware", size, content_type, result.signature or "",
                              judged_by=_scanned_by(scanner, result))
    for _ in stream:  # what the scanner left unread still counts: the hash pins the bytes
        pass
    if hashed.size != size:
        raise ObjectChanged(f"read {hashed.size} bytes of an object of {size}")
    said = (f"served unscanned: over the {limit}-byte scan limit" if unscanned else
            f"served not wholly scanned: {result.signature}" if result.over_limits else "")
    judged_by = (f"not scanned: over the {limit}-byte scan limit" if unscanned
                 else _scanned_by(scanner, result))
    return replace(Verdict.accept(content_type, size, hashed.hexdigest(),
                                  hashed.part_hexdigests() if part_size else None, said),
                   judged_by=judged_by)


def stale(judged_by: str | None, scanner: Scanner) -> bool:
    """Whether an upload was judged by other rules or another scanner or signature
    version than would judge it now (a scanner added since counts)."""
    if not judged_by or not judged_by.startswith(f"rules {RULES_VERSION}; "):
        return True
    version = scanner.version()
    return version is not None and str(version) not in judged_by


def _scanned_by(scanner: Scanner, result: ScanResult) -> str:
    version = scanner.version()
    if version is None:
        return "not scanned: no malware scanner"
    if result.over_limits:
        return f"not wholly scanned by {version}: {result.signature}"
    return f"scanned by {version}"
