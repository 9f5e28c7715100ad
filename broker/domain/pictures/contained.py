"""Picture work in a child process with CPU-time, memory and file limits: a decoder
crash or a bomb costs one child and ends in a refusal, never the worker that asked.

Children fork from a small server that has already imported the decoders
(`forkserver`), so each costs a fork and its picture's work, and never inherits the
worker's threads or open connections, nor runs the program's main module.
"""

from __future__ import annotations

import json
import pickle
import signal
import socket
from dataclasses import dataclass

from broker.domain.pictures import forkserver, wire
from broker.domain.pictures.forkserver import PicturesUnavailable
from broker.domain.pictures.model import PictureJob, Refusal, Rendered
from broker.domain.pictures.rendering import render

_WARM = "broker.domain.pictures.warm"  # the decoders, imported and made ready


@dataclass(frozen=True)
class PictureLimits:
    """What one picture's decoding and writing may take (BROKER_PICTURE_MEMORY: bytes of
    heap, BROKER_PICTURE_CPU_SECONDS); `contained=False` runs it in the caller's process."""

    memory: int = 2 * 1024**3
    cpu_seconds: int = 60
    contained: bool = True


DEFAULT_LIMITS = PictureLimits()
__all__ = ["DEFAULT_LIMITS", "PictureLimits", "PicturesUnavailable", "rendered"]


def rendered(job: PictureJob, limits: PictureLimits) -> Rendered:
    """The job's outcome; a child that dies or overruns its limits is a refusal."""
    if not limits.contained:
        return render(job)
    # The CPU limit ends a busy child; the server's wall-clock deadline, one that waits.
    deadline = limits.cpu_seconds * 2 + 10
    with forkserver.connect(_WARM) as connection:
        connection.settimeout(deadline + 60)  # the server's deadline, missed: it is gone
        try:
            wire.send(connection, wire.DEADLINE, json.dumps({"seconds": deadline}).encode())
            wire.send(connection, wire.JOB, pickle.dumps((job, limits)))
        except OSError:
            pass  # the child ended before it read the whole job: how, the server says
        return _answer(connection, limits)


def _answer(connection: socket.socket, limits: PictureLimits) -> Rendered:
    """The child's answer, or why it gave none."""
    try:
        while (frame := wire.receive(connection)) is not None:
            kind, payload = frame
            if kind == wire.ANSWER:
                return wire.decode_rendered(payload)
            if kind == wire.EXIT:
                return Rendered(_death(forkserver.exit_code(payload), limits))
    except wire.UnreadableAnswer as exc:
        return Rendered(Refusal("malformed", f"the image decoder's answer is unreadable: "
                                             f"{exc}"))
    except TimeoutError:
        return Rendered(_death(None, limits))
    except (OSError, EOFError):
        pass
    raise PicturesUnavailable("the pictures' fork server gave no answer (it could not "
                              "fork a child, or it ended); see the errors it printed")


def _death(exitcode: int | None, limits: PictureLimits) -> Refusal:
    """Why a child gave no answer, as a refusal."""
    if exitcode in (-signal.SIGXCPU, -signal.SIGKILL, None):
        return Refusal("decompression_bomb",
                       f"decoding took more than {limits.cpu_seconds} s of CPU")
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        return Refusal("malformed", f"the image decoder crashed ({name})")
    return Refusal("malformed", f"the image decoder stopped (exit code {exitcode})")
