"""SVG (and any XML) is a document that can run script: only inert files pass.

Parsed with defusedxml (no DTDs, no entity expansion: a billion-laughs file is
refused at once, never expanded). Script, event handlers, foreignObject,
references to anything outside the file, and javascript:/data: URLs are
active content.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO
from xml.etree.ElementTree import Element, ParseError, register_namespace, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring, parse

from broker.domain.inspection.verdict import Finding

SVG_NS = "{http://www.w3.org/2000/svg}"
_ACTIVE_ELEMENTS = frozenset({"script", "foreignobject", "iframe", "embed", "object",
                              "handler", "listener", "audio", "video", "html", "body"})
_REFERENCE_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "data"})
_DANGEROUS_VALUE = re.compile(r"javascript:|vbscript:|data:|@import|expression\(", re.I)
_EXTERNAL_URL = re.compile(r"url\(\s*['\"]?\s*(?!#)", re.I)


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


def check_xml(fp: BinaryIO, root_element: str | None = None) -> Finding | None:
    """None for inert XML; script, handlers and external references are refused
    in any XML, since a browser may render it as a page."""
    try:
        root = parse(fp, forbid_dtd=True).getroot()
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
    root = fromstring(b"".join(chunks), forbid_dtd=True)  # bounded by the profile's size
    register_namespace("", SVG_NS.strip("{}"))
    register_namespace("xlink", "http://www.w3.org/1999/xlink")
    yield tostring(root, encoding="utf-8", xml_declaration=True)
