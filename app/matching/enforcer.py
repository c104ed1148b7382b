"""Turning matched rules into playbook runs, leaving a RuleFiring record for each.

For each rule the matcher returns (highest priority first), in this order:
disabled (file or admin) -> no record; paused by its brake -> `paused`; its playbook already
launched for this event by a higher-priority rule -> `superseded`; launched for the same
group within `throttle.once_within` (event time) -> `throttled`; params that do not render
-> `param_error`; over its budget -> the rule pauses itself, `braked`; else the playbook is
launched (`launched`, or `run_already_open` when a run of it is open for the account).
Callers commit; nothing here commits.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from jinja2 import TemplateError
from sqlalchemy import func, select

from app import audit, catalog
from app.extensions import db
from app.matching.conditions import lookup
from app.matching.model import Rule
from app.models import Account, Event, PlaybookRun, RuleFiring
from app.models.rule_state import RuleState
from app.models.types import utcnow
from app.playbooks.runner import launch
from app.templating import render_params

log = logging.getLogger(__name__)


def enforce(
    facts: dict, event: Event, account: Account, open_runs: list[PlaybookRun] | None = None
) -> list[RuleFiring]:
    """Match the facts against the live rules and launch what fired.

    When several rules would launch the same playbook for this event, the highest
    priority wins and the others are recorded as `superseded`. `open_runs`: the account's
    open runs if the caller has them (see `launch`).
    """
    current = catalog.current()
    matched = current.matcher.match(facts, include_disabled=True)
    if not matched:
        return []
    states = rule_states([rule.name for rule in matched])
    firings = []
    launched_playbooks: set[str] = set()
    for rule in matched:
        state = states.get(rule.name)
        if not is_enabled(rule, state):
            continue
        firing = RuleFiring(
            rule=rule.name,
            ruleset_version=current.ruleset.version,
            event_id=event.id,
            account_id=account.id,
            playbook=rule.playbook,
            facts=facts,
            occurred_at=event.occurred_at,
            throttle_key=throttle_key(rule, facts),
        )
        firing.outcome, firing.detail = _decide(rule, state, states, facts, event, launched_playbooks)
        if firing.outcome == "launch":
            run = launch(
                current.playbooks[rule.playbook],
                account,
                event=event,
                rule=rule.name,
                params=_params(rule, facts),
                open_runs=open_runs,
            )
            launched_playbooks.add(rule.playbook)
            firing.outcome = "launched" if run is not None else "run_already_open"
            firing.run_id = run.id if run is not None else None
        db.session.add(firing)
        firings.append(firing)
        log.info(
            "rule %s fired on event %s (%s): %s%s",
            rule.name,
            event.id,
            account.id,
            firing.outcome,
            f" ({firing.detail})" if firing.detail else "",
        )
    return firings


def rule_states(names: list[str]) -> dict[str, RuleState]:
    if not names:
        return {}
    return {state.rule: state for state in db.session.scalars(select(RuleState).where(RuleState.rule.in_(names)))}


def is_enabled(rule: Rule, state: RuleState | None) -> bool:
    """The file's `enabled:`, unless CS ops switched the rule in the admin."""
    return state.enabled if state is not None and state.enabled is not None else rule.enabled


def throttle_key(rule: Rule, facts: dict) -> str | None:
    if rule.throttle is None:
        return None
    return json.dumps([lookup(facts, path) for path in rule.throttle.group_by], default=str)[:500]


def _decide(rule: Rule, state, states: dict, facts: dict, event: Event, launched: set[str]) -> tuple[str, str | None]:
    if state is not None and state.paused_at is not None:
        return "paused", state.paused_reason
    if rule.playbook in launched:
        return "superseded", None
    if rule.throttle is not None and _throttled(rule, throttle_key(rule, facts), event):
        return "throttled", f"launched for the same {', '.join(rule.throttle.group_by)} within {rule.throttle.text}"
    try:
        _params(rule, facts)
    except TemplateError as exc:
        return "param_error", f"params: {exc}"
    if rule.brake is not None:
        recent = _recent_launches(rule)
        if recent >= rule.brake.max:
            reason = (
                f"over budget: {recent} launches in the last {rule.brake.per} "
                f"(brake: max {rule.brake.max} per {rule.brake.per}); resume it in the admin"
            )
            pause(rule.name, reason, states)
            return "braked", reason
    return "launch", None


def _params(rule: Rule, facts: dict) -> dict:
    # Sandboxed, StrictUndefined: a name that is not in the facts is an error, never a blank.
    return render_params(rule.params, facts) if rule.params else {}


def _throttled(rule: Rule, key: str | None, event: Event) -> bool:
    assert rule.throttle is not None  # asked only about a rule with a throttle
    at = event.occurred_at
    window = timedelta(seconds=rule.throttle.seconds)
    found = db.session.execute(
        select(RuleFiring.id)
        .where(
            RuleFiring.rule == rule.name,
            RuleFiring.throttle_key == key,
            RuleFiring.outcome == "launched",
            RuleFiring.occurred_at > at - window,
            RuleFiring.occurred_at < at + window,
        )
        .limit(1)
    ).first()
    return found is not None


def _recent_launches(rule: Rule) -> int:
    """Launches within the brake's window, counted up to its max: the brake only needs to know
    whether the max is reached, and the count stays bounded however busy the rule is."""
    assert rule.brake is not None  # asked only about a rule with a brake
    since = utcnow() - timedelta(seconds=rule.brake.seconds)
    recent = (
        select(RuleFiring.id)
        .where(RuleFiring.rule == rule.name, RuleFiring.outcome == "launched", RuleFiring.fired_at > since)
        .limit(rule.brake.max)
        .subquery()
    )
    return db.session.execute(select(func.count()).select_from(recent)).scalar_one()


def switch(name: str, action: str, actor: str) -> str | None:
    """A person's switch on a rule: `enable` or `disable` (overriding the file's `enabled:`),
    or `resume` (lifting the brake's pause). Records who and an audit entry; the caller commits.
    Returns the summary, or None when there was nothing to do (resume of a rule not paused)."""
    state = db.session.get(RuleState, name)
    if state is None:
        state = RuleState(rule=name)
        db.session.add(state)
    if action == "enable":
        state.enabled, summary, audited = True, f"Rule {name} enabled", "rule.enabled"
    elif action == "disable":
        state.enabled, summary, audited = False, f"Rule {name} disabled", "rule.disabled"
    elif action == "resume":
        if state.paused_at is None:
            return None
        summary, audited = f"Rule {name} resumed (was paused: {state.paused_reason})", "rule.resumed"
        state.paused_at = state.paused_reason = None
    else:
        raise ValueError(f"unknown rule switch {action!r}")
    state.updated_by = actor
    audit.record(actor, audited, "rule", name, summary=summary)
    return summary


def pause(name: str, reason: str, states: dict | None = None) -> RuleState:
    """The brake: the rule launches nothing more until a person resumes it."""
    state = (states or {}).get(name) or db.session.get(RuleState, name)
    if state is None:
        state = RuleState(rule=name)
        db.session.add(state)
    state.paused_at, state.paused_reason, state.updated_by = utcnow(), reason, "brake"
    if states is not None:
        states[name] = state
    audit.record("system", "rule.paused", "rule", name, summary=f"Rule {name} paused itself: {reason}")
    log.warning("rule %s paused by its brake: %s", name, reason)
    return state
