"""`flask` commands for operators: demo data, the sweeper, checking rule and playbook files."""

from __future__ import annotations

import click
from flask import Flask, current_app


def init_app(app: Flask) -> None:
    @app.cli.command("demo")
    @click.option("--accounts", default=240, show_default=True)
    def demo(accounts: int) -> None:
        """Load the demo team and portfolio (through the real pipeline)."""
        from app.demo import ensure_team, load_portfolio

        ensure_team(current_app.config["ADMIN_PASSWORD"])
        click.echo(f"{load_portfolio(accounts)} events processed")

    @app.cli.command("sweep")
    def sweep_now() -> None:
        """Enqueue events and steps that are stored but not queued (after a Redis outage)."""
        from app.sweeper import sweep

        click.echo(sweep(grace_seconds=0))

    @app.cli.command("check")
    def check_files() -> None:
        """Check rules/, playbooks/, metrics/ and scorecards/ (`python -m app.check` works when they are broken)."""
        from app.check import check

        config = current_app.config
        ok, report = check(
            config["RULES_DIR"], config["PLAYBOOKS_DIR"], config["METRICS_DIR"], config["SCORECARDS_DIR"]
        )
        click.echo(report, err=not ok)
        if not ok:
            raise SystemExit(1)
