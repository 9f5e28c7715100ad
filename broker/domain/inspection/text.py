"""Plain text and CSV: UTF-8 (a BOM is fine), no NUL bytes, no scripts, no formulas.

Read as a stream, so memory stays flat however large the file (a file without
newlines included). A CSV cell that a spreadsheet would run as a formula, under any
delimiter it might read the file with, is refused, or neutralised with a leading
apostrophe when the profile asks for that.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from broker.domain.inspection.verdict import Finding

BOM = codecs.BOM_UTF8
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Signed numbers start with + or - and are data, not formulas.
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")


def is_formula(cell: str) -> bool:
    return cell.startswith(_FORMULA_START) and not _NUMBER.match(cell)


class NotAcceptableText(ValueError):
    """The stream is not text this product serves."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.detail)
        self.finding = finding


def decoded(chunks: Iterable[bytes]) -> Iterator[str]:
    """The stream as text; NotAcceptableText when it is not clean UTF-8 text."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    first = True
    try:
        for chunk in chunks:
            if first:
                if chunk.startswith(b"#!"):
                    raise NotAcceptableText(Finding("forbidden_type", "a script (#! line)"))
                chunk = chunk.removeprefix(BOM)
                first = False
            if b"\x00" in chunk:
                raise NotAcceptableText(Finding("invalid_text", "contains NUL bytes"))
            yield decoder.decode(chunk)
        yield decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise NotAcceptableText(Finding("invalid_text", f"not UTF-8: {exc.reason}")) from None


# Delimiters a spreadsheet may choose for a CSV by itself (Excel by locale, LibreOffice
# by detection); a file may also declare its own on a first line `sep=X` (Excel).
_DELIMITERS = ",;\t|"
_SEP_LINE = re.compile(r"sep=([^\r\n])\r?\n")
# The longest stretch one cell check looks at: a quote, a few tabs, the sign, a number.
_WINDOW = 80
_NUMBER_MAX = 64


class FormulaMarker:
    """Finds every cell a spreadsheet could run as a formula, under every delimiter it
    might use for this file, and can prefix each with an apostrophe.

    A cell starts at the start of the file, a line or any candidate delimiter. Reading
    every delimiter at once errs towards finding a formula, never towards missing one.
    Works on a stream in bounded pieces: a file without newlines costs no more memory.
    """

    def __init__(self) -> None:
        self.formulas = 0
        self._pending = "\n"  # a line start before the first cell
        self._offset = -1  # the file position of _pending[0]
        self._pattern: re.Pattern[str] | None = None
        self._last_marked = -1

    def feed(self, text: str, final: bool = False) -> str:
        """Take more text; return the text before any cell still undecided, marked."""
        self._pending += text
        if self._pattern is None:
            if not final and "\n" not in self._pending[1:] and len(self._pending) < _WINDOW:
                return ""  # the separator line, if any, is not complete yet
            self._pattern = self._pattern_for(self._pending[1:])
        buffer = self._pending
        cut = len(buffer) if final else max(1, len(buffer) - _WINDOW)
        out, emitted = [], 1  # buffer[0] went out already (or is the line-start sentinel)
        for match in self._pattern.finditer(buffer, 1):
            if match.start() >= cut:
                break
            sign_at = match.start("sign")
            if self._offset + sign_at <= self._last_marked or not self._is_formula(match):
                continue
            self.formulas += 1
            self._last_marked = self._offset + sign_at
            out += [buffer[emitted:sign_at], "'"]
            emitted = sign_at
            cut = max(cut, sign_at + 1)
        out.append(buffer[emitted:cut])
        keep = cut - 1  # one character stays behind: the next cell's boundary
        self._pending, self._offset = buffer[keep:], self._offset + keep
        return "".join(out)

    @staticmethod
    def _pattern_for(head: str) -> re.Pattern[str]:
        delimiters = _DELIMITERS
        if declared := _SEP_LINE.match(head):
            delimiters += declared.group(1)
        cls = re.escape(delimiters)
        return re.compile(rf'(?<=[{cls}\r\n])"?[\t\r]{{0,8}}(?P<sign>[=+\-@])'
                          rf'(?P<rest>[^{cls}\r\n"]{{0,{_NUMBER_MAX + 1}}})')

    @staticmethod
    def _is_formula(match: re.Match[str]) -> bool:
        rest = match.group("rest")
        return len(rest) > _NUMBER_MAX or not _NUMBER.match(match.group("sign") + rest)


def marked_csv(texts: Iterable[str], marker: FormulaMarker) -> Iterator[str]:
    """The text again, formula cells prefixed with an apostrophe; counts them in `marker`."""
    for text in texts:
        if out := marker.feed(text):
            yield out
    if out := marker.feed("", final=True):
        yield out


@dataclass(frozen=True)
class TextReport:
    """What reading the whole text found: a refusal, and how many cells hold formulas."""

    finding: Finding | None
    formula_cells: int = 0


def scan_text(chunks: Iterable[bytes], is_csv: bool) -> TextReport:
    """Read the whole stream once, checking encoding and, for CSV, every cell."""
    marker = FormulaMarker()
    try:
        texts = decoded(chunks)
        for _ in marked_csv(texts, marker) if is_csv else texts:
            pass
    except NotAcceptableText as exc:
        return TextReport(exc.finding)
    return TextReport(None, marker.formulas)


def neutralized_csv(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The CSV again, byte for byte, with every formula cell prefixed by an apostrophe."""
    for text in marked_csv(decoded(chunks), FormulaMarker()):
        yield text.encode()
