"""Regulation-derived rules: report deadlines on China's working-day calendar, and the
policy's large-value thresholds (the boundary cases of the rules themselves run through
the pipeline in test_large_value_reports.py)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest

from finpulse.config.policy import PolicyError, load_policy, parse_policy
from finpulse.models.report_calendar import HolidaysFileError, WorkingDayCalendar
from finpulse.streams.stages.rules import RuleEngine

ENGINE = RuleEngine(load_policy())
LV = {"lv_currency_class": "rmb", "direction": "credit", "lv_cash_count": 1,
      "lv_cash_ids": "t-1", "lv_cash_accounts": "acct:a", "lv_cash_day_rmb": 60000.0}  # fmt: skip


@pytest.mark.parametrize(
    ("day", "n", "due", "calendar"),
    [
        (date(2026, 3, 6), 5, date(2026, 3, 13), "official"),  # Friday: next Friday
        (date(2026, 3, 7), 1, date(2026, 3, 9), "official"),  # Saturday: Monday
        (date(2026, 9, 30), 5, date(2026, 10, 13), "official"),  # National Day week
        (date(2026, 10, 9), 1, date(2026, 10, 10), "official"),  # adjusted working Saturday
        (date(2026, 2, 13), 5, date(2026, 2, 27), "official"),  # Spring Festival, 14 Feb works
        (date(2026, 12, 31), 5, date(2027, 1, 7), "fallback"),  # 2027 not in the package
        (date(2027, 3, 5), 1, date(2027, 3, 8), "fallback"),
    ],
)
def test_working_days_on_chinas_calendar(day, n, due, calendar):
    assert WorkingDayCalendar().add_working_days(day, n) == (due, calendar)


def test_fallback_uses_the_holidays_file_and_says_so_once(tmp_path, caplog):
    path = tmp_path / "holidays.txt"
    path.write_text("# 2027\n2027-01-01\n2027-01-04\n2027-01-09 workday\n")
    cal = WorkingDayCalendar.from_file(path)
    with caplog.at_level(logging.WARNING, logger="finpulse.models.report_calendar"):
        assert cal.add_working_days(date(2026, 12, 31), 1) == (date(2027, 1, 5), "fallback")
        assert cal.add_working_days(date(2027, 1, 8), 1) == (date(2027, 1, 9), "fallback")
    assert len([r for r in caplog.records if "2027" in r.getMessage()]) == 1


def test_a_bad_holidays_file_is_a_clear_error(tmp_path):
    path = tmp_path / "holidays.txt"
    path.write_text("2027-13-01\n")
    with pytest.raises(HolidaysFileError, match=r"holidays.txt:1: not a YYYY-MM-DD date"):
        WorkingDayCalendar.from_file(path)


def test_report_due_counts_from_the_china_day_of_the_transactions():
    ts = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)  # already Saturday 01:00 in China
    [cand] = ENGINE.evaluate("transaction", {**LV, "lv_day": 20519}, subject_id="c", ts=ts)
    assert cand.evidence["report_day"] == "2026-03-07"
    assert (cand.report_due, cand.report_calendar) == (date(2026, 3, 13), "official")


def test_evidence_names_the_criterion_totals_and_thresholds():
    ts = datetime(2026, 3, 6, 2, 0, tzinfo=UTC)
    [cand] = ENGINE.evaluate("transaction", {**LV, "lv_day": 20518}, subject_id="c", ts=ts)
    assert cand.evidence["article"] == "Art. 5(1)" and cand.evidence["total"] == 60000.0
    assert cand.evidence["threshold: lv_cash_day_rmb gte"] == 50000
    assert cand.evidence["threshold"] == 50000.0 and cand.fold_key == "credit|rmb"


def _policy(parameters, **rule):
    return {
        "version": 1,
        "parameters": parameters,
        "rules": [
            {
                "id": "lv",
                "on": "transaction",
                "domain": "compliance",
                "subject": "customer",
                "severity": "orange",
                "owner": "aml",
                "criterion": "cash",
                "report": "large_value",
                "when": {"feature": "lv_cash_day_rmb", "gte": "$lv_cash_rmb"},
                **rule,
            }
        ],
    }


def test_the_validator_rejects_a_criterion_without_a_threshold():
    params = {k: v for k, v in load_policy().parameters.items() if k != "lv_cash_usd"}
    with pytest.raises(PolicyError, match=r"rule 'lv': parameters: .*'cash'.* lv_cash_usd"):
        parse_policy(_policy(params))
    with pytest.raises(PolicyError, match=r"rule 'lv': when: unknown parameter 'nope'"):
        parse_policy(_policy(load_policy().parameters, when={"feature": "x", "gte": "$nope"}))
    with pytest.raises(PolicyError, match=r"rule 'lv': criterion: required for a report rule"):
        parse_policy(_policy(load_policy().parameters, criterion=None))
    rule = parse_policy(_policy(load_policy().parameters)).rule("lv")
    assert rule.condition.thresholds() == {"lv_cash_day_rmb gte": 50000}
