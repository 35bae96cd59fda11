# SPDX-License-Identifier: Apache-2.0
"""No import cycle anywhere in the package, function-level imports included.

The graph is read from the source (every ``import``/``from ... import`` statement, at any depth):
an edge goes from a module to each package module it names. Parent packages that Python runs on
the way to a submodule are not edges: they are how packages work, not a dependency.
"""

from __future__ import annotations

import ast
import os

import autokernel_tvm

ROOT = os.path.dirname(autokernel_tvm.__file__)
PKG = "autokernel_tvm"


def modules() -> dict[str, str]:
    out = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                out[rel.removesuffix(".__init__")] = path
    return out


def edges(name: str, path: str, known: set[str]) -> set[str]:
    is_pkg = path.endswith("__init__.py")
    package = name if is_pkg else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            # `from pkg import mod` names the module; `from pkg import name` the package
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        for target in targets:
            while target and target not in known:  # `from pkg import name`: the module or pkg
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target.startswith(PKG) and target != name:
                out.add(target)
    return out


def test_no_import_cycles():
    mods = modules()
    graph = {name: edges(name, path, set(mods)) for name, path in mods.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_graph_sees_function_level_imports():
    mods = modules()
    graph = {name: edges(name, path, set(mods)) for name, path in mods.items()}
    # space/__init__ imports families and the library only inside task_design_space()
    assert "autokernel_tvm.families.design_space" in graph["autokernel_tvm.space"]
    assert "autokernel_tvm.families" in graph["autokernel_tvm.space.genome"]
