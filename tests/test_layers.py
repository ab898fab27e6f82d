"""The package's layers: no module imports upward, and no import cycle between modules.

Every import of ``mfrec`` code counts, also those inside functions (they run, just later). A
subpackage may import its own modules and any lower layer; a layer that needs something from a
higher one gets it passed down (a callback, an object) instead. Numba kernels live in kernels/ only.
"""

from __future__ import annotations

import ast
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mfrec"

# lowest first; each may import only what comes before it (and itself)
LAYERS = (
    "errors",
    "io",
    "callbacks",
    "kernels",
    "data",
    "models",
    "evaluation",
    "neural",
    "experiments",
    "analysis",
    "plots",
    "inference",
    "serve",
    "training",
    "tuning",
    "cli",
    "__main__",
    "__init__",
)
RANK = {name: i for i, name in enumerate(LAYERS)}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported mfrec module, at module level?) for every mfrec import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "mfrec":
            if node.module == "mfrec":
                names = [f"mfrec.{a.name}" for a in node.names]
            else:
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "mfrec"]
        found += [(n, id(node) in top) for n in names]
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _graph():
    edges = defaultdict(set)
    for path in SRC.rglob("*.py"):
        edges[_module_name(path)]  # every module is a node
        for target, _ in _imports(path):
            edges[_module_name(path)].add(target)
    return edges


def test_every_subpackage_has_a_layer():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    modules = {p.stem for p in SRC.glob("*.py")}
    assert packages | modules <= set(LAYERS), f"give {sorted((packages | modules) - set(LAYERS))} a place in LAYERS"


def test_no_module_imports_from_a_higher_layer():
    upward = []
    for module, targets in _graph().items():
        for target in targets:
            if RANK[_layer(target)] > RANK[_layer(module)]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports from a higher layer:\n" + "\n".join(sorted(upward))


def _cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
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
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_between_modules():
    edges = _graph()
    # a package's __init__ re-exporting its modules is not a cycle of the code itself
    for module in list(edges):
        if (SRC.parent / module.replace(".", "/") / "__init__.py").is_file():
            edges[module] = {t for t in edges[module] if not t.startswith(module + ".")}
    assert not _cycles(edges)


def test_the_checks_catch_what_they_are_for():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert RANK[_layer("mfrec.cli.train")] > RANK[_layer("mfrec.models.als")]


def test_numba_is_compiled_in_kernels_only():
    try:
        out = subprocess.run(["git", "grep", "-n", r"@njit\|numba.njit\|@numba.jit", "--", "src/"],
                             cwd=SRC.parents[1], capture_output=True, text=True, check=False)
    except FileNotFoundError:  # pragma: no cover - no git: read the files instead
        pytest.skip("git is not available")
    if out.returncode not in (0, 1):
        pytest.skip("not a git checkout")
    outside = [line for line in out.stdout.splitlines() if not line.startswith("src/mfrec/kernels/")]
    assert not outside, "Numba kernels outside kernels/:\n" + "\n".join(outside)
