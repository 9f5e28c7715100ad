"""Large files, side by side.

1. A 1 GiB video uploaded in parts through the broker (gunicorn, one worker) and the
   emulator, as a client does it: part URLs asked for in batches of 100 (with each
   part's SHA-256), four parts in flight, then completion. Figures: wall time and
   throughput, and the broker's CPU per part URL and per completion.
2. The validator on 100 MiB, 1 GiB and 6 GiB videos, each in a fresh process: wall
   time and peak memory, with the ratio to the 100 MiB figures. 6 GiB is promoted
   by a copy in parts (over the 5 GiB a single CopyObject takes); it runs on Ceph
   RGW, because the emulator holds objects in memory and copies whole values for
   every part, which no real store does.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from bench.common import (
    SECRET,
    bench_env,
    fine_cpu_seconds,
    free_port,
    process,
    running_rgw,
    stage_upload,
    validate_in_fresh_process,
    worker_pid,
)

MIB = 1024 * 1024
UPLOAD_MIB = 1024
VALIDATE_MIB = (100, 1024, 6 * 1024)
CHUNK = 8 * MIB
SIGN_ROUNDS = 10  # every part's URL asked for this many times: enough CPU to measure
RGW_MEMSTORE = 16 * 1024 * MIB  # a 6 GiB source and its 6 GiB copy, in memory


def write_video(path: Path, size: int) -> None:
    """A structurally valid MP4 of `size` bytes: ftyp, moov, and media padding."""
    ftyp = struct.pack(">I4s", 24, b"ftyp") + b"isom\0\0\2\0isommp41"
    moov = struct.pack(">I4s", 108, b"moov") + struct.pack(">I4s", 100, b"mvhd") + bytes(92)
    media = size - len(ftyp) - len(moov) - 16
    with open(path, "wb") as out:
        out.write(ftyp + moov + struct.pack(">I4sQ", 1, b"mdat", media + 16))
        zeros = bytes(CHUNK)
        for _ in range(media // CHUNK):
            out.write(zeros)
        out.write(bytes(media % CHUNK))


def _part(path: Path, part_size: int, number: int) -> bytes:
    with open(path, "rb") as source:
        source.seek((number - 1) * part_size)
        return source.read(part_size)


def bench_upload_in_parts(endpoint: str) -> dict[str, float]:
    """One 1 GiB upload in parts through a broker under gunicorn."""
    from bench.presign import _gunicorn
    from broker.domain.auth import issue_token

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "holiday.mp4"
        size = UPLOAD_MIB * MIB
        write_video(path, size)
        env = bench_env(endpoint) | {"BROKER_DATABASE_URL": f"sqlite:///{folder}/records.db"}
        port = free_port()
        with process(_gunicorn("bench.apps:broker_app()", port, env), env,
                     f"http://127.0.0.1:{port}/healthz") as broker:
            pid = worker_pid(broker.pid)
            base = f"http://127.0.0.1:{port}/v1/uploads"
            headers = {"Authorization": f"Bearer {issue_token(SECRET.encode(), 'big', 3600)}"}
            session = requests.Session()
            started = time.perf_counter()
            created = session.post(base, headers=headers, timeout=30, json={
                "profile": "video", "filename": "holiday.mp4", "content_type": "video/mp4",
                "size": size}).json()
            plan, upload_id = created["upload"], created["id"]
            numbers = list(range(1, plan["part_count"] + 1))
            hashes = {str(n): base64.b64encode(hashlib.sha256(
                _part(path, plan["part_size"], n)).digest()).decode() for n in numbers}
            signing_cpu, signed = 0.0, {}
            for _ in range(SIGN_ROUNDS):  # URLs may be asked for again: the last ones serve
                for start in range(0, len(numbers), 100):
                    batch = numbers[start:start + 100]
                    before = fine_cpu_seconds(pid)
                    reply = session.post(f"{base}/{upload_id}/parts", headers=headers,
                                         timeout=60, json={"part_numbers": batch, "sha256": {
                                             str(n): hashes[str(n)] for n in batch}})
                    signing_cpu += fine_cpu_seconds(pid) - before
                    signed |= {p["part_number"]: p for p in reply.json()["parts"]}

            def put(number: int) -> None:
                part = signed[number]
                stored = requests.put(part["url"], data=_part(path, plan["part_size"], number),
                                      headers=part["headers"], timeout=300)
                assert stored.status_code == 200, stored.text

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(put, numbers))
            before = fine_cpu_seconds(pid)
            done = session.post(f"{base}/{upload_id}/complete", headers=headers, json={},
                                timeout=600)
            complete_cpu = fine_cpu_seconds(pid) - before
            assert done.status_code == 200, done.text
            elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "mib_per_s": UPLOAD_MIB / elapsed, "parts": len(numbers),
            "cpu_per_part_url_ms": signing_cpu / (len(numbers) * SIGN_ROUNDS) * 1000,
            "cpu_complete_ms": complete_cpu * 1000}


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """These settings for the block (the staging code reads them), then the old ones."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _validate(env: dict[str, str], mib: int) -> dict[str, float]:
    from broker.domain.uploads import MAX_SINGLE_REQUEST

    size = mib * MIB
    method = "multipart" if size > MAX_SINGLE_REQUEST else "POST"
    with _environment(env):
        key = stage_upload("video", "film.mp4", "video/mp4", size,
                           lambda path: write_video(path, size), method)
    return validate_in_fresh_process(key, env)


def bench_large_validation(endpoint: str) -> dict[int, dict[str, Any]]:
    """{MiB: figures and where they ran}; 6 GiB only where Ceph RGW is installed."""
    results: dict[int, dict[str, Any]] = {}
    emulator = bench_env(endpoint)
    for mib in VALIDATE_MIB[:2]:
        results[mib] = _validate(emulator, mib) | {"store": "emulator"}
    with _rgw() as rgw:
        if rgw is not None:
            results[VALIDATE_MIB[2]] = _validate(rgw, VALIDATE_MIB[2]) | {"store": "Ceph RGW"}
    return results


@contextmanager
def _rgw() -> Iterator[dict[str, str] | None]:
    """Ceph RGW for storage (records stay in the emulator), when installed."""
    from broker.aws.clients import make_clients
    from broker.provision import provision_storage
    from broker.settings import load_settings

    with running_rgw(RGW_MEMSTORE) as rgw:
        if rgw is None:
            yield None
            return
        env = bench_env(os.environ["BROKER_ENDPOINT_URL"]) | {
            "BROKER_S3_ENDPOINT_URL": rgw.endpoint,
            "AWS_ACCESS_KEY_ID": rgw.access_key, "AWS_SECRET_ACCESS_KEY": rgw.secret_key}
        with _environment(env):
            settings = load_settings()
            provision_storage(make_clients(settings), settings, ["http://127.0.0.1"])
        yield env


def print_large(upload: dict[str, float], validation: dict[int, dict[str, Any]]) -> None:
    print(f"\nlarge files: a {UPLOAD_MIB} MiB video in {upload['parts']:.0f} parts through the "
          "broker and the emulator (four parts in flight):")
    print(f"  {upload['seconds']:.1f} s, {upload['mib_per_s']:.0f} MiB/s; broker CPU "
          f"{upload['cpu_per_part_url_ms']:.3f} ms per part URL (with its SHA-256), "
          f"{upload['cpu_complete_ms']:.1f} ms for the completion (ListParts, checks, "
          "CompleteMultipartUpload)")
    print("validator on videos (structure checks, one SHA-256 pass, promotion), fresh "
          "process each:")
    base = validation[VALIDATE_MIB[0]]
    for mib, figures in validation.items():
        how = "copy in parts" if mib > 5 * 1024 else "one CopyObject"
        print(f"  {mib:>5} MiB on {figures['store']:<9} ({how:<14}) {figures['ms'] / 1000:7.1f} s "
              f"({figures['ms'] / base['ms']:5.1f}x)  Python peak {figures['py_peak_kib']:6.0f} "
              f"KiB ({figures['py_peak_kib'] / base['py_peak_kib']:4.2f}x)  RSS growth "
              f"{figures['rss_growth_kib']:6.0f} KiB")
    if VALIDATE_MIB[2] not in validation:
        print(f"  ({VALIDATE_MIB[2]} MiB needs Ceph RGW: scripts/ceph-rgw.sh install)")
