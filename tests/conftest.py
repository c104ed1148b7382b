"""Shared fixtures. Tests run against real services:

- the database named by TEST_DATABASE_URL (default: a SQLite file in a temp folder;
  `make test` runs the suite once more on PostgreSQL at 127.0.0.1:5432/test);
- the Redis named by TEST_REDIS_URL (default: the machine's Redis, database 13, flushed per test);
- real RQ workers (`run_jobs` runs a real RQ SimpleWorker in burst mode in this process).

The schema is built by the Alembic migrations, once per session; tables are emptied
between tests.

The plain helpers (constants, payloads, rows) are in tests/helpers.py; fixtures only one folder
uses are in that folder's conftest.py.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.helpers import TEST_SECRET, TEST_TOKEN, free_port, signed_headers


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


@pytest.fixture
def web(app, db):
    """Test clients whose requests see a fresh `g`, as each real request does.

    The `db` fixture keeps one app context open and Flask reuses it for test requests,
    so `g` (Flask-Login's signed-in user, Flask-WTF's CSRF token) would otherwise leak
    from one request, or one client, to the next.
    """
    from flask import g, request_started

    def fresh_g(sender, **extra):
        g.__dict__.clear()

    request_started.connect(fresh_g, app)
    try:
        yield app.test_client
    finally:
        request_started.disconnect(fresh_g, app)


class Receiver:
    """The `receiver` fixture: a real local HTTP server for outbound webhooks (playbook actions).

    Records every delivery; answers with the queued statuses first, then 200.

    `delay` seconds before answering the first request (to kill a worker mid-step).
    Keeps which webhook-ids it accepted, as a de-duplicating receiver would.
    """

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.delay_first = 0.0
        self.accepted: list[str] = []
        self.lock = threading.Lock()
        self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver got {len(self.requests)} request(s), expected {count}")
            time.sleep(0.05)


@pytest.fixture
def receiver():
    box = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with box.lock:
                first = not box.requests
                box.requests.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "raw": raw,
                        "json": json.loads(raw or b"null"),
                    }
                )
                status = box.statuses.pop(0) if box.statuses else 200
            if first and box.delay_first:
                time.sleep(box.delay_first)
            if status < 300:
                with box.lock:
                    msg_id = self.headers.get("webhook-id")
                    if msg_id not in box.accepted:
                        box.accepted.append(msg_id)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    box.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=box.server.serve_forever, daemon=True)
    thread.start()
    yield box
    box.server.shutdown()
    box.server.server_close()
