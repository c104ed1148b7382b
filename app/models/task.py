"""Manual tasks: the work a CSM or manager does by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, ForeignKey, Index, String, Text, case
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import JSONType, UTCDateTime, utcnow

PRIORITIES = ("urgent", "high", "normal", "low")
TASK_STATUSES = ("open", "snoozed", "done", "cancelled")


class Task(Model):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_assignee_status", "assignee", "status"),
        Index("ix_tasks_account_status", "account_id", "status"),
        # "All open tasks, most urgent first" and overdue checks read by status, then due date.
        Index("ix_tasks_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("playbook_runs.id"))
    step_id: Mapped[int | None] = mapped_column(ForeignKey("run_steps.id"), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    instructions: Mapped[str | None] = mapped_column(Text)
    assignee: Mapped[str | None] = mapped_column(String(254))
    assignee_role: Mapped[str | None] = mapped_column(String(40))
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    status: Mapped[str] = mapped_column(String(20), default="open")
    outcomes: Mapped[list] = mapped_column(JSONType, default=list)
    outcome: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_by: Mapped[str | None] = mapped_column(String(254))
    rule: Mapped[str | None] = mapped_column(String(200))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    # Snoozed: hidden until this time (or until the account gets worse), with the reason.
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    snooze_reason: Mapped[str | None] = mapped_column(Text)
    # SLA: when the task was found overdue, its assignee reminded, escalated to the manager.
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalated_to: Mapped[str | None] = mapped_column(String(254))

    account = relationship("Account")
    run = relationship("PlaybookRun")
    comments = relationship(
        "TaskComment", back_populates="task", order_by="TaskComment.id", cascade="all, delete-orphan"
    )

    @staticmethod
    def urgency_order() -> tuple[ColumnElement[Any] | InstrumentedAttribute[Any], ...]:
        """ORDER BY for 'most urgent first': priority, then due date, then age."""
        rank = case({p: i for i, p in enumerate(PRIORITIES)}, value=Task.priority, else_=len(PRIORITIES))
        return (rank, Task.due_at.is_(None), Task.due_at, Task.created_at, Task.id)
