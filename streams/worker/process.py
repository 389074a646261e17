"""Run ``finpulse worker`` as a child process (used by the demo and the tests).

The child gets the parent's settings through ``FINPULSE_*`` variables, so it is
configured exactly like a production worker started from the environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from finpulse.config.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """``FINPULSE_*`` variables that rebuild ``settings`` in a child process.

    >>> settings_env(Settings(topic_partitions=2))["FINPULSE_TOPIC_PARTITIONS"]
    '2'
    """
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        # complex values (dicts, lists) are read back from the environment as JSON
        text = (
            json.dumps(value, default=_plain)
            if isinstance(value, dict | list | tuple)
            else str(value)
        )
        env[f"FINPULSE_{name.upper()}"] = text
    return env


def _plain(value: Any) -> Any:
    """JSON form of a nested settings model, secrets in clear (for the child only)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in value}
    raise TypeError(f"not JSON: {type(value).__name__}")


class WorkerProcess:
    """One worker child process with its own log and stats file (``command`` runs another
    ``finpulse`` command the same way, e.g. ``("console",)``; ``module`` is what runs it with
    ``python -m``: the CLI, or a test's wrapper of it)."""

    def __init__(
        self,
        settings: Settings,
        name: str = "worker",
        loglevel: str = "info",
        command: tuple[str, ...] | None = None,
        module: str = "finpulse.streams.cli",
    ) -> None:
        root = settings.data_dir.resolve()
        self.log_path = root / "logs" / f"{name}.log"
        stats = settings.stats_path or root / f"{name}-stats.json"
        self.settings = settings.model_copy(update={"stats_path": stats})
        self.loglevel = loglevel
        self.command = command or ("worker", "--loglevel", loglevel)
        self.module = module
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopped_on_purpose = False

    @property
    def stats_path(self) -> Path:
        assert self.settings.stats_path is not None
        return self.settings.stats_path

    def start(self) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.stats_path.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FINPULSE_")}
        env.update(settings_env(self.settings))
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.command],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stats(self) -> dict[str, Any]:
        """The worker's last written counters, or ``{}`` before the first write."""
        try:
            return dict(json.loads(self.stats_path.read_text()))
        except (OSError, ValueError):
            return {}

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """Graceful stop (SIGTERM), SIGKILL after ``timeout_s``; returns the exit code."""
        if self.proc is None:
            return None
        self.stopped_on_purpose = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.stopped_on_purpose = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def wait_for(self, predicate: Any, timeout_s: float, what: str) -> dict[str, Any]:
        """Poll :meth:`stats` until ``predicate(stats)`` holds; raise on timeout or death."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stats = self.stats()
            if stats and predicate(stats):
                return stats
            if not self.alive():
                raise RuntimeError(
                    f"worker exited ({self.proc and self.proc.returncode}) "
                    f"while waiting for {what}; log: {self.log_path}"
                )
            time.sleep(0.1)
        raise TimeoutError(f"worker did not reach {what} in {timeout_s}s; last {self.stats()}")
