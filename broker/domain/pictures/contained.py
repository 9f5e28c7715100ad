"""Picture work in a child process with CPU-time, memory and file limits: a decoder
crash or a bomb costs one child and ends in a refusal, never the worker that asked.

Children fork from a small server that has already imported the decoders, so each
costs milliseconds, and never inherit the worker's threads or open connections. They
never run the program's main module either, as multiprocessing's children otherwise
do: what they run is here, and a script that judges uploads in its own process (with
no `if __name__ == "__main__":` guard) is not started again in each of them.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.connection
import resource
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import spawn
from typing import Any

from broker.domain.pictures.model import PictureJob, Refusal, Rendered
from broker.domain.pictures.rendering import render
from broker.domain.pictures.streaming import one_thread_no_cache

_WARM = "broker.domain.pictures.warm"  # the decoders, imported and made ready
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, from malloc.h


@dataclass(frozen=True)
class PictureLimits:
    """What one picture's decoding and writing may take (BROKER_PICTURE_MEMORY: bytes of
    heap, BROKER_PICTURE_CPU_SECONDS); `contained=False` runs it in the caller's process."""

    memory: int = 2 * 1024**3
    cpu_seconds: int = 60
    contained: bool = True


DEFAULT_LIMITS = PictureLimits()


class PicturesUnavailable(Exception):
    """The fork server that starts the pictures' children is not working: an outage of
    this machine, not a fault of the picture (judged again later, never refused)."""


def rendered(job: PictureJob, limits: PictureLimits) -> Rendered:
    """The job's outcome; a child that dies or overruns its limits is a refusal."""
    if not limits.contained:
        return render(job)
    context = _context()
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sending, job, limits), daemon=True)
    try:
        with _without_main():
            child.start()  # hands the job over: a child that dies meanwhile breaks the pipe
    except (EOFError, ConnectionRefusedError, FileNotFoundError) as exc:
        # The fork server ended, or never started, before it forked a child.
        receiving.close()
        raise PicturesUnavailable(f"the pictures' fork server failed: {exc}; see the errors "
                                  "it printed") from exc
    except OSError:
        receiving.close()
        _reap(child)
        return Rendered(_death(child.exitcode, limits))
    finally:
        sending.close()
    try:
        # The CPU limit ends a busy child; the wall-clock deadline, one that waits.
        if receiving.poll(limits.cpu_seconds * 2 + 10):
            result: Rendered = receiving.recv()
            return result
    except EOFError:  # the child died before it answered
        pass
    finally:
        receiving.close()
        _reap(child)
    return Rendered(_death(child.exitcode, limits))


def _context() -> Any:
    """The fork server, with the decoders loaded and made ready."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([_WARM])
    return context


_starting = threading.local()  # set while this thread starts a child of ours


@contextlib.contextmanager
def _without_main() -> Iterator[None]:
    """Children this thread starts meanwhile are not handed the program's main module."""
    _leave_main_out()
    _starting.ours = True
    try:
        yield
    finally:
        _starting.ours = False


def _leave_main_out() -> None:
    """What multiprocessing hands a child to prepare it, less the program's main module
    (which it would run again) when the child is ours; anyone else's is left as it is."""
    prepare = spawn.get_preparation_data
    if getattr(prepare, "leaves_main_out", False):
        return

    def preparation(name: str) -> dict[str, Any]:
        data: dict[str, Any] = prepare(name)
        if getattr(_starting, "ours", False):
            data.pop("init_main_from_name", None)
            data.pop("init_main_from_path", None)
        return data

    preparation.leaves_main_out = True  # type: ignore[attr-defined]
    spawn.get_preparation_data = preparation


def _child(sending: multiprocessing.connection.Connection, job: PictureJob,
           limits: PictureLimits) -> None:
    # The heap and every private mapping written to (what pixels take), not the address
    # space merely reserved (thread stacks, malloc arenas), which says little of use.
    resource.setrlimit(resource.RLIMIT_DATA, (limits.memory, limits.memory))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # a decoder has nothing to write
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    one_picture_at_a_time()
    sending.send(render(job))
    sending.close()


def one_picture_at_a_time() -> None:
    """This process does one picture: libvips on one thread with no cache, and memory
    handed back as it is freed, so its peak is that picture's and not the heap's past."""
    one_thread_no_cache()
    with contextlib.suppress(OSError, AttributeError):  # glibc only; elsewhere as it is
        libc = ctypes.CDLL(None)  # the process's own symbols: libc's among them
        # Blocks over 128 KiB mapped on their own and unmapped when freed (glibc raises
        # this threshold as it goes, so a picture's buffers would stay in the heap).
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024)


def _reap(child: multiprocessing.process.BaseProcess) -> None:
    if child.pid is None:  # never started
        return
    child.join(5)
    if child.is_alive():
        child.kill()
        child.join()


def _death(exitcode: int | None, limits: PictureLimits) -> Refusal:
    """Why a child gave no answer, as a refusal."""
    if exitcode in (-signal.SIGXCPU, -signal.SIGKILL, None):
        return Refusal("decompression_bomb",
                       f"decoding took more than {limits.cpu_seconds} s of CPU")
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        return Refusal("malformed", f"the image decoder crashed ({name})")
    return Refusal("malformed", f"the image decoder stopped (exit code {exitcode})")
