"""Automated action types register here with the JSON schema of their `with:` parameters.

The built-in types register when `app.playbooks.actions` is imported (every user of this
registry imports it as `from app.playbooks.actions import registry`). The playbook loader
validates a step's `with:` against the schema; the step job calls `run(ctx)` with an
`ActionContext`. An action must be safe to run twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ActionType:
    name: str
    run: Callable  # run(ctx: ActionContext) -> dict | ActionWait
    params_schema: dict  # JSON schema of `with:` (closed: additionalProperties false)
    description: str = ""
    # Talks to the outside world: retried with backoff by the worker.
    external: bool = False
    timeout: int = 600  # seconds a step of this type may run (a step's `timeout:` overrides it)


REGISTRY: dict[str, ActionType] = {}


def action(
    name: str, params_schema: dict, description: str = "", external: bool = False, timeout: int = 600
) -> Callable[[F], F]:
    """Decorator: register `fn(ctx)` as the action type `name`."""

    def register(fn: F) -> F:
        if name in REGISTRY:
            raise ValueError(f"action type {name!r} registered twice")
        REGISTRY[name] = ActionType(
            name, fn, params_schema, description or (fn.__doc__ or "").strip(), external, timeout
        )
        return fn

    return register


def get(name: str) -> ActionType | None:
    return REGISTRY.get(name)


def names() -> list[str]:
    return sorted(REGISTRY)
