"""Task SLAs and GDPR deadlines, checked periodically (the scheduler runs them, workers/periodic.py).

- check_tasks: wake snoozed tasks whose time came; flag tasks past due (once), remind the
  assignee and store an internal `task.overdue` event (rules can match it); escalate to
  the manager once a task has been overdue for TASK_ESCALATION_DELAY_HOURS.
- check_gdpr_deadlines: warn the manager when an off-boarding run nears its one-month
  deadline (7 days left) and when it has passed.
Mail goes through the same delivery as playbook e-mails (SMTP_URL, else the mail log).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app import audit
from app.extensions import db
from app.intake.store import store_event
from app.jobs import enqueue_events
from app.models import Account, AuditEntry, MailLog, PlaybookRun, Task, User
from app.models.types import utcnow
from app.playbooks.actions.email import deliver
from app.playbooks.runner import OPEN_RUN
from app.playbooks.tasks import wake_task

log = logging.getLogger(__name__)
SYSTEM = "triage"
GDPR_WARN_BEFORE = timedelta(days=7)


def _now(now: str | None) -> datetime:
    return datetime.fromisoformat(now) if now else utcnow()


def check_tasks(now: str | None = None) -> dict:
    """Wake, flag, remind and escalate. `now` (ISO 8601) only for tests and replays."""
    at = _now(now)
    woken = flagged = escalated = 0
    for task in db.session.execute(select(Task).where(Task.status == "snoozed", Task.snoozed_until <= at)).scalars():
        wake_task(task, SYSTEM, "its snooze time came")
        woken += 1
    db.session.commit()

    events = []
    for task in (
        db.session.execute(select(Task).where(Task.status == "open", Task.due_at < at, Task.overdue_at.is_(None)))
        .scalars()
        .all()
    ):
        assert task.due_at is not None  # the query takes only tasks with a due date
        task.overdue_at = at
        run = db.session.get(PlaybookRun, task.run_id) if task.run_id else None
        audit.record(
            SYSTEM,
            "task.overdue",
            "task",
            task.id,
            f"{task.title}: due {task.due_at.isoformat()}",
            {"assignee": task.assignee, "account_id": task.account_id},
        )
        event = store_event(
            source="triage",
            external_id=f"task-overdue-{task.id}",
            type="task.overdue",
            account_id=task.account_id,
            occurred_at=at,
            payload={
                "id": f"task-overdue-{task.id}",
                "account_id": task.account_id,
                "type": "task.overdue",
                "occurred_at": at.isoformat(),
                "properties": {
                    "task_id": task.id,
                    "run_id": task.run_id,
                    "playbook": run.playbook if run else None,
                    "priority": task.priority,
                    "assignee": task.assignee,
                },
            },
        )
        if event is not None:
            events.append(event.id)
        if task.assignee and _mail(
            task,
            task.assignee,
            f"Overdue: {task.title}",
            f"This task was due {task.due_at:%Y-%m-%d %H:%M} UTC and is still open.\n\n"
            f"Complete it, snooze it with a reason, or hand it to someone else.\n",
        ):
            task.reminded_at = at
        flagged += 1
        db.session.commit()
    enqueue_events(events)

    delay = timedelta(hours=current_app.config["TASK_ESCALATION_DELAY_HOURS"])
    for task in (
        db.session.execute(
            select(Task).where(Task.status == "open", Task.overdue_at <= at - delay, Task.escalated_at.is_(None))
        )
        .scalars()
        .all()
    ):
        manager = escalation_target(task)
        task.escalated_at, task.escalated_to = at, manager
        audit.record(
            SYSTEM,
            "task.escalated",
            "task",
            task.id,
            f"{task.title}: to {manager or 'nobody'}",
            {"to": manager, "assignee": task.assignee, "account_id": task.account_id},
        )
        if manager:
            _mail(
                task,
                manager,
                f"Escalated: {task.title}",
                f"This task of {task.assignee or 'the CS ops queue'} was due {task.due_at:%Y-%m-%d %H:%M} UTC "
                f"and has been overdue since {task.overdue_at:%Y-%m-%d %H:%M} UTC.\n",
            )
        escalated += 1
        db.session.commit()
    return {"woken": woken, "overdue": flagged, "escalated": escalated}


def escalation_target(task: Task) -> str | None:
    """The assignee's manager (users table), else the account's manager; never the assignee."""
    candidates = []
    if task.assignee:
        user = db.session.execute(select(User).where(User.email == task.assignee)).scalar_one_or_none()
        if user is not None and user.manager_email:
            candidates.append(user.manager_email)
    account = db.session.get(Account, task.account_id)
    if account is not None and account.manager:
        candidates.append(account.manager)
    return next((c for c in candidates if c != task.assignee), None)


def _mail(task: Task, to: str, subject: str, body: str) -> bool:
    try:
        status = deliver(to, subject, body)
    except Exception as exc:  # the next pass does not retry a reminder; the flag stays visible
        log.warning("could not mail %s about task %s: %s", to, task.id, exc)
        return False
    db.session.add(
        MailLog(account_id=task.account_id, run_id=task.run_id, to=to, subject=subject[:500], body=body, status=status)
    )
    return True


def check_gdpr_deadlines(now: str | None = None) -> dict:
    """Warn once when an open off-boarding run has 7 days left, and once when its deadline passed."""
    at = _now(now)
    warned = []
    for run in db.session.execute(
        select(PlaybookRun).where(PlaybookRun.deadline_at.is_not(None), PlaybookRun.status.in_(OPEN_RUN + ("failed",)))
    ).scalars():
        assert run.deadline_at is not None  # the query takes only runs with a deadline
        action = (
            "gdpr.deadline_missed"
            if at >= run.deadline_at
            else "gdpr.deadline_near"
            if at >= run.deadline_at - GDPR_WARN_BEFORE
            else None
        )
        if (
            action is None
            or db.session.execute(
                select(AuditEntry.id).where(
                    AuditEntry.action == action, AuditEntry.object_type == "run", AuditEntry.object_id == str(run.id)
                )
            ).first()
        ):
            continue
        account = db.session.get(Account, run.account_id)
        summary = f"GDPR erasure for {run.account_id} due {run.deadline_at:%Y-%m-%d}, run {run.id} is {run.status}"
        audit.record(SYSTEM, action, "run", run.id, summary, {"deadline": run.deadline_at.isoformat()})
        to = (account.manager or account.csm) if account else None
        if to:
            try:
                status = deliver(to, ("Missed: " if action.endswith("missed") else "Due soon: ") + summary, summary)
                db.session.add(
                    MailLog(
                        account_id=run.account_id,
                        run_id=run.id,
                        to=to,
                        subject=summary[:500],
                        body=summary,
                        status=status,
                    )
                )
            except Exception as exc:
                log.warning("could not mail %s: %s", to, exc)
        warned.append(run.id)
        db.session.commit()
    db.session.commit()
    return {"warned": warned}
