"""HEIF and AVIF: boxes from the first to the last byte, and media data that the
pictures use, so nothing rides along inside or after the container.

A HEIF file is an ISO base media file: `ftyp`, then `meta` (what the items are and
where their bytes lie, in `iloc`), then `mdat` with the coded pictures. Bytes of
`mdat` no item points at are payload: a ZIP or a script hidden where no decoder looks.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from broker.domain.inspection.images import (
    METADATA_CAP,
    PADDING,
    ends_at,
    markup_in,
    read_exactly,
)
from broker.domain.inspection.verdict import Finding

HEIF_TYPES = frozenset({"image/heic", "image/heif", "image/avif"})
# Major brands of still pictures and picture sequences (HEVC, AV1, generic).
BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm",
                    b"hevs", b"mif1", b"mif2", b"msf1", b"avif", b"avis", b"MiHE", b"MiHB",
                    b"MiA1", b"MiA2"})
_KNOWN_TOP_LEVEL = frozenset({b"ftyp", b"meta", b"mdat", b"free", b"skip", b"moov",
                              b"idat", b"wide"})
_MAX_BOXES = 10_000


def heif_kind(head: bytes, declared: str) -> str | None:
    """AVIF, or HEIC/HEIF, by the `ftyp` box's brands (libmagic reads only the major
    one: a phone's `mif1` file of HEVC pictures is HEIC). HEIC and HEIF are one family:
    a file of it is what was declared."""
    if head[4:8] != b"ftyp" or head[8:12] not in BRANDS:
        return None
    length = int.from_bytes(head[:4], "big")
    brands = {head[8:12]} | {head[i:i + 4] for i in range(16, min(length, len(head)) - 3, 4)}
    if head[8:12] in (b"avif", b"avis") or (
            head[8:12] in (b"mif1", b"msf1") and brands & {b"avif", b"avis"}):
        return "image/avif"
    if declared in ("image/heic", "image/heif"):
        return declared
    return "image/heic" if brands & {b"heic", b"heix", b"heim", b"heis"} else "image/heif"


def walk_heif(fp: BinaryIO, size: int, content_type: str) -> Finding | None:
    """None when the container is sound and holds nothing but its pictures (of any
    HEIF brand: which codec it holds, the decoder finds out)."""
    media: list[tuple[int, int]] = []  # mdat payloads: (start, end)
    used: list[tuple[int, int]] | None = None
    sequence = False
    position = 0
    for count in range(_MAX_BOXES):
        if position + 8 > size:
            if count == 0:
                return Finding("malformed", "no HEIF boxes")
            return ends_at(fp, position, size, "HEIF container")
        fp.seek(position)
        length, kind = struct.unpack(">I4s", read_exactly(fp, 8))
        header = 8
        if length == 1:
            (length,) = struct.unpack(">Q", read_exactly(fp, 8))
            header = 16
        elif length == 0:
            length = size - position
        if length < header or position + length > size:
            if count and kind not in _KNOWN_TOP_LEVEL:  # not a box: bytes after the end
                return ends_at(fp, position, size, "HEIF container")
            return Finding("malformed", f"HEIF box {kind!r} runs past the end")
        if count == 0 and (kind != b"ftyp" or read_exactly(fp, 4) not in BRANDS):
            return Finding("malformed", "no HEIF ftyp box with a picture brand")
        body = (position + header, position + length)
        if kind == b"mdat":
            media.append(body)
        elif kind == b"moov":
            sequence = True  # samples of a sequence are placed by its tracks
        elif kind == b"meta":
            fp.seek(body[0])
            data = fp.read(min(length - header, METADATA_CAP))
            if found := markup_in(data, "HEIF meta box"):
                return found
            used = _item_extents(data, size)
        elif kind not in _KNOWN_TOP_LEVEL:
            fp.seek(body[0])
            if found := markup_in(fp.read(min(length - header, METADATA_CAP)),
                                  f"HEIF {kind.decode('latin-1')!r} box"):
                return found
        position += length
        if position == size:
            break
    else:
        return Finding("malformed", f"more than {_MAX_BOXES} HEIF boxes")
    if used is None and not sequence:
        return Finding("malformed", "no HEIF meta box locating the pictures")
    if not sequence and used is not None:
        return _unused_media(media, used)
    return None


def _unused_media(media: list[tuple[int, int]], used: list[tuple[int, int]]) -> Finding | None:
    unused = 0
    for start, end in media:
        cursor = start
        for first, last in sorted(used):
            if last <= cursor or first >= end:
                continue
            unused += max(0, first - cursor)
            cursor = max(cursor, last)
        unused += max(0, end - cursor)
    if unused > PADDING:
        return Finding("polyglot", f"{unused} bytes of HEIF media data no picture uses")
    return None


def _item_extents(meta: bytes, size: int) -> list[tuple[int, int]] | None:
    """Where the items' bytes lie in the file (`iloc`, construction method 0); None when
    the meta box has no item locations."""
    position = 4  # meta is a full box: version and flags
    while position + 8 <= len(meta):
        length, kind = struct.unpack_from(">I4s", meta, position)
        if length < 8:
            return None
        if kind == b"iloc":
            return _iloc(meta[position + 8:position + length], size)
        position += length
    return None


def _iloc(box: bytes, size: int) -> list[tuple[int, int]]:
    version = box[0]
    sizes, more = box[4], box[5]
    offset_size, length_size = sizes >> 4, sizes & 15
    base_size, index_size = more >> 4, (more & 15 if version else 0)
    position = 6
    count, position = _number(box, position, 2 if version < 2 else 4)
    extents = []
    for _ in range(count):
        _item, position = _number(box, position, 2 if version < 2 else 4)
        method = 0
        if version:
            method_field, position = _number(box, position, 2)
            method = method_field & 15
        position += 2  # data reference index
        base, position = _number(box, position, base_size)
        extent_count, position = _number(box, position, 2)
        for _ in range(extent_count):
            _index, position = _number(box, position, index_size)
            offset, position = _number(box, position, offset_size)
            length, position = _number(box, position, length_size)
            if method == 0:
                start = base + offset
                extents.append((start, size if length == 0 else start + length))
    return extents


def _number(data: bytes, position: int, width: int) -> tuple[int, int]:
    """A big-endian number of 0, 4 or 8 (or 2) bytes, and the position after it."""
    if position + width > len(data):
        raise EOFError("the HEIF item locations end early")
    return int.from_bytes(data[position:position + width], "big"), position + width
