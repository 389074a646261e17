"""PCI DSS: after a run fed with card numbers everywhere, no table, topic or log holds one."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import SecretStr

from finpulse.models.masking import ACCOUNT_PREFIX, CARD_PREFIX, find_card_numbers, luhn_valid
from finpulse.streams.core.topics import ALERTS, DEADLETTER, INTERACTIONS, TRANSACTIONS
from tests import factories as f
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

CARDS = ["4111111111111111", "5555555555554444", "378282246310005", "6212345678901265"]


def _fmt(card: str, style: int) -> str:
    groups = [card[i : i + 4] for i in range(0, len(card), 4)]
    return (card, " ".join(groups), "-".join(groups))[style % 3]


def _card_transactions(n: int) -> list[dict]:
    events = []
    for i in range(n):
        card = CARDS[i % len(CARDS)]
        events.append(
            f.transaction(
                account_id=_fmt(card, i),
                device_id=f"dev {_fmt(card, i + 1)}",
                merchant_category=_fmt(CARDS[(i + 1) % len(CARDS)], i + 2),
                counterparty_id=f"cp-{_fmt(CARDS[(i + 2) % len(CARDS)], i)}",
                # A large amount, so policy rules fire and alerts carry the (masked) account.
                amount=2_500_000 if i % 10 == 0 else 120.5,
                txn_type="transfer",
            )
        )
    return events


def _malformed() -> list[bytes]:
    card = CARDS[0]
    return [
        f.encode(f.transaction(amount=card)),  # wrong type: the error quotes the input
        f.encode(f.transaction(channel=_fmt(card, 1))),  # unknown enum
        f.encode(f.transaction(card_number=_fmt(card, 2))),  # unknown field
        ('{"account_id": "' + card + '", "event_id": ').encode(),  # invalid JSON
        b'{"account_id": "' + card.encode() + b'\xff\xfe"}',  # not UTF-8
        b'{"card": "' + card.encode() + b'", "pad": "' + b"x" * 70_000 + card.encode() + b'"}',
    ]


def _all_text_cells(env) -> dict[str, list[str]]:
    """Every column of every table in the test database, as text (raw payloads decoded)."""
    db = env.settings.clickhouse_database
    client = env.client()
    try:
        tables = [
            r[0]
            for r in client.query(
                "SELECT name FROM system.tables WHERE database = {db:String}", {"db": db}
            ).result_rows
        ]
        cells: dict[str, list[str]] = {}
        for table in tables:
            columns = [
                r[0]
                for r in client.query(
                    "SELECT name FROM system.columns WHERE database = {db:String} "
                    "AND table = {t:String}",
                    {"db": db, "t": table},
                ).result_rows
            ]
            for col in columns:
                values = client.query(f"SELECT toString(`{col}`) FROM {db}.`{table}`").result_rows
                texts = [str(v[0]) for v in values]
                if col == "raw_b64":
                    texts = [base64.b64decode(t).decode("utf-8", "replace") for t in texts]
                cells[f"{table}.{col}"] = texts
        return cells
    finally:
        client.close()


def _clear_cards(text: str) -> list[str]:
    found = find_card_numbers(text)
    digits = "".join(c for c in text if c.isdigit() or c in " -\n")
    found += [card for card in CARDS if card in digits.replace(" ", "").replace("-", "")]
    return found


def test_no_clear_card_number_in_any_table_topic_or_log(env):
    assert all(luhn_valid(c) for c in CARDS)
    worker = env.worker(pii_key=SecretStr("test-pii-key"))
    txns = _card_transactions(120)
    bad = _malformed()
    inters = [
        f.interaction(
            agent_id=_fmt(CARDS[1], 1), complaint_id=CARDS[2], interaction_type="complaint"
        )
        for _ in range(30)
    ]
    env.produce(TRANSACTIONS, [f.encode(e) for e in txns] + bad)
    env.produce(INTERACTIONS, [f.encode(e) for e in inters])

    assert env.wait_rows("transactions", len(txns)) == len(txns)
    assert env.wait_rows("interactions", len(inters)) == len(inters)
    assert env.wait_rows("deadletters", len(bad)) == len(bad)
    wait_for(lambda: env.row_count("alerts") > 0, 30, "alerts on the large transfers")
    worker.stop(timeout_s=15)

    cells = _all_text_cells(env)
    assert {"transactions.account_id", "deadletters.raw_b64", "alerts.subject_id"} <= set(cells)
    leaks = {
        where: hits for where, texts in cells.items() if (hits := _clear_cards("\n".join(texts)))
    }
    assert leaks == {}
    # Not vacuous: the values arrived, masked, and tokens are stable (one per card).
    accounts = set(cells["transactions.account_id"])
    assert all(a.startswith(ACCOUNT_PREFIX) for a in accounts)
    assert len(accounts) == len(CARDS)
    assert all(CARD_PREFIX in d for d in cells["transactions.device_id"])
    assert sum(CARD_PREFIX in p for p in cells["deadletters.raw_b64"]) == len(bad)

    for topic, n in ((DEADLETTER, len(bad)), (ALERTS, 1)):
        messages = env.consume(topic, n)
        assert len(messages) >= n
        text = "\n".join(m.value.decode("utf-8", "replace") for m in messages)
        payloads = [json.loads(m.value).get("raw_b64") for m in messages]
        text += "\n".join(base64.b64decode(p).decode("utf-8", "replace") for p in payloads if p)
        assert _clear_cards(text) == [], topic

    log = worker.log_path.read_text()
    assert "dead letters from transaction" in log  # the worker did log about them
    assert _clear_cards(log) == []
