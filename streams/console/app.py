"""The console's web application (aiohttp, server-rendered Jinja2 pages, no front-end build).

Routes: ``/login``, ``/logout``, ``/inbox``, ``/alerts/{id}``, ``/customers/{id}`` and
``POST /alerts/{id}/actions``. Every route but the login refuses without a session (a page
redirects to the login, anything else answers 401); every POST needs the session's CSRF
token (else 403, nothing written); only analysts act (a viewer gets 403).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2
from aiohttp import web
from pydantic import ValidationError

from finpulse.config.settings import Settings
from finpulse.models.actions import ActionKind, AlertAction, action_id
from finpulse.models.alerts import Severity
from finpulse.streams.console.accounts import ROLES_THAT_ACT, Accounts
from finpulse.streams.console.forms import MAX_FORM_BYTES, FormError, parse_form
from finpulse.streams.console.publisher import ActionPublisher
from finpulse.streams.console.security import COOKIE, LoginLimiter, Session, SessionCodec
from finpulse.streams.console.store import STATES, ConsoleStore, InboxFilter

log = logging.getLogger(__name__)

DOMAINS = ("risk", "service", "model_health", "compliance")
AGES_H = (1, 24, 168)
SILENCE_MAX_MIN = 7 * 24 * 60
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", ConsoleStore)
PUBLISHER = web.AppKey("publisher", ActionPublisher)
ACCOUNTS = web.AppKey("accounts", Accounts)
CODEC = web.AppKey("codec", SessionCodec)
LIMITER = web.AppKey("limiter", LoginLimiter)
TEMPLATES = web.AppKey("templates", jinja2.Environment)


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("finpulse.streams.console", "templates"),
        autoescape=True,  # every value is escaped: hostile text shows as text
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = lambda t: t.strftime("%Y-%m-%d %H:%M:%S") if t else ""
    return env


def _render(request: web.Request, name: str, status: int = 200, **values: Any) -> web.Response:
    session: Session = request["session"]
    html = request.app[TEMPLATES].get_template(name).render(session=session, **values)
    return web.Response(text=html, content_type="text/html", status=status)


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Session, login requirement, CSRF on every POST, security headers."""
    codec = request.app[CODEC]
    session = codec.decode(request.cookies.get(COOKIE))
    fresh = session is None
    request["session"] = session or Session.anonymous()
    public = request.path == "/login"
    if request["session"].user is None and not public:
        if request.method == "GET":
            response: web.StreamResponse = web.HTTPFound("/login")
        else:
            response = web.Response(status=401, text="log in first")
    elif request.method == "POST":
        try:
            request["form"] = parse_form(await request.read())
        except FormError as exc:
            return web.Response(status=400, text=str(exc))
        if not request["session"].csrf_ok(request["form"].get("csrf")):
            return web.Response(status=403, text="invalid CSRF token")
        response = await _call(handler, request)
    else:
        response = await _call(handler, request)
    if fresh or request.get("new_session") is not None:
        current = request.get("new_session") or request["session"]
        response.set_cookie(
            COOKIE,
            codec.encode(current),
            max_age=codec.max_age_s,
            httponly=True,
            samesite="Strict",
            secure=request.app[SETTINGS].console_secure_cookies,
            path="/",
        )
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self' 'unsafe-inline'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


async def _call(handler: Handler, request: web.Request) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:  # redirects and errors are responses too
        return exc


async def login_page(request: web.Request) -> web.Response:
    return _render(request, "login.html", error=None)


async def login(request: web.Request) -> web.StreamResponse:
    form = request["form"]
    name, password = form.get("user", "")[:64], form.get("password", "")[:256]
    limiter = request.app[LIMITER]
    keys = (f"user:{name}", f"peer:{request.remote}")
    if not limiter.allowed(*keys):
        return _render(request, "login.html", status=429, error="too many attempts; wait")
    role = request.app[ACCOUNTS].verify(name, password)
    if role is None:
        limiter.failed(*keys)
        return _render(request, "login.html", status=401, error="wrong name or password")
    request["new_session"] = request["session"].login(name, role)
    log.info("console login: %s (%s)", name, role)
    return web.HTTPSeeOther("/inbox")


async def logout(request: web.Request) -> web.StreamResponse:
    request["new_session"] = Session.anonymous()
    return web.HTTPSeeOther("/login")


async def home(request: web.Request) -> web.StreamResponse:
    return web.HTTPFound("/inbox")


def _choice(value: str, allowed: tuple[str, ...] | list[str]) -> str:
    return value if value in allowed else ""


async def inbox(request: web.Request) -> web.Response:
    q = request.query
    store = request.app[STORE]
    owners = await _in_thread(store.owners)
    age = q.get("age", "")
    f = InboxFilter(
        severity=_choice(q.get("severity", ""), [s.value for s in Severity]),
        domain=_choice(q.get("domain", ""), DOMAINS),
        owner=_choice(q.get("owner", ""), owners),
        state=_choice(q.get("state", ""), STATES),
        max_age_h=int(age) if age in {str(a) for a in AGES_H} else 0,
        order=_choice(q.get("order", ""), ("severity", "newest")) or "severity",
    )
    alerts = await _in_thread(store.inbox, f)
    return _render(
        request,
        "inbox.html",
        alerts=alerts,
        f=f,
        severities=[s.value for s in reversed(Severity)],
        domains=DOMAINS,
        owners=owners,
        states=STATES,
        ages=AGES_H,
        refresh_s=request.app[SETTINGS].console_refresh_s,
    )


def _id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not 0 < len(value) <= 128:
        raise web.HTTPBadRequest(text="bad id")
    return value


async def alert_page(request: web.Request) -> web.Response:
    store = request.app[STORE]
    alert = await _in_thread(store.alert, _id(request, "alert_id"))
    if alert is None:
        raise web.HTTPNotFound(text="no such alert")
    customer = alert["customer_id"]
    return _render(
        request,
        "alert.html",
        alert=alert,
        actions=await _in_thread(store.actions, alert["alert_id"]),
        related=await _in_thread(store.related, alert),
        transactions=await _in_thread(store.transactions, customer) if customer else [],
        interactions=await _in_thread(store.interactions, customer) if customer else [],
        accounts=request.app[ACCOUNTS].names,
        can_act=request["session"].role in ROLES_THAT_ACT,
        nonce=secrets.token_urlsafe(16),
        silence_max=SILENCE_MAX_MIN,
    )


async def customer_page(request: web.Request) -> web.Response:
    store = request.app[STORE]
    customer = _id(request, "customer_id")
    return _render(
        request,
        "customer.html",
        customer_id=customer,
        alerts=await _in_thread(store.customer_alerts, customer),
        transactions=await _in_thread(store.transactions, customer),
        interactions=await _in_thread(store.interactions, customer),
    )


def _action(
    form: dict[str, str], alert: dict[str, Any], actor: str, accounts: Accounts
) -> AlertAction:
    """The action a form asks for; raises ``ValueError``/``ValidationError`` when it is invalid."""
    kind = ActionKind(form.get("action", ""))
    nonce = form.get("nonce", "")
    if not 8 <= len(nonce) <= 64:
        raise ValueError("missing form nonce")
    now = datetime.now(UTC)
    subject: str | None = alert["subject_id"]
    until = None
    assignee = None
    if kind is ActionKind.SILENCE:
        minutes = int(form.get("minutes", ""))
        if not 1 <= minutes <= SILENCE_MAX_MIN:
            raise ValueError(f"a silence lasts 1 to {SILENCE_MAX_MIN} minutes")
        until = now + timedelta(minutes=minutes)
        if form.get("scope") == "rule":
            subject = None
    if kind is ActionKind.ASSIGN:
        assignee = form.get("assignee", "")
        if assignee not in accounts.names:
            raise ValueError("assign to a console account")
    if kind is ActionKind.RESOLVE and not form.get("reason", "").strip():
        raise ValueError("say why it is resolved")
    if kind in (ActionKind.CONFIRM_FRAUD, ActionKind.CLEAR) and not alert["source_event_id"]:
        raise ValueError("this alert names no transaction to label")
    return AlertAction(
        action_id=action_id(alert["alert_id"], actor, kind.value, nonce),
        ts=now,
        actor=actor,
        action=kind,
        alert_id=alert["alert_id"],
        rule_id=alert["rule_id"],
        owner=alert["owner"],
        severity=alert["severity"],
        subject_type=alert["subject_type"],
        subject_id=subject,
        customer_id=alert["customer_id"],
        source_event_id=alert["source_event_id"],
        assignee=assignee,
        reason=form.get("reason", ""),
        silence_until=until,
    )


async def act(request: web.Request) -> web.StreamResponse:
    session: Session = request["session"]
    if session.role not in ROLES_THAT_ACT:
        raise web.HTTPForbidden(text="viewers cannot act")
    store = request.app[STORE]
    alert = await _in_thread(store.alert, _id(request, "alert_id"))
    if alert is None:
        raise web.HTTPNotFound(text="no such alert")
    try:
        action = _action(request["form"], alert, str(session.user), request.app[ACCOUNTS])
    except ValidationError as exc:
        raise web.HTTPBadRequest(text=f"refused: {exc.errors()[0]['msg']}") from None
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"refused: {exc}") from None
    try:
        await request.app[PUBLISHER].publish(action)  # the event first: the source of truth
        await _in_thread(store.record, action)
    except Exception as exc:
        log.warning("action %s not recorded: %s", action.action_id, exc)
        raise web.HTTPServiceUnavailable(text="not recorded; submit again") from exc
    log.info("%s %s %s", action.actor, action.action.value, action.alert_id)
    return web.HTTPSeeOther(f"/alerts/{alert['alert_id']}")


def build_console(
    settings: Settings, store: ConsoleStore | None = None, publisher: ActionPublisher | None = None
) -> web.Application:
    """The console app; connects to ClickHouse and the broker when it starts.

    >>> app = build_console(Settings())
    >>> sorted({r.resource.canonical for r in app.router.routes()})[:3]
    ['/', '/alerts/{alert_id}', '/alerts/{alert_id}/actions']
    """
    app = web.Application(middlewares=[_guard], client_max_size=MAX_FORM_BYTES)
    secret = settings.console_secret
    if secret is None:
        log.warning("FINPULSE_CONSOLE_SECRET is not set: sessions end when the console stops")
    key = secret.get_secret_value().encode() if secret else secrets.token_bytes(32)
    app[SETTINGS] = settings
    app[STORE] = store or ConsoleStore(settings)
    app[PUBLISHER] = publisher or ActionPublisher(settings)
    app[ACCOUNTS] = Accounts(settings.console_accounts)
    app[CODEC] = SessionCodec(key, settings.console_session_max_age_s)
    app[LIMITER] = LoginLimiter(settings.console_login_attempts, settings.console_login_window_s)
    app[TEMPLATES] = _templates()
    app.router.add_get("/", home)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/inbox", inbox)
    app.router.add_get("/alerts/{alert_id}", alert_page)
    app.router.add_post("/alerts/{alert_id}/actions", act)
    app.router.add_get("/customers/{customer_id}", customer_page)

    async def start(app: web.Application) -> None:
        await asyncio.to_thread(app[STORE].connect)
        await app[PUBLISHER].start()

    async def stop(app: web.Application) -> None:
        await app[PUBLISHER].stop()
        app[STORE].close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def run_console(settings: Settings) -> None:
    """Serve the console on ``console_host:console_port`` until interrupted."""
    web.run_app(
        build_console(settings),
        host=settings.console_host,
        port=settings.console_port,
        print=None,
        access_log=None,
    )
