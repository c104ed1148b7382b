"""Personal API tokens: a person's own bearer token for the API, scoped as they are in the admin.

Only the SHA-256 of a token is stored: the token itself is shown once, when it is made
(`flask users token EMAIL`), and cannot be read back from the database.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

PREFIX = "trg_"  # tells a personal token apart at a glance (and to secret scanners)


def new_token() -> str:
    """`trg_` and 256 random bits, URL-safe base64."""
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored and looked up: the hex SHA-256 of the whole token. A token carries 256
    random bits, so a fast hash is enough (no salt, no key stretching needed to resist guessing)."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user = relationship("User")

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
