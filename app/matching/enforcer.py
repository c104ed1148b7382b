"""Turning matched rules into playbook runs, leaving a RuleFiring record for each."""
from __future__ import annotations

import logging

from app import catalog
from app.extensions import db
from app.models import Account, Event, RuleFiring
from app.playbooks.runner import launch

log = logging.getLogger(__name__)


def enforce(facts: dict, event: Event, account: Account) -> list[RuleFiring]:
    """Match the facts against the live rules and launch what fired.

    When several rules would launch the same playbook for this event, the highest
    priority wins and the others are recorded as `superseded`.
    """
    current = catalog.current()
    firings = []
    launched_playbooks: set[str] = set()
    for rule in current.matcher.match(facts):  # sorted by priority, highest first
        firing = RuleFiring(rule=rule.name, ruleset_version=current.ruleset.version, event_id=event.id,
                            account_id=account.id, playbook=rule.playbook, facts=facts)
        if rule.playbook in launched_playbooks:
            firing.outcome = "superseded"
        else:
            run = launch(current.playbooks[rule.playbook], account, event=event, rule=rule.name,
                         params=rule.params)
            launched_playbooks.add(rule.playbook)
            if run is None:
                firing.outcome = "run_already_open"
            else:
                firing.run_id = run.id
        db.session.add(firing)
        firings.append(firing)
        log.info("rule %s fired on event %s (%s): %s", rule.name, event.id, account.id, firing.outcome)
    return firings
