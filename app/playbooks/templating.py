"""Sandboxed rendering of playbook text: undefined names are errors, not blanks."""
from __future__ import annotations

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def render(template: str, context: dict) -> str:
    return _env.from_string(template).render(**context)


def render_params(params, context: dict):
    """Render every string inside an action's `with:` parameters."""
    if isinstance(params, str):
        return render(params, context)
    if isinstance(params, dict):
        return {key: render_params(value, context) for key, value in params.items()}
    if isinstance(params, list):
        return [render_params(value, context) for value in params]
    return params
