"""Verdicts under load on `broker run` (emulator, validator and broker, as `make run`
starts them), each verdict learned as a browser learns it: storage's 201, then a long
poll (`?wait=20`) until the upload is `ready` or `rejected`.

1. Idle: one upload at a time; the median from the 201 to the verdict.
2. Capacity: clients in a closed loop, each uploading again as soon as it hears its
   verdict; verdicts a second, and the stack's CPU (every process of `broker run`)
   per verdict. Every upload is a valid avatar: one that ends `rejected` is judged
   wrongly, one with no verdict within `LOST_AFTER` seconds is lost.
3. Half capacity: an open loop, uploads arriving at random (Poisson, fixed seed) at
   half the measured rate, whatever the stack answers; p50 and p99 of the verdict.
"""

from __future__ import annotations

import io
import itertools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests
from PIL import Image

from bench.common import command_line, percentile, process, tree_cpu_by_process

BROKER = str(Path(sys.executable).parent / "broker")
IDLE = 30
CLIENTS = 16
LOAD_UPLOADS = int(os.environ.get("BENCH_LOAD_UPLOADS", "10000"))
HALF_UPLOADS = int(os.environ.get("BENCH_HALF_UPLOADS", "2000"))
LOST_AFTER = 120.0
SEED = 25


def _avatar(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (seed % 256, 80, 160)).save(out, "PNG")
    return out.getvalue()


@dataclass
class Outcomes:
    """Every upload's end: its verdict latency (seconds from the 201), or why not."""

    seconds: list[float] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def count(self) -> int:
        return len(self.seconds) + len(self.wrong) + len(self.lost)


@dataclass
class Stack:
    base: str
    tokens: list[str]
    parts: dict[int, str]  # the stack's processes, each the root of a part's tree
    _local: threading.local = field(default_factory=threading.local)

    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session  # type: ignore[no-any-return]

    def upload(self, n: int, into: Outcomes) -> None:
        """One avatar from user n % users, followed to its verdict."""
        session, data = self.session(), _avatar(n)
        headers = {"Authorization": f"Bearer {self.tokens[n % len(self.tokens)]}"}
        created = session.post(f"{self.base}/v1/uploads", headers=headers, timeout=30, json={
            "profile": "avatar", "filename": "a.png", "content_type": "image/png",
            "size": len(data)})
        assert created.status_code == 201, created.text
        upload_id, post = created.json()["id"], created.json()["upload"]
        stored = session.post(post["url"], data=post["fields"], timeout=30,
                              files={"file": ("a.png", data, "image/png")})
        assert stored.status_code == 201, stored.text
        started = time.perf_counter()
        while True:
            status = session.get(f"{self.base}/v1/uploads/{upload_id}", headers=headers,
                                 params={"wait": "20"}, timeout=60).json()["status"]
            waited = time.perf_counter() - started
            with into.lock:
                if status == "ready":
                    into.seconds.append(waited)
                elif status == "rejected":
                    into.wrong.append(upload_id)
                elif waited > LOST_AFTER:
                    into.lost.append(upload_id)
                    print(f"  lost: {upload_id} still {status} after {LOST_AFTER:.0f} s",
                          file=sys.stderr, flush=True)
                else:
                    continue
            return


# The shipped avatar profile without its renditions: the verdict alone, as before
# pictures were made at the verdict.
PLAIN_AVATARS = """
[avatar]
visibility = "public"
max_size = "5 MiB"

[avatar.types]
"image/png" = ["png"]
"""


def _run_env(profiles: Path | None = None) -> dict[str, str]:
    """`broker run`'s environment, and `broker token`'s: as a developer has it (no
    settings of the other benchmarks), limits raised for the load; `profiles` replaces
    the shipped profiles."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    if profiles is not None:
        env["BROKER_PROFILES_FILE"] = str(profiles)
    return env | {"BROKER_UPLOAD_RATE_LIMIT": "1000000/minute",
                  "BROKER_MAX_PENDING_UPLOADS": "10000"}


def _token(folder: str, user: str, env: dict[str, str]) -> str:
    return subprocess.run([BROKER, "token", user], capture_output=True, text=True,
                          check=True, cwd=folder, env=env).stdout.strip()


def _closed_loop(stack: Stack, uploads: int, clients: int, into: Outcomes,
                 progress: Callable[[int], None]) -> None:
    counter = iter(range(uploads))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            stack.upload(n, into)
            if into.count % 1000 == 0:
                progress(into.count)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _arrivals(uploads: int, rate: float) -> list[float]:
    """Seconds from the start at which each upload arrives: Poisson, `rate` a second."""
    gaps = random.Random(SEED)
    return list(itertools.accumulate(gaps.expovariate(rate) for _ in range(uploads)))


def _open_loop(stack: Stack, arrivals: list[float], into: Outcomes) -> None:
    """An upload started at each of `arrivals` (seconds from now), answered or not."""
    with ThreadPoolExecutor(256) as pool:
        started: list[Future[None]] = []
        start = time.perf_counter()
        for n, due in enumerate(arrivals):
            time.sleep(max(0.0, start + due - time.perf_counter()))
            started.append(pool.submit(stack.upload, n, into))
        for future in started:
            future.result()


def ideal_machine(arrivals: list[float], service: float) -> list[float]:
    """Each arrival's latency on an ideal machine: one queue, first come first served,
    each verdict `service` seconds of the whole machine (1 / its capacity), so its idle
    latency is `service`. Queueing alone sets its tail: a peer for the measured one."""
    free, latencies = 0.0, []
    for at in arrivals:
        free = max(free, at) + service
        latencies.append(free - at)
    return latencies


def bench_verdicts(port: int, emulator_port: int, push_port: int, *, renditions: bool
                   ) -> dict[str, float]:
    """The figures for avatars with the shipped profile's three renditions, or for the
    verdict alone (`renditions` False)."""
    base = f"http://127.0.0.1:{port}"
    run = [BROKER, "run", "--port", str(port), "--emulator-port", str(emulator_port),
           "--push-port", str(push_port)]
    # In a folder of its own: the developer's .broker (records, files, secret) untouched.
    with tempfile.TemporaryDirectory(prefix="broker-bench-") as folder:
        profiles = None
        if not renditions:
            profiles = Path(folder) / "profiles.toml"
            profiles.write_text(PLAIN_AVATARS)
        env = _run_env(profiles)
        with process(run, env, f"{base}/healthz", cwd=folder, grace=120) as stack:
            tokens = [_token(folder, f"bench-load-{i}", env) for i in range(CLIENTS)]
            return measure(Stack(base, tokens, {stack.pid: "broker"}), LOAD_UPLOADS,
                            HALF_UPLOADS) | {"renditions": renditions}


# The first mark a command line holds names its part (the fork server's names the
# validator's module too).
PARTS = {"broker.domain.pictures.forkserver": "pictures",
         "broker.devstack.emulator": "emulator", "worker_process": "validator"}


def _part(pid: int, otherwise: str) -> str:
    """Which part of the stack a process is: by its command line, else its tree's."""
    line = command_line(pid)
    return next((part for mark, part in PARTS.items() if mark in line), otherwise)


class Meter:
    """The stack's CPU from now on, in total and by part."""

    def __init__(self, roots: dict[int, str]) -> None:
        self.roots = roots
        self.before = self._now()

    def _now(self) -> dict[int, tuple[float, str]]:
        return {pid: (seconds, _part(pid, part)) for root, part in self.roots.items()
                for pid, seconds in tree_cpu_by_process(root).items()}

    def by_part(self) -> dict[str, float]:
        spent: dict[str, float] = {}
        for pid, (seconds, part) in self._now().items():
            before = self.before.get(pid, (0.0, part))[0]
            spent[part] = spent.get(part, 0.0) + seconds - before
        return spent


def measure(stack: Stack, uploads: int, half_uploads: int) -> dict[str, float]:
    """One stack's figures: idle, then `uploads` in a closed loop (the capacity), then
    `half_uploads` arriving at random at half of it; the CPU of each of `stack.parts`."""
    idle = Outcomes()
    for n in range(IDLE):
        stack.upload(n, idle)
    loaded = Outcomes()
    started, meter = time.perf_counter(), Meter(stack.parts)
    _closed_loop(stack, uploads, CLIENTS, loaded,
                 lambda done: print(f"  … {done} of {uploads} uploads judged",
                                    file=sys.stderr, flush=True))
    wall, parts = time.perf_counter() - started, meter.by_part()
    cpu = sum(parts.values())
    capacity = loaded.count / wall
    half, arrivals = Outcomes(), _arrivals(half_uploads, capacity / 2)
    half_started, meter = time.perf_counter(), Meter(stack.parts)
    _open_loop(stack, arrivals, half)
    half_wall = time.perf_counter() - half_started
    half_parts = meter.by_part()
    half_cpu = sum(half_parts.values())
    ideal = ideal_machine(arrivals, 1 / capacity)
    return {**{f"part_{part}": seconds / loaded.count for part, seconds in parts.items()},
        "idle_p50": statistics.median(idle.seconds),
        "load_uploads": loaded.count, "load_wrong": len(loaded.wrong),
        "load_lost": len(loaded.lost), "load_p50": percentile(loaded.seconds, 0.5),
        "load_p99": percentile(loaded.seconds, 0.99), "capacity": capacity,
        "cpu_per_verdict": cpu / loaded.count, "stack_cores": cpu / wall,
        "half_rate": capacity / 2, "half_uploads": half.count,
        "half_wrong": len(half.wrong), "half_lost": len(half.lost),
        "half_p50": percentile(half.seconds, 0.5), "half_p99": percentile(half.seconds, 0.99),
        "half_achieved": half.count / half_wall, "ideal_p99": percentile(ideal, 0.99),
        "half_cpu_per_verdict": half_cpu / half.count,
        **{f"half_part_{part}": seconds / half.count for part, seconds in half_parts.items()},
    }


def print_verdicts(v: dict[str, float], concurrency: str, where: str = "`broker run`"
                   ) -> None:
    made = "each with its three renditions" if v["renditions"] else "no renditions"
    print(f"\nverdicts on {where}:\n  256x256 PNG avatars, {made}; from storage's 201 to "
          f"the verdict learned by long poll; worker concurrency {concurrency}")
    print(f"  idle, one upload at a time ({IDLE}): p50 {v['idle_p50'] * 1000:.0f} ms")
    print(f"  capacity, {CLIENTS} clients in a closed loop, {v['load_uploads']:.0f} uploads: "
          f"{v['capacity']:.1f} verdicts/s on {v['stack_cores']:.2f} cores = "
          f"{v['capacity'] / v['stack_cores']:.1f} verdicts/s per core; "
          f"{v['cpu_per_verdict'] * 1000:.1f} ms of stack CPU per verdict; "
          f"p50 {v['load_p50'] * 1000:.0f} ms, p99 {v['load_p99'] * 1000:.0f} ms")
    print(f"    CPU per verdict by part: {_by_part(v, 'part_')}")
    print(f"    judged wrongly (a valid avatar rejected): {v['load_wrong']:.0f}; lost (no "
          f"verdict within {LOST_AFTER:.0f} s): {v['load_lost']:.0f}")
    print(f"  half capacity, open loop, Poisson arrivals at {v['half_rate']:.1f}/s "
          f"({v['half_uploads']:.0f} uploads, {v['half_achieved']:.1f}/s achieved): "
          f"p50 {v['half_p50'] * 1000:.0f} ms, p99 {v['half_p99'] * 1000:.0f} ms = "
          f"{v['half_p99'] / v['idle_p50']:.1f}x the idle p50; "
          f"{v['half_cpu_per_verdict'] * 1000:.1f} ms of stack CPU per verdict")
    print(f"    CPU per verdict by part: {_by_part(v, 'half_part_')}")
    print(f"    judged wrongly: {v['half_wrong']:.0f}; lost: {v['half_lost']:.0f}")
    service = 1 / v["capacity"]
    print(f"    peer: the same arrivals on an ideal machine of this capacity (one queue, "
          f"{service * 1000:.1f} ms of the whole machine a verdict, its idle latency): "
          f"p99 {v['ideal_p99'] * 1000:.0f} ms = {v['ideal_p99'] / service:.1f}x its idle; "
          f"measured / ideal p99: {v['half_p99'] / v['ideal_p99']:.2f}x")


def _by_part(v: dict[str, float], prefix: str) -> str:
    return ", ".join(f"{name[len(prefix):]} {seconds * 1000:.1f} ms"
                     for name, seconds in v.items() if name.startswith(prefix))
