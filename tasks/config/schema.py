"""A small declarative schema for FlowGate's YAML config.

Validation collects every problem at once (never stops at the first), each with the key path in
dotted form (`profiles.cost.litellm_settings.num_retries`, `models[2].name`), what was expected and
what was found. Unknown keys get a "did you mean" hint. `partial=True` validates an overlay
(config/local.yaml, a profile): same types, nothing required, no defaults filled in.
"""

from __future__ import annotations

import contextlib
import difflib
from dataclasses import dataclass, field

from .valuerules import NameRule, foreign_type, number_problem, plain_problems, text_problem

_MISSING = object()
MAX_PROBLEMS = 50  # beyond this, a report helps nobody (and 50 MB of typos took minutes to list)


@dataclass
class Problem:
    path: tuple
    message: str

    @property
    def dotted(self) -> str:
        return dotted(self.path)


class TooManyProblems(Exception):
    pass


class Problems(list):
    """A problem list that stops validation once it holds MAX_PROBLEMS (see `collecting`)."""

    truncated = False

    def append(self, item) -> None:
        super().append(item)
        if len(self) >= MAX_PROBLEMS:
            raise TooManyProblems

    @contextlib.contextmanager
    def collecting(self):
        try:
            yield self
        except TooManyProblems:
            self.truncated = True


def dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    foreign = foreign_type(value)
    if foreign:
        return foreign
    from ..base.redact import masked_if_key

    text = repr(masked_if_key(value) if isinstance(value, str) else value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


class Spec:
    default: object = _MISSING
    required: bool = False

    def check(self, value, path, problems, partial):  # pragma: no cover - interface
        raise NotImplementedError


@dataclass
class Scalar(Spec):
    kind: type | tuple
    default: object = _MISSING
    required: bool = False
    nullable: bool = False
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    what: str | None = None  # how to describe the expectation, e.g. "a port number 1-65535"
    name: NameRule | None = None  # a name's strict character set (models, profiles, env vars)

    def check(self, value, path, problems, partial):
        if value is None and self.nullable:
            return None
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if ok and self.name is not None:
            ok = self.name.ok(value)  # the strict set says it all (and rules out control characters)
        elif ok and (why := number_problem(value) or (text_problem(value) if isinstance(value, str) else None)):
            problems.append(Problem(path, f"{why} (expected {self.expectation()})"))
            return value
        if ok and self.choices is not None and value not in self.choices:
            ok = False
        if ok and self.min is not None and value < self.min:
            ok = False
        if ok and self.max is not None and value > self.max:
            ok = False
        if not ok:
            problems.append(Problem(path, f"expected {self.expectation()}, found {describe(value)}"))
        return value

    def expectation(self) -> str:
        if self.what:
            return self.what
        if self.name is not None:
            return self.name.what
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        text = " or ".join(names.get(k, k.__name__) for k in kinds if not (k is int and float in kinds))
        if self.min is not None and self.max is not None:
            text += f" from {self.min} to {self.max}"
        elif self.min is not None:
            text += f" of at least {self.min}"
        return text + (" (or null)" if self.nullable else "")


@dataclass
class Mapping(Spec):
    fields: dict
    default: object = field(default_factory=dict)
    required: bool = False
    overlay: bool = False  # always validated as a partial overlay (profiles)
    complete: bool = False  # never partial: lists replace whole, so their items must be complete

    def check(self, value, path, problems, partial):
        partial = (partial or self.overlay) and not self.complete
        value = _mapping(value, path, problems)
        if value is None:
            return {}
        out = {}
        for key, val in value.items():
            spec = self.fields.get(key)
            if spec is None:
                near = difflib.get_close_matches(str(key), [str(k) for k in self.fields], n=1, cutoff=0.6)
                hint = f" (did you mean '{near[0]}'?)" if near else f" (known keys: {', '.join(self.fields)})"
                problems.append(Problem(path + (key,), f"unknown key{hint}"))
                continue
            out[key] = spec.check(val, path + (key,), problems, partial)
        if partial:
            return out
        for key, spec in self.fields.items():
            if key in out:
                continue
            if spec.required:
                problems.append(Problem(path + (key,), "missing (this key is required)"))
            elif isinstance(spec, Mapping):
                out[key] = spec.check({}, path + (key,), problems, partial)
            elif spec.default is not _MISSING:
                out[key] = _copy(spec.default)
        return out


@dataclass
class FreeMapping(Spec):
    """Pass-through settings: any keys; a few well-known ones are type-checked."""

    known: dict = field(default_factory=dict)
    default: object = field(default_factory=dict)
    required: bool = False

    def check(self, value, path, problems, partial):
        value = _mapping(value, path, problems)
        if value is None:
            return {}
        plain_problems(value, path, lambda where, why: problems.append(Problem(where, why)))
        for key, spec in self.known.items():
            if key in value:
                value = dict(value)
                value[key] = spec.check(value[key], path + (key,), problems, partial)
        return value


@dataclass
class ListOf(Spec):
    item: Spec
    default: object = field(default_factory=list)
    required: bool = False
    nullable: bool = False

    def check(self, value, path, problems, partial):
        if value is None and self.nullable:
            return None
        if not isinstance(value, list):
            problems.append(Problem(path, f"expected a list, found {describe(value)}"))
            return value
        return [self.item.check(v, path + (i,), problems, partial) for i, v in enumerate(value)]


@dataclass
class MapOf(Spec):
    """A mapping from user-chosen names (e.g. profile names) to values of one spec."""

    item: Spec
    default: object = field(default_factory=dict)
    required: bool = False
    key_what: str = "a name"
    key_rule: NameRule | None = None  # a strict character set for the keys

    def check(self, value, path, problems, partial):
        value = _mapping(value, path, problems)
        if value is None:
            return {}
        out = {}
        for key, val in value.items():
            if not isinstance(key, str) or not key or (self.key_rule and not self.key_rule.ok(key)):
                what = self.key_rule.what if self.key_rule else self.key_what
                problems.append(Problem(path + (key,), f"expected {what}, found {describe(key)}"))
                continue
            out[key] = self.item.check(val, path + (key,), problems, partial)
        return out


def _mapping(value, path, problems) -> dict | None:
    """`value` as a mapping: null counts as empty; anything else is a problem (None returned)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(Problem(path, f"expected a mapping, found {describe(value)}"))
        return None
    return value


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
