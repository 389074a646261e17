"""The declarative policy: rules, thresholds, severities, suppression, owners.

Loaded from ``config/policy.yaml`` (or ``FINPULSE_POLICY_PATH``) and validated on
load; every error names the file, the rule and the field. Thresholds live in the
file, so a risk team changes them without touching code.

>>> policy = load_policy()
>>> policy.rule("large_value.cash").severity
<Severity.ORANGE: 'orange'>
>>> policy.model_thresholds["risk_score"]["red"]
90.0
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import ErrorDetails

from finpulse.config.conditions import Condition, ConditionNode, error_message, field_path
from finpulse.models.alerts import Domain, Severity, SubjectType
from finpulse.models.large_value import Criterion, LargeValueConfig

RuleOn = Literal[
    "transaction", "interaction", "feedback", "channel_minute", "complaint", "customer", "model"
]
DEFAULT_POLICY = "policy.yaml"


class PolicyError(ValueError):
    """The policy file is invalid; the message names file, rule and field."""


class Rule(BaseModel):
    """One rule: when ``when`` holds on a record of kind ``on``, raise an alert."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        # in the JSON Schema too: `when` is required unless the rule is on "model"
        json_schema_extra={
            "if": {"properties": {"on": {"not": {"const": "model"}}}},
            "then": {"required": ["when"]},
        },
    )

    id: str = Field(pattern=r"^[a-z][a-z0-9_.]*$")
    on: RuleOn
    domain: Domain
    subject: SubjectType
    severity: Severity
    owner: str = Field(min_length=1)
    route: str = "webhook"
    suppression_minutes: float = Field(60, ge=0)
    escalate_every: int = Field(0, ge=0, description="repeats per severity step; 0 = never")
    max_severity: Severity = Severity.RED
    report_due_working_days: int | None = Field(None, ge=1, le=60)
    source: str | None = Field(None, description="regulation or convention the rule implements")
    criterion: Criterion | None = Field(
        None, description="the large-value criterion (PBoC Order 2016 No. 3, Art. 5) watched"
    )
    report: Literal["large_value"] | None = Field(
        None,
        description="large_value: one alert and one register row per customer, CST day, "
        "criterion, direction and currency class (needs criterion)",
    )
    description: str = ""
    enabled: bool = True
    when: Condition | None = Field(
        None, description="condition tree over the record's features; none for rules on model"
    )

    @property
    def condition(self) -> ConditionNode | None:
        """The validated condition tree (``evaluate``, ``compile``); None for model rules."""
        return self.when


class ModelAlerting(BaseModel):
    """Score thresholds per severity for one model's output, plus routing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    thresholds: dict[Severity, float]
    domain: Domain = "risk"
    subject: SubjectType = "customer"
    owner: str = Field(min_length=1)
    route: str = "webhook"
    suppression_minutes: float = Field(60, ge=0)
    escalate_every: int = Field(0, ge=0)
    max_severity: Severity = Severity.RED
    description: str = ""

    @field_validator("thresholds")
    @classmethod
    def _increasing(cls, value: dict[Severity, float]) -> dict[Severity, float]:
        ordered = [value[s] for s in sorted(value, key=lambda s: s.rank)]
        if not value or ordered != sorted(ordered) or len(set(ordered)) != len(ordered):
            raise ValueError("thresholds must be non-empty and strictly increase with severity")
        return value

    def severity_for(self, score: float) -> Severity | None:
        """The highest severity whose threshold ``score`` reaches, or None."""
        hit = [s for s, t in self.thresholds.items() if score >= t]
        return max(hit, key=lambda s: s.rank) if hit else None

    def as_rule(self, model: str) -> Rule:
        return Rule(
            id=f"model.{model}",
            on="model",
            domain=self.domain,
            subject=self.subject,
            severity=min(self.thresholds, key=lambda s: s.rank),
            owner=self.owner,
            route=self.route,
            suppression_minutes=self.suppression_minutes,
            escalate_every=self.escalate_every,
            max_severity=self.max_severity,
            description=self.description or f"{model} score above threshold",
        )


class Policy(BaseModel):
    """The policy file: parameters, model score thresholds and rules."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="finpulse policy")

    version: Literal[1] = 1
    parameters: dict[str, float | int | str | bool] = Field(default_factory=dict)
    models: dict[str, ModelAlerting] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    path: SkipJsonSchema[str] = "<memory>"  # where it was loaded from, for messages

    @cached_property
    def _by_id(self) -> dict[str, Rule]:
        rules = {r.id: r for r in self.rules}
        rules.update({f"model.{m}": a.as_rule(m) for m, a in self.models.items()})
        return rules

    def rule(self, rule_id: str) -> Rule:
        """A rule by id (``model.<name>`` for model-score alerts); KeyError if unknown."""
        return self._by_id[rule_id]

    def rules_on(self, on: str) -> list[Rule]:
        return [r for r in self.rules if r.on == on and r.enabled]

    @property
    def model_thresholds(self) -> dict[str, dict[str, float]]:
        return {m: {s.value: t for s, t in a.thresholds.items()} for m, a in self.models.items()}


def parse_policy(data: Any, path: str = "<memory>") -> Policy:
    """Validate a policy mapping; raises :class:`PolicyError` naming file, rule and field."""
    if not isinstance(data, Mapping):
        raise PolicyError(f"{path}: the policy must be a mapping at the top level")
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        raise PolicyError(f"{path}: rules: must be a list")
    parameters = data.get("parameters") or {}
    rules = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        if isinstance(raw, Mapping) and True in raw:  # YAML 1.1 reads a bare `on:` key as True
            raw = {("on" if k is True else k): v for k, v in raw.items()}
        name = raw.get("id", f"#{i}") if isinstance(raw, Mapping) else f"#{i}"
        if isinstance(raw, Mapping) and "when" in raw:
            try:
                raw = {**raw, "when": resolve_parameters(raw["when"], parameters)}
            except KeyError as exc:
                raise PolicyError(f"{path}: rule '{name}': when: unknown parameter {exc}") from None
        try:
            rule = Rule.model_validate(raw)
        except ValidationError as exc:
            raise PolicyError(f"{path}: rule '{name}': {_describe(exc, 'rule')}") from None
        if rule.report is not None and rule.criterion is None:
            raise PolicyError(f"{path}: rule '{name}': criterion: required for a report rule")
        if rule.on != "model" and rule.when is None:
            raise PolicyError(f"{path}: rule '{name}': when: required for rules on '{rule.on}'")
        if rule.id in seen:
            raise PolicyError(f"{path}: rule '{name}': id: duplicate rule id")
        seen.add(rule.id)
        rules.append(rule)
    try:
        policy = Policy.model_validate({**data, "rules": rules, "path": path})
    except ValidationError as exc:
        raise PolicyError(f"{path}: {_describe(exc, 'policy')}") from None
    watching = [r.id for r in rules if r.criterion is not None]
    if watching:
        try:
            LargeValueConfig.from_parameters(policy.parameters)
        except ValueError as exc:
            raise PolicyError(f"{path}: rule '{watching[0]}': parameters: {exc}") from None
    return policy


def resolve_parameters(spec: Any, parameters: Mapping[str, Any]) -> Any:
    """``spec`` with every ``"$name"`` value replaced by the policy parameter ``name``
    (KeyError if there is none), so a threshold is written once, in ``parameters``.

    >>> resolve_parameters({"all": [{"feature": "x", "gte": "$limit"}]}, {"limit": 5})
    {'all': [{'feature': 'x', 'gte': 5}]}
    """
    if isinstance(spec, str) and spec.startswith("$"):
        return parameters[spec[1:]]
    if isinstance(spec, Mapping):
        return {k: resolve_parameters(v, parameters) for k, v in spec.items()}
    if isinstance(spec, list):
        return [resolve_parameters(v, parameters) for v in spec]
    return spec


def _describe(exc: ValidationError, whole: str) -> str:
    """``field.path: message`` of the first error (``whole`` when it is about the object)."""
    err: ErrorDetails = exc.errors(include_url=False)[0]
    return f"{field_path(err['loc']) or whole}: {error_message(err)}"


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a policy file, for editors and CI checks.

    >>> schema = policy_json_schema()
    >>> schema["properties"]["rules"]["items"]["$ref"], "path" in schema["properties"]
    ('#/$defs/Rule', False)
    """
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **Policy.model_json_schema(by_alias=True, mode="validation"),
    }


def load_policy(path: Path | None = None) -> Policy:
    """Load and validate the policy file (the packaged default when ``path`` is None)."""
    if path is None:
        text = resources.files("finpulse.config").joinpath(DEFAULT_POLICY).read_text()
        where = f"config/{DEFAULT_POLICY}"
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read policy file: {exc.strerror}") from None
        where = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{where}: not valid YAML: {exc}") from None
    return parse_policy(data, where)
