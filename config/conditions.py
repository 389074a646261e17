"""Declarative conditions over a features dict, as written in the policy file.

A condition is a comparison ``{feature: NAME, OP: VALUE}`` with OP one of ``eq``, ``ne``,
``gt``, ``gte``, ``lt``, ``lte``, ``between`` (``[lo, hi]``: lo <= x < hi) or ``in``
(a list), or a combinator ``{all: [...]}``, ``{any: [...]}``, ``{not: {...}}``.
A comparison on a missing (or ``None``) feature is false.

The tree is a pydantic model: :data:`Condition` is a tagged union of one model per operator
and per combinator, told apart by which key a mapping holds (see :func:`condition_kind`), so
validation errors point at the exact node (:func:`field_path`) and the policy's JSON Schema
describes every operator's value.

>>> c = compile_condition({"all": [{"feature": "is_cash", "eq": True},
...                                {"feature": "amount_cny", "gte": 50000}]})
>>> c.evaluate({"is_cash": True, "amount_cny": 50000.0}), c.evaluate({"is_cash": True})
(True, False)
>>> c.features()
['is_cash', 'amount_cny']
>>> c.compile()({"is_cash": True, "amount_cny": 60000.0})
True
>>> compile_condition({"any": [{"feature": "x", "gte": "ten"}]})
Traceback (most recent call last):
...
finpulse.config.conditions.ConditionError: when.any[0].gte: must be a number, got 'ten'
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from typing_extensions import TypeAliasType

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
COMBINATORS = ("all", "any", "not")


class ConditionError(ValueError):
    """A malformed condition; ``path`` says where (e.g. ``when.all[1].gte``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


Predicate = Callable[[Mapping[str, Any]], bool]


# --- value types: one core validator each, so an error is one clear line -----------------------


def _number(value: Any) -> int | float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value  # ints stay ints: thresholds show in evidence as written
    raise PydanticCustomError("number", "must be a number, got {got}", {"got": repr(value)})


def _scalar(value: Any) -> str | bool | int | float | None:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise PydanticCustomError(
        "scalar", "must be a string, number, boolean or null, got {got}", {"got": repr(value)}
    )


Number = Annotated[int | float, PlainValidator(_number, json_schema_input_type=float)]
Scalar = Annotated[
    str | bool | int | float | None,
    PlainValidator(_scalar, json_schema_input_type=str | bool | float | None),
]
Feature = Annotated[StrictStr, Field(min_length=1, description="a feature name")]


# --- the nodes ----------------------------------------------------------------------------------


class ConditionNode(BaseModel):
    """A node of the condition tree: validated on construction, evaluated or compiled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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


class Comparison(ConditionNode):
    """``{feature: NAME, OP: VALUE}``; subclasses declare the one field named OP."""

    op: ClassVar[str]
    feature: Feature

    @property
    def value(self) -> Any:
        """The operand, as the predicate uses it (lists as tuples)."""
        raw = getattr(self, self.op + "_" if self.op == "in" else self.op)
        return tuple(raw) if isinstance(raw, list | tuple) else raw

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


class Eq(Comparison):
    """The feature equals the value."""

    op: ClassVar[str] = "eq"
    eq: Scalar


class Ne(Comparison):
    """The feature differs from the value."""

    op: ClassVar[str] = "ne"
    ne: Scalar


class Gt(Comparison):
    """The feature is greater than the number."""

    op: ClassVar[str] = "gt"
    gt: Number


class Gte(Comparison):
    """The feature is at least the number."""

    op: ClassVar[str] = "gte"
    gte: Number


class Lt(Comparison):
    """The feature is less than the number."""

    op: ClassVar[str] = "lt"
    lt: Number


class Lte(Comparison):
    """The feature is at most the number."""

    op: ClassVar[str] = "lte"
    lte: Number


class Between(Comparison):
    """``[low, high]``: low <= feature < high."""

    op: ClassVar[str] = "between"
    between: tuple[Number, Number]

    @field_validator("between")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1]:
            raise PydanticCustomError(
                "between_order",
                "must be [low, high] numbers with low < high, got {got}",
                {"got": repr(list(value))},
            )
        return value


class In(Comparison):
    """The feature is one of the listed values."""

    op: ClassVar[str] = "in"
    in_: list[Scalar] = Field(alias="in")


class AllOf(ConditionNode):
    """Every part holds."""

    all_: list[Condition] = Field(alias="all", min_length=1)

    def evaluate(self, features: Mapping[str, Any]) -> bool:
        return all(p.evaluate(features) for p in self.all_)

    def compile(self) -> Predicate:
        parts = tuple(p.compile() for p in self.all_)

        def all_of(features: Mapping[str, Any]) -> bool:
            for part in parts:  # noqa: SIM110 - a plain loop beats all(<genexpr>) here
                if not part(features):
                    return False
            return True

        return all_of

    def features(self) -> list[str]:
        return _features(self.all_)

    def thresholds(self) -> dict[str, Any]:
        return _thresholds(self.all_)


class AnyOf(ConditionNode):
    """At least one part holds."""

    any_: list[Condition] = Field(alias="any", min_length=1)

    def evaluate(self, features: Mapping[str, Any]) -> bool:
        return any(p.evaluate(features) for p in self.any_)

    def compile(self) -> Predicate:
        parts = tuple(p.compile() for p in self.any_)

        def any_of(features: Mapping[str, Any]) -> bool:
            for part in parts:  # noqa: SIM110 - a plain loop beats any(<genexpr>) here
                if part(features):
                    return True
            return False

        return any_of

    def features(self) -> list[str]:
        return _features(self.any_)

    def thresholds(self) -> dict[str, Any]:
        return _thresholds(self.any_)


class Not(ConditionNode):
    """The part does not hold (a missing feature makes a comparison false, so ``not`` true)."""

    not_: Condition = Field(alias="not")

    def evaluate(self, features: Mapping[str, Any]) -> bool:
        return not self.not_.evaluate(features)

    def compile(self) -> Predicate:
        inner = self.not_.compile()
        return lambda f: not inner(f)

    def features(self) -> list[str]:
        return self.not_.features()

    def thresholds(self) -> dict[str, Any]:
        return self.not_.thresholds()


def _features(parts: Sequence[ConditionNode]) -> list[str]:
    seen: dict[str, None] = {}
    for part in parts:
        seen.update(dict.fromkeys(part.features()))
    return list(seen)


def _thresholds(parts: Sequence[ConditionNode]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        out.update(part.thresholds())
    return out


# --- the tagged union ---------------------------------------------------------------------------

NODES: dict[str, type[ConditionNode]] = {
    "all": AllOf,
    "any": AnyOf,
    "not": Not,
    **{cls.op: cls for cls in (Eq, Ne, Gt, Gte, Lt, Lte, Between, In)},
}
# A tag is the node's class name: pydantic puts it in an error's location, where it cannot be
# mistaken for a key of the file (those are lower case); field_path leaves it out.
TAGS = frozenset(cls.__name__ for cls in NODES.values())


def condition_kind(spec: Any) -> str | None:
    """The tag of the node ``spec`` describes: its combinator key, else its one operator key.

    >>> condition_kind({"feature": "x", "gte": 1}), condition_kind({"not": {}})
    ('Gte', 'Not')
    >>> condition_kind({"feature": "x", "gte": 1, "lt": 2}) is None  # two operators
    True
    """
    if isinstance(spec, ConditionNode):
        return type(spec).__name__
    if not isinstance(spec, Mapping):
        return None
    for key in COMBINATORS:
        if key in spec:
            return NODES[key].__name__
    ops = [key for key in spec if key in OPERATORS]
    return NODES[ops[0]].__name__ if len(ops) == 1 else None


_SHAPE = (
    f"expected exactly one operator of {sorted(OPERATORS)} next to 'feature',"
    f" or one of {list(COMBINATORS)}"
)

Condition = TypeAliasType(
    "Condition",
    Annotated[
        Annotated[AllOf, Tag("AllOf")]
        | Annotated[AnyOf, Tag("AnyOf")]
        | Annotated[Not, Tag("Not")]
        | Annotated[Eq, Tag("Eq")]
        | Annotated[Ne, Tag("Ne")]
        | Annotated[Gt, Tag("Gt")]
        | Annotated[Gte, Tag("Gte")]
        | Annotated[Lt, Tag("Lt")]
        | Annotated[Lte, Tag("Lte")]
        | Annotated[Between, Tag("Between")]
        | Annotated[In, Tag("In")],
        Discriminator(condition_kind, custom_error_type="condition", custom_error_message=_SHAPE),
    ],
)
for _node in (AllOf, AnyOf, Not):
    _node.model_rebuild()

_ADAPTER: TypeAdapter[ConditionNode] = TypeAdapter(Condition)


def field_path(loc: Sequence[int | str]) -> str:
    """A pydantic error location as written in the file: no union tags, ``[i]`` for indexes.

    >>> field_path(("when", "AllOf", "all", 1, "Gte", "gte"))
    'when.all[1].gte'
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in TAGS:
            out += f".{part}" if out else part
    return out


def error_message(err: ErrorDetails) -> str:
    """Pydantic's message for ``err``, in the policy file's words where they are clearer."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "condition":
        spec = err["input"]
        got = sorted(map(str, spec)) if isinstance(spec, Mapping) else type(spec).__name__
        return f"{err['msg']}; got {got}"
    if kind == "too_short" and ctx.get("min_length") == 1 and isinstance(err["input"], list):
        return "expected a non-empty list"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unexpected key"
    return err["msg"]


def compile_condition(spec: Any, path: str = "when") -> ConditionNode:
    """Build a condition from its YAML form; raises :class:`ConditionError`."""
    try:
        return _ADAPTER.validate_python(spec)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise ConditionError(field_path((path, *err["loc"])), error_message(err)) from None
