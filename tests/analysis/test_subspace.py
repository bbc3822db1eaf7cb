"""Known-answer tests of seed agreement beyond single axes (vaetone.analysis.subspace and subspace_agreement)."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import special_ortho_group

from vaetone.analysis import subspace, subspace_agreement, subspace_findings
from vaetone.errors import ConfigError

N, D = 600, 6


def _code(n=N, d=D, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def _rotated(x, seed=1, noise=0.0):
    rot = special_ortho_group.rvs(x.shape[1], random_state=seed)
    return x @ rot + noise * np.random.default_rng(seed + 100).standard_normal(x.shape)


def _split(n=N):
    train = np.zeros(n, bool)
    train[: 2 * n // 3] = True
    return train, ~train


def test_rotated_codes_share_the_subspace_but_not_the_axes():
    a = _code()
    b = _rotated(a)
    train, test = _split()
    assert subspace.subspace_r2(a, b, train, test) == pytest.approx(1.0, abs=1e-9)
    assert subspace.linear_map_r2(a, b, train, test).to_numpy() == pytest.approx(np.ones(D), abs=1e-9)
    assert subspace.canonical_correlations(a, b) == pytest.approx(np.ones(D), abs=1e-5)  # the ridge: 1 - 1e-6
    assert np.median(subspace.matched_correlations(a, b)) < 0.8


def test_independent_codes_score_near_chance():
    a, b = _code(2000, 8, 0), _code(2000, 8, 1)
    train, test = _split(2000)
    r2 = subspace.subspace_r2(a, b, train, test)
    assert -0.05 < r2 < 0.01  # held-out R² of noise is slightly negative (about -D / n_train)
    cca = subspace.canonical_correlations(a, b)
    assert cca.mean() < 0.1 and np.all(np.diff(cca) <= 0)
    # the finite-sample bias: sum of squared correlations about D_a * D_b / (n - 1)
    assert np.sum(cca**2) == pytest.approx(64 / 1999, rel=0.5)


def test_linear_map_r2_matches_the_signal_share():
    a = _code(4000, 3, 0)
    noise = np.random.default_rng(5).standard_normal((4000, 2))
    b = np.column_stack([a[:, 0] + noise[:, 0], 2 * a[:, 1] - a[:, 2] + 0.5 * noise[:, 1]])
    train, test = _split(4000)
    r2 = subspace.linear_map_r2(a, b, train, test)
    assert list(r2.index) == [0, 1]
    assert r2.to_numpy() == pytest.approx([0.5, 5 / 5.25], abs=0.03)
    # index arrays select the same notes as masks
    same = subspace.linear_map_r2(a, b, np.flatnonzero(train), np.flatnonzero(test))
    assert same.to_numpy() == pytest.approx(r2.to_numpy())


def test_canonical_correlations_known_values_and_inactive_dims():
    rng = np.random.default_rng(3)
    u, v, w, e = rng.standard_normal((4, 20000))
    a = np.column_stack([u, v, np.full(20000, 0.3)])  # a constant (collapsed) dim
    b = np.column_stack([u + 0.5 * e, w])
    cc = subspace.canonical_correlations(a, b)
    assert cc.shape == (2,)
    assert cc == pytest.approx([1 / np.sqrt(1.25), 0.0], abs=0.02)
    assert np.isfinite(cc).all()


def test_permuted_sign_flipped_copy_is_matched_exactly():
    a = _code() * np.arange(1, D + 1)
    b = -a[:, [3, 0, 5, 1, 4, 2]]
    assert subspace.matched_correlations(a, b) == pytest.approx(np.ones(D))


def test_rank_null_identical_orders_and_random_orders():
    order = np.random.default_rng(0).permutation(12)
    same = subspace.rank_agreement_null(order, order, n=999, seed=0)
    assert same["rho"] == pytest.approx(1.0)
    assert same["p_value"] <= 2 / 1000
    assert abs(same["chance"]) < 0.05 and 0.3 < same["null_q95"] < 0.7
    rng = np.random.default_rng(1)
    ps = np.array([subspace.rank_agreement_null(rng.permutation(12), rng.permutation(12), 199, s)["p_value"]
                   for s in range(120)])  # fmt: skip
    assert 0.4 < ps.mean() < 0.6
    assert np.mean(ps < 0.05) < 0.12
    assert np.mean(ps < 0.5) == pytest.approx(0.5, abs=0.15)


def test_rank_null_orders_and_scores_agree():
    scores_a, scores_b = np.array([0.9, 0.1, 0.5, 0.3, 0.7]), np.array([0.8, 0.2, 0.3, 0.4, 0.9])
    order_a, order_b = np.argsort(-scores_a), np.argsort(-scores_b)
    by_order = subspace.rank_agreement_null(order_a, order_b, n=200)
    by_score = subspace.rank_agreement_null(scores_a, scores_b, n=200)
    assert by_order["rho"] == pytest.approx(by_score["rho"]) == pytest.approx(0.8)
    assert by_order["p_value"] == pytest.approx(by_score["p_value"])  # D! = 120 <= n: the exact null
    with pytest.raises(ConfigError, match="permutations"):
        subspace.rank_agreement_null(order_a, order_b, n=3)


def test_stable_directions_survive_rotation_and_rescaling():
    a = _code()
    targets = pd.DataFrame({"pitch": a @ np.array([2.0, -1.0, 0.5, 0, 0, 0]), "noise": _code(N, 1, 9)[:, 0]})
    mus = [a, _rotated(a, 2), a[:, ::-1] * np.array([5.0, 1.0, 0.2, 3.0, 0.5, 2.0])]
    train, test = _split()
    table = subspace.stable_directions(mus, targets, train, test)
    assert list(table.columns) == ["target", "seed", "r2", "cosine_to_reference", "cosine_in_code"]
    pitch = table[table.target == "pitch"]
    assert pitch.r2.to_numpy() == pytest.approx(np.ones(3), abs=1e-9)
    assert pitch.cosine_to_reference.to_numpy() == pytest.approx(np.ones(3), abs=1e-6)
    assert pitch.cosine_in_code.to_numpy() == pytest.approx(np.ones(3), abs=1e-6)
    assert (table[table.target == "noise"].r2 < 0.02).all()


def test_seed_intervals_bracket_the_direct_estimates():
    a = _code()
    mus = [a, _rotated(a, 1, noise=0.3), _code(seed=7)]
    groups = np.repeat(np.arange(30), N // 30)
    train, test = groups < 20, groups >= 20
    table = subspace_agreement.seed_intervals(mus, groups, n_boot=200, seed=0, train=train, test=test)
    assert list(table.columns) == ["seed", "statistic", "estimate", "low", "high", "n_notes", "n_instruments"]
    assert len(table) == 6 and (table.n_instruments == 30).all()
    row = table.set_index(["seed", "statistic"])
    assert row.loc[(1, "subspace_r2"), "estimate"] == pytest.approx(subspace.subspace_r2(a, mus[1], train, test))
    # where the codes agree, the interval holds the estimate; at chance a biased statistic's percentile
    # interval may not (resamples repeat notes, which shifts the bias), so only its level is checked
    ok = row.loc[1]
    assert (ok.low <= ok.estimate + 1e-9).all() and (ok.estimate <= ok.high + 1e-9).all()
    assert row.loc[(1, "subspace_r2"), "low"] > 0.85 and row.loc[(2, "subspace_r2"), "high"] < 0.05
    assert row.loc[(1, "cca_mean"), "low"] > 0.9 and row.loc[(2, "cca_mean"), "high"] < 0.3
    again = subspace_agreement.seed_intervals(mus, groups, n_boot=200, seed=0, train=train, test=test)
    pd.testing.assert_frame_equal(table, again)


def test_resample_moments_reproduce_the_direct_statistics():
    a = _code(300, 4)
    b = _rotated(a, 3, noise=0.5)[:, ::-1]
    groups = np.repeat(np.arange(10), 30)
    tr, te = np.flatnonzero(groups < 7), np.flatnonzero(groups >= 7)
    weights = np.array([[1.0] * 10, [2, 0, 1, 1, 0, 3, 1, 0, 2, 0]])
    boot = subspace_agreement._boot_stats(a, b, groups, 10, weights, tr, te)
    direct = subspace_agreement._pair_stats(a, b, tr, te)
    assert boot.iloc[0].to_dict() == pytest.approx(direct)
    idx = np.repeat(np.arange(300), weights[1][groups].astype(int))
    pos = {"tr": np.flatnonzero(groups[idx] < 7), "te": np.flatnonzero(groups[idx] >= 7)}
    assert boot.iloc[1].to_dict() == pytest.approx(subspace_agreement._pair_stats(a[idx], b[idx], pos["tr"], pos["te"]))


def test_seed_agreement_tables_findings_and_bad_input():
    a = _code()
    mus = [a, _rotated(a, 1, noise=0.1), _rotated(a, 2, noise=0.1)]
    groups = np.repeat(np.arange(30), N // 30)
    train, test = groups < 20, groups >= 20
    targets = pd.DataFrame({"pitch": a[:, 0] + a[:, 1]})
    orders = [np.arange(D), np.arange(D), np.arange(D)[::-1]]
    tables, found = subspace_agreement.seed_agreement(mus, groups, targets, train, test, orders, n_null=100, n_boot=100)
    assert set(tables) == {"pairs", "directions", "intervals", "ranks"}
    assert found["n_seeds"] == 3
    assert found["subspace_r2_median"] > 0.95 and found["subspace_r2_shuffled_median"] < 0.05
    assert found["cca_mean_median"] > 0.95 > 0.2 > found["cca_mean_shuffled_median"]
    assert found["direction_cosine_min_pitch"] > 0.95
    assert "rank_p_max" in found and "rank_rho_range" in found
    with pytest.raises(ConfigError, match="at least 2 seeds; set n_seeds >= 2"):
        subspace_agreement.seed_agreement([a], groups, targets, train, test)
    with pytest.raises(ConfigError, match="same notes"):
        subspace_agreement.seed_agreement([a, a[:-1]], groups, None, train, test)
    with pytest.raises(ConfigError, match="one per seed"):
        subspace_agreement.seed_agreement(mus, groups, None, train, test, orders[:2], n_null=100, n_boot=100)


def test_rank_table_matches_each_seeds_own_dims():
    a = _code() * np.arange(1, D + 1)
    perm = np.array([3, 0, 5, 1, 4, 2])  # seed 1 stores reference dim i in column perm[i]
    b = np.empty_like(a)
    b[:, perm] = -a
    importance = np.arange(D, 0, -1.0)  # reference dims: 0 most important
    own = np.empty(D)
    own[perm] = importance
    table = subspace_agreement._rank_table([a, b], [importance, own], 100, 0)
    assert table.rho.iloc[0] == pytest.approx(1.0)


def test_span_text():
    assert subspace_findings.span([0.834, 0.991, np.nan]) == "0.83–0.99"
    assert subspace_findings.span([0.5]) == "0.50"
    assert subspace_findings.span([]) == "n/a"
