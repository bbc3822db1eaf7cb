"""Known answers of the instrument-level bootstrap (vaetone.analysis.intervals)."""

import numpy as np
import pytest

from vaetone.analysis import intervals
from vaetone.errors import ConfigError


def _nested(n_groups=12, per=5, spread=1.0, noise=0.1, seed=0):
    """Notes nested in instruments: a large between-instrument spread, little within."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, spread, n_groups)
    groups = np.repeat(np.arange(n_groups), per)
    return centres[groups] + rng.normal(0, noise, len(groups)), groups


def test_mean_estimate_and_counts():
    values, groups = _nested()
    iv = intervals.bootstrap(values, groups, n_boot=500)
    assert iv.estimate == pytest.approx(values.mean())
    assert iv.low < iv.estimate < iv.high
    assert (iv.n_notes, iv.n_groups, iv.level) == (60, 12, 0.95)


def test_cluster_interval_is_wider_than_the_note_level_one():
    """Resampling instruments sees the between-instrument spread; a naive note bootstrap does not."""
    values, groups = _nested(n_groups=10, per=20)
    cluster = intervals.bootstrap(values, groups, n_boot=2000)
    naive = intervals.bootstrap(values, np.arange(len(values)), n_boot=2000)
    assert (cluster.high - cluster.low) > 2.5 * (naive.high - naive.low)
    # the cluster interval is about ±1.96 standard errors of the mean of 10 instrument centres
    centres = values.reshape(10, 20).mean(1)
    se = centres.std(ddof=1) / np.sqrt(10)
    assert (cluster.high - cluster.low) / (2 * 1.96 * se) == pytest.approx(1.0, abs=0.3)


def test_constant_values_give_a_point_interval():
    iv = intervals.bootstrap(np.full(12, 3.5), np.repeat([0, 1, 2], 4), n_boot=100)
    assert (iv.estimate, iv.low, iv.high) == (3.5, 3.5, 3.5)


def test_callable_statistic_and_nan_notes_left_out():
    values = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 100.0])
    groups = np.array(["a", "a", "a", "b", "b", "c", "c"])
    iv = intervals.bootstrap(values, groups, np.median, n_boot=200)
    assert iv.estimate == 4.5 and iv.n_notes == 6 and iv.n_groups == 3
    assert iv.low >= 1.0 and iv.high <= 100.0


def test_same_seed_same_interval_other_seed_differs():
    values, groups = _nested()
    a, b = (intervals.bootstrap(values, groups, n_boot=300, seed=s) for s in (1, 1))
    c = intervals.bootstrap(values, groups, n_boot=300, seed=2)
    assert a == b and (a.low, a.high) != (c.low, c.high)


def test_paired_difference_of_a_constant_shift():
    values, groups = _nested()
    iv = intervals.paired_difference(values + 0.25, values, groups, n_boot=200)
    assert iv.estimate == pytest.approx(0.25) and iv.low == pytest.approx(0.25) and iv.high == pytest.approx(0.25)
    assert iv.excludes(0.0)
    assert intervals.significance_phrase(iv, "dB").startswith("0.25 dB higher (95 % interval 0.25 to 0.25 dB; the")


def test_paired_difference_of_noise_is_not_significant():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(15), 4)
    a, b = rng.normal(size=60), rng.normal(size=60)
    iv = intervals.paired_difference(a, b, groups, n_boot=1000)
    assert not iv.excludes(0.0)
    assert "not significant: the interval contains 0" in intervals.significance_phrase(iv, "dB")


def test_gross_error_rate_and_iqr():
    assert intervals.gross_error_rate([10, -700, 1200, 49.9, np.nan]) == pytest.approx(0.5)
    assert intervals.gross_error_rate([np.nan]) != intervals.gross_error_rate([np.nan])  # NaN: nothing to rate
    assert intervals.iqr([1, 2, 3, 4, 5]) == 2.0


@pytest.mark.parametrize("n_boot", [0, 99, 2_000_000, 1.5, True])
def test_bad_bootstrap_size(n_boot):
    with pytest.raises(ConfigError, match="bootstrap_n"):
        intervals.bootstrap(np.arange(9.0), np.repeat([0, 1, 2], 3), n_boot=n_boot)


def test_too_few_instruments_is_a_clear_error_not_nan():
    with pytest.raises(ConfigError, match="2 instrument.*at least 3.*max_instruments"):
        intervals.bootstrap([1.0, 2.0, 3.0, np.nan], ["a", "a", "b", "c"], where="LSD of the VAE")


def test_misaligned_groups():
    with pytest.raises(ConfigError, match="4 values but 3 group labels"):
        intervals.bootstrap([1.0, 2.0, 3.0, 4.0], ["a", "b", "c"])
