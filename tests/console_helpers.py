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
    """A cash deposit over the large-value threshold: a ``large_value.cash`` alert."""
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


class Browserless:
    """A plain HTTP client with cookies that does not follow redirects (status codes seen)."""

    def __init__(self, url: str) -> None:
        import http.cookiejar

        self.url = url
        self.cookies = http.cookiejar.CookieJar()

        class _NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect()
        )

    def request(self, path: str, body: bytes | None = None) -> tuple[int, str]:
        req = urllib.request.Request(self.url + path, data=body, method="POST" if body else "GET")
        if body is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with self.opener.open(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def csrf(self, path: str = "/login") -> str:
        import re

        status, html = self.request(path)
        match = re.search(r'name="csrf" value="([^"]+)"', html)
        assert match, (status, html[:500])
        return match.group(1)

    def login(self, user: str) -> str:
        """Log in; returns the session's CSRF token."""
        from urllib.parse import urlencode

        body = urlencode({"csrf": self.csrf(), "user": user, "password": PASSWORDS[user]})
        status, _ = self.request("/login", body.encode())
        assert status == 303, status
        return self.csrf("/inbox")
