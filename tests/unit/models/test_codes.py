"""State code tables cover every enum value and model input; packing round trips."""

from __future__ import annotations

import numpy as np
import pytest

from finpulse.models import codes
from finpulse.models.events import (
    CustomerType,
    InteractionType,
    Segment,
    ServiceChannel,
    TxnChannel,
    TxnType,
)
from finpulse.models.packing import pack_rows, pack_vector, unb64, unpack_vector
from finpulse.models.risk import SUPERVISED_NAMES


@pytest.mark.parametrize(
    ("table", "enum"),
    [
        (codes.SEGMENT, Segment),
        (codes.CUSTOMER_TYPE, CustomerType),
        (codes.TXN_TYPE, TxnType),
        (codes.TXN_CHANNEL, TxnChannel),
        (codes.SERVICE_CHANNEL, ServiceChannel),
    ],
)
def test_every_enum_value_has_a_code(table, enum):
    assert {m.value for m in enum} <= set(table)


def test_every_model_input_has_a_code():
    assert set(SUPERVISED_NAMES) <= set(codes.RISK_INPUT)
    sat = {f"ch_{c.value}" for c in ServiceChannel} | {f"ch_it_{t.value}" for t in InteractionType}
    assert sat <= set(codes.SATISFACTION_INPUT)


def test_a_missing_code_names_the_table_to_extend():
    with pytest.raises(KeyError, match=r"models/codes\.py"):
        codes.encode(codes.TXN_TYPE, "crypto")


def test_tables_refuse_duplicate_codes():
    with pytest.raises(ValueError):
        codes._table({"a": 1, "b": 1})


@pytest.mark.parametrize("dtype", ["e", "f"])
def test_vectors_round_trip_within_the_dtype_precision(dtype):
    rng = np.random.default_rng(3)
    X = rng.normal(0, 5, size=(50, 37))
    X[rng.random(X.shape) < 0.5] = 0.0
    X[rng.random(X.shape) < 0.1] = 1.0
    X[rng.random(X.shape) < 0.05] = -1.0
    for row, blob in zip(X, pack_rows(X, dtype), strict=True):
        assert pack_vector(row.tolist(), dtype) == blob  # one row, pure Python: same bytes
        values, end = unpack_vector(blob + b"tail", 0, dtype)
        assert end == len(blob)
        rel = 1e-3 if dtype == "e" else 1e-7
        np.testing.assert_allclose(values, row, rtol=rel, atol=1e-6)
        assert [v for v, r in zip(values, row, strict=True) if r in (0.0, 1.0, -1.0)] == [
            r for r in row if r in (0.0, 1.0, -1.0)
        ]


def test_blob_text_of_earlier_releases_is_read_back():
    """Earlier releases kept blobs in JSON state as unpadded base64, digits swapped for
    ``!#$%&()*.:`` (written here as they did)."""
    import base64
    import os

    for n in range(0, 70):
        data = os.urandom(n)
        text = base64.b64encode(data).decode().rstrip("=")
        text = text.translate(str.maketrans("0123456789", "!#$%&()*.:"))
        assert unb64(text) == data
