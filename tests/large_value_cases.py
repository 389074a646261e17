"""Boundary cases of the large-value and structuring rules (PBoC Order 2016 No. 3, Art. 5),
shared by the offline pipeline test and the live-worker test.

Each case is one customer's transactions and the reports (register rows) and structuring
alerts they must give. A report is ``(criterion, direction, currency class, CST day, total,
transactions, report due, calendar)``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

D = "2026-03-02"  # a Monday; 5 working days later: Monday 9 March
DUE = "2026-03-09"
AT = f"{D}T10:00:00+08:00"
_ids = itertools.count()


@dataclass(frozen=True)
class Case:
    name: str
    txns: list[dict[str, Any]]
    reports: list[tuple[Any, ...]] = field(default_factory=list)
    structuring: frozenset[str] = frozenset()

    @property
    def customer_id(self) -> str:
        return f"lv-{self.name}"

    def events(self) -> list[dict[str, Any]]:
        return [
            {"event_id": f"lv-{self.name}-{i}", "customer_id": self.customer_id, **t}
            for i, t in enumerate(self.txns)
        ]


def t(
    amount: float | str,
    kind: str = "cash_deposit",
    *,
    ts: str = AT,
    direction: str | None = None,
    institution: bool = False,
    currency: str = "CNY",
    cross_border: bool | None = None,
    cash: bool | None = None,
) -> dict[str, Any]:
    if direction is None:
        direction = "credit" if kind == "cash_deposit" else "debit"
    ev: dict[str, Any] = {
        "ts": ts,
        "customer_type": "institution" if institution else "individual",
        "segment": "corporate" if institution else "retail",
        "account_id": f"acct-{next(_ids)}",
        "amount": amount,
        "currency": currency,
        "direction": direction,
        "txn_type": kind,
        "channel": "branch",
        "counterparty_id": "cp-1",
        "counterparty_country": "US" if cross_border else "CN",
    }
    if cross_border is not None:
        ev["cross_border"] = cross_border
    if cash is not None:
        ev["cash"] = cash
    return ev


def report(criterion: str, direction: str, cls: str, total: str, n: int, day: str = D,
           due: str = DUE, calendar: str = "official") -> tuple[Any, ...]:  # fmt: skip
    return (criterion, direction, cls, day, total, n, due, calendar)


IND_D = "transfer_individual_domestic"
IND_X = "transfer_individual_cross_border"
INST = "transfer_institution"
TR = "transfer"

CASES: list[Case] = [
    # --- each threshold at -0.01 and exact ------------------------------------------------
    Case("cash-rmb-below", [t("49999.99")]),
    Case("cash-rmb-exact", [t(50000)], [report("cash", "credit", "rmb", "50000.00", 1)]),
    Case("cash-usd-below", [t("9999.99", "cash_withdrawal", currency="USD")]),
    Case(
        "cash-usd-exact",
        [t(10000, "cash_withdrawal", currency="USD")],
        [report("cash", "debit", "fx", "10000.00", 1)],
    ),
    Case("inst-rmb-below", [t("1999999.99", TR, institution=True)]),
    Case(
        "inst-rmb-exact",
        [t(2000000, TR, institution=True)],
        [report(INST, "debit", "rmb", "2000000.00", 1)],
    ),
    Case("inst-usd-below", [t("199999.99", TR, institution=True, currency="USD")]),
    Case(
        "inst-usd-exact",
        [t(200000, TR, institution=True, currency="USD")],
        [report(INST, "debit", "fx", "200000.00", 1)],
    ),
    Case("ind-rmb-below", [t("499999.99", TR)]),
    Case("ind-rmb-exact", [t(500000, TR)], [report(IND_D, "debit", "rmb", "500000.00", 1)]),
    Case("ind-usd-below", [t("99999.99", TR, currency="USD")]),
    Case(
        "ind-usd-exact",
        [t(100000, TR, currency="USD")],
        [report(IND_D, "debit", "fx", "100000.00", 1)],
    ),
    Case("xb-rmb-below", [t("199999.99", TR, cross_border=True)]),
    Case(
        "xb-rmb-exact",
        [t(200000, TR, cross_border=True)],
        [report(IND_X, "debit", "rmb", "200000.00", 1)],
    ),
    Case("xb-usd-below", [t("9999.99", TR, cross_border=True, currency="USD")]),
    Case(
        "xb-usd-exact",
        [t(10000, TR, cross_border=True, currency="USD")],
        [report(IND_X, "debit", "fx", "10000.00", 1)],
    ),
    # --- cumulative across two and three transactions ---------------------------------------
    Case(
        "ind-two",
        [t(300000, TR, ts=f"{D}T09:00:00+08:00"), t(250000, TR, ts=f"{D}T15:00:00+08:00")],
        [report(IND_D, "debit", "rmb", "550000.00", 2)],
    ),
    Case(
        "inst-two",
        [
            t(1200000, TR, institution=True, direction="credit", ts=f"{D}T09:00:00+08:00"),
            t(900000, TR, institution=True, direction="credit", ts=f"{D}T11:00:00+08:00"),
        ],
        [report(INST, "credit", "rmb", "2100000.00", 2)],
    ),
    Case(
        "cash-three",
        [
            t(20000, ts=f"{D}T09:00:00+08:00"),
            t(20000, ts=f"{D}T12:00:00+08:00"),
            t(10000, ts=f"{D}T16:00:00+08:00"),
        ],
        [report("cash", "credit", "rmb", "50000.00", 3)],
    ),
    Case(  # a later transaction of the day folds into the report
        "cash-fold",
        [t(50000, ts=f"{D}T09:00:00+08:00"), t(1000, ts=f"{D}T10:00:00+08:00")],
        [report("cash", "credit", "rmb", "51000.00", 2)],
    ),
    # --- one-sided: money in and money out never summed -------------------------------------
    Case(
        "one-sided",
        [t(30000, ts=f"{D}T09:00:00+08:00"), t(25000, "cash_withdrawal")],
    ),
    Case(
        "both-sides",
        [t(50000, ts=f"{D}T09:00:00+08:00"), t(50000, "cash_withdrawal")],
        [
            report("cash", "credit", "rmb", "50000.00", 1),
            report("cash", "debit", "rmb", "50000.00", 1),
        ],
    ),
    # --- the CST day ------------------------------------------------------------------------
    Case(
        "day-boundary",
        [t(30000, ts=f"{D}T23:59:59+08:00"), t(30000, ts="2026-03-03T00:00:00+08:00")],
    ),
    Case(  # 16:00 UTC is midnight in China: the second and third count on 3 March
        "utc-next-day",
        [
            t(30000, ts="2026-03-02T15:59:59Z"),
            t(30000, ts="2026-03-02T16:00:00Z"),
            t(20000, ts="2026-03-03T09:00:00+08:00"),
        ],
        [report("cash", "credit", "rmb", "50000.00", 2, day="2026-03-03", due="2026-03-10")],
    ),
    # --- RMB vs USD vs a third currency -----------------------------------------------------
    Case(  # RMB 40,000 and USD 6,000 (RMB 42,600): each against its own threshold
        "rmb-and-usd-apart",
        [t(40000, ts=f"{D}T09:00:00+08:00"), t(6000, currency="USD")],
    ),
    Case(  # EUR 9,300 = USD 10,085.91 at the fixed rates (7.7 and 7.1 CNY)
        "eur-over",
        [t(9300, currency="EUR")],
        [report("cash", "credit", "fx", "10085.91", 1)],
    ),
    Case("eur-under", [t(9200, currency="EUR")]),  # USD 9,977.46
    Case(  # USD 6,000 + EUR 4,000 (USD 4,338.02): one foreign-currency total
        "usd-and-eur-summed",
        [t(6000, currency="USD", ts=f"{D}T09:00:00+08:00"), t(4000, currency="EUR")],
        [report("cash", "credit", "fx", "10338.02", 2)],
    ),
    # --- domestic vs cross-border, individual vs institution --------------------------------
    Case("ind-domestic-200k", [t(200000, TR, cross_border=False)]),
    Case(
        "ind-cross-border-200k",
        [t(200000, TR, cross_border=True)],
        [report(IND_X, "debit", "rmb", "200000.00", 1)],
    ),
    Case("inst-cross-border-300k", [t(300000, TR, institution=True, cross_border=True)]),
    Case(
        "inst-cross-border-2m",
        [t(2000000, TR, institution=True, cross_border=True)],
        [report(INST, "debit", "rmb", "2000000.00", 1)],
    ),
    # --- one transaction meeting two criteria (Art. 6): a cross-border cash remittance -------
    Case(
        "two-criteria",
        [t(200000, TR, cross_border=True, cash=True)],
        [
            report("cash", "debit", "rmb", "200000.00", 1),
            report(IND_X, "debit", "rmb", "200000.00", 1),
        ],
    ),
    # --- deadlines on China's calendar ------------------------------------------------------
    Case(  # Wednesday before the National Day week; Saturday 10 October is a working day
        "national-day",
        [t(50000, ts="2026-09-30T10:00:00+08:00")],
        [report("cash", "credit", "rmb", "50000.00", 1, day="2026-09-30", due="2026-10-13")],
    ),
    Case(  # Friday before Spring Festival; Saturday 14 February is a working day
        "adjusted-saturday",
        [t(50000, ts="2026-02-13T10:00:00+08:00")],
        [report("cash", "credit", "rmb", "50000.00", 1, day="2026-02-13", due="2026-02-27")],
    ),
    Case(  # the deadline falls in 2027, beyond the calendar package: Monday-Friday
        "beyond-calendar",
        [t(50000, ts="2026-12-31T10:00:00+08:00")],
        [
            report(
                "cash",
                "credit",
                "rmb",
                "50000.00",
                1,
                day="2026-12-31",
                due="2027-01-07",
                calendar="fallback",
            ),
        ],
    ),
    # --- structuring on the same criteria ---------------------------------------------------
    Case(  # three deposits just under RMB 50,000 within 24 h, over two CST days
        "structuring-cash",
        [
            t(45000, ts=f"{D}T20:00:00+08:00"),
            t(44000, ts=f"{D}T23:00:00+08:00"),
            t(46000, ts="2026-03-03T09:00:00+08:00"),
        ],
        [report("cash", "credit", "rmb", "89000.00", 2)],
        frozenset({"structuring.cash"}),
    ),
    Case(  # two deposits and one withdrawal just under: one-sided, no structuring
        "structuring-one-sided",
        [
            t(45000, ts=f"{D}T20:00:00+08:00"),
            t(44000, "cash_withdrawal", ts=f"{D}T23:00:00+08:00"),
            t(46000, ts="2026-03-03T09:00:00+08:00"),
        ],
    ),
    Case(  # three cross-border transfers just under USD 10,000 on three days
        "structuring-cross-border-usd",
        [
            t(9000, TR, cross_border=True, currency="USD", ts="2026-03-02T12:00:00+08:00"),
            t(9100, TR, cross_border=True, currency="USD", ts="2026-03-02T23:30:00+08:00"),
            t(9200, TR, cross_border=True, currency="USD", ts="2026-03-03T08:00:00+08:00"),
        ],
        [report(IND_X, "debit", "fx", "18100.00", 2)],
        frozenset({"structuring.transfer_individual_cross_border"}),
    ),
]


def expected_reports() -> dict[str, list[tuple[Any, ...]]]:
    """customer -> its reports, sorted."""
    return {c.customer_id: sorted(c.reports) for c in CASES}


def expected_structuring() -> dict[str, set[str]]:
    """The Art. 11 structuring rules each case raises (the early warning is apart)."""
    return {c.customer_id: set(c.structuring) for c in CASES}


EARLY_WARNING = "structuring.early_warning"  # the second transaction under a threshold
OFF_PROFILE = "structuring.off_profile"  # one under a threshold, unlike the customer's own


REPORT_QUERY = (
    "SELECT customer_id, criterion, direction, currency_class, toString(report_day), "
    "toString(total), transaction_count, toString(report_due), calendar, "
    "length(transaction_ids) FROM {db}.large_value_reports FINAL"
)


def reports_by_customer(rows: list[tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    """Register rows as in :func:`expected_reports` (the id list must hold every transaction)."""
    out: dict[str, list[tuple[Any, ...]]] = {c.customer_id: [] for c in CASES}
    for cid, crit, direction, cls, day, total, n, due, calendar, n_ids in rows:
        assert n_ids == n, (cid, crit, n_ids, n)
        total = f"{float(total):.2f}"
        out.setdefault(cid, []).append((crit, direction, cls, day, total, n, due, calendar))
    return {k: sorted(v) for k, v in out.items()}
