"""What an action gets to work with, and what it may answer besides a result dict."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from app.models import Account, PlaybookRun, RunStep


@dataclass
class ActionContext:
    step: RunStep
    run: PlaybookRun
    account: Account
    params: dict  # the step's `with:`, rendered
    template_context: dict  # account, event, params, run: for templates the action renders
    # launch(playbook name, params) -> the new run, or None when one is already open: given by
    # the runner, so an action can start a run without importing the runner.
    launch: Callable[[str, dict], PlaybookRun | None]


@dataclass(frozen=True)
class ActionWait:
    """Returned by an action that must wait: the step is run again at `until`."""

    until: datetime
