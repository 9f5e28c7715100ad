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


class PostgresServer:
    """One cluster in a folder of its own; it can be stopped and started again on the
    same data and port (a database restart, as operators do them)."""

    def __init__(self) -> None:
        bin_dir = postgres_bin()
        assert bin_dir is not None, "PostgreSQL is not installed"
        self.bin = bin_dir
        self.workdir = Path(tempfile.mkdtemp(prefix="broker-pg-"))
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.workdir, owner.pw_uid, owner.pw_gid)
        self.port = _free_port()
        self.url = f"postgresql://{USER}@127.0.0.1:{self.port}/broker"
        self._process: subprocess.Popen[bytes] | None = None
        self._log = self.workdir / "server.log"

    def create(self) -> None:
        subprocess.run(
            _as_owner([str(self.bin / "initdb"), "-D", str(self.workdir / "data"), "-U", USER,
                       "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
        self.start()
        subprocess.run(_as_owner([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p",
                                  str(self.port), "-U", USER, "broker"]), check=True,
                       timeout=300)

    def start(self) -> None:
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                _as_owner([str(self.bin / "postgres"), "-D", str(self.workdir / "data"),
                           "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                           "-c", f"unix_socket_directories={self.workdir}",
                           "-c", "fsync=off", "-c", "synchronous_commit=off",
                           "-c", "full_page_writes=off", "-c", "max_connections=200"]),
                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        try:
            self._wait_until_accepting()
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int | None:
        """The process that started the server: its tree is the server's, backends too."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None

    def stop(self) -> None:
        from contextlib import suppress

        from tests.waiting import STOP_GRACE, stop_process

        if self._process is not None:
            # A fast shutdown (sessions ended, data kept), as a service restart does; a
            # server that does not end in time is killed (its session: runuser, postgres
            # and its backends), and reaped either way.
            with suppress(subprocess.TimeoutExpired):
                subprocess.run(_as_owner([str(self.bin / "pg_ctl"), "stop", "-m", "fast",
                                          "-t", "60", "-D", str(self.workdir / "data")]),
                               check=False, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=90)
            stop_process(self._process, sig=None, grace=STOP_GRACE, group=True)
            self._process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _wait_until_accepting(self) -> None:
        from tests.waiting import PROBE_TIMEOUT, wait_until_ready

        def accepting() -> bool:
            return subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p",
                                   str(self.port), "-q", "-t", str(int(PROBE_TIMEOUT))],
                                  check=False, timeout=PROBE_TIMEOUT + 5).returncode == 0

        wait_until_ready(f"PostgreSQL on 127.0.0.1:{self.port}", accepting,
                         process=self._process, log=self._log)


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Create and start a cluster with a `broker` database; remove it afterwards."""
    server = PostgresServer()
    try:
        server.create()
        yield server
    finally:
        server.remove()


def new_database(url: str, name: str) -> str:
    """An empty database `name` (made anew) on the server `url` reaches; its URL."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + f"/{name}"
