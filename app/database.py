"""Database setup: SQLAlchemy, Alembic (Flask-Migrate), SQLite pragmas."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.extensions import db, migrate


def init_app(app: Flask) -> None:
    from app import models  # noqa: F401  (register the tables)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.config.get("MIGRATIONS_DIR", _migrations_dir())), render_as_batch=True)


def _migrations_dir() -> str:
    from app.config import ROOT

    return str(ROOT / "migrations")


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    # The web, the worker and the scheduler write to one SQLite file: WAL lets readers
    # go on during a write, and busy_timeout makes writers wait instead of failing.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"
