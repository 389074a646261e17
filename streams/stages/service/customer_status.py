"""Customer status: the lifecycle and health row of each customer a batch touched.

At the end of a batch every touched customer already known (``ct`` in the record) gets a
``customer_status`` row when something the customer view shows changed, or a new day began
(``sig`` in the record), with a rising version (``v``); a change of lifecycle stage (``st``)
also evaluates the ``on: customer`` rules. The record itself and the stage, health and risk
arithmetic are in :mod:`finpulse.streams.stages.service.customers`.

>>> from finpulse.config.policy import load_policy
>>> from finpulse.streams.core.state import MemoryState
>>> from finpulse.streams.stages.rules import RuleEngine
>>> status = CustomerStatus(RuleEngine(load_policy()), MemoryState("risk"))
>>> cust = {}
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
from finpulse.streams.stages.service.windows import from_ms

log = logging.getLogger(__name__)


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
    last_risk: list[Any] | None  # [ms, rule_id, severity, score] of the latest risk alert

    @classmethod
    def of(cls, cust: dict[str, Any], risks: dict[str, Any] | None, ms: int) -> CustomerView:
        """The view of a customer record and its risk alerts.

        >>> c = {}
        >>> cu.note_activity(c, 0, "individual", "retail")
        >>> v = CustomerView.of(c, {"a": [[0, "card_testing", "red", None]]}, 0)
        >>> v.stage, v.risk, v.health, v.last_risk[1]
        ('new', 90.0, 9.0, 'card_testing')
        """
        counts = cu.activity(cust, ms)
        dissat = cu.dissatisfaction(cust)
        risk = cu.risk_score(risks, ms)
        return cls(
            ms=ms,
            stage=cu.lifecycle(cust, ms, counts),
            last_events=counts[0],
            prev_events=counts[1],
            contacts_24h=cu.contacts_24h(cust, ms),
            dissatisfaction=dissat,
            risk=risk,
            health=cu.health(risk, dissat),
            last_risk=risks["a"][-1] if risks and risks.get("a") else None,
        )

    def signature(self, cust: dict[str, Any]) -> list[Any]:
        """What must change (or a new day begin) for a new row; stored as ``sig``.

        >>> c = {}
        >>> cu.note_activity(c, 0, "individual", "retail")
        >>> CustomerView.of(c, None, 0).signature(c)
        ['new', 0, None, 0, 90, None, 0]
        """
        return [
            self.stage,
            len(cust.get("cm", {})),
            cust.get("lc"),
            self.contacts_24h,
            round(self.health),
            self.last_risk[0] if self.last_risk else None,
            self.ms // cu.DAY_MS,
        ]

    def row(self, cid: str, cust: dict[str, Any], version: int, partition: int) -> tuple[Any, ...]:
        """The ``customer_status`` row (version key ``{cid}|v{version}``).

        >>> c = {}
        >>> cu.note_activity(c, 0, "individual", "retail")
        >>> CustomerView.of(c, None, 0).row("c-1", c, 4, 1)[-3:]
        (4, 1, 'c-1|v4')
        """
        last_risk = self.last_risk
        return (
            cid,
            from_ms(self.ms),
            cust["ct"],
            cust["sg"],
            self.stage,
            from_ms(cust["f"]),
            from_ms(cust["l"]),
            self.last_events,
            self.prev_events,
            self.contacts_24h,
            len(cust.get("cm", {})),
            cust.get("lc"),
            round(self.dissatisfaction, 4),
            round(self.risk, 3),
            last_risk[1] if last_risk else None,
            from_ms(last_risk[0]) if last_risk else None,
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
        >>> custs = BatchCache(MemoryState("c"))
        >>> custs.get("c-2", dict)["cx"] = {"i-1": [0, "f-1"]}
        >>> rec = RawRecord("finpulse.feedback", 0, 0, b"", None, None)
        >>> CustomerStatus(None, MemoryState("r")).publish(custs, {"c-2": (rec, 0)}, BatchOutput())
        >>> custs.flush(), custs.state.get("c-2")
        (1, {'cx': {'i-1': [0, 'f-1']}})
        """
        for cid, (record, ms) in touched.items():
            cust = customers.get(cid, dict)
            if "ct" not in cust:  # not seen yet: only an early complaint close to keep
                if cust:
                    customers.touch(cid, record)
                continue
            self.write(cid, cust, record, ms, out)
            customers.touch(cid, record)

    def write(
        self, cid: str, cust: dict[str, Any], record: RawRecord, ms: int, out: BatchOutput
    ) -> None:
        """Queue the customer's row if its view changed; a new stage raises the rules.

        Example: the module doc.
        """
        view = CustomerView.of(cust, self.risks.get(cid), ms)
        # Write a row only when something the customer view shows changed (or a new day
        # began), not for every transaction.
        signature = view.signature(cust)
        if signature == cust.get("sig"):
            return
        cust["sig"] = signature
        version = int(cust.get("v", 0)) + 1
        cust["v"] = version
        out.add_rows(CUSTOMER_STATUS_TABLE, [view.row(cid, cust, version, record.partition)])
        if view.stage != cust.get("st"):
            cust["st"] = view.stage
            out.candidates.extend(self._lifecycle(cid, cust, view, version))

    def _lifecycle(
        self, cid: str, cust: dict[str, Any], view: CustomerView, version: int
    ) -> list[AlertCandidate]:
        features = {
            "lifecycle": view.stage,
            "health_score": view.health,
            "risk_score": view.risk,
            "dissatisfaction": view.dissatisfaction,
            "open_complaints": len(cust.get("cm", {})),
        }
        return self.engine.evaluate(
            "customer",
            features,
            subject_id=cid,
            ts=from_ms(view.ms),
            source_event_id=f"lifecycle|{cid}|{version}",
            customer_id=cid,
            segment=cust["sg"],
        )
