"""Score quality: how well the live health scorecards predict churn on the stored history
(/admin/score-quality/).

The page shows the last report `flask scorecards validate` wrote (app/signals/validation.py):
instance/validation/validation.json, as of the file's time. "Run validation now" enqueues the
same work as a maintenance job (app/jobs.py `enqueue_validation`, run by
workers/maintenance.py `validate_scorecards`), which writes the file this page reads, and puts
the request in the audit log. Managers may read the report (as they read the Rules page), CS
ops and admins may also run it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from flask import abort, current_app, flash, redirect, url_for
from flask_admin import expose
from flask_login import current_user
from werkzeug.wrappers import Response

from app import audit
from app.admin import charts
from app.admin.access import EVERYTHING, OPERATORS
from app.admin.views import AdminView
from app.extensions import db
from app.jobs import enqueue_validation
from app.signals.validation import MIN_CHURNERS

log = logging.getLogger(__name__)
REPORT = "validation.json"
CLI = "flask --app wsgi scorecards validate"


def report_folder() -> Path:
    """Where the report is written and read: the instance folder's validation/ (the CLI's default too)."""
    return Path(current_app.instance_path) / "validation"


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _rate(value: Any) -> float | None:
    return None if value is None else float(value)


def read_report(folder: Path) -> tuple[dict | None, datetime | None, str | None]:
    """(the report, as of when, a problem): the report as the page shows it, None when there is
    none yet; the problem says why a file that exists could not be shown."""
    path = folder / REPORT
    try:
        as_of = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None, None
    except (OSError, ValueError) as exc:  # unreadable, or half-written: a reload will tell
        log.warning("score quality: %s unreadable: %s", path, exc)
        return None, None, f"The last report ({REPORT}) could not be read: {exc.__class__.__name__}."
    try:
        return _shaped(raw), as_of, None
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        log.warning("score quality: %s is not a report: %s", path, exc)
        return None, as_of, f"The last report ({REPORT}) is not in the form this page reads."


def _shaped(raw: dict) -> dict:
    """The JSON of a ValidationReport as the template uses it (numbers as numbers, lists of rows)."""
    interval = raw.get("auc_interval")
    bands = [
        {
            "band": str(name),
            "observations": int(row.get("observations") or 0),
            "churners": _rate(row.get("churners")),
            "others": _rate(row.get("others")),
            "churn_rate": _rate(row.get("churn_rate")),
        }
        for name, row in (raw.get("bands") or {}).items()
    ]
    deciles = [
        {
            "decile": int(row["decile"]),
            "low": row.get("low"),
            "high": row.get("high"),
            "churn_rate": _rate(row.get("churn_rate")),
        }
        for row in raw.get("deciles") or []
    ]
    indicators = [
        {
            "metric": str(row["metric"]),
            "auc": _rate(row.get("auc")),
            "says": str(row.get("says") or ""),
            "agrees": row.get("agrees"),
            "observations": int(row.get("observations") or 0),
        }
        for row in raw.get("indicators") or []
    ]
    return {
        "observations": int(raw.get("observations") or 0),
        "churners": int(raw.get("churners") or 0),
        "auc": _rate(raw.get("auc")),
        "auc_interval": (float(interval[0]), float(interval[1])) if interval else None,
        "churn_rate": _rate(raw.get("churn_rate")),
        "top_decile_lift": _rate(raw.get("top_decile_lift")),
        "since": raw.get("since"),
        "last_day": raw.get("last_day"),
        "horizon_days": raw.get("horizon_days"),
        "lead_days": raw.get("lead_days"),
        "labels": raw.get("labels"),
        "bands": bands,
        "deciles": deciles,
        "indicators": indicators,
        "wrong_way": [row for row in indicators if row["agrees"] is False],
        "too_few": bool(raw.get("observations")) and int(raw.get("churners") or 0) < MIN_CHURNERS,
        "min_churners": MIN_CHURNERS,
    }


def _percent(value: float | None) -> float | None:
    return None if value is None else value * 100


class ScoreQualityView(AdminView):
    roles = OPERATORS  # managers read; CS ops and admins run (may_run), as on the Rules page

    def may_run(self) -> bool:
        return current_user.is_authenticated and current_user.role in EVERYTHING

    @expose("/")
    def index(self) -> str:
        report, as_of, problem = read_report(report_folder())
        band_chart = decile_chart = None
        if report and report["bands"]:
            band_chart = charts.bars(
                [row["band"] for row in report["bands"]],
                [_percent(row["churn_rate"]) for row in report["bands"]],
                "Churn rate by band",
                fills=[charts.colour(row["band"]) for row in report["bands"]],
                unit="%",
            )
        if report and report["deciles"]:
            decile_chart = charts.bars(
                [f"{row['low']}–{row['high']}" for row in report["deciles"]],
                [_percent(row["churn_rate"]) for row in report["deciles"]],
                "Churn rate by score decile, lowest scores first",
                fills=["#17a2b8"] * len(report["deciles"]),
                unit="%",
                width=720,
            )
        return self.render(
            "triage_admin/score_quality.html",
            report=report,
            as_of=as_of,
            problem=problem,
            band_chart=band_chart,
            decile_chart=decile_chart,
            may_run=self.may_run(),
            cli=CLI,
            pct=pct,
            num=num,
        )

    @expose("/run", methods=["POST"])
    def run(self) -> Response:
        if not self.may_run():
            abort(403)
        try:
            queued = enqueue_validation()
        except redis.RedisError as exc:
            log.warning("score quality: could not enqueue the validation: %s", exc)
            flash("Redis is not reachable: no validation was queued. Try again, or run the command.", "danger")
            return redirect(url_for(".index"))
        if not queued:
            flash("A validation run is already queued or running: its report appears here when it is done.", "info")
            return redirect(url_for(".index"))
        audit.record(
            current_user.email,
            "scorecards.validation_requested",
            "scorecards",
            "validation",
            summary="Scorecard validation requested (a maintenance job)",
        )
        db.session.commit()
        flash("Validation queued: the new report appears here once a worker has run it (see Queues).", "success")
        return redirect(url_for(".index"))
