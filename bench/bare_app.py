"""The baseline for bench/ingest.py: a bare endpoint that inserts the same rows.

No token check, no validation, no idempotency, no outbox, no queue: it parses the JSON
batch and inserts one row per event into `bare_events`, a table with the columns, types
and indexes of `events` (so the baseline pays the same storage cost).
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from flask import Flask, request
from sqlalchemy import (JSON, Column, DateTime, Index, Integer, MetaData, String, Table, UniqueConstraint,
                        create_engine, insert)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()
bare_events = Table(
    "bare_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(40)), Column("external_id", String(300)), Column("type", String(100)),
    Column("account_id", String(200)), Column("occurred_at", DateTime), Column("received_at", DateTime),
    Column("payload", JSON().with_variant(JSONB(), "postgresql")),
    UniqueConstraint("source", "external_id"),
    Index("ix_bare_events_account_occurred", "account_id", "occurred_at"),
    Index("ix_bare_events_type", "type"),
)
engine = create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)
metadata.create_all(engine)  # bench/ingest.py imports this once before the web processes start
app = Flask(__name__)


@app.post("/bare/events")
def bare_events_endpoint():
    items = json.loads(request.get_data())
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = [{"source": "api", "external_id": item["id"], "type": item["type"], "account_id": item["account_id"],
             "occurred_at": datetime.fromisoformat(item["occurred_at"].replace("Z", "+00:00")).replace(tzinfo=None),
             "received_at": now, "payload": item} for item in items]
    with engine.begin() as connection:
        connection.execute(insert(bare_events), rows)
    return {"accepted": len(rows), "duplicates": 0}, 202
