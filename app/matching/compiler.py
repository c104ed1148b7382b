"""Rules as durable-rules' JSON ruleset definition, and facts in the shape it matches.

The engine sees one flat fact per event: nested keys are joined with "__"
(`account.segment` -> `account__segment`), so each condition is a plain field test.
A rule is a list of checks (trigger, to/from, scope, the `if:` line's `and` parts), each
an AST of `app.matching.conditions`. The engine matches every check it can; a check with
`contains` or `matches` is evaluated in Python on the rules the engine matched.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from app.matching import conditions as c
from app.matching.model import Rule, RuleSet

# Fields whose values are health statuses: matched lower-case, like the rules store them.
STATUS_FIELDS = tuple(c.field(path) for path in c.STATUS_FIELDS)
SEP = c.SEP


class Check(NamedTuple):
    label: str  # what a person reads in an explanation, e.g. `to in ["red"]`
    node: Any  # a conditions AST node


def _quoted(values) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def checks(rule: Rule) -> list[Check]:
    """Everything that must hold for the rule to fire, in the order it is explained."""
    found = [Check(f"on: {rule.trigger}", c.Cmp("type", "==", rule.event_type, text=f'type == "{rule.event_type}"'))]
    if rule.schedule is not None:
        found.append(Check("schedule", c.Cmp("schedule.rule", "==", rule.name, text=f'schedule.rule == "{rule.name}"')))
    for path, values in (
        ("to", rule.to),
        ("from", rule.from_),
        ("account.segment", rule.segments),
        ("account.lifecycle_stage", rule.lifecycle_stages),
    ):
        if values:
            text = f"{path} in {_quoted(values)}"
            found.append(Check(text, c.In(path, tuple(values), text=text)))
    for name, values in sorted(rule.account.items()):
        if values:
            text = f"account.{name} in {_quoted(values)}"
            found.append(Check(text, c.In(f"account.{name}", tuple(values), text=text)))
    if rule.condition is not None:
        found += [Check(node.text or "if", node) for node in c.conjuncts(rule.condition)]
    return found


def python_checks(rule: Rule) -> list[Any]:
    """The checks the engine cannot do (contains, matches): evaluated after it matched."""
    return [check.node for check in checks(rule) if not c.engine_compatible(check.node)]


def definition(ruleset: RuleSet, include_disabled: bool = False) -> dict[str, dict]:
    """The engine definition: {rule name: {"all": [{"m": condition}]}}.

    Built fresh on every call because the engine mutates what it is given. The caller
    adds each rule's `run`.
    """
    return {rule.name: {"all": [{"m": condition(rule)}]} for rule in ruleset.rules if rule.enabled or include_disabled}


def condition(rule: Rule) -> dict:
    tests = [c.to_engine(check.node) for check in checks(rule) if c.engine_compatible(check.node)]
    return tests[0] if len(tests) == 1 else {"$and": tests}


def flatten(facts: dict) -> dict[str, Any]:
    """One flat dict of the JSON-native scalar facts; None, lists and other objects are dropped.

    Dropping None matters: a field that is absent never equals a value, which is what
    "unknown" should mean, while a null would reach the engine as a value.
    """
    flat: dict[str, Any] = {}
    _flatten(facts, "", flat)
    for key in STATUS_FIELDS:
        if isinstance(flat.get(key), str):
            flat[key] = flat[key].lower()
    return flat


def _flatten(value: Any, prefix: str, out: dict) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}{SEP}{key}" if prefix else str(key), out)
    elif isinstance(value, (str, bool, int, float)) and prefix:
        out[prefix] = value
