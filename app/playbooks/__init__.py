"""Where playbooks run: loading playbook files, launching runs, moving them on.

`init_app(app)` registers the `flask playbooks ...` commands (app/playbooks/cli.py).
"""

from __future__ import annotations


def init_app(app) -> None:
    from app.playbooks.cli import playbooks

    app.cli.add_command(playbooks)
