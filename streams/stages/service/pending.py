"""Interactions waiting for their survey, compactly encoded in the customer record.

``pe[event_id]`` is ``[ms, x, predicted, p_dissatisfied, channel]``. ``x`` (the
satisfaction model inputs, a dict of named floats) is stored as base64 of: the number of
inputs, their codes (:data:`finpulse.models.codes.SATISFACTION_INPUT`) and their values
(:func:`finpulse.models.packing.pack_vector`, float32), and the channel as its code
(:data:`finpulse.models.codes.SERVICE_CHANNEL`). The previous format (``x`` a dict, the channel a
string) is still read, and is kept for an input without a code, so nothing is lost.

>>> x = {"wait_log": 2.5649493574615367, "resolved": 1.0, "ch_chat": 1.0, "transfers": 0.0}
>>> e = entry(1000, x, 4.25, 0.02, "chat")
>>> e[1], e[4]
('BAEDGAUEFyEoJEA', 5)
>>> read(e) == (1000, {**x, "wait_log": 2.5649492740631104}, 4.25, 0.02, "chat")
True
"""

from __future__ import annotations

from typing import Any

from finpulse.models import codes
from finpulse.models.packing import b64, pack_vector, unb64, unpack_vector


def entry(ms: int, x: dict[str, float], predicted: float, p: float, channel: str) -> list[Any]:
    """The stored entry of one scored interaction."""
    table = codes.SATISFACTION_INPUT
    channel_code = codes.SERVICE_CHANNEL.get(channel)
    if channel_code is None or any(k not in table for k in x):
        return [ms, x, predicted, p, channel]  # previous format: nothing is lost
    head = bytes((len(x), *(table[k] for k in x)))
    return [ms, b64(head + pack_vector(list(x.values()), "f")), predicted, p, channel_code]


def read(e: list[Any]) -> tuple[int, dict[str, float], float, float, str]:
    """``(ms, x, predicted, p_dissatisfied, channel)`` of a stored entry (either format)."""
    ms, x, predicted, p, channel = e
    if isinstance(x, str):
        data = unb64(x)
        n = data[0]
        names = [codes.SATISFACTION_INPUT_NAMES[c] for c in data[1 : 1 + n]]
        values, _ = unpack_vector(data, 1 + n, "f")
        x = dict(zip(names, values, strict=True))
    if isinstance(channel, int):
        channel = codes.SERVICE_CHANNEL_NAMES[channel]
    return ms, x, predicted, p, channel
