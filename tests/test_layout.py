"""The layout stays readable: no import circle among the project's modules (counting imports made
inside functions too: a lazy import only hides a circle), and no module grows past its size bound."""
from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import search_core
import benchmarks

REPO = Path(__file__).resolve().parent.parent
PACKAGES = (search_core, benchmarks)


def modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name (pkgutil.walk_packages)."""
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        out[pkg.__name__] = Path(pkg.__file__)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=pkg.__name__ + "."):
            spec = info.module_finder.find_spec(info.name)
            if spec is not None and spec.origin:
                out[info.name] = Path(spec.origin)
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `from .x import name`: the module is x
                t = t.rsplit(".", 1)[0] if "." in t else ""
            if t and t != name:
                found.add(t)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    mods = modules()
    # a package imports its own modules to re-export them: that edge is the package's face, not a circle
    graph = {n: {t for t in imports(n, p, set(mods)) if not (p.name == "__init__.py" and t.startswith(n + "."))}
             for n, p in mods.items()}
    assert len(mods) > 40 and graph["search_core.service"], "the walk found the modules and their imports"
    assert cycles(graph) == []


def test_no_module_over_its_bound():
    """~400 lines a module (the UI's layout in app.py is one piece by nature)."""
    files = [p for p in modules().values()] + [REPO / "app.py"]
    long = {str(p.relative_to(REPO)): n for p in files if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_no_function_or_class_over_its_bound():
    """~80 lines a function (the UI's layout, build_ui, is one piece by nature), ~250 a class."""
    files = [p for p in modules().values()] + [REPO / "app.py"]
    long = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            size = getattr(node, "end_lineno", 0) - getattr(node, "lineno", 0) + 1
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and size > 80 and node.name != "build_ui":
                long.append((path.name, node.name, size))
            if isinstance(node, ast.ClassDef) and size > 250:
                long.append((path.name, node.name, size))
    assert long == []
