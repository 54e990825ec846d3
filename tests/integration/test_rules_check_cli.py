"""`tocsin rules check` against the real database: the loaded zone layers are the ones a rule may name."""

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.integration


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
