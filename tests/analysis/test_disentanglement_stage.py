"""Tests of the ground-truth stage (vaetone.analysis.ground_truth, ``disentanglement.result``)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config, store
from vaetone.analysis import disentanglement
from vaetone.analysis import ground_truth as gt
from vaetone.errors import DataError
from vaetone.results import result_key, table_from_json, table_to_json

FACTORS = ["pitch", "loudness", "brightness", "attack", "decay", "inharmonicity", "noise"]


N = 1000
GROUPS = np.repeat(np.arange(N // 8), 8)
"""125 instruments of 8 notes (DCI's folds keep each on one side)."""


@pytest.fixture(scope="module")
def factors() -> pd.DataFrame:
    """1000 notes of seven independent factors, named as the synthetic source names them."""
    rng = np.random.default_rng(0)
    cols = {f"factor_{name}": rng.uniform(0, 1, N) for name in FACTORS}
    cols["factor_pitch"] = rng.integers(40, 77, N).astype(float)
    return pd.DataFrame(cols)


def test_a_perfect_code_scores_near_one_and_has_one_carrier_per_factor(factors):
    mu = factors.to_numpy() * np.arange(1, 8)  # z_k = a rescaled factor k
    res = gt.compute_ground_truth(mu, factors, GROUPS, list(range(7)), list(range(7)), seed=0)
    f = res.findings
    assert f["mig"] > 0.9 and f["dci_disentanglement"] > 0.9 and f["dci_completeness"] > 0.9
    assert f["carrier_list"] == list(range(7)) and f["carriers"] == "z0, z1, z2, z3, z4, z5, z6"
    assert f["n_carriers"] == 7 and f["carrier_dims"] == "7 distinct dimensions"
    assert f["in_top_sens"] == 7 and f["in_top_sens_verb"] == "7 are" and f["in_top_abl"] == 7
    assert f["oat_agree"] == "0 of 0"  # no sweep moves given
    assert f["n_syn"] == N and f["n_factors"] == 7 and f["n_dims_syn"] == 7 and f["n_active_syn"] == 7
    assert f["syn_line"] == f"synthetic: {N} notes of 125 instruments, 7 factors; 7 of 7 units active"
    assert f["scores_line"] == (
        f"MIG = {f['mig']:.3f}; DCI: disentanglement {f['dci_disentanglement']:.3f}, completeness "
        f"{f['dci_completeness']:.2f}, informativeness {f['dci_informativeness']:.3f}"
    )
    assert f["dci_completeness_text"] == f"{f['dci_completeness']:.2f}" and f["n_complete_defined"] == 7
    assert f["n_syn_instruments"] == 125 and f["dci_split"].startswith("5 folds of the 125 instruments")
    per_factor = res.table("dci_factors")
    assert list(per_factor.index) == FACTORS and (per_factor["r2"] > 0.9).all()
    assert per_factor["completeness"].mean() == pytest.approx(f["dci_completeness"])
    check = res.table("check")
    assert list(check.index) == FACTORS and check["carrier"].tolist() == list(range(7))
    assert check["dci_dim"].tolist() == list(range(7)) and check["sensitivity_rank"].tolist() == list(range(1, 8))
    assert list(res.table("mig").index) == FACTORS and list(res.table("dci_importance").columns) == FACTORS


def test_a_shuffled_code_scores_near_chance(factors):
    rng = np.random.default_rng(1)
    mu = np.stack([rng.permutation(factors[c].to_numpy()) for c in factors.columns], 1)
    f = gt.compute_ground_truth(mu, factors, GROUPS, list(range(7)), list(range(7)), seed=0).findings
    assert f["mig"] < 0.05 and f["dci_informativeness"] < 0.1


def test_orders_and_sweep_moves_are_checked_against_the_carriers(factors):
    mu = factors.to_numpy()
    descriptors = ["rms_db", "centroid_hz", "attack_s", "decay_db_per_s", "flatness"]
    moves = pd.DataFrame(0.1, index=range(7), columns=descriptors)
    for desc, dim in {"rms_db": 1, "centroid_hz": 0, "attack_s": 3, "decay_db_per_s": 4, "flatness": 6}.items():
        moves.loc[dim, desc] = 1.0  # the brightness descriptor points at z0, not at its carrier z2
    res = gt.compute_ground_truth(mu, factors, GROUPS, [6, 5, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5, 6], moves, seed=0)
    f = res.findings
    assert f["oat_agree"] == "4 of 5" and f["oat_agree_n"] == 4 and f["oat_checked"] == 5
    assert f["in_top_sens"] == 7 and f["sensitivity_order"] == [6, 5, 4, 3, 2, 1, 0]
    check = res.table("check")
    assert check.loc["loudness", "oat_agrees"] is True and check.loc["brightness", "oat_agrees"] is False
    assert check.loc["pitch", "oat_agrees"] is None and np.isnan(check.loc["pitch", "oat_dim"])
    assert check.loc["noise", "oat_dim"] == 6.0 and check.loc["decay", "oat_agrees"] is True
    pd.testing.assert_frame_equal(table_from_json(table_to_json(check)), check)  # stored as it was computed


def test_one_carrier_is_quoted_in_the_singular():
    rng = np.random.default_rng(2)
    one = pd.DataFrame({"factor_loudness": rng.uniform(0, 1, 500)})
    mu = np.stack([rng.normal(size=500), one["factor_loudness"].to_numpy()], 1)
    f = gt.compute_ground_truth(mu, one, np.arange(500), [0, 1], [1, 0], seed=0).findings
    assert f["carrier_list"] == [1] and f["carrier_dims"] == "1 distinct dimension"
    assert f["in_top_sens"] == 0 and f["in_top_sens_verb"] == "0 are" and f["in_top_abl"] == 1
    f = gt.compute_ground_truth(mu, one, np.arange(500), [1, 0], [1, 0], seed=0).findings
    assert f["in_top_sens_verb"] == "1 is"


def test_method_orders_single_out_the_one_dimension_of_the_known_answer_decoder(one_dim_decoder):
    cfg = config.make(n_mels=16, n_anchors=3, sweep_steps=5)
    mu = torch.as_tensor(np.random.default_rng(0).normal(size=(20, 4)), dtype=torch.float32)
    sens, abl, moves = gt.method_orders(one_dim_decoder, mu, one_dim_decoder(mu), cfg, seed=0)
    assert sens[0] == 0 and abl[0] == 0 and sorted(sens) == sorted(abl) == [0, 1, 2, 3]
    assert moves.shape[0] == 4 and (moves.loc[0].abs() > 0).any()
    assert moves.loc[[1, 2, 3]].abs().max().max() == pytest.approx(0.0, abs=1e-6)


def test_known_factors_need_the_synthetic_source(factors):
    assert list(gt.known_factors(factors.assign(split="test"))) == list(factors.columns)
    with pytest.raises(DataError, match="synthetic"):
        gt.known_factors(pd.DataFrame({"pitch": [60, 62]}))


def test_result_trains_on_the_synthetic_source_and_is_cached(tiny_cfg, stage_store):
    soundfont = dataclasses.replace(tiny_cfg, dataset="soundfont")
    assert gt.synthetic_config(soundfont) == tiny_cfg  # tiny_cfg is the synthetic source already
    first = disentanglement.result(tiny_cfg)
    folder = store.run_dir(tiny_cfg) / "results"
    [path] = folder.glob("ground_truth-*")
    assert (path / "check.csv").exists() and (path / "findings.json").exists()
    again = disentanglement.result(tiny_cfg)
    assert again.findings == first.findings and [p.name for p in folder.glob("ground_truth-*")] == [path.name]
    f = first.findings
    assert f["n_dims_syn"] == tiny_cfg.latent_dim and f["n_factors"] == 7 and set(f["carrier_list"]) <= set(range(4))
    assert sorted(f["sensitivity_order"]) == sorted(f["ablation_order"]) == list(range(tiny_cfg.latent_dim))
    assert set(first.tables) == {"mig", "dci_importance", "dci_factors", "check"} and len(first.table("check")) == 7
    assert f["n_syn_instruments"] == tiny_cfg.synthetic_instruments
    assert 0 <= f["mig"] <= 1 and f["n_carriers"] == len(f["carrier_list"])


def test_result_key_changes_with_the_sweep_parameters(tiny_cfg):
    up = store.key("train", tiny_cfg)
    key = result_key(gt.GroundTruthResult, tiny_cfg, up)
    for change in ({"n_anchors": 5}, {"sweep_sigma": 2.0}, {"sweep_steps": 7}):
        assert result_key(gt.GroundTruthResult, dataclasses.replace(tiny_cfg, **change), up) != key
    assert result_key(gt.GroundTruthResult, dataclasses.replace(tiny_cfg, sobol_n=64), up) == key


def test_a_factor_no_dimension_predicts_is_undefined_in_the_findings():
    """A constant factor gets zero importance from every tree: completeness undefined, left out and named."""
    rng = np.random.default_rng(3)
    two = pd.DataFrame({"factor_loudness": rng.uniform(0, 1, 400), "factor_noise": np.full(400, -30.0)})
    mu = np.stack([two["factor_loudness"].to_numpy(), rng.normal(size=400)], 1)
    res = gt.compute_ground_truth(mu, two, np.repeat(np.arange(50), 8), [0, 1], [0, 1], seed=0)
    f = res.findings
    assert f["n_complete_defined"] == 1
    assert f["dci_completeness"] == pytest.approx(res.table("dci_factors").loc["loudness", "completeness"])
    assert f["dci_completeness_text"] == (
        f"{f['dci_completeness']:.2f} (over 1 of 2 factors; undefined for noise: no dimension predicts it)"
    )
    assert f"completeness {f['dci_completeness_text']}," in f["scores_line"]
    assert np.isnan(res.table("check").loc["noise", "dci_dim"]) and res.table("check").loc["loudness", "dci_dim"] == 0
