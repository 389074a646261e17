"""A thin client for the slice of Grafana's HTTP API that ``finpulse grafana publish`` uses.

JSON in, JSON out, a service-account bearer token, a timeout on every request, and typed errors
that carry the HTTP status and Grafana's own ``message``. Requests go through finpulse's one
HTTP client, aiohttp, called synchronously (:func:`finpulse.sinks.http_client.request_sync`);
proxies come from ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` as before.

The token is kept as a :class:`~pydantic.SecretStr`: it is only unwrapped into the
``Authorization`` header and never appears in a repr, a log line or an error. Redirects are not
followed (a redirect could carry the header to another host); they are reported as errors.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from finpulse.sinks.http_client import Unreachable, request_sync

log = logging.getLogger(__name__)

_MESSAGE_MAX = 300


class GrafanaError(RuntimeError):
    """Grafana answered with an error status, or could not be reached (``status`` is None)."""

    def __init__(self, method: str, path: str, status: int | None, message: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        code = f"HTTP {status}: " if status else ""
        super().__init__(f"Grafana {method} {path}: {code}{message}")


class GrafanaAuthError(GrafanaError):
    """401 (token missing, wrong or expired) or 403 (the token's role may not do this)."""


def error_for(method: str, path: str, status: int, body: bytes) -> GrafanaError:
    """The typed error for an HTTP error response; the text is Grafana's ``message`` if any.

    >>> str(error_for("GET", "/api/folders/x", 401, b'{"message": "invalid API key"}'))
    'Grafana GET /api/folders/x: HTTP 401: invalid API key (check FINPULSE_GRAFANA_TOKEN)'
    >>> type(error_for("PUT", "/api/folders/x", 403, b"")).__name__
    'GrafanaAuthError'
    >>> str(error_for("POST", "/api/datasources", 409, b'{"message": "data source exists"}'))
    'Grafana POST /api/datasources: HTTP 409: data source exists'
    """
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text) if text else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("message"):
        message = str(doc["message"])
    else:
        message = text[:_MESSAGE_MAX] or "(empty response)"
    if status == 401:
        return GrafanaAuthError(method, path, status, f"{message} (check FINPULSE_GRAFANA_TOKEN)")
    if status == 403:
        hint = "the service account's role may not do this; it needs Admin for provisioning"
        return GrafanaAuthError(method, path, status, f"{message} ({hint})")
    return GrafanaError(method, path, status, message)


class GrafanaClient:
    """JSON requests against one Grafana; paths start with ``/api/`` (any base path is kept).

    No network in the constructor: each call opens its own connection.

    >>> g = GrafanaClient("http://grafana:3000/monitor/", SecretStr("glsa_x"), timeout_s=5)
    >>> g.url("/api/folders/finpulse")
    'http://grafana:3000/monitor/api/folders/finpulse'
    >>> "glsa_x" in repr(g)
    False
    """

    def __init__(self, base_url: str, token: SecretStr, timeout_s: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Grafana URL must be http(s)://host[:port][/path], got {base_url!r}")
        if parts.username or parts.password:
            raise ValueError("put no credentials in the Grafana URL; set FINPULSE_GRAFANA_TOKEN")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"GrafanaClient({self.base_url!r}, timeout_s={self.timeout_s})"

    def url(self, path: str) -> str:
        """The absolute URL of an API ``path``."""
        return self.base_url + path

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send ``body`` as JSON; the decoded JSON answer (None when empty), or raise.

        Raises :class:`GrafanaAuthError` on 401/403, :class:`GrafanaError` on any other
        status ≥ 300 and when Grafana cannot be reached or does not answer in time.
        """
        data = None if body is None else json.dumps(body).encode()
        headers = {
            "Accept": "application/json",
            "Authorization": f"Bearer {self._token.get_secret_value()}",
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        log.debug("grafana %s %s", method, path)
        try:
            resp = request_sync(
                method,
                self.url(path),
                timeout_s=self.timeout_s,
                headers=headers,
                data=data,
                use_env_proxy=True,
            )
        except Unreachable as exc:  # refused, DNS, TLS, timeout
            message = f"cannot reach {self.base_url}: {exc}"
            raise GrafanaError(method, path, None, message) from exc
        if 300 <= resp.status < 400:  # not followed: it could carry the token to another host
            where = resp.headers.get("Location", "?")
            raise GrafanaError(
                method, path, resp.status, f"redirected to {where}; use that base URL"
            )
        if not resp.ok:
            raise error_for(method, path, resp.status, resp.body)
        text = resp.body.decode("utf-8", "replace").strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise GrafanaError(method, path, None, f"answer is not JSON: {text[:80]!r}") from exc

    def get_or_none(self, path: str) -> Any:
        """GET ``path``; None if Grafana answers 404 (the object does not exist)."""
        try:
            return self.request("GET", path)
        except GrafanaError as exc:
            if exc.status == 404:
                return None
            raise

    def post(self, path: str, body: Any) -> Any:
        """POST ``body`` as JSON (see :meth:`request`)."""
        return self.request("POST", path, body)

    def put(self, path: str, body: Any) -> Any:
        """PUT ``body`` as JSON (see :meth:`request`)."""
        return self.request("PUT", path, body)
