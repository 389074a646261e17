"""Sessions, CSRF tokens and the login rate limit of the console.

The session is a signed, timed cookie (itsdangerous): the account, its role and the
session's CSRF token. Every form carries that token; a POST without the matching token is
refused before anything is written. Anonymous visitors get a session too (no account), so
the login form is protected the same way.

>>> codec = SessionCodec(b"k" * 32, max_age_s=60)
>>> s = Session.anonymous()
>>> codec.decode(codec.encode(s)) == s
True
>>> codec.decode("forged.cookie") is None
True
>>> limiter = LoginLimiter(attempts=2, window_s=60, clock=lambda: 0.0)
>>> limiter.failed("ana"); limiter.failed("ana"); limiter.allowed("ana")
False
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "finpulse_session"


@dataclass(frozen=True)
class Session:
    """Who is logged in (``user`` is ``None`` before login) and the session's CSRF token."""

    csrf: str
    user: str | None = None
    role: str | None = None

    @classmethod
    def anonymous(cls) -> Session:
        return cls(csrf=secrets.token_urlsafe(24))

    def login(self, user: str, role: str) -> Session:
        """A new session for ``user`` (a fresh CSRF token: no fixation)."""
        return Session(csrf=secrets.token_urlsafe(24), user=user, role=role)

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf, token)


class SessionCodec:
    """Signs and checks session cookies; a cookie older than ``max_age_s`` is refused."""

    def __init__(self, key: bytes, max_age_s: int) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt="finpulse.console.session")
        self.max_age_s = max_age_s

    def encode(self, session: Session) -> str:
        return str(self._serializer.dumps(asdict(session)))

    def decode(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age_s)
            return Session(**data)
        except (BadSignature, TypeError, ValueError):
            return None


class LoginLimiter:
    """At most ``attempts`` failed logins per key (account name, client address) per window."""

    def __init__(
        self, attempts: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] <= self.clock() - self.window_s:
            failures.popleft()
        return failures

    def allowed(self, *keys: str) -> bool:
        return all(len(self._recent(k)) < self.attempts for k in keys)

    def failed(self, *keys: str) -> None:
        for key in keys:
            self._recent(key).append(self.clock())
