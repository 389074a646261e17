"""Satisfaction: score each interaction with the online model, learn from its survey.

Each interaction is scored from its own features and the customer's context (contacts of
the last 24 h, recent waits, open complaints, a recent risk alert, past survey answers); the
scored inputs wait in the customer record (``awaiting_survey``,
:mod:`finpulse.streams.stages.service.pending`) for the survey. The monitor compares the
answer with the prediction (the model metrics); the answer goes to its channel's survey
minute, judged for a drop by the channel's owner
(:mod:`~finpulse.streams.stages.service.csat_drop`); the example (inputs and answer) goes
to the model's learning stream (``finpulse.learning.satisfaction``,
:mod:`finpulse.models.learning`), which every worker learns in full and in order
(:meth:`Satisfaction.learn_examples`), so all workers hold the same model. Every
``satisfaction_checkpoint_every`` surveys learned the model is checkpointed, with the
stream position it includes, as a ``model_checkpoints`` row (the same store as the risk
models, :mod:`finpulse.sinks.checkpoints`), restored before the worker's first batch; the
worker then replays the stream after that position.

>>> from collections import Counter
>>> from finpulse.config.policy import load_policy
>>> from finpulse.config.settings import Settings
>>> from finpulse.streams.stages.rules import RuleEngine
>>> sat = Satisfaction(Settings(), RuleEngine(load_policy()), Counter())
>>> sat.version, sat.model.n_learned
('satisfaction-1.0', 0)
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any, cast

from finpulse.config.settings import Settings
from finpulse.models.events import Feedback, Interaction
from finpulse.models.ids import no_card_runs
from finpulse.models.learning import Example, ExampleBatch, LearnedPosition, encode_batch
from finpulse.models.satisfaction import (
    SatisfactionModel,
    SatisfactionMonitor,
    interaction_features,
)
from finpulse.models.stream_drift import ErrorDrift
from finpulse.sinks.checkpoints import CheckpointStore, checkpoint_row
from finpulse.sinks.tables import MODEL_CHECKPOINTS_TABLE, MODEL_METRICS_TABLE
from finpulse.streams.core.batch import BatchOutput, Outgoing
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.topics import SATISFACTION_EXAMPLES
from finpulse.streams.stages.model_health import detection_message
from finpulse.streams.stages.rules import RuleEngine
from finpulse.streams.stages.service import customers as cu
from finpulse.streams.stages.service.pending import AwaitingSurvey
from finpulse.streams.stages.service.records import RiskAlert, ServiceCustomer
from finpulse.streams.stages.service.windows import from_ms

log = logging.getLogger(__name__)

MODEL_NAME = "satisfaction"  # its checkpoints' name in the model_checkpoints table
PRIOR_CSAT = 3.5  # survey answers shrink towards it, worth two answers
PRIOR_WEIGHT = 2


def customer_context(
    cust: ServiceCustomer, prior_contacts: int, risks: list[RiskAlert]
) -> dict[str, float]:
    """The customer context the model scores an interaction with.

    >>> from finpulse.streams.stages.service.records import OpenComplaint
    >>> cust = ServiceCustomer(recent_wait_logs=[1.0, 2.0], csat_sum=10.0, csat_count=2,
    ...                        open_complaints={"k": OpenComplaint(0, [])})
    >>> customer_context(cust, 2, [])
    {'contacts_24h': 2.0, 'recent_wait_log': 1.5, 'open_complaints': 1.0, 'risk_friction': 0.0, 'past_csat': 0.75}
    """  # noqa: E501
    waits = cust.recent_wait_logs
    shrunk = (cust.csat_sum + PRIOR_CSAT * PRIOR_WEIGHT) / (cust.csat_count + PRIOR_WEIGHT)
    return {
        "contacts_24h": float(prior_contacts),
        "recent_wait_log": sum(waits) / len(waits) if waits else 0.0,
        "open_complaints": float(len(cust.open_complaints)),
        "risk_friction": 1.0 if risks else 0.0,
        "past_csat": shrunk - PRIOR_CSAT,
    }


ERROR_DETECTOR = "satisfaction_error"  # rule drift.satisfaction_error


class Satisfaction:
    """The satisfaction model and monitor of a worker, with their checkpoint."""

    def __init__(
        self,
        settings: Settings,
        engine: RuleEngine,
        counts: Counter[str],
        checkpoints: CheckpointStore | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.counts = counts  # shared with the stage
        self.checkpoints = checkpoints
        self.model = SatisfactionModel()
        self.monitor = SatisfactionMonitor(warmup=settings.satisfaction_warmup)
        self.position = LearnedPosition()
        # the error's drift, fed on the learning stream: the same in every worker
        self.error_drift = ErrorDrift(MODEL_NAME, detector=ERROR_DETECTOR)
        self._joined: list[Example] = []  # the batch's examples, published at its end
        self._restored = checkpoints is None  # never overwrite a checkpoint not yet read
        self._ttl_ms = int(settings.satisfaction_pending_ttl_s * 1000)

    @property
    def version(self) -> str:
        """The model version (moves on as it learns); example: the module doc."""
        return self.model.model_version

    def score(
        self,
        ev: Interaction,
        cust: ServiceCustomer,
        ms: int,
        prior_contacts: int,
        risks: list[RiskAlert],
        threshold_s: float,
        out: BatchOutput,
    ) -> tuple[float, float]:
        """Score an interaction, keep it for its survey; returns (CSAT, P(dissatisfied)).

        >>> from collections import Counter
        >>> from finpulse.models.events import Interaction
        >>> from tests.factories import encode, interaction
        >>> sat, cust = Satisfaction(Settings(), None, Counter()), ServiceCustomer()
        >>> ev = Interaction.model_validate_json(encode(interaction(event_id="i-1")))
        >>> predicted, p = sat.score(ev, cust, 0, 0, [], 20.0, BatchOutput())
        >>> 1 <= predicted <= 5 and 0 <= p <= 1, list(cust.awaiting_survey), cust.recent_wait_logs
        (True, ['i-1'], [0.47])
        """
        x = interaction_features(ev, customer_context(cust, prior_contacts, risks))
        predicted = self.model.predict_one(x)
        p_dissat = self.model.score_one(x)
        reasons = self.model.explain_one(x)
        wait = round(math.log1p(ev.wait_seconds / threshold_s), 4)
        cust.recent_wait_logs = [*cust.recent_wait_logs, wait][-cu.RECENT_WAITS :]
        pd = cust.predicted_dissatisfaction
        cust.predicted_dissatisfaction = round(
            0.7 * (p_dissat if pd is None else pd) + 0.3 * p_dissat, 4
        )
        cust.awaiting_survey[ev.event_id] = AwaitingSurvey.of(
            ms, x, predicted, p_dissat, ev.channel.value
        )
        cu.prune_pending(cust, ms, self._ttl_ms)
        annotation = {
            "predicted_csat": predicted,
            "p_dissatisfied": p_dissat,
            "reason_codes": reasons,
            "model_version": self.version,
        }
        out.annotate(ev.event_id, "satisfaction", annotation)
        return predicted, p_dissat

    def learn(self, fb: Feedback, record: RawRecord, cust: ServiceCustomer) -> str | None:
        """Join the answer of a survey to its scored interaction; returns its channel (None:
        none waits). The monitor compares, and the example waits for :meth:`publish` (the
        learning stream); the CSAT drop is judged by the channel's owner
        (:mod:`~finpulse.streams.stages.service.csat_drop`).

        >>> from collections import Counter
        >>> from tests.factories import encode, feedback
        >>> sat = Satisfaction(Settings(), None, Counter())
        >>> fb = Feedback.model_validate_json(encode(feedback(ref_event_id="i-9", value=4)))
        >>> raw = RawRecord("finpulse.feedback", 0, 7, b"")
        >>> sat.learn(fb, raw, ServiceCustomer()), sat.counts
        (None, Counter({'service.csat_unmatched': 1}))
        """
        if fb.value is None:
            return None  # no answer (the stage only passes surveys with one)
        entry = cust.awaiting_survey.pop(fb.ref_event_id, None)
        if entry is None:
            self.counts["service.csat_unmatched"] += 1
            return None
        channel = entry.channel_name()
        y = float(fb.value)
        self.monitor.update(entry.predicted_csat, entry.p_dissatisfied, y)
        self._joined.append(
            Example(
                record.partition, record.offset, fb.ref_event_id, y, entry.inputs(), entry.scored_ms
            )
        )
        cust.csat_sum += y
        cust.csat_count += 1
        cust.last_csat = int(y)
        return channel

    def publish(self, last_ms: int, out: BatchOutput) -> None:
        """After a batch with surveys: queue the model metrics at ``last_ms`` and the
        batch's examples as one learning-stream record.

        >>> from collections import Counter
        >>> sat, out = Satisfaction(Settings(), None, Counter()), BatchOutput()
        >>> sat.monitor.update(4.0, 0.1, 5.0)
        >>> sat.publish(0, out)
        >>> [(r[3], r[4]) for r in out.rows[MODEL_METRICS_TABLE]][:2]
        [('mae', 1.0), ('mae_baseline', 1.5)]
        """
        rows = self.monitor.rows(from_ms(last_ms), self.version)
        # metric_id: deterministic per (model, metric, time, n), as the risk metrics
        out.add_rows(
            MODEL_METRICS_TABLE,
            [(no_card_runs(f"{r[1]}:{r[2]}:{last_ms}:{r[4]}"), *r) for r in rows],
        )
        if self._joined:
            first = self._joined[0]
            key = f"{first.source_partition}/{first.source_offset}".encode()
            value = encode_batch(ExampleBatch(self._joined))
            out.messages.append(Outgoing(SATISFACTION_EXAMPLES, key, value))
            self._joined = []

    def learn_examples(self, offset: int, value: bytes | None, out: BatchOutput) -> None:
        """Learn the surveys of the learning-stream record at ``offset`` not learned yet, in
        order; an invalid record is logged, counted and passed over.

        >>> from collections import Counter
        >>> sat = Satisfaction(Settings(), None, Counter())
        >>> record = encode_batch(ExampleBatch([Example(0, 3, "i-1", 2.0, {"wait_log": 1.0})]))
        >>> sat.learn_examples(0, record, BatchOutput())
        >>> sat.learn_examples(1, record, BatchOutput())  # a duplicate: skipped
        >>> sat.model.n_learned, sat.position.next_offset, sat.counts["service.csat_duplicate"]
        (1, 2, 1)
        """
        # named inputs: batches name no schema
        fresh, duplicates, invalid, _ = self.position.read(SATISFACTION_EXAMPLES, offset, value)
        self.counts["service.csat_duplicate"] += duplicates
        self.counts["service.examples_invalid"] += invalid
        errors = []
        for e in fresh:
            x = cast(dict[str, float], e.inputs)
            errors.append(abs(e.label - self.model.predict_one(x)) / 4.0)  # 0-1, before it learns
            self.model.learn_one(x, e.label)
        partitions = self.settings.topic_partitions
        for d in self.error_drift.observe(offset, errors, [e.ts_ms for e in fresh]):
            self.counts["service.satisfaction_drift"] += 1
            out.messages.append(detection_message(d, self.version, partitions))
        self.position.advance(offset, fresh)
        self._maybe_checkpoint(len(fresh), out)

    def restore(self) -> None:
        """Load the latest checkpoint from the store, once (blocking I/O: the worker calls
        this off the event loop before its first batch).

        >>> from collections import Counter
        >>> from finpulse.sinks.checkpoints import MemoryCheckpoints
        >>> store = MemoryCheckpoints()
        >>> sat = Satisfaction(Settings(), None, Counter(), store)
        >>> sat.model.learn_one({"wait_log": 1.0}, 2.0)
        >>> store.save_row(checkpoint_row(MODEL_NAME, "v", 1, sat.state()))
        >>> fresh = Satisfaction(Settings(), None, Counter(), store)
        >>> fresh.restore(); fresh.model.n_learned
        1
        """
        if self._restored:
            return
        assert self.checkpoints is not None
        saved = self.checkpoints.load_latest(MODEL_NAME)
        if saved:
            self.model, self.monitor = saved["model"], saved["monitor"]
            # a checkpoint from before the learning stream: the stream is all new to it
            self.position = saved.get("position") or LearnedPosition()
            # one from before the error's detector: a fresh one from its position
            self.error_drift = saved.get("error_drift") or self.error_drift
            log.info("restored %s (%d surveys) at %r", self.version, self.model.n_learned,
                     self.position)  # fmt: skip
        self._restored = True

    def state(self) -> dict[str, Any]:
        """What a checkpoint holds: the model, its monitor, its learned position and the
        error's drift detector fed up to that position."""
        return {
            "model": self.model,
            "monitor": self.monitor,
            "position": self.position,
            "error_drift": self.error_drift,
        }

    def _maybe_checkpoint(self, learned: int, out: BatchOutput) -> None:
        # a row of the batch's output: stored by the committer with the batch it follows
        every = self.settings.satisfaction_checkpoint_every
        if self.checkpoints is None or not every or not self._restored:
            return
        n = self.model.n_learned
        if n // every > (n - learned) // every:
            position = self.position.next_offset
            row = checkpoint_row(MODEL_NAME, self.version, n, self.state(), position=position)
            out.add_rows(MODEL_CHECKPOINTS_TABLE, [row])
            log.info("checkpointed %s", self.version)
