"""Dependencies between the top-level packages point one way (read from the source with
``ast``, lazy imports inside functions included):

    core <- identity <- clients <- licensing <- verification <- holder

``core/`` and ``identity/`` import no domain package and no stand-in (``seed/``); only the
composition root (``app.py``) wires ``seed`` in; no two packages import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("core", "identity", "clients", "licensing", "verification", "holder")
NOT_PRODUCT = {"tests", "bench", "examples", "migrations"}


def _first_party() -> set[str]:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    return (packages - NOT_PRODUCT) | {"app"}


def _sources(name: str) -> list[Path]:
    return [ROOT / "app.py"] if name == "app" else sorted((ROOT / name).rglob("*.py"))


def imports_of(name: str) -> set[str]:
    """The first-party top-level packages that package ``name`` imports (not itself)."""
    first_party = _first_party()
    found: set[str] = set()
    for path in _sources(name):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            found.update(m.split(".")[0] for m in modules if m.split(".")[0] in first_party)
    return found - {name}


def test_the_parser_sees_the_known_edges():
    assert "seed" in imports_of("app")
    assert {"core", "verification"} <= imports_of("holder")


@pytest.mark.parametrize("package", LAYERS)
def test_each_layer_imports_only_the_layers_below(package):
    below = set(LAYERS[: LAYERS.index(package)])
    assert imports_of(package) <= below, (
        f"{package} imports {sorted(imports_of(package) - below)}; allowed: {sorted(below)}"
    )


@pytest.mark.parametrize("package", ["core", "identity"])
def test_core_and_identity_import_no_domain_and_no_stand_in(package):
    assert not imports_of(package) & ({"seed", "app"} | set(LAYERS[2:]))


def test_nothing_but_the_composition_root_imports_app():
    importers = [name for name in _first_party() - {"app"} if "app" in imports_of(name)]
    assert importers == []


def test_no_import_cycle_between_packages():
    graph = {name: imports_of(name) for name in _first_party()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        assert name not in visiting, f"import cycle: {' -> '.join([*visiting, name])}"
        visiting.append(name)
        for target in sorted(graph[name]):
            visit(target)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
