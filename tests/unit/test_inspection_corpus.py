"""Every hostile sample is rejected with its code; every benign sample is accepted."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from broker.domain.inspection import Declared, Inspection, inspect
from broker.domain.inspection.scanner import NoScanner
from tests.corpus import ATTACKS, BENIGN, Sample, corpus_profiles
from tests.samples import BytesSource

PROFILES = corpus_profiles()


def run(sample: Sample) -> Inspection:
    data = sample.data()
    declared = Declared(sample.filename, sample.content_type, len(data))
    return inspect(BytesSource(data), PROFILES.get(sample.profile), declared, NoScanner())


@pytest.mark.parametrize("sample", [s for s in ATTACKS if not s.scanner], ids=lambda s: s.name)
def test_attack_is_rejected_with_its_code(sample: Sample) -> None:
    verdict = run(sample).verdict
    assert not verdict.accepted, f"false accept: {sample.name}"
    assert verdict.reason is not None
    assert verdict.reason.code == sample.expect, verdict.detail


@pytest.mark.parametrize("sample", BENIGN, ids=lambda s: s.name)
def test_benign_file_is_accepted(sample: Sample) -> None:
    verdict = run(sample).verdict
    assert verdict.accepted, f"false reject: {verdict.reason} {verdict.detail}"
    assert verdict.content_type == sample.content_type


def test_every_reason_a_sample_expects_has_a_message() -> None:
    from broker.common.reasons import REASONS

    assert {s.expect for s in ATTACKS} <= REASONS.keys()


def rewritten(sample_name: str) -> bytes:
    (sample,) = [s for s in BENIGN if s.name == sample_name]
    inspection = run(sample)
    assert inspection.rewrite is not None
    return b"".join(inspection.rewrite(BytesSource(sample.data(), chunk_size=7)))


def test_neutralized_csv_cells_cannot_run() -> None:
    assert rewritten("CSV with formulas in a neutralizing profile") == b"a,b\r\n'=1+1,2\r\n"


def test_sanitized_svg_keeps_the_drawing_and_drops_the_rest() -> None:
    served = rewritten("inert SVG in a sanitizing public profile")
    assert b"<rect" in served
    assert b"made by hand" not in served
    assert served.startswith(b"<?xml")


def test_files_served_as_stored_need_no_rewrite() -> None:
    (pdf,) = [s for s in BENIGN if s.profile == "document" and s.name.startswith("PDF")][:1]
    assert run(pdf).rewrite is None


def png_chunks(data: bytes) -> list[bytes]:
    kinds, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kinds.append(data[at + 4:at + 8])
        at += 12 + length
    return kinds


def test_a_public_png_is_served_with_its_pixels_only() -> None:
    served = rewritten("PNG with XMP metadata")
    assert set(png_chunks(served)) <= {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"pHYs"}
    if b"pHYs" in served:  # the writer's own resolution, whatever the upload said
        at = served.index(b"pHYs") + 4
        assert struct.unpack(">IIB", served[at:at + 9]) == (2835, 2835, 1)
    with Image.open(io.BytesIO(served)) as image:
        assert image.size == (64, 48)


def test_a_public_photo_is_served_upright_without_exif_or_location() -> None:
    (sample,) = [s for s in BENIGN if s.name == "JPEG with EXIF"]
    with Image.open(io.BytesIO(sample.data())) as original:
        assert original.getexif()[0x0112] == 6
        assert 0x8825 in original.getexif()  # where the photo was taken
    served = rewritten("JPEG with EXIF")
    with Image.open(io.BytesIO(served)) as image:
        assert image.size == (48, 64)  # orientation 6 applied: turned a quarter
        assert len(image.getexif()) == 0
        assert "icc_profile" not in image.info
    assert b"Exif" not in served
    assert b"PhoneMaker" not in served


def test_an_animation_keeps_its_frames_when_reencoded() -> None:
    (sample,) = [s for s in BENIGN if s.content_type == "image/gif" and "anim" in s.name]
    with Image.open(io.BytesIO(rewritten(sample.name))) as image:
        assert getattr(image, "n_frames", 1) > 1


def test_a_csv_without_newlines_is_read_in_flat_memory() -> None:
    import tracemalloc

    from broker.domain.inspection.text import scan_text

    def stream() -> Iterator[bytes]:
        for _ in range(160):  # 40 MiB of one line, 256 KiB at a time
            yield b"cell;" * (256 * 1024 // 5)
        yield b"=1+1"

    tracemalloc.start()
    report = scan_text(stream, is_csv=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert report.formula_cells == 1
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"


def test_neutralizing_changes_nothing_but_the_formula_cells() -> None:
    (sample,) = [s for s in BENIGN if s.name == "CSV with formulas in a neutralizing profile"]
    served = rewritten(sample.name)
    assert served.replace(b"'=", b"=") == sample.data()


@settings(max_examples=300, derandomize=True, deadline=None)
@given(text=st.text(alphabet=",;\t|\r\n=+-@\"' a1.x", max_size=400),
       sizes=st.lists(st.integers(1, 90), min_size=1, max_size=20))
def test_formula_marking_does_not_depend_on_how_the_stream_is_cut(
        text: str, sizes: list[int]) -> None:
    from broker.domain.inspection.text import FormulaMarker, marked_csv

    def marked(pieces: list[str]) -> tuple[str, int]:
        marker = FormulaMarker()
        return "".join(marked_csv(pieces, marker)), marker.formulas

    pieces, at = [], 0
    for size in sizes * (len(text) // max(1, sum(sizes)) + 1):
        pieces.append(text[at:at + size])
        at += size
    whole_text, whole_count = marked([text])
    cut_text, cut_count = marked(pieces)
    assert (cut_text, cut_count) == (whole_text, whole_count)
    assert whole_text.replace("'", "") == text.replace("'", "")  # only apostrophes added


def test_a_refusal_where_libmagic_and_the_structure_disagree_says_both() -> None:
    (sample,) = [s for s in ATTACKS if s.name == "DOCX from Word for Mac declared as XLSX"]
    verdict = run(sample).verdict
    assert verdict.reason is not None
    assert verdict.reason.code == "type_mismatch"
    assert verdict.reason.message == "The file is a Word document, not an Excel spreadsheet."
    assert "libmagic reads application/octet-stream" in verdict.detail
    assert "structure says application/vnd.openxmlformats-officedocument.wordprocessingml" \
        in verdict.detail


def test_a_text_file_in_an_encoding_the_profile_does_not_take_is_told_which() -> None:
    (sample,) = [s for s in ATTACKS if s.name.startswith("Windows-1252 CSV where")]
    verdict = run(sample).verdict
    assert verdict.reason is not None
    assert verdict.reason.message is not None
    assert verdict.reason.message.startswith("The file is encoded as Windows-1252; files here "
                                             "must be UTF-8 or UTF-16 with a byte order mark.")


def test_a_neutralized_utf16_csv_keeps_its_encoding() -> None:
    from tests import writers

    data = writers.csv_as("utf-16", "a,b\r\n=1+1,2\r\n")
    profile = PROFILES.get("sheet")
    inspection = inspect(BytesSource(data, chunk_size=3), profile,
                         Declared("a.csv", "text/csv", len(data)), NoScanner())
    assert inspection.verdict.accepted
    assert inspection.rewrite is not None
    served = b"".join(inspection.rewrite(BytesSource(data, chunk_size=5)))
    assert served.decode("utf-16") == "a,b\r\n'=1+1,2\r\n"
