"""What each file is, said by tools independent of the product: qpdf, pngcheck,
jpeginfo, webpinfo, ffprobe, xmllint, Python's zip reader and codecs, and plain
searches of a file's own text for the constructs that act (independent of the
validator's parsers). A label says whether a careful validator must accept the file,
and in which class it falls.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TOOLS = {"qpdf": "qpdf", "pngcheck": "pngcheck", "jpeginfo": "jpeginfo",
         "webpinfo": "webp", "ffprobe": "ffmpeg", "xmllint": "libxml2-utils"}


@dataclass(frozen=True)
class Label:
    """A verdict the file must get, from outside the product."""

    accept: bool
    kind: str  # the class: "pdf", "pdf: active", "svg: damaged", ...
    why: str = ""


def missing_tools() -> list[str]:
    """Debian packages to install for the labels."""
    return sorted({package for tool, package in TOOLS.items() if not shutil.which(tool)})


def _run(*command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          errors="replace", check=False)


def label(path: Path, extension: str) -> Label:
    labeller = _LABELLERS.get(extension)
    if labeller is None:
        return Label(False, "other: not a kind the profiles take")
    return labeller(path)


# -- images -------------------------------------------------------------------------------

def _image(path: Path, kind: str, check: list[str], ok: str | None = None) -> Label:
    result = _run(*check, str(path))
    sound = result.returncode == 0 and (ok is None or result.stdout.rstrip().endswith(ok))
    if not sound:
        return Label(False, f"{kind}: damaged", (result.stdout + result.stderr).strip()[-200:])
    return Label(True, kind)


def _png(path: Path) -> Label:
    found = _image(path, "png", ["pngcheck", "-q"])
    if not found.accept and "unknown, public chunk iDOT" in found.why:
        return Label(True, "png")  # Apple's screenshot chunk, which pngcheck does not know
    return found


def _jpeg(path: Path) -> Label:
    found = _image(path, "jpeg", ["jpeginfo", "-c"], ok=" OK")
    # Recoverable warnings (stray bytes before a marker) decode everywhere; and jpeginfo
    # cannot convert CMYK, which is no damage.
    if not found.accept and "Premature end" not in found.why and (
            "WARNING" in found.why or "Unsupported color" in found.why):
        return Label(True, "jpeg")
    return found


def _webp(path: Path) -> Label:
    return _image(path, "webp", ["webpinfo", "-quiet"])


def _gif(path: Path) -> Label:
    head = path.read_bytes()[:6]
    if head not in (b"GIF87a", b"GIF89a"):
        return Label(False, "gif: damaged", "no GIF signature")
    return _media(path, "gif")


def _media(path: Path, kind: str) -> Label:
    result = _run("ffprobe", "-v", "error", "-show_entries", "stream=codec_type",
                  "-of", "csv=p=0", str(path))
    if result.returncode != 0 or result.stderr.strip() or not result.stdout.strip():
        return Label(False, f"{kind}: damaged", result.stderr.strip()[-200:])
    return Label(True, kind)


# -- PDF ------------------------------------------------------------------------------------

# What a PDF holds that acts or carries: names searched in qpdf's JSON of every object.
_PDF_ACTIVE = re.compile(r'"/(JavaScript|JS|Launch|EmbeddedFiles?|EF|FileAttachment|XFA|'
                         r'RichMedia|SubmitForm|ImportData|GoToR|GoToE|AA)"')


def _pdf(path: Path) -> Label:
    check = _run("qpdf", "--check", "--password=", str(path), timeout=120)
    text = check.stdout + check.stderr
    if "invalid password" in text:
        return Label(False, "pdf: needs a password")
    if check.returncode == 2:
        return Label(False, "pdf: damaged", text.strip()[-200:])
    dump = _run("qpdf", "--json=2", "--json-key=qpdf", "--password=", str(path), timeout=120)
    if found := _PDF_ACTIVE.search(dump.stdout):
        return Label(False, "pdf: active", found.group(0))
    encryption = _run("qpdf", "--show-encryption", "--password=", str(path)).stdout
    return Label(True, "pdf" if "not encrypted" in encryption else "pdf: owner password only")


# -- Office Open XML ----------------------------------------------------------------------

_OFFICE_ACTIVE = re.compile(rb"DDEAUTO|\bDDE\b|<[\w:]*ddeLink|INCLUDETEXT|INCLUDEPICTURE|"
                            rb"WEBSERVICE\(|\w\|'[^']*'!")
_EXTERNAL = re.compile(rb'<Relationship [^>]*TargetMode="External"[^>]*>')


def _office(path: Path, kind: str) -> Label:
    try:
        with zipfile.ZipFile(path) as package:
            if package.testzip() is not None:
                return Label(False, f"{kind}: damaged", "a CRC does not match")
            names = package.namelist()
            lowered = [n.lower() for n in names]
            if any(n.endswith("vbaproject.bin") or "/activex/" in n for n in lowered):
                return Label(False, f"{kind}: active", "macros or ActiveX")
            if "[Content_Types].xml" not in names:
                return Label(False, f"{kind}: not a document", "no [Content_Types].xml")
            for name in names:
                if not name.endswith((".xml", ".rels")):
                    continue
                data = package.read(name)
                for rel in _EXTERNAL.findall(data):
                    if b"/hyperlink\"" not in rel:
                        return Label(False, f"{kind}: active", f"external link in {name}")
                if b"oleObject" in data and name.endswith(".rels"):
                    return Label(False, f"{kind}: active", f"an OLE object in {name}")
                if found := _OFFICE_ACTIVE.search(data):
                    return Label(False, f"{kind}: active", f"{found.group(0)!r} in {name}")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return Label(False, f"{kind}: damaged", str(exc))
    return Label(True, kind)


# -- SVG and text -------------------------------------------------------------------------

_SVG_ACTIVE = re.compile(
    rb"<script|<foreignObject|\son[a-z]+\s*=|javascript:|<\?xml-stylesheet|<!ENTITY|"
    rb"(?:xlink:)?href\s*=\s*[\"'](?!#)|@import|<!DOCTYPE[^>]*\[",
    re.IGNORECASE)


def _svg(path: Path) -> Label:
    check = _run("xmllint", "--noout", "--nonet", str(path))
    if check.returncode != 0:
        return Label(False, "svg: damaged", check.stderr.strip()[-200:])
    data = path.read_bytes()
    if found := _SVG_ACTIVE.search(data):
        return Label(False, "svg: active", found.group(0).decode("latin-1"))
    return Label(True, "svg: with a DOCTYPE" if b"<!DOCTYPE" in data else "svg")


def _text_of(data: bytes) -> tuple[str | None, str]:
    """The text and its encoding, for the encodings the default profiles take."""
    for mark, codec in ((codecs.BOM_UTF32_LE, None), (codecs.BOM_UTF32_BE, None),
                        (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                        (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(mark):
            if codec is None:
                return None, "utf-32"
            return data.decode(codec, errors="strict"), codec
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return None, "not utf-8"


def _text(path: Path, is_csv: bool) -> Label:
    kind = "csv" if is_csv else "text"
    data = path.read_bytes()
    try:
        text, encoding = _text_of(data)
    except UnicodeDecodeError:
        return Label(False, f"{kind}: damaged", "broken UTF-16")
    if text is None:
        return Label(False, f"{kind}: {encoding}")
    if "\x00" in text:
        return Label(False, f"{kind}: binary", "NUL characters")
    if text.startswith("#!"):
        return Label(False, f"{kind}: script")
    if is_csv and _has_formula(text):
        return Label(False, "csv: formulas")
    return Label(True, f"{kind}: {encoding}" if encoding != "utf-8" else kind)


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")


def _has_formula(text: str) -> bool:
    for delimiter in ",;\t|":
        for row in csv.reader(io.StringIO(text), delimiter=delimiter):
            for cell in row:
                stripped = cell.lstrip("\t\r")
                if stripped[:1] in ("=", "+", "-", "@") and not _NUMBER.match(stripped):
                    return True
    return False


_LABELLERS: dict[str, Callable[[Path], Label]] = {
    "png": _png, "jpg": _jpeg, "jpeg": _jpeg, "gif": _gif, "webp": _webp, "pdf": _pdf,
    "docx": lambda p: _office(p, "docx"), "xlsx": lambda p: _office(p, "xlsx"),
    "svg": _svg, "csv": lambda p: _text(p, True), "txt": lambda p: _text(p, False),
    "mp4": lambda p: _media(p, "mp4"), "m4v": lambda p: _media(p, "mp4"),
    "mov": lambda p: _media(p, "mov"), "webm": lambda p: _media(p, "webm"),
    "mkv": lambda p: _media(p, "mkv"),
}
