"""What a loaded rule is. Built by `app.matching.loader`, read by the matcher and the enforcer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HEALTH_TRIGGER = "health_changed"
SCHEDULE_TRIGGER = "schedule"
SCHEDULE_EVENT = "schedule.due"  # the type of the internal event a due schedule creates


@dataclass(frozen=True)
class Throttle:
    """At most one launch per group (e.g. per account) within a window of event time."""

    seconds: int
    text: str  # as written, e.g. "30 days"
    group_by: tuple[str, ...] = ("account.id",)


@dataclass(frozen=True)
class Brake:
    """A budget of launches per wall-clock window; over it the rule pauses itself."""

    max: int
    seconds: int
    per: str  # minute, hour, day


@dataclass(frozen=True)
class Schedule:
    """`monthly` (once per calendar month per account) or N days before `renewal_date`."""

    kind: str  # "monthly" | "before_renewal"
    days: int = 0


@dataclass(frozen=True)
class Rule:
    name: str  # unique across the rule set
    playbook: str  # name of a playbook in playbooks/
    trigger: str  # "health_changed", "schedule", or an event type such as "usage.daily"
    to: tuple[str, ...] = ()  # statuses that fire; empty means any
    from_: tuple[str, ...] = ()  # previous statuses (the server's history); empty means any
    # account field -> allowed values, e.g. {"segment": ("enterprise",)}
    account: dict[str, tuple] = field(default_factory=dict)
    description: str = ""
    owner: str = ""
    enabled: bool = True
    priority: int = 0  # higher wins when two rules launch the same playbook for one event
    params: dict = field(default_factory=dict)  # templates rendered from the facts, passed to the run
    file: str = ""
    line: int = 0
    # The language (app.matching.conditions): the `if:` line, parsed.
    condition: Any = None
    condition_text: str = ""
    segments: tuple[str, ...] = ()  # scope: empty means every segment
    lifecycle_stages: tuple[str, ...] = ()
    throttle: Throttle | None = None
    brake: Brake | None = None
    schedule: Schedule | None = None

    @property
    def event_type(self) -> str:
        """The event type this rule listens to."""
        if self.trigger == HEALTH_TRIGGER:
            return "account.health_changed"
        if self.trigger == SCHEDULE_TRIGGER:
            return SCHEDULE_EVENT
        return self.trigger


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    version: str  # content hash of the rule files, recorded with every firing

    def by_name(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)
