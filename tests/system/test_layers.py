"""The layers hold: no import circle in app/ and workers/, the core never imports the workers,
and every job the core enqueues by name is a function in workers/ (tools/import_graph.py)."""

from __future__ import annotations

import importlib
import sys
import textwrap

from tests.helpers import ROOT

sys.path.insert(0, str(ROOT / "tools"))

import import_graph  # noqa: E402  (tools/ is not a package)

from app import jobs  # noqa: E402


def test_the_code_has_no_import_circle_and_no_upward_import():
    assert import_graph.problems() == []


def test_the_check_finds_a_circle_hidden_in_a_function_and_an_upward_import(tmp_path):
    """The check itself works: a circle closed only by an import inside a function is found."""
    for relative, text in {
        "app/__init__.py": "",
        "app/a.py": "from app.b import thing\n",
        "app/b.py": "def thing():\n    from app import a\n    from workers.shell import job\n",
        "workers/__init__.py": "",
        "workers/shell.py": "from app.a import thing\n",
    }.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    graph = import_graph.build(tmp_path)
    assert graph.upward_imports() == [("app.b", "workers.shell")]
    assert graph.circles() == [["app.a", "app.b", "workers.shell"]]
    assert len(import_graph.problems(graph)) == 2


def test_every_job_enqueued_by_name_exists_in_the_workers():
    for dotted in jobs.JOB_FUNCTIONS:
        module, _, name = dotted.rpartition(".")
        assert module.startswith("workers."), dotted
        assert callable(getattr(importlib.import_module(module), name)), dotted
