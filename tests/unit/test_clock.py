"""Timestamps are read back only in the one form the records and the API write."""

from datetime import UTC, datetime

import pytest

from broker import clock


def test_the_written_form_reads_back_exactly() -> None:
    moment = datetime(2026, 12, 1, 16, 11, 19, tzinfo=UTC)
    assert clock.parse_iso(clock.isoformat(moment)) == moment


@pytest.mark.parametrize("text", ["2026-W49-2T16:11:19Z", "2026-12-01T16:11:19+00:00",
                                  "2026-12-01 16:11:19Z", "2026-12-01T16:11:19",
                                  "2026-12-01", "\uff12\uff10\uff12\uff16-12-01T16:11:19Z", ""])
def test_any_other_form_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="does not match format"):
        clock.parse_iso(text)
