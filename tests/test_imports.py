"""The package imports one way down: no module of vidsage_core imports (directly or through others)
a module that imports it back, and every module imports on its own in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from vidsage_core import paths

PACKAGE = paths.ROOT / "vidsage_core"


def _module_name(path: Path) -> str:
    parts = path.relative_to(paths.ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    """module -> package modules it imports anywhere in its source (function-level imports too:
    a lazy import closes a circle just the same, it only hides it until call time)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")
                    base = ".".join(up[: len(up) - node.level + 1] + ([base] if base else []))
                # "from pkg import mod" imports the submodule pkg.mod when it exists.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                while t and t not in modules:  # vidsage_core.data.reader.X -> vidsage_core.data.reader
                    t = t.rpartition(".")[0]
                if t and t != name:  # a package __init__'s re-exports count: they run on import
                    deps.add(t)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path [a, b, ..., a], or None (depth-first search, three colours)."""
    colour = dict.fromkeys(graph, 0)
    stack: list[str] = []

    def visit(u: str) -> list[str] | None:
        colour[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if colour[v] == 1:
                return stack[stack.index(v):] + [v]
            if colour[v] == 0:
                found = visit(v)
                if found:
                    return found
        stack.pop()
        colour[u] = 2
        return None

    for u in sorted(graph):
        if colour[u] == 0:
            found = visit(u)
            if found:
                return found
    return None


def test_find_cycle_on_hand_made_graphs():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond is not a circle


def test_no_import_circle_in_the_package():
    graph = import_graph()
    assert "vidsage_core.embed" in graph["vidsage_core.train"]  # the parser sees real imports
    assert find_cycle(graph) is None, f"import circle: {' -> '.join(find_cycle(graph))}"


def test_layering_one_way_down():
    # data -> knn / jaccard -> graph -> model -> embed -> train / infer -> pipeline
    graph = import_graph()
    below = {"vidsage_core.knn": set(), "vidsage_core.jaccard": set(),
             "vidsage_core.graph": {"vidsage_core.knn", "vidsage_core.jaccard"},
             "vidsage_core.train": {"vidsage_core.embed", "vidsage_core.model"},
             "vidsage_core.infer": {"vidsage_core.embed", "vidsage_core.jaccard", "vidsage_core.knn"}}
    for module, must in below.items():
        assert must <= graph[module], (module, must - graph[module])
    for low, high in [("vidsage_core.knn", "vidsage_core.graph"), ("vidsage_core.jaccard", "vidsage_core.graph"),
                      ("vidsage_core.model", "vidsage_core.embed"), ("vidsage_core.embed", "vidsage_core.train"),
                      ("vidsage_core.train", "vidsage_core.infer"), ("vidsage_core.infer", "vidsage_core.pipeline"),
                      ("vidsage_core.train", "vidsage_core.pipeline")]:
        assert high not in graph[low], f"{low} imports {high}, which sits above it"


def test_every_module_imports_alone_in_a_fresh_interpreter():
    names = [n for n in _modules() if not n.endswith("__main__")]
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    for m in [k for k in sys.modules if k.startswith('vidsage_core')]:\n"
            "        del sys.modules[m]\n"
            "    importlib.import_module(name)\n")
    proc = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True,
                          cwd=paths.ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
