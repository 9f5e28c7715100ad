"""Timestamps are read back only in the one form the records and the API write."""

from datetime import UTC, datetime

import pytest

from broker.common import clock


def test_the_written_form_reads_back_exactly() -> None:
    moment = datetime(2026, 12, 1, 16, 11, 19, tzinfo=UTC)
    assert clock.parse_iso(clock.isoformat(moment)) == moment


@pytest.mark.parametrize("text", ["2026-W49-2T16:11:19Z", "2026-12-01T16:11:19+00:00",
                                  "2026-12-01 16:11:19Z", "2026-12-01T16:11:19",
                                  "2026-12-01", "\uff12\uff10\uff12\uff16-12-01T16:11:19Z", ""])
def test_any_other_form_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="does not match format"):
        clock.parse_iso(text)


def test_upload_ids_are_128_random_bits_and_differ_across_a_fork() -> None:
    import os
    import re

    ids = {clock.new_upload_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(re.fullmatch(r"up_[0-9a-f]{32}", upload_id) for upload_id in ids)
    # gunicorn forks its workers: a child must not repeat the ids its parent makes next.
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(write, " ".join(clock.new_upload_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        theirs = set(pipe.read().split())
    ours = {clock.new_upload_id() for _ in range(100)}
    assert len(theirs) == 100
    assert not theirs & ours
