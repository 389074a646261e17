"""The service stage stays a thin orchestrator over one module per concept, in short functions."""

from __future__ import annotations

import ast
from pathlib import Path

import finpulse.streams.stages.service as service

MAX_LINES = 50
# the concepts the stage runs (windows.py and the record helpers predate the split)
SPLIT = ("stage", "service_level", "complaints", "satisfaction", "customer_status", "friction")


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function after its docstring (doctests are documentation, not code)."""
    body = node.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and len(body) > 1:
        body = body[1:]
    return (node.end_lineno or node.lineno) - body[0].lineno + 1


def test_no_function_of_the_split_over_fifty_lines():
    sizes = {}
    for name in SPLIT:
        path = Path(service.__file__).parent / f"{name}.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                sizes[f"{name}.{node.name}"] = _code_lines(node)
    assert not {k: n for k, n in sizes.items() if n > MAX_LINES}
    assert sizes["stage.process"] <= 10  # the orchestrator only sequences the concepts
