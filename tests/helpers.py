"""Plain helpers shared by the test modules: constants, payload builders, and small functions
that make rows or files. No fixtures here (those are in the conftest.py files).

The app's modules are imported inside the functions, as in tests/conftest.py, so that importing
this module (conftest.py does, before the `app` fixture sets the environment) loads no app code.
"""

from __future__ import annotations

import re
import socket
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository

TEST_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TEST_TOKEN = "test-token-123"

CHROMIUM = "/usr/bin/chromium"  # Debian's Chromium, driven by Playwright in tests/admin/test_browser*.py


# -- events and webhooks --------------------------------------------------------------------------


def unprocessed(session) -> int:
    """Events not yet applied: the outbox (an event with no processed_at, see app.models.Event)."""
    from sqlalchemy import func, select

    from app.models import Event

    return session.scalar(select(func.count(Event.id)).where(Event.processed_at.is_(None)))


def signed_headers(
    body: bytes, msg_id: str | None = None, timestamp: int | None = None, secret: str = TEST_SECRET
) -> dict:
    from app.intake.signatures import sign

    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def health_webhook(account_id: str = "acme", to: str = "red", **overrides) -> dict:
    body = {
        "type": "account.health_changed",
        "occurred_at": "2026-11-20T10:00:00Z",
        "account": {
            "id": account_id,
            "name": "Acme GmbH",
            "segment": "enterprise",
            "lifecycle_stage": "adoption",
            "plan": "premier",
            "arr": 120000,
            "renewal_date": "2027-03-31",
            "csm": "ana@vendor.example",
            "manager": "mo@vendor.example",
            "contacts": [{"name": "Jane Roe", "email": "jane@acme.example", "role": "decision_maker"}],
        },
        "health": {"to": to, "reason": "Translation quality issues", "changed_by": "ana@vendor.example"},
    }
    body.update(overrides)
    return body


# -- processes and timing ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def early_in_a_rate_window(seconds: float = 60, margin: float = 15) -> None:
    """Rate limits count in fixed windows: a test that sends N requests and expects the
    N+1th refused starts early in a window, so its requests do not straddle two."""
    if time.time() % seconds > seconds - margin:
        time.sleep(seconds + 0.5 - time.time() % seconds)


# -- rule and playbook files ------------------------------------------------------------------------


def write_file(path: Path, text: str) -> str:
    """Write `text` (dedented, leading newlines dropped) to `path`, making its folders; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(path)


def write_in(folder: Path, name: str, text: str) -> str:
    """write_file(folder / name, text): `name` may hold sub-folders ("mail/hello.txt")."""
    return write_file(folder / name, text)


# -- the admin's people and rows --------------------------------------------------------------------

PASSWORD = "correct-horse-1"
NOW = datetime.now(UTC)
ANA, BEN, MO, OPS = "ana@vendor.example", "ben@vendor.example", "mo@vendor.example", "ops@vendor.example"


def add(db, *rows):
    db.session.add_all(rows)
    db.session.commit()
    return rows


def make_user(db, email, role="csm", manager=None):
    from app.models import User

    user = User(email=email, name=email.split("@")[0].title(), role=role, manager_email=manager)
    user.set_password(PASSWORD)
    add(db, user)
    return user


def team(db):
    """Mo manages Ana; Ben has another manager; Olu is CS ops."""
    make_user(db, MO, "manager")
    make_user(db, ANA, "csm", manager=MO)
    make_user(db, BEN, "csm", manager="zoe@vendor.example")
    make_user(db, OPS, "csops")


def account(db, account_id, csm, **fields):
    from app.models import Account

    values = dict(
        name=f"{account_id.title()} GmbH",
        segment="enterprise",
        plan="premier",
        csm=csm,
        manager=MO if csm == ANA else "zoe@vendor.example",
        health_status="red",
        health_since=NOW,
        health_reason="Translation quality issues",
        arr=120000,
        renewal_date=NOW.date(),
    )
    values.update(fields)
    return add(db, Account(id=account_id, **values))[0]


def task(db, account_id, assignee, title, **fields):
    from app.models import Task

    values = dict(priority="normal", status="open", outcomes=["done"], due_at=NOW + timedelta(days=3))
    values.update(fields)
    return add(db, Task(account_id=account_id, assignee=assignee, title=title, **values))[0]


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no csrf_token in the page"
    return match.group(1)


def sign_in(client, email, password=PASSWORD, next_url=None):
    url = "/login" + (f"?next={next_url}" if next_url else "")
    page = client.get(url)
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    return client.post(url, data={"email": email, "password": password, "csrf_token": token})


def signed_in(web, email):
    client = web()
    response = sign_in(client, email)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def page_token(client, url):
    return csrf_from(client.get(url).get_data(as_text=True))


# -- playbook runs ----------------------------------------------------------------------------------


def make_account(db, account_id="acme", **fields):
    from app.models import Account, Contact

    account = db.session.get(Account, account_id)
    if account is None:
        account = Account(
            id=account_id,
            name=fields.pop("name", "Acme GmbH"),
            csm=fields.pop("csm", "ana@vendor.example"),
            manager=fields.pop("manager", "mo@vendor.example"),
            **fields,
        )
        account.contacts = [
            Contact(name="Jane Roe", email="jane@acme.example", role="decision_maker"),
            Contact(name="Max Muster", email="max@acme.example", role="user"),
        ]
        db.session.add(account)
        db.session.commit()
    return account


def launch_playbook(db, name, account_id="acme", params=None, playbook=None, event=None):
    """Launch a playbook of the live catalog (or the given Playbook) for an account; commits."""
    from app import catalog
    from app.models import Account
    from app.playbooks.runner import launch

    account = db.session.get(Account, account_id)
    run = launch(playbook or catalog.current().playbooks[name], account, event=event, rule="test", params=params)
    db.session.commit()
    return run.id if run else None


def steps_of(db, run_id):
    from app.models import PlaybookRun

    db.session.expire_all()
    return {step.name: step for step in db.session.get(PlaybookRun, run_id).steps}


def stored_health_change(db, account_id: str, to: str, at, key: str, contacts: bool = True) -> int:
    """A CRM status change stored as intake stores it (unprocessed), committed; its event id."""
    from app.intake.store import store_event

    payload = health_webhook(account_id, to=to, occurred_at=at.isoformat().replace("+00:00", "Z"))
    if not contacts:
        payload.pop("contacts", None)
        payload["account"].pop("contacts", None)
    event = store_event(
        source="crm",
        external_id=key,
        type="account.health_changed",
        account_id=account_id,
        occurred_at=at,
        payload=payload,
    )
    db.session.commit()
    return event.id
