"""The package's layering: no module imports a layer above it, and no import cycles.

Every import statement counts, at module level or inside a function. Layers, bottom to top
(a module may import its own layer and those below)::

    base       fields, errors, paths, cuts, audio, images, metrics, selection, summary, dialogues,
               rephrasing, registry (the generic one), text, redact, threads, tokenizers, serving
    backends   the backend registry and implementations
    config     the configuration schemas; the voice catalog
    stages     transforms (stages), recipes, testing helpers
    run        engine (executors), export (formats)
    apps       pipeline, bench, preflight, curriculum, validate, browse, describe
    cli        bin
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lhotse_triplets"

LAYERS = {
    "base": (
        "fields",
        "errors",
        "paths",
        "cuts",
        "audio",
        "images",
        "metrics",
        "selection",
        "summary",
        "rephrasing",
        "registry",
        "text",
        "redact",
        "threads",
        "dialogues",
        "tokenizers",
        "serving",
        "",  # the package's own __init__
    ),
    "backends": ("backends",),
    "config": ("config", "voices"),
    "stages": ("transforms", "recipes", "testing"),
    "run": ("engine", "export"),
    "apps": ("pipeline", "bench", "preflight", "curriculum", "validate", "browse", "describe"),
    "cli": ("bin",),
}
ORDER = list(LAYERS)


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def layer_of(module: str) -> int:
    """Index in :data:`ORDER` of the layer ``module`` (``lhotse_triplets.x.y``) belongs to."""
    top = module.split(".")[1] if "." in module else ""
    for i, name in enumerate(ORDER):
        if top in LAYERS[name]:
            return i
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS in {__file__}")


def imports_of(module: str) -> set[str]:
    """Package modules ``module`` imports (resolved to the longest existing module name)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".") if is_package else module.split(".")[:-1]
                parent = parent[: len(parent) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in MODULES and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in MODULES and name != module and not module.startswith(name + "."):
                found.add(name)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``"a (layer) imports b (layer)"`` for every import of a layer above."""
    return [
        f"{m} ({ORDER[layer_of(m)]}) imports {t} ({ORDER[layer_of(t)]})"
        for m in sorted(graph)
        for t in sorted(graph[m])
        if layer_of(t) > layer_of(m)
    ]


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Modules ``start`` imports, directly or not."""
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    return seen


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or not (each group once)."""
    reach = {m: reachable(graph, m) for m in graph}
    groups = {
        tuple(sorted({m} | {o for o in reach[m] if m in reach[o]})) for m in graph if m in reach[m]
    }
    return sorted(list(g) for g in groups)


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_no_module_imports_a_layer_above_it():
    assert upward_imports(GRAPH) == []


def test_no_import_cycles():
    assert import_cycles(GRAPH) == []


def test_the_checks_catch_what_they_are_for():
    """On a graph with a stage importing the CLI, and two modules importing each other."""
    graph = {m: set(t) for m, t in GRAPH.items()}
    graph["lhotse_triplets.transforms.gate"].add("lhotse_triplets.bin.cli")
    graph["lhotse_triplets.fields"].add("lhotse_triplets.errors")
    graph["lhotse_triplets.errors"].add("lhotse_triplets.fields")
    assert upward_imports(graph) == [
        "lhotse_triplets.transforms.gate (stages) imports lhotse_triplets.bin.cli (cli)"
    ]
    assert ["lhotse_triplets.errors", "lhotse_triplets.fields"] in import_cycles(graph)
    # ... and the real graph is read: the CLI does import the stage registry.
    assert "lhotse_triplets.transforms.registry" in GRAPH["lhotse_triplets.bin.stages"]
