"""Automated playbook actions, one module per action type.

Importing this package registers the built-in types in `registry` (each module's `@action`).
The registry itself imports none of them, and no action imports the runner: an action that
starts another run gets `ctx.launch` from the runner that calls it.
"""

from app.playbooks.actions import crm, email, launch, offboard, wait, watchlist, webhook

BUILTIN = (crm, email, launch, offboard, wait, watchlist, webhook)
