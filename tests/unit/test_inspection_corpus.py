"""Every hostile sample is rejected with its code; every benign sample is accepted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from broker.inspection import Declared, Inspection, inspect
from broker.inspection.scanner import NoScanner
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
    from broker.reasons import REASONS

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
    (png,) = [s for s in BENIGN if s.name == "PNG"]
    assert run(png).rewrite is None


def test_a_csv_without_newlines_is_read_in_flat_memory() -> None:
    import tracemalloc

    from broker.inspection.text import scan_text

    def stream() -> Iterator[bytes]:
        for _ in range(160):  # 40 MiB of one line, 256 KiB at a time
            yield b"cell;" * (256 * 1024 // 5)
        yield b"=1+1"

    tracemalloc.start()
    report = scan_text(stream(), is_csv=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert report.formula_cells == 1
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"


def test_neutralizing_changes_nothing_but_the_formula_cells() -> None:
    (sample,) = [s for s in BENIGN if s.name == "CSV with formulas in a neutralizing profile"]
    served = rewritten(sample.name)
    assert served.replace(b"'=", b"=") == sample.data()
