"""The package's imports read top-down: no cycles, and no module importing a layer above it.

The layers and the checks are ``scripts/import_graph.py`` (run it to see the graph's
problems by name); this test fails when a cycle or an upward import comes back.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "import_graph.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_cycles() -> None:
    graph = load_script()
    assert graph.cycles(graph.graph()) == []


def test_no_module_imports_a_layer_above_its_own() -> None:
    graph = load_script()
    assert graph.upward(graph.graph()) == []


def test_every_module_has_a_layer() -> None:
    graph = load_script()
    for module in graph.graph():
        graph.layer_of(module)  # raises SystemExit naming a module no layer covers


def test_the_checks_see_a_cycle_and_an_upward_import() -> None:
    graph = load_script()
    edges = {
        "steadycache.stores.memory": {"steadycache.cache"},  # stores importing a facade
        "steadycache.cache": {"steadycache.stores.memory"},
    }
    assert graph.cycles(edges) == [["steadycache.cache", "steadycache.stores.memory"]]
    assert graph.upward(edges) == [("steadycache.stores.memory", "steadycache.cache")]
