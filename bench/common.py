"""What every part of the benchmark shares: ports, processes, CPU readings, settings."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.waiting import START_TIMEOUT, STOP_GRACE, stop_process, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-" + "b" * 40
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process(args: list[str], env: dict[str, str], ready_url: str, *, cwd: Path | str = ROOT,
            grace: float = STOP_GRACE, ready_within: float = START_TIMEOUT
            ) -> Iterator[subprocess.Popen[bytes]]:
    """A server for the length of the block. BENCH_LOGS=folder keeps what each printed."""
    logs = os.environ.get("BENCH_LOGS")
    output: Any = subprocess.DEVNULL
    if logs:
        Path(logs).mkdir(parents=True, exist_ok=True)
        output = open(Path(logs) / f"{Path(args[0]).name}-{free_port()}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_for_http(ready_url, process=proc, what=f"{Path(args[0]).name} ({ready_url})",
                      timeout=ready_within)
        yield proc
    finally:
        # SIGTERM; SIGKILL to its whole group if it is still busy finishing its work.
        stop_process(proc, group=True, grace=grace)
        if output is not subprocess.DEVNULL:
            output.close()


@dataclass(frozen=True)
class Rgw:
    endpoint: str
    access_key: str
    secret_key: str
    workdir: Path

    def daemons(self) -> list[int]:
        """The Ceph daemons' process ids (they detach: their pid files say)."""
        return [int(pid.read_text()) for pid in (self.workdir / "run").glob("*.pid")]


@contextmanager
def running_rgw(memstore_bytes: int | None = None) -> Iterator[Rgw | None]:
    """Ceph RGW on loopback (scripts/ceph-rgw.sh), when installed; else None."""
    if not all(shutil.which(tool) for tool in ("radosgw", "ceph-mon", "ceph-osd")):
        yield None
        return
    script = ROOT / "scripts" / "ceph-rgw.sh"
    size = {"CEPH_MEMSTORE_BYTES": str(memstore_bytes)} if memstore_bytes else {}
    with tempfile.TemporaryDirectory() as workdir:
        port = free_port()
        subprocess.run([str(script), "start", workdir, str(port), str(free_port())],
                       check=True, timeout=180, capture_output=True, env=os.environ | size)
        try:
            access, secret = (Path(workdir) / "s3-keys").read_text().split()
            yield Rgw(f"http://127.0.0.1:{port}", access, secret, Path(workdir))
        finally:
            subprocess.run([str(script), "stop", workdir], check=False, timeout=60)


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (utime is [11], stime [12])."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process, from /proc."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def percentile(values: list[float], share: float) -> float:
    """The value `share` of the way up the sorted values (0.5: the median)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def fine_cpu_seconds(pid: int) -> float:
    """CPU time of every thread of a process, in nanoseconds from the scheduler: for
    work too short for /proc/stat's 10 ms ticks."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
    return total / 1e9


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and of every process it started (broker run's emulator), those
    that ended and were waited for included (a picture's child, a database backend)."""
    return sum(tree_cpu_by_process(pid).values())


def tree_cpu_by_process(pid: int) -> dict[int, float]:
    """{pid: CPU seconds} over a process tree; each counts the children it waited for."""
    try:
        fields = _stat(pid)
        # Children of every thread: a process started from a worker thread too.
        children = [child for task in Path(f"/proc/{pid}/task").iterdir()
                    for child in (task / "children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return {}  # ended meanwhile: its parent counts it once it is waited for
    found = {pid: sum(int(value) for value in fields[11:15]) / CLOCK_TICKS}
    for child in children:
        found |= tree_cpu_by_process(int(child))
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


def bench_env(endpoint: str) -> dict[str, str]:
    return os.environ | {
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1", "BROKER_ENDPOINT_URL": endpoint,
        "BROKER_JWT_SECRET": SECRET, "BROKER_PROFILES_FILE": str(ROOT / "bench/profiles.toml"),
    }


def stage_upload(profile: str, filename: str, content_type: str, size: int,
                 write: Callable[[Path], None], method: str | None = None) -> str:
    """Record an upload with the settings in the environment, then store the file that
    `write` makes (`size` bytes), as a client would. Returns the stored key."""
    from broker.compose import compose
    from broker.domain.presign import UPLOAD_ID_METADATA
    from broker.settings import load_settings

    parts = compose(load_settings())
    settings, clients, uploads = parts.settings, parts.clients, parts.uploads
    record = uploads.create("bench", profile, filename, content_type, size, method).record
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as folder:
        path = Path(folder) / filename
        write(path)
        clients.s3.upload_file(str(path), settings.incoming_bucket, record.incoming_key,
                               ExtraArgs={"Metadata": {UPLOAD_ID_METADATA: record.id},
                                          "ContentType": content_type})
    return record.incoming_key


def validate_in_fresh_process(key: str, env: dict[str, str]) -> dict[str, float]:
    """The validator's figures for one stored object, judged by a process of its own so
    that only its work is measured (`python -m bench --validate-one`)."""
    reply = subprocess.run([sys.executable, "-m", "bench", "--validate-one", key], cwd=ROOT,
                           env=env, capture_output=True, text=True, check=False)
    if reply.returncode != 0:
        raise RuntimeError(f"judging {key} in a fresh process failed:\n{reply.stderr}")
    return dict(json.loads(reply.stdout.strip().splitlines()[-1]))
