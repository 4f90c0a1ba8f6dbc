"""No module of the package imports itself back, however far round: every import statement counts,
at the top, inside a function or under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "digestpub"


def module_names(root: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by its dotted name (a package by its own, for its ``__init__``)."""
    names = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imported(name: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The package's modules that the module ``name`` imports anywhere in its text."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            # ``from a import b`` imports the module a.b when there is one, else a name of a.
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names)
    return {module for module in found if module in modules and module != name}


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    return {name: imported(name, path, modules) for name, path in modules.items()}


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
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
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def _paths(graph: Mapping[str, set[str]], group: list[str]) -> Iterator[str]:
    members = set(group)
    for module in group:
        for target in sorted(graph[module] & members):
            yield f"{module} -> {target}"


def test_no_module_of_the_package_imports_itself_back() -> None:
    graph = import_graph(module_names())
    assert len(graph) > 50, "the walk found the package's modules"
    found = cycles(graph)
    assert found == [], "\n\n".join("\n".join(_paths(graph, group)) for group in found)


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        # a top-level import one way, one inside a function the other way
        (
            {"a/__init__.py": "", "a/b.py": "from a import c\n", "a/c.py": "def f():\n    import a.b\n"},
            [["a.b", "a.c"]],
        ),
        # relative imports, and one under TYPE_CHECKING
        (
            {
                "a/__init__.py": "",
                "a/b.py": "from .c import X\n",
                "a/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from a.d import Y\n",
                "a/d.py": "from . import b\n",
            },
            [["a.b", "a.c", "a.d"]],
        ),
        # a chain with no way back, and names imported from a package's __init__
        ({"a/__init__.py": "X = 1\n", "a/b.py": "from a import X\n", "a/c.py": "from a import b\n"}, []),
    ],
)
def test_a_circle_is_found_however_it_is_imported(
    tmp_path: Path, sources: dict[str, str], expected: list[list[str]]
) -> None:
    for name, text in sources.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cycles(import_graph(module_names(tmp_path / "a"))) == expected
