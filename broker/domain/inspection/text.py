"""Plain text and CSV: an accepted encoding, no NUL bytes, no scripts, no formulas.

Each profile names the encodings it takes (by default UTF-8, with or without a byte
order mark, and UTF-16 with one); a file in another says which it is in the refusal.
Read as a stream, so memory stays flat however large the file (a file without
newlines included). A CSV cell that a spreadsheet would run as a formula, under any
delimiter it might read the file with, is found in the decoded text and refused, or
neutralised with a leading apostrophe when the profile asks for that; the copy keeps
the file's own encoding.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from broker.domain.inspection.verdict import Finding

BOM = codecs.BOM_UTF8
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Signed numbers start with + or - and are data, not formulas.
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")
# Byte order marks, longest first (UTF-32 LE starts with UTF-16 LE's mark).
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
ENCODING_NAMES = {"utf-8": "UTF-8", "utf-16": "UTF-16 with a byte order mark",
                  "utf-32": "UTF-32", "windows-1252": "Windows-1252",
                  "utf-16-no-bom": "UTF-16 without a byte order mark",
                  "unknown": "an encoding that is neither UTF-8 nor Windows-1252"}
_CODECS = {"utf-8": "utf-8-sig", "utf-16": "utf-16", "utf-32": "utf-32",
           "windows-1252": "cp1252"}


def is_formula(cell: str) -> bool:
    return cell.startswith(_FORMULA_START) and not _NUMBER.match(cell)


class NotAcceptableText(ValueError):
    """The stream is not text this product serves."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.detail)
        self.finding = finding


@dataclass(frozen=True)
class Encoding:
    """How a text file is written: its encoding's name, and whether it starts with a BOM."""

    name: str
    bom: bool = False

    def encoder(self) -> Callable[[str], bytes]:
        """Encodes text back the way the file was written (its BOM once, at the start)."""
        codec = "utf-8" if self.name == "utf-8" else _CODECS[self.name]
        encode = codecs.getincrementalencoder(codec)().encode
        if self.name == "utf-8" and self.bom:
            started: list[bool] = []

            def with_bom(text: str) -> bytes:
                out = encode(text)
                if not started:
                    started.append(True)
                    return BOM + out
                return out
            return with_bom
        return encode


def _refused(found: str, accepted: tuple[str, ...]) -> NotAcceptableText:
    takes = " or ".join(ENCODING_NAMES[name] for name in accepted)
    said = f"The file is encoded as {ENCODING_NAMES[found]}; files here must be {takes}."
    return NotAcceptableText(Finding("invalid_text", f"encoded as {ENCODING_NAMES[found]}",
                                     f"{said} Save it as UTF-8 and upload it again."))


def _with_head(chunks: Iterable[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """The first four bytes or more (enough for any byte order mark), and the rest."""
    stream = iter(chunks)
    head = b""
    for chunk in stream:
        head += chunk
        if len(head) >= 4:
            break
    return head, stream


def _bom_encoding(head: bytes) -> Encoding | None:
    for mark, name in _BOMS:
        if head.startswith(mark):
            return Encoding(name, bom=True)
    return None


def decoded(chunks: Iterable[bytes], accepted: tuple[str, ...] = ("utf-8", "utf-16"),
            assume: str | None = None, found: list[Encoding] | None = None) -> Iterator[str]:
    """The stream as text; NotAcceptableText when it is not clean text in an accepted
    encoding. Without a BOM, UTF-8 is assumed unless `assume` names another encoding.
    The encoding read is appended to `found`."""
    head, rest = _with_head(chunks)
    encoding = _bom_encoding(head) or Encoding(assume or "utf-8")
    if encoding.name not in accepted:
        raise _refused(encoding.name, accepted)
    if not encoding.bom and len(head) >= 2 and 0 in (head[0], head[1]):
        raise _refused("utf-16-no-bom", accepted)
    if found is not None:
        found.append(encoding)
    decoder = codecs.getincrementaldecoder(_CODECS[encoding.name])("strict")
    start = ""  # the first characters, until a #! line can be told apart
    try:
        for chunk in _chained(head, rest):
            text = decoder.decode(chunk)
            if len(start) < 2:
                start += text
                if start.lstrip("\ufeff").startswith("#!"):
                    raise NotAcceptableText(Finding("forbidden_type", "a script (#! line)"))
            if "\x00" in text:
                raise NotAcceptableText(Finding("invalid_text", "contains NUL bytes"))
            yield text
        yield decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise NotInEncoding(encoding.name, exc) from None


class NotInEncoding(NotAcceptableText):
    """The bytes are not in the encoding the file was read as."""

    def __init__(self, encoding: str, error: UnicodeDecodeError) -> None:
        self.looks_like = "windows-1252" if _is_cp1252(bytes(error.object)) else "unknown"
        super().__init__(Finding("invalid_text", f"not {ENCODING_NAMES[encoding]}: "
                                                 f"{error.reason}"))


def _is_cp1252(data: bytes) -> bool:
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True


def _chained(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest


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
    """What reading the whole text found: a refusal, how many cells hold formulas, and
    the encoding the text is written in."""

    finding: Finding | None
    formula_cells: int = 0
    encoding: Encoding = Encoding("utf-8")


def scan_text(read: Callable[[], Iterable[bytes]], is_csv: bool,
              accepted: tuple[str, ...] = ("utf-8", "utf-16")) -> TextReport:
    """Read the whole stream (from `read`), checking encoding and, for CSV, every cell.
    A file that is not UTF-8 is read again as Windows-1252 when the profile takes it."""
    try:
        return _scan(read(), is_csv, accepted, None)
    except NotInEncoding as wrong:
        if wrong.looks_like in accepted:
            try:
                return _scan(read(), is_csv, accepted, wrong.looks_like)
            except NotAcceptableText as exc:
                return TextReport(exc.finding)
        return TextReport(_refused(wrong.looks_like, accepted).finding)
    except NotAcceptableText as exc:
        return TextReport(exc.finding)


def _scan(chunks: Iterable[bytes], is_csv: bool, accepted: tuple[str, ...],
          assume: str | None) -> TextReport:
    marker = FormulaMarker()
    found: list[Encoding] = []
    texts = decoded(chunks, accepted, assume, found)
    for _ in marked_csv(texts, marker) if is_csv else texts:
        pass
    return TextReport(None, marker.formulas, found[0])


def neutralized_csv(encoding: Encoding) -> Callable[[Iterable[bytes]], Iterator[bytes]]:
    """The CSV again, in its own encoding, with every formula cell prefixed by an
    apostrophe."""
    def rewrite(chunks: Iterable[bytes]) -> Iterator[bytes]:
        encode = encoding.encoder()
        texts = decoded(chunks, (encoding.name,), encoding.name)
        for text in marked_csv(texts, FormulaMarker()):
            yield encode(text)
    return rewrite
