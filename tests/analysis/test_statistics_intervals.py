"""Tests of vaetone.analysis.statistics_intervals: the instrument-level intervals of chapter 06's headline numbers."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vaetone.analysis import intervals, statistics
from vaetone.analysis import statistics_intervals as si


def test_the_statistics_of_a_resample_are_the_usual_ones():
    rng = np.random.default_rng(0)
    a = np.column_stack([rng.normal(size=50), rng.normal(size=50)])
    a[:, 1] += a[:, 0]
    assert si.pearson(a) == pytest.approx(stats.pearsonr(a[:, 0], a[:, 1])[0])
    assert si.abs_corr(np.column_stack([-a[:, 0], a[:, 1]])) == pytest.approx(si.pearson(a)) and si.pearson(a) > 0
    assert si.spearman(a) == pytest.approx(stats.spearmanr(a[:, 0], a[:, 1])[0])
    labels = rng.integers(0, 3, 50)
    assert si.eta(np.column_stack([a[:, 0], labels])) == pytest.approx(statistics.eta_squared(a[:, 0], labels)[0])
    assert np.isnan(si.eta(np.column_stack([np.ones(5), np.arange(5)])))
    assert np.isnan(si.pearson(np.column_stack([np.ones(5), np.arange(5)])))


def test_interval_row_is_the_cluster_bootstrap_and_undefined_below_three_instruments():
    rng = np.random.default_rng(1)
    groups = np.repeat(["a", "b", "c", "d"], 10)
    values = rng.normal(size=40) + np.repeat([0.0, 1.0, 2.0, 3.0], 10)
    row = si.interval_row("a mean", values, groups, "mean", n_boot=200, seed=3)
    iv = intervals.bootstrap(values, groups, "mean", n_boot=200, seed=3)
    assert (row["estimate"], row["low"], row["high"]) == (iv.estimate, iv.low, iv.high)
    assert row["n_notes"] == 40 and row["n_instruments"] == 4 and row["interval"] == f"{iv.low:.2f} to {iv.high:.2f}"
    two = si.interval_row("a mean", values[:20], groups[:20], "mean", n_boot=200, seed=3)
    assert two["interval"].startswith("undefined: the notes come from 2 instrument(s)")
    assert np.isnan([two["estimate"], two["low"], two["high"]]).all() and two["n_instruments"] == 2


def _notes(k: int, m: int, rng) -> pd.DataFrame:
    """k instruments of m notes, families and sources alternating."""
    inst = np.repeat([f"i{j}" for j in range(k)], m)
    return pd.DataFrame(
        {
            "family": np.array(["brass", "reed"])[np.repeat(np.arange(k) % 2, m)],
            "source": np.array(["acoustic", "electronic", "synthetic"])[np.repeat(np.arange(k) % 3, m)],
            "instrument": inst,
            "pitch": rng.integers(40, 77, k * m),
            "velocity": rng.choice([25, 127], k * m),
        }
    )


def test_headline_intervals_hold_their_estimates_and_quote_them():
    rng = np.random.default_rng(2)
    notes = _notes(8, 6, rng)
    mu = rng.normal(size=(48, 3))
    mu[:, 1] = (notes["pitch"] - 58) / 10 + 0.3 * rng.normal(size=48)
    std = np.full((48, 3), 0.5)
    point = {"max_corr_pair": "z0 and z2", "pitch_dim": "z1", "velocity_dim": "z0", "family_dim": "z2"}
    point |= {"source_dim": "z0"}
    table, quoted = si.headline_intervals(mu, std, notes, point, n_boot=200, seed=0)
    assert list(table.index) == list(si.KEYS) and (table["n_instruments"] == 8).all() and (table["n_notes"] == 48).all()
    assert table.loc["kl_total", "estimate"] == pytest.approx(statistics.kl_per_dimension(mu, std).sum())
    assert table.loc["pitch_rho", "estimate"] == pytest.approx(stats.spearmanr(mu[:, 1], notes["pitch"])[0])
    assert table.loc["max_corr", "estimate"] == pytest.approx(abs(np.corrcoef(mu[:, 0], mu[:, 2])[0, 1]))
    assert (table["low"] <= table["high"]).all()
    r = table.loc["kl_total"]
    assert r["low"] <= r["estimate"] <= r["high"]
    assert quoted["kl_total_ci"] == f"{r['estimate']:.2f} (95 % interval {r['low']:.2f} to {r['high']:.2f})"
    assert quoted["pitch_rho_low"] == table.loc["pitch_rho", "low"] and quoted["pitch_rho_low"] > 0.5
    again, _ = si.headline_intervals(mu, std, notes, point, n_boot=200, seed=0)
    pd.testing.assert_frame_equal(table, again)  # deterministic


def test_headline_intervals_say_undefined_with_two_instruments_or_no_correlated_pair():
    rng = np.random.default_rng(3)
    notes = _notes(2, 10, rng)
    mu, std = rng.normal(size=(20, 2)), np.ones((20, 2))
    point = {"max_corr_pair": "none", "pitch_dim": "z1", "velocity_dim": "z0", "family_dim": "z1", "source_dim": "z0"}
    table, quoted = si.headline_intervals(mu, std, notes, point, n_boot=200)
    assert table["interval"].str.startswith("undefined: ").all() and table["low"].isna().all()
    assert quoted["max_corr_ci"] == "undefined: no pair of dimensions has a defined correlation"
    assert quoted["kl_total_ci"].startswith("undefined: the notes come from 2 instrument(s); an instrument-level")
