"""A throwaway clamd on a unix socket, with a signature database built here.

Signature updates cannot be downloaded in tests, so the database holds only the
EICAR test file: once by MD5 hash (.hdb, as `sigtool --md5` writes it) and once
as a body signature (.ndb) that matches EICAR anywhere, even inside other files.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.corpus import EICAR

CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"


def clamd_installed() -> bool:
    return Path(CLAMD).exists()


def write_database(folder: Path, signed: dict[str, bytes] | None = None) -> None:
    """Signatures for EICAR and for each of `signed` (name: the file's bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in {"Eicar-Test-Signature": EICAR, **(signed or {})}.items():
        md5 = hashlib.md5(data).hexdigest()  # noqa: S324 - ClamAV's hash signatures are MD5
        stem = name.lower()
        (folder / f"{stem}.hdb").write_text(f"{md5}:{len(data)}:{name}-Hash\n")
        (folder / f"{stem}.ndb").write_text(f"{name}-Body:0:*:{data.hex()}\n")


@contextmanager
def running_clamd(workdir: Path, stream_max: str = "50M", tcp_port: int | None = None,
                  signed: dict[str, bytes] | None = None, settings: str = "") -> Iterator[str]:
    """Start clamd; yield its address (unix://…, or tcp://… with `tcp_port`); stop it.
    `settings`: more clamd.conf lines."""
    write_database(workdir / "db", signed)
    socket_path = workdir / "clamd.sock"
    config = workdir / "clamd.conf"
    config.write_text(
        f"LocalSocket {socket_path}\nDatabaseDirectory {workdir / 'db'}\nForeground yes\n"
        f"StreamMaxLength {stream_max}\nLogFile {workdir / 'clamd.log'}\n"
        + (f"TCPSocket {tcp_port}\nTCPAddr 127.0.0.1\n" if tcp_port else "") + settings
    )
    from tests.waiting import PROBE_TIMEOUT, stop_process, wait_until_ready

    def answers() -> bool:
        """PING is answered on every socket it was asked to listen on."""
        import socket

        probes: list[tuple[socket.AddressFamily, str | tuple[str, int]]] = [
            (socket.AF_UNIX, str(socket_path))]
        if tcp_port:
            probes.append((socket.AF_INET, ("127.0.0.1", tcp_port)))
        for family, address in probes:
            with socket.socket(family) as probe:
                probe.settimeout(PROBE_TIMEOUT)
                probe.connect(address)
                probe.sendall(b"zPING\0")
                if not probe.recv(16).startswith(b"PONG"):
                    return False
        return True

    with (workdir / "clamd.out").open("wb") as out:
        process = subprocess.Popen([CLAMD, "-c", str(config)], stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        wait_until_ready("clamd", answers, process=process, log=lambda: "\n".join(
            path.read_text(errors="replace") for path in (workdir / "clamd.out",
                                                          workdir / "clamd.log")
            if path.exists()))
        yield f"tcp://127.0.0.1:{tcp_port}" if tcp_port else f"unix://{socket_path}"
    finally:
        stop_process(process)  # SIGTERM, SIGKILL if it hangs; reaped
