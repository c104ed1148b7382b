"""Where rules match events: rule files compiled into durable-rules.

- conditions.py  the `if:` language: parsed with pyparsing into an AST, compiled to the
                 engine's JSON, and evaluated in Python (contains, matches, explanations)
- loader.py      rules/*.yml -> RuleSet, validated against a closed schema (file:line:column)
- compiler.py    a rule's checks (trigger, to/from, scope, condition) -> durable-rules JSON
- matcher.py     which rules match one event's facts (one fact asserted and retracted)
- facts.py       the facts a rule sees (event, account, metrics), JSON-native, in event time
- enforcer.py    matched rules -> RuleFiring records and playbook runs (throttle, brake, priority)
- explain.py     why a rule did or did not match (`flask rules test|explain`)
- scheduled_rules.py `on: schedule` rules: run_due_schedules(now), idempotent per account and period
- backtest.py    replaying stored events through a candidate rule set, no side effects
- cli.py         `flask rules check|test|explain|reload|backtest|schedules`

`init_app(app)` registers the `flask rules ...` commands.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from app.matching.cli import rules_cli

    app.cli.add_command(rules_cli)
