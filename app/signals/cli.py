"""`flask replay FILE [--process | --history [--skip-bad]]`: loading event files."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from app.extensions import db
from app.models.score import HealthScore
from app.signals.event_files import read_numbered
from app.signals.history import BadFile, load_history
from app.signals.replay import replay, work


def init_app(app: Flask) -> None:
    app.cli.add_command(scorecards_cli)
    app.cli.add_command(metrics_cli)

    @app.cli.command("replay")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--process", is_flag=True, help="process the events here too (no worker needed)")
    @click.option(
        "--history",
        is_flag=True,
        help="load as history, set-based: rollups and daily scores, no playbook for the past",
    )
    @click.option("--skip-bad", is_flag=True, help="with --history: load the good rows of a file with bad ones")
    def replay_command(file: Path, process: bool, history: bool, skip_bad: bool) -> None:
        """Load a history of events (JSON lines or CSV): through the normal intake, or --history."""
        if history:
            _load_history(file, skip_bad, process)
            return
        totals = replay(file, process)
        click.echo(f"{totals['accepted']} accepted, {totals['duplicates']} duplicates")


def _load_history(file: Path, skip_bad: bool, process: bool) -> None:
    size = sum(1 for _ in read_numbered(file))
    with click.progressbar(length=size, label=f"loading {file.name}") as bar:
        try:
            report = load_history(file, skip_bad=skip_bad, progress=bar.update)
        except BadFile as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(report.summary())
    if process:
        work()


scorecards_cli = AppGroup("scorecards", help="Check how well the health score predicts churn; tune its bands.")


@scorecards_cli.command("validate")
@click.option("--since", "since_days", default="365d", show_default=True, help="observations of the last N days")
@click.option("--horizon", default="30d", show_default=True, help="churn within this many days counts")
@click.option("--lead", default=5, show_default=True, help="days before each monthly anniversary")
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a CSV of account_id,churn_date (default: the health history, turned black)",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of Markdown")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="where validation.md and validation.json go (default: the instance folder)",
)
def validate_command(
    since_days: str, horizon: str, lead: int, labels: Path | None, as_json: bool, out: Path | None
) -> None:
    """AUC, band churn rates, deciles and each indicator's own AUC over the stored history."""
    from app.signals.validation import validate, write

    last = db.session.scalar(select(func.max(HealthScore.day)))
    since = last - timedelta(days=_days(since_days)) if last else None
    report = validate(since=since, horizon=_days(horizon), lead=lead, labels=labels)
    write(report, out or Path(current_app.instance_path) / "validation")
    if as_json:
        click.echo(json.dumps(report.as_json(), default=str))
    else:
        click.echo(report.markdown())


def _days(text: str) -> int:
    try:
        return int(text.removesuffix("d"))
    except ValueError:
        raise click.BadParameter(f"{text!r}: a number of days, e.g. 30d") from None


@scorecards_cli.command("calibrate")
@click.option("--scorecard", default="default", show_default=True)
@click.option(
    "--share",
    "shares",
    multiple=True,
    default=("red=0.2", "yellow=0.3"),
    show_default=True,
    help="BAND=SHARE of account-days wanted in a worse band (repeat for each)",
)
@click.option("--since", "since_days", default="90d", show_default=True, help="the stored scores of the last N days")
@click.option("--write", is_flag=True, help="write the suggested thresholds into the scorecard's file")
def calibrate_command(scorecard: str, shares: tuple[str, ...], since_days: str, write: bool) -> None:
    """Suggest band thresholds from the stored scores (e.g. red = the worst 20% of account-days)."""
    from app.signals.validation import calibrate, write_bands

    wanted = {}
    for text in shares:
        band, _, share = text.partition("=")
        try:
            wanted[band.strip()] = float(share)
        except ValueError:
            raise click.BadParameter(f"{text!r}: write BAND=SHARE, e.g. red=0.2") from None
    last = db.session.scalar(select(func.max(HealthScore.day)))
    since = last - timedelta(days=_days(since_days)) if last else None
    try:
        result = calibrate(scorecard, wanted, since)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"scorecard {scorecard}: {result.account_days:,} account-days since {since}")
    for band, threshold in result.suggested.items():
        now_share = result.current_shares.get(band)
        share_text = "n/a" if now_share is None else f"{now_share:.0%}"
        click.echo(
            f"  {band:<8} now from {result.current.get(band)} ({share_text} of days), suggested from {threshold}"
        )
    if write:
        try:
            path = write_bands(scorecard, result.suggested, current_app.config["SCORECARDS_DIR"])
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"written to {path}; the running server reloads it")
    else:
        click.echo("(nothing written: add --write to put the suggested thresholds in the file)")


@scorecards_cli.command("rescore")
def rescore_command() -> None:
    """Recompute every stored daily score with the live scorecards (after changing one, before validate)."""
    from app import catalog
    from app.models import Account
    from app.signals.history import score_accounts

    last = db.session.scalar(select(func.max(HealthScore.day)))
    if last is None:
        raise click.ClickException("no scores stored yet: load a history first (flask replay FILE --history)")
    accounts = db.session.scalars(select(Account.id).where(Account.first_day.is_not(None))).all()
    written = score_accounts(list(accounts), last, catalog.current().metrics)
    click.echo(f"{written:,} daily scores of {len(accounts):,} accounts recomputed through {last}")


metrics_cli = AppGroup("metrics", help="The declared health indicators (metrics/*.yml).")


@metrics_cli.command("test")
def metrics_test_command() -> None:
    """Run the metric files' samples against the live declarations."""
    from app import catalog
    from app.signals.samples import failing_metric_samples, load_metric_samples

    samples = load_metric_samples(current_app.config["METRICS_DIR"])
    failures = failing_metric_samples(catalog.current().metrics, samples)
    for failure in failures:
        click.echo(str(failure), err=True)
    if failures:
        raise SystemExit(1)
    click.echo(f"{len(samples)} metric samples: OK")


@metrics_cli.command("show")
@click.argument("account_id")
@click.option("--at", "at_day", help="the day (YYYY-MM-DD; default today)")
def metrics_show_command(account_id: str, at_day: str | None) -> None:
    """Every metric of an account as of a day, declared and built in."""
    from datetime import UTC, date, datetime

    from app.signals.metrics import metrics_for

    day = date.fromisoformat(at_day) if at_day else datetime.now(UTC).date()
    values = metrics_for(account_id, datetime.combine(day, datetime.max.time(), tzinfo=UTC))
    if not values:
        raise click.ClickException(f"no account {account_id!r}")
    width = max(len(name) for name in values)
    for name, value in values.items():
        click.echo(f"{name:<{width}}  {'-' if value is None else value}")


@metrics_cli.command("rebuild")
def metrics_rebuild_command() -> None:
    """Recompute the declared series of every stored event, then every daily score."""
    from app.signals.history import rebuild_series

    summary = rebuild_series()
    click.echo(
        f"{summary['events']:,} events, {summary['account_days']:,} account-days, "
        f"{summary['accounts']:,} accounts, {summary['scores']:,} daily scores"
    )
