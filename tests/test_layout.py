"""The package's layering: stages talk through files, share only components, and no import goes round in a circle.

Every import in `src/rdistill` (module level or inside a function) is read with `ast`. Stages may
import their own package and components; components import only components; the entry points
(CLI, pipeline, sweep, serve) may import anything. Any strongly connected group of modules is a
circle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from helpers import REPO
from rdistill.pipeline import STAGES

PACKAGE = REPO / "src" / "rdistill"
COMPONENTS = {
    "analysis",
    "backends",
    "grading",
    "training",
    "similarity",
    "data",
    "config",
    "micro",
    "console",
    "errors",
    "cluster",
    "models",
    "signals",
}
ENTRY_POINTS = {"", "cli", "pipeline", "sweep", "science", "serve", "check", "plan", "__main__"}


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The package module an imported name lives in (its longest known prefix)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (`from rdistill.x import y` counts y when y is a module)."""
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rdistill":
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = [t if t in known else node.module for t in targets]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.split(".")[0] == "rdistill"]
            graph[name] |= {target for t in targets if (target := resolve(t, known)) and target != name}
    return graph


def layer(module: str) -> str:
    """The top-level part of the package a module belongs to ('' for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
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


def test_every_top_level_part_is_a_stage_a_component_or_an_entry_point():
    parts = {layer(module) for module in modules()}
    assert parts == set(STAGES) | COMPONENTS | ENTRY_POINTS


def test_no_stage_imports_another_stage_and_no_component_imports_a_stage():
    graph = import_graph()
    wrong = []
    for module, imported in graph.items():
        for target in imported:
            source_layer, target_layer = layer(module), layer(target)
            if source_layer in STAGES and target_layer in STAGES and source_layer != target_layer:
                wrong.append(f"stage {module} imports stage {target}")
            if source_layer in COMPONENTS and target_layer not in COMPONENTS:
                wrong.append(f"component {module} imports {target}")
            if source_layer in STAGES and target_layer in ENTRY_POINTS:
                wrong.append(f"stage {module} imports entry point {target}")
    assert wrong == []


def test_no_import_circle():
    assert circles(import_graph()) == []


def test_the_checks_see_a_circle_and_a_stage_to_stage_import():
    graph = {
        "rdistill.a": {"rdistill.b"},
        "rdistill.b": {"rdistill.c"},
        "rdistill.c": {"rdistill.a"},
        "rdistill.d": set(),
    }
    assert circles(graph) == [["rdistill.a", "rdistill.b", "rdistill.c"]]
    real = import_graph()
    assert "rdistill.grading" in real["rdistill.evaluate"], "evaluate grades through the grading component"
    assert "rdistill.backends" in real["rdistill.generate"]


def test_the_readme_table_of_commands_is_the_stage_table():
    from rdistill.pipeline import commands_markdown

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert commands_markdown() in readme, "regenerate: python -m rdistill.pipeline, into the README's table"


def test_nothing_imports_ray_or_vllm_unless_asked():
    """Ray and vLLM are optional: the CLI, every stage and local grading import neither."""
    probe = (
        "import sys\n"
        "import rdistill.cli, rdistill.pipeline, rdistill.backends\n"
        "from rdistill.grading import grade_many\n"
        "grade_many([({'id': 'a', 'domain': 'math', 'answer': '2'}, '\\\\boxed{2}')], workers=1)\n"
        "print(sorted(name for name in ('ray', 'vllm') if name in sys.modules))\n"
    )
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert output.splitlines()[-1] == "[]"
