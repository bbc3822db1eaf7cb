"""Tests of vaetone.store: cache keys and atomic writes."""

import dataclasses
import json

import pandas as pd
import pytest

from vaetone import config, store


def test_key_changes_with_each_parameter_of_its_stage_only():
    base = config.Config()
    k = store.key("features", base)
    assert store.key("features", dataclasses.replace(base, n_mels=32)) != k
    assert store.key("features", dataclasses.replace(base, pitch_step=3)) != k
    assert store.key("features", dataclasses.replace(base, latent_dim=4)) == k
    assert store.key("train", dataclasses.replace(base, latent_dim=4)) != store.key("train", base)
    assert len(k) == 12


def test_key_changes_with_code_version(monkeypatch):
    base = config.Config()
    k = store.key("train", base)
    monkeypatch.setitem(store.CODE_VERSIONS, "features", 99)
    assert store.key("train", base) != k
    assert store.key("data", base) == store.key("data", base)


def test_atomic_path_leaves_nothing_on_crash(tmp_path):
    target = tmp_path / "x.json"
    store.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with store.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_jsonable_writes_numpy_paths_and_missing_values():
    import json
    from pathlib import Path

    import numpy as np

    blob = json.dumps([np.float32(0.5), np.arange(2), Path("a/b"), pd.NA], default=store.jsonable)
    assert json.loads(blob) == [0.5, [0, 1], "a/b", None]
