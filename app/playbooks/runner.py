"""Launching playbook runs and moving them on as their steps finish.

A run is a small DAG: each step starts when the steps it comes `after` have ended.
Manual steps become Tasks; automated steps become RQ jobs (enqueued after commit).
A step whose `when:` does not hold, or that comes after a skipped step, is skipped.
Callers commit; nothing here commits.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import bindparam, select

from app.accounts import account_facts
from app.extensions import db
from app.models import Account, Event, PlaybookRun, RunStep, Task
from app.models.types import utcnow
from app.playbooks.actions import registry
from app.playbooks.calendar import add_business_days
from app.playbooks.dispatch import after_commit
from app.playbooks.model import Playbook, Step
from app.playbooks.templating import render

OPEN_RUN = ("running", "waiting")
ENDED_OK = ("succeeded", "done")
ENDED_NOT_RUN = ("skipped", "cancelled")


OPEN_RUNS = select(PlaybookRun).where(PlaybookRun.account_id == bindparam("account_id"),
                                      PlaybookRun.status.in_(OPEN_RUN))  # built once: every status change


def open_runs_of(account_id: str) -> list[PlaybookRun]:
    """The account's open runs. process_event reads them once per status change, under the
    account's lock, for on_health_change and launch alike."""
    return list(db.session.execute(OPEN_RUNS, {"account_id": account_id}).scalars())


def launch(playbook: Playbook, account: Account, *, event: Event | None = None, rule: str | None = None,
           params: dict | None = None, open_runs: list[PlaybookRun] | None = None) -> PlaybookRun | None:
    """Start a run; None when one of this playbook is already open for the account
    (unless the playbook says `concurrent: true`).

    `open_runs`: the account's open runs, when the caller has read them already under the
    account's lock (process_event does); the new run is added to it.
    """
    if not playbook.concurrent:
        runs = open_runs if open_runs is not None else open_runs_of(account.id)
        if any(r.playbook == playbook.name and r.status in OPEN_RUN for r in runs):
            return None
    run = PlaybookRun(
        playbook=playbook.name, playbook_version=playbook.version, account_id=account.id, rule=rule,
        trigger_event_id=event.id if event else None, triggered_at=event.occurred_at if event else None,
        status="running", started_at=utcnow(),
        context={"event": _event_facts(event), "params": params or {}},
    )
    run.steps = [RunStep(name=step.name, position=step.position, kind=step.kind, action=step.action,
                         status="pending") for step in playbook.steps]
    db.session.add(run)
    # The first steps are decided before the rows are written, so the run and its steps go in
    # with their first statuses (no UPDATE after the INSERT); what needs their ids (the tasks,
    # whose templates may show the run's id, and the jobs) comes after the flush.
    started: list[tuple[RunStep, Step]] = []
    advance(run, playbook, account, started=started)
    db.session.flush()
    for row, spec in started:
        _begin(run, row, spec, account)
    if open_runs is not None:
        open_runs.append(run)
    return run


def advance(run: PlaybookRun, playbook: Playbook, account: Account,
            started: list[tuple[RunStep, Step]] | None = None) -> None:
    """Start every step whose predecessors have ended; close the run when all have.

    With `started`, a run not yet written (launch): the steps get their statuses and are
    listed there for the caller to begin (task, job) once they have ids."""
    if run.status not in OPEN_RUN:
        return
    steps = {step.name: step for step in run.steps}
    changed = True
    while changed:
        changed = False
        for spec in playbook.steps:
            row = steps[spec.name]
            if row.status != "pending":
                continue
            before = [steps[name] for name in playbook.predecessors(spec)]
            if any(b.status == "failed" for b in before):
                continue
            if not all(b.status in ENDED_OK + ENDED_NOT_RUN for b in before):
                continue
            if any(b.status in ENDED_NOT_RUN for b in before) or not _when_holds(spec, steps, account):
                row.status, row.finished_at = "skipped", utcnow()
            else:
                _start(row, spec, account)
                if started is None:
                    _begin(run, row, spec, account)
                else:
                    started.append((row, spec))
            changed = True
    _update_run_status(run)


def _when_holds(spec: Step, steps: dict[str, RunStep], account: Account) -> bool:
    when = spec.when
    if when is None:
        return True
    if when.step is not None and steps[when.step].outcome not in when.outcome:
        return False
    if when.account:
        facts = account_facts(account)
        return all(facts.get(fact) in values for fact, values in when.account)
    return True


def _start(row: RunStep, spec: Step, account: Account) -> None:
    """The step's new status: an automated step is queued, a manual one open for its assignee."""
    row.started_at = utcnow()
    if spec.task is None:
        row.status, row.enqueued_at = "queued", utcnow()
        return
    row.status, row.assignee, row.due_at = "open", resolve_assignee(spec.task.assignee, account), due_date(spec.task)


def _begin(run: PlaybookRun, row: RunStep, spec: Step, account: Account) -> None:
    """A started step's work: its job (enqueued after commit), or its task."""
    if spec.task is None:
        action = registry.get(spec.action)
        after_commit(db.session, "step", row.id, timeout=spec.timeout or (action.timeout if action else None))
        return
    context = template_context(run, account)
    task_spec = spec.task
    trigger = db.session.get(Event, run.trigger_event_id) if run.trigger_event_id else None
    db.session.add(Task(
        account_id=account.id, run_id=run.id, step_id=row.id,
        title=render(task_spec.title, context).strip(),
        instructions=render(task_spec.instructions, context) if task_spec.instructions else None,
        assignee=row.assignee, assignee_role=task_spec.assignee if "@" not in task_spec.assignee else None,
        priority=task_spec.priority, status="open", outcomes=list(task_spec.outcomes), due_at=row.due_at,
        rule=run.rule, event_id=trigger.id if trigger else None,
    ))


def due_date(task_spec, start=None):
    """When a task of this spec falls due: N days, or N business days, from `start` (now)."""
    start = start or utcnow()
    if task_spec.due_in_days is not None:
        return start + timedelta(days=task_spec.due_in_days)
    if task_spec.due_in_business_days is not None:
        return add_business_days(start, task_spec.due_in_business_days)
    return None


def resolve_assignee(role: str, account: Account) -> str | None:
    """The person a role means for this account; None leaves the task for CS ops to assign."""
    if "@" in role:
        return role
    if role == "csm":
        return account.csm or account.manager
    if role == "manager":
        return account.manager or account.csm
    return None  # csops: the shared queue


def template_context(run: PlaybookRun, account: Account) -> dict:
    return {
        "account": account_facts(account),
        "event": run.context.get("event") or {},
        "params": run.context.get("params") or {},
        "run": {"id": run.id, "playbook": run.playbook, "rule": run.rule},
    }


def _update_run_status(run: PlaybookRun) -> None:
    statuses = [step.status for step in run.steps]
    if "failed" in statuses:
        failed = next(step for step in run.steps if step.status == "failed")
        run.status, run.status_note = "failed", f"step {failed.name}: {failed.error or 'failed'}"
        run.finished_at = run.finished_at or utcnow()
    elif all(status in ENDED_OK + ENDED_NOT_RUN for status in statuses):
        run.status, run.finished_at = "completed", utcnow()
    elif any(status in ("queued", "running") and not step.wake_at for status, step in zip(statuses, run.steps)):
        run.status = "running"
    else:
        run.status = "waiting"  # on people (open tasks) or on time (waits)


def _event_facts(event: Event | None) -> dict:
    if event is None:
        return {}
    payload = event.payload or {}
    return {"id": event.external_id, "type": event.type, "occurred_at": event.occurred_at.isoformat(),
            "health": payload.get("health") or {}, "properties": payload.get("properties") or {}}


def cancel_run(run: PlaybookRun, note: str) -> None:
    """Close a run that no longer makes sense; its open tasks are cancelled.

    Queued and waiting automated steps are skipped: their jobs, when they come, find
    the run cancelled and do nothing. A step running right now finishes its action.
    """
    run.status, run.status_note, run.finished_at = "cancelled", note, utcnow()
    for step in run.steps:
        if step.status in ("pending", "queued", "open", "snoozed"):
            step.status = "cancelled" if step.kind == "task" else "skipped"
            step.finished_at, step.wake_at = step.finished_at or utcnow(), None
    for task in db.session.execute(select(Task).where(Task.run_id == run.id, Task.status.in_(("open", "snoozed")))).scalars():
        task.status, task.note = "cancelled", note
