"""The console refuses: no session, a wrong CSRF token, a viewer acting, hostile input; and a
silence set on finpulse.alert_actions quiets a firing rule in the live worker, then ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from finpulse.models.actions import AlertAction
from finpulse.streams.core.topics import ALERT_ACTIONS, ALERTS, TRANSACTIONS
from tests import factories as f
from tests.console_helpers import Browserless, large_cash, start_console
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

PAGES = ["/", "/inbox", "/alerts/al-x", "/customers/c-1"]
POSTS = ["/alerts/al-x/actions", "/logout"]


def _alert_ids(env, where="1"):
    client = env.client()
    try:
        sql = f"SELECT alert_id FROM {env.settings.clickhouse_database}.alerts FINAL WHERE {where}"
        return [r[0] for r in client.query(sql).result_rows]
    finally:
        client.close()


def _action_rows(env):
    client = env.client()
    try:
        db = env.settings.clickhouse_database
        return client.query(f"SELECT count() FROM {db}.alert_actions FINAL").result_rows[0][0]
    finally:
        client.close()


def test_console_refuses_without_session_csrf_or_role_and_escapes_hostile_input(env):
    console = start_console(env)
    env.produce(TRANSACTIONS, [f.encode(large_cash("c-sec"))], [b"c-sec"])
    [alert_id] = wait_for(lambda: _alert_ids(env), 60, "an alert")
    act = f"/alerts/{alert_id}/actions"

    anonymous = Browserless(console.url)
    for path in PAGES:
        assert anonymous.request(path)[0] == 302, path  # to the login page
    token = anonymous.csrf()
    for path in [*POSTS, act]:
        body = urlencode({"csrf": token, "action": "acknowledge", "nonce": "n" * 16})
        assert anonymous.request(path, body.encode())[0] == 401, path

    analyst = Browserless(console.url)
    csrf = analyst.login("ana")
    ack = {"action": "acknowledge", "nonce": "nonce-0001"}
    assert analyst.request(act, urlencode({**ack, "csrf": "forged"}).encode())[0] == 403
    assert analyst.request(act, urlencode(ack).encode())[0] == 403  # no token at all
    login_csrf = Browserless(console.url).csrf()  # another session's token
    assert analyst.request(act, urlencode({**ack, "csrf": login_csrf}).encode())[0] == 403
    assert _action_rows(env) == 0 and env.consume(ALERT_ACTIONS, 1, timeout_s=3) == []

    viewer = Browserless(console.url)
    viewer_csrf = viewer.login("vic")
    assert viewer.request(f"/alerts/{alert_id}")[0] == 200  # reads
    assert viewer.request(act, urlencode({**ack, "csrf": viewer_csrf}).encode())[0] == 403

    hostile = {"action": "resolve", "nonce": "nonce-0002", "csrf": csrf}
    huge = urlencode({**hostile, "reason": "x" * 20_000}).encode()
    assert analyst.request(act, huge)[0] in (400, 413)
    non_utf8 = urlencode(hostile).encode() + b"&reason=%FF%FE"
    assert analyst.request(act, non_utf8)[0] == 400
    control = urlencode({**hostile, "reason": "bell\x07"}).encode()
    assert analyst.request(act, control)[0] == 400
    assert _action_rows(env) == 0  # nothing written by any refused request

    script = "<script>alert(1)</script>"
    ok = urlencode({**hostile, "reason": script}).encode()
    assert analyst.request(act, ok)[0] == 303
    status, page = analyst.request(f"/alerts/{alert_id}")
    assert status == 200 and script not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    status, page = analyst.request("/customers/" + "%3Cscript%3E")
    assert status == 200 and "<script>" not in page
    assert _action_rows(env) == 1

    # wrong passwords, then the rate limit refuses even the right one (last: it locks the
    # client address too)
    for _ in range(5):
        body = urlencode({"csrf": token, "user": "ana", "password": "wrong"})
        assert anonymous.request("/login", body.encode())[0] == 401
    body = urlencode({"csrf": token, "user": "ana", "password": "ana-analyst-pw"})
    assert anonymous.request("/login", body.encode())[0] == 429


def test_silence_suppresses_a_firing_rule_in_the_live_worker_and_expires(env):
    console = start_console(env)
    [worker] = [w for w in env.workers if w.command[0] == "worker"]
    env.produce(TRANSACTIONS, [f.encode(large_cash("c-s1"))], [b"c-s1"])
    [first] = wait_for(lambda: _alert_ids(env), 60, "the first alert")

    # the console's silence form: the action on the topic, for this rule and subject
    analyst = Browserless(console.url)
    csrf = analyst.login("ana")
    form = {"csrf": csrf, "action": "silence", "nonce": "silence-01", "scope": "subject"}
    body = urlencode({**form, "minutes": "120", "reason": "known batch"}).encode()
    assert analyst.request(f"/alerts/{first}/actions", body)[0] == 303
    [message] = env.consume(ALERT_ACTIONS, 1)
    posted = AlertAction.model_validate_json(message.value)
    assert (posted.subject_id, posted.rule_id) == ("c-s1", "large_value.cash")
    assert timedelta(minutes=119) < posted.silence_until - posted.ts <= timedelta(minutes=120)

    # a short silence of the whole rule, as the console writes one, so the test sees it end
    now = datetime.now(UTC)
    until = now + timedelta(seconds=15)
    short = posted.model_copy(
        update={"action_id": "ac-short", "ts": now, "subject_id": None, "silence_until": until}
    )
    env.produce(ALERT_ACTIONS, [short.model_dump_json().encode()], [b"rule"])
    worker.wait_for(lambda s: s.get("silences", 0) >= 2, 30, "both silences")
    env.produce(TRANSACTIONS, [f.encode(large_cash("c-s2"))], [b"c-s2"])
    wait_for(lambda: _alert_ids(env, "subject_id = 'c-s2' AND status = 'silenced'"), 30, "silenced")
    assert datetime.now(UTC) < until, "the machine was too slow to see the silence in force"
    stats = worker.wait_for(lambda s: s.get("alerts_silenced", 0) >= 1, 10, "silenced count")
    assert stats["alerts_silenced"] == 1

    wait_for(lambda: datetime.now(UTC) > until, 30, "the end of the silence")
    env.produce(
        TRANSACTIONS,
        [f.encode(large_cash("c-s2")), f.encode(large_cash("c-s3"))],
        [b"c-s2", b"c-s2"],
    )
    wait_for(lambda: _alert_ids(env, "subject_id = 'c-s3'"), 30, "the c-s3 alert")
    published = [json.loads(m.value) for m in env.consume(ALERTS, 4, timeout_s=20)]
    cash = [a for a in published if a["rule_id"] == "large_value.cash"]
    # c-s2 was never sent while silenced; after the silence its next firing is sent as new
    assert sorted((a["subject_id"], a["status"], a["occurrences"]) for a in cash) == [
        ("c-s1", "new", 1),
        ("c-s2", "new", 2),
        ("c-s3", "new", 1),
    ]
