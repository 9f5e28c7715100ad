"""A throwaway clamd on a unix socket, with a signature database built here.

Signature updates cannot be downloaded in tests, so the database holds only the
EICAR test file: once by MD5 hash (.hdb, as `sigtool --md5` writes it) and once
as a body signature (.ndb) that matches EICAR anywhere, even inside other files.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.corpus import EICAR

CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"


def clamd_installed() -> bool:
    return Path(CLAMD).exists()


def write_database(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    md5 = hashlib.md5(EICAR).hexdigest()  # noqa: S324 - ClamAV's hash signatures are MD5
    (folder / "eicar.hdb").write_text(f"{md5}:{len(EICAR)}:Eicar-Test-Signature-Hash\n")
    (folder / "eicar.ndb").write_text(f"Eicar-Test-Signature-Body:0:*:{EICAR.hex()}\n")


@contextmanager
def running_clamd(workdir: Path, stream_max: str = "50M", tcp_port: int | None = None
                  ) -> Iterator[str]:
    """Start clamd; yield its address (unix://…, or tcp://… with `tcp_port`); stop it."""
    write_database(workdir / "db")
    socket_path = workdir / "clamd.sock"
    config = workdir / "clamd.conf"
    config.write_text(
        f"LocalSocket {socket_path}\nDatabaseDirectory {workdir / 'db'}\nForeground yes\n"
        f"StreamMaxLength {stream_max}\nLogFile {workdir / 'clamd.log'}\n"
        + (f"TCPSocket {tcp_port}\nTCPAddr 127.0.0.1\n" if tcp_port else "")
    )
    process = subprocess.Popen([CLAMD, "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not socket_path.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                log = (workdir / "clamd.log").read_text() if (workdir / "clamd.log").exists() \
                    else ""
                raise RuntimeError(f"clamd did not start:\n{log}")
            time.sleep(0.05)
        yield f"tcp://127.0.0.1:{tcp_port}" if tcp_port else f"unix://{socket_path}"
    finally:
        process.terminate()
        process.wait(timeout=10)
