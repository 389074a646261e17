"""Customer status: the lifecycle and health row of each customer a batch touched.

At the end of a batch every touched customer already known (its ``customer_type`` set) gets
a ``customer_status`` row when something the customer view shows changed, or a new day began
(the record's ``status_signature``), with a rising version (``status_version``); a change of
lifecycle stage (``lifecycle_stage``) also evaluates the ``on: customer`` rules. The record
itself and the stage, health and risk arithmetic are in
:mod:`finpulse.streams.stages.service.customers`.

>>> from finpulse.config.policy import load_policy
>>> from finpulse.streams.core.state import MemoryState
>>> from finpulse.streams.stages.rules import RuleEngine
>>> status = CustomerStatus(RuleEngine(load_policy()), MemoryState("risk"))
>>> cust = ServiceCustomer()
>>> cu.note_activity(cust, 0, "individual", "retail")
>>> out = BatchOutput()
>>> status.write("c-1", cust, RawRecord("finpulse.transactions", 3, 0, b"", None, None), 0, out)
>>> [(r[0], r[4], r[-4], r[-3], r[-2]) for r in out.rows[CUSTOMER_STATUS_TABLE]]
[('c-1', 'new', 90.0, 1, 3)]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from finpulse.models.alerts import AlertCandidate
from finpulse.sinks.tables import CUSTOMER_STATUS_TABLE
from finpulse.streams.core.batch import BatchOutput, KeyedState
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.stages.rules import RuleEngine
from finpulse.streams.stages.service import customers as cu
from finpulse.streams.stages.service.cache import BatchCache
from finpulse.streams.stages.service.records import RecentRiskAlerts, RiskAlert, ServiceCustomer
from finpulse.streams.stages.service.windows import from_ms

log = logging.getLogger(__name__)

_FRESH = ServiceCustomer()  # a record that holds nothing


@dataclass(frozen=True)
class CustomerView:
    """What the customer view shows of one customer at event time ``ms``."""

    ms: int
    stage: str
    last_events: int
    prev_events: int
    contacts_24h: int
    dissatisfaction: float
    risk: float
    health: float
    last_risk: RiskAlert | None  # the latest risk alert

    @classmethod
    def of(cls, cust: ServiceCustomer, risks: RecentRiskAlerts | None, ms: int) -> CustomerView:
        """The view of a customer record and its risk alerts.

        >>> c = ServiceCustomer()
        >>> cu.note_activity(c, 0, "individual", "retail")
        >>> v = CustomerView.of(c, RecentRiskAlerts([RiskAlert(0, "card_testing", "red", None)]), 0)
        >>> v.stage, v.risk, v.health, v.last_risk.rule_id
        ('new', 90.0, 9.0, 'card_testing')
        """
        alerts = risks.alerts if risks else []
        counts = cu.activity(cust, ms)
        dissat = cu.dissatisfaction(cust)
        risk = cu.risk_score(alerts, ms)
        return cls(
            ms=ms,
            stage=cu.lifecycle(cust, ms, counts),
            last_events=counts[0],
            prev_events=counts[1],
            contacts_24h=cu.contacts_24h(cust, ms),
            dissatisfaction=dissat,
            risk=risk,
            health=cu.health(risk, dissat),
            last_risk=alerts[-1] if alerts else None,
        )

    def signature(
        self, cust: ServiceCustomer
    ) -> tuple[str, int, int | None, int, int, int | None, int]:
        """What must change (or a new day begin) for a new row; stored as the record's
        ``status_signature``.

        >>> c = ServiceCustomer()
        >>> cu.note_activity(c, 0, "individual", "retail")
        >>> CustomerView.of(c, None, 0).signature(c)
        ('new', 0, None, 0, 90, None, 0)
        """
        return (
            self.stage,
            len(cust.open_complaints),
            cust.last_csat,
            self.contacts_24h,
            round(self.health),
            self.last_risk.ms if self.last_risk else None,
            self.ms // cu.DAY_MS,
        )

    def row(self, cid: str, cust: ServiceCustomer, version: int, partition: int) -> tuple[Any, ...]:
        """The ``customer_status`` row (version key ``{cid}|v{version}``).

        >>> c = ServiceCustomer()
        >>> cu.note_activity(c, 0, "individual", "retail")
        >>> CustomerView.of(c, None, 0).row("c-1", c, 4, 1)[-3:]
        (4, 1, 'c-1|v4')
        """
        last_risk = self.last_risk
        return (
            cid,
            from_ms(self.ms),
            cust.customer_type,
            cust.segment,
            self.stage,
            from_ms(cust.first_seen_ms if cust.first_seen_ms is not None else self.ms),
            from_ms(cust.last_seen_ms if cust.last_seen_ms is not None else self.ms),
            self.last_events,
            self.prev_events,
            self.contacts_24h,
            len(cust.open_complaints),
            cust.last_csat,
            round(self.dissatisfaction, 4),
            round(self.risk, 3),
            last_risk.rule_id if last_risk else None,
            from_ms(last_risk.ms) if last_risk else None,
            self.health,
            version,
            partition,
            f"{cid}|v{version}",
        )


class CustomerStatus:
    """Writes the status rows and lifecycle candidates of the customers a batch touched."""

    def __init__(self, engine: RuleEngine, risks: KeyedState) -> None:
        self.engine = engine
        self.risks = risks

    def publish(
        self, customers: BatchCache, touched: dict[str, tuple[RawRecord, int]], out: BatchOutput
    ) -> None:
        """Write the status of each touched customer (``touched``: cid -> (record, ms)).

        A customer not seen yet (only an early complaint close kept) gets no row; its
        record is still written back when it holds something.

        >>> from finpulse.streams.core.state import MemoryState
        >>> from finpulse.streams.stages.service.records import EarlyClose
        >>> custs = BatchCache(MemoryState("c"))
        >>> cust = custs.get("c-2", ServiceCustomer, partition=0)
        >>> cust.early_closes["i-1"] = EarlyClose(0, "f-1")
        >>> rec = RawRecord("finpulse.feedback", 0, 0, b"", None, None)
        >>> CustomerStatus(None, MemoryState("r")).publish(custs, {"c-2": (rec, 0)}, BatchOutput())
        >>> custs.flush(), custs.state.get("c-2").early_closes
        (1, {'i-1': EarlyClose(closed_ms=0, event_id='f-1')})
        """
        for cid, (record, ms) in touched.items():
            cust = customers.get(cid, ServiceCustomer, partition=record.partition)
            if cust.customer_type is None:  # not seen yet: only an early complaint close
                if cust != _FRESH:
                    customers.touch(cid, record)
                continue
            self.write(cid, cust, record, ms, out)
            customers.touch(cid, record)

    def write(
        self, cid: str, cust: ServiceCustomer, record: RawRecord, ms: int, out: BatchOutput
    ) -> None:
        """Queue the customer's row if its view changed; a new stage raises the rules.

        Example: the module doc.
        """
        view = CustomerView.of(cust, self.risks.get(cid, partition=record.partition), ms)
        # Write a row only when something the customer view shows changed (or a new day
        # began), not for every transaction.
        signature = view.signature(cust)
        if signature == cust.status_signature:
            return
        cust.status_signature = signature
        version = cust.status_version + 1
        cust.status_version = version
        out.add_rows(CUSTOMER_STATUS_TABLE, [view.row(cid, cust, version, record.partition)])
        if view.stage != cust.lifecycle_stage:
            cust.lifecycle_stage = view.stage
            out.candidates.extend(self._lifecycle(cid, cust, view, version))

    def _lifecycle(
        self, cid: str, cust: ServiceCustomer, view: CustomerView, version: int
    ) -> list[AlertCandidate]:
        features = {
            "lifecycle": view.stage,
            "health_score": view.health,
            "risk_score": view.risk,
            "dissatisfaction": view.dissatisfaction,
            "open_complaints": len(cust.open_complaints),
        }
        return self.engine.evaluate(
            "customer",
            features,
            subject_id=cid,
            ts=from_ms(view.ms),
            source_event_id=f"lifecycle|{cid}|{version}",
            customer_id=cid,
            segment=cust.segment,
        )
