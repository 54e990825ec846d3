"""`tocsin worker --roles` picks which dispatcher roles a process runs; a wrong role is refused by name."""

import pytest
from typer.testing import CliRunner

from tocsin import worker
from tocsin.cli import app


def test_unknown_role_is_refused_naming_the_choices():
    result = CliRunner().invoke(app, ["worker", "--roles", "relay,pager"])
    assert result.exit_code == 2
    assert "relay, sms, sweeper" in result.output and "'relay,pager'" in result.output


def test_run_refuses_unknown_or_no_roles_before_starting_anything():
    from tocsin.settings import Settings

    # Nothing listens on port 9: a worker that connected before checking its roles would fail otherwise.
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:9/none", mqtt_url="mqtt://127.0.0.1:9")
    for roles in (("relay", "pager"), ()):
        with pytest.raises(ValueError, match="worker roles must be among relay, sms, sweeper"):
            worker.run(settings, roles=roles)
