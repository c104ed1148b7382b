"""What a loaded playbook is. Built by `app.playbooks.loader`, run by `app.playbooks.runner`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TaskSpec:
    title: str  # a sandboxed Jinja template over {account, event, params, run}
    instructions: str = ""  # Markdown template
    assignee: str = "csm"  # "csm", "manager", "csops", or a person's e-mail
    priority: str = "normal"  # urgent, high, normal, low
    due_in_days: int | None = None
    outcomes: tuple[str, ...] = ("done",)
    due_in_business_days: int | None = None  # Monday to Friday; exclusive with due_in_days


@dataclass(frozen=True)
class When:
    """Run the step only if an earlier task ended with one of these outcomes, and/or
    the account's facts (when the step is reached) have one of the listed values."""

    step: str | None
    outcome: tuple[str, ...] = ()
    account: tuple[tuple[str, tuple], ...] = ()  # (fact, allowed values)


@dataclass(frozen=True)
class Step:
    name: str
    position: int
    task: TaskSpec | None = None  # a manual step ...
    action: str | None = None  # ... or an automated one: a registered action type
    params: dict = field(default_factory=dict)  # the action's `with:`, templates allowed in strings
    after: tuple[str, ...] | None = None  # None: the previous step; () starts with the run
    when: When | None = None
    timeout: int | None = None  # seconds an automated step may run; None: the action type's default

    @property
    def kind(self) -> str:
        return "task" if self.task else "action"


@dataclass(frozen=True)
class Playbook:
    name: str
    steps: tuple[Step, ...]
    version: str  # content hash of the file
    description: str = ""
    file: str = ""
    # True: a new launch while a run of this playbook is open for the account is allowed.
    concurrent: bool = False
    # The run closes itself (with the note) when the account's health moves to one of these.
    close_on_health: tuple[str, ...] = ()
    close_note: str = ""

    def step(self, name: str) -> Step:
        return next(step for step in self.steps if step.name == name)

    def predecessors(self, step: Step) -> tuple[str, ...]:
        if step.after is not None:
            return step.after
        return (self.steps[step.position - 1].name,) if step.position > 0 else ()
