"""The shape of the code (issue 21): no import circle, the CLI on top, one fan-out, short functions.

Static checks over ``src/layerscope`` with :mod:`ast`; they fail the day a change breaks the shape.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "layerscope"

#: Functions allowed over the limit (none is left: split a long function into named stages, as
#: scikit-image's peak_local_max, instead of adding it here).
LONG_FUNCTIONS_ALLOWED: dict[str, int] = {}
MAX_LINES = 80


def _modules() -> dict[str, Path]:
    mods = {}
    for path in sorted(SRC.rglob("*.py")):
        name = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = path
    return mods


MODULES = _modules()
TREES = {name: ast.parse(path.read_text()) for name, path in MODULES.items()}


def _imports(name: str) -> set[str]:
    """layerscope modules imported by ``name`` (``from pkg import sub`` counts as ``pkg.sub``)."""
    out = set()
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("layerscope"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in MODULES else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("layerscope"))
    return {m for m in out if m in MODULES and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circle():
    graph = {name: _imports(name) for name in MODULES}
    assert _cycles(graph) == []


def test_no_domain_module_imports_the_cli():
    offenders = [n for n in MODULES if not n.startswith(("layerscope.cli", "layerscope.__main__"))
                 and any(m.startswith("layerscope.cli") for m in _imports(n))]
    assert offenders == []


def test_dask_compute_only_in_layerscope_parallel():
    offenders = []
    for name, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "compute" and isinstance(node.value, ast.Name) \
                    and node.value.id == "dask":
                offenders.append(name)
            if isinstance(node, ast.ImportFrom) and node.module == "dask" and any(a.name == "compute" for a in node.names):
                offenders.append(name)
    assert set(offenders) <= {"layerscope.parallel"}


def _code_lines(func: ast.AST, source: list[str]) -> int:
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]  # the docstring
    if not body:
        return 0
    lines = source[body[0].lineno - 1:func.end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def test_functions_are_short():
    too_long = {}
    for name, tree in TREES.items():
        source = MODULES[name].read_text().splitlines()
        rel = MODULES[name].relative_to(SRC).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _code_lines(node, source)
                if n > MAX_LINES:
                    too_long[f"{rel}:{node.name}"] = n
    grown = {k: v for k, v in too_long.items() if v > LONG_FUNCTIONS_ALLOWED.get(k, MAX_LINES)}
    assert grown == {}, f"functions over {MAX_LINES} lines of code (or longer than before): {grown}"
