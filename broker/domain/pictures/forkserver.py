"""The pictures' fork server: a small process that has loaded the decoders and forks one
child per picture, so a decoder crash or a bomb costs that child only.

A worker process starts its own server the first time it needs one (and again if it
ended), connects to it once per picture and sends the job; the server forks a child
that reads the job from that connection, answers on it and exits, and the server then
writes the child's exit status on it. The server kills a child past its wall-clock
deadline, and ends when the worker that started it does (its stdin closes).

One fork and one connection a picture: multiprocessing's fork server pickled a process
object, started a helper and ran its bootstrap and exit hooks for each, which cost more
than a small picture's work. Children never run the program's main module either.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import pickle
import resource
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass

from broker.domain.pictures import wire
from broker.domain.pictures.streaming import one_thread_no_cache

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, from malloc.h
_EXIT = struct.Struct(">i")  # a child's exit code; minus the signal that ended it
_START_SECONDS = 120.0  # for the decoders to load, on a busy machine
_LONGEST_ADDRESS = 100  # bytes: a socket's path holds 104 to 108, by system


class PicturesUnavailable(Exception):
    """The fork server that starts the pictures' children is not working: an outage of
    this machine, not a fault of the picture (judged again later, never refused)."""


# ---- in the worker: the server, started once a process --------------------------------

@dataclass
class _Server:
    process: subprocess.Popen[bytes]
    folder: str
    owner: int  # the process that started it: a forked worker starts its own

    @property
    def address(self) -> str:
        return os.path.join(self.folder, "socket")


_lock = threading.Lock()
_server: _Server | None = None


def connect(preload: str) -> socket.socket:
    """A connection to this process's server (started with `preload` imported, if it is
    not running), for one picture."""
    for attempt in (1, 2):
        server = _running(preload)
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(server.address)
            return connection
        except OSError as exc:
            connection.close()
            if attempt == 2 or server.process.poll() is None:
                raise PicturesUnavailable(f"the pictures' fork server does not answer: "
                                          f"{exc}") from exc
            # It ended (killed, or out of memory): start another once.
    raise AssertionError("unreachable")


def server_pid() -> int | None:
    """The running server's process id, if this process started one."""
    server = _server
    return server.process.pid if server and server.process.poll() is None else None


def stop() -> None:
    """End this process's server, if it started one, and wait for it."""
    global _server
    with _lock:
        server, _server = _server, None
    if server is None or server.owner != os.getpid():
        return
    _end(server)


def _running(preload: str) -> _Server:
    global _server
    with _lock:
        if _server is not None and (_server.owner != os.getpid()
                                    or _server.process.poll() is not None):
            if _server.owner == os.getpid():
                _end(_server)
            _server = None
        if _server is None:
            _server = _start(preload)
        return _server


def _start(preload: str) -> _Server:
    folder = _private_folder()
    code = ("import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
            "from broker.domain.pictures.forkserver import main; main(sys.argv[2:])")
    process = subprocess.Popen(  # noqa: S603 - our own module, our own arguments
        [sys.executable, "-c", code, json.dumps(sys.path), folder, preload],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
    server = _Server(process, folder, os.getpid())
    assert process.stdout is not None
    with selectors.DefaultSelector() as waiting:
        waiting.register(process.stdout, selectors.EVENT_READ)
        ready = waiting.select(_START_SECONDS) and process.stdout.readline() == b"ready\n"
    if not ready:
        _end(server)
        raise PicturesUnavailable(f"the pictures' fork server failed to start (exit code "
                                  f"{process.returncode}); see the errors it printed")
    return server


def _private_folder() -> str:
    """A folder only this user may enter, for the server's socket: in the temporary
    folder (TMPDIR), or in /tmp when a socket's path there would be too long."""
    folder = tempfile.mkdtemp(prefix="broker-pictures-")
    if len(os.path.join(folder, "socket").encode()) <= _LONGEST_ADDRESS:
        return folder
    os.rmdir(folder)
    return tempfile.mkdtemp(prefix="broker-pictures-", dir="/tmp")


def _end(server: _Server) -> None:
    with contextlib.suppress(OSError):
        assert server.process.stdin is not None
        server.process.stdin.close()  # the server ends when its stdin does
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    if server.process.stdout is not None:
        server.process.stdout.close()
    shutil.rmtree(server.folder, ignore_errors=True)


# ---- the server process ----------------------------------------------------------------

@dataclass
class _Child:
    connection: socket.socket
    deadline: float


def main(args: list[str]) -> None:
    """Run the server: `args` are its folder and the modules to import first."""
    folder, *preload = args
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the worker; stdin ends us
    for name in preload:
        importlib.import_module(name)
    one_picture_at_a_time()  # set once here, inherited by every child: not paid per fork
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(os.path.join(folder, "socket"))
    listener.listen(128)
    gc.collect()
    gc.freeze()  # what is loaded stays shared with the children: never written again
    sys.stdout.buffer.write(b"ready\n")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # no one reads the pipe from now on
    try:
        _serve(listener)
    finally:
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)


def _serve(listener: socket.socket) -> None:
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the loop, through the pipe
    children: dict[int, _Child] = {}
    with selectors.DefaultSelector() as events:
        events.register(listener, selectors.EVENT_READ, "job")
        events.register(sys.stdin.fileno(), selectors.EVENT_READ, "worker")
        events.register(wake_read, selectors.EVENT_READ, "signal")
        while True:
            soonest = min((c.deadline for c in children.values()), default=None)
            timeout = 1.0 if soonest is None else max(0.0, min(1.0, soonest - time.monotonic()))
            for key, _ in events.select(timeout):
                if key.data == "worker" and not os.read(sys.stdin.fileno(), 4096):
                    for pid in children:  # the worker is gone: so is the work
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGKILL)
                    return
                if key.data == "signal":
                    with contextlib.suppress(OSError):
                        os.read(wake_read, 4096)
                if key.data == "job":
                    _fork_one(listener, children, (wake_read, wake_write))
            _reap(children)
            now = time.monotonic()
            for pid, child in children.items():
                if child.deadline < now:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)  # reaped, and told, on the next turn


def _fork_one(listener: socket.socket, children: dict[int, _Child],
              own_fds: tuple[int, int]) -> None:
    connection, _ = listener.accept()
    try:
        connection.settimeout(10)
        frame = wire.receive(connection, limit=4096)
        if frame is None or frame[0] != wire.DEADLINE:
            raise EOFError("no deadline")
        seconds = float(json.loads(frame[1])["seconds"])
        connection.settimeout(None)
    except (OSError, EOFError, ValueError, KeyError, wire.UnreadableAnswer):
        connection.close()
        return
    try:
        pid = os.fork()
    except OSError:  # out of processes or memory: this worker's picture waits, not the rest
        connection.close()  # the worker hears the server fail, an outage retried later
        return
    if pid == 0:
        code = 1
        try:
            # Nothing of the server's, nor another picture's connection, stays open here.
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            gc.disable()  # a short life: collecting would only write to shared pages
            listener.close()
            for fd in (*own_fds, sys.stdin.fileno()):
                os.close(fd)
            for other in children.values():
                other.connection.close()
            code = _child(connection)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    children[pid] = _Child(connection, time.monotonic() + seconds)


def _reap(children: dict[int, _Child]) -> None:
    """Tell each worker whose child ended how it ended."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        child = children.pop(pid, None)
        if child is None:
            continue
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        with contextlib.suppress(OSError):  # a worker that has its answer may have left
            wire.send(child.connection, wire.EXIT, _EXIT.pack(code))
        child.connection.close()


def exit_code(payload: bytes) -> int:
    """The exit code an EXIT frame carries."""
    (code,) = _EXIT.unpack(payload)
    return int(code)


# ---- a child: one picture ----------------------------------------------------------------

def _child(connection: socket.socket) -> int:
    from broker.domain.pictures.rendering import render

    frame = wire.receive(connection)
    if frame is None or frame[0] != wire.JOB:
        return 1
    job, limits = pickle.loads(frame[1])  # noqa: S301 - the worker's own job
    # The heap and every private mapping written to (what pixels take), not the address
    # space merely reserved (thread stacks, malloc arenas), which says little of use.
    resource.setrlimit(resource.RLIMIT_DATA, (limits.memory, limits.memory))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # a decoder has nothing to write
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    wire.send(connection, wire.ANSWER, wire.encode_rendered(render(job)))
    return 0


def one_picture_at_a_time() -> None:
    """Each process forked from this one does one picture: libvips on one thread with no
    cache, and memory handed back as it is freed, so a child's peak is its picture's."""
    one_thread_no_cache()
    with contextlib.suppress(OSError, AttributeError):  # glibc only; elsewhere as it is
        libc = ctypes.CDLL(None)  # the process's own symbols: libc's among them
        # Blocks over 128 KiB mapped on their own and unmapped when freed (glibc raises
        # this threshold as it goes, so a picture's buffers would stay in the heap).
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
