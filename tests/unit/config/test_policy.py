"""Policy loading and validation: errors name the file, the rule and the field."""

from __future__ import annotations

import copy

import pytest
import yaml

from config.policy import PolicyError, load_policy, parse_policy
from models.alerts import Severity

GOOD_RULE = {
    "id": "r1",
    "on": "transaction",
    "domain": "risk",
    "subject": "customer",
    "severity": "yellow",
    "owner": "team",
    "when": {"feature": "amount_cny", "gte": 10},
}


def _policy(**rule_over):
    rule = copy.deepcopy(GOOD_RULE)
    rule.update(rule_over)
    return {"version": 1, "rules": [rule]}


def test_default_policy_loads_and_cites_sources():
    policy = load_policy()
    ids = {r.id for r in policy.rules}
    assert {
        "large_cash_single",
        "large_cash_cumulative",
        "large_transfer_individual",
        "large_transfer_institution",
        "structuring_cash",
        "structuring_transfer",
        "card_testing",
        "account_takeover",
        "mule_in_out",
    } <= ids
    for rule in policy.rules:
        assert rule.condition is not None or rule.on == "model"  # model rules: no condition
        if rule.domain == "compliance":
            assert rule.source and "PBoC" in rule.source
    assert policy.rule("large_cash_single").report_due_working_days == 5
    assert policy.models["risk_score"].severity_for(80) == Severity.ORANGE
    assert policy.models["risk_score"].severity_for(10) is None


@pytest.mark.parametrize(
    ("over", "fragment"),
    [
        ({"severity": "purple"}, "rule 'r1': severity:"),
        ({"on": "tweets"}, "rule 'r1': on:"),
        ({"owner": ""}, "rule 'r1': owner:"),
        ({"suppression_minutes": -1}, "rule 'r1': suppression_minutes:"),
        ({"surprise": 1}, "rule 'r1': surprise:"),
        ({"when": {"feature": "x", "gte": "ten"}}, "rule 'r1': when.gte: must be a number"),
        ({"when": {"feature": "x", "between": [5, 1]}}, "rule 'r1': when.between:"),
        ({"when": {"feature": "x", "like": 1}}, "rule 'r1': when: expected exactly one operator"),
        ({"when": {"all": []}}, "rule 'r1': when.all: expected a non-empty list"),
        ({"when": {"any": [{"feature": "x"}]}}, "rule 'r1': when.any[0]: expected exactly one"),
        ({"when": None}, "rule 'r1': when: required"),
        ({"id": "Bad Id"}, "rule 'Bad Id': id:"),
    ],
)
def test_invalid_rules_are_reported_precisely(over, fragment):
    with pytest.raises(PolicyError) as info:
        parse_policy(_policy(**over), "ops/policy.yaml")
    assert str(info.value).startswith("ops/policy.yaml: ")
    assert fragment in str(info.value)


def test_duplicate_ids_and_bad_model_thresholds(tmp_path):
    data = {"rules": [GOOD_RULE, GOOD_RULE]}
    with pytest.raises(PolicyError, match="rule 'r1': id: duplicate"):
        parse_policy(data, "p.yaml")
    bad = {"models": {"risk_score": {"owner": "x", "thresholds": {"yellow": 80, "red": 60}}}}
    with pytest.raises(PolicyError, match=r"p\.yaml: models\.risk_score\.thresholds"):
        parse_policy(bad, "p.yaml")


def test_files_are_read_and_yaml_errors_named(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(_policy(severity="red")))
    assert load_policy(path).rule("r1").severity == Severity.RED
    path.write_text("rules: [unclosed")
    with pytest.raises(PolicyError, match=f"{path}: not valid YAML"):
        load_policy(path)
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.yaml")


def test_thresholds_change_without_code(tmp_path):
    text = load_policy.__globals__["resources"].files("config").joinpath("policy.yaml").read_text()
    path = tmp_path / "policy.yaml"
    path.write_text(
        text.replace("{feature: amount_cny, gte: 50000}", "{feature: amount_cny, gte: 40000}", 1)
    )
    rule = load_policy(path).rule("large_cash_single")
    assert rule.condition.evaluate({"is_cash": True, "amount_cny": 40000.0})
