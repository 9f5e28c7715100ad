"""Plain text and CSV: UTF-8 (a BOM is fine), no NUL bytes, no scripts, no formulas.

Read as a stream, so memory stays flat however large the file. A CSV cell that
a spreadsheet would run as a formula is refused, or neutralised with a leading
apostrophe when the profile asks for that.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from broker.inspection.verdict import Finding

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


def _lines(texts: Iterable[str]) -> Iterator[str]:
    """Lines split on newline only: the csv module reads any other separator as data."""
    pending = ""
    for text in texts:
        pending += text
        *complete, pending = pending.split("\n")
        for line in complete:
            yield line + "\n"
    if pending:
        yield pending


@dataclass(frozen=True)
class TextReport:
    """What reading the whole text found: a refusal, and how many rows hold formulas."""

    finding: Finding | None
    formula_rows: int = 0


def scan_text(chunks: Iterable[bytes], is_csv: bool) -> TextReport:
    """Read the whole stream once, checking encoding and, for CSV, every cell."""
    formula_rows = 0
    try:
        if not is_csv:
            for _ in decoded(chunks):
                pass
            return TextReport(None)
        for row in csv.reader(_lines(decoded(chunks))):
            formula_rows += any(is_formula(cell) for cell in row)
    except NotAcceptableText as exc:
        return TextReport(exc.finding)
    except csv.Error as exc:
        return TextReport(Finding("malformed", f"not valid CSV: {exc}"))
    return TextReport(None, formula_rows)


def neutralized_csv(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The CSV again, with every formula cell prefixed by an apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in csv.reader(_lines(decoded(chunks))):
        writer.writerow(["'" + cell if is_formula(cell) else cell for cell in row])
        yield out.getvalue().encode()
        out.seek(0)
        out.truncate()
