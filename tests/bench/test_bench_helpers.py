"""The benchmarks' own arithmetic: py-spy summaries and Prometheus histogram deltas (no processes, no speed)."""

from __future__ import annotations

import math

import pytest

from bench.framework import histogram_delta, percentile
from bench.profiling import package_of, summarise

pytestmark = pytest.mark.unit

MAIN = "<module> (fetcher/__main__.py:35);run (asyncio/runners.py:118)"
RAW = "\n".join(
    [
        f"{MAIN};render_one (fetcher/transcript.py:247);_tokens (pipeline_common/recall/render.py:101) 6",
        f"{MAIN};render_one (fetcher/transcript.py:247) 2",
        "<module> (fetcher/__main__.py:35);send (aiokafka/producer/producer.py:300) 2",
        "not a sample line",
    ]
)


def test_summarise_shares_by_package_and_function() -> None:
    summary = summarise(RAW)
    assert summary["samples"] == 10
    assert dict(summary["by_package"]) == {"pipeline_common": 0.6, "fetcher": 0.2, "aiokafka": 0.2}
    assert summary["top_self"][0] == ["_tokens (pipeline_common/recall/render.py)", 0.6]
    inclusive = dict(summary["top_inclusive"])
    assert inclusive["<module> (fetcher/__main__.py)"] == 1.0
    assert inclusive["render_one (fetcher/transcript.py)"] == 0.8


def test_summarise_nothing() -> None:
    assert summarise("") == {"samples": 0, "by_package": [], "top_self": [], "top_inclusive": []}


@pytest.mark.parametrize(
    ("file", "package"),
    [
        ("aiokafka/conn.py", "aiokafka"),
        ("/x/.venv/lib/python3.11/site-packages/faust/streams.py", "faust"),
        ("/usr/lib/python3.11/asyncio/events.py", "asyncio"),
        ("selectors.py", "selectors"),
        ("<frozen importlib._bootstrap_external>", "<frozen importlib._bootstrap_external>"),
        ("", "?"),
    ],
)
def test_package_of(file: str, package: str) -> None:
    assert package_of(file) == package


def test_histogram_delta_between_two_scrapes() -> None:
    before = {"sum": 1.0, "count": 10.0, "buckets": {0.01: 10.0, 0.1: 10.0, math.inf: 10.0}}
    after = {"sum": 3.0, "count": 110.0, "buckets": {0.01: 60.0, 0.1: 108.0, math.inf: 110.0}}
    delta = histogram_delta(before, after)
    assert delta is not None
    assert delta["count"] == 100
    assert delta["mean"] == pytest.approx(0.02)
    assert delta["p50_at_most"] == 0.01
    assert delta["p99_at_most"] == math.inf  # 98 of 100 under 0.1 s: the 99th is above the last finite bound
    assert histogram_delta(after, after) is None


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert math.isnan(percentile([], 99))
