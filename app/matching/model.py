"""What a loaded rule is. Built by `app.matching.loader`, read by the matcher and the enforcer."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rule:
    name: str  # unique across the rule set
    playbook: str  # name of a playbook in playbooks/
    trigger: str  # "health_changed" (more triggers come with the rule-language issue)
    to: tuple[str, ...] = ()  # statuses that fire; empty means any
    from_: tuple[str, ...] = ()  # previous statuses (the server's history); empty means any
    # account field -> allowed values, e.g. {"segment": ("enterprise",)}
    account: dict[str, tuple] = field(default_factory=dict)
    description: str = ""
    owner: str = ""
    enabled: bool = True
    priority: int = 0  # higher wins when two rules launch the same playbook for one event
    params: dict = field(default_factory=dict)  # passed to the playbook run
    file: str = ""
    line: int = 0


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    version: str  # content hash of the rule files, recorded with every firing

    def by_name(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)
