"""Every mutation of every corpus sample ends in a verdict, never an exception.

`make test` runs a few mutants per sample under a fixed seed; `make fuzz` runs many
(FUZZ_MUTANTS per sample, FUZZ_SEED to move the seed).
"""

from __future__ import annotations

import os
import zlib

import pytest

from broker.domain.inspection import Declared, inspect
from broker.domain.inspection.scanner import NoScanner
from tests.corpus import ATTACKS, BENIGN, Sample, corpus_profiles
from tests.mutations import mutants
from tests.samples import BytesSource

PROFILES = corpus_profiles()
MUTANTS = int(os.environ.get("FUZZ_MUTANTS", "6"))
SEED = int(os.environ.get("FUZZ_SEED", "20261201"))
SAMPLES = [s for s in ATTACKS + BENIGN if not s.scanner]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_every_mutant_gets_a_verdict(sample: Sample) -> None:
    original = sample.data()
    profile = PROFILES.get(sample.profile)
    for index, (how, data) in enumerate(mutants(original, SEED + zlib.crc32(sample.name.encode()),
                                                MUTANTS)):
        source = BytesSource(data)
        declared = Declared(sample.filename, sample.content_type, len(data))
        inspection = inspect(source, profile, declared, NoScanner())  # raises: a bug
        verdict = inspection.verdict
        assert verdict.accepted or verdict.reason is not None, (index, how)
        if inspection.rewrite is not None:
            # What will be served is produced from the same bytes, and must not fail either.
            served = b"".join(inspection.rewrite(source))
            assert served, (index, how)


def test_a_failing_type_detector_is_a_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    import broker.domain.inspection as inspection

    def choke(head: bytes) -> str:
        raise RuntimeError("magic: corrupt database entry")

    monkeypatch.setattr(inspection, "sniff", choke)
    (sample,) = [s for s in BENIGN if s.name == "PNG"]
    data = sample.data()
    verdict = inspect(BytesSource(data), PROFILES.get("avatar"),
                      Declared("me.png", "image/png", len(data)), NoScanner()).verdict
    assert verdict.reason is not None
    assert verdict.reason.code == "malformed"


def test_animation_timings_are_kept_to_what_the_format_stores() -> None:
    from broker.domain.pictures.rendering import _bounded

    assert _bounded(10**30, 0) == 0xFFFF  # found by make fuzz: a mutated frame time
    assert _bounded(-5, 0) == 0
    assert _bounded(float("nan"), 3) == 3
    assert _bounded("forever", 7) == 7
    assert _bounded(40, 100) == 40


def test_a_damaged_exif_block_costs_only_the_orientation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import warnings

    from PIL import Image, ImageOps

    from broker.domain.pictures import PictureJob
    from broker.domain.pictures.rendering import render_by_pillow as render

    def damaged(image: Image.Image) -> Image.Image:
        warnings.warn("Tag data larger than file. Skipping tag 4", UserWarning, stacklevel=1)
        raise SyntaxError("not a TIFF file")  # as Pillow answers some broken EXIF blocks

    monkeypatch.setattr(ImageOps, "exif_transpose", damaged)
    (sample,) = [s for s in BENIGN if s.name == "JPEG with EXIF"]
    served = render(PictureJob(sample.data(), "image/jpeg", 10**6, 1, reencode=True)).served
    assert served is not None
    with Image.open(io.BytesIO(served.data)) as image:
        assert image.size == (64, 48)  # served as it was drawn, not turned
