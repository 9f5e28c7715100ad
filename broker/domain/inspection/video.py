"""Videos judged by their container's structure, read in small ranges: never decoded,
never read whole here (the scan and the hash stream it once, elsewhere).

- MP4 and QuickTime (ISO BMFF): `ftyp` first with a known brand; top-level boxes whose
  sizes follow one another exactly to the end of the object, each of a known type;
  one `moov`. Bytes after the last box, or a box of no known type, are something else
  riding along (a polyglot); a box running past the end is a truncated file.
  Inside, every container box the walk enters (`moov`, `trak`, `mdia`, ...) holds
  children whose sizes add up to its own.
- WebM and Matroska (EBML): the EBML header with its DocType, then one Segment whose
  children's sizes follow one another to its end, with `Info` and `Tracks`; clusters
  of unknown size (as browsers' MediaRecorder writes them) are walked block by block.
  Every master element of known size is walked too, at every level: a child that
  overruns its parent is a damaged file.
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

from broker.domain.inspection.verdict import Finding

MP4_TYPES = frozenset({"video/mp4", "video/quicktime"})
MATROSKA_TYPES = {"video/webm": "webm", "video/x-matroska": "matroska"}
VIDEO_TYPES = MP4_TYPES | frozenset(MATROSKA_TYPES)
MAX_ELEMENTS = 1_000_000  # structure elements walked per file: a bound on the reads

# Major brands of ISO BMFF files we take (QuickTime's is "qt  ").
BRANDS = frozenset({
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9",
    b"mp41", b"mp42", b"mp71", b"avc1", b"av01", b"hvc1", b"M4V ", b"M4VP", b"f4v ",
    b"dash", b"msdh", b"msix", b"cmfc", b"cmf2", b"3gp4", b"3gp5", b"3gp6", b"3gp7",
    b"3gp8", b"3gp9", b"3g2a", b"MSNV", b"XAVC", b"mmp4", b"qt  "})
TOP_LEVEL_BOXES = frozenset({
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"meta", b"pdin",
    b"moof", b"mfra", b"sidx", b"ssix", b"styp", b"emsg", b"prft", b"pnot", b"junk"})

EBML_HEADER, DOCTYPE, SEGMENT = 0x1A45DFA3, 0x4282, 0x18538067
CLUSTER, INFO, TRACKS = 0x1F43B675, 0x1549A966, 0x1654AE6B
VOID, CRC32 = 0xEC, 0xBF
SEGMENT_CHILDREN = frozenset({
    0x114D9B74, INFO, TRACKS, CLUSTER, 0x1C53BB6B, 0x1254C367, 0x1043A770, 0x1941A469,
    VOID, CRC32})
CLUSTER_CHILDREN = frozenset({0xE7, 0xA3, 0xA0, 0xA7, 0xAB, 0x5854, 0xAF, VOID, CRC32})
# Matroska's master elements (those made of elements): the walk enters each of them but
# clusters, whose blocks hold the media and would mean reading the whole file here.
EBML_MASTERS = frozenset({
    0x114D9B74, 0x4DBB, INFO, 0x6924, TRACKS, 0xAE, 0xE0, 0xE1, 0xE2, 0xE3, 0xE4, 0xE9,
    0x6D80, 0x6240, 0x5034, 0x5035, 0x47E7, 0x55B0, 0x55D0, 0x7670, 0x6624, 0x1C53BB6B,
    0xBB, 0xB7, 0xDB, 0x1941A469, 0x61A7, 0x1043A770, 0x45B9, 0xB6, 0x8F, 0x80, 0x1254C367,
    0x7373, 0x63C0, 0x67C8})
MAX_DEPTH = 16
# ISO BMFF boxes made only of boxes. User data (`udta`, `meta`) is left alone: QuickTime
# ends it with a zero word, and writes `meta` without the version ISO puts first.
BMFF_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts",
                             b"mvex", b"moof", b"traf", b"mfra"})


class _Broken(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.finding = Finding(code, detail)


def check_video(fp: BinaryIO, size: int, content_type: str) -> Finding | None:
    try:
        if content_type in MP4_TYPES:
            _check_bmff(fp, size, content_type)
        else:
            _check_matroska(fp, size, MATROSKA_TYPES[content_type])
    except _Broken as broken:
        return broken.finding
    return None


def _read(fp: BinaryIO, offset: int, length: int) -> bytes:
    fp.seek(offset)
    return fp.read(length)


# -- ISO BMFF ---------------------------------------------------------------------------

def _box_at(fp: BinaryIO, offset: int, size: int) -> tuple[bytes, int]:
    """The type of the box at `offset` and where it ends."""
    header = _read(fp, offset, 16)
    if len(header) < 8:
        raise _Broken("malformed", f"a box header at byte {offset} is cut short")
    length, kind = struct.unpack(">I4s", header[:8])
    if length == 1:
        if len(header) < 16:
            raise _Broken("malformed", f"a box header at byte {offset} is cut short")
        (length,) = struct.unpack(">Q", header[8:16])
        if length < 16:
            raise _Broken("malformed", f"box {kind!r} at byte {offset} is smaller than its header")
    elif length == 0:
        length = size - offset  # to the end of the file
    elif length < 8:
        raise _Broken("malformed", f"box {kind!r} at byte {offset} is smaller than its header")
    return kind, offset + length


def _check_bmff(fp: BinaryIO, size: int, content_type: str) -> None:
    kind, end = _box_at(fp, 0, size)
    if kind != b"ftyp" or end > min(size, 4096) or end < 16:
        raise _Broken("malformed", "an MP4 file starts with a file type box (ftyp)")
    brand = _read(fp, 8, 4)
    if brand not in BRANDS:
        raise _Broken("malformed", f"unknown MP4 brand {brand!r}")
    if (brand == b"qt  ") != (content_type == "video/quicktime"):
        raise _Broken("type_mismatch", f"brand {brand!r} is not {content_type}")
    offset, moov = end, 0
    for _ in range(MAX_ELEMENTS):
        if offset == size:
            break
        kind, end = _box_at(fp, offset, size)
        if kind not in TOP_LEVEL_BOXES:
            raise _Broken("polyglot", f"{size - offset} bytes after the last box (at byte "
                                      f"{offset}) are not part of the video")
        if end > size:
            raise _Broken("malformed", f"box {kind.decode()!r} at byte {offset} runs "
                                       f"{end - size} bytes past the end: truncated")
        moov += kind == b"moov"
        _walk_boxes(fp, kind, offset, end, 0)
        offset = end
    else:
        raise _Broken("malformed", f"more than {MAX_ELEMENTS} top-level boxes")
    if moov != 1:
        raise _Broken("malformed", f"{moov} movie boxes (moov); a video has one")


def _walk_boxes(fp: BinaryIO, kind: bytes, offset: int, end: int, depth: int) -> None:
    """The children of a container box fill it exactly, at every level."""
    if kind not in BMFF_CONTAINERS:
        return
    if depth > MAX_DEPTH:
        raise _Broken("malformed", f"boxes nested over {MAX_DEPTH} deep")
    header = 16 if _read(fp, offset, 4) == b"\0\0\0\1" else 8
    child = offset + header
    while child < end:
        if end - child < 8:
            raise _Broken("malformed", f"box {kind.decode('latin-1')!r} ends inside a header")
        inner, child_end = _box_at(fp, child, end)
        if child_end > end:
            raise _Broken("malformed", f"box {inner.decode('latin-1')!r} at byte {child} runs "
                                       f"past its parent {kind.decode('latin-1')!r}")
        _walk_boxes(fp, inner, child, child_end, depth + 1)
        child = child_end


# -- EBML: WebM and Matroska ------------------------------------------------------------

def _vint(fp: BinaryIO, offset: int, keep_marker: bool) -> tuple[int | None, int]:
    """An EBML variable-length integer at `offset`: its value (None: 'unknown', all
    ones) and where it ends."""
    first = _read(fp, offset, 1)
    if not first:
        raise _Broken("malformed", f"an element at byte {offset} is cut short")
    length = 9 - first[0].bit_length()
    if length > 8:
        raise _Broken("malformed", f"an invalid element length at byte {offset}")
    raw = first + _read(fp, offset + 1, length - 1)
    if len(raw) < length:
        raise _Broken("malformed", f"an element at byte {offset} is cut short")
    value = int.from_bytes(raw, "big")
    if keep_marker:
        return value, offset + length
    value &= (1 << (7 * length)) - 1
    return (None if value == (1 << (7 * length)) - 1 else value), offset + length


def _element_at(fp: BinaryIO, offset: int) -> tuple[int, int, int | None]:
    """An element's id, where its data starts, and its data's size (None: unknown)."""
    element, at = _vint(fp, offset, keep_marker=True)
    assert element is not None
    length, start = _vint(fp, at, keep_marker=False)
    return element, start, length


def _check_matroska(fp: BinaryIO, size: int, doctype: str) -> None:
    element, start, length = _element_at(fp, 0)
    if element != EBML_HEADER or length is None or start + length > min(size, 4096):
        raise _Broken("malformed", "a WebM or Matroska file starts with an EBML header")
    header = _read(fp, start, length)
    found = _doctype(header)
    if found != doctype:
        raise _Broken("type_mismatch" if found in MATROSKA_TYPES.values() else "malformed",
                      f"EBML DocType {found!r}, not {doctype!r}")
    element, offset, length = _element_at(fp, start + length)
    if element != SEGMENT:
        raise _Broken("malformed", "the EBML header is not followed by a Segment")
    segment_end = size if length is None else offset + length
    if segment_end > size:
        raise _Broken("malformed", f"the Segment runs {segment_end - size} bytes past the end:"
                                   " truncated")
    if segment_end < size:
        raise _Broken("polyglot", f"{size - segment_end} bytes after the Segment are not "
                                  "part of the video")
    seen: set[int] = set()
    walked = 0
    while offset < segment_end:
        walked += 1
        if walked > MAX_ELEMENTS:
            raise _Broken("malformed", f"more than {MAX_ELEMENTS} elements")
        element, start, length = _element_at(fp, offset)
        if element not in SEGMENT_CHILDREN:
            raise _Broken("polyglot", f"an element of no known kind at byte {offset}")
        seen.add(element)
        if length is None:
            if element != CLUSTER:
                raise _Broken("malformed", f"an element of unknown size at byte {offset}")
            offset, walked = _walk_open_cluster(fp, start, segment_end, walked)
            continue
        offset = start + length
        if offset > segment_end:
            raise _Broken("malformed", f"an element at byte {start} runs past the Segment's "
                                       "end: truncated")
        if element in EBML_MASTERS:
            walked = _walk_master(fp, start, offset, walked, 1)
    if not {INFO, TRACKS} <= seen:
        raise _Broken("malformed", "a video's Segment has Info and Tracks")


def _walk_master(fp: BinaryIO, offset: int, end: int, walked: int, depth: int) -> int:
    """The children of a master element fill it exactly, at every level."""
    if depth > MAX_DEPTH:
        raise _Broken("malformed", f"elements nested over {MAX_DEPTH} deep")
    while offset < end:
        walked += 1
        if walked > MAX_ELEMENTS:
            raise _Broken("malformed", f"more than {MAX_ELEMENTS} elements")
        element, start, length = _element_at(fp, offset)
        if length is None:
            raise _Broken("malformed", f"an element of unknown size inside another at byte "
                                       f"{offset}")
        if start + length > end:
            raise _Broken("malformed", f"an element at byte {offset} runs "
                                       f"{start + length - end} bytes past its parent")
        if element in EBML_MASTERS:
            walked = _walk_master(fp, start, start + length, walked, depth + 1)
        offset = start + length
    return walked


def _walk_open_cluster(fp: BinaryIO, offset: int, end: int, walked: int) -> tuple[int, int]:
    """Walk a cluster of unknown size block by block, to where the next one starts."""
    while offset < end:
        walked += 1
        if walked > MAX_ELEMENTS:
            raise _Broken("malformed", f"more than {MAX_ELEMENTS} elements")
        element, start, length = _element_at(fp, offset)
        if element in SEGMENT_CHILDREN and element not in (VOID, CRC32):
            return offset, walked  # the cluster ended where the next element begins
        if element not in CLUSTER_CHILDREN or length is None:
            raise _Broken("polyglot", f"an element of no known kind at byte {offset}")
        offset = start + length
        if offset > end:
            raise _Broken("malformed", f"a block at byte {start} runs past the end: truncated")
    return offset, walked


def _doctype(header: bytes) -> str | None:
    """The DocType string among the EBML header's children."""
    offset = 0
    view = io.BytesIO(header)
    while offset < len(header):
        element, start, length = _element_at(view, offset)
        if length is None or start + length > len(header):
            raise _Broken("malformed", "a broken EBML header")
        if element == DOCTYPE:
            return header[start:start + length].rstrip(b"\0").decode("ascii", "replace")
        offset = start + length
    return None

