"""Waiting for a server a test or the benchmark started to be ready, and stopping it.

Every wait here is for readiness with a generous deadline: on a loaded 2-core machine
(CI's kind) a server's start-up can take tens of seconds, and one probe can take
seconds to be answered. A wait that fails says what did not become ready and, when
the process died, its exit code and what it printed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import requests

START_TIMEOUT = 120.0  # a server's start-up, on a busy machine
PROBE_TIMEOUT = 10.0  # one readiness probe (an HTTP request, a connection)
STOP_GRACE = 30.0  # a graceful stop before SIGKILL
_TAIL = 4000  # characters of a process's output quoted in a failure


class NotReady(RuntimeError):
    """What was waited for did not become ready."""


def wait_until_ready(what: str, ready: Callable[[], bool], *,
                     timeout: float = START_TIMEOUT,
                     process: subprocess.Popen[Any] | None = None,
                     log: Path | Callable[[], str] | None = None,
                     interval: float = 0.1) -> None:
    """Return once `ready()` is true. Fail (NotReady) after `timeout` seconds, or as
    soon as `process` exits, naming `what` and quoting the process's exit code and
    output (its piped output, or `log`: a file it writes or a function giving text).
    An exception from `ready()` (e.g. a refused or timed-out probe) means not yet."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        if process is not None and process.poll() is not None:
            raise NotReady(f"{what} did not become ready: its process exited with code "
                           f"{process.returncode}{_describe(process, log)}")
        try:
            if ready():
                return
        except Exception as error:  # any failed probe means "not yet"
            last_error = f"{type(error).__name__}: {error}"
        if time.monotonic() >= deadline:
            state = ""
            if process is not None:
                state = (f" (its process, pid {process.pid}, is still running)"
                         if process.poll() is None else
                         f" (its process exited with code {process.returncode})")
            last = f"\nlast probe: {last_error}" if last_error else ""
            raise NotReady(f"{what} did not become ready within {timeout:g} s{state}"
                           f"{last}{_describe(process, log)}")
        time.sleep(interval)


def wait_for_http(url: str, timeout: float = START_TIMEOUT,
                  process: subprocess.Popen[Any] | None = None, *,
                  log: Path | Callable[[], str] | None = None, what: str | None = None,
                  probe_timeout: float = PROBE_TIMEOUT) -> None:
    """Return once `url` answers HTTP at all (any status); see wait_until_ready."""
    def answers() -> bool:
        requests.get(url, timeout=probe_timeout)
        return True
    wait_until_ready(what or url, answers, timeout=timeout, process=process, log=log)


def wait_until_gone(pids: Sequence[int], timeout: float = STOP_GRACE) -> list[int]:
    """Wait for processes (not necessarily ours) to exit; the pids still running."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in pids if _running(pid)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.1)


def stop_process(process: subprocess.Popen[Any], *, grace: float = STOP_GRACE,
                 group: bool = False, read_output: bool = True,
                 sig: int | None = signal.SIGTERM) -> str:
    """Stop `process` and reap it, whatever state it is in: `sig` (SIGTERM: a graceful
    stop; None: it was already asked to stop), SIGKILL after `grace` seconds. With
    `group` (a process started with start_new_session=True) SIGKILL also reaches
    whatever of its process group is left (gunicorn's workers, `broker run`'s
    children). Returns what it printed to its pipes (read to the end unless
    `read_output` is false: another thread reads them)."""
    if sig is not None and process.poll() is None:
        with suppress(ProcessLookupError):
            process.send_signal(sig)
    try:
        output = _finish(process, grace, read_output)
    except subprocess.TimeoutExpired:
        _kill(process, group)
        try:
            output = _finish(process, STOP_GRACE, read_output)
        except subprocess.TimeoutExpired:  # it is gone, but a child of its holds its pipes
            process.wait(timeout=STOP_GRACE)
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()
            output = "(its output could not be read to the end)"
    if group:
        _kill(process, group)  # stragglers of the group, once its leader is gone
    return output


# -- helpers ---------------------------------------------------------------------------

def _finish(process: subprocess.Popen[Any], timeout: float, read_output: bool) -> str:
    piped = [p for p in (process.stdout, process.stderr) if p is not None and not p.closed]
    if read_output and piped:
        out, err = process.communicate(timeout=timeout)
        return "".join(_text(part) for part in (out, err) if part)
    process.wait(timeout=timeout)
    return ""


def _kill(process: subprocess.Popen[Any], group: bool) -> None:
    with suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        elif process.poll() is None:
            process.kill()


def _describe(process: subprocess.Popen[Any] | None,
              log: Path | Callable[[], str] | None) -> str:
    """The output of a process, for a failure message."""
    text = ""
    if isinstance(log, Path):
        text = log.read_text(errors="replace") if log.exists() else ""
    elif log is not None:
        text = log()
    elif process is not None and process.poll() is not None and (
            process.stdout is not None or process.stderr is not None):
        try:  # it exited: its pipes end (unless a child of its holds them open)
            out, err = process.communicate(timeout=5)
            text = "".join(_text(part) for part in (out, err) if part)
        except (subprocess.TimeoutExpired, ValueError):
            text = "(its output could not be read)"
    described = ""
    if process is not None:
        args = process.args
        command = " ".join(map(str, args)) if isinstance(args, list | tuple) else str(args)
        described = f"\ncommand: {command}"
    if text.strip():
        described += f"\n--- its output (the last {_TAIL} characters) ---\n{text[-_TAIL:]}"
    return described


def _text(part: str | bytes) -> str:
    return part.decode(errors="replace") if isinstance(part, bytes) else part


def _running(pid: int) -> bool:
    """Whether pid is a process that has not exited (a zombie has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
