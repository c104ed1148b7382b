"""Rules as durable-rules' JSON ruleset definition, and facts in the shape it matches.

The engine sees one flat fact per event: nested keys are joined with "__"
(`account.segment` -> `account__segment`), so each condition is a plain field test.
Only equalities are generated: the engine has no `$in` (a list becomes an `$or` of
`$eq`s), and `$neq` on a missing field does not match, so a negation would need
`$nex` beside it; keep that in mind before adding one.
"""
from __future__ import annotations

from typing import Any

from app.matching.model import Rule, RuleSet

# Trigger name in a rule file -> event type it listens to.
TRIGGERS = {"health_changed": "account.health_changed"}
# Fields whose values are health statuses: matched lower-case, like the rules store them.
STATUS_FIELDS = ("to", "from")
SEP = "__"


def definition(ruleset: RuleSet) -> dict[str, dict]:
    """The engine definition of the enabled rules: {rule name: {"all": [{"m": condition}]}}.

    Built fresh on every call because the engine mutates what it is given. The caller
    adds each rule's `run`.
    """
    return {rule.name: {"all": [{"m": condition(rule)}]} for rule in ruleset.rules if rule.enabled}


def condition(rule: Rule) -> dict:
    tests = [{"type": TRIGGERS[rule.trigger]}]
    tests += _one_of("to", rule.to)
    tests += _one_of("from", rule.from_)
    for name, values in sorted(rule.account.items()):
        tests += _one_of(f"account{SEP}{name}", values)
    return tests[0] if len(tests) == 1 else {"$and": tests}


def _one_of(key: str, values: tuple) -> list[dict]:
    if not values:  # no constraint: any value, or none at all
        return []
    if len(values) == 1:
        return [{key: values[0]}]
    return [{"$or": [{key: value} for value in values]}]


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
