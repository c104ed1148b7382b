"""Runs and tasks reacting to their account: cancelling a run, health changes.

- `cancel_run(run_id, actor, note)`: a person stops a run (commits, audited).
- `on_health_change(account, previous, new)`: called by process_event in its transaction
  (no commit). Runs whose playbook says `close_when: {health: [...]}` close themselves with
  the playbook's note (the red action plan when the account is green again); when the
  account gets worse, its snoozed tasks wake up at once.
"""

from __future__ import annotations

from sqlalchemy import select

from app import audit, catalog
from app.extensions import db
from app.models import HEALTH_STATUSES, Account, PlaybookRun, Task
from app.playbooks.runner import OPEN_RUN, open_runs_of
from app.playbooks.runner import cancel_run as close_run
from app.playbooks.tasks import TaskError, wake_task

SYSTEM = "triage"


def cancel_run(run_id: int, actor: str, note: str | None = None) -> PlaybookRun:
    """Cancel an open run (commits): open tasks cancelled, waiting steps skipped.
    404 unknown, 409 already ended."""
    run = db.session.execute(select(PlaybookRun).where(PlaybookRun.id == run_id).with_for_update()).scalar_one_or_none()
    if run is None:
        raise TaskError(404, f"no run {run_id}")
    if run.status not in OPEN_RUN + ("failed",):
        raise TaskError(409, f"run {run_id} is already {run.status}")
    note = (note or "").strip() or f"cancelled by {actor}"
    close_run(run, note)
    run.cancelled_by = actor
    audit.record(
        actor,
        "run.cancelled",
        "run",
        run.id,
        f"{run.playbook} for {run.account_id}: {note}",
        {"note": note, "account_id": run.account_id, "playbook": run.playbook},
    )
    db.session.commit()
    return run


def is_worse(previous: str | None, new: str) -> bool:
    """True when `new` is further down the scheme (green best ... black worst) than `previous`."""
    order = {status: rank for rank, status in enumerate(HEALTH_STATUSES)}
    if previous is None or previous not in order or new not in order:
        return False
    return order[new] > order[previous]


def on_health_change(account: Account, previous: str | None, new: str, runs: list[PlaybookRun] | None = None) -> dict:
    """React to the account's current status moving from `previous` to `new` (no commit).
    `runs`: the account's open runs, if the caller read them already (`open_runs_of`)."""
    new = (new or "").lower()
    if previous == new:
        return {"closed": [], "woken": []}
    playbooks = catalog.current().playbooks
    closed = []
    for run in open_runs_of(account.id) if runs is None else list(runs):
        playbook = playbooks.get(run.playbook)
        if playbook is None or new not in playbook.close_on_health:
            continue
        note = playbook.close_note or f"closed: the account is {new} now"
        close_run(run, note)
        audit.record(
            SYSTEM,
            "run.closed",
            "run",
            run.id,
            f"{run.playbook}: {note}",
            {"from": previous, "to": new, "account_id": account.id},
        )
        closed.append(run.id)
    woken = []
    if is_worse(previous, new):
        for task in (
            db.session.execute(select(Task).where(Task.account_id == account.id, Task.status == "snoozed"))
            .scalars()
            .all()
        ):
            wake_task(task, SYSTEM, f"the account went from {previous} to {new}")
            woken.append(task.id)
    return {"closed": closed, "woken": woken}
