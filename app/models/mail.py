"""Every e-mail the server sent or wrote to the outbox log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow


class MailLog(Model):
    __tablename__ = "mail_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str | None] = mapped_column(String(200), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("playbook_runs.id"))
    step_id: Mapped[int | None] = mapped_column(ForeignKey("run_steps.id"))
    to: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # sent, logged
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
