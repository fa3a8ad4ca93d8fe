"""The code's layout as docs/maintainers.md describes it: the import graph between instructor's
modules has no cycle, helper (what learners import) never imports instructor, the confined
kernel's modules (sandbox, limits) need nothing beyond the standard library, and no file of
either package is over 400 lines. Imports inside functions count as much as those at the top."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from instructor.course import ROOT

MAX_LINES = 400


def modules(package: str) -> dict[str, Path]:
    """{dotted name: file} of every module of ``package`` (a package's ``__init__`` as the package)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: dict | None = None) -> set[str]:
    """Every module name ``path`` (module ``name``) imports, anywhere in it; relative imports made
    absolute; ``from package import x`` as ``package.x`` when that is one of the ``known``
    modules, as ``package`` otherwise."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package
                for _ in range(node.level - 1):
                    up = up.rpartition(".")[0]
                base = f"{up}.{base}" if base else up
            for alias in node.names:
                names.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in (known or {}) else base)
    return names


def import_graph(package: str) -> dict[str, set[str]]:
    """{module: the package's modules it imports}. A bare ``import limits`` beside a module (how
    sandbox.py reaches its sibling by path) counts as an import of that sibling."""
    known = modules(package)
    graph = {}
    for name, path in known.items():
        folder = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for target in imported(name, path, known):
            sibling = f"{folder}.{target}"
            if target.split(".")[0] not in sys.stdlib_module_names and sibling in known:
                target = sibling
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as [a, b, ..., a], or [] when there is none."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node], _ = "open", path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node], _ = "done", path.pop()
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def test_the_graph_sees_lazy_and_relative_imports():
    """The checks below are only as good as the graph: imports inside functions, relative ones
    two levels up and sandbox's import of its sibling by path are all arrows in it."""
    graph = import_graph("instructor")
    assert "instructor.tasks" in graph["instructor.coordinator"], "coordinator imports tasks inside a function"
    assert "instructor.course" in graph["instructor.integrity.scanner"], "from ..course import ..."
    assert "instructor.limits" in graph["instructor.sandbox"], "import limits, by path"
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_instructor_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph("instructor"))
    assert not cycle, "instructor's modules import each other in a circle: " + " -> ".join(cycle)


def test_helper_never_imports_instructor():
    for name, path in modules("helper").items():
        wrong = sorted(m for m in imported(name, path) if m.split(".")[0] == "instructor")
        assert not wrong, f"{path.relative_to(ROOT)} imports {wrong}: learners do not have instructor"


@pytest.mark.parametrize("name", ["sandbox", "limits"])
def test_confined_kernel_modules_need_the_standard_library_only(name):
    """jupyter_client runs sandbox.py by its path, where the instructor package (and anything
    installed for it) may not be importable; it reaches limits.py, its one sibling, the same way."""
    path = ROOT / "instructor" / f"{name}.py"
    siblings = {"limits"} if name == "sandbox" else set()
    other = sorted(m for m in imported(f"instructor.{name}", path)
                   if m.split(".")[0] not in sys.stdlib_module_names and m not in siblings)
    assert not other, f"{path.relative_to(ROOT)} imports {other}: standard library only"


@pytest.mark.parametrize("package", ["instructor", "helper"])
def test_no_file_over_400_lines(package):
    long = {str(path.relative_to(ROOT)): n for path in sorted((ROOT / package).rglob("*.py"))
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines (split where the jobs differ): {long}"
