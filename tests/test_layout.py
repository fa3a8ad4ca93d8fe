"""The code's layout as docs/maintainers.md describes it: the import graph between instructor's
modules has no cycle, helper (what learners import) never imports instructor, the confined
kernel's modules (sandbox, limits) need nothing beyond the standard library, and no file of
either package is over 400 lines. Imports inside functions count as much as those at the top.
The tests mirror the code: tests/<package>/test_<module>.py for every module of either package."""

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


@pytest.mark.parametrize("name", ["sandbox", "limits", "warm"])
def test_confined_kernel_modules_need_the_standard_library_only(name):
    """jupyter_client runs sandbox.py (or warm.py, for a warm kernel) by its path, where the
    instructor package (and anything installed for it) may not be importable; they reach their
    siblings the same way."""
    path = ROOT / "instructor" / f"{name}.py"
    siblings = {"sandbox": {"limits"}, "warm": {"sandbox", "limits"}}.get(name, set())
    other = sorted(m for m in imported(f"instructor.{name}", path)
                   if m.split(".")[0] not in sys.stdlib_module_names and m not in siblings)
    assert not other, f"{path.relative_to(ROOT)} imports {other}: standard library only"


@pytest.mark.parametrize("package", ["instructor", "helper"])
def test_no_file_over_400_lines(package):
    long = {str(path.relative_to(ROOT)): n for path in sorted((ROOT / package).rglob("*.py"))
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines (split where the jobs differ): {long}"


# Test files of instructor that are not named after one module. A file named
# test_<module>_<aspect>.py (test_coordinator_cluster.py) is one module's, seen from one side.
TEST_FILES_OF_NO_MODULE: dict[str, str] = {
    "test_bench_round.py": "the benchmark of a whole grading round (tests/bench_round.py) on a tiny class",
    "test_grading_smoke.py": "the quickest end-to-end check: one solved submission through the whole pipeline",
}
NOT_TESTED_ALONE = {"__main__", "testing"}   # the command line (tests/workflow); a helper for tests


def top_modules(package: str) -> set[str]:
    """The top-level modules and packages of ``package``, by name."""
    folder = ROOT / package
    files = {p.stem for p in folder.glob("*.py")} - {"__init__"}
    packages = {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
    return (files | packages) - NOT_TESTED_ALONE


def module_of(test_file: str, names: set[str]) -> str | None:
    """The module ``test_<module>.py`` or ``test_<module>_<aspect>.py`` tests (the longest match)."""
    stem = test_file.removeprefix("test_").removesuffix(".py")
    found = [n for n in names if stem == n or stem.startswith(n + "_")]
    return max(found, key=len) if found else None


@pytest.mark.parametrize("package", ["instructor", "helper"])
def test_tests_mirror_the_package(package):
    """Every module of ``package`` has tests/<package>/test_<module>.py, and every test file there
    names a module (or says in TEST_FILES_OF_NO_MODULE what else it tests)."""
    names = top_modules(package)
    tests = {p.name for p in (ROOT / "tests" / package).glob("test_*.py")}
    missing = sorted(f"test_{n}.py" for n in names if f"test_{n}.py" not in tests)
    assert not missing, f"{package} modules without a test file of their own in tests/{package}: {missing}"
    allowed = set(TEST_FILES_OF_NO_MODULE) if package == "instructor" else set()
    stray = sorted(t for t in tests - allowed if module_of(t, names) is None)
    assert not stray, f"tests/{package} files named after no {package} module: {stray}"
    assert allowed <= tests, "an allowed file that no longer exists: drop it from TEST_FILES_OF_NO_MODULE"


def test_module_of_reads_the_aspect_rule():
    names = {"coordinator", "integrity", "lms"}
    assert module_of("test_coordinator_cluster.py", names) == "coordinator"
    assert module_of("test_coordinator.py", names) == "coordinator"
    assert module_of("test_coordinatorx.py", names) is None
    assert module_of("test_tasks.py", names) is None


def test_one_test_file_reads_the_graded_class():
    """The graded class (tests/conftest.py) costs about ten minutes of grading. pytest-xdist hands
    whole files to its processes, and each process that runs a file using it grades it again, so
    every test that asks for it lives in one file."""
    users = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "graded_class" in {
                    a.arg for a in node.args.args + node.args.kwonlyargs}:
                users.add(path.relative_to(ROOT).as_posix())
    assert users == {"tests/instructor/test_coordinator.py"}, sorted(users)
