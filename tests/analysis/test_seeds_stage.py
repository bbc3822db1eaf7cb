"""Known-answer tests of the across-seeds stage (vaetone.analysis.seeds_stage): fake seeds, then the tiny run."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config, results, store
from vaetone.analysis import ablation, seeds, seeds_labels, seeds_stage, sensitivity, statistics
from vaetone.errors import ConfigError, VaetoneError
from vaetone.model import runs as model_runs

N, D = 120, 4
PERMS = {0: [0, 1, 2, 3], 1: [2, 0, 3, 1], 2: [3, 2, 1, 0]}  # seed s stores reference dim i in PERMS[s][i]
SIGNS = {0: [1, 1, 1, 1], 1: [1, -1, 1, -1], 2: [-1, 1, 1, 1]}
SCALE = np.array([2.0, 1.0, 0.5, 0.05])  # reference dim 0 spreads most; dim 3 is inactive (variance < 0.01)


def reference_mu() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((N, D)) * SCALE


def seed_mu(seed: int) -> np.ndarray:
    """The reference's latents, permuted and sign-flipped as seed ``seed`` stores them (no noise)."""
    ref, mu = reference_mu(), np.empty((N, D))
    for i, (j, s) in enumerate(zip(PERMS[seed], SIGNS[seed])):
        mu[:, j] = s * ref[:, i]
    return mu


def spread_ranks(mu: np.ndarray) -> pd.DataFrame:
    """A sensitivity-like table in the seed's own dims: mean_rank 1 for the widest dimension."""
    spread = pd.Series(mu.std(0), index=pd.RangeIndex(D, name="dim"))
    return pd.DataFrame({"spread": spread, "mean_rank": spread.rank(ascending=False)})


def test_compute_sensitivity_finds_the_permuted_copies():
    mus = [seed_mu(s) for s in range(3)]
    r = seeds_stage.compute("sensitivity", mus, [spread_ranks(mu) for mu in mus], [0, 1, 2])
    assert isinstance(r, seeds_stage.SensitivitySeedsResult)
    f = r.findings
    assert f["n_seeds_used"] == 3 and f["seeds"] == [0, 1, 2] and f["k_top"] == 3
    assert f["match_r_median"] == pytest.approx(1.0, abs=1e-9)
    assert f["top_stable"] == "z0 (3/3), z1 (3/3), z2 (3/3)"
    assert f["seed_rho"] == "1.00"
    assert f["seed_rank_agreement"] == pytest.approx({"1": 1.0, "2": 1.0})
    assert f["top_counts"] == {"0": 3, "1": 3, "2": 3, "3": 0}
    assert r.dimension_order == (0, 1, 2, 3)
    ms = r.table("mean_std")
    assert list(ms.columns) == ["mean", "std"]
    assert ms["mean"].tolist() == [1.0, 2.0, 3.0, 4.0] and ms["std"].tolist() == [0.0] * D
    matches = r.table("matches")
    assert [matches[(s, "dim")].tolist() for s in range(3)] == [PERMS[s] for s in range(3)]
    assert [matches[(s, "sign")].tolist() for s in range(3)] == [SIGNS[s] for s in range(3)]
    assert r.table("per_seed").shape == (D, 3)
    assert r.table("summary")[("spread", "mean")].to_numpy() == pytest.approx(reference_mu().std(0))
    assert r.table("seed_tables").loc[(1, 2), "mean_rank"] == 1.0  # seed 1 keeps reference dim 0 in its dim 2


def test_compute_sensitivity_sees_a_disagreeing_seed():
    mus = [seed_mu(0), seed_mu(1)]
    tables = [spread_ranks(mus[0]), spread_ranks(mus[1])]
    tables[1]["mean_rank"] = 5.0 - tables[1]["mean_rank"]  # seed 1 ranks the dimensions the other way round
    f = seeds_stage.compute("sensitivity", mus, tables, [4, 5]).findings
    assert f["seed_rho"] == "-1.00" and f["seed_rank_agreement"] == pytest.approx({"5": -1.0})
    assert f["top_stable"] == "z0 (1/2), z1 (2/2), z2 (2/2), z3 (1/2)"
    assert f["top_counts"] == {"0": 1, "1": 2, "2": 2, "3": 1}


NAMES = ["centroid_hz", "rms_db", "mixed", "none"]
"""The reference seed's names of its dimensions 0..3."""


def named_ranks(seed: int, names=NAMES) -> pd.DataFrame:
    """Seed ``seed``'s table in its own dims: :func:`spread_ranks` and each dim's name (the reference's, moved)."""
    table = spread_ranks(seed_mu(seed))
    own = [""] * D
    for i, j in enumerate(PERMS[seed]):
        own[j] = names[i]
    return table.assign(label=own)


def test_names_that_every_seed_shares_hold_and_the_others_become_mixed():
    mus = [seed_mu(s) for s in range(3)]
    r = seeds_stage.compute("sensitivity", mus, [named_ranks(s) for s in range(3)], [0, 1, 2])
    labels, f = r.table("labels"), r.findings
    assert list(labels.columns) == ["seed 0", "seed 1", "seed 2", "held_in", "min_abs_r", "label"]
    assert labels["label"].tolist() == NAMES and (labels["held_in"] == 3).all()  # permuted and flipped, same names
    assert f["seed_labels"] == {"0": "centroid_hz", "1": "rms_db", "2": "mixed", "3": "none"}
    assert f["labels_held"] == "z0 (centroid_hz), z1 (rms_db)" and f["n_labels_held"] == 2
    assert (f["n_labels_reference"], f["n_labels_lost"]) == (2, 0)
    # seed 2 names the partner of reference dim 1 after flatness, and of dim 3 after rms_db
    other = named_ranks(2, ["centroid_hz", "flatness", "mixed", "rms_db"])
    r = seeds_stage.compute("sensitivity", mus, [named_ranks(0), named_ranks(1), other], [0, 1, 2])
    labels, f = r.table("labels"), r.findings
    assert labels["label"].tolist() == ["centroid_hz", "mixed", "mixed", "mixed"]
    assert labels["held_in"].tolist() == [3, 2, 3, 2] and labels.loc[1, "seed 2"] == "flatness"
    assert f["labels_held"] == "z0 (centroid_hz)" and (f["n_labels_reference"], f["n_labels_lost"]) == (2, 1)
    assert labels["min_abs_r"].to_numpy() == pytest.approx(1.0)
    top = named_ranks(0)["mean_rank"].sort_values(kind="stable").index[:3]
    assert f["top_dims_across"] == ", ".join(f"z{d} ({labels.loc[d, 'label']})" for d in top)
    assert f["top_dims_across"].count("mixed") == sum(labels.loc[d, "label"] == "mixed" for d in top)


def test_reference_top_orders_ties_as_the_reference_stage():
    table = pd.DataFrame({"mean_rank": [2.0, 1.0, 2.0, 4.0], "oat_logmel": [1.0, 0.5, 3.0, 9.0]})
    assert seeds_labels.reference_top(table, "mean_rank", False, "oat_logmel", 3) == [1, 2, 0]
    assert seeds_labels.reference_top(table, "mean_rank", False, None, 3) == [1, 0, 2]
    assert seeds_labels.reference_top(table, "oat_logmel", True, None, 2) == [3, 2]
    names = pd.DataFrame({"label": ["rms_db", "mixed", "none", "flatness"]})
    assert seeds_labels.top_names([1, 2, 0], names) == "z1 (mixed), z2 (none), z0 (rms_db)"


def test_with_one_seed_no_name_holds_and_analyses_without_names_have_no_label_table():
    r = seeds_stage.compute("sensitivity", [seed_mu(0)], [named_ranks(0)], [0])
    assert r.table("labels")["label"].tolist() == ["mixed", "mixed", "mixed", "none"]
    assert (r.findings["n_labels_held"], r.findings["n_labels_lost"]) == (0, 2)
    plain = seeds_stage.compute("sensitivity", [seed_mu(0)], [spread_ranks(seed_mu(0))], [0])
    assert "labels" not in plain.tables and "seed_labels" not in plain.findings


def statistics_table(seed: int) -> pd.DataFrame:
    mu = seed_mu(seed)
    return seeds.statistics_per_run()(None, None, model_runs.Latents(mu, np.full_like(mu, 0.5), pd.DataFrame()))


def test_compute_statistics_counts_active_units_and_kl():
    r = seeds_stage.compute(
        "statistics", [seed_mu(s) for s in range(3)], [statistics_table(s) for s in range(3)], [0, 1, 2]
    )
    assert isinstance(r, seeds_stage.StatisticsSeedsResult)
    f = r.findings
    ref = statistics.dimension_table(reference_mu(), np.full((N, D), 0.5))
    kl_total = float(ref["kl"].sum())
    assert f["active_per_seed"] == [3, 3, 3] and f["active_seeds"] == "3, 3, 3"
    assert f["active_mean_std"] == "3.0 ± 0.0"
    assert f["kl_total_per_seed"] == pytest.approx([kl_total] * 3)
    assert f["kl_seeds"] == f"{kl_total:.1f} ± 0.0"
    assert f["match_r_median"] == pytest.approx(1.0, abs=1e-9)
    assert "top_stable" not in f and "seed_rho" not in f
    assert r.dimension_order == (0, 1, 2, 3)
    np.testing.assert_allclose(r.table("mean_std")["mean"], ref["kl"])
    np.testing.assert_allclose(r.table("mean_std")["std"], 0, atol=1e-12)
    summary = r.table("summary")  # "mean" flips with the dimension's sign, so it matches the reference's
    np.testing.assert_allclose(summary[("mean", "mean")], ref["mean"], atol=1e-12)
    np.testing.assert_allclose(summary[("active", "mean")], [1, 1, 1, 0])


class FakeFeats:
    """Features whose "log-mel" of every note is the one-dimension decoder's output plus 1 dB."""

    def __init__(self, decoder, mu):
        self.meta = pd.DataFrame({"split": "test"}, index=[f"note{i}" for i in range(len(mu))])
        self.logmel = decoder(torch.as_tensor(mu[:, :1], dtype=torch.float32)) + 1.0

    @staticmethod
    def denormalise(x):
        return x


class FakeRun:
    def __init__(self, decode):
        self.decode = decode


def seed_decoder(decoder, seed):
    """Seed ``seed``'s decoder: the known-answer decoder reading its own copy of reference dim 0."""
    j, sign = PERMS[seed][0], SIGNS[seed][0]
    return lambda z: decoder(sign * torch.as_tensor(z)[:, [j]])


def test_compute_ablation_singles_out_the_dimension_the_decoder_reads(one_dim_decoder):
    feats = FakeFeats(one_dim_decoder, reference_mu())
    fn = seeds.ablation_per_run(feats)
    mus, tables = [], []
    for s in range(3):
        mu = seed_mu(s).astype(np.float32)
        lat = model_runs.Latents(mu, np.ones_like(mu), feats.meta)
        mus.append(mu)
        tables.append(fn(None, FakeRun(seed_decoder(one_dim_decoder, s)), lat))
    r = seeds_stage.compute("ablation", mus, tables, [0, 1, 2])
    f = r.findings
    assert r.dimension_order[0] == 0
    assert f["top_counts"]["0"] == 3 and f["top_stable"].startswith("z0 (3/3)")
    assert f["free_per_seed"] == [3, 3, 3] and f["free_seeds"] == "3.0 ± 0.0"  # only z0 costs anything
    assert f["seed_rho"] == "1.00"
    ms = r.table("mean_std")
    assert ms.loc[0, "mean"] > 1.0 and ms.loc[1:, "mean"].abs().max() < 1e-9
    assert ms.loc[0, "std"] == pytest.approx(0.0, abs=1e-9)  # every seed decodes the same notes alike


def test_a_single_seed_has_nothing_to_agree_with():
    mu = seed_mu(0)
    r = seeds_stage.compute("sensitivity", [mu], [spread_ranks(mu)], [7])
    f = r.findings
    assert f["seed_rho"] == "n/a (one seed)" and f["seed_rank_agreement"] == {}
    assert f["match_r_median"] == 1.0 and f["n_seeds_used"] == 1 and f["seeds"] == [7]
    assert f["top_stable"] == "z0 (1/1), z1 (1/1), z2 (1/1)"
    assert r.table("mean_std")["std"].isna().all()


def test_k_top_is_at_most_the_latent_size():
    mu = seed_mu(0)[:, :2]
    table = pd.DataFrame({"mean_rank": [2.0, 1.0]}, index=pd.RangeIndex(2, name="dim"))
    f = seeds_stage.compute("sensitivity", [mu], [table], [0]).findings
    assert f["k_top"] == 2 and f["top_stable"] == "z0 (1/1), z1 (1/1)"
    assert seeds_stage.compute("sensitivity", [mu], [table], [0]).dimension_order == (1, 0)


def test_unknown_analysis_and_bad_inputs_raise_clear_errors():
    with pytest.raises(ConfigError, match="'sensitivity', 'ablation', 'statistics'"):
        seeds.result(config.make(), "pca")
    mu = seed_mu(0)
    with pytest.raises(ConfigError, match="unknown across-seeds analysis 'pca'"):
        seeds_stage.compute("pca", [mu], [spread_ranks(mu)], [0])
    with pytest.raises(VaetoneError, match="one latent array and one table per seed"):
        seeds_stage.compute("sensitivity", [mu, mu], [spread_ranks(mu)], [0, 1])
    with pytest.raises(VaetoneError, match="indexed by dim 0..3"):
        seeds_stage.compute("sensitivity", [mu], [spread_ranks(mu).set_axis([5, 6, 7, 8])], [0])
    other = spread_ranks(mu).assign(extra=1.0)
    with pytest.raises(VaetoneError, match="seed 1 has numeric columns"):
        seeds_stage.compute("sensitivity", [mu, mu], [spread_ranks(mu), other], [0, 1])


# --------------------------------------------------------------------------- result(): caching, keys


@pytest.fixture
def fake_seeds(isolated_store, monkeypatch):
    """Fake runs and latents for seeds 0-2 (the permuted copies), fake features, a counted reference."""
    calls = {"latents": [], "reference": 0}

    def latents(cfg, run=None, feats=None):
        calls["latents"].append(cfg.seed)
        mu = np.concatenate([seed_mu(cfg.seed), seed_mu(cfg.seed)]).astype(np.float32)
        meta = pd.DataFrame({"split": ["test"] * N + ["train"] * N})
        return model_runs.Latents(mu, np.full_like(mu, 0.5), meta)

    def reference(cfg):
        calls["reference"] += 1
        return statistics_table(0)

    monkeypatch.setattr(model_runs, "trained_model", lambda cfg, feats=None, progress=True: FakeRun(None))
    monkeypatch.setattr(model_runs, "latents", latents)
    monkeypatch.setattr("vaetone.spectral.features.load_features", lambda cfg: None)
    monkeypatch.setitem(seeds_stage.REFERENCES, "statistics", reference)
    return calls


def test_result_is_cached_in_the_reference_run_folder(fake_seeds):
    cfg = config.make(n_seeds=3)
    first = seeds.result(cfg, "statistics")
    assert fake_seeds["latents"] == [0, 1, 2]
    second = seeds.result(cfg, "statistics")
    assert fake_seeds["latents"] == [0, 1, 2]  # loaded, not recomputed
    assert second.findings == first.findings and second.findings["active_seeds"] == "3, 3, 3"
    pd.testing.assert_frame_equal(second.table("summary"), first.table("summary"))
    folders = list((store.run_dir(cfg) / "results").glob("seeds-statistics-*"))
    assert len(folders) == 1 and (folders[0] / "findings.json").exists() and (folders[0] / "mean_std.csv").exists()


def test_more_seeds_or_another_reference_give_a_new_result(fake_seeds, monkeypatch):
    cfg = config.make(n_seeds=2)
    assert seeds.result(cfg, "statistics").findings["seeds"] == [0, 1]
    assert seeds.result(dataclasses.replace(cfg, n_seeds=3), "statistics").findings["seeds"] == [0, 1, 2]
    changed = statistics_table(0).assign(kl=lambda t: t["kl"] * 2)
    monkeypatch.setitem(seeds_stage.REFERENCES, "statistics", lambda c: changed)
    doubled = seeds.result(cfg, "statistics")
    assert doubled.findings["kl_total_per_seed"][0] == pytest.approx(2 * doubled.findings["kl_total_per_seed"][1])
    assert len(list((store.run_dir(cfg) / "results").glob("seeds-statistics-*"))) == 3


def test_the_key_holds_the_analysis_parameters():
    cfg, up = config.make(), "upstream"
    sens = seeds_stage.SensitivitySeedsResult
    key = results.result_key(sens, cfg, up)
    for name, value in [("n_seeds", 4), ("n_anchors", 8), ("sweep_sigma", 2.0), ("sweep_steps", 5), ("sobol_n", 64)]:
        assert results.result_key(sens, dataclasses.replace(cfg, **{name: value}), up) != key, name
    assert results.result_key(sens, dataclasses.replace(cfg, griffin_lim_iters=4), up) == key
    keys = {results.result_key(c, cfg, up) for c in seeds_stage.RESULT_CLASSES.values()}
    assert len(keys) == 3  # one result per analysis
    for cls in (seeds_stage.AblationSeedsResult, seeds_stage.StatisticsSeedsResult):
        assert results.result_key(cls, dataclasses.replace(cfg, n_seeds=5), up) != results.result_key(cls, cfg, up)


def test_a_reference_without_the_read_column_is_refused(monkeypatch):
    monkeypatch.setitem(seeds_stage.REFERENCES, "ablation", lambda c: pd.DataFrame({"base_mean": [1.0]}))
    with pytest.raises(VaetoneError, match="no column 'increase_mean'"):
        seeds_stage.reference_table(config.make(), "ablation")


# --------------------------------------------------------------------------- the tiny trained run


@pytest.mark.parametrize("analysis", seeds_stage.ANALYSES)
def test_each_reference_stage_computes_what_the_per_run_analysis_computes(analysis, tiny_cfg, stage_store):
    """The reference seed's table (from the chapter's own stage) and the other seeds' (per-run) are alike."""
    from vaetone.spectral.features import load_features

    reference = seeds_stage.reference_table(tiny_cfg, analysis)
    feats = load_features(tiny_cfg)
    run = model_runs.trained_model(tiny_cfg, feats, progress=False)
    test = model_runs.latents(tiny_cfg, run, feats).split("test")
    own = seeds_stage.per_run(tiny_cfg, feats, analysis)(tiny_cfg, run, test).sort_index()
    assert list(reference.index) == list(range(tiny_cfg.latent_dim))
    numeric = own.select_dtypes("number").columns
    assert set(reference.select_dtypes("number").columns) == set(numeric)
    pd.testing.assert_frame_equal(reference[numeric], own[numeric], check_index_type=False, rtol=1e-6, atol=1e-9)
    if analysis != "statistics":  # the names too: every seed is named by the reference stage's rule
        assert reference["label"].tolist() == own["label"].tolist()


def test_sensitivity_over_two_trained_seeds(tiny_cfg, stage_store):
    r = seeds.result(tiny_cfg, "sensitivity")
    f = r.findings
    assert f["seeds"] == [tiny_cfg.seed, tiny_cfg.seed + 1] and f["n_seeds_used"] == 2
    assert set(f["seed_rank_agreement"]) == {str(tiny_cfg.seed + 1)}
    rho = f["seed_rank_agreement"][str(tiny_cfg.seed + 1)]
    assert f["seed_rho"] == f"{rho:.2f}" and -1.0 <= rho <= 1.0
    assert sum(f["top_counts"].values()) == 2 * f["k_top"] == 2 * min(3, tiny_cfg.latent_dim)
    matches = r.table("matches")
    assert f["match_r_median"] == pytest.approx(float(np.median(matches[(tiny_cfg.seed + 1, "abs_r")])))
    ms = r.table("mean_std")
    assert list(ms.index) == list(range(tiny_cfg.latent_dim)) and (ms["mean"] >= 1).all()
    reference = seeds_stage.reference_table(tiny_cfg, "sensitivity")
    pd.testing.assert_series_equal(
        r.table("per_seed")[tiny_cfg.seed], reference["mean_rank"].astype(float), check_names=False
    )
    labels = r.table("labels")
    assert labels["seed 0"].tolist() == reference["label"].tolist() and set(f["seed_labels"]) == {"0", "1", "2", "3"}
    both = labels["seed 0"] == labels["seed 1"]
    assert (labels["held_in"] == np.where(both, 2, 1)).all()
    assert labels["label"].tolist() == labels["seed 0"].where(both, "mixed").tolist()
    ref = sensitivity.result(tiny_cfg).findings
    held = seeds_labels.held_labels(tiny_cfg)
    assert held.tolist() == labels["label"].tolist()
    assert f["strip_labels_held"][0] == f"z{ref['top_dimensions'][0]} ({held[ref['top_dimensions'][0]]}) = -3.0"
    assert len(f["strip_labels_held"]) == len(ref["strip_labels"]) and isinstance(f["label_moves_held"], str)
    assert seeds.result(tiny_cfg, "sensitivity").findings == f  # loaded, not recomputed
    folders = list((store.run_dir(tiny_cfg) / "results").glob("seeds-sensitivity-*"))
    assert len(folders) == 1


def test_ablation_over_two_trained_seeds(tiny_cfg, stage_store):
    r = seeds.result(tiny_cfg, "ablation")
    reference = seeds_stage.reference_table(tiny_cfg, "ablation")
    free = r.findings["free_per_seed"]
    assert len(free) == 2 and free[0] == int((reference["increase_mean"] < 0.01 * reference["base_mean"]).sum())
    pd.testing.assert_frame_equal(r.table("seed_tables").loc[tiny_cfg.seed], reference, check_index_type=False)
    assert r.findings["free_seeds"] == f"{np.mean(free):.1f} ± {np.std(free):.1f}"
    assert r.dimension_order[0] == int(r.table("mean_std")["mean"].idxmax())
    labels, order = r.table("labels"), ablation.result(tiny_cfg).dimension_order
    assert labels["seed 0"].tolist() == reference["label"].tolist()
    assert r.findings["top_desc_held"] == seeds_labels.top_names(order[:3], labels)
