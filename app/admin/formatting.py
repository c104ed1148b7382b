"""Small HTML pieces shared by list columns and page templates (all output escaped)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from markupsafe import Markup

# One colour per status word, across health, priority, task, run and step statuses.
BADGE = {
    "green": "success",
    "yellow": "warning",
    "red": "danger",
    "black": "dark",
    "urgent": "danger",
    "high": "warning",
    "normal": "primary",
    "low": "secondary",
    "open": "primary",
    "snoozed": "info",
    "done": "success",
    "cancelled": "secondary",
    "running": "primary",
    "waiting": "info",
    "completed": "success",
    "failed": "danger",
    "pending": "light",
    "queued": "info",
    "succeeded": "success",
    "skipped": "light",
}
OPEN_TASK = ("open", "snoozed")


def badge(word: str | None) -> Markup:
    if not word:
        return Markup('<span class="text-muted">&ndash;</span>')
    return Markup('<span class="badge badge-{} status-{}">{}</span>').format(BADGE.get(word, "secondary"), word, word)


def when(value: datetime | date | None) -> Markup:
    """A UTC time, minutes precision; the full ISO value on hover."""
    if value is None:
        return Markup('<span class="text-muted">&ndash;</span>')
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
        return Markup('<time datetime="{}" title="{}">{}</time>').format(
            value.isoformat(), value.isoformat(), value.strftime("%Y-%m-%d %H:%M UTC")
        )
    return Markup('<time datetime="{}">{}</time>').format(value.isoformat(), value.isoformat())


def is_overdue(task) -> bool:
    return task.status in OPEN_TASK and task.due_at is not None and task.due_at < datetime.now(UTC)


def due(task) -> Markup:
    if is_overdue(task):
        return Markup(
            '<span class="overdue text-danger font-weight-bold">{} <span class="badge badge-danger">'
            "overdue</span></span>"
        ).format(when(task.due_at))
    return when(task.due_at)


def money(value: Decimal | int | float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def text(value) -> Markup:
    """A value or a dash."""
    if value is None or value == "":
        return Markup('<span class="text-muted">&ndash;</span>')
    return Markup("{}").format(value)
