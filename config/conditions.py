"""Declarative conditions over a features dict, as written in the policy file.

A condition is a comparison ``{feature: NAME, OP: VALUE}`` with OP one of ``eq``, ``ne``,
``gt``, ``gte``, ``lt``, ``lte``, ``between`` (``[lo, hi]``: lo <= x < hi) or ``in``
(a list), or a combinator ``{all: [...]}``, ``{any: [...]}``, ``{not: {...}}``.
A comparison on a missing (or ``None``) feature is false.

>>> c = compile_condition({"all": [{"feature": "is_cash", "eq": True},
...                                {"feature": "amount_cny", "gte": 50000}]})
>>> c.evaluate({"is_cash": True, "amount_cny": 50000.0}), c.evaluate({"is_cash": True})
(True, False)
>>> c.features()
['is_cash', 'amount_cny']
>>> c.compile()({"is_cash": True, "amount_cny": 60000.0})
True
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "between": lambda x, bounds: bounds[0] <= x < bounds[1],
    "in": lambda x, options: x in options,
}
_NUMERIC = {"gt", "gte", "lt", "lte"}


class ConditionError(ValueError):
    """A malformed condition; ``path`` says where (e.g. ``when.all[1].gte``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


Predicate = Callable[[Mapping[str, Any]], bool]


class Condition:
    def evaluate(self, features: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    def compile(self) -> Predicate:
        """A closure equivalent to :meth:`evaluate`, for the hot path (no tree walk)."""
        raise NotImplementedError

    def features(self) -> list[str]:
        """Feature names the condition reads, in order, without repeats."""
        raise NotImplementedError

    def thresholds(self) -> dict[str, Any]:
        """``{"feature op": value}`` for evidence, e.g. ``{"amount_cny gte": 50000}``."""
        raise NotImplementedError


@dataclass(frozen=True)
class Comparison(Condition):
    feature: str
    op: str
    value: Any

    def evaluate(self, features: Mapping[str, Any]) -> bool:
        x = features.get(self.feature)
        if x is None:
            return False
        try:
            return bool(OPERATORS[self.op](x, self.value))
        except TypeError:  # e.g. a string feature compared with a number
            return False

    def compile(self) -> Predicate:
        name, value, fn = self.feature, self.value, OPERATORS[self.op]

        def predicate(features: Mapping[str, Any]) -> bool:
            x = features.get(name)
            if x is None:
                return False
            try:
                return bool(fn(x, value))
            except TypeError:
                return False

        return predicate

    def features(self) -> list[str]:
        return [self.feature]

    def thresholds(self) -> dict[str, Any]:
        return {f"{self.feature} {self.op}": self.value}


@dataclass(frozen=True)
class Combinator(Condition):
    kind: str  # all | any | not
    parts: tuple[Condition, ...]

    def evaluate(self, features: Mapping[str, Any]) -> bool:
        if self.kind == "all":
            return all(p.evaluate(features) for p in self.parts)
        if self.kind == "any":
            return any(p.evaluate(features) for p in self.parts)
        return not self.parts[0].evaluate(features)

    def compile(self) -> Predicate:
        parts = tuple(p.compile() for p in self.parts)
        if self.kind == "not":
            inner = parts[0]
            return lambda f: not inner(f)
        if self.kind == "any":

            def any_of(features: Mapping[str, Any]) -> bool:
                for part in parts:  # noqa: SIM110 - a plain loop beats any(<genexpr>) here
                    if part(features):
                        return True
                return False

            return any_of

        def all_of(features: Mapping[str, Any]) -> bool:
            for part in parts:  # noqa: SIM110 - a plain loop beats all(<genexpr>) here
                if not part(features):
                    return False
            return True

        return all_of

    def features(self) -> list[str]:
        seen: dict[str, None] = {}
        for part in self.parts:
            seen.update(dict.fromkeys(part.features()))
        return list(seen)

    def thresholds(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in self.parts:
            out.update(part.thresholds())
        return out


def compile_condition(spec: Any, path: str = "when") -> Condition:
    """Build a :class:`Condition` from its YAML form; raises :class:`ConditionError`."""
    if not isinstance(spec, Mapping):
        raise ConditionError(path, f"expected a mapping, got {type(spec).__name__}")
    for kind in ("all", "any"):
        if kind in spec:
            _only(spec, {kind}, path)
            items = spec[kind]
            if not isinstance(items, list) or not items:
                raise ConditionError(f"{path}.{kind}", "expected a non-empty list")
            parts = tuple(compile_condition(s, f"{path}.{kind}[{i}]") for i, s in enumerate(items))
            return Combinator(kind, parts)
    if "not" in spec:
        _only(spec, {"not"}, path)
        return Combinator("not", (compile_condition(spec["not"], f"{path}.not"),))
    if "feature" not in spec:
        raise ConditionError(path, "expected 'feature' with an operator, or all/any/not")
    feature = spec["feature"]
    if not isinstance(feature, str) or not feature:
        raise ConditionError(f"{path}.feature", "must be a non-empty string")
    ops = [k for k in spec if k != "feature"]
    if len(ops) != 1 or ops[0] not in OPERATORS:
        raise ConditionError(
            path, f"expected exactly one operator of {sorted(OPERATORS)}, got {ops}"
        )
    op = ops[0]
    value = spec[op]
    where = f"{path}.{op}"
    if op in _NUMERIC and not _is_number(value):
        raise ConditionError(where, f"must be a number, got {value!r}")
    if op == "between" and not (
        isinstance(value, list)
        and len(value) == 2
        and all(_is_number(v) for v in value)
        and value[0] < value[1]
    ):
        raise ConditionError(where, f"must be [low, high] numbers with low < high, got {value!r}")
    if op == "in" and not isinstance(value, list):
        raise ConditionError(where, f"must be a list, got {value!r}")
    return Comparison(feature, op, tuple(value) if op in ("between", "in") else value)


def _only(spec: Mapping[str, Any], keys: set[str], path: str) -> None:
    extra = set(spec) - keys
    if extra:
        raise ConditionError(path, f"unexpected keys {sorted(extra)} next to {sorted(keys)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
