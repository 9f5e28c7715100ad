"""Raster images: the container must end where its format says.

A structure walk finds data appended after the end marker (image+ZIP, GIFAR,
image+PHP polyglots) and markup hidden in metadata. The pixels are judged apart, by
decoding every frame under a pixel budget in a contained process (`pictures`).
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from typing import BinaryIO

from broker.domain.inspection.verdict import Finding

_NAMES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WebP",
          "image/heic": "HEIC", "image/heif": "HEIF", "image/avif": "AVIF"}
# Markup or code where only pixels and metadata belong: server-side script (PHP, ASP,
# JSP, SSI, ColdFusion) and anything a browser would run or render as a page. XML
# metadata documents are not pages: XMP, and the property lists Photoshop writes for
# its print settings (with their own DOCTYPE); a tag counts only as a whole name.
# Short tags count only when code follows them: binary data (the quantisation tables of
# an embedded thumbnail) holds bytes like "<?=" and "<? " by chance.
_MARKUP = re.compile(
    rb"<\?php|<\?=\s*[$A-Za-z_(\"'`]|<\?\s+[$A-Za-z_]|<%[\s=@!#-]\s*[$A-Za-z_\"'(]|<jsp:|<!--#|<cf(?:script|set|output)\b|"
    rb"<(?:script|html|body|head|iframe|frame|frameset|object|embed|svg|math|form|meta|link|"
    rb"style|img|base|applet)\b|"
    rb"<!doctype(?!\s+(?:plist|x:xmpmeta|x:xapmeta|rdf:rdf)\b)|javascript:|vbscript:",
    re.IGNORECASE)
METADATA_CAP = 1024 * 1024  # bytes of one metadata block read (or inflated) for the check
# PNG chunks that hold pixels or their layout; every other chunk is metadata to check.
_PNG_IMAGE_CHUNKS = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"fdAT"})
_PNG_COMPRESSED = frozenset({b"zTXt", b"iCCP"})
_CHUNK = 64 * 1024
_MAX_PICTURES = 8  # images in one Multi-Picture JPEG (a primary, a gain map, views)
_STRAY_BYTES = 4096  # bytes between JPEG segments a decoder skips with a warning
PADDING = 64 * 1024  # NUL or blank bytes after an image's end that are still no payload


def walk_image(fp: BinaryIO, size: int, content_type: str) -> Finding | None:
    """None when the container is sound; otherwise what is wrong with it. The pixels
    are judged apart, by decoding them (`broker.domain.pictures`)."""
    walk = _WALKERS[content_type]
    try:
        return walk(fp, size)
    except (struct.error, EOFError, ValueError) as exc:
        return Finding("malformed", f"broken {_NAMES[content_type]} structure: {exc}")


def read_exactly(fp: BinaryIO, n: int) -> bytes:
    data = fp.read(n)
    if len(data) != n:
        raise EOFError("the file ends early")
    return data


def markup_in(data: bytes, where: str) -> Finding | None:
    if _MARKUP.search(data):
        return Finding("polyglot", f"markup or code in the {where}")
    return None


def ends_at(fp: BinaryIO, position: int, size: int, marker: str) -> Finding | None:
    """Nothing but padding after the end: writers (cameras, Office thumbnails) leave a
    few NUL or blank bytes; anything else rides along."""
    if position >= size:
        return None
    if size - position <= PADDING:
        fp.seek(position)
        if not fp.read(PADDING).strip(b"\0\t\n\r "):
            return None
    return Finding("polyglot", f"{size - position} bytes after the {marker}")


def _walk_png(fp: BinaryIO, size: int) -> Finding | None:
    if read_exactly(fp, 8) != b"\x89PNG\r\n\x1a\n":
        return Finding("malformed", "no PNG signature")
    first = True
    while True:
        length, kind = struct.unpack(">I4s", read_exactly(fp, 8))
        if first and kind != b"IHDR":
            return Finding("malformed", "the first PNG chunk is not IHDR")
        first = False
        if fp.tell() + length + 4 > size:
            return Finding("malformed", f"PNG chunk {kind!r} runs past the end")
        if kind not in _PNG_IMAGE_CHUNKS:  # known, private or unknown: all metadata
            data = read_exactly(fp, min(length, METADATA_CAP))
            fp.seek(length - len(data) + 4, 1)
            where = f"PNG {kind.decode('latin-1')!r} chunk"
            if found := markup_in(data, where) or markup_in(_png_inflated(kind, data),
                                                             f"compressed {where}"):
                return found
        else:
            fp.seek(length + 4, 1)  # data and CRC
        if kind == b"IEND":
            return ends_at(fp, fp.tell(), size, "PNG IEND chunk")


def _png_inflated(kind: bytes, data: bytes) -> bytes:
    """The text of a compressed PNG metadata chunk (zTXt, compressed iTXt, iCCP), capped;
    what does not inflate is left to the decoder to judge."""
    if kind in _PNG_COMPRESSED:
        start = data.find(b"\0") + 2  # keyword, NUL, compression method
    elif kind == b"iTXt":
        keyword_end = data.find(b"\0")
        if keyword_end < 0 or data[keyword_end + 1:keyword_end + 2] != b"\1":
            return b""
        # keyword, NUL, flag, method, language tag NUL, translated keyword NUL, text
        language_end = data.find(b"\0", keyword_end + 3)
        translated_end = data.find(b"\0", language_end + 1) if language_end >= 0 else -1
        start = translated_end + 1 if translated_end >= 0 else len(data)
    else:
        return b""
    try:
        return zlib.decompressobj().decompress(data[start:], METADATA_CAP)
    except zlib.error:
        return b""


def _sub_blocks(fp: BinaryIO) -> bytes:
    """GIF data sub-blocks, returned up to the metadata cap, skipped past it."""
    kept = bytearray()
    while block := read_exactly(fp, 1)[0]:
        data = read_exactly(fp, block)
        if len(kept) < METADATA_CAP:
            kept += data
    return bytes(kept)


def _walk_gif(fp: BinaryIO, size: int) -> Finding | None:
    if read_exactly(fp, 6) not in (b"GIF87a", b"GIF89a"):
        return Finding("malformed", "no GIF signature")
    flags = read_exactly(fp, 7)[4]
    if flags & 0x80:
        fp.seek(3 * 2 ** ((flags & 7) + 1), 1)
    while True:
        introducer = read_exactly(fp, 1)
        if introducer == b";":
            return ends_at(fp, fp.tell(), size, "GIF trailer")
        if introducer == b"!":
            label = read_exactly(fp, 1)
            data = _sub_blocks(fp)
            # Comment, application and plain-text extensions can carry anything.
            if label in (b"\xfe", b"\xff", b"\x01") and (
                    found := markup_in(data, "GIF extension")):
                return found
        elif introducer == b",":
            flags = read_exactly(fp, 9)[8]
            if flags & 0x80:
                fp.seek(3 * 2 ** ((flags & 7) + 1), 1)
            read_exactly(fp, 1)  # LZW minimum code size
            _sub_blocks(fp)
        else:
            return Finding("malformed", f"unexpected GIF block {introducer!r}")


def _walk_jpeg(fp: BinaryIO, size: int) -> Finding | None:
    """The primary image, then any further images a Multi-Picture (MPF) index announces:
    the gain map of an Ultra HDR photo, the second view of a stereo camera."""
    multi_picture = False
    for _image in range(_MAX_PICTURES):
        if read_exactly(fp, 2) != b"\xff\xd8":
            return Finding("malformed", "no JPEG start marker")
        found, announces_more = _walk_one_jpeg(fp, size)
        multi_picture |= announces_more
        if found is not None:
            return found
        rest = fp.tell()
        if not (multi_picture and _read_at(fp, rest, 2) == b"\xff\xd8"):
            return ends_at(fp, rest, size, "JPEG end marker")
        fp.seek(rest)
    return Finding("malformed", f"more than {_MAX_PICTURES} pictures in one JPEG")


def _read_at(fp: BinaryIO, offset: int, n: int) -> bytes:
    fp.seek(offset)
    return fp.read(n)


def _walk_one_jpeg(fp: BinaryIO, size: int) -> tuple[Finding | None, bool]:
    """One JPEG image from after its SOI to its EOI: what is wrong, and whether it holds
    a Multi-Picture index."""
    multi_picture = False
    while True:
        marker = read_exactly(fp, 2)
        if marker[0] != 0xFF:  # stray bytes before a marker, which decoders skip over
            if found := _skip_to_marker(fp, marker):
                return found, multi_picture
            marker = read_exactly(fp, 2)
        while marker[1] == 0xFF:  # fill bytes before a marker
            marker = marker[1:] + read_exactly(fp, 1)
        code = marker[1]
        if code == 0xD9:
            return None, multi_picture
        if 0xD0 <= code <= 0xD7 or code == 0x01:
            continue  # markers without a length
        (length,) = struct.unpack(">H", read_exactly(fp, 2))
        if length < 2 or fp.tell() + length - 2 > size:
            return Finding("malformed", "a JPEG segment runs past the end"), multi_picture
        if code == 0xFE or 0xE0 <= code <= 0xEF:  # comment and application segments
            data = read_exactly(fp, length - 2)
            multi_picture |= code == 0xE2 and data.startswith(b"MPF\0")
            if found := markup_in(data, "JPEG metadata"):
                return found, multi_picture
        else:
            fp.seek(length - 2, 1)
        if code == 0xDA:
            _skip_entropy_coded(fp)


def _skip_to_marker(fp: BinaryIO, start: bytes) -> Finding | None:
    """Step over stray bytes up to the next marker; they are judged like metadata."""
    junk = bytearray(start)
    while len(junk) <= _STRAY_BYTES:
        byte = read_exactly(fp, 1)
        if byte == b"\xff":
            fp.seek(-1, 1)
            return markup_in(bytes(junk), "stray bytes between JPEG segments")
        junk += byte
    return Finding("malformed", "a JPEG segment does not start with a marker")


def _skip_entropy_coded(fp: BinaryIO) -> None:
    """Move to the next marker after scan data (0xFF followed by other than 0x00/RSTn)."""
    while chunk := fp.read(_CHUNK):
        start = 0
        while (at := chunk.find(b"\xff", start)) != -1:
            if at + 1 == len(chunk):
                extra = fp.read(1)
                if not extra:
                    raise EOFError("scan data runs to the end")
                chunk += extra
            following = chunk[at + 1]
            if following != 0x00 and not 0xD0 <= following <= 0xD7 and following != 0xFF:
                fp.seek(at - len(chunk), 1)  # back to the marker
                return
            start = at + 1
    raise EOFError("scan data runs to the end")


# WebP chunks of image data; EXIF, XMP, ICC and unknown chunks are metadata to check.
_WEBP_IMAGE_CHUNKS = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF"})


def _walk_webp(fp: BinaryIO, size: int) -> Finding | None:
    riff, length, form = struct.unpack("<4sI4s", read_exactly(fp, 12))
    if riff != b"RIFF" or form != b"WEBP":
        return Finding("malformed", "no WebP RIFF header")
    if length + 8 > size:
        return Finding("malformed", "the WebP file is shorter than its header says")
    end = length + 8
    while fp.tell() + 8 <= end:
        kind, chunk_length = struct.unpack("<4sI", read_exactly(fp, 8))
        padded = chunk_length + (chunk_length & 1)
        if fp.tell() + chunk_length > end:
            return Finding("malformed", f"WebP chunk {kind!r} runs past the end")
        if kind in _WEBP_IMAGE_CHUNKS:
            fp.seek(padded, 1)
            continue
        data = read_exactly(fp, min(chunk_length, METADATA_CAP))
        fp.seek(padded - len(data), 1)
        if found := markup_in(data, f"WebP {kind.decode('latin-1')!r} chunk"):
            return found
    return ends_at(fp, end + (length & 1), size, "WebP RIFF container")


_WALKERS: dict[str, Callable[[BinaryIO, int], Finding | None]] = {
    "image/png": _walk_png, "image/gif": _walk_gif, "image/jpeg": _walk_jpeg,
    "image/webp": _walk_webp,
}
