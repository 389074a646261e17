"""Interactions waiting for their survey: what the model scored, kept in the customer record.

Each scored interaction waits in the customer's ``awaiting_survey`` (keyed by its event
id) as an :class:`AwaitingSurvey` record, until its survey answer arrives and the
satisfaction model learns from the same inputs it scored. The inputs (a dict of named
floats) are kept as their codes (:data:`finpulse.models.codes.SATISFACTION_INPUT`) and one
packed float32 vector (:func:`finpulse.models.packing.pack_vector`: zeros and ones take no
bytes), about a fifth of a MessagePack map or list of floats (docs/benchmarks.md); scores
are kept to 4 decimals, the channel as its code.

>>> x = {"wait_log": 2.5649493574615367, "resolved": 1.0, "ch_chat": 1.0, "transfers": 0.0}
>>> e = AwaitingSurvey.of(1000, x, 4.25, 0.02, "chat")
>>> e.channel, e.input_codes, e.inputs() == {**x, "wait_log": 2.5649492740631104}
(5, b'\\x01\\x03\\x18\\x05', True)
>>> e.predicted_csat, e.p_dissatisfied, e.channel_name()
(4.25, 0.02, 'chat')
"""

from __future__ import annotations

import msgspec

from finpulse.models import codes
from finpulse.models.packing import pack_vector, unpack_vector

_SCALE = 10_000  # scores kept to 4 decimals


class AwaitingSurvey(msgspec.Struct, array_like=True, gc=False):
    """One scored interaction waiting for its survey (no reference cycles: not tracked by
    the cyclic garbage collector). New fields only at the end, with a default."""

    scored_ms: int  # event time of the interaction, epoch ms
    input_codes: bytes  # codes.SATISFACTION_INPUT of the inputs, in order
    packed_inputs: bytes  # their values: packing.pack_vector, float32
    predicted_csat_e4: int  # predicted CSAT x 10^4
    p_dissatisfied_e4: int  # P(dissatisfied) x 10^4
    channel: int  # codes.SERVICE_CHANNEL

    @classmethod
    def of(
        cls, ms: int, x: dict[str, float], predicted: float, p: float, channel: str
    ) -> AwaitingSurvey:
        """The entry of an interaction scored at ``ms`` from inputs ``x`` (example: module
        doc). An input without a code raises (``tests/unit/models/test_codes.py`` checks
        that every model input has one)."""
        table = codes.SATISFACTION_INPUT
        return cls(
            ms,
            bytes(codes.encode(table, k) for k in x),
            pack_vector(list(x.values()), "f"),
            round(predicted * _SCALE),
            round(p * _SCALE),
            codes.encode(codes.SERVICE_CHANNEL, channel),
        )

    @property
    def predicted_csat(self) -> float:
        return self.predicted_csat_e4 / _SCALE

    @property
    def p_dissatisfied(self) -> float:
        return self.p_dissatisfied_e4 / _SCALE

    def inputs(self) -> dict[str, float]:
        """The model inputs it was scored with (float32 precision)."""
        names = [codes.SATISFACTION_INPUT_NAMES[c] for c in self.input_codes]
        values, _ = unpack_vector(self.packed_inputs, 0, "f")
        return dict(zip(names, values, strict=True))

    def channel_name(self) -> str:
        return codes.SERVICE_CHANNEL_NAMES[self.channel]
