"""training/ is in layers whose imports run one way (docs/architecture.md): data -> models ->
engine -> evaluation -> export, and the CLI above them all. Checked on the source, imports
inside functions included, so that no cycle can hide in a deferred import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["data", "models", "engine", "evaluation", "export"]


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / "training").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "training" or len(parts) < 2:
        return None
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


MODULES = _modules()
GRAPH = {m: {i for i in _imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_down_the_layers(module: str) -> None:
    mine = _layer(module)
    if mine is None:  # training, training.__main__: the CLI may import every layer
        return
    for other in GRAPH[module]:
        theirs = _layer(other)
        assert theirs is not None and theirs <= mine, f"{module} imports {other}"


def test_no_import_cycles() -> None:
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> None:
        if m in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(m) :], m]))
        if m in done:
            return
        for n in GRAPH[m]:
            if n.rsplit(".", 1)[0] != m:  # a package's own submodules
                visit(n, [*path, m])
        done.add(m)

    for m in MODULES:
        visit(m, [])
