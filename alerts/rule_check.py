"""`tocsin rules check`: what a rules file names that this Tocsin does not know, by line, with a "did you
mean" (pure; the caller says what is known).

A rules file can be valid and still never fire: `categories: [firee]` or `layer: no_such_layer` pass the
schema (alerts.rules) and match nothing. This reads the YAML with line numbers and checks each rule's
keys, categories, sources, layer and condition fields against what the caller knows: the classifier's and
utility reports' categories, the loaded zone layers (None when the database could not be asked) and the
attributes signals carry.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass

import yaml

from alerts.rules import SOURCES, Rule

_DURATION_ALIASES = ("window", "expire_after", "quiet_period", "cooldown", "repeat_interval", "escalate_after")


@dataclass(frozen=True)
class Problem:
    line: int  # 1-based, in the file
    rule: str
    message: str

    def render(self, origin: str) -> str:
        return f"{origin}:{self.line}: rule {self.rule!r}: {self.message}"


def _suggest(word: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known))}"


def _mapping(node: yaml.Node) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    return {k.value: (k, v) for k, v in node.value} if isinstance(node, yaml.MappingNode) else {}


def check_names(text: str, *, categories: Collection[str], layers: Collection[str] | None,
                condition_fields: Collection[str]) -> list[Problem]:
    """Problems with the names a (schema-valid) rules file uses; [] when it names only known things."""
    root = yaml.compose(text)
    rules_node = _mapping(root).get("rules", (None, None))[1] if root is not None else None
    if not isinstance(rules_node, yaml.SequenceNode):
        return []
    fields = set(Rule.model_fields) | set(_DURATION_ALIASES)
    out: list[Problem] = []
    for i, item in enumerate(rules_node.value):
        keys = _mapping(item)
        name_node = keys.get("name", (None, None))[1]
        name = name_node.value if isinstance(name_node, yaml.ScalarNode) else f"#{i}"
        for key, (knode, _v) in keys.items():
            if key not in fields:
                out.append(Problem(knode.start_mark.line + 1, name, f"unknown field {key!r}{_suggest(key, fields)}"))
        for field, known, what in (("categories", categories, "category"), ("sources", SOURCES, "source")):
            node = keys.get(field, (None, None))[1]
            values = node.value if isinstance(node, yaml.SequenceNode) else [node] if node is not None else []
            for v in values:
                if isinstance(v, yaml.ScalarNode) and v.value not in known:
                    out.append(Problem(v.start_mark.line + 1, name,
                                       f"{what} {v.value!r} is not one Tocsin gives{_suggest(v.value, known)}"))
        layer = keys.get("layer", (None, None))[1]
        if layers is not None and isinstance(layer, yaml.ScalarNode) and layer.value not in layers:
            hint = _suggest(layer.value, layers) if layers else "; no zone layer is loaded (tocsin zones load)"
            out.append(Problem(layer.start_mark.line + 1, name, f"layer {layer.value!r} is not loaded{hint}"))
        for cfield, (cnode, _v) in _mapping(keys.get("conditions", (None, None))[1]).items():
            if cfield not in condition_fields:
                out.append(Problem(cnode.start_mark.line + 1, name, f"condition on {cfield!r}, which no signal "
                                   f"carries{_suggest(cfield, condition_fields)}"))
    return sorted(out, key=lambda p: p.line)
