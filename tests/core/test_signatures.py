"""No function of the product takes more than 10 parameters: wider ones pass the object that exists
(a config dataclass, a settings record) instead."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_FOLDERS = ("t2a_ray", "orchestrator", "adapters", "metering", "analysis")
MAX_PARAMETERS = 10


def _parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = fn.args
    names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    names += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
    return [n for n in names if n not in ("self", "cls")]


def wide_functions(root: Path = ROOT) -> list[str]:
    """`path:line name (n)` for each function of the product folders with too many parameters."""
    wide = []
    for folder in PRODUCT_FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = len(_parameters(node))
                    if n > MAX_PARAMETERS:
                        wide.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({n})")
    return wide


def test_no_function_of_the_product_takes_more_than_ten_parameters():
    assert wide_functions() == []


def test_the_count_sees_keyword_only_and_variadic_parameters_and_not_self(tmp_path):
    (tmp_path / "t2a_ray").mkdir()
    params = ", ".join(f"p{i}" for i in range(8))
    (tmp_path / "t2a_ray" / "m.py").write_text(
        f"class C:\n    def ten(self, {params}, *args, **kw): ...\n"
        f"def eleven({params}, p8, *, k, **kw): ...\n"
    )
    assert wide_functions(tmp_path) == ["t2a_ray/m.py:3 eleven (11)"]
