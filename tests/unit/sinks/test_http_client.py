"""The synchronous face of finpulse's one HTTP client (aiohttp): answers, redirects, timeouts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from finpulse.sinks.http_client import Unreachable, proxy_from_env, request_sync
from finpulse.streams.local.stack import free_port


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, str, bytes]], threading.Event]]:
    seen: list[tuple[str, str, bytes]] = []
    answer = threading.Event()
    answer.set()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            answer.wait(5)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((self.command, self.path, body))
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "http://elsewhere.invalid/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = b"Ok.\n" if self.path == "/ping" else b"nope"
            self.send_response(200 if self.path == "/ping" else 409)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = _serve

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen, answer
    answer.set()
    httpd.shutdown()
    httpd.server_close()


def test_answers_of_any_status_are_returned(server):
    url, seen, _ = server
    ok = request_sync("GET", f"{url}/ping", timeout_s=5)
    assert (ok.status, ok.ok, ok.body) == (200, True, b"Ok.\n")
    conflict = request_sync("PUT", f"{url}/bucket", timeout_s=5, data=b"x")
    assert (conflict.status, conflict.ok, conflict.body) == (409, False, b"nope")
    assert seen == [("GET", "/ping", b""), ("PUT", "/bucket", b"x")]


def test_redirects_are_returned_not_followed(server):
    url, seen, _ = server
    resp = request_sync("GET", f"{url}/moved", timeout_s=5)
    assert resp.status == 302 and resp.headers["Location"] == "http://elsewhere.invalid/"
    assert len(seen) == 1


def test_no_answer_in_time_and_refused_are_unreachable(server):
    url, _, answer = server
    answer.clear()
    with pytest.raises(Unreachable, match=r"timed out after 0\.2s"):
        request_sync("GET", f"{url}/ping", timeout_s=0.2)
    with pytest.raises(Unreachable, match="Cannot connect"):
        request_sync("GET", f"http://127.0.0.1:{free_port()}/", timeout_s=2)


def test_callable_from_inside_an_event_loop(server):
    url, _, _ = server

    async def caller() -> int:
        return request_sync("GET", f"{url}/ping", timeout_s=5).status

    assert asyncio.run(caller()) == 200


def test_proxies_come_from_the_environment_with_no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "grafana.internal")
    assert proxy_from_env("https://grafana.example/api")[0] == "http://proxy.invalid:3128"
    assert proxy_from_env("https://grafana.internal/api") == (None, None)
    assert proxy_from_env("http://127.0.0.1:9/") == (None, None)  # no HTTP_PROXY set
