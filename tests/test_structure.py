"""The shape of the package: no import cycles, a small App, typed plans."""

from __future__ import annotations

import ast
from pathlib import Path

import livepages

PACKAGE = Path(livepages.__file__).resolve().parent


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str], root: Path = PACKAGE) -> set[str]:
    """Every module of ``modules`` that ``path`` imports, anywhere in it: at the top,
    in functions, and under ``if TYPE_CHECKING`` (a type-only import is a cycle too)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    found.add(f"{base}.{alias.name}")
                elif base in modules:
                    found.add(base)
    found.discard(name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the path that closes it, or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def import_graph(root: Path) -> dict[str, set[str]]:
    files = list(root.rglob("*.py"))
    modules = {module_name(path, root) for path in files}
    return {module_name(path, root): imports_of(path, modules, root) for path in files}


def test_no_module_of_livepages_imports_itself_back() -> None:
    graph = import_graph(PACKAGE)
    # The package's own __init__ re-exports everything; nothing inside imports it.
    assert all("livepages" not in targets for name, targets in graph.items() if name != "livepages")
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_a_type_only_or_relative_import_counts(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import thing\n"
    )
    assert find_cycle(import_graph(package)) == ["pkg.a", "pkg.b", "pkg.a"]


def test_the_app_class_stays_small() -> None:
    tree = ast.parse((PACKAGE / "app.py").read_text())
    [app] = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "App"]
    assert app.end_lineno is not None
    assert app.end_lineno - app.lineno + 1 < 250


def test_page_specs_carry_no_untyped_extras() -> None:
    source = "\n".join(path.read_text() for path in PACKAGE.rglob("*.py"))
    assert ".extra[" not in source
    assert "spec.extra" not in source
