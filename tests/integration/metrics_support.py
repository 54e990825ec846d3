"""Read a Prometheus text exposition the way Prometheus does (prometheus_client's parser), not line by line."""

from prometheus_client.parser import text_string_to_metric_families


def families(body: str) -> dict[str, str]:
    """Each family's name and type (a counter's name without `_total`, as the parser gives it)."""
    return {f.name: f.type for f in text_string_to_metric_families(body)}


def samples(body: str, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called `name` whose labels include `labels`."""
    return [(s.labels, s.value) for f in text_string_to_metric_families(body) for s in f.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def value(body: str, name: str, **labels: str) -> float:
    """The one sample called `name` with `labels` (0 when there is none yet: a histogram's labels appear with
    its first observation); more than one is an error."""
    found = samples(body, name, **labels)
    assert len(found) <= 1, f"{len(found)} samples of {name} with {labels}: {found}"
    return found[0][1] if found else 0.0
