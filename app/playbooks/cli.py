"""`flask playbooks ...`: check playbook files, list action types, cancel a run."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

playbooks = AppGroup("playbooks", help="Playbook files and runs.")


@playbooks.command("check")
@click.argument("folder", required=False)
def check(folder: str | None) -> None:
    """Check playbook files (default: PLAYBOOKS_DIR); prints `file:line:column: ...` and exits 1 on errors."""
    from app.filecheck import FileErrors
    from app.playbooks.loader import load_playbooks

    folder = folder or current_app.config["PLAYBOOKS_DIR"]
    try:
        loaded = load_playbooks(folder)
    except FileErrors as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    steps = sum(len(p.steps) for p in loaded.values())
    click.echo(f"{len(loaded)} playbooks, {steps} steps in {folder}: OK")


@playbooks.command("actions")
def actions() -> None:
    """List the automated action types and the JSON schema of their `with:` parameters."""
    from app.playbooks.actions import registry

    for name in registry.names():
        action = registry.get(name)
        assert action is not None  # one of the registered names
        click.echo(f"{name}: {action.description.splitlines()[0] if action.description else ''}")
        click.echo("  " + json.dumps(action.params_schema.get("properties", {}), sort_keys=True))


@playbooks.command("cancel")
@click.argument("run_id", type=int)
@click.option("--note", default=None, help="why (kept on the run and in the audit log)")
@click.option("--actor", default="cli", show_default=True)
def cancel(run_id: int, note: str | None, actor: str) -> None:
    """Cancel an open playbook run."""
    from app.playbooks.lifecycle import cancel_run
    from app.playbooks.tasks import TaskError

    try:
        run = cancel_run(run_id, actor, note)
    except TaskError as exc:
        click.echo(exc.message, err=True)
        raise SystemExit(1) from None
    click.echo(f"run {run.id} cancelled: {run.status_note}")
