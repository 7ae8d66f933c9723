"""The package's layers: no import circle (lazy imports count), no upward import."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "exchangis"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name | ast.Attribute) and "TYPE_CHECKING" in ast.unparse(
        node.test
    )


def _imports(path: Path, known: set[str]) -> set[str]:
    """Return the package modules ``path`` imports anywhere but under ``if TYPE_CHECKING``."""
    found: set[str] = set()
    skip: set[int] = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            skip |= {id(n) for child in node.body for n in ast.walk(child)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {name for name in names if name in known}
    return found


def _graph() -> dict[str, set[str]]:
    paths = {_module(p): p for p in ROOT.rglob("*.py")}
    known = set(paths)
    return {name: _imports(path, known) - {name} for name, path in paths.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for nxt in sorted(graph.get(name, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name)):
            return found
    return None


def _package_of(name: str) -> str:
    return name.rsplit(".", 1)[0] if name.count(".") > 1 else name


def test_no_module_imports_itself_back_through_others() -> None:
    graph = _graph()
    # a package's __init__ re-exporting its own modules is not a circle between ideas
    graph = {
        name: {m for m in deps if not (name == _package_of(m) and m.startswith(name + "."))}
        for name, deps in graph.items()
    }
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_lower_layers_never_import_upper_ones() -> None:
    upper = ("exchangis.api", "exchangis.services", "exchangis.engine", "exchangis.schedule")
    lower = ("exchangis.connectors", "exchangis.state", "exchangis.runtime", "exchangis.models")
    graph = _graph()
    wrong = sorted(
        f"{name} -> {dep}"
        for name, deps in graph.items()
        if name.startswith(lower)
        for dep in deps
        if dep.startswith(upper)
    )
    assert wrong == []
