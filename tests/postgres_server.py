"""A throwaway PostgreSQL cluster from Debian's `postgresql` package, on loopback.

initdb refuses to run as root, so as root the cluster belongs to the `postgres`
system user (in a folder of its own that it can reach); otherwise to the caller.
Durability is off (`fsync=off`): the tests judge behaviour, not crash safety of disks.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USER = "broker"


def postgres_bin() -> Path | None:
    """The newest installed server's bin folder (/usr/lib/postgresql/N/bin)."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                      else 0)
    return versions[-1].parent if versions else None


def postgres_installed() -> bool:
    return postgres_bin() is not None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@contextmanager
def running_postgres() -> Iterator[str]:
    """Start a cluster; yield the URL of its `broker` database; stop and remove it."""
    bin_dir = postgres_bin()
    assert bin_dir is not None, "PostgreSQL is not installed"
    workdir = Path(tempfile.mkdtemp(prefix="broker-pg-"))
    data = workdir / "data"
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(workdir, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    process: subprocess.Popen[bytes] | None = None
    log = (workdir / "server.log").open("wb")
    try:
        subprocess.run(
            _as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", USER,
                       "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        process = subprocess.Popen(
            _as_owner([str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
                       "-c", "listen_addresses=127.0.0.1",
                       "-c", f"unix_socket_directories={workdir}",
                       "-c", "fsync=off", "-c", "synchronous_commit=off",
                       "-c", "full_page_writes=off", "-c", "max_connections=200"]),
            stdout=subprocess.DEVNULL, stderr=log)
        _wait_until_accepting(bin_dir, port, process, workdir / "server.log")
        subprocess.run(_as_owner([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p",
                                  str(port), "-U", USER, "broker"]), check=True)
        yield f"postgresql://{USER}@127.0.0.1:{port}/broker"
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_until_accepting(bin_dir: Path, port: int, process: subprocess.Popen[bytes],
                          log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        ready = subprocess.run([str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p",
                                str(port), "-q"], check=False)
        if ready.returncode == 0:
            return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL did not start:\n{log.read_text()}")
        time.sleep(0.1)
