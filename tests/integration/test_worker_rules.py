"""The worker's SMS fan-out reads the same rules provider as the sweeper, so a reload reaches it."""

import pytest

from alerts.reload import RulesProvider
from tocsin import worker

pytestmark = pytest.mark.integration

RULE = "rules:\n  - name: {name}\n    categories: [gas_leak]\n    layer: district\n    immediate: true\n"


def test_fanout_sees_reloaded_rules(settings, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULE.format(name="first"))
    provider = RulesProvider(path)
    fanout = worker.build_fanout(settings.model_copy(update={"rules_file": path}), provider.current)
    assert [r.name for r in fanout.rules()] == ["first"]
    path.write_text(RULE.format(name="second"))
    provider.reload()
    assert [r.name for r in fanout.rules()] == ["second"]
