"""The import rules of DESIGN.md, read from the source (AST), lazy imports inside functions included:

- packages import downwards only: db at the bottom, then accounts (who calls) and geo, then alerts, then
  ingest and dispatch, with tocsin (the wiring: app, CLI, worker) and bench on top;
- no module imports another that imports it back, directly or round a longer loop;
- HTTP types (fastapi, starlette) only in api modules (`api.py`, `*_api.py`) and in the wiring.
"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("db", "accounts", "geo", "alerts", "ingest", "dispatch", "tocsin")
# What each package may import from the others.
ALLOWED = {
    "db": set(),
    "accounts": {"db"},
    "geo": {"db"},
    "alerts": {"db", "accounts", "geo"},
    "ingest": {"db", "accounts", "geo", "alerts"},
    "dispatch": {"db", "accounts", "alerts"},
    "tocsin": {"db", "accounts", "geo", "alerts", "ingest", "dispatch"},
}
HTTP = ("fastapi", "starlette")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            rel = path.relative_to(REPO).with_suffix("")
            name = ".".join(rel.parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: {n for n in _imports(p) if n in mods and n != m} for m, p in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_packages_import_downwards_only():
    upward = []
    for m, targets in _graph().items():
        pkg = m.split(".")[0]
        upward += [f"{m} imports {t}" for t in sorted(targets) if t.split(".")[0] not in ALLOWED[pkg] | {pkg}]
    assert upward == []


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_http_types_only_in_api_modules_and_the_wiring():
    found = []
    for m, path in _modules().items():
        if m.startswith("tocsin.") or path.name == "api.py" or path.name.endswith("_api.py"):
            continue
        found += [f"{m} imports {n}" for n in _imports(path) if n.split(".")[0] in HTTP]
    assert found == []


def test_the_checks_can_fail():
    """The cycle finder finds a planted cycle, and the rules table names every package."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert set(ALLOWED) == set(PACKAGES)


def test_the_command_line_imports_lightly():
    """`tocsin --help` must start fast: the CLI module imports no settings, database or geometry stack (those
    load inside the commands that need them). Checked by what is imported, not by timing."""
    import subprocess
    import sys

    heavy = ["pydantic_settings", "sqlalchemy", "shapely", "geopandas", "psycopg", "fastapi"]
    code = ("import sys, tocsin.cli; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
