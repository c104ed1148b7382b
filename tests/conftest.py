"""Shared fixtures. Tests run against real services:

- the database named by TEST_DATABASE_URL (default: a SQLite file in a temp folder;
  `make test` runs the suite once more on PostgreSQL at 127.0.0.1:5432/test);
- the Redis named by TEST_REDIS_URL (default: the machine's Redis, database 13, flushed per test);
- real RQ workers (`run_jobs` runs a real RQ SimpleWorker in burst mode in this process).

The schema is built by the Alembic migrations, once per session; tables are emptied
between tests.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent


def unprocessed(session) -> int:
    """Events not yet applied: the outbox (an event with no processed_at, see app.models.Event)."""
    from sqlalchemy import func, select

    from app.models import Event

    return session.scalar(select(func.count(Event.id)).where(Event.processed_at.is_(None)))


TEST_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TEST_TOKEN = "test-token-123"


@pytest.fixture(scope="session")
def tmp_root():
    with tempfile.TemporaryDirectory(prefix="triage-test-") as folder:
        yield Path(folder)


@pytest.fixture(scope="session")
def database_url(tmp_root):
    """SQLite in a temp folder, or a fresh PostgreSQL database of this session's own on the
    server TEST_DATABASE_URL names (so two runs at once never share tables)."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        yield f"sqlite:///{tmp_root / 'test.db'}"
        return
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = f"triage_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:  # FORCE: closes what the app's pool still holds
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url():
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture(scope="session")
def test_env(tmp_root, redis_url, database_url):
    """Environment for subprocesses (workers, servers) that must share the test's services."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CRM_WEBHOOK_SECRET": TEST_SECRET,
        "API_TOKENS": TEST_TOKEN,
        "TRIAGE_INSTANCE": str(tmp_root / "instance"),
        # Retries without backoff, so a burst worker sees every attempt.
        "STEP_RETRY_INTERVALS": "0,0,0",
        "EVENT_RETRY_INTERVALS": "0,0,0",
    }


@pytest.fixture(scope="session")
def app(tmp_root, test_env):
    for key in (
        "DATABASE_URL",
        "REDIS_URL",
        "CRM_WEBHOOK_SECRET",
        "API_TOKENS",
        "TRIAGE_INSTANCE",
        "STEP_RETRY_INTERVALS",
        "EVENT_RETRY_INTERVALS",
    ):
        os.environ[key] = test_env[key]
    from app import create_app

    application = create_app({"TESTING": True})
    with application.app_context():
        from flask_migrate import upgrade

        from app.extensions import db

        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade(revision="heads")  # all heads: work in progress may add parallel revisions
    yield application


@pytest.fixture
def db(app):
    """An app context with empty tables and an empty Redis database."""
    from app.extensions import db as database

    with app.app_context():
        _empty_tables(database)
        from app.redis_conn import get_redis

        get_redis().flushdb()
        yield database
        database.session.remove()


def _empty_tables(database):
    tables = [t.name for t in reversed(database.metadata.sorted_tables)]
    with database.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture
def client(app, db):
    return app.test_client()


@pytest.fixture
def auth():
    return {"Authorization": f"Bearer {TEST_TOKEN}"}


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


@pytest.fixture
def post_webhook(client):
    """Post a signed CRM webhook; returns the response."""

    def post(payload: dict, msg_id: str | None = None, **header_overrides):
        body = json.dumps(payload).encode()
        headers = signed_headers(body, msg_id=msg_id)
        headers.update(header_overrides)
        return client.post("/webhooks/crm", data=body, headers=headers)

    return post


@pytest.fixture
def run_jobs(app):
    """Run every queued job with a real RQ worker (SimpleWorker, burst) until queues are empty."""
    from rq import SimpleWorker

    from app.jobs import ALL, queue
    from app.redis_conn import get_redis

    def run(max_rounds: int = 20):
        with app.app_context():
            connection = get_redis()
            queues = [queue(name) for name in ALL]
            for _ in range(max_rounds):
                if not any(q.count for q in queues):
                    return
                SimpleWorker(queues, connection=connection).work(burst=True, with_scheduler=False)

    return run


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_inbox(app):
    """A real SMTP server (aiosmtpd) on a free port; SMTP_URL points at it for the test."""
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
            return "250 OK"

        def to(self, address):
            return [content for rcpts, content in self.messages if address in rcpts]

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    previous = app.config.get("SMTP_URL")
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{controller.port}"
    yield inbox
    app.config["SMTP_URL"] = previous
    controller.stop()


def early_in_a_rate_window(seconds: float = 60, margin: float = 15) -> None:
    """Rate limits count in fixed windows: a test that sends N requests and expects the
    N+1th refused starts early in a window, so its requests do not straddle two."""
    if time.time() % seconds > seconds - margin:
        time.sleep(seconds + 0.5 - time.time() % seconds)
