"""A live console for tests: a worker and ``finpulse console`` as child processes on the
``env`` fixture's broker and ClickHouse, with an analyst and a viewer account."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from finpulse.config.settings import ConsoleAccount
from finpulse.streams.console.accounts import hash_password
from finpulse.streams.local.stack import free_port
from finpulse.streams.worker.process import WorkerProcess
from tests import factories as f
from tests.waiting import wait_for

PASSWORDS = {"ana": "ana-analyst-pw", "vic": "vic-viewer-pw"}
ROLES = {"ana": "analyst", "vic": "viewer"}


@dataclass
class LiveConsole:
    url: str
    process: WorkerProcess


def start_console(env: Any) -> LiveConsole:
    """Start a worker and the console on ``env``; returns once the console answers."""
    accounts = {
        name: ConsoleAccount(role=ROLES[name], password_hash=hash_password(pw))  # type: ignore[arg-type]
        for name, pw in PASSWORDS.items()
    }
    env.settings = env.settings.model_copy(
        update={
            "console_accounts": accounts,
            "console_port": free_port(),
            "console_secret": "test-console-secret",
            "console_refresh_s": 0,
        }
    )
    env.worker()
    process = WorkerProcess(env.settings, name="console", command=("console",))
    env.workers.append(process)
    process.start()
    url = f"http://127.0.0.1:{env.settings.console_port}"

    def answers() -> bool:
        if not process.alive():
            raise AssertionError("console exited: " + process.log_path.read_text()[-2000:])
        try:
            with urllib.request.urlopen(url + "/login", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, ConnectionError):
            return False

    wait_for(answers, 30, "the console")
    return LiveConsole(url, process)


def large_cash(customer: str, amount: float = 60000) -> dict[str, Any]:
    """A cash deposit over the large-value threshold: a ``large_cash_single`` alert."""
    return f.transaction(
        customer_id=customer,
        txn_type="cash_deposit",
        channel="branch",
        direction="credit",
        amount=amount,
    )


def chromium_path() -> str:
    """Debian's chromium (make browser); the tests fail, never skip, without it."""
    path = shutil.which("chromium") or shutil.which("chromium-headless-shell")
    assert path, "no chromium: run `make browser`"
    return path
