"""Watch lists: accounts CS keeps an eye on (for example after a 20% decline in active users)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow


class WatchListEntry(Model):
    """An account on a named list; removing it sets `removed_at` (the history stays)."""

    __tablename__ = "watch_list_entries"
    __table_args__ = (Index("ix_watch_list_entries_list_account", "list_name", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_name: Mapped[str] = mapped_column(String(100))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("playbook_runs.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removed_by_run_id: Mapped[int | None] = mapped_column(ForeignKey("playbook_runs.id"))
