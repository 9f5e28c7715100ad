"""Malware scanning: clamd over its INSTREAM protocol, or none.

The object is streamed to clamd in chunks straight from storage; it is never
held whole. A scanner that cannot be reached or answers oddly raises
ScannerUnavailable: the object stays unpublished and the event is retried.

clamd says a file is clean when it skipped what was over its limits (a member
larger than MaxFileSize, a scan past MaxScanSize), unless it runs with
`AlertExceedsMax yes`: then it names a `Heuristics.Limits.Exceeded.*` signature,
which is read as "not scanned", never as clean or as malware. Its VERSION names
the signature database and its date: readiness and metrics show the age.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlparse

# clamd's StreamMaxLength defaults to 25 MiB; larger streams are cut off with an error.
DEFAULT_STREAM_MAX = 25 * 1024 * 1024


class ScannerUnavailable(Exception):
    """The scanner could not give a verdict; try again later."""

    service = "scanner"


# What clamd names a file it did not scan whole (with AlertExceedsMax).
OVER_LIMITS = "Heuristics.Limits.Exceeded"


@dataclass(frozen=True)
class ScanResult:
    """Clean, or the name of the signature that matched (or of the limit exceeded)."""

    signature: str | None = None

    @property
    def clean(self) -> bool:
        return self.signature is None

    @property
    def over_limits(self) -> bool:
        """The scanner skipped part of the file: it was not scanned whole."""
        return self.signature is not None and self.signature.startswith(OVER_LIMITS)


@dataclass(frozen=True)
class ScannerVersion:
    """The engine and its signature database, as the scanner reports them."""

    engine: str
    signatures: int | None = None
    published: datetime | None = None

    def age_seconds(self, now: datetime) -> float | None:
        return None if self.published is None else (now - self.published).total_seconds()

    def __str__(self) -> str:
        if self.signatures is None or self.published is None:
            return self.engine
        return f"{self.engine}, signatures {self.signatures} of {self.published:%Y-%m-%d}"


class Scanner(Protocol):
    """Anything that can judge a stream of bytes for malware."""

    stream_max: int | None

    def scan(self, chunks: Iterable[bytes]) -> ScanResult: ...

    def version(self) -> ScannerVersion | None: ...


class NoScanner:
    """For deployments without a malware scanner: every stream is clean."""

    stream_max: int | None = None

    def scan(self, chunks: Iterable[bytes]) -> ScanResult:
        return ScanResult()  # reads nothing: no scan, no hash

    def version(self) -> ScannerVersion | None:
        return None


# "ClamAV 1.4.3/27450/Thu Dec  3 09:24:02 2026": engine, database version, its date.
_VERSION = re.compile(r"^(?P<engine>[^/]+)/(?P<signatures>\d+)/(?P<date>.+)$")
VERSION_TTL = 60.0  # seconds a VERSION answer is reused


class ClamdScanner:
    """clamd's INSTREAM command over `unix:///path` or `tcp://host:port`."""

    def __init__(self, address: str, timeout: float = 30.0,
                 stream_max: int = DEFAULT_STREAM_MAX) -> None:
        self.address = address
        self.timeout = timeout
        self.stream_max: int | None = stream_max
        self._version: tuple[float, ScannerVersion] | None = None
        self._version_lock = threading.Lock()

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

    def version(self) -> ScannerVersion:
        """The engine and signature database clamd runs (asked at most once a minute)."""
        with self._version_lock:
            if self._version is None or time.monotonic() - self._version[0] > VERSION_TTL:
                with self._connect() as sock:
                    try:
                        sock.sendall(b"zVERSION\0")
                        reply = _read_reply(sock)
                    except OSError as exc:
                        raise ScannerUnavailable(f"clamd did not say its version: {exc}"
                                                 ) from exc
                self._version = (time.monotonic(), parse_version(reply))
            return self._version[1]

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


def parse_version(reply: str) -> ScannerVersion:
    match = _VERSION.match(reply)
    if match is None:
        return ScannerVersion(reply or "clamd")  # a database of its own: no version, no date
    try:
        published = datetime.strptime(" ".join(match["date"].split()), "%a %b %d %H:%M:%S %Y"
                                      ).replace(tzinfo=UTC)
    except ValueError:
        published = None
    return ScannerVersion(match["engine"], int(match["signatures"]), published)


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
