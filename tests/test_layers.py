"""The package's layers: imports point down (no circle), and a file's head says what it
depends on (an import inside a function only defers a module that loads Numba, and only
where that keeps a light module light, or sits in an entry point)."""
import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("meanfield", "solvers")
ENTRY_POINTS = {"meanfield", "meanfield.cli", "meanfield.__main__"}
# modules whose import loads Numba (checked below): light modules defer them
LOADS_NUMBA = {"meanfield.network", "meanfield.objective", "solvers"}
# modules whose import a light module defers for another reason: they need an optional
# third-party package (pandas, xarray) only when their functions run
OPTIONAL = {"meanfield.analysis"}
# modules that must stay light: reading a run file needs neither Numba nor the kernels
LIGHT = ("meanfield.store", "meanfield.record", "meanfield.layout", "meanfield.presets",
         "meanfield.store.fileformat", "meanfield.streams")


def _module(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports():
    """{module: [(imported module, inside a function?)]} for the two packages."""
    modules = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            modules[_module(path)] = path
    out = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = []

        def visit(node, inner):
            for child in ast.iter_child_nodes(node):
                nested = inner or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
                if isinstance(child, ast.ImportFrom):
                    if child.level:
                        base = package.split(".")
                        base = base[:len(base) - child.level + 1]
                        stem = ".".join(base + ([child.module] if child.module else []))
                    else:
                        stem = child.module or ""
                    targets = [stem] if child.module else [f"{stem}.{a.name}" for a in child.names]
                    for t in targets:
                        # `from .x import name`: the module x, or x.name when that is a module
                        cands = [f"{t}.{a.name}" for a in child.names] + [t]
                        hit = next((c for c in cands if c in modules), None)
                        if hit is not None:
                            found.append((hit, nested))
                elif isinstance(child, ast.Import):
                    for a in child.names:
                        if a.name.split(".")[0] in PACKAGES:
                            found.append((a.name if a.name in modules else a.name.split(".")[0],
                                          nested))
                visit(child, nested)

        visit(ast.parse(path.read_text()), False)
        out[name] = [(t, inner) for t, inner in found if t != name]
    return out


def _parents(name):
    """A module's enclosing packages (importing it runs their __init__ first)."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_import_circle():
    graph = _imports()
    # an edge a -> b for every import (top level or inside a function); a package's own
    # __init__ importing its submodules is the package's surface, not a dependency
    edges = {m: {t for t, _ in deps if m not in _parents(t) and t != "meanfield"}
             for m, deps in graph.items()}
    state, stack, cycles = {}, [], []

    def dfs(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(edges.get(m, ())):
            if t in ENTRY_POINTS or t not in edges:
                continue
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                dfs(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state and m not in ENTRY_POINTS:
            dfs(m)
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)
    assert not any(t.startswith("meanfield") for m in graph if m.startswith("solvers")
                   for t, _ in graph[m]), "solvers/ must not import meanfield"


def test_imports_inside_functions_only_defer_numba():
    graph = _imports()
    bad = [f"{m} imports {t} inside a function"
           for m, deps in graph.items() if m not in ENTRY_POINTS
           for t, inner in deps if inner and t not in LOADS_NUMBA | OPTIONAL]
    assert not bad, "\n".join(bad)
    deferring = {m for m, deps in graph.items() for t, inner in deps if inner} - ENTRY_POINTS
    assert all(any(m == x or m.startswith(x + ".") for x in LIGHT) for m in deferring), \
        f"only light modules defer imports: {sorted(deferring)}"


def _loads_numba(modules) -> bool:
    code = ("import sys, importlib\n"
            "for m in sys.argv[1].split(','):\n"
            "    importlib.import_module(m)\n"
            "print('numba' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code, ",".join(modules)], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip() == "True"


def test_light_modules_do_not_load_numba_and_deferred_ones_do():
    assert not _loads_numba(LIGHT)
    for m in sorted(LOADS_NUMBA):
        assert _loads_numba([m]), f"{m} does not load Numba: import it at the top"
