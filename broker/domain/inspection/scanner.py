"""Malware scanning: clamd over its INSTREAM protocol, or none.

The object is streamed to clamd in chunks straight from storage; it is never
held whole. A scanner that cannot be reached or answers oddly raises
ScannerUnavailable: the object stays unpublished and the event is retried.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlparse

# clamd's StreamMaxLength defaults to 25 MiB; larger streams are cut off with an error.
DEFAULT_STREAM_MAX = 25 * 1024 * 1024


class ScannerUnavailable(Exception):
    """The scanner could not give a verdict; try again later."""

    service = "scanner"


@dataclass(frozen=True)
class ScanResult:
    """Clean, or the name of the signature that matched."""

    signature: str | None = None

    @property
    def clean(self) -> bool:
        return self.signature is None


class Scanner(Protocol):
    """Anything that can judge a stream of bytes for malware."""

    stream_max: int | None

    def scan(self, chunks: Iterable[bytes]) -> ScanResult: ...


class NoScanner:
    """For deployments without a malware scanner: every stream is clean."""

    stream_max: int | None = None

    def scan(self, chunks: Iterable[bytes]) -> ScanResult:
        return ScanResult()  # reads nothing: no scan, no hash


class ClamdScanner:
    """clamd's INSTREAM command over `unix:///path` or `tcp://host:port`."""

    def __init__(self, address: str, timeout: float = 30.0,
                 stream_max: int = DEFAULT_STREAM_MAX) -> None:
        self.address = address
        self.timeout = timeout
        self.stream_max: int | None = stream_max

    def _connect(self) -> socket.socket:
        where = urlparse(self.address)
        if where.scheme not in ("unix", "tcp"):
            raise ScannerUnavailable(f"clamd address must be unix:// or tcp://: {self.address}")
        try:
            if where.scheme == "tcp":
                return socket.create_connection((where.hostname, where.port or 3310),
                                                timeout=self.timeout)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(where.path)
            except OSError:
                sock.close()
                raise
            return sock
        except OSError as exc:
            raise ScannerUnavailable(f"cannot reach clamd at {self.address}: {exc}") from exc

    def scan(self, chunks: Iterable[bytes]) -> ScanResult:
        with self._connect() as sock:
            try:
                sock.sendall(b"zINSTREAM\0")
                for chunk in chunks:
                    for start in range(0, len(chunk), 64 * 1024):
                        piece = chunk[start:start + 64 * 1024]
                        sock.sendall(struct.pack(">I", len(piece)) + piece)
                sock.sendall(struct.pack(">I", 0))
                reply = _read_reply(sock)
            except OSError as exc:
                said = _last_words(sock)
                raise ScannerUnavailable(f"clamd stopped answering: {exc}"
                                         + (f" (it said {said!r})" if said else "")) from exc
        return _parse(reply)

    def ping(self) -> bool:
        """True when clamd answers PING."""
        try:
            with self._connect() as sock:
                sock.sendall(b"zPING\0")
                return _read_reply(sock) == "PONG"
        except (OSError, ScannerUnavailable):
            return False


def _last_words(sock: socket.socket) -> str:
    """What clamd said before it closed on us (over its stream limit, say), if anything:
    its answer may still wait to be read after our write found the pipe broken."""
    try:
        sock.settimeout(1.0)
        return _read_reply(sock)
    except OSError:
        return ""


def _read_reply(sock: socket.socket) -> str:
    reply = b""
    while not reply.endswith(b"\0"):
        data = sock.recv(4096)
        if not data:
            break
        reply += data
    return reply.rstrip(b"\0").decode("utf-8", "replace").strip()


def _parse(reply: str) -> ScanResult:
    # "stream: OK", "stream: Eicar-Test-Signature FOUND", "... ERROR"
    if reply.endswith("FOUND"):
        return ScanResult(reply.removeprefix("stream:").removesuffix("FOUND").strip())
    if reply.endswith("OK"):
        return ScanResult()
    raise ScannerUnavailable(f"clamd answered {reply!r}")


def make_scanner(kind: str, address: str | None, timeout: float, stream_max: int) -> Scanner:
    """The configured scanner."""
    if kind == "none":
        return NoScanner()
    if not address:
        raise ValueError("BROKER_CLAMD_ADDRESS is required when BROKER_SCANNER is clamd")
    return ClamdScanner(address, timeout, stream_max)


# Where Debian's and most distributions' clamav-daemon listen.
LOCAL_CLAMD_SOCKETS = ("/run/clamav/clamd.ctl", "/var/run/clamav/clamd.ctl",
                       "/run/clamd.scan/clamd.sock")


def find_local_clamd(candidates: Iterable[str] | None = None) -> str | None:
    """The address of a clamd running on this machine that answers PING, if any."""
    for path in LOCAL_CLAMD_SOCKETS if candidates is None else candidates:
        address = f"unix://{path}"
        try:
            if ClamdScanner(address, timeout=2.0).ping():
                return address
        except (ScannerUnavailable, OSError, ValueError):
            continue
    return None
