"""Child processes of the local stack: free ports, readiness, errors, stopping.

>>> port = free_port()
>>> 1024 <= port <= 65535
True
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable


class StackError(RuntimeError):
    """A local service could not start or become ready."""


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until 127.0.0.1:port accepts a connection, or raise :class:`StackError`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"process exited with {proc.returncode} before port {port} opened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise StackError(f"port {port} not open after {timeout_s:.0f}s")


def alive(pid: int) -> bool:
    """True while a process ``pid`` exists (a zombie included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def terminate(pid: int, is_gone: Callable[[], bool] | None = None, grace_s: float = 5.0) -> None:
    """SIGTERM the process group of ``pid``, wait up to ``grace_s`` for ``is_gone`` (by
    default: the process no longer exists), then SIGKILL it."""
    check = is_gone or (lambda: not alive(pid))
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.05)
