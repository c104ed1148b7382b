"""Which rules match an event: the rule set compiled into durable-rules, one fact per event.

Each event is asserted as a fact under one fixed session id and retracted right after,
so every matching rule fires, and the engine keeps no state between events (it allows
at most 1,024 live sessions per ruleset, so a session per account cannot work).
"""

from __future__ import annotations

import itertools
import threading
import uuid

import durable_rules_engine
from durable.engine import Host, MessageNotHandledException

from app.matching import compiler, conditions
from app.matching.model import Rule, RuleSet

SID = "triage"
READY = "__triage_ready__"  # the internal priming rule; rule names start with a letter or digit


class _QuietHost(Host):
    """A Host without the two timer threads the default one starts and never stops."""

    def _run(self) -> None:
        pass


class Matcher:
    """Matches event facts against a rule set; safe to share between threads."""

    def __init__(self, ruleset: RuleSet):
        self.ruleset = ruleset
        self._rules = {rule.name: rule for rule in ruleset.rules}
        # Checks the engine cannot do (contains, matches), per rule that has any.
        self._python = {rule.name: checks for rule in ruleset.rules if (checks := compiler.python_checks(rule))}
        # The C engine never releases the GIL and lost actions under concurrent calls.
        self._lock = threading.Lock()
        self._fired: list[str] = []  # filled by the rule callbacks during one assertion
        self._closed = False
        self._ids = itertools.count(1)
        # Engine names are global per Host and may not be registered twice.
        self._name = f"triage_{uuid.uuid4().hex}"
        self._host = _QuietHost()
        self._engine = None
        # Disabled rules are compiled too: CS ops can enable one from the admin (RuleState).
        rules = compiler.definition(ruleset, include_disabled=True)
        if rules:  # an empty ruleset matches nothing; no need for the engine
            for name, rule in rules.items():
                rule["run"] = _recorder(self._fired, name)
            # A rule of our own that only the priming fact matches: the session runs one action
            # at once, which makes delete_state safe in close() (it segfaults on a session that
            # never acted, and without it a reload leaves about 1 MB of session state behind).
            rules[READY] = {"all": [{"m": {READY: 1}}], "run": _recorder(self._fired, READY)}
            self._host.register_rulesets({self._name: rules})
            self._engine = self._host.get_ruleset(self._name)
            prime = {"sid": SID, "id": READY, READY: 1}
            self._host.assert_fact(self._name, dict(prime))
            self._host.retract_fact(self._name, dict(prime))
            self._fired.clear()

    def match(self, facts: dict, include_disabled: bool = False) -> list[Rule]:
        """The rules whose conditions hold for `facts`, highest priority first.

        Rules disabled in their file are left out unless `include_disabled` (the enforcer
        decides with the admin's overrides).
        """
        fact = compiler.flatten(facts)
        with self._lock:
            if self._closed:
                raise RuntimeError("this Matcher was closed")
            if self._engine is None:
                return []
            # A fresh id per assertion: two identical events must not be one fact.
            fact.update(id=f"f{next(self._ids)}", sid=SID)
            self._fired.clear()
            try:
                self._host.assert_fact(self._name, fact)
            except MessageNotHandledException:
                pass  # no rule matched
            finally:
                fired = list(self._fired)
                self._fired.clear()
                try:
                    self._host.retract_fact(self._name, fact)
                except MessageNotHandledException:
                    pass
        matched = [
            rule
            for rule in (self._rules[name] for name in dict.fromkeys(fired))
            if (include_disabled or rule.enabled)
            and all(conditions.evaluate(node, facts) for node in self._python.get(rule.name, ()))
        ]
        return sorted(matched, key=lambda rule: (-rule.priority, rule.name))

    def close(self) -> None:
        """Free the engine's memory for this rule set (a reload builds a new Matcher)."""
        with self._lock:
            self._closed = True
            if self._engine is not None:
                # delete_ruleset alone leaves the session's state behind; the session has acted
                # (the priming fact in __init__), so delete_state is safe.
                self._engine.delete_state(SID)
                durable_rules_engine.delete_ruleset(self._engine._handle)
                self._engine = None

    def __del__(self) -> None:
        # Unreachable means no thread is inside match(), so freeing is safe.
        try:
            self.close()
        except Exception:
            pass


def _recorder(fired: list[str], name: str):
    # Only record the name: the engine swallows exceptions raised in a callback, so the
    # real work happens in the caller, keyed by the rule name. Capturing the list rather
    # than the Matcher avoids a reference cycle, so a dropped Matcher is freed at once.
    def run(c) -> None:
        fired.append(name)

    return run
