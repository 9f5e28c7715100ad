"""PDF: no JavaScript, no actions that run or launch, no embedded files, no XFA.

Every object reachable from the trailer is visited (dictionaries only; content
streams are not decoded), with a budget so a crafted object graph cannot hang
the validator. A destination in /OpenAction (open at page 1) is harmless; an
action dictionary there is not.
"""

from __future__ import annotations

import logging
from typing import Any, BinaryIO

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

from broker.domain.inspection.verdict import Finding

_ACTIVE_KEYS = {
    "/JS": "JavaScript", "/JavaScript": "JavaScript", "/AA": "automatic actions",
    "/EmbeddedFiles": "embedded files", "/EmbeddedFile": "an embedded file",
    "/XFA": "an XFA form", "/RichMedia": "rich media", "/Launch": "a launch action",
}
_ACTIVE_ACTIONS = frozenset({"/JavaScript", "/Launch", "/SubmitForm", "/ImportData",
                             "/GoToE", "/GoToR", "/Rendition", "/RichMediaExecute", "/Sound",
                             "/Movie"})
MAX_OBJECTS = 200_000
_TAIL = 1024


def check_pdf(fp: BinaryIO, size: int) -> Finding | None:
    """None for a passive document; otherwise why it is refused."""
    fp.seek(0)
    if fp.read(5) != b"%PDF-":
        return Finding("polyglot", "data before the %PDF header")
    fp.seek(max(0, size - _TAIL))
    tail = fp.read(_TAIL)
    end = tail.rfind(b"%%EOF")
    if end == -1:
        return Finding("malformed", "no %%EOF marker at the end")
    if tail[end + 5:].strip():
        return Finding("polyglot", "data after the final %%EOF")
    fp.seek(0)
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # broken files are our verdict, not noise
    try:
        reader = PdfReader(fp, strict=False)
        if reader.is_encrypted:
            return Finding("encrypted", "the PDF is encrypted")
        return _walk(reader.trailer)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError,
            RecursionError) as exc:
        return Finding("malformed", f"the PDF does not parse: {type(exc).__name__}: {exc}")


def _walk(trailer: DictionaryObject) -> Finding | None:
    seen: set[tuple[int, int]] = set()
    stack: list[Any] = [trailer]
    visited = 0
    while stack:
        node = stack.pop()
        if isinstance(node, IndirectObject):
            ref = (node.idnum, node.generation)
            if ref in seen:
                continue
            seen.add(ref)
            node = node.get_object()
        visited += 1
        if visited > MAX_OBJECTS:
            return Finding("malformed", f"more than {MAX_OBJECTS} objects")
        if isinstance(node, DictionaryObject):
            if found := _active(node):
                return Finding("active_content", found)
            stack.extend(node.values())
        elif isinstance(node, ArrayObject):
            stack.extend(node)
    return None


def _active(node: DictionaryObject) -> str | None:
    for key, what in _ACTIVE_KEYS.items():
        if key in node:
            return what
    action = node.get("/S")
    if action in _ACTIVE_ACTIONS:
        return f"a {action} action"
    opening = node.get("/OpenAction")
    if opening is not None:
        opening = opening.get_object()
        if isinstance(opening, DictionaryObject) and opening.get("/S") != "/GoTo":
            return "an action run on opening"
    return None
