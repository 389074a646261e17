"""The risk stage: features → risk score → ``risk_scores`` rows, labels → learning.

For each transaction: per-customer features (:func:`finpulse.models.features.extract`), the
combined risk assessment (:class:`finpulse.models.risk.RiskModel`), annotations ``"features"``
and ``"risk"`` for later stages, a ``risk_scores`` row, and the scored inputs kept
*pending* in the customer's state record until a label arrives or the TTL ends. For
each ``fraud_confirmed`` / ``fraud_cleared`` feedback (keyed by customer, so on the
same partition as the transaction): the pending inputs are looked up by
``ref_event_id``, online metrics are updated (the label against the supervised part as
it is), the ``risk_scores`` row is re-written with its label, and the
labelled example goes to the model's learning stream (``finpulse.learning.risk``,
:mod:`finpulse.models.learning`) as a message of the batch's output.

**Learning.** Every worker reads the whole learning stream and its supervised part learns
each record's examples with one ``learn_many`` (:meth:`RiskStage.learn`), so all workers
learn the same examples in the same order and hold the same supervised part, whichever
partitions they own. A duplicate example (a batch re-run after a crash) is skipped by its
source position. The anomaly part learns from the transactions a worker scores: its input
statistics are the same on every partition.

**Drift of the supervised error** is detected there too: before a record is learned, its
examples' errors ``|label - P(fraud)|`` feed an ADWIN (:mod:`finpulse.models.stream_drift`),
the same in every worker; each detection goes to ``finpulse.model_health``, whose owner
raises it once (:mod:`finpulse.streams.stages.model_health`). The inputs' drift (amount,
velocity) is judged by that owner too, on the minute sums each partition sends
(:mod:`finpulse.streams.stages.input_drift`, state ``risk_partitions``).

State: ONE keyed record per customer (``risk_customers``: a :class:`RiskCustomer`, its
feature state, its pending scored transactions and its large-value day ledger), written once
per customer per batch. The large-value features (:mod:`finpulse.models.large_value`) are
added to the features. The models live in the worker and are checkpointed as
``model_checkpoints`` rows with the learning-stream position they include; the first
batch restores the latest and the worker replays the stream after its position.

>>> from finpulse.config.settings import Settings
>>> from finpulse.streams.worker.pipeline import Pipeline
>>> p = Pipeline(Settings(restore_model_checkpoints=False), stages=risk_stages)
>>> [s.name for s in p.stages]
['risk']
>>> p.stages[0].learning_topic
'finpulse.learning.risk'
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, cast

import msgspec
import numpy as np

from finpulse.config.settings import Settings
from finpulse.models.alerts import AlertCandidate
from finpulse.models.evaluation import OnlineEvaluator
from finpulse.models.events import Feedback, FeedbackKind, Transaction
from finpulse.models.features import FeatureConfig, FeatureState, extract_into
from finpulse.models.ids import no_card_runs
from finpulse.models.large_value import LargeValueConfig, day_features, new_ledger
from finpulse.models.learning import (
    Example,
    ExampleBatch,
    LearnedPosition,
    digest,
    encode_batch,
    schema_id,
)
from finpulse.models.online import RiverHalfSpaceTrees
from finpulse.models.packing import pack_rows, unpack_vector
from finpulse.models.risk import (
    MODEL_NAME,
    SUPERVISED_NAMES,
    RiskAssessment,
    RiskModel,
    features_matrix,
)
from finpulse.models.stream_drift import ErrorDrift
from finpulse.sinks.checkpoints import CheckpointStore, checkpoint_row
from finpulse.sinks.tables import MODEL_CHECKPOINTS_TABLE, MODEL_METRICS_TABLE, RISK_SCORES_TABLE
from finpulse.streams.core.batch import KeyedState, Outgoing
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.state import MemoryState
from finpulse.streams.core.topics import RISK_EXAMPLES
from finpulse.streams.stages import input_drift
from finpulse.streams.stages import risk_pending as pending_entry
from finpulse.streams.stages.model_health import detection_message
from finpulse.streams.stages.risk_legacy import pending_entries as legacy_pending_entries
from finpulse.streams.stages.risk_pending import PendingScore

if TYPE_CHECKING:
    from finpulse.streams.core.batch import BatchOutput, StateFactory, Valid

log = logging.getLogger(__name__)

STATE_NAME = "risk_customers"
SCORE_MODEL = "risk_score"  # the policy's model-threshold entry for the combined score
LABELS = {FeedbackKind.FRAUD_CONFIRMED: 1, FeedbackKind.FRAUD_CLEARED: 0}
PACKING = "e"  # the examples' inputs: float16 rows of SUPERVISED_NAMES (models.packing)
EXAMPLE_SCHEMA = schema_id((PACKING, *SUPERVISED_NAMES))
# Example batches written before they named a schema packed these inputs: they are learned
# while this release's inputs are still the same (a release that changes them skips them).
UNVERSIONED_SCHEMA = "4addb989ab25"
LEARNED_SCHEMAS = frozenset(
    {EXAMPLE_SCHEMA} | ({""} if EXAMPLE_SCHEMA == UNVERSIONED_SCHEMA else set())
)

# A function that turns one scored transaction into alert candidates (rules + score alert).
CandidateFn = Callable[[Transaction, dict[str, Any], RiskAssessment], list[AlertCandidate]]


class RiskCustomer(msgspec.Struct, array_like=True):
    """A customer's risk state: features and the scored transactions awaiting a label."""

    features: FeatureState = msgspec.field(default_factory=FeatureState)
    pending: list[PendingScore] = msgspec.field(default_factory=list)
    # the large-value day ledger (finpulse.models.large_value), None until it holds something
    large_value: dict[str, Any] | None = None

    @classmethod
    def from_legacy(cls, old: dict[str, Any]) -> RiskCustomer:
        """The record of the previous release (a JSON object), feature state and pending
        entries migrated (docs/delivery-guarantees.md)."""
        return cls(
            features=FeatureState.from_legacy(old.get("f") or {}),
            pending=legacy_pending_entries(old.get("p") or []),
            large_value=old.get("lv"),
        )


class RiskModels:
    """Everything the stage learns (River estimators inside), pickled as one checkpoint.

    A checkpoint is ``{"format": CHECKPOINT_FORMAT, "models": RiskModels}``; ``position``
    is how far the models learned the learning stream, ``error_drift`` the supervised
    error's detector fed on that stream up to the same position. A format-3 checkpoint
    (before that detector, with the per-worker detectors of the time) is migrated with a
    fresh detector from its position, its per-worker detectors dropped; its position's
    highest source offset learned per partition becomes the position's floor
    (:class:`~finpulse.models.learning.LearnedPosition`). A format-2 checkpoint (before the
    learning stream) is migrated too: its labels were learned before the stream existed, so
    the stream is learned from its start. One of another format (a release whose models
    have since changed, e.g. the hand-written learners before River, pickled bare) is
    ignored with a log line: the models start fresh.
    """

    CHECKPOINT_FORMAT: ClassVar[int] = 4
    MIGRATED_FORMATS: ClassVar[frozenset[int]] = frozenset({2, 3})

    def __init__(self, settings: Settings) -> None:
        anomaly = None
        if settings.risk_anomaly_model == "hst":
            anomaly = RiverHalfSpaceTrees(seed=7)
        self.model = RiskModel(anomaly=anomaly)
        self.evaluator = OnlineEvaluator()
        self.error_drift = ErrorDrift(MODEL_NAME)  # on the learning stream
        self.labels = 0  # labels learned (from the learning stream)
        self.scored = 0
        self.position = LearnedPosition()

    def checkpoint(self) -> dict[str, Any]:
        """The object a checkpoint row stores (see class doc)."""
        return {"format": self.CHECKPOINT_FORMAT, "models": self}

    @classmethod
    def from_checkpoint(cls, blob: Any) -> RiskModels | None:
        """The models of a checkpoint object, or None (logged) for none or another format."""
        if blob is None:
            return None
        fmt = blob.get("format") if isinstance(blob, dict) else None
        models = blob.get("models") if isinstance(blob, dict) else None
        if fmt in cls.MIGRATED_FORMATS and isinstance(models, cls):
            models.error_drift = ErrorDrift(MODEL_NAME)
            vars(models).pop("drift", None)  # the per-worker detectors (now pooled)
            if fmt == 2:
                log.info("migrating a risk checkpoint of format 2: the learning stream is "
                         "learned from its start")  # fmt: skip
                models.position = LearnedPosition()
                models.model.n_joined = list(models.model.supervised.n_seen)
            else:
                log.info("migrating a risk checkpoint of format %s: the supervised error's "
                         "drift detector starts at %r", fmt, models.position)  # fmt: skip
            return models
        if fmt != cls.CHECKPOINT_FORMAT or not isinstance(models, cls):
            log.warning(
                "ignoring a risk checkpoint of format %s (this release reads format %d): "
                "the risk models start fresh",
                fmt if fmt is not None else 1,
                cls.CHECKPOINT_FORMAT,
            )
            return None
        return models


class RiskStage:
    """Scores transactions and learns from fraud labels (see module doc)."""

    name: ClassVar[str] = "risk"
    kinds: ClassVar[frozenset[str]] = frozenset({"transaction", "feedback"})
    state_names: ClassVar[tuple[str, ...]] = (STATE_NAME, input_drift.STATE_NAME)
    learning_topic: ClassVar[str] = RISK_EXAMPLES

    def __init__(
        self,
        settings: Settings,
        state: KeyedState,
        config: FeatureConfig | None = None,
        checkpoints: CheckpointStore | None = None,
        candidates: CandidateFn | None = None,
        large_value: LargeValueConfig | None = None,
        inputs: KeyedState | None = None,
    ) -> None:
        self.settings = settings
        self.state = state
        # per partition: the minute sums of the inputs, for the model owner's drift detectors
        self.inputs = inputs if inputs is not None else MemoryState(input_drift.STATE_NAME)
        self.config = config or FeatureConfig()
        self.large_value = large_value
        self.checkpoints = checkpoints
        self.candidates = candidates
        self.m = RiskModels(settings)
        self._restored = checkpoints is None  # never overwrite a checkpoint not yet read
        self._scored_at_checkpoint = 0
        self.seconds = 0.0  # time spent in process(): the scoring path
        self.counts = {
            "scored": 0,
            "labels": 0,
            "labels_unmatched": 0,
            "pending_expired": 0,
            "examples_learned": 0,
            "examples_duplicate": 0,
            "examples_invalid": 0,
            "examples_other_schema": 0,
            "drift_detections": 0,  # of the supervised error, on the learning stream
        }

    # ------------------------------------------------------------------------------ restore
    def restore(self) -> None:
        """Load the latest risk checkpoint (blocking I/O: the worker calls this off the event
        loop before its first batch; it raises while the store cannot be read)."""
        if self._restored:
            return
        assert self.checkpoints is not None
        restored = RiskModels.from_checkpoint(self.checkpoints.load_latest(MODEL_NAME))
        if restored is not None:
            self.m = restored
            self._scored_at_checkpoint = restored.scored
            log.info("risk models restored at %r", restored.position)
        self._restored = True

    # ----------------------------------------------------------------------------- learning
    def learning_offset(self) -> int:
        """The next learning-stream offset the models learn (where a feed starts reading)."""
        return self.m.position.next_offset

    def move_learning_to(self, offset: int) -> None:
        """Read the learning stream from ``offset`` on (see LearningStage)."""
        self.m.position.move_to(offset)

    def learned_digest(self) -> str:
        """The digest of what the learning stream taught: the supervised part."""
        return digest(self.m.model.supervised.learned_state())

    def learn(self, offset: int, value: bytes | None, out: BatchOutput) -> None:
        """Learn the examples of the learning-stream record at ``offset`` not learned yet
        (one ``learn_many``), after feeding their errors to the drift detector (its
        detections go out as messages); an invalid record is logged, counted and passed
        over."""
        m = self.m
        fresh, duplicates, invalid, foreign = m.position.read(
            RISK_EXAMPLES, offset, value, LEARNED_SCHEMAS
        )
        self.counts["examples_duplicate"] += duplicates
        self.counts["examples_invalid"] += invalid
        self.counts["examples_other_schema"] += foreign
        if fresh:
            XS = np.array([unpack_vector(cast(bytes, e.inputs), 0, PACKING)[0] for e in fresh])
            y = [e.label for e in fresh]
            errors = np.abs(np.asarray(y) - m.model.predict_labelled(XS)).tolist()
            version = m.model.model_version
            partitions = self.settings.topic_partitions
            for d in m.error_drift.observe(offset, errors, [e.ts_ms for e in fresh]):
                self.counts["drift_detections"] += 1
                out.messages.append(detection_message(d, version, partitions))
            m.model.learn_labels(XS, y)
            m.labels += len(fresh)
            self.counts["examples_learned"] += len(fresh)
        m.position.advance(offset, fresh)
        self._maybe_checkpoint(out, learned=len(fresh))

    # ------------------------------------------------------------------------------ process
    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None:
        started = time.perf_counter()
        records: dict[str, RiskCustomer] = {}
        last_record: dict[str, RawRecord] = {}
        if kind == "transaction":
            scored = []
            sources: list[RawRecord] = []
            cfg = self.config
            for event, raw in batch:
                txn = cast(Transaction, event)
                cid = txn.customer_id
                rec = self._record(records, cid, raw.partition)
                features = extract_into(txn, rec.features, cfg)
                if self.large_value is not None:
                    features.update(self._large_value(txn, rec, features["cross_border"]))
                scored.append((txn, features, rec))
                sources.append(raw)
                last_record[cid] = raw
            if scored:
                self._score_batch(scored, sources, out)
        else:
            labelled: list[Any] = []
            for event, raw in batch:
                fb = cast(Feedback, event)
                if fb.kind not in LABELS:
                    continue
                cid = fb.customer_id
                rec = self._record(records, cid, raw.partition)
                if self._label(fb, raw, rec, labelled):
                    last_record[cid] = raw
            if labelled:
                self._evaluate(labelled, out)
                out.messages.append(_examples_message(labelled))
                # at the end of every label batch: a verdict shows in model_metrics at once
                self._write_metrics(labelled[-1][0].ts, out)
        for cid, raw in last_record.items():
            self.state.put(cid, records[cid], raw)
        self._maybe_checkpoint(out)
        self.seconds += time.perf_counter() - started

    def _large_value(
        self, txn: Transaction, rec: RiskCustomer, cross_border: bool
    ) -> dict[str, Any]:
        """The large-value features; the ledger is kept only once it holds something."""
        ledger = rec.large_value or new_ledger()
        assert self.large_value is not None
        features = day_features(txn, ledger, self.large_value, cross_border)
        if ledger["d"] is not None:
            rec.large_value = ledger
        return features

    def _record(self, records: dict[str, RiskCustomer], cid: str, partition: int) -> RiskCustomer:
        """The batch's record of ``cid``, read once per batch. Re-delivered events never get
        here: the pipeline's one guard skips them (finpulse.streams.worker.pipeline)."""
        rec = records.get(cid)
        if rec is None:
            # updated in place: a failed batch is re-run after the worker restarts from the
            # changelog, which never saw the partial update
            rec = records[cid] = self.state.get(cid, partition=partition) or RiskCustomer()
        return rec

    def _score_batch(
        self,
        scored: list[tuple[Transaction, dict[str, Any], RiskCustomer]],
        sources: list[RawRecord],
        out: BatchOutput,
    ) -> None:
        """Score a batch with the model as of its start, then let the anomaly part learn it;
        count the drift inputs into their partitions' minutes."""
        m = self.m
        X = features_matrix([f for _, f, _ in scored])
        XA = m.model.anomaly_frame(X)  # one frame for the anomaly part's scoring and learning
        assessments, XS = m.model.assess_batch(X, XA)
        packed = pack_rows(XS, PACKING)
        amounts = X[:, 0].tolist()  # log amount, log hourly velocity: drift inputs
        velocity = X[:, 2].tolist()
        m.model.learn_many(X, XA)
        m.scored += len(scored)
        self.counts["scored"] += len(scored)
        parts: dict[int, input_drift.InputMinutes] = {}
        ttl_ms = int(self.settings.risk_pending_ttl_s * 1000)
        keep = self.settings.risk_pending_max
        score_rows = []
        annotations = out.annotations
        expired = 0
        for (txn, f, rec), raw, a, amount, vel, inputs in zip(
            scored, sources, assessments, amounts, velocity, packed, strict=True
        ):
            ts_s = txn.ts.timestamp()
            ts_ms = int(ts_s * 1000)
            ts = datetime.fromtimestamp(ts_ms / 1000, UTC)  # ms, as stored: the label row matches
            eid = txn.event_id
            part = parts.get(raw.partition)
            if part is None:
                part = parts[raw.partition] = self._input_minutes(raw.partition)
            input_drift.record_input(part, ts_ms, amount, vel)
            reasons = list(a.reason_codes)
            ann = annotations.get(eid)
            if ann is None:
                ann = annotations[eid] = {}
            ann["features"] = f
            ann["risk"] = {
                "score": a.score,
                "anomaly": a.anomaly,
                "supervised": a.supervised,
                "reason_codes": reasons,
                "model_version": a.model_version,
                "customer_id": txn.customer_id,
            }
            meta = [
                f["segment"],
                f["customer_type"],
                f["channel"],
                f["txn_type"],
                f["amount_cny"],
                f["txn_count_1h"],
                f["txn_count_24h"],
            ]
            score_rows.append(
                (
                    eid,
                    ts,
                    txn.customer_id,
                    *meta,
                    a.score,
                    a.anomaly,
                    a.supervised,
                    reasons,
                    a.model_version,
                    None,
                    0,
                )
            )
            if self.candidates is not None:
                out.candidates.extend(self.candidates(txn, f, a))
            pending = rec.pending
            pending_entry.append(
                pending,
                pending_entry.scored(
                    eid, ts_ms, inputs, a.score, a.anomaly, a.supervised, reasons, meta,
                    a.model_version,
                ),
            )  # fmt: skip
            expired += pending_entry.prune(pending, ts_ms - ttl_ms, keep)
        out.add_rows(RISK_SCORES_TABLE, score_rows)
        self.counts["pending_expired"] += expired
        self._close_inputs(parts, sources, out)

    def _input_minutes(self, partition: int) -> input_drift.InputMinutes:
        part = self.inputs.get(f"p{partition}", partition=partition)
        return input_drift.InputMinutes() if part is None else part

    def _close_inputs(
        self,
        parts: dict[int, input_drift.InputMinutes],
        sources: list[RawRecord],
        out: BatchOutput,
    ) -> None:
        """Send each partition's newly closed input minutes to the model's owner; keep the
        open ones (with the partition's last record of the batch)."""
        last = {raw.partition: raw for raw in sources}
        s = self.settings
        grace_ms = int(s.drift_grace_s * 1000)
        for partition, part in parts.items():
            message = input_drift.close_inputs(
                part, MODEL_NAME, partition, grace_ms=grace_ms, partitions=s.topic_partitions
            )
            if message is not None:
                out.messages.append(message)
            self.inputs.put(f"p{partition}", part, last[partition])

    def _label(self, fb: Feedback, raw: RawRecord, rec: RiskCustomer, labelled: list[Any]) -> bool:
        """Join one fraud label to its pending transaction; True if it matched one."""
        popped = pending_entry.pop(rec.pending, fb.ref_event_id)
        if popped is None:
            self.counts["labels_unmatched"] += 1
            return False
        labelled.append((fb, LABELS[fb.kind], *popped, raw))
        return True

    def _evaluate(self, labelled: list[Any], out: BatchOutput) -> None:
        """A batch's joined labels, each compared with the supervised part as it is
        (prequential: it learns them when they come back on the learning stream); every
        ``risk_scores`` row is re-written with its label."""
        m = self.m
        XS = np.array([entry.inputs() for _, _, entry, _, _ in labelled], dtype=float)
        y = [label for _, label, _, _, _ in labelled]
        before = m.model.predict_labelled(XS).tolist()
        m.model.note_labels(y)
        rows = []
        for (fb, label, entry, version, _), p in zip(labelled, before, strict=True):
            self.counts["labels"] += 1
            m.evaluator.update(MODEL_NAME, entry.score, label)
            m.evaluator.update(f"{MODEL_NAME}.anomaly", 100.0 * entry.anomaly, label)
            m.evaluator.update(f"{MODEL_NAME}.supervised", 100.0 * p, label)
            ts = datetime.fromtimestamp(entry.ts_ms / 1000, UTC)
            meta = entry.meta()
            rows.append(
                (
                    entry.event_id, ts, fb.customer_id, *meta, entry.score, entry.anomaly,
                    entry.supervised, entry.reasons(), version, label, 1,
                )
            )  # fmt: skip
        out.add_rows(RISK_SCORES_TABLE, rows)

    def _write_metrics(self, ts: datetime, out: BatchOutput) -> None:
        out.add_rows(MODEL_METRICS_TABLE, _metric_rows(self.m, ts))

    # --------------------------------------------------------------------------- checkpoint
    def _maybe_checkpoint(self, out: BatchOutput, learned: int = 0) -> None:
        """Checkpoint when the labels learned pass a multiple of
        ``risk_checkpoint_every_labels`` (the same stream positions in every worker: any
        worker may be the one a new worker restores from), or after
        ``risk_checkpoint_every_events`` transactions scored here."""
        if not self._restored:
            return  # never overwrite a checkpoint we could not read yet
        m = self.m
        s = self.settings
        every = s.risk_checkpoint_every_labels
        due_labels = every and learned and m.labels // every > (m.labels - learned) // every
        due_events = s.risk_checkpoint_every_events and (
            m.scored - self._scored_at_checkpoint >= s.risk_checkpoint_every_events
        )
        if not (due_labels or due_events):
            return
        version = m.model.mark_checkpoint()
        self._scored_at_checkpoint = m.scored
        position = m.position.next_offset
        row = checkpoint_row(MODEL_NAME, version, m.labels, m.checkpoint(), position=position)
        out.add_rows(MODEL_CHECKPOINTS_TABLE, [row])
        log.info(
            "checkpoint %s (%d labels learned to %s offset %d, %d scored)",
            *(version, m.labels, RISK_EXAMPLES, position, m.scored),
        )


def _examples_message(labelled: list[Any]) -> Outgoing:
    """The learning-stream record of a batch's joined labels (keyed by the first label's
    source position, for tracing)."""
    examples = [
        Example(
            raw.partition, raw.offset, entry.event_id, float(label), entry.packed_inputs,
            entry.ts_ms, entry.score,
        )
        for _, label, entry, _, raw in labelled
    ]  # fmt: skip
    first = labelled[0][-1]
    key = f"{first.topic}/{first.partition}/{first.offset}".encode()
    return Outgoing(RISK_EXAMPLES, key, encode_batch(ExampleBatch(examples, EXAMPLE_SCHEMA)))


def _metric_rows(m: RiskModels, ts: datetime) -> list[tuple[Any, ...]]:
    rows = []
    millis = int(ts.timestamp() * 1000)
    for ts_, model, metric, value, n, version in m.evaluator.rows(ts, m.model.model_version):
        if math.isfinite(value):
            metric_id = no_card_runs(f"{model}:{metric}:{millis}:{n}")
            rows.append((metric_id, ts_, model, metric, value, n, version))
    return rows


def risk_candidates(engine: Any) -> CandidateFn:
    """Model-score alert candidates (policy ``models.risk_score`` thresholds) of one scored
    transaction. The policy's rules on the same features run in the RuleStage after this
    stage (it reads the ``"features"`` and ``"risk"`` annotations)."""

    alerting = engine.policy.models.get(SCORE_MODEL)
    lowest = min(alerting.thresholds.values()) if alerting is not None else math.inf

    def candidates(
        txn: Transaction, features: dict[str, Any], a: RiskAssessment
    ) -> list[AlertCandidate]:
        if a.score < lowest:  # the common case, without building keyword arguments
            return []
        c = engine.score_alert(
            SCORE_MODEL,
            a.score,
            subject_id=txn.customer_id,
            ts=txn.ts,
            source_event_id=txn.event_id,
            customer_id=txn.customer_id,
            segment=features["segment"],
            channel=features["channel"],
            reason_codes=list(a.reason_codes),
            model_version=a.model_version,
        )
        return [] if c is None else [c]

    return candidates


def risk_stages(
    settings: Settings,
    state: StateFactory,
    engine: Any = None,
    store: CheckpointStore | None = None,
) -> Sequence[RiskStage]:
    """The risk stage (see :func:`finpulse.streams.worker.app.default_stages`); with a
    :class:`~finpulse.streams.stages.rules.RuleEngine` it also emits the model-score alert
    candidates, with a checkpoint ``store`` it restores its models from it."""
    fn = risk_candidates(engine) if engine is not None else None
    config = FeatureConfig.from_parameters(engine.policy.parameters) if engine else None
    large_value = engine.large_value if engine else None
    customers = state(STATE_NAME, RiskCustomer)
    stage = RiskStage(
        settings,
        customers,
        config,
        checkpoints=store,
        candidates=fn,
        large_value=large_value,
        inputs=state(input_drift.STATE_NAME, input_drift.InputMinutes),
    )
    return (stage,)
