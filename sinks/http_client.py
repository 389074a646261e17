"""finpulse's one HTTP client is aiohttp; this module serves its few synchronous callers.

The worker's own calls (ClickHouse inserts, webhooks) are made from the event loop with
aiohttp sessions (:mod:`finpulse.sinks.http_insert`, :mod:`finpulse.sinks.webhook`). A handful of
calls are made from synchronous code, outside any worker: the local stack's readiness probes and
``finpulse grafana publish``. :func:`request_sync` makes such a call with aiohttp on a
private event loop, so that every request of ours has one set of rules for timeouts,
redirects, proxies and errors:

- ``timeout_s`` bounds the whole exchange (connect, send, answer);
- redirects are not followed: a 3xx is returned as it is (credentials stay on this host);
- proxies from ``HTTP(S)_PROXY``/``NO_PROXY`` only when ``use_env_proxy`` is set (never for the
  local stack's loopback services); ``~/.netrc`` is never read;
- a server that cannot be reached or does not answer in time raises :class:`Unreachable`
  (an :class:`OSError`); any answer, error statuses included, is a :class:`Response`.

>>> request_sync("GET", "http://127.0.0.1:1/ping", timeout_s=1)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
finpulse.sinks.http_client.Unreachable: ClientConnectorError: Cannot connect to host 127.0.0.1:1 ...
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

T = TypeVar("T")


class Unreachable(OSError):
    """No answer: refused, reset, DNS, TLS, or nothing within the timeout."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def proxy_from_env(url: str) -> tuple[str | None, aiohttp.BasicAuth | None]:
    """The proxy (and its credentials) that ``HTTP(S)_PROXY``/``NO_PROXY`` give for ``url``,
    read as aiohttp's ``trust_env`` reads them, without its ``~/.netrc`` lookup for the
    target host (which would clash with an ``Authorization`` header)."""
    try:
        proxy, auth = get_env_proxy_for_url(URL(url))
    except LookupError:
        return None, None
    return str(proxy), auth


async def request(
    method: str,
    url: str,
    *,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    data: bytes | None = None,
    use_env_proxy: bool = False,
) -> Response:
    """One request in its own session (see the module's rules); the whole answer is read."""
    proxy, proxy_auth = proxy_from_env(url) if use_env_proxy else (None, None)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.request(
                method,
                url,
                headers=dict(headers or {}),
                data=data,
                allow_redirects=False,
                proxy=proxy,
                proxy_auth=proxy_auth,
            ) as resp,
        ):
            return Response(resp.status, dict(resp.headers), await resp.read())
    except TimeoutError as exc:  # aiohttp's timeouts are TimeoutErrors
        raise Unreachable(f"timed out after {timeout_s:g}s") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise Unreachable(f"{type(exc).__name__}: {exc}") from exc


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code (in a helper thread if this thread
    already runs an event loop, which the call then blocks, as any blocking call would)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="http-sync") as pool:
        return pool.submit(asyncio.run, coro).result()


def request_sync(
    method: str,
    url: str,
    *,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    data: bytes | None = None,
    use_env_proxy: bool = False,
) -> Response:
    """:func:`request` from synchronous code; raises :class:`Unreachable` without an answer."""
    return run_sync(
        request(
            method,
            url,
            timeout_s=timeout_s,
            headers=headers,
            data=data,
            use_env_proxy=use_env_proxy,
        )
    )
