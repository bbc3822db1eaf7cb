"""Tests of the sensitivity stage (vaetone.analysis.sensitivity.stage): known answers and the cached result."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config, results, store
from vaetone.analysis import sensitivity as sens
from vaetone.analysis.sensitivity import stage
from vaetone.errors import ConfigError

KA_CFG = config.make(n_mels=16, latent_dim=4, n_anchors=3, sweep_steps=5, sobol_n=32, griffin_lim_iters=2, device="cpu")
"""The layout of the known-answer decoder (16 mels x 12 frames, 4 latents), small analysis sizes."""


_KNOWN: dict = {}
"""The known-answer result, computed once for this module's tests."""


@pytest.fixture
def known(one_dim_decoder):
    """The stage computed on the one-dimension decoder (output depends on z_0 only) from 20 random notes."""
    if not _KNOWN:
        mu = torch.randn(20, 4, generator=torch.Generator().manual_seed(3))
        notes = [f"note-{i:02d}" for i in range(20)]
        _KNOWN["value"] = sens.compute_sensitivity(one_dim_decoder, mu, KA_CFG, notes=notes), mu, notes
    return _KNOWN["value"]


def test_the_one_dimension_decoder_ranks_z0_first_in_every_view(known):
    r, _, _ = known
    ranking = r.table("ranking")
    assert r.dimension_order[0] == 0 and sorted(r.dimension_order) == [0, 1, 2, 3]
    assert tuple(ranking.index) == r.dimension_order and ranking.index.name == "dim"
    assert ranking.loc[0, "mean_rank"] == 1 and (ranking.loc[[1, 2, 3], "mean_rank"] == 2).all()
    for view in stage.VIEWS:
        assert ranking.loc[0, view] > 0 and (ranking.loc[[1, 2, 3], view].abs() < 1e-9).all()
    assert list(r.findings["views"]) == list(stage.VIEWS)
    # every view ranks the dimensions alike: every pair of views agrees perfectly
    assert r.findings["rho_min"] == r.findings["rho_max"] == r.findings["rho_oat_jac"] == pytest.approx(1.0)
    assert np.allclose(r.table("agreement").to_numpy(), 1.0)


def test_the_quoted_phrases_name_z0_and_only_z0_moves_a_descriptor(known):
    r, _, _ = known
    f, order, moves = r.findings, r.dimension_order, r.table("moves")
    top = moves.loc[0].idxmax()
    assert f["dimension_descriptor"] == {"0": top}  # the others move nothing, so they get no descriptor
    assert f["top_dimensions"] == list(order[:3]) and f["n_top"] == 3
    assert f["top_dims"] == f"z0 ({top}), z{order[1]}, z{order[2]}"
    assert f["bottom_dim"] == f"z{order[-1]}" and f["bottom_dim"] != "z0"
    assert r.table("ranking")["top_descriptor"].iloc[1:].isna().all()
    assert (moves.loc[[1, 2, 3]].fillna(0) == 0).all().all() and moves.loc[0, top] > 0


def test_a_constant_envelope_leaves_attack_and_decay_without_variance(known):
    r, _, _ = known
    f = r.findings
    # the decoder's output is constant in time: attack and decay never change, the spectrum does
    assert f["sobol_nan"] == "attack_s, decay_s"
    assert f["descriptors_moved"] == ["centroid_hz", "bandwidth_hz", "rolloff_hz", "flatness", "rms_db"]
    assert list(r.table("sobol_st").columns) == f["descriptors_moved"] and f["n_desc"] == 7
    assert r.table("sobol_st").loc[0].min() > 0.5 and (r.table("sobol_st").loc[[1, 2, 3]].abs() < 1e-9).all().all()


def test_the_counts_and_tables_follow_the_parameters(known):
    r, mu, _ = known
    f = r.findings
    assert (f["n_test_notes"], f["n_anchor_points"], f["n_steps"]) == (20, 4, 5)  # 3 notes + the prior mean
    assert f["n_oat_decodes"] == 4 * 5 * 4 and len(r.table("curves")) == 4 * 5 * 4
    assert (f["sobol_N"], f["sobol_evals"], f["sobol_conf"]) == (32, 32 * (4 + 2), "95 %")
    assert r.table("sobol").attrs["N"] == 32 and f["sobol_mean_conf"] == pytest.approx(
        r.table("sobol")["ST_conf"].mean()
    )
    overall = r.table("sweeps_logmel").query("scope == 'all'").set_index("dim")["change"]
    assert f["mean_logmel_change"] == pytest.approx(overall[0] / 4) and overall[0] > 0.1
    assert (r.table("where").loc[[1, 2, 3]] == 0).all().all() and r.table("where").loc[0].max() > 0
    assert r.table("jacobian").columns[0] == "all" and (r.table("jacobian").loc[[1, 2, 3]] == 0).all().all()
    assert f["sweep_sigma_txt"] == "3" and f["decodes_per_s"] > 0 and f["decode_device"] == "cpu"


def test_the_strips_sweep_the_top_dimensions_from_the_first_anchor_note(known):
    r, mu, notes = known
    f, strips, sound = r.findings, r.arrays["strips"], r.arrays["strip_audio"]
    order = r.dimension_order
    _, rows = sens.anchor_points(mu, KA_CFG.n_anchors, seed=KA_CFG.seed)
    assert f["strip_note"] == notes[rows[1]]
    assert f["strip_values"] == [-3.0, -1.5, 0.0, 1.5, 3.0]
    assert f["strip_labels"][:2] == ["z0 = -3.0", "z0 = -1.5"] and f["strip_labels"][5] == f"z{order[1]} = -3.0"
    assert strips.shape == (15, 16, 12) and sound.shape == (15, KA_CFG.hop_length * 11)
    assert not np.allclose(strips[0], strips[4])  # z0 moves the bump
    assert np.allclose(strips[5], strips[9])  # the next dimension changes nothing
    peak = np.abs(sound).max()
    assert peak <= stage.STRIP_PEAK + 1e-6 and (f["strip_gain"] == 1.0 or peak == pytest.approx(stage.STRIP_PEAK))


def test_the_findings_are_json_native(known):
    r, _, _ = known
    assert json.loads(json.dumps(dict(r.findings))) == dict(r.findings)


def test_compute_sensitivity_rejects_latents_of_another_size(one_dim_decoder):
    with pytest.raises(ConfigError, match="latent_dim=4"):
        sens.compute_sensitivity(one_dim_decoder, torch.zeros(5, 3), KA_CFG)
    with pytest.raises(ConfigError, match="n >= 1"):
        sens.compute_sensitivity(one_dim_decoder, torch.zeros(0, 4), KA_CFG)


def test_moved_descriptor_leaves_out_dimensions_that_move_nothing():
    moves = pd.DataFrame({"a": [0.5, 0.0, np.nan], "b": [0.2, 0.0, 0.3]}, index=[0, 1, 2])
    assert stage.moved_descriptor(moves) == {0: "a", 2: "b"}


def test_result_is_cached_and_keyed_by_its_parameters(tiny_cfg, stage_store, monkeypatch):
    first = sens.result(tiny_cfg)
    path = results.result_path(sens.SensitivityResult, tiny_cfg, store.run_dir(tiny_cfg), store.key("train", tiny_cfg))
    assert (path / "ranking.csv").exists()
    key = results.result_key(sens.SensitivityResult, tiny_cfg, store.key("train", tiny_cfg))

    def no_compute(cfg):
        raise RuntimeError("computed again")

    monkeypatch.setattr(stage, "_compute_for_run", no_compute)
    second = sens.result(tiny_cfg)  # loaded, not computed
    assert second.findings == first.findings and second.dimension_order == first.dimension_order
    for name in first.tables:
        pd.testing.assert_frame_equal(second.table(name), first.table(name))
    assert np.array_equal(second.arrays["strips"], first.arrays["strips"])
    ranking = second.table("ranking")
    assert tuple(ranking.index) == second.dimension_order and ranking["mean_rank"].is_monotonic_increasing
    assert sorted(second.dimension_order) == list(range(tiny_cfg.latent_dim))
    assert second.findings["top_dims"].startswith(f"z{second.dimension_order[0]}")
    named = {str(d): v for d, v in ranking["top_descriptor"].items() if pd.notna(v)}
    assert second.findings["dimension_descriptor"] == named
    assert second.table("sobol").attrs["N"] == tiny_cfg.sobol_n == second.findings["sobol_N"]

    # an analysis parameter makes a new key (and a new computation); another stage's does not
    steps = dataclasses.replace(tiny_cfg, sweep_steps=4)
    upstream = store.key("train", tiny_cfg)
    assert results.result_key(sens.SensitivityResult, steps, upstream) != key
    assert results.result_key(sens.SensitivityResult, dataclasses.replace(tiny_cfg, n_seeds=5), upstream) == key
    with pytest.raises(RuntimeError, match="computed again"):
        sens.result(steps)
