"""The object key scheme, shared by the broker and the validator.

The server names every object; nothing a client sends becomes part of a key.
"""

from __future__ import annotations

import re

_UPLOAD_ID = re.compile(r"^up_[0-9a-f]{32}$")

# The extension a promoted object gets, by detected type (CDNs and browsers like one).
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
    "image/heic": "heic",
    "image/heif": "heif",
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/csv": "csv",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}


def is_upload_id(value: str) -> bool:
    return bool(_UPLOAD_ID.match(value))


def incoming_key(prefix: str, upload_id: str) -> str:
    """Where the browser puts the bytes."""
    return f"{prefix}{upload_id}"


def upload_id_from_key(prefix: str, key: str) -> str | None:
    """The upload id an incoming key names, or None for any other key."""
    if not key.startswith(prefix):
        return None
    candidate = key[len(prefix):]
    return candidate if is_upload_id(candidate) else None


def delivered_key(upload_id: str, etag: str, content_type: str) -> str:
    """Where an accepted object lives in the public or private bucket.

    The stored version's ETag is part of the key, so two versions that race
    through the validator can never overwrite or delete each other's copy.
    """
    ext = EXTENSIONS.get(content_type)
    name = f"{_plain(etag)}.{ext}" if ext else _plain(etag)
    return f"{upload_id}/{name}"


def rendition_key(served_key: str, name: str, content_type: str) -> str:
    """Where one rendition lives: beside the served file, named by what it is, so a key
    never holds two different pictures (immutable, cacheable for a year)."""
    stem = served_key.rsplit(".", 1)[0]
    return f"{stem}-{name}.{EXTENSIONS[content_type]}"


def with_extension(filename: str, content_type: str) -> str:
    """The file name a converted file is served under: 'IMG_1.HEIC' -> 'IMG_1.jpg'."""
    stem, dot, _ext = filename.rpartition(".")
    return f"{stem if dot and stem else filename}.{EXTENSIONS[content_type]}"


def _plain(etag: str) -> str:
    return etag.strip('"')


def quarantine_key(prefix: str, upload_id: str, etag: str) -> str:
    """Where a rejected object is kept for inspection until it expires."""
    return f"{prefix}{upload_id}/{_plain(etag)}"
