"""Dashboard refreshes: the figures are computed here, never in a page view
(app/admin/dashboard_snapshot.py). `warm_dashboards` runs periodically (workers/schedule.py);
`refresh_dashboard` when a page found its scope's figures stale."""
from __future__ import annotations

from app.admin import dashboard_snapshot
from workers.context import with_app


@with_app
def warm_dashboards() -> list[str]:
    return dashboard_snapshot.refresh()


@with_app
def refresh_dashboard(scope: str) -> list[str]:
    return dashboard_snapshot.refresh(scope)
