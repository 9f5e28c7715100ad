"""`make bench`: what the broker and the validator cost, measured side by side.

1. The presign: broker CPU per POST /v1/uploads against a bare Flask endpoint that
   only presigns, the durable floor (that and one INSERT) and Uppy Companion's
   /s3/params, at 1 and 16 concurrent clients. `python -m bench presign` runs this
   part alone.
2. Validator wall time and peak memory per object for 1 MiB and 100 MiB objects
   against the emulator, each in a fresh process.
3. Large files (bench/large.py): a 1 GiB upload in parts, and the validator on
   100 MiB, 1 GiB and 6 GiB videos.
4. Verdicts on `broker run` (bench/verdicts.py): the idle median, the capacity from
   at least 10,000 uploads in a closed loop (none may be judged wrongly or lost), and
   the tail at half that rate, arriving at random. `python -m bench load` runs this
   part alone. The same on the self-hosted topology (bench/self_hosted.py): `python -m
   bench self-hosted`.
5. The hand-written protocol code (bench/protocol.py): our SigV4 signer and DynamoDB
   and SQS clients against botocore's, per call. `python -m bench protocol` runs this
   part alone.
6. Pictures (bench/pictures.py): judging, re-encoding and three renditions of 12 to 48
   megapixel photos, against sharp and the Pillow-only path. `python -m bench pictures`
   runs this part alone.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench.common import bench_env, free_port, stage_upload, validate_in_fresh_process
from bench.presign import bench_presign, print_presign
from bench.protocol import bench_protocol, print_protocol
from broker.compose import compose
from broker.devstack.emulator import EmbeddedEmulator

SIZES_MIB = (1, 10, 100)


def provision_emulator(endpoint: str) -> None:
    from broker.aws.clients import make_clients
    from broker.provision import provision
    from broker.settings import load_settings

    os.environ.update(bench_env(endpoint))
    settings = load_settings()
    provision(make_clients(settings), settings, "uploads-events", ["http://127.0.0.1"])


def write_text(size: int) -> Callable[[Path], None]:
    """`size` bytes of UTF-8 log lines (accents and symbols included), into a file."""
    line = "2026-11-24 12:00:00 INFO request served in 4 ms, naïve café ✓\n".encode()

    def write(path: Path) -> None:
        with open(path, "wb") as out:
            for _ in range(size // len(line)):
                out.write(line)
            out.write(b"." * (size % len(line)))
    return write


def validate_one(key: str) -> dict[str, float]:
    """Run in a fresh process: only the validator's work is measured."""
    from broker.aws.clients import make_clients
    from broker.settings import load_settings
    from broker.validator.events import ObjectRef

    settings = load_settings()
    validator = compose(settings, make_clients(settings)).validator
    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    outcome = validator.process(ObjectRef(settings.incoming_bucket, key))
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_rss
    assert outcome == "accepted", outcome
    return {"ms": elapsed * 1000, "py_peak_kib": peak / 1024, "rss_growth_kib": grown}


def bench_validator(endpoint: str, clamd: str | None) -> dict[tuple[str, int], dict[str, float]]:
    results = {}
    scanners = {"none": {}, "clamd": {"BROKER_SCANNER": "clamd", "BROKER_CLAMD_ADDRESS": clamd,
                                      "BROKER_CLAMD_STREAM_MAX": str(200 * 1024 * 1024)}}
    for scanner, extra in scanners.items():
        if scanner == "clamd" and clamd is None:
            continue
        for mib in SIZES_MIB:
            size = mib * 1024 * 1024
            key = stage_upload("bench", "log.txt", "text/plain", size, write_text(size))
            results[(scanner, mib)] = validate_in_fresh_process(key, bench_env(endpoint) | extra)
    return results


@contextmanager
def optional_clamd():  # type: ignore[no-untyped-def]
    """A clamd for the scanning rows, when the machine has one."""
    import tempfile

    from tests.clamd_server import clamd_installed, running_clamd

    if not clamd_installed():
        yield None
        return
    with tempfile.TemporaryDirectory() as workdir, \
            running_clamd(Path(workdir), stream_max="200M") as address:
        yield address


def bench_load() -> list[dict[str, float]]:
    """The verdict alone, then with the shipped avatar profile's renditions."""
    from bench.verdicts import bench_verdicts

    return [bench_verdicts(free_port(), free_port(), free_port(), renditions=renditions)
            for renditions in (False, True)]


def print_load(runs: list[dict[str, float]]) -> None:
    from bench.verdicts import print_verdicts
    from broker.devstack.stack import LOCAL_WORKER_CONCURRENCY

    for figures in runs:
        print_verdicts(figures, os.environ.get("BROKER_WORKER_CONCURRENCY",
                                               str(LOCAL_WORKER_CONCURRENCY)))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--validate-one":
        print(json.dumps(validate_one(sys.argv[2])))
        return
    from bench.pictures import bench_pictures, print_pictures

    if sys.argv[1:] == ["pictures"]:
        print_pictures(bench_pictures())
        return
    from bench.self_hosted import bench_self_hosted, print_self_hosted

    if sys.argv[1:] == ["load"]:
        print_load(bench_load())
        return
    if sys.argv[1:] == ["self-hosted"]:
        print_self_hosted(bench_self_hosted())
        return
    if sys.argv[1:] == ["protocol"]:
        with EmbeddedEmulator() as emulator:
            provision_emulator(emulator.endpoint)
            print_protocol(bench_protocol())
        return
    if sys.argv[1:] == ["presign"]:
        with EmbeddedEmulator() as emulator:
            provision_emulator(emulator.endpoint)
            print_presign(bench_presign(emulator.endpoint))
        return
    print(f"direct-upload broker benchmark, {datetime.now(UTC):%Y-%m-%d}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    # The emulator `broker run` uses: its own process, kept-alive connections.
    with EmbeddedEmulator() as emulator:
        endpoint = emulator.endpoint
        provision_emulator(endpoint)
        print_presign(bench_presign(endpoint))
        print_protocol(bench_protocol())
        with optional_clamd() as clamd:
            validator = bench_validator(endpoint, clamd)
        print("\nvalidator, one UTF-8 text object each (read whole: decoded, and scanned when")
        print("clamd is on), fresh process, against the emulator:")
        print(f"  {'scanner':>8} {'size':>8} {'time':>10} {'Python peak':>12} {'RSS growth':>11}")
        for (scanner, mib), r in validator.items():
            print(f"  {scanner:>8} {mib:>4} MiB {r['ms']:>8.1f} ms {r['py_peak_kib']:>8.0f} KiB "
                  f"{r['rss_growth_kib']:>7.0f} KiB")
        for scanner in ("none", "clamd"):
            if (scanner, 100) in validator:
                ratio = validator[(scanner, 100)]["py_peak_kib"] / validator[(scanner, 10)][
                    "py_peak_kib"]
                print(f"  {scanner}: Python peak memory 100 MiB / 10 MiB = {ratio:.2f}x "
                      "(flat means ~1)")
        if clamd is None:
            print("  (clamd is not installed: apt-get install clamav-daemon adds the scan rows)")
        from bench.large import bench_large_validation, bench_upload_in_parts, print_large

        print_large(bench_upload_in_parts(endpoint), bench_large_validation(endpoint))
    print_load(bench_load())
    print_self_hosted(bench_self_hosted())

    from bench.growth import bench_growth, print_growth

    print_growth(bench_growth())

    from bench.live_status import CLIENTS as LIVE_CLIENTS
    from bench.live_status import UPLOADS as LIVE_UPLOADS
    from bench.live_status import bench_live_status
    from bench.verdicts import _avatar

    print_pictures(bench_pictures())

    live = bench_live_status(_avatar, free_port)
    print(f"\nlive status: from the record settling to the client knowing ({LIVE_UPLOADS} "
          f"avatars, {LIVE_CLIENTS} clients, one stack in the benchmark's process):")
    for mode, figures in live.items():
        print(f"  {mode:>22}: p50 {figures['p50'] * 1000:6.1f} ms, "
              f"p99 {figures['p99'] * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
