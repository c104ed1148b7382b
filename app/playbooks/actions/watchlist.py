"""add_to_watch_list / remove_from_watch_list: keep an eye on an account (a named list)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.models.types import utcnow
from app.models.watchlist import WatchListEntry
from app.playbooks.actions.context import ActionContext
from app.playbooks.actions.registry import action

_LIST = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]*$", "description": "the list's name"}
ADD = {
    "type": "object",
    "additionalProperties": False,
    "required": ["list"],
    "properties": {"list": _LIST, "reason": {"type": "string"}},
}
REMOVE = {"type": "object", "additionalProperties": False, "required": ["list"], "properties": {"list": _LIST}}


def active_entry(list_name: str, account_id: str) -> WatchListEntry | None:
    return db.session.execute(
        select(WatchListEntry)
        .where(
            WatchListEntry.list_name == list_name,
            WatchListEntry.account_id == account_id,
            WatchListEntry.removed_at.is_(None),
        )
        .limit(1)
    ).scalar_one_or_none()


@action("add_to_watch_list", ADD)
def add_to_watch_list(ctx: ActionContext) -> dict[str, Any]:
    """Put the account on a watch list (once: already on it is fine)."""
    entry = active_entry(ctx.params["list"], ctx.account.id)
    if entry is not None:
        return {"list": entry.list_name, "entry": entry.id, "already": True}
    entry = WatchListEntry(
        list_name=ctx.params["list"], account_id=ctx.account.id, run_id=ctx.run.id, reason=ctx.params.get("reason")
    )
    db.session.add(entry)
    db.session.flush()
    return {"list": entry.list_name, "entry": entry.id, "already": False}


@action("remove_from_watch_list", REMOVE)
def remove_from_watch_list(ctx: ActionContext) -> dict[str, Any]:
    """Take the account off a watch list (not on it is fine)."""
    entry = active_entry(ctx.params["list"], ctx.account.id)
    if entry is None:
        return {"list": ctx.params["list"], "removed": False}
    entry.removed_at, entry.removed_by_run_id = utcnow(), ctx.run.id
    return {"list": entry.list_name, "removed": True, "entry": entry.id}
