"""The event contract: valid events pass, every kind of invalid input fails with a reason."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from finpulse.models.events import Feedback, Interaction, Transaction
from tests import factories as f


def _reject(model, event, field):
    with pytest.raises(ValidationError) as info:
        model.model_validate_json(json.dumps(event))
    locs = {".".join(map(str, e["loc"])) for e in info.value.errors()}
    assert field in locs, locs


def test_valid_events_parse():
    t = Transaction.model_validate_json(f.encode(f.transaction(amount="1999.99")))
    assert t.amount == Decimal("1999.99")
    assert Interaction.model_validate_json(f.encode(f.interaction())).resolved is True
    assert Feedback.model_validate_json(f.encode(f.feedback(value=5))).value == 5


@pytest.mark.parametrize(
    "field",
    [
        "event_id",
        "ts",
        "customer_id",
        "customer_type",
        "segment",
        "account_id",
        "amount",
        "currency",
        "direction",
        "txn_type",
        "channel",
    ],
)
def test_transaction_missing_required_field(field):
    event = f.transaction()
    del event[field]
    _reject(Transaction, event, field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", 0),
        ("amount", -1),
        ("amount", "abc"),
        ("amount", True),
        ("amount", 1e13),
        ("amount", [1]),
        ("amount", 1.1234567),
        ("currency", "yuan"),
        ("currency", "cny"),
        ("customer_type", "robot"),
        ("segment", "vip"),
        ("direction", "sideways"),
        ("txn_type", "barter"),
        ("channel", "fax"),
        ("ts", "2026-01-01T10:00:00"),
        ("ts", "yesterday"),
        ("ts", 1700000000),
        ("ts", "1970-01-01T00:00:00Z"),
        ("ts", "2999-01-01T00:00:00Z"),
        ("event_id", ""),
        ("event_id", 5),
        ("customer_id", None),
        ("event_id", "x" * 129),
        ("counterparty_country", "China"),
        ("ip_country", "cn"),
        ("cross_border", "yes"),
        ("schema_version", 2),
        ("unexpected", 1),
    ],
)
def test_transaction_invalid_value(field, value):
    _reject(Transaction, f.transaction(**{field: value}), field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("channel", "atm"),
        ("interaction_type", "chitchat"),
        ("wait_seconds", -1),
        ("wait_seconds", "3"),
        ("handle_seconds", None),
        ("resolved", "yes"),
        ("resolved", 1),
        ("transfers", -1),
        ("transfers", 1.5),
        ("sentiment", 1.5),
        ("sentiment", -2),
        ("first_contact_resolution", "no"),
    ],
)
def test_interaction_invalid_value(field, value):
    _reject(Interaction, f.interaction(**{field: value}), field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "fraud_maybe"),
        ("value", 0),
        ("value", 6),
        ("value", 3.5),
        ("ref_event_id", None),
    ],
)
def test_feedback_invalid_value(field, value):
    _reject(Feedback, f.feedback(**{field: value}), field)


def test_nan_and_infinity_are_rejected():
    raw = f.encode(f.transaction()).replace(b'"amount": 120.5', b'"amount": NaN')
    with pytest.raises(ValidationError):
        Transaction.model_validate_json(raw)
    raw = f.encode(f.interaction()).replace(b'"wait_seconds": 12.0', b'"wait_seconds": Infinity')
    with pytest.raises(ValidationError):
        Interaction.model_validate_json(raw)


def test_boundary_values_are_accepted():
    Transaction.model_validate_json(f.encode(f.transaction(amount=0.000001)))
    Interaction.model_validate_json(f.encode(f.interaction(sentiment=-1, wait_seconds=0)))
    Feedback.model_validate_json(f.encode(f.feedback(value=1)))
