"""The video structure checks, branch by branch, on files built by hand (the corpus holds
the encoder's files and the attacks on them)."""

from __future__ import annotations

import io
import struct

import pytest

from broker.domain.inspection.video import check_video
from tests.videos import box, tiny_mp4


def verdict(data: bytes, content_type: str = "video/mp4") -> str | None:
    finding = check_video(io.BytesIO(data), len(data), content_type)
    return None if finding is None else finding.code


def ebml(element: int, payload: bytes, unknown_size: bool = False) -> bytes:
    ident = element.to_bytes((element.bit_length() + 7) // 8, "big")
    size = b"\x01\xff\xff\xff\xff\xff\xff\xff" if unknown_size else \
        (0x10000000 | len(payload)).to_bytes(4, "big")
    return ident + size + payload


VOID_5, VOID_15 = ebml(0xEC, bytes(0)), ebml(0xEC, bytes(10))  # padding: 5 and 15 bytes


def webm(doctype: bytes = b"webm", children: list[bytes] | None = None,
         segment_unknown: bool = False, trailing: bytes = b"") -> bytes:
    header = ebml(0x1A45DFA3, ebml(0x4286, b"\1") + ebml(0x4282, doctype))
    body = children if children is not None else [
        ebml(0x1549A966, VOID_5), ebml(0x1654AE6B, VOID_15),
        ebml(0x1F43B675, ebml(0xE7, b"\0") + ebml(0xA3, bytes(50)))]
    return header + ebml(0x18538067, b"".join(body), segment_unknown) + trailing


def test_well_formed_files_pass() -> None:
    assert verdict(tiny_mp4()) is None
    assert verdict(tiny_mp4(brand=b"qt  "), "video/quicktime") is None
    assert verdict(webm(), "video/webm") is None
    assert verdict(webm(b"matroska"), "video/x-matroska") is None


def test_a_64_bit_box_and_a_box_to_the_end_are_read() -> None:
    big = struct.pack(">I4sQ", 1, b"mdat", 16 + 100) + bytes(100)
    assert verdict(tiny_mp4(boxes=[box(b"moov", bytes(8)), big])) is None
    to_end = struct.pack(">I4s", 0, b"mdat") + bytes(100)
    assert verdict(tiny_mp4(boxes=[box(b"moov", bytes(8)), to_end])) is None


@pytest.mark.parametrize(("data", "code"), [
    (box(b"moov", bytes(8)) + tiny_mp4(), "malformed"),  # ftyp not first
    (tiny_mp4(brand=b"evil"), "malformed"),
    (tiny_mp4(brand=b"qt  "), "type_mismatch"),  # QuickTime declared as MP4
    (tiny_mp4() + b"PK\3\4" + bytes(40), "polyglot"),
    (tiny_mp4() + b"<html><body>hello</body></html>", "polyglot"),
    (tiny_mp4()[:-10], "malformed"),  # cut off
    (tiny_mp4() + b"\0\0", "malformed"),  # a header cut short
    (tiny_mp4(boxes=[box(b"moov", bytes(8)), struct.pack(">I4sQ", 1, b"mdat", 8)]),
     "malformed"),
])
def test_broken_mp4_structures_are_refused(data: bytes, code: str) -> None:
    assert verdict(data) == code


def test_a_streamed_webm_with_clusters_of_unknown_size_is_walked_block_by_block() -> None:
    cluster = ebml(0x1F43B675, ebml(0xE7, b"\0") + ebml(0xA3, bytes(30)), unknown_size=True)
    children = [ebml(0x1549A966, VOID_5), ebml(0x1654AE6B, VOID_15), cluster,
                ebml(0x1F43B675, ebml(0xA3, bytes(30)), unknown_size=True)]
    assert verdict(webm(children=children, segment_unknown=True), "video/webm") is None
    junk = cluster + b"<?php system($_GET['c']); ?>"
    assert verdict(webm(children=[*children[:2], junk], segment_unknown=True),
                   "video/webm") == "polyglot"


@pytest.mark.parametrize(("data", "code"), [
    (webm(b"matroska"), "type_mismatch"),
    (webm(b"evil"), "malformed"),
    (webm(trailing=b"PK\3\4" + bytes(30)), "polyglot"),
    (webm()[:-20], "malformed"),
    (webm(children=[ebml(0x1549A966, VOID_5)]), "malformed"),  # no Tracks
    (webm(children=[ebml(0x1549A966, VOID_5), ebml(0x1654AE6B, VOID_5),
                    ebml(0x7E7E7E, bytes(5))]), "polyglot"),
    (ebml(0x18538067, bytes(10)), "malformed"),  # no EBML header
])
def test_broken_webm_structures_are_refused(data: bytes, code: str) -> None:
    assert verdict(data, "video/webm") == code
