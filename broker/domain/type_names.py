"""Kinds of file in words a person reads: "a PNG image", "PDF documents", "PNG, JPEG and
GIF images". Programs get the MIME types in the problem's fields; people get these."""

from __future__ import annotations

from collections.abc import Iterable

# MIME type -> (its name, the noun for its kind)
NAMES: dict[str, tuple[str, str]] = {
    "image/png": ("PNG", "image"),
    "image/jpeg": ("JPEG", "image"),
    "image/gif": ("GIF", "image"),
    "image/webp": ("WebP", "image"),
    "image/heic": ("HEIC", "image"),
    "image/heif": ("HEIF", "image"),
    "image/avif": ("AVIF", "image"),
    "image/svg+xml": ("SVG", "image"),
    "image/tiff": ("TIFF", "image"),
    "image/bmp": ("BMP", "image"),
    "application/pdf": ("PDF", "document"),
    "text/plain": ("plain text", "file"),
    "text/csv": ("CSV", "file"),
    "text/html": ("HTML", "page"),
    "application/xhtml+xml": ("XHTML", "page"),
    "application/xml": ("XML", "document"),
    "text/xml": ("XML", "document"),
    "application/json": ("JSON", "file"),
    "application/javascript": ("JavaScript", "program"),
    "text/javascript": ("JavaScript", "program"),
    "application/zip": ("ZIP", "archive"),
    "application/gzip": ("gzip", "archive"),
    "application/x-tar": ("tar", "archive"),
    "application/x-7z-compressed": ("7-Zip", "archive"),
    "application/x-rar": ("RAR", "archive"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
        ("Word", "document"),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
        ("Excel", "spreadsheet"),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation":
        ("PowerPoint", "presentation"),
    "application/msword": ("old Word", "document"),
    "application/vnd.ms-excel": ("old Excel", "spreadsheet"),
    "video/mp4": ("MP4", "video"),
    "video/quicktime": ("QuickTime", "video"),
    "video/webm": ("WebM", "video"),
    "video/x-matroska": ("Matroska", "video"),
    "audio/mpeg": ("MP3", "audio file"),
    "application/x-executable": ("Linux", "program"),
    "application/x-sharedlib": ("Linux", "program"),
    "application/x-dosexec": ("Windows", "program"),
    "application/x-msdownload": ("Windows", "program"),
    "application/vnd.microsoft.portable-executable": ("Windows", "program"),
    "application/x-mach-binary": ("macOS", "program"),
    "application/x-msi": ("Windows", "installer"),
    "application/java-archive": ("Java", "archive"),
    "text/x-shellscript": ("shell", "script"),
    "text/x-php": ("PHP", "script"),
    "text/x-python": ("Python", "script"),
    "application/octet-stream": ("unrecognised", "file"),
}


def _name(mime: str) -> tuple[str, str]:
    return NAMES.get(mime, (f"{mime}", "file"))


def one(mime: str) -> str:
    """'a PNG image', 'an HTML page', 'a file of type application/x-foo'."""
    if mime not in NAMES:
        return f"a file of type {mime}"
    label, noun = _name(mime)
    return f"{_article(label)} {label} {noun}"


def _article(word: str) -> str:
    """'an' before a vowel sound: 'an HTML', 'an MP4', 'an old', but 'a ZIP', 'a JPEG'."""
    if word.isupper() or word[:1].isdigit() or (word[:1].isupper() and word[1:2].isdigit()):
        spelt = word not in _SAID_AS_WORDS
        return "an" if (word[0] in "AEFHILMNORSX" if spelt else word[0] in "AEIOU") else "a"
    return "an" if word[:1].lower() in "aeiou" else "a"


# Acronyms said as words, whose article follows their first sound, not their letter's name.
_SAID_AS_WORDS = frozenset({"JPEG", "JSON", "ZIP", "RAR", "AVIF", "HEIF", "HEIC", "GIF"})


def several(mime: str) -> str:
    """'PNG images', 'PDF documents', 'files of type application/x-foo'."""
    if mime not in NAMES:
        return f"files of type {mime}"
    label, noun = _name(mime)
    return f"{label} {_plural(noun)}"


def listing(mimes: Iterable[str]) -> str:
    """'PNG, JPEG, GIF and WebP images; PDF documents', in the order given."""
    by_noun: dict[str, list[str]] = {}
    for mime in mimes:
        label, noun = _name(mime)
        by_noun.setdefault(noun, []).append(label)
    return "; ".join(f"{_and(labels)} {_plural(noun)}" for noun, labels in by_noun.items())


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _plural(noun: str) -> str:
    return noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
