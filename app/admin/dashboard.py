"""The executive dashboard page for managers and CS ops (/admin/dashboard/).

The figures (app/admin/dashboard_figures.py) are computed by a worker and kept in Redis per
scope (app/admin/dashboard_snapshot.py): the page reads them and draws the charts
(app/admin/charts.py, inline SVG). Managers see their team's portfolio, CS ops and admins
everyone's; the page says as of when its figures are.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask_admin import expose
from flask_login import current_user

from app.admin import charts, dashboard_snapshot
from app.admin.access import OPERATORS
from app.admin.dashboard_figures import TREND_WEEKS, moving_average, trend, week_points
from app.admin.views import AdminView
from app.models import HEALTH_STATUSES


class DashboardView(AdminView):
    roles = OPERATORS

    @expose("/")
    def index(self) -> str:
        snapshot = dashboard_snapshot.for_page(datetime.now(UTC))
        as_of = datetime.fromisoformat(snapshot["as_of"])
        points = week_points(as_of)
        labels = [(p - timedelta(days=1)).strftime("%d %b") for p in points[:-1]] + ["now"]
        over_time, black_weekly = snapshot["history"]["over_time"], snapshot["history"]["cancellations"]
        live = snapshot["live"]
        now_counts, load = live["now_counts"], live["load"]
        scores_weekly = snapshot["scores_weekly"]
        known = [v for v in scores_weekly if v is not None]
        return self.render(
            "triage_admin/dashboard.html",
            charts=charts,
            total=sum(v["count"] for v in now_counts.values()),
            now_counts=now_counts,
            statuses=HEALTH_STATUSES,
            over_time=over_time,
            labels=labels,
            black_weekly=black_weekly,
            black_trend=trend(black_weekly),
            black_average=moving_average(black_weekly),
            weeks_back=TREND_WEEKS,
            before={s: values[-1 - TREND_WEEKS] for s, values in over_time.items()},
            scores=live["scores"],
            breakdowns=live["breakdowns"],
            load=load,
            as_of=as_of,
            scores_weekly=[v if v is not None else 0 for v in scores_weekly] if known else [],
            score_trend=trend(known, min(TREND_WEEKS, max(1, len(known) // 2))) if len(known) >= 2 else None,
            overloaded={r["name"] for r in load if r.get("overloaded")},
            heading="My team's portfolio" if current_user.role == "manager" else "Portfolio",
        )
