"""Office Open XML (DOCX, XLSX, PPTX): a real package of its kind that does nothing.

Entry count, total size and compression ratio are capped from the central
directory first, then checked again while every entry is inflated as a stream
(directories can lie, and this also verifies every CRC). The small parts that
describe the package are parsed with defusedxml; every other XML part (body,
headers, footers, comments, charts, sheets) is read as a stream by expat,
looking for what acts on opening or fetches from elsewhere: DDE and include
fields in Word, DDE and web formulas and DDE links in Excel. A relationship to
anything outside the file, other than a plain hyperlink, is refused too.
"""

from __future__ import annotations

import re
import zipfile
from typing import BinaryIO
from xml.etree.ElementTree import ParseError
from xml.parsers import expat

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
# Relationships that run something even when they point inside the file.
_ACTIVE_RELATIONSHIPS = ("oleObject", "control")
# What a document may link to outside itself: a link a person clicks.
_EXTERNAL_ALLOWED = ("hyperlink",)
# Word fields that run a program (DDE) or pull in content from elsewhere when updated.
_ACTIVE_FIELDS = frozenset({"DDE", "DDEAUTO", "INCLUDETEXT", "INCLUDEPICTURE", "IMPORT",
                            "LINK", "INCLUDE"})
# An Excel formula that asks another program (DDE: app|topic!item) or a web server.
_STRING_LITERAL = re.compile(r'"(?:[^"]|"")*"')
_ACTIVE_FORMULA = re.compile(r"[A-Za-z0-9_.\\]+\s*\||\b(?:WEBSERVICE|CALL|REGISTER(?:\.ID)?|"
                             r"EXEC|FILTERXML)\s*\(", re.IGNORECASE)
# Elements that are an active link wherever they appear.
_ACTIVE_ELEMENTS = {"ddeLink": "a DDE link", "oleLink": "an OLE link"}


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
    """Inflate every entry as a stream, counting real bytes (sizes in the directory can
    lie); every XML part is read by the active-content scanner on the way."""
    limit = min(MAX_TOTAL_BYTES, max(MAX_RATIO * packed, 1024 * 1024))
    inflated = 0
    for info in archive.infolist():
        scanner = _PartScanner() if _is_xml_part(info.filename) else None
        with archive.open(info) as entry:
            while chunk := entry.read(1024 * 1024):
                inflated += len(chunk)
                if inflated > limit:
                    return Finding("decompression_bomb", f"over {limit} bytes once inflated")
                if scanner is not None:
                    scanner.feed(chunk)
        if scanner is not None and (found := scanner.close()):
            return Finding("active_content", f"{found} in {info.filename}")
    return None


def _is_xml_part(name: str) -> bool:
    return name.endswith(".xml") and name != "[Content_Types].xml"


class _Active(Exception):
    """Raised from the parser's callbacks at the first active construct."""


class _PartScanner:
    """Reads one XML part as a stream and names the first thing in it that would act."""

    def __init__(self) -> None:
        self.found: str | None = None
        self._instruction: list[str] | None = None  # a complex field's instruction so far
        self._text_of: str | None = None  # the element whose text is being collected
        self._text: list[str] = []
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self._doctype
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._characters
        self._parser = parser

    def feed(self, chunk: bytes) -> None:
        if self.found is None:
            self._run(chunk, final=False)

    def close(self) -> str | None:
        if self.found is None:
            self._run(b"", final=True)
        return self.found

    def _run(self, chunk: bytes, final: bool) -> None:
        try:
            self._parser.Parse(chunk, final)
        except _Active as active:
            self.found = str(active)
        except expat.ExpatError as exc:
            raise ParseError(f"not well-formed XML: {exc}") from None

    def _doctype(self, *_: object) -> None:
        raise ParseError("a DOCTYPE in a package part")

    def _start(self, tag: str, attributes: dict[str, str]) -> None:
        name = tag.rsplit(" ", 1)[-1]
        if name in _ACTIVE_ELEMENTS:
            raise _Active(_ACTIVE_ELEMENTS[name])
        if name == "fldSimple":
            self._judge_field(_attribute(attributes, "instr"))
        elif name == "fldChar":
            kind = _attribute(attributes, "fldCharType")
            if kind == "begin":
                self._instruction = []
            elif kind in ("separate", "end") and self._instruction is not None:
                self._judge_field("".join(self._instruction))
                self._instruction = None
        elif name in ("instrText", "f"):
            self._text_of, self._text = name, []

    def _characters(self, data: str) -> None:
        if self._text_of is not None:
            self._text.append(data)

    def _end(self, tag: str) -> None:
        name = tag.rsplit(" ", 1)[-1]
        if name != self._text_of:
            return
        text, self._text_of = "".join(self._text), None
        if name == "instrText":
            if self._instruction is not None:
                self._instruction.append(text)
            else:
                self._judge_field(text)
        elif _ACTIVE_FORMULA.search(_STRING_LITERAL.sub("", text)):
            raise _Active(f"a formula that calls another program or server ({text[:60]!r})")

    @staticmethod
    def _judge_field(instruction: str) -> None:
        words = instruction.split()
        if words and words[0].upper() in _ACTIVE_FIELDS:
            raise _Active(f"a field that runs or fetches something ({words[0].upper()})")


def _attribute(attributes: dict[str, str], local_name: str) -> str:
    """An attribute by its local name, whatever its namespace."""
    for key, value in attributes.items():
        if key.rsplit(" ", 1)[-1] == local_name:
            return value
    return ""


def _read_part(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > MAX_XML_PART:
        raise zipfile.BadZipFile(f"{name} is {info.file_size} bytes")
    return archive.read(info)


def _external_relationship(rels_xml: bytes) -> str | None:
    """A relationship that runs something (an OLE object, a control) or reaches outside
    the file for anything but a hyperlink (a template, a frame, a linked workbook)."""
    for rel in fromstring(rels_xml):
        kind = rel.get("Type", "").rsplit("/", 1)[-1]
        if kind in _ACTIVE_RELATIONSHIPS:
            return f"a {kind} relationship"
        if rel.get("TargetMode") == "External" and kind not in _EXTERNAL_ALLOWED:
            return f"an external {kind} relationship to {rel.get('Target', '')[:80]!r}"
    return None
