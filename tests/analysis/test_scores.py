"""Tests of vaetone.analysis.scores: intervals on the headline figures, paired comparisons and their phrases."""

import math

import numpy as np
import pandas as pd
import pytest

from vaetone import config
from vaetone.analysis import intervals, scores

CFG = config.make(bootstrap_n=500, seed=0)
NOTES = [f"n{i}" for i in range(8)]
GROUPS = pd.Series(["a", "a", "b", "b", "c", "c", "d", "d"], index=NOTES)


def table(lsd, f1=None, f0=None):
    """A per-note table with the columns the comparison reads (NaN where not given)."""
    nan = [math.nan] * len(lsd)
    columns = {"lsd_db": lsd, "lsd_audio_db": lsd, "mrstft": nan, "freq_precision": nan, "freq_recall": nan}
    columns |= {"freq_f1": nan if f1 is None else f1, "f0_error_cents": nan if f0 is None else f0}
    return pd.DataFrame(columns, index=NOTES[: len(lsd)])


def test_the_f0_figures_are_robust_to_octave_errors():
    cents = [5.0, 10.0, 7.0, 8.0, 1200.0, 6.0, 9.0, 700.0]  # two gross errors
    t = table([1.0] * 8, f0=cents)
    comp, f = scores.comparison({"VAE": t}, GROUPS, CFG)
    assert comp.loc["VAE", "f0_median_cents"] == np.median(cents) == 8.5
    assert comp.loc["VAE", "f0_gross_rate"] == 2 / 8
    assert comp.loc["VAE", "f0_fine_mean_cents"] == pytest.approx(np.mean([5, 10, 7, 8, 6, 9]))
    assert comp.loc["VAE", "f0_fine_mean_cents_n_notes"] == 6
    assert comp.loc["VAE", "f0_iqr_cents"] == intervals.iqr(cents)
    assert scores.fine_mean([-10.0, 20.0, 51.0, math.nan]) == 15.0 and math.isnan(scores.fine_mean([100.0]))
    ci = comp.loc["VAE", ["f0_median_cents_low", "f0_median_cents_high"]].to_numpy()
    assert ci[0] <= 8.5 <= ci[1] and ci[1] - ci[0] > 0
    assert f["VAE_f0_gross_rate_ci"] == intervals.bootstrap(cents, GROUPS, intervals.gross_error_rate, 500).text(3)


def test_each_interval_is_the_instrument_bootstrap_of_its_statistic():
    lsd = [1.0, 1.2, 2.0, 2.2, 3.0, 3.1, 4.0, 4.4]
    comp, f = scores.comparison({"VAE": table(lsd), "inversion only": table([0.0] * 8)}, GROUPS, CFG)
    ref = intervals.bootstrap(lsd, GROUPS, "mean", n_boot=500, seed=0)
    assert comp.loc["VAE", ["lsd_db", "lsd_db_low", "lsd_db_high"]].tolist() == [ref.estimate, ref.low, ref.high]
    assert comp.loc["VAE", ["lsd_db_n_notes", "lsd_db_n_instruments"]].tolist() == [8, 4]
    assert f["VAE_lsd_db"] == ref.estimate and f["VAE_lsd_db_ci"] == ref.text(2, "dB")
    assert f["inversion_lsd_db_ci"] == "0.00 dB (95 % interval 0.00 to 0.00)"
    assert comp.loc["inversion only", "freq_f1_n_notes"] == 0 and f["inversion_freq_f1_ci"] == (
        "not measured (interval undefined: 0 scored notes from 0 instrument(s); an instrument-level interval "
        "needs at least 3)"
    )
    assert f["intervals_undefined"] == 2 * 8  # per row: MR-STFT, the 3 frequency scores, the 4 f0 figures
    again, _ = scores.comparison({"VAE": table(lsd), "inversion only": table([0.0] * 8)}, GROUPS, CFG)
    pd.testing.assert_frame_equal(again, comp)  # same seed, same numbers


def test_fewer_than_three_instruments_is_undefined_with_a_reason():
    v, g = np.array([1.0, 2.0, math.nan, 4.0]), np.array(["a", "b", "c", "c"])
    assert scores.undefined_reason(v, g) == ""
    assert scores.undefined_reason(v[:2], g[:2]) == (
        "undefined: 2 scored notes from 2 instrument(s); an instrument-level interval needs at least 3"
    )
    assert scores.estimate(v[:2], g[:2], "mean", CFG, "x").startswith("undefined: ")
    assert isinstance(scores.estimate(v, g, "mean", CFG, "x"), intervals.Interval)


def test_paired_differences_and_their_verdicts():
    vae = table([1.0, 1.1, 2.0, 2.1, 3.0, 3.2, 4.0, 4.1], f1=[0.5] * 8)
    ae = table([1.5, 1.6, 2.5, 2.6, 3.5, 3.7, 4.5, 4.6], f1=[0.6, 0.4, 0.5, 0.5, 0.7, 0.3, 0.5, 0.5])
    pairs, f = scores.paired({"VAE": vae, "autoencoder": ae}, GROUPS, CFG)
    assert pairs[["metric"]].squeeze().tolist() == ["lsd_db", "lsd_audio_db", "freq_f1"]
    lsd = pairs.iloc[0]
    assert lsd.difference == pytest.approx(-0.5) and lsd.significant and lsd.verdict == "significant"
    assert (lsd.n_notes, lsd.n_instruments) == (8, 4)
    ref = intervals.paired_difference(vae.lsd_db, ae.lsd_db, GROUPS, 500)
    assert f["vae_vs_ae_lsd_db"] == intervals.significance_phrase(ref, "dB", 2)
    assert f["vae_vs_ae_lsd_db"].startswith("0.50 dB lower") and f["vae_vs_ae_lsd_db_significant"] is True
    f1 = pairs.iloc[2]  # differences +-0.1 and +-0.2 within instruments: mean 0, not significant
    assert f1.difference == pytest.approx(0.0) and not f1.significant and f1.verdict == "not significant"
    assert "not significant: the interval contains 0" in f["vae_vs_ae_freq_f1"]
    assert "vae_vs_pca_lsd_db" not in f


def test_the_vae_autoencoder_reading_follows_the_interval():
    def row(difference, significant, verdict=None):
        return {"difference": difference, "significant": significant, "verdict": verdict or "significant"}

    assert scores.vae_vs_ae_reading(row(0.3, True)).startswith("the VAE reconstructs significantly worse")
    assert scores.vae_vs_ae_reading(row(-0.3, True)).startswith("the VAE reconstructs significantly better")
    not_significant = scores.vae_vs_ae_reading(row(0.3, False, "not significant"))
    assert not_significant.startswith("the difference is not significant") and "trades" not in not_significant
    assert "no difference is claimed" in scores.vae_vs_ae_reading(row(0.3, False, "undefined: 2 instruments"))
    assert scores.vae_vs_ae_reading(None) == "the autoencoder was not compared"


def test_per_family_lsd_states_its_n():
    meta = pd.DataFrame(
        {"instrument_family_str": ["brass"] * 4 + ["reed"] * 4, "instrument_str": GROUPS.to_numpy()}, index=NOTES
    )
    fam = scores.per_family_lsd({"VAE": table([1.0] * 4 + [3.0] * 4)}, meta)
    assert fam.to_dict("index") == {
        "brass": {"VAE": 1.0, "n_notes": 4, "n_instruments": 2},
        "reed": {"VAE": 3.0, "n_notes": 4, "n_instruments": 2},
        "all": {"VAE": 2.0, "n_notes": 8, "n_instruments": 4},
    }
