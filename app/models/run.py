"""Playbook runs and their steps."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import JSONType, UTCDateTime, utcnow

RUN_STATUSES = ("running", "waiting", "completed", "failed", "cancelled")
STEP_STATUSES = ("pending", "queued", "running", "succeeded", "failed", "skipped")
# Manual steps mirror their task: open -> done / cancelled.
TERMINAL_STEP = ("succeeded", "failed", "skipped", "done", "cancelled")


class PlaybookRun(Model):
    __tablename__ = "playbook_runs"
    __table_args__ = (Index("ix_playbook_runs_account_status", "account_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    playbook: Mapped[str] = mapped_column(String(200), index=True)
    playbook_version: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    rule: Mapped[str | None] = mapped_column(String(200))
    trigger_event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    triggered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), default="running")
    status_note: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A legal or agreed deadline for the whole run (GDPR: one month from the request).
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[str | None] = mapped_column(String(254))
    # Facts the templates render from (event and account at launch); erased by off-boarding.
    context: Mapped[dict] = mapped_column(JSONType, default=dict)

    steps: Mapped[list[RunStep]] = relationship(
        back_populates="run", order_by="RunStep.position", cascade="all, delete-orphan"
    )


class RunStep(Model):
    __tablename__ = "run_steps"
    __table_args__ = (UniqueConstraint("run_id", "name", name="uq_run_steps_run_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("playbook_runs.id"))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(String(20))  # "task" or "action"
    action: Mapped[str | None] = mapped_column(String(100))  # registered action type
    status: Mapped[str] = mapped_column(String(20), default="pending")
    assignee: Mapped[str | None] = mapped_column(String(254))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(100))
    job_id: Mapped[str | None] = mapped_column(String(200))
    # Set when the job went to Redis; the sweeper re-enqueues queued steps without it.
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A waiting step (wait action) is due again at this time.
    wake_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict | None] = mapped_column(JSONType)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    run: Mapped[PlaybookRun] = relationship(back_populates="steps")
