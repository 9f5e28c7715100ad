"""Office Open XML (DOCX, XLSX, PPTX): a real package of its kind, without macros.

Entry count, total size and compression ratio are capped from the central
directory first, then checked again while every entry is inflated as a stream
(directories can lie, and this also verifies every CRC). Only the small XML
parts that describe the package are parsed, with defusedxml.
"""

from __future__ import annotations

import zipfile
from typing import BinaryIO
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from broker.domain.inspection.verdict import Finding

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
OOXML_TYPES = frozenset({DOCX, XLSX, PPTX})

# The part every package of a kind has, and the content type it must declare for it.
_MAIN_PART = {
    DOCX: ("word/document.xml", "wordprocessingml.document.main+xml"),
    XLSX: ("xl/workbook.xml", "spreadsheetml.sheet.main+xml"),
    PPTX: ("ppt/presentation.xml", "presentationml.presentation.main+xml"),
}
MAX_ENTRIES = 10_000
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_RATIO = 100
MAX_XML_PART = 4 * 1024 * 1024
# Relationships that fetch or run something from outside the file.
_DANGEROUS_RELATIONSHIPS = ("attachedTemplate", "oleObject", "frame", "subDocument",
                            "package", "control")


def check_ooxml(fp: BinaryIO, content_type: str) -> Finding | None:
    """None for a macro-free package of `content_type`; otherwise why it is refused."""
    try:
        with zipfile.ZipFile(fp) as archive:
            return _check_archive(archive, content_type)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError,
            OSError) as exc:
        return Finding("malformed", f"not a readable zip package: {exc}")
    except (DefusedXmlException, ParseError) as exc:
        return Finding("malformed", f"a package part is not safe, well-formed XML: {exc}")


def _check_archive(archive: zipfile.ZipFile, content_type: str) -> Finding | None:
    entries = archive.infolist()
    if len(entries) > MAX_ENTRIES:
        return Finding("decompression_bomb", f"{len(entries)} entries")
    total = sum(e.file_size for e in entries)
    packed = sum(e.compress_size for e in entries)
    if total > MAX_TOTAL_BYTES:
        return Finding("decompression_bomb", f"{total} bytes uncompressed")
    if total > MAX_RATIO * max(packed, 1) and total > 1024 * 1024:
        return Finding("decompression_bomb", f"compression ratio {total // max(packed, 1)}")
    names = {e.filename for e in entries}
    if any(e.flag_bits & 0x1 for e in entries):
        return Finding("encrypted", "encrypted zip entries")
    if any(name.lower().endswith("vbaproject.bin") for name in names):
        return Finding("active_content", "a VBA macro project")
    if any("/activex/" in f"/{name.lower()}" for name in names):
        return Finding("active_content", "ActiveX controls")
    if any(n.lower().endswith(".class") or n == "META-INF/MANIFEST.MF" for n in names):
        return Finding("forbidden_type", "a Java archive")
    if "[Content_Types].xml" not in names:
        return Finding("malformed", "no [Content_Types].xml: a plain zip, not a document")
    main_part, main_type = _MAIN_PART[content_type]
    if main_part not in names:
        return Finding("malformed", f"no {main_part}: not a {content_type.rsplit('.', 1)[-1]}")
    declared_types = [
        node.get("ContentType", "")
        for node in fromstring(_read_part(archive, "[Content_Types].xml"))
    ]
    if any("macroEnabled" in t or "vbaProject" in t for t in declared_types):
        return Finding("active_content", "a macro-enabled content type")
    if not any(t.endswith(main_type) for t in declared_types):
        return Finding("malformed", f"the package does not declare {main_type}")
    for name in sorted(n for n in names if n.endswith(".rels")):
        if found := _external_relationship(_read_part(archive, name)):
            return Finding("active_content", f"{found} in {name}")
    return _inflate_all(archive, packed)


def _inflate_all(archive: zipfile.ZipFile, packed: int) -> Finding | None:
    """Inflate every entry as a stream, counting real bytes: sizes in the directory can lie."""
    limit = min(MAX_TOTAL_BYTES, max(MAX_RATIO * packed, 1024 * 1024))
    inflated = 0
    for info in archive.infolist():
        with archive.open(info) as entry:
            while chunk := entry.read(1024 * 1024):
                inflated += len(chunk)
                if inflated > limit:
                    return Finding("decompression_bomb", f"over {limit} bytes once inflated")
    return None


def _read_part(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > MAX_XML_PART:
        raise zipfile.BadZipFile(f"{name} is {info.file_size} bytes")
    return archive.read(info)


def _external_relationship(rels_xml: bytes) -> str | None:
    """A relationship that pulls in a remote template, OLE object or frame."""
    for rel in fromstring(rels_xml):
        kind = rel.get("Type", "").rsplit("/", 1)[-1]
        if kind in _DANGEROUS_RELATIONSHIPS and (
                rel.get("TargetMode") == "External" or kind in ("oleObject", "control")):
            return f"a {kind} relationship"
    return None
