"""Live status: from the record settling to the client knowing, for a client that polls
every 200 ms and for one that long-polls (`?wait=20`), side by side on one stack.

The stack runs in this process so the moment a record settles is read from the same
clock as the clients': each state change is timestamped where it is written.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from broker.domain.auth import issue_token
from broker.domain.records import changes

UPLOADS, CLIENTS, POLL_SECONDS = 40, 8, 0.2
SECRET = "bench-secret-" + "x" * 40


def _settle_times() -> dict[str, float]:
    """Wrap the change hook: the last change of each upload is when it settled."""
    times: dict[str, float] = {}
    original = changes.changed

    def stamped(upload_id: str) -> None:
        times[upload_id] = time.perf_counter()
        original(upload_id)
    changes.changed = stamped  # type: ignore[assignment]
    return times


def _client(base: str, token: str, data: bytes, long_poll: bool) -> tuple[str, float]:
    """Upload one avatar and follow it until it settles; (its id, when we knew)."""
    session, headers = requests.Session(), {"Authorization": f"Bearer {token}"}
    created = session.post(f"{base}/v1/uploads", headers=headers, timeout=30, json={
        "profile": "avatar", "filename": "a.png", "content_type": "image/png",
        "size": len(data)}).json()
    post = created["upload"]
    session.post(post["url"], data=post["fields"], timeout=30,
                 files={"file": ("a.png", data, "image/png")})
    query = {"wait": "20"} if long_poll else {}
    while True:
        record = session.get(f"{base}/v1/uploads/{created['id']}", params=query,
                             headers=headers, timeout=30).json()
        if record["status"] in ("ready", "rejected"):
            return created["id"], time.perf_counter()
        if not long_poll:
            time.sleep(POLL_SECONDS)


def bench_live_status(avatar: Callable[[int], bytes], free_port: Callable[[], int]
                      ) -> dict[str, dict[str, float]]:
    from broker.devstack.stack import DevStack
    from broker.web import create_app
    from tests.integration.conftest import serving

    # The stack as `broker run` starts it, whatever earlier measures set.
    for name in [n for n in os.environ if n.startswith("BROKER_")]:
        del os.environ[name]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    stack = DevStack(emulator_port=free_port(), broker_origin=f"http://127.0.0.1:{port}",
                     overrides={"jwt_secret": SECRET, "upload_rate_limit": "100000/minute",
                                "max_pending_uploads": 10000})
    settings = stack.start()
    settled = _settle_times()
    results: dict[str, dict[str, float]] = {}
    try:
        app: Any = create_app(settings.model_dump(), clients=stack.clients)
        with serving(app, port) as base, ThreadPoolExecutor(CLIENTS) as clients:
            token = issue_token(SECRET.encode(), "bench-live", 3600)
            for mode, long_poll in (("polling every 200 ms", False), ("long poll", True)):
                known = list(clients.map(lambda i, lp=long_poll: _client(
                    base, token, avatar(i), lp), range(UPLOADS)))
                delays = sorted(at - settled[upload_id] for upload_id, at in known)
                results[mode] = {"p50": statistics.median(delays),
                                 "p99": delays[int(len(delays) * 0.99) - 1]}
    finally:
        stack.stop()
    return results
