"""Every mutation of every corpus sample ends in a verdict, never an exception.

`make test` runs a few mutants per sample under a fixed seed; `make fuzz` runs many
(FUZZ_MUTANTS per sample, FUZZ_SEED to move the seed).
"""

from __future__ import annotations

import os
import zlib

import pytest

from broker.inspection import Declared, inspect
from broker.inspection.scanner import NoScanner
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
    import broker.inspection as inspection

    def choke(head: bytes) -> str:
        raise RuntimeError("magic: corrupt database entry")

    monkeypatch.setattr(inspection, "sniff", choke)
    (sample,) = [s for s in BENIGN if s.name == "PNG"]
    data = sample.data()
    verdict = inspect(BytesSource(data), PROFILES.get("avatar"),
                      Declared("me.png", "image/png", len(data)), NoScanner()).verdict
    assert verdict.reason is not None
    assert verdict.reason.code == "malformed"
