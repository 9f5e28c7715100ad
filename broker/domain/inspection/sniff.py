"""What a file's first bytes say it is, by libmagic."""

from __future__ import annotations

import importlib
import threading
from contextlib import suppress
from typing import Any

from broker.domain.profiles import normalize_type

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
    """The detected type, under the declared name when the two are the same thing."""
    declared = normalize_type(declared)
    return declared if detected in SAME_TYPE.get(declared, ()) else detected
