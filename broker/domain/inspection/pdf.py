"""PDF: no JavaScript, no actions that run or launch, no embedded files, no XFA.

Every object the file holds is judged, not only those the current document
reaches: each `N G obj` in the bytes (earlier revisions and orphans included),
each object inside every object stream, and each object the cross-reference
tables list. A file carried anywhere (an `/EmbeddedFiles` tree, a file
attachment annotation, a bare `/EmbeddedFile` stream) is active content.

The walk is bounded by what costs (objects parsed, bytes inflated, nesting
depth, time), so a real 10,000-object report passes and a crafted graph stops.
A PDF that opens without a password (one protected only by an owner password)
is inspected like any other.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from io import BytesIO
from typing import Any, BinaryIO

from pypdf import PasswordType, PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject, read_object

from broker.domain.inspection.verdict import Finding

_ACTIVE_KEYS = {
    "/JS": "JavaScript", "/JavaScript": "JavaScript", "/AA": "automatic actions",
    "/EmbeddedFiles": "embedded files", "/EF": "an embedded file",
    "/XFA": "an XFA form", "/RichMedia": "rich media", "/Launch": "a launch action",
}
_ACTIVE_TYPES = {"/EmbeddedFile": "an embedded file stream",
                 "/FileAttachment": "a file attachment annotation",
                 "/RichMedia": "rich media", "/Sound": "a sound annotation",
                 "/Movie": "a movie annotation", "/Screen": "a screen annotation"}
_ACTIVE_ACTIONS = frozenset({"/JavaScript", "/Launch", "/SubmitForm", "/ImportData",
                             "/GoToE", "/GoToR", "/Rendition", "/RichMediaExecute", "/Sound",
                             "/Movie"})
# Budgets by cost: a 137-page report has about 12,500 objects and nests a dozen deep.
MAX_OBJECTS = 1_000_000
MAX_DEPTH = 100
MAX_INFLATED = 256 * 1024 * 1024
MAX_SECONDS = 30.0
_TAIL = 1024
_TAIL_PADDING = 1024 * 1024  # how much trailing whitespace a writer may leave after %%EOF
_WHITESPACE = b"\0\t\n\f\r "  # PDF's white-space characters, NUL among them
_CHUNK = 8 * 1024 * 1024
_OBJECT_HEADER = re.compile(rb"(?<![0-9])([0-9]{1,10})[\0\t\n\f\r ]+([0-9]{1,5})"
                            rb"[\0\t\n\f\r ]+obj(?![A-Za-z0-9])")


class _OverBudget(Exception):
    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.detail)
        self.finding = finding


def check_pdf(fp: BinaryIO, size: int) -> Finding | None:
    """None for a passive document; otherwise why it is refused."""
    fp.seek(0)
    if fp.read(5) != b"%PDF-":
        return Finding("polyglot", "data before the %PDF header")
    fp.seek(max(0, size - _TAIL_PADDING))
    tail = fp.read(_TAIL_PADDING).rstrip(_WHITESPACE)[-_TAIL:]  # writers pad with NULs too
    end = tail.rfind(b"%%EOF")
    if end == -1:
        return Finding("malformed", "no %%EOF marker at the end")
    if tail[end + 5:].strip(_WHITESPACE):
        return Finding("polyglot", "data after the final %%EOF")
    fp.seek(0)
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # broken files are our verdict, not noise
    try:
        reader = PdfReader(fp, strict=False)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            return Finding("encrypted", "the PDF needs a password to open")
        if not isinstance(reader.trailer.get("/Root", None), IndirectObject | DictionaryObject):
            return Finding("malformed", "the PDF has no document catalog")
        return _Walk(reader).every_object(fp)
    except _OverBudget as over:
        return over.finding
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError,
            RecursionError) as exc:
        return Finding("malformed", f"the PDF does not parse: {type(exc).__name__}: {exc}")


class _Walk:
    """One pass over every object of one file, within the budgets."""

    def __init__(self, reader: PdfReader) -> None:
        self.reader = reader
        self.seen: set[tuple[int, int]] = set()
        self.objects = 0
        self.inflated = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def every_object(self, fp: BinaryIO) -> Finding | None:
        for offset in _object_offsets(fp):
            fp.seek(offset)
            try:
                idnum, generation = self.reader.read_object_header(fp)
                node = read_object(fp, self.reader)
            except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError):
                continue  # "N G obj" inside binary data: not an object
            if found := self._judge(node, idnum, generation):
                return found
        for generation, table in self.reader.xref.items():  # what the raw bytes hid
            for idnum in table:
                if (idnum, generation) not in self.seen:
                    listed = self.reader.get_object(IndirectObject(idnum, generation, self.reader))
                    if found := self._judge(listed, idnum, generation):
                        return found
        for idnum in self.reader.xref_objStm:
            if (idnum, 0) not in self.seen:
                packed = self.reader.get_object(IndirectObject(idnum, 0, self.reader))
                if found := self._judge(packed, idnum, 0):
                    return found
        return _active_in(self.reader.trailer, 0)

    def _judge(self, node: Any, idnum: int, generation: int) -> Finding | None:
        self.seen.add((idnum, generation))
        self.objects += 1
        if self.objects > MAX_OBJECTS:
            raise _OverBudget(Finding("malformed", f"more than {MAX_OBJECTS:,} objects"))
        if self.objects % 512 == 0 and time.monotonic() > self.deadline:
            raise _OverBudget(Finding("malformed", f"over {MAX_SECONDS:.0f} s to walk"))
        node = self._decrypted(node, idnum, generation)
        if found := _active_in(node, 0):
            return found
        if isinstance(node, StreamObject) and node.get("/Type") == "/ObjStm":
            for inner_id, inner in self._objects_in_stream(node):
                if found := self._judge(inner, inner_id, 0):
                    return found
        return None

    def _decrypted(self, node: Any, idnum: int, generation: int) -> Any:
        encryption = getattr(self.reader, "_encryption", None)
        if encryption is None or not isinstance(node, StreamObject):
            return node  # names and dictionaries are never encrypted; only strings, streams
        return encryption.decrypt_object(node, idnum, generation)

    def _objects_in_stream(self, stream: StreamObject) -> Iterator[tuple[int, Any]]:
        data = stream.get_data()
        self.inflated += len(data)
        if self.inflated > MAX_INFLATED:
            raise _OverBudget(Finding("decompression_bomb",
                                      f"object streams inflate past {MAX_INFLATED:,} bytes"))
        count, first = int(stream.get("/N", 0)), int(stream.get("/First", 0))
        numbers = data[:first].split()
        if not 0 <= first <= len(data) or len(numbers) < 2 * count:
            raise ValueError("an object stream's header does not hold its objects")
        for i in range(count):
            idnum, offset = int(numbers[2 * i]), int(numbers[2 * i + 1])
            yield idnum, read_object(BytesIO(data[first + offset:]), self.reader)


def _object_offsets(fp: BinaryIO) -> Iterator[int]:
    """Where each `N G obj` starts, read in bounded pieces that overlap."""
    overlap = 32
    base = 0
    fp.seek(0)
    previous = b""
    while chunk := fp.read(_CHUNK):
        window = previous + chunk
        start = base - len(previous)
        for match in _OBJECT_HEADER.finditer(window):
            if match.end() > len(previous) or not previous:
                yield start + match.start()
        previous = window[-overlap:]
        base += len(chunk)
        fp.seek(base)


def _active_in(node: Any, depth: int) -> Finding | None:
    """What in one object (and the values written inside it) runs, launches or carries."""
    if depth > MAX_DEPTH:
        raise _OverBudget(Finding("malformed", f"values nested over {MAX_DEPTH} deep"))
    if isinstance(node, DictionaryObject):
        if what := _active(node):
            return Finding("active_content", what)
        values: Any = node.values()
    elif isinstance(node, ArrayObject):
        values = node
    else:
        return None
    for value in values:
        if found := _active_in(value, depth + 1):
            return found
    return None


def _active(node: DictionaryObject) -> str | None:
    for key, what in _ACTIVE_KEYS.items():
        if key in node:
            return what
    for key in ("/Type", "/Subtype"):
        if (kind := node.get(key)) in _ACTIVE_TYPES:
            return _ACTIVE_TYPES[str(kind)]
    action = node.get("/S")
    if action in _ACTIVE_ACTIONS:
        return f"a {action} action"
    opening = node.get("/OpenAction")
    if isinstance(opening, DictionaryObject) and opening.get("/S") != "/GoTo":
        return "an action run on opening"
    if isinstance(opening, IndirectObject):
        target = opening.get_object()
        if isinstance(target, DictionaryObject) and target.get("/S") != "/GoTo":
            return "an action run on opening"
    return None
