"""Fixtures of the training tests: an isolated run store and one small synthetic feature set per module."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """Runs and data under a fresh temporary folder, training on one thread (bit-identical weights)."""
    monkeypatch.setenv("VAETONE_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAETONE_DATA", str(tmp_path / "data"))
    torch.set_num_threads(1)
    return tmp_path / "runs"


@pytest.fixture(scope="module")
def feats():
    """Small synthetic features (tests/model/test_train.py: synthetic_features)."""
    from .test_train import synthetic_features

    return synthetic_features()
