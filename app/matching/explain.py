"""Why a rule did or did not match some facts, check by check (for `flask rules test|explain`)."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from app.matching import compiler, conditions
from app.matching.model import Rule


class CheckResult(NamedTuple):
    label: str
    ok: bool
    detail: str  # the values the check read, e.g. "metrics.logins_7d is 12"


def explain_rule(rule: Rule, facts: dict) -> list[CheckResult]:
    """Every check of the rule, whether it holds for `facts`, and the values it read."""
    results = []
    for check in compiler.checks(rule):
        ok = conditions.evaluate(check.node, facts)
        values = conditions.values_of(check.node, facts)
        detail = ", ".join(f"{path} is {_show(value)}" for path, value in values.items())
        results.append(CheckResult(check.label, ok, detail))
    return results


def explain(matcher, facts: dict) -> list[dict]:
    """One entry per rule: matched by the production matcher, and the checks that failed."""
    matched = {rule.name for rule in matcher.match(facts, include_disabled=True)}
    report = []
    for rule in matcher.ruleset.rules:
        failed = [result for result in explain_rule(rule, facts) if not result.ok]
        report.append(
            {
                "rule": rule.name,
                "playbook": rule.playbook,
                "enabled": rule.enabled,
                "matched": rule.name in matched,
                "failed": failed,
            }
        )
    return report


def format_report(report: list[dict]) -> str:
    lines = []
    for entry in report:
        state = "" if entry["enabled"] else " (disabled)"
        if entry["matched"]:
            lines.append(f"MATCH  {entry['rule']}{state} -> playbook {entry['playbook']}")
        else:
            lines.append(f"no     {entry['rule']}{state}")
            for result in entry["failed"]:
                lines.append(f"         failed: {result.label}  ({result.detail})")
    return "\n".join(lines)


def _show(value: Any) -> str:
    return "missing" if value is None else json.dumps(value)
