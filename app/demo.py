"""A demo portfolio: a CS team, a few hundred accounts and months of health history.

Everything goes through the real pipeline (store_event -> process_event -> rules ->
playbooks), so the runs and tasks are what Triage itself would have made; then older
tasks are dated back to when their event happened and most of them are worked.
"""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, select

from app.extensions import db
from app.intake.store import store_event
from app.models import Account, PlaybookRun, Task, User
from app.models.types import utcnow
from app.playbooks.tasks import complete_task

MANAGERS = [("mo@vendor.example", "Mo Okafor"), ("lea@vendor.example", "Lea Brandt")]
CSMS = [("ana@vendor.example", "Ana Silva", 0), ("ben@vendor.example", "Ben Carter", 0),
        ("chloe@vendor.example", "Chloe Martin", 0), ("dev@vendor.example", "Dev Patel", 1),
        ("eli@vendor.example", "Eli Novak", 1)]
SEGMENTS = [("enterprise", ["premier", "enterprise"], (60_000, 400_000)),
            ("mid-market", ["professional", "premier"], (15_000, 80_000)),
            ("smb", ["starter", "professional"], (1_200, 15_000))]
STAGES = ["onboarding", "adoption", "adoption", "expansion", "renewal"]
NAMES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Wonka", "Tyrell",
         "Cyberdyne", "Soylent", "Aperture", "Massive", "Gringotts", "Oscorp", "Pied Piper", "Dunder", "Monarch",
         "Nakatomi", "Prestige", "Sterling", "Virtucon", "Zorg", "Blue Sun", "Ollivander", "Bluth", "Krusty"]
SUFFIXES = ["GmbH", "Inc.", "Ltd", "AB", "SAS", "BV", "Group", "Labs", "Systems", "Logistics", "Health", "Retail"]
FIRST = ["Jane", "Omar", "Lucia", "Kenji", "Priya", "Tom", "Aisha", "Marco", "Sofia", "Lars", "Nina", "Ravi"]
LAST = ["Roe", "Haddad", "Rossi", "Sato", "Nair", "Berg", "Diallo", "Conti", "Lopez", "Nilsen", "Weber", "Iyer"]
REASONS = {
    "green": ["Praised the new reporting module in the QBR", "Expanded to a second department",
              "Very happy in the last happiness survey"],
    "yellow": ["Neutral in the QBR, no clear feedback", "Usage flat for two months",
               "New decision maker, relationship not established yet"],
    "red": ["Translation quality issues", "Annoyed with the export feature", "Two urgent tickets open for weeks",
            "Complained about onboarding speed"],
    "black": ["Did not extend the subscription", "Written confirmation: will not renew at end of period"],
}
# Where a status tends to go next: mostly stable, sometimes worse or better.
NEXT = {"green": ["yellow", "yellow", "red"], "yellow": ["green", "green", "red"],
        "red": ["yellow", "yellow", "green", "black"], "black": []}


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
    from workers.jobs import process_event

    rng = random.Random(seed)
    now = utcnow()
    events = 0
    for index in range(accounts):
        csm, _, team = CSMS[index % len(CSMS)]
        segment, plans, (low, high) = rng.choice(SEGMENTS)
        name = f"{rng.choice(NAMES)} {rng.choice(SUFFIXES)}"
        account_id = f"acct-{index + 1:04d}"
        contacts = []
        for _ in range(rng.randint(1, 3)):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            slug = name.split()[0].lower()
            contacts.append({"name": f"{first} {last}", "email": f"{first}.{last}@{slug}.example".lower(),
                             "role": rng.choice(["decision_maker", "champion", "admin", "user"])})
        account = {
            "id": account_id, "name": name, "segment": segment, "lifecycle_stage": rng.choice(STAGES),
            "plan": rng.choice(plans), "arr": rng.randrange(low, high, 100),
            "renewal_date": (date.today() + timedelta(days=rng.randint(-20, 400))).isoformat(),
            "customer_since": (date.today() - timedelta(days=rng.randint(60, 1500))).isoformat(),
            "csm": csm, "manager": MANAGERS[team][0], "contacts": contacts,
        }
        status = rng.choice(["green", "green", "yellow", "yellow", "red"])
        at = now - timedelta(days=rng.randint(150, 200))
        for change in range(rng.randint(1, 4)):
            if change:
                status = rng.choice(NEXT[status])
                at += timedelta(days=rng.randint(10, 60))
                if at > now - timedelta(hours=2):
                    break
            payload = {"type": "account.health_changed", "occurred_at": _iso(at), "account": account,
                       "health": {"to": status, "reason": rng.choice(REASONS[status]), "changed_by": csm}}
            event = store_event(source="crm", external_id=f"demo-{account_id}-{change}",
                                type=payload["type"], account_id=account_id, occurred_at=at, payload=payload)
            db.session.commit()
            if event is not None:
                process_event(event.id)
                events += 1
            if status == "black":
                break
    _run_queued_jobs()  # the automated steps, so the tasks that follow them exist before aging
    _age_and_work_tasks(rng, now)
    _run_queued_jobs()
    return events


def _run_queued_jobs() -> None:
    from rq import SimpleWorker

    from app.redis_conn import get_redis
    from workers.queues import ALL, queue

    SimpleWorker([queue(name) for name in ALL], connection=get_redis()).work(burst=True, logging_level="WARNING")


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
        run.started_at = run.triggered_at
    db.session.commit()
    for task, run in tasks:
        age = now - task.created_at
        if task.status != "open" or age < timedelta(days=rng.randint(3, 30)):
            continue
        outcome = rng.choice(task.outcomes)
        if "lost" in task.outcomes and "saved" in task.outcomes:
            outcome = rng.choice(["saved", "lost"])
        complete_task(task.id, outcome, "Worked in the demo history.", task.assignee or "demo")


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
