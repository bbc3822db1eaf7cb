"""Tests of vaetone.results: a stage result is cached, and never reused for other weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pandas as pd

from vaetone import results


@dataclass(frozen=True)
class CountResult(results.StageResult):
    """A stage result for the tests."""

    stage: ClassVar[str] = "count"
    params: ClassVar[tuple[str, ...]] = ("seed",)


def _compute(calls: list, folder=None, weights: bytes | None = None):
    """A compute function that counts its calls (and, like a stage, may train the run first)."""

    def compute() -> CountResult:
        calls.append(1)
        if weights is not None:
            (folder / "best.pt").write_bytes(weights)
        return CountResult(tables={"t": pd.DataFrame({"n": [len(calls)]})}, findings={"n": len(calls)})

    return compute


def test_a_retrained_run_gets_a_new_result_key(tmp_path, tiny_cfg):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"weights of the first training")
    calls = []
    first = results.cached(CountResult, tiny_cfg, _compute(calls), folder=run, upstream="train-key")
    again = results.cached(CountResult, tiny_cfg, _compute(calls), folder=run, upstream="train-key")
    assert first.findings == again.findings == {"n": 1} and len(calls) == 1
    path = results.result_path(CountResult, tiny_cfg, run, "train-key")
    (run / "best.pt").write_bytes(b"weights of a second training")
    assert results.result_path(CountResult, tiny_cfg, run, "train-key") != path
    retrained = results.cached(CountResult, tiny_cfg, _compute(calls), folder=run, upstream="train-key")
    assert retrained.findings == {"n": 2} and len(calls) == 2


def test_a_result_whose_compute_trains_the_run_is_keyed_by_the_weights_it_made(tmp_path, tiny_cfg):
    run = tmp_path / "run"
    run.mkdir()
    calls = []
    compute = _compute(calls, run, b"freshly trained weights")
    first = results.cached(CountResult, tiny_cfg, compute, folder=run, upstream="train-key")
    again = results.cached(CountResult, tiny_cfg, compute, folder=run, upstream="train-key")
    assert first.findings == again.findings == {"n": 1} and len(calls) == 1
    assert results.result_path(CountResult, tiny_cfg, run, "train-key").is_dir()
    data = tmp_path / "data"  # no best.pt: the upstream key alone
    results.cached(CountResult, tiny_cfg, _compute(calls), folder=data, upstream="features-key")
    assert results.result_path(CountResult, tiny_cfg, data, "features-key").name == (
        f"count-{results.result_key(CountResult, tiny_cfg, 'features-key')}"
    )
