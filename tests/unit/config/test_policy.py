"""Policy loading and validation: errors name the file, the rule and the field."""

from __future__ import annotations

import copy

import pytest
import yaml

from finpulse.config.policy import PolicyError, load_policy, parse_policy
from finpulse.models.alerts import Severity

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
        "large_value.cash",
        "large_value.transfer_institution",
        "large_value.transfer_individual_domestic",
        "large_value.transfer_individual_cross_border",
        "structuring.cash",
        "structuring.transfer_individual_cross_border",
        "card_testing",
        "account_takeover",
        "mule_in_out",
    } <= ids
    for rule in policy.rules:
        assert rule.condition is not None or rule.on == "model"  # model rules: no condition
        if rule.domain == "compliance":
            assert rule.source and "PBoC" in rule.source
    assert policy.rule("large_value.cash").report_due_working_days == 5
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
    path.write_text(text.replace("lv_cash_rmb: 50000 ", "lv_cash_rmb: 40000 ", 1))
    rule = load_policy(path).rule("large_value.cash")
    assert rule.condition.evaluate({"lv_cash_day_rmb": 40000.0})


# --- the condition tree is a pydantic model; its JSON Schema covers the whole file -------------


def _shipped_policy_data():
    text = load_policy.__globals__["resources"].files("config").joinpath("policy.yaml").read_text()
    data = yaml.safe_load(text)
    # YAML 1.1 (PyYAML) reads a bare `on:` key as True; editors read YAML 1.2, a string
    for rule in data["rules"]:
        rule["on"] = rule.pop(True, rule.get("on"))
    return data


@pytest.mark.parametrize(
    ("when", "fragment"),
    [
        ({"all": [{"feature": "x", "eq": 1}, {"feature": "y", "gte": "ten"}]}, "when.all[1].gte:"),
        ({"not": {"feature": "x", "in": [1, {"a": 2}]}}, "when.not.in[1]: must be a string"),
        ({"feature": "x", "between": ["a", 1]}, "when.between[0]: must be a number"),
        ({"feature": "x", "gte": True}, "when.gte: must be a number, got True"),
        ({"feature": "x", "gte": 1, "lt": 2}, "when: expected exactly one operator"),
        ({"any": [{"feature": "x", "eq": 1}], "feature": "y"}, "when.feature: unexpected key"),
        ("is_cash", "when: expected exactly one operator"),
    ],
)
def test_condition_errors_name_the_node(when, fragment):
    with pytest.raises(PolicyError) as info:
        parse_policy(_policy(when=when), "ops/policy.yaml")
    assert str(info.value).startswith("ops/policy.yaml: rule 'r1': ")
    assert fragment in str(info.value)


def test_condition_tree_round_trips_and_keeps_numbers_as_written():
    policy = load_policy()
    for rule in policy.rules:
        if rule.when is not None:
            dumped = rule.when.model_dump(by_alias=True)
            assert type(rule.when).model_validate(dumped) == rule.when
    cash = policy.rule("large_value.cash").condition
    assert cash.thresholds() == {"lv_cash_day_rmb gte": 50000, "lv_cash_day_usd gte": 10000}
    assert type(cash.thresholds()["lv_cash_day_rmb gte"]) is int


def test_policy_json_schema_describes_the_shipped_file():
    from finpulse.config.policy import policy_json_schema

    schema = policy_json_schema()
    data = _shipped_policy_data()
    defs = schema["$defs"]
    assert schema["$schema"].endswith("2020-12/schema") and schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"version", "parameters", "models", "rules"}
    assert defs["Rule"]["then"] == {"required": ["when"]}  # unless on: model
    assert {"$ref": "#/$defs/Condition"} in defs["Rule"]["properties"]["when"]["anyOf"]
    tags = {ref["$ref"].rsplit("/", 1)[1] for ref in defs["Condition"]["oneOf"]}
    assert tags == {"AllOf", "AnyOf", "Not", "Eq", "Ne", "Gt", "Gte", "Lt", "Lte", "Between", "In"}
    assert defs["Gte"]["properties"]["gte"] == {"title": "Gte", "type": "number"}
    assert defs["AllOf"]["properties"]["all"]["minItems"] == 1
    assert defs["In"]["required"] == ["feature", "in"]
    # every key the shipped file uses is a property the schema knows
    for rule in data["rules"]:
        assert set(rule) <= set(defs["Rule"]["properties"]), rule["id"]
    try:
        import jsonschema
    except ImportError:  # not a dependency: the model is the schema's source, round-trip it
        policy = parse_policy(data, "config/policy.yaml")
        again = parse_policy(policy.model_dump(by_alias=True, exclude={"path"}), "again")
        assert again.model_dump(exclude={"path"}) == policy.model_dump(exclude={"path"})
        return
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(data)
    bad = copy.deepcopy(data)
    bad["rules"][0]["when"]["all"][1] = {"feature": "amount_cny", "gte": "ten"}
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)
