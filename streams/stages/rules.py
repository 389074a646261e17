"""Evaluate the policy's rules and model thresholds into alert candidates.

A large-value report rule (``report: large_value``) gets the report's evidence (criterion,
direction, currency class, CST day, total, transaction ids), a fold key that keeps its
alerts apart per direction and currency class, the CST day as its window, and a deadline
on China's working-day calendar (:mod:`finpulse.models.report_calendar`).

>>> from datetime import datetime, UTC
>>> from finpulse.config.policy import load_policy
>>> engine = RuleEngine(load_policy())
>>> ts = datetime(2026, 1, 9, 10, tzinfo=UTC)  # a Friday
>>> features = {"lv_currency_class": "rmb", "lv_day": 20462, "direction": "credit",
...     "lv_cash_day_rmb": 50000.0, "lv_cash_count": 2, "lv_cash_ids": "t-1 t-2",
...     "lv_cash_accounts": "acct:x"}
>>> [c] = engine.evaluate("transaction", features, subject_id="c-1", ts=ts)
>>> c.rule_id, c.fold_key, c.window_key, c.report_due, c.evidence["transaction_ids"]
('large_value.cash', 'credit|rmb', '2026-01-09', datetime.date(2026, 1, 16), 't-1 t-2')
>>> engine.evaluate("transaction", {**features, "lv_cash_day_rmb": 49999.99},
...                 subject_id="c-1", ts=ts)
[]
>>> engine.score_alert("risk_score", 91.0, subject_id="c-1", ts=ts).severity
<Severity.RED: 'red'>
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from finpulse.config.policy import Policy, Rule
from finpulse.models.alerts import AlertCandidate
from finpulse.models.base_features import base_features
from finpulse.models.large_value import CRITERIA, LargeValueConfig
from finpulse.models.report_calendar import WorkingDayCalendar
from finpulse.streams.core.batch import BatchOutput, Valid

LOCAL_TZ_OFFSET = timedelta(hours=8)  # reporting days are China Standard Time days
EPOCH = date(1970, 1, 1)


def _evidence(features: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        value = features.get(name)
        out[name] = (
            value if isinstance(value, int | float | str | bool) or value is None else str(value)
        )
    return out


class RuleEngine:
    """Turns features into :class:`AlertCandidate` objects according to the policy."""

    def __init__(self, policy: Policy, calendar: WorkingDayCalendar | None = None) -> None:
        self.policy = policy
        self.calendar = calendar or WorkingDayCalendar()
        watched = any(r.criterion is not None for r in policy.rules)
        self.large_value = LargeValueConfig.from_parameters(policy.parameters) if watched else None
        self._by_on = {
            on: policy.rules_on(on)
            for on in (
                "transaction",
                "interaction",
                "feedback",
                "channel_minute",
                "complaint",
                "customer",
                "model",
            )
        }
        self._predicates = {
            on: [(r, r.condition.compile()) for r in rules if r.condition is not None]
            for on, rules in self._by_on.items()
        }

    def matching(self, on: str, features: Mapping[str, Any]) -> list[Rule]:
        """The enabled rules on ``on`` whose condition holds (compiled predicates)."""
        return [rule for rule, holds in self._predicates.get(on, ()) if holds(features)]

    def evaluate(
        self,
        on: str,
        features: Mapping[str, Any],
        *,
        subject_id: str,
        ts: datetime,
        subjects: Mapping[str, str] | None = None,
        source_event_id: str | None = None,
        customer_id: str | None = None,
        segment: str | None = None,
        channel: str | None = None,
        score: float | None = None,
        reason_codes: Sequence[str] = (),
        model_version: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[AlertCandidate]:
        """Candidates for every enabled rule on ``on`` whose condition holds."""
        fired = []
        for rule in self.matching(on, features):
            condition = rule.condition
            assert condition is not None
            evidence = _evidence(features, condition.features())
            evidence.update(
                {
                    f"threshold: {k}": v
                    for k, v in condition.thresholds().items()
                    if isinstance(v, int | float | str | bool)
                }
            )
            report: dict[str, Any] = {}
            if rule.report == "large_value":
                report = self._large_value_report(rule, features)
                evidence.update(report.pop("evidence"))
            fired.append(
                self._candidate(
                    rule,
                    subject_id=(subjects or {}).get(rule.subject, subject_id),
                    ts=ts,
                    evidence=evidence,
                    **report,
                    source_event_id=source_event_id,
                    customer_id=customer_id,
                    segment=segment,
                    channel=channel,
                    score=score,
                    reason_codes=reason_codes,
                    model_version=model_version,
                    context=context,
                )
            )
        return fired

    def _large_value_report(self, rule: Rule, features: Mapping[str, Any]) -> dict[str, Any]:
        """Evidence, fold key (direction, currency class), window (CST day) and report day
        of a large-value report rule that fired."""
        assert self.large_value is not None and rule.criterion is not None
        criterion = rule.criterion
        currency_class = features["lv_currency_class"]
        direction = features["direction"]
        day = EPOCH + timedelta(days=features["lv_day"])
        unit = "rmb" if currency_class == "rmb" else "usd"
        threshold = self.large_value.thresholds_cents[(criterion, currency_class)] / 100
        return {
            "evidence": {
                "criterion": criterion,
                "article": CRITERIA[criterion],
                "customer_type": features.get("customer_type"),
                "direction": direction,
                "currency_class": currency_class,
                "report_day": day.isoformat(),
                "total": features[f"lv_{criterion}_day_{unit}"],
                "threshold": threshold,
                "transactions": features[f"lv_{criterion}_count"],
                "transaction_ids": features[f"lv_{criterion}_ids"],
                "account_ids": features[f"lv_{criterion}_accounts"],
            },
            "fold_key": f"{direction}|{currency_class}",
            "window_key": day.isoformat(),
            "report_day": day,
        }

    def report_deadline(self, rule: Rule, day: date) -> tuple[date | None, str | None]:
        """The rule's report deadline for a transaction of CST ``day``, and its calendar."""
        if not rule.report_due_working_days:
            return None, None
        return self.calendar.add_working_days(day, rule.report_due_working_days)

    def score_alert(
        self, model: str, score: float, *, subject_id: str, ts: datetime, **kwargs: Any
    ) -> AlertCandidate | None:
        """A candidate when ``score`` reaches one of the model's severity thresholds."""
        alerting = self.policy.models.get(model)
        if alerting is None:
            return None
        severity = alerting.severity_for(score)
        if severity is None:
            return None
        rule = alerting.as_rule(model)
        evidence = {
            "score": round(score, 3),
            f"threshold: {severity.value}": alerting.thresholds[severity],
        }
        kwargs.setdefault("score", score)
        return self._candidate(
            rule, subject_id=subject_id, ts=ts, evidence=evidence, severity=severity, **kwargs
        )

    def _candidate(
        self,
        rule: Rule,
        *,
        subject_id: str,
        ts: datetime,
        evidence: dict[str, Any],
        severity: Any = None,
        context: Mapping[str, Any] | None = None,
        reason_codes: Sequence[str] = (),
        report_day: date | None = None,
        **kwargs: Any,
    ) -> AlertCandidate:
        due, calendar = self.report_deadline(rule, report_day or (ts + LOCAL_TZ_OFFSET).date())
        return AlertCandidate(
            rule_id=rule.id,
            domain=rule.domain,
            severity=severity or rule.severity,
            subject_type=rule.subject,
            subject_id=subject_id,
            ts=ts,
            evidence=evidence,
            report_due=due,
            report_calendar=calendar,
            context=dict(context or {}),
            reason_codes=list(reason_codes),
            **kwargs,
        )


class RuleStage:
    """Evaluates the policy's transaction and interaction rules on each event.

    Features are the event's own facts (:func:`base_features`) overlaid with what
    earlier stages annotated under ``"features"``; a model score annotated under
    ``"risk"`` (``{"score", "reason_codes", "model_version"}``) is attached.
    """

    name: ClassVar[str] = "rules"
    kinds: ClassVar[frozenset[str]] = frozenset({"transaction", "interaction"})
    state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, engine: RuleEngine) -> None:
        self.engine = engine

    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None:
        matching = self.engine.matching
        for event, _record in batch:
            ann = out.annotations.get(event.event_id, {})  # type: ignore[attr-defined]
            annotated = ann.get("features")
            if annotated and "channel" in annotated:  # the risk stage's are a superset
                features = annotated
            else:
                features = {**base_features(event), **(annotated or {})}
            if not matching(kind, features):
                continue  # the common case: nothing fires, build nothing
            risk = ann.get("risk") or {}
            out.candidates.extend(
                self.engine.evaluate(
                    kind,
                    features,
                    subject_id=event.customer_id,  # type: ignore[attr-defined]
                    subjects={
                        "account": getattr(event, "account_id", None) or "",
                        "channel": features.get("channel") or "",
                    },
                    ts=event.ts,  # type: ignore[attr-defined]
                    source_event_id=event.event_id,  # type: ignore[attr-defined]
                    customer_id=event.customer_id,  # type: ignore[attr-defined]
                    segment=features.get("segment"),
                    channel=features.get("channel"),
                    score=risk.get("score"),
                    reason_codes=risk.get("reason_codes", ()),
                    model_version=risk.get("model_version"),
                )
            )
