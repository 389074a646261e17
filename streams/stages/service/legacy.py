"""Reads the survey entries of the previous release's customer records (JSON state) into
:class:`~finpulse.streams.stages.service.pending.AwaitingSurvey` records, so an upgrade
keeps the survey joins of interactions scored before it.

An entry was ``[ms, x, predicted, p_dissatisfied, channel]``: ``x`` base64 text (digits
written as punctuation, :func:`finpulse.models.packing.unb64`) of the number of inputs,
their codes and their packed float32 values, the channel its code; or, in the format
before that, ``x`` a dict of named floats and the channel its name. Read only: nothing
writes these formats any more.

>>> e = survey_entry([1000, "BAEDGAUEFyEoJEA", 4.25, 0.02, 5])
>>> e.scored_ms, e.predicted_csat, e.channel_name(), e.inputs()["ch_chat"]
(1000, 4.25, 'chat', 1.0)
>>> survey_entry([1000, {"wait_log": 0.5}, 4.0, 0.1, "web"]).inputs()
{'wait_log': 0.5}
"""

from __future__ import annotations

import binascii
import logging
from typing import Any

from finpulse.models import codes
from finpulse.models.packing import unb64, unpack_vector
from finpulse.streams.stages.service.pending import AwaitingSurvey

log = logging.getLogger(__name__)


def survey_entries(old: dict[str, Any]) -> dict[str, AwaitingSurvey]:
    """The entries of an old ``pe`` map that can be read (others are logged and dropped)."""
    out = {}
    for event_id, entry in old.items():
        try:
            out[event_id] = survey_entry(entry)
        except (ValueError, IndexError, KeyError, TypeError, binascii.Error):
            log.info("an unreadable survey entry of an earlier release was dropped")
    return out


def survey_entry(old: list[Any]) -> AwaitingSurvey:
    """One old entry (either format) as a record."""
    ms, x, predicted, p, channel = old
    if isinstance(x, str):
        data = unb64(x)
        n = data[0]
        names = [codes.SATISFACTION_INPUT_NAMES[c] for c in data[1 : 1 + n]]
        values, _ = unpack_vector(data, 1 + n, "f")
        x = dict(zip(names, values, strict=True))
    if isinstance(channel, int):
        channel = codes.SERVICE_CHANNEL_NAMES[channel]
    return AwaitingSurvey.of(int(ms), x, float(predicted), float(p), channel)
