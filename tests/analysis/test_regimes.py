"""The β-regime stage: sweep configurations, curves, KL profiles, the best β and the quoted phrases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vaetone import config
from vaetone.analysis import regimes
from vaetone.analysis.regimes_findings import (
    _direction_findings,
    _kl_line,
    _trend_phrase,
    and_list,
    validity_answer,
)
from vaetone.errors import ConfigError


def test_sweep_configs_cover_every_beta_and_seed_with_the_autoencoder_and_cfg_beta():
    cfg = config.make(betas=[4.0, 0.25], n_seeds=2, seed=3, beta=1.0)
    configs = regimes.sweep_configs(cfg, "synthetic")
    assert sorted(configs) == [(b, s) for b in (0.0, 0.25, 1.0, 4.0) for s in (3, 4)]
    assert all(c.dataset == "synthetic" and c.beta == b and c.seed == s for (b, s), c in configs.items())
    data = regimes.sweep_configs(cfg, "data")
    assert sorted({b for b, _ in data}) == [1.0] and all(c.dataset == cfg.dataset for c in data.values())
    with_ae = regimes.sweep_configs(config.make(corpus_betas=[0.0, 4.0], n_seeds=2), "data")
    assert sorted({b for b, _ in with_ae}) == [0.0, 1.0, 4.0]


def test_beta_lists_refuse_empty_negative_and_non_finite_values():
    for bad in ([], [-1.0], [float("nan")], ["x"]):
        with pytest.raises(ConfigError, match="betas"):
            config.make(betas=bad)
    assert config.make(corpus_betas=[0]).corpus_betas == [0]


def test_agreement_needs_two_seeds_and_a_known_source():
    with pytest.raises(ConfigError, match="at least 2"):
        regimes.sweep_configs(config.make(n_seeds=1), "synthetic")
    with pytest.raises(ConfigError, match="not one of"):
        regimes.source_config(config.make(), "corpus")


def test_model_names():
    assert regimes.model_name(0.0) == "autoencoder"
    assert regimes.model_name(0.25) == "VAE β=0.25"


def _models() -> pd.DataFrame:
    rows = []
    for beta, migs in ((0.0, (0.1, 0.2)), (1.0, (0.3, 0.5)), (4.0, (0.6, 0.2))):
        for seed, m in enumerate(migs):
            rows.append({"beta": beta, "seed": seed, "mig": m, "mig_valid": m, "active_units": 10 - beta, "sap": m / 2})
    return pd.DataFrame(rows)


def test_curves_take_median_and_range_over_seeds_and_join_agreement():
    agreement = pd.DataFrame(
        {"beta": [0.0, 1.0, 4.0], "matched_r_median": [0.5, 0.6, 0.7], "subspace_r2": [0.9] * 3, "rho": [0.1] * 3}
    )
    curves = regimes._curves(_models(), agreement)
    assert curves.loc[1.0, "mig"] == pytest.approx(0.4)
    assert (curves.loc[1.0, "mig_low"], curves.loc[1.0, "mig_high"]) == (0.3, 0.5)
    assert (
        curves.loc[4.0, "matched_r"] == 0.7
        and curves.loc[1.0, "rank_rho"] == 0.1
        and curves.loc[0.0, "model"] == "autoencoder"
    )


def test_best_beta_is_chosen_on_validation_mig_among_vaes():
    # β = 1: median 0.4; β = 4: median 0.4 → the first maximum; the autoencoder is never "best"
    models = _models()
    models.loc[models["beta"] == 4.0, "mig_valid"] = [0.9, 0.8]
    assert regimes.best_beta(models) == 4.0
    models.loc[models["beta"] == 0.0, "mig_valid"] = 5.0
    assert regimes.best_beta(models) == 4.0


def test_kl_profile_sorts_each_seed_then_takes_the_median():
    kls = {
        (1.0, 0): np.array([0.0, 3.0, 1.0]),
        (1.0, 1): np.array([5.0, 1.0, 0.0]),
        (0.0, 0): np.array([2.0, 2.0, 2.0]),
    }
    profile = regimes._kl_profile(kls)
    np.testing.assert_allclose(profile.loc[1.0].to_numpy(), [4.0, 1.0, 0.0])
    np.testing.assert_allclose(profile.loc[0.0].to_numpy(), [2.0, 2.0, 2.0])


def test_phrases_follow_the_numbers():
    assert and_list(["a"]) == "a" and and_list(["a", "b", "c"]) == "a, b and c"
    assert _trend_phrase(16, 3, "active units", 0.25, 16).startswith("falls from 16 to 3")
    assert _trend_phrase(3, 3, "active units", 0.25, 16).startswith("stays at 3")
    curves = pd.DataFrame(
        {"mig": [0.1, 0.3], "mig_low": [0.05, 0.25], "mig_high": [0.15, 0.35]}, index=pd.Index([0.0, 1.0])
    )
    line = _kl_line(curves, 1.0)
    assert "higher than" in line and "do not overlap" in line
    curves.loc[0.0, "mig_high"] = 0.3
    assert "overlap" in _kl_line(curves, 1.0) and "do not" not in _kl_line(curves, 1.0)
    curves.loc[1.0, "mig"] = 0.1004
    assert "the same, to two decimals, as" in _kl_line(curves, 1.0)


def test_the_chapter_08_answer_is_built_from_the_numbers():
    f = {
        "beta_ref": 1.0,
        "n_above_chance_ref": 2,
        "above_chance_ref": "the Jacobian and ablation",
        "n_methods": 4,
        "rec_best_method_ref": "ablation",
        "rec_max_ref": 0.6,
        "rec_chance": 0.254,
        "mig_share_ref": "41 %",
        "agreement_line_ref": "matched axes |r| 0.80, subspace R² 0.90, mean canonical correlation 0.85",
        "subspace_phrase_ref": "the subspace the code spans agrees between seeds more than its single axes do",
    }
    assert validity_answer(f) == (
        "At β = 1, 2 of the 4 explanation methods (the Jacobian and ablation) name the dimension that carries a "
        "factor more often than chance (best: ablation, 0.60 of the factors against 0.25 by chance); the code "
        "reaches 41 % of a perfect code's MIG; across seeds (matched axes |r| 0.80, subspace R² 0.90, mean "
        "canonical correlation 0.85) the subspace the code spans agrees between seeds more than its single axes do."
    )
    one = validity_answer(f | {"n_above_chance_ref": 1, "above_chance_ref": "ablation"})
    assert "1 of the 4 explanation methods (ablation) names the dimension" in one
    none = {k: v for k, v in f.items() if k not in ("agreement_line_ref", "subspace_phrase_ref")}
    none |= {"n_above_chance_ref": 0, "above_chance_ref": "none of the methods", "mig_share_ref": "nan %"}
    assert validity_answer(none) == (
        "At β = 1, none of the 4 explanation methods names the dimension that carries a factor more often than "
        "chance (best: ablation, 0.60 of the factors against 0.25 by chance); the code's MIG share is undefined "
        "(the perfect code scores 0)."
    )


def test_sweep_trains_each_model_once_and_one_more_beta_trains_only_that_one(stage_store):
    from tests.conftest import TINY
    from vaetone import store

    cfg = config.make(**{**TINY, "betas": [1.0], "validity_sobol_n": 8, "null_n": 100, "bootstrap_n": 100})
    r = regimes.result(cfg, "synthetic", progress=False)
    assert sorted(r.table("models")["beta"].unique()) == [0.0, 1.0] and len(r.table("models")) == 4
    assert set(r.table("recovery").index.get_level_values("model")) == {"autoencoder", "VAE β=1", "VAE best β=1"}
    refs = r.table("references")
    assert refs.loc["perfect", "mig"] > 0.9 and refs.loc["shuffled", "mig"] < 0.2
    assert r.findings["n_models"] == 4 and r.findings["best_beta"] == 1.0
    assert 0 <= r.findings["active_ref"] <= cfg.latent_dim
    before = {p.name for p in store.runs_dir().iterdir()}
    assert regimes.result(cfg, "synthetic", progress=False).findings == r.findings  # cached
    more = config.make(**{**TINY, "betas": [1.0, 4.0], "validity_sobol_n": 8, "null_n": 100, "bootstrap_n": 100})
    r2 = regimes.result(more, "synthetic", progress=False)
    new = {p.name for p in store.runs_dir().iterdir()} - before
    assert len(new) == 2 and all("-b4-" in name for name in new)  # β = 4, two seeds; nothing else retrained
    assert r2.table("curves").index.tolist() == [0.0, 1.0, 4.0]


def test_a_direction_is_stable_only_when_predicted_and_carried_between_seeds():
    f = {
        "direction_r2_median_pitch": 0.9,
        "direction_cosine_median_pitch": 0.95,
        "direction_r2_median_velocity": 0.4,
        "direction_cosine_median_velocity": 0.99,
    }
    out = _direction_findings(f, "ref")
    assert out["stable_directions_ref"] == "pitch" and out["n_stable_directions_ref"] == 1
    assert out["directions_line_ref"] == "pitch R² 0.90, cosine 0.95; velocity R² 0.40, cosine 0.99"
    f["direction_cosine_median_pitch"] = 0.5
    assert _direction_findings(f, "ref")["stable_directions_ref"] == "none of the targets"
