"""The house: every module imports only its own layer or the layers below it.

Tasks parse flags and build chains; the chain plans and applies steps; steps plan with the domain
modules (importing, carzip, car) over the engine (transfer, plan), the model, configuration and S3.
Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.cli import PROJECT_ROOT

# Top to bottom. A module may import modules of its own layer or of a layer further down.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("drtasks.cli", "drtasks.tasks"),
    ("drtasks.render", "drtasks.model_render", "drtasks.plot", "drtasks.droa_render"),
    ("drtasks.chain",),
    ("drtasks.steps",),
    ("drtasks.importing", "drtasks.carzip", "drtasks.car", "drtasks.demo", "drtasks.locals3", "drtasks.progress", "drtasks.inventory", "drtasks.checkpoint_report"),
    ("drtasks.transfer", "drtasks.lease", "drtasks.resume", "drtasks.folder"),
    ("drtasks.plan",),
    ("drtasks.manifest", "drtasks.training_params", "drtasks.backup"),
    ("drtasks.model", "drtasks.sample_model", "drtasks.metrics", "drtasks.checkpoint_choice", "drtasks.model_check", "drtasks.sample_graph", "drtasks.real_model"),
    ("drtasks.config",),
    ("drtasks.s3", "drtasks.s3lean", "drtasks.units", "drtasks.data", "drtasks.graph"),
    ("drtasks.errors", "drtasks.startup", "drtasks.secrets", "drtasks.timeouts", "drtasks.processes", "drtasks"),
)
TASK_HELPERS = ("drtasks.tasks.common", "drtasks.tasks.runner", "drtasks.tasks.namespace")


def layer_of(module: str) -> int:
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            # The package itself sits at the bottom; its modules each need a place of their own.
            if module == prefix or (prefix != "drtasks" and module.startswith(prefix + ".")):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS"
    return best[0]


def modules() -> dict[str, Path]:
    root = PROJECT_ROOT / "drtasks"
    found = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, name: str) -> set[str]:
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules()}
    return {module for module in found if module == "drtasks" or module.startswith("drtasks.")}


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_imports_one_above_it(name: str) -> None:
    own = layer_of(name)
    above = sorted(m for m in imports(modules()[name], name) if layer_of(m) < own)
    assert above == [], f"{name} (layer {own}) imports from above: {above}"


@pytest.mark.parametrize("name", sorted(m for m in modules() if m.startswith("drtasks.tasks.") and m not in TASK_HELPERS))
def test_a_task_module_never_calls_into_another_task_module(name: str) -> None:
    others = sorted(m for m in imports(modules()[name], name) if m.startswith("drtasks.tasks.") and m not in TASK_HELPERS and m != name)
    assert others == [], f"{name} imports {others}"
