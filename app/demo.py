"""A demo portfolio: a CS team, a few hundred accounts and months of health history.

Everything goes through the real pipeline (store_event -> process_event -> rules ->
playbooks), so the runs and tasks are what Triage itself would have made; then older
tasks are dated back to when their event happened and most of them are worked.
"""

from __future__ import annotations

import json
import random
import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.intake.store import store_event
from app.models import AuditEntry, PlaybookRun, Task, User
from app.models.types import utcnow
from app.playbooks.tasks import complete_task

MANAGERS = [("mo@vendor.example", "Mo Okafor"), ("lea@vendor.example", "Lea Brandt")]
CSMS = [
    ("ana@vendor.example", "Ana Silva", 0),
    ("ben@vendor.example", "Ben Carter", 0),
    ("chloe@vendor.example", "Chloe Martin", 0),
    ("dev@vendor.example", "Dev Patel", 1),
    ("eli@vendor.example", "Eli Novak", 1),
]
SEGMENTS = [
    ("enterprise", ["premier", "enterprise"], (60_000, 400_000)),
    ("mid-market", ["professional", "premier"], (15_000, 80_000)),
    ("smb", ["starter", "professional"], (1_200, 15_000)),
]
STAGES = ["onboarding", "adoption", "adoption", "expansion", "renewal"]
NAMES = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Aperture",
    "Massive",
    "Gringotts",
    "Oscorp",
    "Pied Piper",
    "Dunder",
    "Monarch",
    "Nakatomi",
    "Prestige",
    "Sterling",
    "Virtucon",
    "Zorg",
    "Blue Sun",
    "Ollivander",
    "Bluth",
    "Krusty",
]
SUFFIXES = ["GmbH", "Inc.", "Ltd", "AB", "SAS", "BV", "Group", "Labs", "Systems", "Logistics", "Health", "Retail"]
FIRST = ["Jane", "Omar", "Lucia", "Kenji", "Priya", "Tom", "Aisha", "Marco", "Sofia", "Lars", "Nina", "Ravi"]
LAST = ["Roe", "Haddad", "Rossi", "Sato", "Nair", "Berg", "Diallo", "Conti", "Lopez", "Nilsen", "Weber", "Iyer"]
REASONS = {
    "green": [
        "Praised the new reporting module in the QBR",
        "Expanded to a second department",
        "Very happy in the last happiness survey",
    ],
    "yellow": [
        "Neutral in the QBR, no clear feedback",
        "Usage flat for two months",
        "New decision maker, relationship not established yet",
    ],
    "red": [
        "Translation quality issues",
        "Annoyed with the export feature",
        "Two urgent tickets open for weeks",
        "Complained about onboarding speed",
    ],
    "black": ["Did not extend the subscription", "Written confirmation: will not renew at end of period"],
}
NOTES = [
    "Worked in the demo history.",
    "Called the champion, agreed next steps.",
    "Sent the recap and the plan to the decision maker.",
    "Escalated internally, product is on it.",
    "Booked a training session for the new users.",
]
COMMENTS = [
    "Left a voicemail, trying again Thursday.",
    "Champion is on holiday, the admin answered instead.",
    "Asked support for the ticket history first.",
    "Manager wants to join the call.",
    "They asked for a discount in the renewal, flagging it.",
]
SNOOZE_REASONS = [
    "Customer on holiday until then",
    "Waiting for the customer's internal review",
    "Renewal call already booked",
    "Decision maker back next week",
]
# Where a status tends to go next: mostly stable, sometimes worse or better.
NEXT = {
    "green": ["yellow", "yellow", "red"],
    "yellow": ["green", "green", "red"],
    "red": ["yellow", "yellow", "green", "black"],
    "black": [],
}


def ensure_team(password: str) -> None:
    if db.session.scalar(select(func.count(User.id))):
        return
    admin = User(email="admin@triage.local", name="Admin", role="admin")
    admin.set_password(password)
    db.session.add(admin)
    ops = User(email="ops@vendor.example", name="Olu Ops", role="csops")
    ops.set_password(password)
    db.session.add(ops)
    for email, name in MANAGERS:
        user = User(email=email, name=name, role="manager")
        user.set_password(password)
        db.session.add(user)
    for email, name, team in CSMS:
        user = User(email=email, name=name, role="csm", manager_email=MANAGERS[team][0])
        user.set_password(password)
        db.session.add(user)
    db.session.commit()


def load_portfolio(accounts: int = 240, seed: int = 7) -> int:
    """Create the accounts through the real pipeline; returns the number of events."""
    from app.processing import process_one as process_event

    rng = random.Random(seed)
    now = utcnow()
    events = 0
    for index in range(accounts):
        csm, _, team = CSMS[0] if index % 7 in (0, 1) else CSMS[index % len(CSMS)]
        segment, plans, (low, high) = rng.choice(SEGMENTS)
        name = f"{rng.choice(NAMES)} {rng.choice(SUFFIXES)}"
        account_id = f"acct-{index + 1:04d}"
        contacts = []
        for _ in range(rng.randint(1, 3)):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            slug = name.split()[0].lower()
            contacts.append(
                {
                    "name": f"{first} {last}",
                    "email": f"{first}.{last}@{slug}.example".lower(),
                    "role": rng.choice(["decision_maker", "champion", "admin", "user"]),
                }
            )
        account = {
            "id": account_id,
            "name": name,
            "segment": segment,
            "lifecycle_stage": rng.choice(STAGES),
            "plan": rng.choice(plans),
            "arr": rng.randrange(low, high, 100),
            "renewal_date": (date.today() + timedelta(days=rng.randint(-20, 400))).isoformat(),
            "customer_since": (date.today() - timedelta(days=rng.randint(60, 1500))).isoformat(),
            "csm": csm,
            "manager": MANAGERS[team][0],
            "contacts": contacts,
        }
        status = rng.choice(["green", "green", "yellow", "yellow", "red"])
        at = now - timedelta(days=rng.randint(150, 200))
        changes = [(at, status)]
        for _ in range(rng.randint(0, 3)):
            at += timedelta(days=rng.randint(10, 60))
            if at > now - timedelta(days=14) or changes[-1][1] == "black":
                break
            changes.append((at, rng.choice(NEXT[changes[-1][1]])))
        # The last fortnight: about a third of the portfolio moves again, so the team has open
        # (and some overdue) work on first start, as a real team would.
        if changes[-1][1] != "black" and rng.random() < 0.35:
            recent = now - timedelta(days=rng.uniform(0.1, 13))
            changes.append((recent, rng.choice(NEXT[changes[-1][1]] + ["red"])))
        for change, (at, status) in enumerate(changes):
            at = at.replace(microsecond=0)  # the event's time is the payload's, to the second
            payload: dict[str, Any] = {
                "type": "account.health_changed",
                "occurred_at": _iso(at),
                "account": account,
                "health": {"to": status, "reason": rng.choice(REASONS[status]), "changed_by": csm},
            }
            event = store_event(
                source="crm",
                external_id=f"demo-{account_id}-{change}",
                type=payload["type"],
                account_id=account_id,
                occurred_at=at,
                payload=payload,
            )
            db.session.commit()
            if event is not None:
                process_event(event.id)
                events += 1
            if change < len(changes) - 1:
                _work_before_next_change(account_id, rng)
    _usage_history(rng, now)
    _run_queued_jobs()  # the automated steps, so the tasks that follow them exist before aging
    _age_and_work_tasks(rng, now)
    _run_queued_jobs()
    return events


USAGE_DAYS = 120
# How much of its usual use an account shows in each status (the numbers follow the colour).
USAGE_LEVEL = {"green": 1.0, "yellow": 0.8, "red": 0.55, "black": 0.3}


def _usage_history(rng: random.Random, now: datetime) -> None:
    """Four months of daily usage, feedback and tickets per account, loaded as a history is
    (`flask replay FILE --history`, app/signals/history.py): rollups and one score per account
    and day, set-based, and no playbook for the past. The last day's events go through the
    normal pipeline, so the rules see the present as they would live.
    """
    from app.models import HealthChange
    from app.signals.history import load_history

    history: dict[str, list] = {}
    for account_id, at, status in db.session.execute(
        select(HealthChange.account_id, HealthChange.at, HealthChange.status).order_by(HealthChange.at)
    ):
        history.setdefault(account_id, []).append((at, status))
    path = Path(current_app.instance_path) / "demo-usage.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for back in range(USAGE_DAYS, 0, -1):
            for account_id, changes in history.items():
                for event in _usage_day(rng, account_id, changes, now - timedelta(days=back)):
                    out.write(json.dumps(event) + "\n")
    load_history(path)
    path.unlink()


def _usage_day(rng: random.Random, account_id: str, changes: list, at: datetime) -> list[dict]:
    """One account's events of one day, shaped by the status it had then."""
    status = next((s for when, s in reversed(changes) if when <= at), changes[0][1])
    base = (zlib.crc32(account_id.encode()) % 60) + 8  # the account's size: stable, not random
    weekend = 0.45 if at.weekday() >= 5 else 1.0
    active = max(0, round(base * USAGE_LEVEL[status] * weekend * rng.uniform(0.85, 1.15)))
    unhappy = status in ("red", "black")
    day = at.strftime("%Y-%m-%d")
    stamp = f"{day}T{rng.randint(8, 18):02d}:{rng.randint(0, 59):02d}:00Z"
    key = f"demo-{account_id}-{day}"
    events = [
        {
            "id": f"{key}-daily",
            "account_id": account_id,
            "type": "usage.daily",
            "occurred_at": f"{day}T23:00:00Z",
            "properties": {
                "active_users": active,
                "logins": round(active * rng.uniform(1.5, 2.5)),
                "features": {"reporting": active // 3, "export": int(rng.random() < 0.3) * (active // 5)},
                "seats": round(base * 1.3),
            },
        }
    ]
    if rng.random() < 0.03:
        events.append(_demo_event(key, "users", account_id, stamp, "users.added", {"count": rng.randint(1, 3)}))
    if rng.random() < 0.02:
        score = rng.randint(0, 6) if unhappy else rng.randint(7, 10)
        events.append(_demo_event(key, "nps", account_id, stamp, "feedback.nps", {"score": score, "user_id": "u1"}))
    if rng.random() < 0.03:
        level = rng.choice(["not_happy", "neutral"] if unhappy else ["happy", "very_happy", "happy", "neutral"])
        user = f"u{rng.randint(1, 4)}"
        events.append(
            _demo_event(key, "happy", account_id, stamp, "feedback.happiness", {"level": level, "user_id": user})
        )
    if rng.random() < (0.12 if unhappy else 0.03):
        severity = "high" if unhappy and rng.random() < 0.5 else "normal"
        subject = rng.choice(DEMO_TICKETS["bad" if unhappy else "fine"])
        events.append(
            _demo_event(key, "ticket", account_id, stamp, "support.ticket", {"severity": severity, "subject": subject})
        )
    return events


def _demo_event(key: str, kind: str, account_id: str, stamp: str, event_type: str, properties: dict) -> dict:
    return {
        "id": f"{key}-{kind}",
        "account_id": account_id,
        "type": event_type,
        "occurred_at": stamp,
        "properties": properties,
    }


DEMO_TICKETS = {
    "fine": ["Question about report filters", "How do I add a colleague?", "Invoice address change"],
    "bad": [
        "Export broken again, very frustrating",
        "Sync keeps failing, the team is angry",
        "Still waiting for a fix, this is unacceptable",
    ],
}


def _run_queued_jobs() -> None:
    from app.jobs import work_queued_jobs

    work_queued_jobs()


def _age_and_work_tasks(rng: random.Random, now: datetime) -> None:
    """Date tasks back to their trigger, and work most of the older ones like a real team."""
    tasks = db.session.execute(select(Task, PlaybookRun).join(PlaybookRun, Task.run_id == PlaybookRun.id)).all()
    for task, run in tasks:
        if run.triggered_at is None:
            continue
        shift = now - run.triggered_at
        task.created_at -= shift
        if task.due_at:
            task.due_at -= shift
    for run in db.session.execute(select(PlaybookRun).where(PlaybookRun.triggered_at.is_not(None))).scalars():
        assert run.triggered_at is not None  # the query takes only triggered runs
        shift = run.started_at - run.triggered_at
        run.started_at = run.triggered_at
        for step in run.steps:
            if step.due_at:
                step.due_at -= shift
    db.session.commit()
    for task, _run in tasks:
        age = now - task.created_at
        if task.status != "open" or age < timedelta(days=rng.randint(3, 30)):
            continue
        outcome = rng.choice(task.outcomes)
        if "lost" in task.outcomes and "saved" in task.outcomes:
            outcome = rng.choice(["saved", "lost"])
        actor = task.assignee or "demo"
        complete_task(task.id, outcome, rng.choice(NOTES), actor)
        # Worked back then, not today: the task, and its audit entry, carry the day it was done.
        worked = min(task.created_at + timedelta(days=rng.randint(1, 12), hours=rng.randint(1, 9)), now)
        task.completed_at = worked
        for entry in db.session.scalars(
            select(AuditEntry).where(AuditEntry.object_type == "task", AuditEntry.object_id == str(task.id))
        ):
            entry.at = worked
        db.session.commit()
    _date_finished_runs()
    _work_open_tasks(rng, now)


def _date_finished_runs() -> None:
    """A run ended when its last task was done, or when the next status change closed it."""
    from app.models import HealthChange

    runs = db.session.scalars(
        select(PlaybookRun).where(PlaybookRun.finished_at.is_not(None), PlaybookRun.triggered_at.is_not(None))
    ).all()
    for run in runs:
        done = [
            t.completed_at
            for t in db.session.scalars(select(Task).where(Task.run_id == run.id))
            if t.completed_at is not None and t.status == "done"
        ]
        if run.status == "completed" and done:
            run.finished_at = max(done)
            continue
        following = db.session.scalar(
            select(func.min(HealthChange.at)).where(
                HealthChange.account_id == run.account_id, HealthChange.at > run.triggered_at
            )
        )
        if following is not None:
            run.finished_at = following
            for task in db.session.scalars(select(Task).where(Task.run_id == run.id, Task.status == "cancelled")):
                task.completed_at = following
    db.session.commit()


def _work_before_next_change(account_id: str, rng: random.Random) -> None:
    """The team worked the account's tasks before its status moved again, as a real team does:
    otherwise the next red would find the last action plan still open and launch none."""
    for task in db.session.scalars(select(Task).where(Task.account_id == account_id, Task.status == "open")).all():
        outcomes = task.outcomes or ["done"]
        outcome = "saved" if "saved" in outcomes else rng.choice(outcomes)
        complete_task(task.id, outcome, "Worked in the demo history.", task.assignee or "demo")


def _work_open_tasks(rng: random.Random, now: datetime) -> None:
    """What a team does with its open work besides completing it: comments, snoozes, hand-overs."""
    from app.playbooks import tasks as services

    open_tasks = db.session.scalars(select(Task).where(Task.status == "open").order_by(Task.id)).all()
    colleagues = {team: [email for email, _, t in CSMS if t == team] for team in range(len(MANAGERS))}
    for task in open_tasks:
        actor = task.assignee or "demo"
        roll = rng.random()
        if roll < 0.35:
            services.comment_task(task.id, rng.choice(COMMENTS), actor)
        if 0.35 <= roll < 0.45:
            until = now + timedelta(days=rng.randint(2, 14))
            services.snooze_task(task.id, until, rng.choice(SNOOZE_REASONS), actor)
        elif 0.45 <= roll < 0.48 and task.assignee_role != "manager":
            team = next((t for email, _, t in CSMS if email == task.assignee), 0)
            other = rng.choice([c for c in colleagues[team] if c != task.assignee] or [task.assignee])
            if other is not None and other != task.assignee:
                services.reassign_task(task.id, other, actor)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
