"""`alerts` owns the signals table and the zone locks (STYLE.md rule 14): no other module's SQL writes
signals or takes an advisory lock. A hot path fuses alerts' own fragments into its statement
(alerts.signals); a package's lock on its own work goes through db.locks, whose keys are not zone locks."""

import ast
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP = {".venv", ".git", "tests", "var", "test-artifacts", "tocsin.egg-info", "node_modules", "__pycache__"}

INSERT_SIGNALS = re.compile(r"\binsert\s+into\s+signals\b", re.IGNORECASE)
ADVISORY_LOCK = re.compile(r"\bpg_(try_)?advisory_(xact_)?lock", re.IGNORECASE)
# Where each may appear: alerts, and for advisory locks db.locks (locks by name or by a package's own class).
ALLOWED = {INSERT_SIGNALS: ("alerts/",), ADVISORY_LOCK: ("alerts/", "db/locks.py")}


def strings(source: str) -> list[str]:
    """Every string literal of a module, with the literal parts of f-strings and of `+` chains joined."""
    tree = ast.parse(source)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            out.append("".join(v.value if isinstance(v, ast.Constant) else " " for v in node.values))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            out.append(_joined(node))
    return out


def _joined(node: ast.AST) -> str:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _joined(node.left) + _joined(node.right)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return " "


def offences(source: str, rel: str) -> list[str]:
    found = []
    for pattern, allowed in ALLOWED.items():
        if rel.startswith(allowed):
            continue
        for s in strings(source):
            m = pattern.search(s)
            if m:
                found.append(f"{rel}: {m[0]!r}")
    return sorted(set(found))


def modules() -> list[Path]:
    out = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP and not d.startswith(".")]
        out += [Path(folder, f) for f in files if f.endswith(".py")]
    return out


def test_only_alerts_writes_signals_and_takes_zone_locks():
    paths = modules()
    assert any(p.relative_to(ROOT).as_posix() == "ingest/reports/service.py" for p in paths)  # the walk sees the code
    bad = [o for p in paths for o in offences(p.read_text(encoding="utf-8"), p.relative_to(ROOT).as_posix())]
    assert bad == []


@pytest.mark.parametrize("source, rel, caught", [
    ('SQL = "INSERT INTO signals (zone_id) VALUES (1)"', "ingest/x.py", True),
    ('SQL = """\n  insert  into\n signals (zone_id) SELECT 1"""', "ingest/x.py", True),
    ('SQL = "WITH a AS (" + "INSERT INTO " + "signals (zone_id) SELECT 1)"', "ingest/x.py", True),
    ('SQL = f"SELECT pg_advisory_xact_lock({CLASS}, z)"', "ingest/x.py", True),
    ('SQL = "SELECT pg_advisory_xact_lock_shared(:a, :b)"', "dispatch/x.py", True),
    ('SQL = "SELECT pg_try_advisory_xact_lock(1, 2)"', "db/raw.py", True),
    ('SQL = "INSERT INTO signals (zone_id) VALUES (1)"', "alerts/signals.py", False),
    ('SQL = "SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"', "db/locks.py", False),
    ('SQL = "INSERT INTO signal_layers (layer_id) VALUES (1)"', "ingest/x.py", False),
    ('SQL = "SELECT count(*) FROM signals"', "bench/x.py", False),
])
def test_the_check_catches_what_it_should(source, rel, caught):
    assert bool(offences(source, rel)) is caught
