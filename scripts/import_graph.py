"""The import graph of ``src/steadycache``: cycles, and imports that point up the layers.

Every import counts (module level, under ``TYPE_CHECKING``, inside functions): a cycle
hidden in a function is still a cycle in the design. Prints the strongly connected
components of more than one module and the imports that go against ``LAYERS``; exits 1
when there is any (``tests/test_import_graph.py`` runs the same checks).

    python scripts/import_graph.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Final

PACKAGE: Final = "steadycache"
SOURCE: Final = Path(__file__).resolve().parent.parent / "src" / PACKAGE

#: Layers from the top (0) down; a module may import its own layer or any below it. The
#: first matching prefix decides a module's layer.
LAYERS: Final = (
    ("entry points", ("steadycache.cli", "steadycache.demo", "steadycache.integrations")),
    ("public API", ("steadycache.__init__",)),
    (
        "facades",
        (
            "steadycache.cache",
            "steadycache.async_cache",
            "steadycache.namespace",
            "steadycache.async_namespace",
            "steadycache._namespace_base",
            "steadycache._namespace_core",
            "steadycache._decorating",
            "steadycache._signals",
            "steadycache._async",
            "steadycache._sync",
            "steadycache._state",
        ),
    ),
    (
        "behaviour",
        (
            "steadycache.stampede",
            "steadycache.invalidation",
            "steadycache.write_behind",
            "steadycache.observability",
            "steadycache.sizing",
        ),
    ),
    ("stores", ("steadycache.stores", "steadycache.eviction", "steadycache.codecs")),
    # Threads or asyncio: primitives only, below everything that waits.
    ("runtime", ("steadycache._runtime",)),
    ("core", ("steadycache._core",)),
    ("policy", ("steadycache.policy",)),
    ("errors", ("steadycache.errors",)),
)


def module_name(path: Path) -> str:
    relative = path.relative_to(SOURCE.parent).with_suffix("")
    parts = list(relative.parts)
    return ".".join(parts)


def layer_of(module: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                return index
    raise SystemExit(f"import_graph: {module} is in no layer; add it to LAYERS")


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """The steadycache modules ``path`` imports (a package import names its __init__)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # "from pkg import name" imports the submodule pkg.name when there is one, and
            # otherwise a name defined by pkg itself.
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                names.append(submodule if submodule in known else base)
        for name in names:
            if not name.startswith(PACKAGE):
                continue
            target = name if name in known else f"{name}.__init__"
            if target in known and target != module:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in SOURCE.rglob("*.py")}
    known = set(paths)
    return {module: imports_of(path, module, known) for module, path in paths.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def upward(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports from a module to one in a higher layer."""
    return sorted(
        (source, target)
        for source, targets in edges.items()
        for target in targets
        if layer_of(target) < layer_of(source)
    )


def main() -> int:
    edges = graph()
    found_cycles = cycles(edges)
    found_upward = upward(edges)
    for component in found_cycles:
        print("cycle:", " <-> ".join(component))
    for source, target in found_upward:
        print(
            f"upward: {source} ({LAYERS[layer_of(source)][0]}) imports "
            f"{target} ({LAYERS[layer_of(target)][0]})"
        )
    print(f"{len(found_cycles)} cycle(s), {len(found_upward)} upward import(s)")
    return 1 if found_cycles or found_upward else 0


if __name__ == "__main__":
    raise SystemExit(main())
