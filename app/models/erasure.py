"""The anonymous evidence left by a GDPR off-boarding: what was erased, how much, when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import JSONType, UTCDateTime, utcnow


class ErasureRecord(Model):
    __tablename__ = "erasure_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("playbook_runs.id"))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    counts: Mapped[dict] = mapped_column(JSONType)  # category -> items erased
