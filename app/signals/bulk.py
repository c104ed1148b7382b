"""Bulk writes for history loads: many rows in a few statements.

On PostgreSQL the rows are COPYed into a temporary table (no constraints, no defaults), then
moved with one `INSERT ... SELECT ... ON CONFLICT`: COPY is the fastest way in, and the conflict
clause keeps the load idempotent (a duplicate is skipped, an account-day merged). Elsewhere
(SQLite) the same statement runs as an executemany INSERT. bench/history_load.py measures it
against a bare COPY of the same rows.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db


def insert_new(table: Table, rows: list[dict], conflict: Sequence[str], returning: str) -> list[Any]:
    """Insert the rows whose `conflict` columns are new; the `returning` column of those inserted."""
    if not rows:
        return []
    if _postgresql():
        columns = list(rows[0])
        temp = _copy_into_temp(table, columns, rows)
        names = ", ".join(f'"{c}"' for c in columns)
        sql = (
            f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM {temp} '
            f'ON CONFLICT ({", ".join(conflict)}) DO NOTHING RETURNING "{returning}"'
        )
        return [row[0] for row in _raw_execute(sql)]
    statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=list(conflict)).returning(table.c[returning])
    return list(db.session.execute(statement, rows).scalars())


def upsert(
    table: Table, rows: list[dict], conflict: Sequence[str], update: Sequence[str], least: str | None = None
) -> None:
    """Insert the rows, or update the `update` columns of the ones whose `conflict` columns exist.
    `least`: a column that keeps the smaller of the stored and the new value instead."""
    if not rows:
        return
    if _postgresql():
        columns = list(rows[0])
        temp = _copy_into_temp(table, columns, rows)
        names = ", ".join(f'"{c}"' for c in columns)
        sets = [f'"{c}" = EXCLUDED."{c}"' for c in update]
        if least:
            sets.append(f'"{least}" = LEAST("{table.name}"."{least}", EXCLUDED."{least}")')
        _raw_execute(
            f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM {temp} '
            f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {', '.join(sets)}",
            fetch=False,
        )
        return
    statement = sqlite_insert(table)
    excluded = statement.excluded
    values: dict[str, Any] = {name: excluded[name] for name in update}  # excluded.values is a method
    if least:
        values[least] = func.min(table.c[least], excluded[least])
    db.session.execute(statement.on_conflict_do_update(index_elements=list(conflict), set_=values), rows)


def _postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


def _driver_connection():
    """The psycopg connection of the session's transaction (COPY needs the driver's API)."""
    return db.session.connection().connection.driver_connection


def _copy_into_temp(table: Table, columns: list[str], rows: list[dict]) -> str:
    # One temporary table per target and column set, kept for the session and emptied at commit.
    temp = f"bulk_{table.name}_{zlib.crc32(','.join(columns).encode()):08x}"
    names = ", ".join(f'"{c}"' for c in columns)
    connection = _driver_connection()
    with connection.cursor() as cursor:
        # Only the columns' types: no defaults (a sequence would be drawn twice), no constraints.
        cursor.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS {temp} ON COMMIT DELETE ROWS AS SELECT {names} FROM "{table.name}" '
            "WITH NO DATA"
        )
        cursor.execute(f"TRUNCATE {temp}")
        converters = [_converter(rows, c) for c in columns]
        with cursor.copy(f"COPY {temp} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([convert(row.get(c)) for c, convert in zip(columns, converters, strict=True)])
    return temp


def _converter(rows: list[dict], column: str):
    """How a column's values go to COPY, decided once per column from its first value: JSON as
    text, times as naive UTC (the columns' convention), the rest as they are."""
    sample = next((row.get(column) for row in rows if row.get(column) is not None), None)
    if isinstance(sample, dict | list):
        return lambda value: None if value is None else json.dumps(value, separators=(",", ":"))
    if isinstance(sample, datetime):
        return lambda value: None if value is None else value.astimezone(UTC).replace(tzinfo=None)
    return _as_is


def _as_is(value: Any) -> Any:
    return value


def _raw_execute(sql: str, fetch: bool = True) -> list[tuple]:
    # Bypassing the ORM: the statement reads a temporary table SQLAlchemy knows nothing of.
    with _driver_connection().cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall() if fetch else []
