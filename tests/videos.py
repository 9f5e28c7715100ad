"""Videos for the corpus: made by a real encoder (Debian's ffmpeg), and built by hand
box by box, for the hostile shapes an encoder never writes."""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from functools import cache
from pathlib import Path

FFMPEG_INSTALL = "apt-get install ffmpeg"
_SOURCE = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-f", "lavfi",
           "-i", "sine=frequency=440", "-t", "1"]


def ffmpeg_installed() -> bool:
    return shutil.which("ffmpeg") is not None


def _ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise FileNotFoundError(f"ffmpeg is needed: {FFMPEG_INSTALL}")
    return found


@cache
def encoded(name: str) -> bytes:
    """One second of test pattern and tone, encoded as `name` says."""
    codecs = {
        "mp4": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"],
        "mp4-faststart": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                          "-movflags", "+faststart"],
        "mp4-fragmented": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                           "-movflags", "frag_keyframe+empty_moov", "-g", "2"],
        "mov": ["-c:v", "mpeg4", "-c:a", "aac"],
        "webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-c:a", "libopus"],
        "mkv": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "flac"],
    }
    suffix = {"mov": "mov", "webm": "webm", "mkv": "mkv"}.get(name, "mp4")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / f"v.{suffix}"
        subprocess.run([_ffmpeg(), "-v", "error", *_SOURCE, *codecs[name], str(out)],
                       check=True, timeout=120)
        return out.read_bytes()


@cache
def streamed_webm() -> bytes:
    """WebM written to a pipe, as a browser's MediaRecorder writes it: the Segment and
    its clusters of unknown size (nothing could be written back)."""
    return subprocess.run([_ffmpeg(), "-v", "error", *_SOURCE, "-c:v", "libvpx-vp9",
                           "-deadline", "realtime", "-c:a", "libopus", "-f", "webm",
                           "pipe:1"], check=True, timeout=120, capture_output=True).stdout


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def tiny_mp4(brand: bytes = b"isom", boxes: list[bytes] | None = None) -> bytes:
    """A structurally valid MP4 of a few boxes (its media is not real)."""
    ftyp = box(b"ftyp", brand + b"\0\0\2\0" + b"isomiso2avc1mp41")
    body = boxes if boxes is not None else [box(b"moov", box(b"mvhd", bytes(100))),
                                             box(b"mdat", bytes(4000))]
    return ftyp + b"".join(body)
