"""After the rule stage: remember risk alerts per customer and join both contexts on alerts.

On transaction batches, every candidate of a ``risk``-domain rule or model is recorded in the
customer's "last risk alerts" state (the last 24 h, partition-local, keyed by customer), which
the service stage reads for friction and for the satisfaction model's context. On every batch,
each candidate about a customer gets the other side's context: risk alerts the service context
(``service.contacts_24h``, ``service.open_complaints``, ``service.last_csat``,
``service.dissatisfaction``, ``service.lifecycle``), service alerts the risk context
(``risk.last_rule``, ``risk.last_severity``, ``risk.last_at``, ``risk.hours_since``,
``risk.score``).
"""

from __future__ import annotations

from typing import ClassVar

from finpulse.models.alerts import AlertCandidate
from finpulse.streams.core.batch import BatchOutput, KeyedState, Valid
from finpulse.streams.stages.service import customers as cu
from finpulse.streams.stages.service.cache import BatchCache
from finpulse.streams.stages.service.names import RISK_STATE
from finpulse.streams.stages.service.records import RecentRiskAlerts, RiskAlert
from finpulse.streams.stages.service.windows import from_ms, to_ms

RISK_DOMAINS = frozenset({"risk"})


class ServiceContextStage:
    """After the rules: remember risk alerts per customer, join both contexts on candidates."""

    name: ClassVar[str] = "service_context"
    kinds: ClassVar[frozenset[str]] = frozenset({"transaction", "interaction", "feedback"})
    state_names: ClassVar[tuple[str, ...]] = (RISK_STATE,)

    def __init__(self, customers: KeyedState, risks: KeyedState) -> None:
        self.customers = customers
        self.risks = risks

    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None:
        if not out.candidates:
            return
        records = {ev.event_id: rec for ev, rec in batch}  # type: ignore[attr-defined]
        fallback = batch[0][1]  # a candidate's source event is in its batch: not expected
        cache = BatchCache(self.risks)
        if kind == "transaction":
            for cand in out.candidates:
                if cand.domain not in RISK_DOMAINS or not cand.customer_id:
                    continue
                record = records.get(cand.source_event_id or "")
                if record is None:
                    continue
                entry = cache.get(cand.customer_id, RecentRiskAlerts, partition=record.partition)
                ms = to_ms(cand.ts)
                alerts = [a for a in entry.alerts if ms - a.ms <= cu.CONTACT_WINDOW_MS]
                alerts.append(RiskAlert(ms, cand.rule_id, cand.severity.value, cand.score))
                entry.alerts = alerts[-10:]
                cache.touch(cand.customer_id, record)
        enriched: list[AlertCandidate] = []
        for cand in out.candidates:
            if cand.customer_id:
                ms = to_ms(cand.ts)
                p = records.get(cand.source_event_id or "", fallback).partition
                extra = self._context(cand, cache.peek(cand.customer_id, partition=p), ms, p)
                if extra:
                    cand = cand.model_copy(update={"context": {**extra, **cand.context}})
            enriched.append(cand)
        out.candidates[:] = enriched
        cache.flush()

    def _context(
        self, cand: AlertCandidate, risks: RecentRiskAlerts | None, ms: int, partition: int
    ) -> dict[str, float | str | bool | None]:
        ctx: dict[str, float | str | bool | None] = {}
        cust = self.customers.get(cand.customer_id or "", partition=partition)
        if cand.domain != "service" and cust:
            ctx.update(
                {
                    "service.contacts_24h": cu.contacts_24h(cust, ms),
                    "service.open_complaints": len(cust.open_complaints),
                    "service.last_csat": cust.last_csat,
                    "service.dissatisfaction": round(cu.dissatisfaction(cust), 4),
                    "service.lifecycle": cust.lifecycle_stage,
                }
            )
        if cand.domain == "service":
            prior = [a for a in risks.alerts if a.ms <= ms] if risks else []
            if prior:
                last = prior[-1]
                ctx.update(
                    {
                        "risk.last_rule": last.rule_id,
                        "risk.last_severity": last.severity,
                        "risk.last_at": from_ms(last.ms).isoformat(),
                        "risk.hours_since": round((ms - last.ms) / 3.6e6, 3),
                        "risk.score": cu.risk_score(prior, ms),
                    }
                )
        return ctx
