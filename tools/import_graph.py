"""The import graph of `app/` and `workers/`, read from the code with `ast`.

The layers a newcomer expects: intake -> processing -> rules -> playbooks in the core,
workers as thin process shells on top, the admin and API as thin adapters. Two rules keep
them: nothing under `app/` imports `workers/` (the core enqueues jobs by name through
app/jobs.py), and no module reaches itself again through its imports, counting the ones
placed inside functions (an import moved into a function hides a circle; it does not remove
it). `python tools/import_graph.py` prints the problems and exits 1 (`make lint` runs it);
tests/system/test_layers.py runs the same check.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "workers")


@dataclass
class ImportGraph:
    modules: dict[str, Path]
    edges: dict[str, set[str]] = field(default_factory=dict)

    def circles(self) -> list[list[str]]:
        """Every strongly connected group of more than one module (Tarjan), sorted."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        found: list[list[str]] = []
        counter = 0

        def visit(node: str) -> None:
            nonlocal counter
            index[node] = low[node] = counter
            counter += 1
            stack.append(node)
            on_stack.add(node)
            for target in sorted(self.edges.get(node, ())):
                if target not in index:
                    visit(target)
                    low[node] = min(low[node], low[target])
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))

        for node in sorted(self.modules):
            if node not in index:
                visit(node)
        return sorted(found)

    def upward_imports(self) -> list[tuple[str, str]]:
        """(module, target) for every module under app/ that imports workers/."""
        return sorted(
            (module, target)
            for module, targets in self.edges.items()
            if module.split(".")[0] == "app"
            for target in targets
            if target.split(".")[0] == "workers"
        )


def build(root: Path = ROOT) -> ImportGraph:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    graph = ImportGraph(modules)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph.edges[name] = {t for t in _imported(ast.parse(path.read_text()), package, modules) if t != name}
    return graph


def _imported(tree: ast.AST, package: str, modules: dict[str, Path]) -> set[str]:
    """The project modules a file imports, at module level or inside functions."""
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(_known(alias.name, modules) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                # `from app.x import y`: y is a module of its own, or a name defined in app.x.
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in modules else _known(source, modules))
    targets.discard(None)
    return targets


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The project module `name` refers to (its nearest package for a name inside it), or None."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def problems(graph: ImportGraph | None = None) -> list[str]:
    graph = graph or build()
    found = [
        f"{module} imports {target}: the core never imports the workers; enqueue by name through app/jobs.py"
        for module, target in graph.upward_imports()
    ]
    found += [f"import circle of {len(group)} modules: {', '.join(group)}" for group in graph.circles()]
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(problem)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
