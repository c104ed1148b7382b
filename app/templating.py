"""The one Jinja environment for file templates (playbook texts, rule params): sandboxed, and
an undefined name is an error, not a blank. app/filecheck.py compiles with it at load; the
runner and the enforcer render with it."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

ENVIRONMENT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


@lru_cache(maxsize=2048)
def _compiled(template: str):
    """Compiling is most of a render's cost (about 2 ms); playbook texts are few and reused.
    Bounded, so texts that change with each reload cannot grow it without end."""
    return ENVIRONMENT.from_string(template)


def render(template: str, context: dict) -> str:
    if "{" not in template:  # plain text: nothing to render
        return template
    return _compiled(template).render(**context)


def render_params(params: Any, context: dict) -> Any:
    """Render every string inside an action's `with:` parameters."""
    if isinstance(params, str):
        return render(params, context)
    if isinstance(params, dict):
        return {key: render_params(value, context) for key, value in params.items()}
    if isinstance(params, list):
        return [render_params(value, context) for value in params]
    return params
