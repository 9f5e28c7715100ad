"""What a file's first bytes say it is, by libmagic."""

from __future__ import annotations

import importlib
import threading
from contextlib import suppress
from typing import Any

from broker.domain.profiles import FORBIDDEN_TYPES, normalize_type

# libmagic needs at least a couple of KiB; 64 KiB covers every container header we judge.
HEAD_BYTES = 64 * 1024

# Types libmagic names differently from the name clients and profiles use.
# Key: the declared type; value: detections that are the same thing.
SAME_TYPE = {
    "text/csv": frozenset({"text/plain", "application/csv"}),
    "text/plain": frozenset({"text/csv"}),  # prose with many commas reads as CSV
}

_local = threading.local()


def sniff(head: bytes) -> str:
    """The MIME type libmagic reads from the first bytes of a file."""
    detector = getattr(_local, "magic", None)
    if detector is None:
        # One magic.Magic object is not thread-safe: one per thread.
        detector = _local.magic = _magic().Magic(mime=True)
    return normalize_type(detector.from_buffer(head))


def _magic() -> Any:
    """python-magic, loaded on first use: Lambda packages carry libmagic in the
    pylibmagic wheel, which must be imported first so python-magic finds it."""
    with suppress(ImportError):
        importlib.import_module("pylibmagic")
    return importlib.import_module("magic")


def effective_type(detected: str, declared: str) -> str:
    """The detected type, under the declared name when the two are the same thing. Plain
    text is any text libmagic names more closely (source code, XML, JSON, a log) that is
    not a page or a script: served as text/plain, none of it runs."""
    declared = normalize_type(declared)
    if detected in SAME_TYPE.get(declared, ()):
        return declared
    if declared == "text/plain" and _is_inert_text(detected):
        return declared
    return detected


def _is_inert_text(detected: str) -> bool:
    return (detected.startswith("text/") or detected in _TEXT_DATA) and \
        detected not in FORBIDDEN_TYPES and detected not in _RENDERED


# Text formats libmagic names outside text/*; and text a browser renders or runs anyway.
_TEXT_DATA = frozenset({"application/xml", "application/json", "application/csv"})
_RENDERED = frozenset({"image/svg+xml", "text/html", "application/xhtml+xml", "text/xml-dtd",
                       "text/x-shellscript", "text/x-php", "text/x-script.python"})
