"""Launching playbook runs, carrying out their automated steps, and moving them on.

A run is a small DAG: each step starts when the steps it comes `after` have ended.
Manual steps become Tasks; automated steps become RQ jobs (enqueued after commit), which
`run_step` carries out (the step state machine). A step whose `when:` does not hold, or that
comes after a skipped step, is skipped. Callers commit; nothing here commits, except
`run_step`, which is a job's whole transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from rq import get_current_job
from sqlalchemy import bindparam, select

from app import catalog
from app.accounts import account_facts
from app.extensions import db
from app.jobs import after_commit, enqueue_step_wake
from app.models import Account, Event, PlaybookRun, RunStep, Task
from app.models.types import utcnow
from app.playbooks.actions import registry
from app.playbooks.actions.context import ActionContext, ActionWait
from app.playbooks.calendar import add_business_days
from app.playbooks.leases import StepLease
from app.playbooks.model import Playbook, Step, TaskSpec
from app.templating import render, render_params

log = logging.getLogger(__name__)
OPEN_RUN = ("running", "waiting")
ENDED_OK = ("succeeded", "done")
ENDED_NOT_RUN = ("skipped", "cancelled")


OPEN_RUNS = select(PlaybookRun).where(
    PlaybookRun.account_id == bindparam("account_id"), PlaybookRun.status.in_(OPEN_RUN)
)  # built once: every status change


def open_runs_of(account_id: str) -> list[PlaybookRun]:
    """The account's open runs. process_event reads them once per status change, under the
    account's lock, for on_health_change and launch alike."""
    return list(db.session.execute(OPEN_RUNS, {"account_id": account_id}).scalars())


def launch(
    playbook: Playbook,
    account: Account,
    *,
    event: Event | None = None,
    rule: str | None = None,
    params: dict | None = None,
    open_runs: list[PlaybookRun] | None = None,
) -> PlaybookRun | None:
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
        playbook=playbook.name,
        playbook_version=playbook.version,
        account_id=account.id,
        rule=rule,
        trigger_event_id=event.id if event else None,
        triggered_at=event.occurred_at if event else None,
        status="running",
        started_at=utcnow(),
        context={"event": _event_facts(event), "params": params or {}},
    )
    run.steps = [
        RunStep(name=step.name, position=step.position, kind=step.kind, action=step.action, status="pending")
        for step in playbook.steps
    ]
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


def advance(
    run: PlaybookRun, playbook: Playbook, account: Account, started: list[tuple[RunStep, Step]] | None = None
) -> None:
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
        action = registry.get(spec.action) if spec.action is not None else None
        after_commit(db.session, "step", row.id, timeout=spec.timeout or (action.timeout if action else None))
        return
    context = template_context(run, account)
    task_spec = spec.task
    trigger = db.session.get(Event, run.trigger_event_id) if run.trigger_event_id else None
    db.session.add(
        Task(
            account_id=account.id,
            run_id=run.id,
            step_id=row.id,
            title=render(task_spec.title, context).strip(),
            instructions=render(task_spec.instructions, context) if task_spec.instructions else None,
            assignee=row.assignee,
            assignee_role=task_spec.assignee if "@" not in task_spec.assignee else None,
            priority=task_spec.priority,
            status="open",
            outcomes=list(task_spec.outcomes),
            due_at=row.due_at,
            rule=run.rule,
            event_id=trigger.id if trigger else None,
        )
    )


def due_date(task_spec: TaskSpec, start: datetime | None = None) -> datetime | None:
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
    elif any(
        status in ("queued", "running") and not step.wake_at for status, step in zip(statuses, run.steps, strict=False)
    ):
        run.status = "running"
    else:
        run.status = "waiting"  # on people (open tasks) or on time (waits)


def _event_facts(event: Event | None) -> dict:
    if event is None:
        return {}
    payload = event.payload or {}
    return {
        "id": event.external_id,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "health": payload.get("health") or {},
        "properties": payload.get("properties") or {},
    }


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
    for task in db.session.execute(
        select(Task).where(Task.run_id == run.id, Task.status.in_(("open", "snoozed")))
    ).scalars():
        task.status, task.note = "cancelled", note


# ---- automated steps: the state machine the `run_step` job drives ---------------------------


def run_step(step_id: int) -> str:
    """Carry out one automated step (the `run_step` job), safe to run twice.

    queued -> running (under a lease) -> succeeded, or queued again for a wait or a retry, or
    failed with its run on the last attempt; then the run moves on (`advance`). A step whose
    run ended, or that another worker holds, is left alone.
    """
    step = db.session.execute(select(RunStep).where(RunStep.id == step_id).with_for_update()).scalar_one_or_none()
    if step is None or step.status not in ("queued", "running", "failed"):
        db.session.rollback()
        return f"nothing to do ({step.status if step else 'no such step'})"
    run = db.session.get(PlaybookRun, step.run_id)
    assert run is not None  # step.run_id is a foreign key; runs are never deleted
    if run.status not in ("running", "waiting", "failed"):
        db.session.rollback()
        return f"run is {run.status}"
    if step.wake_at and step.wake_at > utcnow():
        db.session.rollback()
        return f"waiting until {step.wake_at.isoformat()}"
    account = db.session.get(Account, run.account_id)
    assert account is not None  # run.account_id is a foreign key; accounts are never deleted
    playbook = catalog.current().playbooks[run.playbook]
    spec = playbook.step(step.name)
    action = registry.get(spec.action) if spec.action is not None else None
    # The lease says "a live worker runs this step": one holder at a time, renewed while the
    # action runs; a step `running` without one was lost with its worker (app/playbooks/recovery.py).
    lease = StepLease(step_id)
    if not lease.acquire():
        db.session.rollback()
        return "running in another worker"
    try:
        step.status, step.attempts, step.error = "running", step.attempts + 1, None
        if run.status == "failed":  # retried from the admin: the run lives again
            run.status, run.status_note, run.finished_at = "running", None, None
        db.session.commit()
        return _run_action(step, run, account, playbook, spec, action)
    finally:
        lease.release()


def _run_action(step, run, account, playbook, spec, action) -> str:
    step_id = step.id
    try:
        context = template_context(run, account)
        params = render_params(dict(spec.params), context)
        result = action.run(
            ActionContext(
                step=step,
                run=run,
                account=account,
                params=params,
                template_context=context,
                launch=_launcher(run, account),
            )
        )
    except Exception as exc:
        db.session.rollback()
        _record_failure(step_id, exc)
        raise
    if isinstance(result, ActionWait):
        step.status, step.wake_at = "queued", result.until
        step.result = {"waiting_until": result.until.isoformat()}
        advance(run, playbook, account)
        db.session.commit()
        enqueue_step_wake(step_id, result.until)
        return f"waiting until {result.until.isoformat()}"
    step.status, step.result, step.finished_at, step.wake_at = "succeeded", result or {}, utcnow(), None
    advance(run, playbook, account)
    db.session.commit()
    return "succeeded"


def _launcher(run: PlaybookRun, account: Account):
    """What `ctx.launch` does for an action of `run`: another playbook for the same account,
    with the same trigger and rule."""

    def launch_for_step(playbook_name: str, params: dict) -> PlaybookRun | None:
        event = db.session.get(Event, run.trigger_event_id) if run.trigger_event_id else None
        return launch(catalog.current().playbooks[playbook_name], account, event=event, rule=run.rule, params=params)

    return launch_for_step


def _record_failure(step_id: int, exc: Exception) -> None:
    """Note the error; on the last attempt the step and its run are failed, visibly."""
    job = get_current_job()
    will_retry = bool(job and job.retries_left)
    step = db.session.get(RunStep, step_id)
    assert step is not None  # the step being run
    step.error = f"{exc.__class__.__name__}: {exc}"[:2000]
    if will_retry:
        step.status = "queued"
    else:
        step.status, step.finished_at = "failed", utcnow()
        run = db.session.get(PlaybookRun, step.run_id)
        assert run is not None  # step.run_id is a foreign key
        run.status, run.status_note, run.finished_at = "failed", f"step {step.name}: {step.error}", utcnow()
    db.session.commit()
    log.warning(
        "step %s failed (attempt %s%s): %s",
        step_id,
        step.attempts,
        ", will retry" if will_retry else ", giving up",
        step.error,
    )
