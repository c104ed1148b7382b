"""The baselines for the load benches: bare endpoints and a bare RQ job.

- `POST /bare/events` (bench/ingest.py, bench/soak.py): no token check, no validation, no
  idempotency, no outbox, no queue: it parses the JSON batch and inserts one row per event
  into `bare_events`, a table with the columns, types and indexes of `events` (so the
  baseline pays the same storage cost).
- `POST /bare/webhook` (bench/webhook_load.py): no signature check, no validation: the body
  is stored in `bare_webhooks` and committed, then a trivial RQ job `bare_task(key)` is
  enqueued on the queue `bare` (enqueue after commit, as Triage does). The job inserts one
  row into `bare_tasks` and commits: the least a "task visible" can cost.
- `run_bare_worker("fork" | "simple")`: a plain RQ `Worker` (a fork per job) or
  `SimpleWorker` on the queue `bare`, with this module imported before the first job (as
  the Triage worker loads its app once).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from flask import Flask, request
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    insert,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()
bare_events = Table(
    "bare_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(40)),
    Column("external_id", String(300)),
    Column("type", String(100)),
    Column("account_id", String(200)),
    Column("occurred_at", DateTime),
    Column("received_at", DateTime),
    Column("payload", JSON().with_variant(JSONB(), "postgresql")),
    UniqueConstraint("source", "external_id"),
    Index("ix_bare_events_account_occurred", "account_id", "occurred_at"),
    Index("ix_bare_events_type", "type"),
)
bare_webhooks = Table(
    "bare_webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_id", String(300), unique=True),
    Column("account_id", String(200)),
    Column("received_at", DateTime),
    Column("payload", JSON().with_variant(JSONB(), "postgresql")),
)
bare_tasks = Table(
    "bare_tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(200), index=True),
    Column("created_at", DateTime),
)
engine = create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)
metadata.create_all(engine)  # the benches import this once before the web processes start
app = Flask(__name__)
_redis = None
_pid = None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@app.post("/bare/events")
def bare_events_endpoint():
    items = json.loads(request.get_data())
    now = _now()
    rows = [
        {
            "source": "api",
            "external_id": item["id"],
            "type": item["type"],
            "account_id": item["account_id"],
            "occurred_at": datetime.fromisoformat(item["occurred_at"].replace("Z", "+00:00")).replace(tzinfo=None),
            "received_at": now,
            "payload": item,
        }
        for item in items
    ]
    with engine.begin() as connection:
        connection.execute(insert(bare_events), rows)
    return {"accepted": len(rows), "duplicates": 0}, 202


@app.post("/bare/webhook")
def bare_webhook_endpoint():
    global _redis
    from rq import Queue

    payload = json.loads(request.get_data())
    account = payload["account"]["id"]
    with engine.begin() as connection:
        connection.execute(
            insert(bare_webhooks),
            {
                "external_id": request.headers.get("webhook-id"),
                "account_id": account,
                "received_at": _now(),
                "payload": payload,
            },
        )
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(os.environ["REDIS_URL"])
    Queue("bare", connection=_redis).enqueue(bare_task, account, result_ttl=3600)
    return {"accepted": 1, "duplicates": 0}, 202


def bare_task(key: str) -> str:
    """One row inserted and committed. After a fork the pooled connections are the parent's:
    drop them and connect anew, exactly as the Triage worker does (workers/context.py)."""
    global _pid
    if _pid != os.getpid():
        engine.dispose(close=False)
        _pid = os.getpid()
    with engine.begin() as connection:
        connection.execute(insert(bare_tasks), {"key": key, "created_at": _now()})
    return key


def run_bare_worker(kind: str) -> None:
    import redis
    from rq import Queue, SimpleWorker, Worker

    connection = redis.Redis.from_url(os.environ["REDIS_URL"])
    worker_class = SimpleWorker if kind == "simple" else Worker
    worker_class([Queue("bare", connection=connection)], connection=connection).work(with_scheduler=False)
