"""`tocsin utilities keys list|add|revoke|rotate` against the real database."""

import re

import pytest
from typer.testing import CliRunner

# The CLI, on an engine of its own.
pytestmark = [pytest.mark.integration, pytest.mark.committing]


@pytest.fixture
def cli(database_url, session_factory, monkeypatch):
    from tocsin.cli import app

    monkeypatch.setenv("TOCSIN_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.output

    return run


def test_keys_lifecycle(cli, session_factory):
    from db.session import transaction
    from accounts import keys

    code, out = cli("utilities", "add", "Keyed Water")
    assert code == 0, out
    first = out.strip().splitlines()[-1]
    code, out = cli("utilities", "keys", "add", "Keyed Water", "--label", "ops laptop")
    second = out.strip().splitlines()[-1]
    assert code == 0 and second.startswith("tk_") and second != first
    code, out = cli("utilities", "keys", "list", "Keyed Water")
    assert code == 0
    rows = [line.split() for line in out.strip().splitlines()]
    assert [r[2] for r in rows] == ["active", "active"]
    assert rows[0][1] == first[:10] + "…" and "laptop" in out
    first_id = rows[0][0]

    code, out = cli("utilities", "keys", "rotate", first_id)
    rotated = out.strip().splitlines()[-1]
    assert code == 0 and rotated.startswith("tk_")
    code, out = cli("utilities", "keys", "revoke", str(int(rows[1][0])))
    assert code == 0 and f"key {rows[1][0]} revoked" in out
    with transaction(session_factory) as session:
        for dead in (first, second):
            with pytest.raises(Exception, match="invalid or revoked"):
                keys.authenticate(session, key=dead)
        assert keys.authenticate(session, key=rotated).utility_name == "Keyed Water"
    code, out = cli("utilities", "keys", "list", "Keyed Water")
    assert len(re.findall("revoked", out)) == 2 and out.count("active") == 1


def test_revoking_an_unknown_key_names_it(cli):
    code, out = cli("utilities", "keys", "revoke", "987654")
    assert code == 2
    assert "API key id 987654 does not exist" in out
