"""SVG (and any XML) is a document that can run script: only inert files pass.

Read twice, never fetching or expanding anything. First the prolog, by expat:
a DOCTYPE is accepted when it is one of the standard declarations drawing
programs write (a W3C public identifier, no internal subset); internal subsets,
entities and any other DTD are refused, and so is every processing instruction
but the XML declaration (a style sheet, or anything else a reader might act
on). Then the tree, by defusedxml: script, event handlers, foreignObject,
references to anything outside the file, and javascript:/data: URLs are active
content.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO
from xml.etree.ElementTree import Element, ParseError, register_namespace, tostring
from xml.parsers import expat

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring, parse

from broker.domain.inspection.verdict import Finding

SVG_NS = "{http://www.w3.org/2000/svg}"
_ACTIVE_ELEMENTS = frozenset({"script", "foreignobject", "iframe", "embed", "object",
                              "handler", "listener", "audio", "video", "html", "body"})
_REFERENCE_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "data"})
_DANGEROUS_VALUE = re.compile(r"javascript:|vbscript:|data:|@import|expression\(", re.I)
_EXTERNAL_URL = re.compile(r"url\(\s*['\"]?\s*(?!#)", re.I)


# Public identifiers of the DTDs drawing programs and XML vocabularies declare; none
# is ever fetched, and no browser does either.
_STANDARD_DOCTYPES = ("-//W3C//DTD SVG ", "-//W3C//DTD XHTML ", "-//Apple//DTD PLIST ",
                      "-//Apple Computer//DTD PLIST ")
# XMP packets wrap metadata in <?xpacket?>: inert, and written by every Adobe program.
_INERT_INSTRUCTIONS = frozenset({"xpacket"})


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].lower()


def _active(element: Element) -> str | None:
    tag = _local(element.tag)
    if tag in _ACTIVE_ELEMENTS:
        return f"a <{tag}> element"
    if tag == "style" and element.text and (
            _DANGEROUS_VALUE.search(element.text) or _EXTERNAL_URL.search(element.text)):
        return "a style sheet that loads or runs something"
    for name, value in element.attrib.items():
        attribute = _local(name)
        compact = re.sub(r"\s", "", value)
        if attribute.startswith("on"):
            return f"an event handler ({attribute})"
        if _DANGEROUS_VALUE.search(compact):
            return f"a script or data URL in {attribute}"
        target = value.strip()
        if attribute in _REFERENCE_ATTRIBUTES and target and not target.startswith("#"):
            return f"an external reference in {attribute}"
        if _EXTERNAL_URL.search(value):
            return f"an external url() in {attribute}"
    return None


def check_svg(fp: BinaryIO) -> Finding | None:
    """None for an inert drawing; otherwise why it is refused."""
    return check_xml(fp, root_element="svg")


class _Refused(Exception):
    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.detail)
        self.finding = finding


def _check_prolog(fp: BinaryIO) -> Finding | None:
    """The DOCTYPE, entity declarations and processing instructions, read by expat
    with every external fetch and parameter entity switched off."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def doctype(name: str, system_id: str | None, public_id: str | None,
                internal_subset: int) -> None:
        if internal_subset:
            raise _Refused(Finding("malformed", "a DOCTYPE with an internal subset"))
        if (system_id or public_id) and not (public_id or "").startswith(_STANDARD_DOCTYPES):
            raise _Refused(Finding("active_content",
                                   f"a DOCTYPE naming an outside DTD ({system_id!r})"))

    def entity(name: str, *_: object) -> None:
        raise _Refused(Finding("malformed", f"an entity declaration ({name})"))

    def instruction(target: str, data: str) -> None:
        if target.lower() not in _INERT_INSTRUCTIONS:
            raise _Refused(Finding("active_content",
                                   f"a processing instruction <?{target} {data[:60]}?>"))

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.ProcessingInstructionHandler = instruction
    parser.ExternalEntityRefHandler = lambda *_: 0  # refuse, never fetch
    try:
        while chunk := fp.read(64 * 1024):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except _Refused as refused:
        return refused.finding
    except expat.ExpatError as exc:
        return Finding("malformed", f"not well-formed XML: {exc}")
    finally:
        fp.seek(0)
    return None


def check_xml(fp: BinaryIO, root_element: str | None = None) -> Finding | None:
    """None for inert XML; script, handlers and external references are refused
    in any XML, since a browser may render it as a page."""
    if refused := _check_prolog(fp):
        return refused
    try:
        root = parse(fp, forbid_dtd=False).getroot()
    except DefusedXmlException as exc:
        return Finding("malformed", f"forbidden XML construct: {type(exc).__name__}")
    except ParseError as exc:
        return Finding("malformed", f"not well-formed XML: {exc}")
    if root is None or (root_element and _local(root.tag) != root_element):
        return Finding("malformed", f"the root element is not <{root_element}>")
    for element in root.iter():
        if found := _active(element):
            return Finding("active_content", found)
    return None


def sanitized_svg(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The drawing re-serialized from its parsed tree: comments, processing
    instructions and anything outside the root element are gone."""
    # Bounded by the profile's size; the judged prolog holds no entities or subsets.
    root = fromstring(b"".join(chunks), forbid_dtd=False)
    register_namespace("", SVG_NS.strip("{}"))
    register_namespace("xlink", "http://www.w3.org/1999/xlink")
    yield tostring(root, encoding="utf-8", xml_declaration=True)
