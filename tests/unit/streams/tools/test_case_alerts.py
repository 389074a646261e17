"""Case-level alert figures: recall within the hour, any time, delays, clean rate, precision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from finpulse.streams.tools.case_alerts import Alert, case_report

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def case(customer: str, pattern: str = "mule", hours: float = 2.0) -> dict[str, str]:
    end = T0 + timedelta(hours=hours)
    return {"pattern": pattern, "customer_id": customer, "start_ts": T0.isoformat(),
            "end_ts": end.isoformat()}  # fmt: skip


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_only_alerts_from_the_first_event_on_count_and_the_hour_is_a_limit():
    cases = [case("a"), case("b"), case("c"), case("d")]
    firings = [
        Alert("a", at(-5), "red"),  # before the case: not a detection of it
        Alert("b", at(30), "orange"),
        Alert("c", at(90), "orange"),  # detected, but after the hour
    ]
    mule = case_report(cases, firings, clean=set())["patterns"]["mule"]
    assert mule["case_recall_any_alert"] == 0.25
    assert mule["case_recall_any_time"] == 0.5
    assert mule["time_to_alert_s"] == {"median": 1800.0, "p90": 5400.0}


def test_precision_per_severity_uses_the_raised_alerts_and_a_day_after_the_case():
    cases = [case("a")]
    raised = [
        Alert("a", at(60), "red"),
        Alert("a", at(60 * 27), "red"),  # more than a day after the case ended
        Alert("z", at(10), "yellow"),
    ]
    r = case_report(cases, [], clean={"z", "y"}, alerts=raised)
    assert r["precision_by_severity"] == {
        "red": {"alerts": 2, "precision": 0.5},
        "yellow": {"alerts": 1, "precision": 0.0},
    }
    assert r["clean_customer_alert_rate"] == 0.0  # from the firings, none here


def test_recall_from_the_observable_moment_counts_alerts_within_the_hour_after_it():
    seen_late = {**case("a"), "observable_ts": at(100).isoformat()}
    cases = [seen_late, {**seen_late, "customer_id": "b"}, {**seen_late, "customer_id": "c"}]
    firings = [
        Alert("a", at(130), "yellow"),  # 30 min after it became observable
        Alert("b", at(170), "orange"),  # 70 min after: too late
        Alert("c", at(-10), "red"),  # before the case: no detection
    ]
    mule = case_report(cases, firings, clean=set())["patterns"]["mule"]
    assert mule["case_recall_observable"] == round(1 / 3, 4)
    assert mule["case_recall_any_alert"] == 0.0
    no_field = case_report([case("b")], firings, clean=set())["patterns"]["mule"]
    assert no_field["case_recall_observable"] == no_field["case_recall_any_alert"] == 0.0
