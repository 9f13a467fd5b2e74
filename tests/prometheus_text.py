"""Prometheus exposition text as tests read it: prometheus_client's parser, in one place."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

# A series: its sample name and its labels, sorted.
Series = tuple[str, tuple[tuple[str, str], ...]]


def samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def by_series(text: str) -> dict[Series, float]:
    """Every sample's value by its name and labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples(text)}


def total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` whose labels include ``labels`` (0 when none)."""
    return sum(
        s.value
        for s in samples(text)
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def family_names(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}
