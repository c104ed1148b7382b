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
        from workers.jobs import sweep

        click.echo(sweep(grace_seconds=0))

    @app.cli.command("check")
    def check() -> None:
        """Load rules/ and playbooks/ and report what is wrong, as file:line: message."""
        from app.catalog import load_catalog
        from app.filecheck import FileErrors

        try:
            loaded = load_catalog(current_app.config["RULES_DIR"], current_app.config["PLAYBOOKS_DIR"])
        except FileErrors as exc:
            click.echo(str(exc), err=True)
            raise SystemExit(1)
        click.echo(f"{len(loaded.ruleset.rules)} rules (version {loaded.ruleset.version}), "
                   f"{len(loaded.playbooks)} playbooks: OK")
