"""No good file is judged by a race: many browsers posting at once to `broker run`'s
stack (the emulator, the validator in its own process, the broker), on an emulator
whose every object's metadata lands late."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from broker.devstack import stack as devstack
from broker.devstack.emulator import EmbeddedEmulator
from broker.web import create_app
from tests.integration.conftest import free_port, serving
from tests.samples import SECRET, png_bytes, send_upload, settle

pytestmark = pytest.mark.integration
UPLOADS, BROWSERS = 48, 12


class LateMetadataEmulator(EmbeddedEmulator):
    MODULE = "tests.late_metadata_emulator"


@pytest.fixture(params=["stored", "early"], ids=["announced-when-stored",
                                                 "announced-before-metadata"])
def broker_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
               ) -> Iterator[str]:
    monkeypatch.setenv("LATE_METADATA_ANNOUNCE", request.param)
    monkeypatch.setattr(devstack, "EmbeddedEmulator", LateMetadataEmulator)
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    stack = devstack.DevStack(emulator_port=free_port(), broker_origin=origin,
                              overrides={"jwt_secret": SECRET, "upload_rate_limit": "1000/minute"})
    try:
        settings = stack.start(with_worker=False)
        stack.start_worker(own_process=True)  # as `broker run` judges: in its own process
        with serving(create_app(settings.model_dump(), clients=stack.clients), port):
            yield origin
    finally:
        stack.stop()


def _upload(broker: str, n: int) -> dict[str, Any]:
    user = f"racer-{n}"
    return settle(broker, user, send_upload(broker, user, png_bytes(16 + n, 16)), timeout=120)


def test_no_good_file_is_refused_when_its_metadata_lands_after_the_object(
        broker_url: str) -> None:
    with ThreadPoolExecutor(BROWSERS) as browsers:
        settled = list(browsers.map(lambda n: _upload(broker_url, n), range(UPLOADS)))
    refused = [(r["id"], r.get("reason")) for r in settled if r["status"] != "ready"]
    assert refused == []
    assert len(settled) == UPLOADS
