"""Tests of vaetone.analysis.disentanglement: MIG and DCI known answers, DCI by instrument, undefined completeness."""

import numpy as np
import pandas as pd
import pytest

from vaetone.analysis import disentanglement
from vaetone.errors import VaetoneError


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {"pitch": rng.integers(0, 8, 1500), "loudness": rng.integers(0, 5, 1500), "brightness": rng.uniform(0, 1, 1500)}
    )


def test_mig_is_one_for_permuted_factors_and_zero_for_noise(factors):
    latents = factors[["brightness", "pitch", "loudness"]].to_numpy(dtype=float) * [1, -2, 3]
    score, table = disentanglement.mig(latents, factors)
    assert score > 0.95
    assert table.set_index("factor")["top_dim"].to_dict() == {"pitch": 1, "loudness": 2, "brightness": 0}
    noise = np.random.default_rng(1).normal(size=(1500, 3))
    assert disentanglement.mig(noise, factors)[0] < 0.05


def test_dci_of_an_identity_mapping(factors):
    latents, notes = factors.to_numpy(dtype=float), np.arange(len(factors))  # independent notes
    scores, importance = disentanglement.dci(latents, factors, notes, method="gbt", seed=0)
    assert scores["disentanglement"] > 0.9 and scores["completeness"] > 0.9
    assert scores["informativeness"] > 0.95
    assert np.argmax(importance.to_numpy(), axis=0).tolist() == [0, 1, 2]
    assert importance.attrs["n_folds"] == 5 and min(importance.attrs["r2"].values()) > 0.95
    mixed = latents @ np.ones((3, 3))  # every latent carries every factor
    noisy = mixed + 0.01 * np.random.default_rng(0).normal(size=mixed.shape)
    assert disentanglement.dci(noisy, factors, notes, method="lasso")[0]["disentanglement"] < 0.5
    assert disentanglement.dci(latents, factors, notes, method="lasso")[0]["disentanglement"] > 0.9


@pytest.fixture(scope="module")
def instruments():
    """30 instruments of 8 notes: pitch varies per note, three timbre factors per instrument."""
    rng = np.random.default_rng(0)
    inst = np.repeat(np.arange(30), 8)
    per = rng.uniform(0, 1, (30, 3))[inst]
    cols = {"pitch": rng.integers(40, 77, len(inst)).astype(float)}
    return pd.DataFrame(cols | {f"timbre{j}": per[:, j] for j in range(3)}), inst


def test_an_instrument_id_code_scores_chance_informativeness_under_the_instrument_split(instruments):
    """A random code per instrument predicts per-instrument factors only for instruments it has seen."""
    factors, inst = instruments
    code = np.random.default_rng(1).normal(size=(30, 4))[inst]
    by_instrument = disentanglement.dci(code, factors, inst, seed=0, n_folds=3)[0]
    by_note = disentanglement.dci(code, factors, np.arange(len(inst)), seed=0, n_folds=3)[0]
    assert by_instrument["informativeness"] < 0.05  # chance: no better than the mean
    assert by_note["informativeness"] > 0.5  # what a random note split reports: the leak
    perfect = disentanglement.dci(factors.to_numpy(), factors, inst, seed=0, n_folds=3)[0]
    assert perfect["informativeness"] > 0.95 and perfect["completeness"] > 0.9


def test_instrument_folds_keep_each_instrument_on_one_side(instruments):
    _, inst = instruments
    folds = disentanglement.instrument_folds(inst, len(inst), n_folds=5, seed=0)
    assert len(folds) == 5
    tested = np.concatenate([te for _, te in folds])
    assert sorted(tested) == list(range(len(inst)))  # every note is held out once
    for tr, te in folds:
        assert not set(inst[tr]) & set(inst[te])
    assert len(disentanglement.instrument_folds(inst[:24], 24, n_folds=5)) == 3  # 3 instruments: 3 folds
    with pytest.raises(VaetoneError, match="at least 2 instruments"):
        disentanglement.instrument_folds(np.zeros(8), 8)


def test_a_factor_no_dimension_predicts_has_undefined_completeness():
    """Lasso gives zero importance to a factor independent of the code: completeness NaN, not 1."""
    rng = np.random.default_rng(2)
    code = rng.normal(size=(600, 3))
    factors = pd.DataFrame({"a": code[:, 0], "b": code[:, 1] + code[:, 2], "noise": rng.normal(size=600)})
    scores, importance = disentanglement.dci(code, factors, np.arange(600), method="lasso", alpha=0.2)
    c = importance.attrs["completeness"]
    assert importance["noise"].eq(0).all() and np.isnan(c["noise"])
    assert c["a"] == pytest.approx(1.0) and c["b"] == pytest.approx(1 - np.log(2) / np.log(3), abs=0.02)
    assert scores["completeness"] == pytest.approx((c["a"] + c["b"]) / 2)  # the mean leaves the undefined out
    text = disentanglement.completeness_text(c, scores["completeness"])
    assert text == f"{scores['completeness']:.2f} (over 2 of 3 factors; undefined for noise: no dimension predicts it)"
    none = disentanglement.dci(code, factors[["noise"]], np.arange(600), method="lasso", alpha=0.2)[0]
    assert np.isnan(none["completeness"]) and np.isnan(none["disentanglement"])
    assert disentanglement.completeness_text({"x": np.nan}, np.nan) == "undefined (no dimension predicts any factor)"
    assert disentanglement.completeness_text({"x": 0.5, "y": 0.25}, 0.375) == "0.38"


def test_ground_truth_check_marks_a_factor_nothing_predicts():
    mig_table = pd.DataFrame({"factor": ["factor_noise"], "top_dim": [1], "gap": [0.0]})
    check = disentanglement.ground_truth_check(mig_table, pd.DataFrame({"factor_noise": [0.0, 0.0]}), [0, 1], [1, 0])
    assert pd.isna(check.loc["factor_noise", "dci_dim"]) and check.loc["factor_noise", "carrier"] == 1


def test_the_decay_factor_follows_the_continuous_decay_rate():
    assert disentanglement.FACTOR_DESCRIPTORS["factor_decay"] == "decay_db_per_s"


def test_dci_names_non_finite_latents_and_factors():
    code, factors = np.ones((20, 2)), pd.DataFrame({"a": np.arange(20.0)})
    code[3, 1] = np.nan
    with pytest.raises(VaetoneError, match=r"latents of DCI hold 1 non-finite values \(first at row 3, column 1\)"):
        disentanglement.dci(code, factors, np.arange(20))
    factors.loc[5, "a"] = np.inf
    with pytest.raises(VaetoneError, match="factors of DCI hold 1 non-finite"):
        disentanglement.dci(np.random.default_rng(0).normal(size=(20, 2)), factors, np.arange(20))


def test_the_plug_in_mutual_information_of_an_independent_dimension_is_biased_by_the_bins():
    """(bins − 1)(levels − 1) / (2n) nats: 0.108 for 20 bins, a 5-level factor and 352 notes; 0.034 with 7 bins."""
    rng = np.random.default_rng(0)
    noise, factor = rng.normal(size=(352, 60)), pd.DataFrame({"f": rng.integers(0, 5, 352)})
    for n_bins in (20, 7):
        mi = disentanglement.mutual_information_matrix(noise, factor, n_bins)["f"].mean()
        assert mi == pytest.approx((n_bins - 1) * 4 / (2 * 352), rel=0.2)
