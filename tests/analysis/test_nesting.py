"""Tests of vaetone.analysis.nesting: tests on latents that take the instrument as the unit.

Known answers: a dimension that varies only between instruments, with many notes per
instrument, is "significant" when the notes are counted as independent and is not under the
nesting-aware test; a real effect is still detected.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vaetone.analysis import nesting
from vaetone.errors import ConfigError, VaetoneError


def test_intraclass_correlation_of_known_designs():
    # two instruments of two notes: MSB = 100, MSW = 2, n0 = 2 -> σ²_b = 49, ICC = 49 / 51
    x = np.array([0.0, 2.0, 10.0, 12.0])
    groups = ["a", "a", "b", "b"]
    assert nesting.intraclass_correlation(x, groups)[0] == pytest.approx(49 / 51)
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(40), 20)
    only_between = rng.normal(size=40)[g]
    independent = rng.normal(size=800)
    icc = nesting.intraclass_correlation(np.column_stack([only_between, independent, np.zeros(800)]), g)
    assert icc[0] == pytest.approx(1.0) and icc[1] < 0.05 and icc[2] == 0.0
    assert nesting.intraclass_correlation(rng.normal(size=5), np.arange(5))[0] == 0.0  # one note per instrument
    with pytest.raises(VaetoneError, match="at least 2 instruments"):
        nesting.intraclass_correlation(x, ["a"] * 4)
    with pytest.raises(VaetoneError, match="instrument labels for 4 notes"):
        nesting.intraclass_correlation(x, ["a", "b"])


def test_ks_statistic_is_scipys_two_sided_distance():
    x = np.random.default_rng(1).normal(0.3, 1.2, size=(3, 50))
    np.testing.assert_allclose(nesting.ks_statistic(x), [stats.kstest(r, "norm").statistic for r in x], rtol=1e-12)


def _nested_normal(rng, k: int, m: int, icc: float) -> tuple[np.ndarray, np.ndarray]:
    """k instruments of m notes, each N(0, 1) with intraclass correlation icc."""
    g = np.repeat(np.arange(k), m)
    return np.sqrt(icc) * rng.normal(size=k)[g] + np.sqrt(1 - icc) * rng.normal(size=k * m), g


def test_normality_between_instruments_is_not_significant_by_counting_notes():
    """Standard normal notes nested in 8 instruments (ICC 0.9): counted as notes, KS rejects N(0, 1) almost always."""
    rng = np.random.default_rng(0)
    old = new = 0
    for rep in range(40):
        z, g = _nested_normal(rng, 8, 100, 0.9)
        table = nesting.nested_normality(z, g, n_sim=200, seed=rep)
        old += table.loc[0, "ks_p_notes"] < 0.05
        new += table.loc[0, "ks_p"] < 0.05
    assert old >= 35 and new <= 6  # the nested test keeps its 5 % level (2 expected of 40)


def test_normality_detects_a_real_departure_and_is_deterministic():
    rng = np.random.default_rng(1)
    z, g = _nested_normal(rng, 30, 10, 0.5)
    mu = np.column_stack([z + 1.0, z])  # z0 is N(1, 1), z1 is N(0, 1)
    table = nesting.nested_normality(mu, g, n_sim=200, seed=0)
    assert table.loc[0, "ks_p"] == pytest.approx(1 / 201) and table.loc[1, "ks_p"] > 0.05
    assert table.loc[0, "icc"] == pytest.approx(nesting.intraclass_correlation(z, g)[0])
    assert table.loc[0, "ks_stat"] == pytest.approx(stats.kstest(z + 1.0, "norm").statistic)
    pd.testing.assert_frame_equal(table, nesting.nested_normality(mu, g, n_sim=200, seed=0))
    one = nesting.nested_normality(mu, np.zeros(len(z)), n_sim=200)
    assert one["ks_p"].isna().all() and one["icc"].isna().all() and one["ks_p_notes"].notna().all()
    with pytest.raises(ConfigError, match="bootstrap_n"):
        nesting.nested_normality(mu, g, n_sim=10)


def test_one_way_anova_matches_scipy_and_marks_undefined_cases():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 3)) + np.repeat([0.0, 0.5, 1.0], 10)[:, None]
    labels = np.repeat(["a", "b", "c"], 10)
    f, p = nesting.one_way_anova(x, labels)
    ref = stats.f_oneway(*[x[labels == g] for g in "abc"], axis=0)
    np.testing.assert_allclose(f, ref.statistic)
    np.testing.assert_allclose(p, ref.pvalue)
    f, p = nesting.one_way_anova(x[:3], labels[[0, 10, 20]])  # as many values as groups
    assert np.isnan(f).all() and np.isnan(p).all()
    assert np.isnan(nesting.one_way_anova(x, np.zeros(30))[1]).all()  # one group
    f, p = nesting.one_way_anova(np.column_stack([np.repeat([1.0, 2.0], 3), np.ones(6)]), np.repeat([0, 1], 3))
    assert f[0] == np.inf and p[0] == 0.0 and np.isnan(f[1]) and np.isnan(p[1])


def test_anova_between_instruments_is_not_significant_by_counting_notes():
    """3 families of 3 instruments, 50 notes each; instruments differ, families do not."""
    rng = np.random.default_rng(3)
    family, g = np.repeat(np.arange(3), 3), np.repeat(np.arange(9), 50)
    old = new = 0
    for _ in range(40):
        z = rng.normal(size=9)[g] + 0.3 * rng.normal(size=450)
        table = nesting.nested_anova(z, family[g], g, "family")
        old += table.loc[0, "anova_p_notes"] < 0.05
        new += table.loc[0, "anova_p"] < 0.05
        assert table.loc[0, "n_instruments"] == 9 and table.loc[0, "n_groups"] == 3
    assert old >= 35 and new <= 6


def test_anova_on_instrument_means_detects_a_real_family_effect():
    rng = np.random.default_rng(4)
    family, g = np.repeat(np.arange(3), 4), np.repeat(np.arange(12), 50)
    z = 3.0 * family[g] + rng.normal(size=12)[g] + 0.3 * rng.normal(size=600)
    table = nesting.nested_anova(z, family[g], g)
    means = nesting.instrument_means(z, g)[:, 0]
    ref = stats.f_oneway(*[means[family == f] for f in range(3)])
    assert table.loc[0, "anova_p"] == pytest.approx(ref.pvalue) and table.loc[0, "anova_p"] < 0.01
    with pytest.raises(VaetoneError, match="varies within 12 instrument"):
        nesting.nested_anova(z, np.tile([0, 1], 300), g, "pitch")


def test_count_phrase_and_undefined_anova():
    counts, phrase = nesting.count_phrase([0.001, 0.2, 0.03], [1e-6, 1e-5, 0.5], "differ", 90, "unit")
    assert counts == {"n": 1, "n_notes": 2}  # Bonferroni: p < 0.05 / 3
    assert (
        phrase
        == "1 of 3 dimensions differ (unit, Bonferroni-corrected 5 %); counting the 90 notes as independent, 2 would"
    )
    counts, phrase = nesting.count_phrase([np.nan, np.nan], [0.5, 1e-9], "differ", 10, "unit")
    assert np.isnan(counts["n"]) and counts["n_notes"] == 1
    assert phrase == "counting the 10 notes as independent, 1 would"
    assert nesting.undefined_anova(3, 3, "families").startswith("undefined: 3 instruments in 3 families leave no")
    assert nesting.undefined_anova(3, 1, "sources") == "undefined: the 3 instruments all belong to one of the sources"


def test_enough_simulations_to_resolve_the_bonferroni_level():
    assert nesting.simulations(1000, 16) == 1280 and nesting.simulations(5000, 16) == 5000
    for d in (1, 16, 64):
        assert 1 / (nesting.simulations(100, d) + 1) < nesting.LEVEL / d
