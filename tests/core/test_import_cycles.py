"""The product's modules import one another without a cycle, read from their source (AST, no import run).

Module-level imports are the graph: everything outside a function body, class bodies and `if`/`try`
blocks included. `import a.b.c` is an edge to `a.b.c`; `from a.b import c` is an edge to `a.b` (its
`__init__` runs and is read) and, where `c` is a module, to `a.b.c` too — so a module that reaches a sibling
through its package's `__init__` closes a cycle whenever that `__init__` imports the module back. An import
inside a function is not an edge: it is lazy, allowed at the CLI edge and where it keeps a heavy
dependency out of a process that does not need it (its reason in a comment beside it), and listed here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Each product folder and the import name pyproject.toml maps it to.
ROOMS = {
    "t2a_ray": "t2a_ray",
    "orchestrator": "t2a_ray.orchestrator",
    "adapters": "t2a_ray.adapters",
    "metering": "t2a_ray.metering",
    "analysis": "t2a_ray.analysis",
}
CLI_EDGE = "t2a_ray/cli.py"  # each command imports what it needs inside itself

# Function-level imports of the product outside the CLI, each justified in a comment at the import.
LAZY = {
    ("adapters/_components.py", "t2a_ray.adapters._diffusers"),  # torch
    ("orchestrator/doctor_fanout.py", "t2a_ray.orchestrator.pool"),  # Ray
    ("orchestrator/doctor_fanout.py", "t2a_ray.orchestrator.runner"),  # Ray
    ("orchestrator/slurm.py", "t2a_ray.metering.gpu"),  # numpy and the meter on each node's check
    ("orchestrator/worker.py", "t2a_ray.orchestrator.scoring"),  # pandas, scipy
    ("orchestrator/worker.py", "t2a_ray.analysis.audio"),  # pandas, matplotlib
}


def product_modules(root: Path = ROOT) -> dict[str, Path]:
    """Import name → file, for every module of the product folders."""
    modules = {}
    for folder, package in ROOMS.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = [p for p in path.relative_to(root / folder).with_suffix("").parts if p != "__init__"]
            modules[".".join([package, *parts])] = path
    return modules


def _targets(node: ast.Import | ast.ImportFrom, package: str, modules: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: up from the module's own package
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return [n for n in names if n in modules]


def scan(root: Path = ROOT) -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """The module-level import graph among product modules, and the function-level imports of product
    modules as (file relative to `root`, imported module)."""
    modules = product_modules(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    lazy: set[tuple[str, str]] = set()
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        rel = path.relative_to(root).as_posix()

        def visit(node: ast.AST, in_function: bool, name: str = name, package: str = package, rel: str = rel):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    visit(child, True)
                elif isinstance(child, (ast.Import, ast.ImportFrom)):
                    for target in _targets(child, package, modules):
                        if in_function:
                            lazy.add((rel, target))
                        else:
                            graph[name].add(target)
                else:
                    visit(child, in_function)

        visit(ast.parse(path.read_text(), str(path)), False)
    return graph, lazy


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with a cycle (Tarjan), each sorted, for a readable failure."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(found)


@pytest.fixture(scope="module")
def product() -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    return scan()


def test_the_product_modules_import_one_another_without_a_cycle(product):
    graph, _ = product
    assert len(graph) > 50  # the scan found the product, not an empty folder
    assert cycles(graph) == []


def test_a_function_level_import_of_the_product_is_at_the_cli_edge_or_keeps_a_heavy_dependency_out(product):
    _, lazy = product
    assert any(rel == CLI_EDGE for rel, _ in lazy)
    assert {(rel, target) for rel, target in lazy if rel != CLI_EDGE} == LAZY


def _tree(root: Path, files: dict[str, str]) -> Path:
    for folder in ROOMS:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (root / rel).write_text(text)
    return root


def test_the_scan_sees_a_cycle_through_a_packages_init_and_none_through_a_direct_import(tmp_path):
    init = "from t2a_ray.analysis.report import x\n"
    through_init = _tree(
        tmp_path / "a",
        {
            "analysis/__init__.py": init,
            "analysis/report.py": "from t2a_ray.analysis import plots\nx = 1\n",
            "analysis/plots.py": "",
        },
    )
    assert cycles(scan(through_init)[0]) == [["t2a_ray.analysis", "t2a_ray.analysis.report"]]
    direct = _tree(
        tmp_path / "b",
        {
            "analysis/__init__.py": init,
            "analysis/report.py": "import t2a_ray.analysis.plots as plots\nx = 1\n",
            "analysis/plots.py": "from .fronts import y\n",
            "analysis/fronts.py": "y = 1\n",
        },
    )
    graph, _ = scan(direct)
    assert cycles(graph) == []
    assert graph["t2a_ray.analysis.plots"] == {"t2a_ray.analysis.fronts"}


def test_the_scan_lists_an_import_inside_a_function_as_lazy_and_draws_no_edge(tmp_path):
    root = _tree(
        tmp_path,
        {
            "metering/__init__.py": "",
            "metering/meter.py": "class M:\n    def f(self):\n        from t2a_ray.metering import gpu\n",
            "metering/gpu.py": "from t2a_ray.metering.meter import M\n",
        },
    )
    graph, lazy = scan(root)
    assert cycles(graph) == []
    assert lazy == {("metering/meter.py", "t2a_ray.metering"), ("metering/meter.py", "t2a_ray.metering.gpu")}
