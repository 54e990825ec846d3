"""`tocsin rules check` against the real database: the loaded zone layers are the ones a rule may name."""

import pytest
from typer.testing import CliRunner

pytestmark = [pytest.mark.integration, pytest.mark.committing]


@pytest.fixture
def check(database_url, districts, monkeypatch, tmp_path):
    from tocsin.cli import app

    monkeypatch.setenv("TOCSIN_DATABASE_URL", database_url)

    def run(text: str) -> tuple[int, str]:
        path = tmp_path / "rules.yaml"
        path.write_text(text)
        result = CliRunner().invoke(app, ["rules", "check", str(path)])
        return result.exit_code, result.output

    return run


RULE = "rules:\n  - name: fire_posts\n    categories: [{cat}]\n    sources: [post]\n    layer: {layer}\n"


def test_known_names_pass(check):
    code, out = check(RULE.format(cat="fire", layer="district"))
    assert code == 0 and "1 rules OK" in out


def test_unknown_category_and_layer_fail_with_lines_and_suggestions(check):
    code, out = check(RULE.format(cat="firee", layer="distrct"))
    assert code == 2
    assert ":3: rule 'fire_posts': category 'firee' is not one Tocsin gives; did you mean 'fire'?" in out
    assert ":5: rule 'fire_posts': layer 'distrct' is not loaded; did you mean 'district'?" in out


def test_a_database_that_cannot_be_reached_is_one_line_with_the_fix(tmp_path):
    """Any command, with the database down: one line naming the URL (password hidden) and the fix."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TOCSIN_DATABASE_URL": f"postgresql+psycopg://tocsin:secret@127.0.0.1:{port}/tocsin"}
    done = subprocess.run([sys.executable, "-m", "tocsin.cli", "zones", "list"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"cannot reach the database at postgresql+psycopg://tocsin:***@127.0.0.1:{port}/tocsin" in lines[0]
    assert "make services" in lines[0] and "secret" not in lines[0]
