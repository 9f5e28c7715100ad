"""What a container file is, read from its structure rather than its first bytes.

libmagic guesses a ZIP-based document from the name of its first entry, which
depends on the program that wrote it (Word for Mac starts with `docProps/`,
other writers with folder entries). A package says what it is in its own
parts: `[Content_Types].xml` and the main part its relationships name (Office
Open XML), a `mimetype` entry (OpenDocument, EPUB), a manifest (Java). An XML
document is what its root element is.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from typing import BinaryIO
from xml.parsers import expat

from defusedxml.ElementTree import fromstring

from broker.domain.inspection.heif import HEIF_TYPES, heif_kind
from broker.domain.inspection.ooxml import DOCX, OOXML_TYPES, PPTX, XLSX
from broker.domain.inspection.video import BRANDS, VIDEO_TYPES

ZIP = "application/zip"
SVG = "image/svg+xml"
# What libmagic may say of a ZIP-based document, depending on its first entries.
ZIP_GUESSES = frozenset({
    ZIP, "application/octet-stream", "application/x-zip-compressed", DOCX, XLSX, PPTX,
    "application/java-archive", "application/vnd.ms-excel", "application/msword",
    "application/vnd.ms-powerpoint", "application/vnd.ms-office",
})
XML_GUESSES = frozenset({"text/xml", "application/xml", SVG, "text/plain"})
# Declared types whose kind the root element decides.
XML_TYPES = frozenset({"text/xml", "application/xml", SVG})
# The content type of an Office package's main part, by the kind of package it makes.
# Macro-enabled packages are their kind too: the deep check refuses their macros.
_MAIN_PART_KINDS = {
    "wordprocessingml.document.main+xml": DOCX, "wordprocessingml.template.main+xml": DOCX,
    "ms-word.document.macroEnabled.main+xml": DOCX,
    "ms-word.template.macroEnabledTemplate.main+xml": DOCX,
    "spreadsheetml.sheet.main+xml": XLSX, "spreadsheetml.template.main+xml": XLSX,
    "ms-excel.sheet.macroEnabled.main+xml": XLSX, "ms-excel.template.macroEnabled.main+xml": XLSX,
    "presentationml.presentation.main+xml": PPTX, "presentationml.slideshow.main+xml": PPTX,
    "ms-powerpoint.presentation.macroEnabled.main+xml": PPTX,
    "ms-powerpoint.slideshow.macroEnabled.main+xml": PPTX,
}
_OFFICE_DOCUMENT = "/officeDocument"
TEXT_TYPES = frozenset({"text/plain", "text/csv"})
_TINY = 16  # libmagic calls a one-line file this short "data"
_SMALL_PART = 4 * 1024 * 1024
_ROOT_SEARCH = 1024 * 1024  # comments and a DOCTYPE before the root element fit in this
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def zip_kind(fp: BinaryIO) -> str | None:
    """The type a ZIP package's structure declares; None when it is no readable ZIP."""
    try:
        with zipfile.ZipFile(fp) as archive:
            names = set(archive.namelist())
            if "[Content_Types].xml" in names:
                return _office_kind(archive, names) or ZIP
            if "mimetype" in names and archive.getinfo("mimetype").file_size < 256:
                return archive.read("mimetype").decode("ascii", "replace").strip() or ZIP
            if "META-INF/MANIFEST.MF" in names or any(n.endswith(".class") for n in names):
                return "application/java-archive"
            return ZIP
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError,
            ValueError, KeyError):
        return None
    except Exception:
        return ZIP


def _office_kind(archive: zipfile.ZipFile, names: set[str]) -> str | None:
    types = fromstring(_small(archive, "[Content_Types].xml"))
    overrides = {node.get("PartName", "").lstrip("/"): node.get("ContentType", "")
                 for node in types if node.tag.endswith("Override")}
    main_parts = [name for name in overrides if name in names]
    if "_rels/.rels" in names:
        for rel in fromstring(_small(archive, "_rels/.rels")):
            if rel.get("Type", "").endswith(_OFFICE_DOCUMENT):
                main_parts = [rel.get("Target", "").lstrip("/")]
                break
    for part in main_parts:
        declared = overrides.get(part, "")
        for suffix, kind in _MAIN_PART_KINDS.items():
            if declared.endswith(suffix):
                return kind
    return None


def _small(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > _SMALL_PART:
        raise ValueError(f"{name} is {info.file_size} bytes")
    return archive.read(info)


class _Found(Exception):
    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.tag = tag


def xml_root(fp: BinaryIO) -> str | None:
    """The root element of an XML document, as `{namespace}name`; nothing is fetched
    or expanded on the way. None when no root element starts in the first MiB."""
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def start(tag: str, _attributes: object) -> None:
        raise _Found(tag if "}" not in tag else "{" + tag)

    parser.StartElementHandler = start
    try:
        read = 0
        while read < _ROOT_SEARCH and (chunk := fp.read(64 * 1024)):
            read += len(chunk)
            parser.Parse(chunk, False)
    except _Found as found:
        return found.tag
    except expat.ExpatError:
        return None
    return None


def xml_kind(fp: BinaryIO, declared: str) -> str | None:
    """SVG when the root element is an SVG drawing; otherwise the declared XML type."""
    root = xml_root(fp)
    if root is None:
        return None
    if root == f"{{{SVG_NAMESPACE}}}svg" or root == "svg":
        return SVG
    return declared if declared != SVG else "text/xml"


def video_kind(head: bytes) -> str | None:
    """MP4 or QuickTime by the `ftyp` box's major brand, WebM or Matroska by the EBML
    DocType; None when the header says neither."""
    if head[4:8] == b"ftyp" and head[8:12] in BRANDS:
        return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        for doctype, kind in ((b"webm", "video/webm"), (b"matroska", "video/x-matroska")):
            if b"\x42\x82" in head[:64] and doctype in head[:64]:
                return kind
    return None


def by_structure(open_object: Callable[[], BinaryIO], size: int, sniffed: str,
                 declared: str) -> str | None:
    """The type a container's structure declares, where libmagic's guess may be wrong:
    ZIP-based documents, XML, videos (libmagic names a 3GPP-branded MP4 video/3gpp); and
    text too short for libmagic to tell, which the text check judges. None when the
    structure does not say."""
    if declared in VIDEO_TYPES:
        with open_object() as fp:
            return video_kind(fp.read(64))
    if declared in HEIF_TYPES or sniffed in HEIF_TYPES:
        with open_object() as fp:
            return heif_kind(fp.read(256), declared)
    if declared in TEXT_TYPES and sniffed == "application/octet-stream" and size <= _TINY:
        return declared
    if declared in OOXML_TYPES or sniffed in ZIP_GUESSES - {"application/octet-stream"}:
        with open_object() as fp:
            return zip_kind(fp)
    if declared in XML_TYPES and sniffed in XML_GUESSES:
        with open_object() as fp:
            return xml_kind(fp, declared)
    if declared == "text/plain" and sniffed in XML_TYPES | {"application/xml"}:
        with open_object() as fp:  # XML is plain text unless a browser would render it
            root = xml_root(fp) or ""
        if root.rsplit("}", 1)[-1].lower() in ("svg", "html"):
            return SVG if root.endswith("svg") else "application/xhtml+xml"
        return None
    return None
