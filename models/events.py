"""The event contract of DESIGN.md as strict pydantic models.

Field names are a contract with upstream producers. Every model forbids unknown
fields (a typo in an optional field must not vanish silently), rejects NaN and
infinity, and requires timezone-aware RFC 3339 timestamps.

>>> t = Transaction.model_validate_json(
...     '{"event_id": "t-1", "ts": "2026-01-05T10:00:00+00:00", "customer_id": "c-1",'
...     ' "customer_type": "individual", "segment": "retail", "account_id": "a-1",'
...     ' "amount": 12.5, "currency": "CNY", "direction": "debit",'
...     ' "txn_type": "card_payment", "channel": "pos"}'
... )
>>> (t.amount, t.schema_version)
(Decimal('12.5'), 1)
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

# Timestamps outside this range are not plausible event times (catches epoch-0 and
# year-9999 sentinels that upstream systems emit by mistake).
TS_MIN = datetime.fromisoformat("2000-01-01T00:00:00+00:00")
TS_MAX = datetime.fromisoformat("2100-01-01T00:00:00+00:00")
# Amounts above this are treated as absurd input, not as a very large payment.
AMOUNT_MAX = Decimal("1e12")

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")

Id = Annotated[str, Field(min_length=1, max_length=128)]
# The range is checked by pydantic-core, cheaper than a Python validator. The
# clock-skew limit (now + FINPULSE_MAX_FUTURE_SKEW_S) is the decoder's
# (finpulse.streams.core.decode).
Timestamp = Annotated[AwareDatetime, Field(ge=TS_MIN, lt=TS_MAX)]
OptionalId = Annotated[str | None, Field(default=None, min_length=1, max_length=128)]


class CustomerType(StrEnum):
    INDIVIDUAL = "individual"
    INSTITUTION = "institution"


class Segment(StrEnum):
    RETAIL = "retail"
    PRIVATE = "private"
    SME = "sme"
    CORPORATE = "corporate"
    GOVERNMENT = "government"
    NONPROFIT = "nonprofit"


class Direction(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class TxnType(StrEnum):
    TRANSFER = "transfer"
    CASH_WITHDRAWAL = "cash_withdrawal"
    CASH_DEPOSIT = "cash_deposit"
    CARD_PAYMENT = "card_payment"
    BILL_PAYMENT = "bill_payment"
    SECURITIES_TRADE = "securities_trade"
    FX = "fx"


class TxnChannel(StrEnum):
    APP = "app"
    WEB = "web"
    BRANCH = "branch"
    ATM = "atm"
    POS = "pos"
    CALL_CENTER = "call_center"
    API = "api"


class ServiceChannel(StrEnum):
    APP = "app"
    WEB = "web"
    BRANCH = "branch"
    CALL_CENTER = "call_center"
    CHAT = "chat"
    EMAIL = "email"


class InteractionType(StrEnum):
    INQUIRY = "inquiry"
    COMPLAINT = "complaint"
    TRANSACTION_SUPPORT = "transaction_support"
    ACCOUNT_SERVICE = "account_service"
    ADVISORY = "advisory"


class FeedbackKind(StrEnum):
    FRAUD_CONFIRMED = "fraud_confirmed"
    FRAUD_CLEARED = "fraud_cleared"
    CSAT_SURVEY = "csat_survey"
    COMPLAINT_CLOSED = "complaint_closed"


class _Event(BaseModel):
    """Shared config and fields: strict types, no unknown fields, no NaN."""

    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, allow_inf_nan=False, use_enum_values=False
    )

    event_id: Id
    ts: Timestamp
    customer_id: Id


class Transaction(_Event):
    """One posted transaction on ``finpulse.transactions``."""

    customer_type: CustomerType
    segment: Segment
    account_id: Id
    # Strict mode would refuse JSON numbers for Decimal; amounts come as JSON numbers.
    amount: Annotated[Decimal, Field(gt=0, le=AMOUNT_MAX, strict=False, decimal_places=6)]
    currency: Annotated[str, Field(pattern=_CURRENCY.pattern)]
    direction: Direction
    txn_type: TxnType
    channel: TxnChannel
    counterparty_id: OptionalId = None
    counterparty_country: Annotated[str | None, Field(default=None, pattern=_COUNTRY.pattern)] = (
        None
    )
    cross_border: bool | None = None
    # settled in cash at the counter (cash remittance, cash FX, cash bill settlement); cash
    # deposits and withdrawals are cash whatever this says (PBoC Order 2016 No. 3, Art. 5(1))
    cash: bool | None = None
    merchant_category: Annotated[str | None, Field(default=None, max_length=64)] = None
    device_id: OptionalId = None
    ip_country: Annotated[str | None, Field(default=None, pattern=_COUNTRY.pattern)] = None
    schema_version: Annotated[int, Field(ge=1, le=1)] = 1


class Interaction(_Event):
    """One customer-service contact on ``finpulse.interactions``."""

    customer_type: CustomerType
    segment: Segment
    channel: ServiceChannel
    interaction_type: InteractionType
    wait_seconds: Annotated[float, Field(ge=0, le=7 * 86400)]
    handle_seconds: Annotated[float, Field(ge=0, le=7 * 86400)]
    resolved: bool
    first_contact_resolution: bool | None = None
    transfers: Annotated[int | None, Field(default=None, ge=0, le=1000)] = None
    agent_id: OptionalId = None
    sentiment: Annotated[float | None, Field(default=None, ge=-1, le=1)] = None
    complaint_id: OptionalId = None
    ref_event_id: OptionalId = None
    schema_version: Annotated[int, Field(ge=1, le=1)] = 1


class Feedback(_Event):
    """A delayed label on ``finpulse.feedback`` for an earlier event."""

    kind: FeedbackKind
    ref_event_id: Id
    value: Annotated[float | None, Field(default=None, ge=1, le=5)] = None

    @field_validator("value")
    @classmethod
    def _whole_csat(cls, value: float | None) -> float | None:
        if value is not None and value != int(value):
            raise ValueError("CSAT value must be a whole number 1-5")
        return value


class MinuteCount(BaseModel):
    """Contacts of one channel in one closed minute of one source partition."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    minute: Timestamp  # start of the minute
    contacts: Annotated[int, Field(ge=1)]
    answered: Annotated[int, Field(ge=0)]  # answered within the channel's threshold

    @field_validator("answered")
    @classmethod
    def _not_more_than_contacts(cls, answered: int, info: ValidationInfo) -> int:
        if answered > info.data.get("contacts", answered):
            raise ValueError("answered exceeds contacts")
        return answered


class MinuteSurveys(BaseModel):
    """Survey answers of one channel in one closed minute of one source partition."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    minute: Timestamp  # start of the minute
    answers: Annotated[int, Field(ge=1)]
    answer_sum: Annotated[int, Field(ge=1)]  # answers are 1-5

    @field_validator("answer_sum")
    @classmethod
    def _on_the_scale(cls, answer_sum: int, info: ValidationInfo) -> int:
        n = info.data.get("answers")
        if n is not None and not n <= answer_sum <= 5 * n:
            raise ValueError("answer_sum outside 1-5 per answer")
        return answer_sum


class ChannelMinutes(BaseModel):
    """What one source partition closed for one channel, on the internal topic
    ``finpulse.channel_minutes`` (keyed by channel): the counts of its newly closed minutes
    (those with contacts) and the newest minute it has closed. Written by the worker itself
    (``streams/stages/service/service_level.py``), validated like any input.

    >>> m = ChannelMinutes.model_validate_json(
    ...     '{"event_id": "call_center|p1|2026-01-05T10:02:00+00:00",'
    ...     ' "ts": "2026-01-05T10:03:20+00:00", "channel": "call_center",'
    ...     ' "source_partition": 1, "closed_minute": "2026-01-05T10:02:00+00:00",'
    ...     ' "minutes": [{"minute": "2026-01-05T10:02:00+00:00", "contacts": 4,'
    ...     ' "answered": 1}]}')
    >>> m.channel.value, m.minutes[0].contacts
    ('call_center', 4)
    """

    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, allow_inf_nan=False, use_enum_values=False
    )

    event_id: Id  # {channel}|p{source partition}|{closed minute}: the same on a re-run
    ts: Timestamp  # event time at which the source closed ``closed_minute``
    channel: ServiceChannel
    source_partition: Annotated[int, Field(ge=0, le=100_000)]
    closed_minute: Timestamp
    minutes: Annotated[list[MinuteCount], Field(max_length=1440)]
    surveys: Annotated[list[MinuteSurveys], Field(max_length=1440)] = []  # absent: none


class ModelDetection(BaseModel):
    """A drift that a shared model's detector found on the model's learning stream, on the
    internal topic ``finpulse.model_health`` (keyed by model): every worker sends it, the
    owner of the model's partition raises it once
    (``streams/stages/model_health.py``). Its position (``stream_offset``, ``index``) is
    the same in every worker (``models/stream_drift.py``).

    >>> m = ModelDetection.model_validate_json(
    ...     '{"event_id": "risk|supervised_error|8|14", "ts": "2026-01-05T10:03:20+00:00",'
    ...     ' "model": "risk", "detector": "supervised_error", "stream_offset": 8,'
    ...     ' "index": 14, "evidence": {"detector": "ADWIN", "error_mean": 0.41}}')
    >>> (m.stream_offset, m.index), m.evidence["error_mean"]
    ((8, 14), 0.41)
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)

    event_id: Id  # {model}|{detector}|{stream offset}|{index}: the same in every worker
    ts: Timestamp  # event time of the example that triggered it
    model: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]
    detector: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")]
    stream_offset: Annotated[int, Field(ge=0)]
    index: Annotated[int, Field(ge=0)]
    evidence: Annotated[dict[str, float | int | str], Field(max_length=16)] = {}
    model_version: OptionalId = None


class InputMinute(BaseModel):
    """The sums of a model's inputs over the transactions one source partition scored in one
    minute (what a pooled minute mean is made of)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)

    minute: Timestamp  # start of the minute
    transactions: Annotated[int, Field(ge=1)]
    amount_sum: float  # of the log amounts (CNY)
    velocity_sum: float  # of the log hourly transaction counts


class ModelInputMinutes(BaseModel):
    """What one source partition closed of a model's inputs, on the internal topic
    ``finpulse.model_inputs`` (keyed by model): the sums of its newly closed minutes and the
    newest minute it has closed. The model's owner pools them and runs the input-drift
    detectors once on all partitions (``streams/stages/input_drift.py``).

    >>> m = ModelInputMinutes.model_validate_json(
    ...     '{"event_id": "risk|p1|2026-01-05T10:02:00+00:00", "ts": "2026-01-05T10:03:20+00:00",'
    ...     ' "model": "risk", "source_partition": 1, "closed_minute": "2026-01-05T10:02:00+00:00",'
    ...     ' "minutes": [{"minute": "2026-01-05T10:02:00+00:00", "transactions": 3,'
    ...     ' "amount_sum": 21.5, "velocity_sum": 1.2}]}')
    >>> m.minutes[0].transactions
    3
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)

    event_id: Id  # {model}|p{source partition}|{closed minute}: the same on a re-run
    ts: Timestamp  # event time at which the source closed ``closed_minute``
    model: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]
    source_partition: Annotated[int, Field(ge=0, le=100_000)]
    closed_minute: Timestamp
    minutes: Annotated[list[InputMinute], Field(max_length=1440)] = []


class DeadLetter(BaseModel):
    """An input that could not be processed, with everything needed to replay it.

    ``id`` is derived from (topic, partition, offset), so a re-delivered bad
    message produces the same dead letter and is counted once.
    """

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="sha1 of topic/partition/offset, stable across re-delivery")
    ingested_at: AwareDatetime
    source_topic: str
    source_partition: int
    source_offset: int
    error_type: str = Field(description="machine-readable class, e.g. invalid_json")
    error: str = Field(description="human-readable reason, names the offending fields")
    raw_size: int = Field(description="payload size in bytes")
    raw_b64: str = Field(description="the payload, base64 (truncated to the size limit)")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def control_char_fields(event: BaseModel) -> list[str]:
    r"""Names of the string fields of ``event`` holding control characters (NUL, newline...).

    JSON only carries them escaped (``\u0000``, ``\n``), so callers check this only
    when the raw payload contains a backslash; a per-field pattern would triple the
    validation cost of every event.

    >>> control_char_fields(Feedback.model_validate_json(
    ...     '{"event_id": "f\\n1", "ts": "2026-01-05T10:00:00+00:00", "customer_id": "c",'
    ...     ' "kind": "csat_survey", "ref_event_id": "i"}'))
    ['event_id']
    """
    return [k for k, v in event.__dict__.items() if isinstance(v, str) and _CONTROL.search(v)]


EVENT_MODELS: dict[str, type[BaseModel]] = {
    "transaction": Transaction,
    "interaction": Interaction,
    "feedback": Feedback,
    "channel_minute": ChannelMinutes,  # internal: finpulse.channel_minutes
    "model_detection": ModelDetection,  # internal: finpulse.model_health
    "model_input_minute": ModelInputMinutes,  # internal: finpulse.model_inputs
    "deadletter": DeadLetter,
}
