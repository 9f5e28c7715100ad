"""Verdict latency: from storage's 201 to the API saying `ready`, as a browser sees it,
for uploads one at a time and for many clients at once, on `broker run`."""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from PIL import Image

from bench.common import tree_cpu_seconds
from tests.waiting import stop_process, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
ALONE, UNDER_LOAD, CLIENTS = 10, 300, 20


def _avatar(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (seed % 256, 80, 160)).save(out, "PNG")
    return out.getvalue()


def _upload_and_wait(base: str, token: str, seed: int, long_poll: bool = False) -> float:
    """Seconds from storage accepting the file to the record's verdict."""
    data, session = _avatar(seed), requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    created = session.post(f"{base}/v1/uploads", headers=headers, timeout=30, json={
        "profile": "avatar", "filename": "a.png", "content_type": "image/png",
        "size": len(data)}).json()
    post = created["upload"]
    stored = session.post(post["url"], data=post["fields"], timeout=30,
                          files={"file": ("a.png", data, "image/png")})
    assert stored.status_code == 201, stored.text
    started = time.perf_counter()
    query = {"wait": "20"} if long_poll else {}
    while True:
        record = session.get(f"{base}/v1/uploads/{created['id']}", headers=headers,
                             params=query, timeout=30).json()
        if record["status"] in ("ready", "rejected"):
            return time.perf_counter() - started
        if not long_poll:
            time.sleep(0.02)


def bench_verdicts(port: int, emulator_port: int, push_port: int) -> dict[str, float]:
    broker = str(Path(sys.executable).parent / "broker")
    env = os.environ | {"BROKER_UPLOAD_RATE_LIMIT": "100000/minute",
                        "BROKER_MAX_PENDING_UPLOADS": "10000"}
    for name in ("BROKER_ENDPOINT_URL", "BROKER_JWT_SECRET", "BROKER_PROFILES_FILE"):
        env.pop(name, None)  # `broker run` as a developer starts it
    proc = subprocess.Popen([broker, "run", "--port", str(port), "--emulator-port",
                             str(emulator_port), "--push-port", str(push_port)], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/healthz", process=proc, what="broker run")
        token = subprocess.run([broker, "token", "bench-load"], capture_output=True,
                               text=True, check=True, cwd=ROOT, env=env).stdout.strip()
        alone = [_upload_and_wait(base, token, i) for i in range(ALONE)]
        started, cpu_before = time.perf_counter(), tree_cpu_seconds(proc.pid)
        with ThreadPoolExecutor(CLIENTS) as clients:
            loaded = sorted(clients.map(lambda i: _upload_and_wait(base, token, i),
                                        range(UNDER_LOAD)))
        wall, cpu = time.perf_counter() - started, tree_cpu_seconds(proc.pid) - cpu_before
        with ThreadPoolExecutor(CLIENTS) as clients:
            waited = sorted(clients.map(lambda i: _upload_and_wait(base, token, i, True),
                                        range(UNDER_LOAD)))
    finally:
        stop_process(proc, grace=120, group=True)
    return {"alone_p50": statistics.median(alone), "load_p50": loaded[len(loaded) // 2],
            "load_p99": loaded[int(len(loaded) * 0.99) - 1],
            "per_second": len(loaded) / wall, "per_cpu_second": len(loaded) / cpu,
            "waited_p50": waited[len(waited) // 2],
            "waited_p99": waited[int(len(waited) * 0.99) - 1]}

