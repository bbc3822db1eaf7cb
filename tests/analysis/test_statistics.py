"""Tests of vaetone.analysis.statistics: known answers of the descriptive statistics; seed matching."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from vaetone.analysis import seeds, statistics
from vaetone.errors import ConfigError, VaetoneError


def test_statistics_of_a_known_gaussian_sample():
    rng = np.random.default_rng(0)
    means, stds = np.array([0.0, 1.5, -2.0]), np.array([1.0, 0.5, 2.0])
    mu = rng.normal(means, stds, size=(200_000, 3))
    table = statistics.dimension_table(mu)
    np.testing.assert_allclose(table["mean"], means, atol=0.02)
    np.testing.assert_allclose(table["std"], stds, rtol=0.01)
    np.testing.assert_allclose(table["skewness"], 0, atol=0.03)
    np.testing.assert_allclose(table["excess_kurtosis"], 0, atol=0.05)
    assert (table["min"] < means - 4 * stds).all() and (table["max"] > means + 4 * stds).all()
    assert not {"ks_stat", "ks_p"} & set(table.columns)  # normality is tested with the instruments (nesting)


def test_excess_kurtosis_of_a_uniform_sample():
    mu = np.random.default_rng(1).uniform(-1, 1, size=(100_000, 1))
    assert statistics.dimension_table(mu).loc[0, "excess_kurtosis"] == pytest.approx(-1.2, abs=0.03)


def test_active_units_of_a_constructed_posterior():
    rng = np.random.default_rng(0)
    mu = rng.normal(0, [1, 1, 1, 1e-2, 1e-2], size=(2000, 5))  # variances 1 and 1e-4
    active = statistics.active_units(mu)
    assert active.tolist() == [True, True, True, False, False] and active.sum() == 3
    assert statistics.dimension_table(mu)["active"].sum() == 3


def test_kl_to_the_prior():
    rng = np.random.default_rng(0)
    assert np.allclose(statistics.kl_per_dimension(np.zeros((10, 3)), np.ones((10, 3))), 0.0)
    mu, std = np.ones((4, 2)), np.ones((4, 2))
    std[:, 1] = np.exp(-1.0)  # ½(1 + e⁻² − 1 + 2)
    np.testing.assert_allclose(statistics.kl_per_dimension(mu, std), [0.5, 0.5 * (np.exp(-2) + 2)])
    mu = rng.normal(size=(100, 3)) * [2.0, 0.1, 1.0]
    std = np.full((100, 3), 0.5)
    assert statistics.kl_order(mu, std)[0] == 0
    table = statistics.dimension_table(mu, std)
    assert {"posterior_std", "kl"} <= set(table.columns) and table["posterior_std"].eq(0.5).all()


def test_kl_of_a_deterministic_autoencoder_is_finite_and_orders():
    """β = 0 reports std = 0: the variance is floored at VAR_FLOOR inside the log, not -inf."""
    zero = statistics.kl_per_dimension(np.zeros((5, 2)), np.zeros((5, 2)))
    expected = 0.5 * (-1.0 - np.log(statistics.VAR_FLOOR))  # ½(0 + 0 − 1 − ln 1e-12) ≈ 13.3 nats
    np.testing.assert_allclose(zero, [expected, expected])
    assert np.isfinite(zero).all() and expected == pytest.approx(13.3155, abs=1e-4)
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(50, 3)) * [0.1, 2.0, 1.0]
    std = np.zeros_like(mu)
    kl = statistics.kl_per_dimension(mu, std)
    np.testing.assert_allclose(kl, expected + 0.5 * (mu**2).mean(0))
    assert statistics.kl_order(mu, std).tolist() == [1, 2, 0]
    table = statistics.dimension_table(mu, std)
    assert np.isfinite(table["kl"]).all() and table["posterior_std"].eq(0.0).all()


def test_correlation_matrix():
    rng = np.random.default_rng(0)
    a = rng.normal(size=1000)
    mu = np.stack([a, -a, rng.normal(size=1000)], 1)
    c = statistics.correlation_matrix(mu)
    assert c.shape == (3, 3) and np.allclose(np.diag(c), 1)
    assert c.loc[0, 1] == pytest.approx(-1) and abs(c.loc[0, 2]) < 0.1


def test_association_with_pitch_velocity_family_and_source():
    rng = np.random.default_rng(0)
    n = 600
    pitch = rng.integers(40, 77, n)
    velocity = rng.choice([25, 75, 127], n)
    family = rng.choice(["brass", "reed", "string"], n)
    code = pd.factorize(family)[0].astype(float)
    mu = np.stack([(pitch - 58) / 10 + 0.05 * rng.normal(size=n), code, rng.normal(size=n)], 1)
    cont = statistics.factor_association(mu, pd.DataFrame({"pitch": pitch, "velocity": velocity}), seed=0)
    p = cont.query("factor == 'pitch'").set_index("dim")
    assert p.loc[0, "pearson_r"] > 0.99 and abs(p.loc[2, "pearson_r"]) < 0.1
    assert p.loc[0, "mutual_info"] > 1.0 and p.loc[2, "mutual_info"] < 0.05
    # every note its own instrument: the test on instrument means is the note-level ANOVA
    cat = statistics.categorical_association(mu, {"family": family, "source": np.full(n, "acoustic")}, np.arange(n))
    fam = cat.query("factor == 'family'").set_index("dim")
    assert fam.loc[1, "eta_squared"] == pytest.approx(1.0) and fam.loc[2, "eta_squared"] < 0.02
    assert fam.loc[1, "anova_p"] < 1e-10 and fam.loc[2, "anova_p"] == pytest.approx(fam.loc[2, "anova_p_notes"])
    assert (fam["n_instruments"] == n).all() and (fam["n_groups"] == 3).all()
    assert cat.query("factor == 'source'")["anova_F"].isna().all()
    np.testing.assert_allclose(statistics.eta_squared(mu, family)[1], 1.0)
    means = statistics.group_means(mu, family)
    assert means.loc["reed", 1] == pytest.approx(code[family == "reed"][0])
    assert means["n"].sum() == n


def test_embed_2d():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(60, 5)) * [5, 3, 0.1, 0.1, 0.1]
    pca = statistics.embed_2d(mu, "pca")
    assert pca.shape == (60, 2) and sum(pca.attrs["explained_variance_ratio"]) > 0.99
    t1, t2 = statistics.embed_2d(mu, "tsne", seed=0), statistics.embed_2d(mu, "tsne", seed=0)
    assert t1.shape == (60, 2) and np.allclose(t1, t2)
    with pytest.raises(ConfigError):
        statistics.embed_2d(mu, "umap")


def test_match_dimensions_recovers_a_permutation_and_sign_flips():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(500, 5))
    perm_true, signs_true = np.array([3, 0, 4, 1, 2]), np.array([1, -1, 1, -1, 1])
    other = np.empty_like(ref)
    other[:, perm_true] = ref * signs_true + 0.1 * rng.normal(size=ref.shape)
    perm, signs, corr = seeds.match_dimensions(ref, other)
    assert perm.tolist() == perm_true.tolist() and signs.tolist() == signs_true.tolist()
    assert (corr > 0.98).all()
    np.testing.assert_allclose(seeds.align(other, perm, signs), ref, atol=0.5)
    with pytest.raises(VaetoneError):
        seeds.match_dimensions(ref, other[:, :4])
    # torch tensors are accepted
    assert seeds.match_dimensions(torch.as_tensor(ref), torch.as_tensor(other))[0].tolist() == perm.tolist()


def test_aggregate_seeds_aligns_before_averaging():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(400, 3)) * [1.0, 2.0, 3.0] + [0.5, 0, 0]
    other = -ref[:, [2, 0, 1]]
    tables = [statistics.dimension_table(ref), statistics.dimension_table(other)]
    matches = [seeds.match_dimensions(ref, ref), seeds.match_dimensions(ref, other)]
    agg = seeds.aggregate_seeds(tables, matches, signed=["mean", "skewness"])
    np.testing.assert_allclose(agg[("std", "mean")], tables[0]["std"])
    np.testing.assert_allclose(agg[("std", "std")], 0, atol=1e-12)
    np.testing.assert_allclose(agg[("mean", "mean")], tables[0]["mean"], atol=1e-12)
    assert "seed" not in agg.columns.get_level_values(0)


def test_categorical_association_tests_on_instrument_means():
    """12 instruments of 30 notes in 3 families: the family test has n = 12, whatever the number of notes."""
    rng = np.random.default_rng(5)
    inst = np.repeat(np.arange(12), 30)
    family = np.array(["brass", "reed", "string"])[inst % 3]
    mu = np.column_stack([rng.normal(size=12)[inst] + 0.1 * rng.normal(size=360), rng.normal(size=360)])
    cat = statistics.categorical_association(mu, {"family": family}, inst).set_index("dim")
    means = pd.DataFrame(mu).groupby(inst).mean().to_numpy()
    expected = stats.f_oneway(*[means[np.arange(12) % 3 == f, 0] for f in range(3)])
    assert cat.loc[0, "anova_F"] == pytest.approx(expected.statistic)
    assert cat.loc[0, "anova_p"] == pytest.approx(expected.pvalue)
    assert cat.loc[0, "anova_p_notes"] < 0.01 and cat.loc[0, "anova_p"] > 0.3  # only the notes call it significant
    assert cat.loc[0, "eta_squared"] == pytest.approx(statistics.eta_squared(mu, family)[0])
    assert (cat["n_instruments"] == 12).all()


def test_kl_terms_sum_to_the_per_dimension_kl():
    rng = np.random.default_rng(6)
    mu, std = rng.normal(size=(40, 3)), rng.uniform(0.1, 1.5, size=(40, 3))
    terms = statistics.kl_terms(mu, std)
    assert terms.shape == (40, 3)
    np.testing.assert_allclose(terms.mean(0), statistics.kl_per_dimension(mu, std))
    np.testing.assert_allclose(terms[3, 1], 0.5 * (mu[3, 1] ** 2 + std[3, 1] ** 2 - 1 - np.log(std[3, 1] ** 2)))


def test_a_family_never_explains_more_than_its_instruments():
    """Chapter 06's caption: family and source are properties of the instrument, so η²(family) ≤ η²(instrument)."""
    rng = np.random.default_rng(7)
    inst = rng.integers(0, 15, 300)
    family = np.array(["brass", "reed", "string", "keys"])[inst % 4]
    mu = rng.normal(size=(300, 6)) + rng.normal(size=(15, 6))[inst] + rng.normal(size=(4, 6))[inst % 4]
    by_instrument, by_family = statistics.eta_squared(mu, inst), statistics.eta_squared(mu, family)
    assert (by_instrument >= by_family).all() and (by_family > 0).all()
