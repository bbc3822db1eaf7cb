"""Tests of vaetone.analysis.recovery (and recovery_maps): known answers on a decoder with known wiring.

The toy decoder builds a dB log-mel (32 mel bands, hop 512 → 126 frames) from five latent
dimensions, each of which alone sets one property: the centre of a spectral bump (brightness,
the centroid), the length of a linear attack ramp (attack_s), the overall level (rms_db, +6 dB
per unit z), an exponential decay rate (decay_db_per_s) and a share of flat noise (flatness).
The sixth dimension is unused. The latents of the notes *are* the factors, so the truth is
known: every method must map each factor to its wired dimension, and a decoder wired to other
dimensions must score 0.
"""

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config
from vaetone.analysis import recovery as rec
from vaetone.analysis.disentanglement import FACTOR_DESCRIPTORS
from vaetone.errors import ConfigError
from vaetone.spectral.descriptors import spectral_descriptors

N_MELS, HOP, D = 32, 512, 6
FRAMES = 1 + 64000 // HOP
CFG = config.make(n_mels=N_MELS, hop_length=HOP, n_anchors=4, sweep_steps=5, null_n=500, validity_sobol_n=16)
WIRED = {"brightness": 0, "attack": 1, "loudness": 2, "decay": 3, "noise": 4}
SHIFTED = {"brightness": 1, "attack": 2, "loudness": 3, "decay": 4, "noise": 0}
LOUDNESS_DB_PER_Z = 6.0


def make_decoder(wiring: dict):
    """latent (n, 6) → dB log-mel (n, 1, 32, 126); each property of ``wiring`` set by its dimension alone."""
    b, a, lo, d, nz = (wiring[k] for k in ("brightness", "attack", "loudness", "decay", "noise"))
    frame_s = HOP / 16000

    def decode(z):
        m = torch.arange(N_MELS, dtype=z.dtype)[None, :]
        t = torch.arange(FRAMES, dtype=z.dtype)[None, :]
        bump = torch.exp(-((m - N_MELS / 2 - z[:, b : b + 1] * N_MELS / 8) ** 2) / (2 * 1.5**2))
        w = 0.02 + 0.96 * torch.sigmoid(z[:, nz : nz + 1])
        shape = (1 - w) * bump / bump.sum(1, keepdim=True) + w / N_MELS  # sums to 1 over the bands
        ramp = 5.0 + 1.3 * z[:, a : a + 1]  # frames
        rate = 10.0 + 2.0 * z[:, d : d + 1]  # dB/s
        env_db = 20 * torch.log10((t / ramp).clamp(1e-3, 1.0)) - rate * (t - ramp).clamp_min(0) * frame_s
        level = 40.0 + LOUDNESS_DB_PER_Z * z[:, lo : lo + 1]
        return (level[:, :, None] + 10 * torch.log10(shape)[:, :, None] + env_db[:, None, :]).clamp_min(-60.0)[:, None]

    return decode


def synthetic_notes(n: int = 300, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Posterior means equal to the factors (dim j carries the factor wired to j; pitch in dim 5), and the factors."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(-2.0, 2.0, size=(n, D)).astype(np.float32)
    factors = pd.DataFrame({f"factor_{f}": mu[:, j] for f, j in WIRED.items()})
    factors["factor_pitch"] = np.round(mu[:, 5] * 10)
    factors["factor_inharmonicity"] = 0.0  # constant: no dimension carries it
    return mu, factors


@pytest.fixture(scope="module")
def notes():
    return synthetic_notes()


@pytest.fixture(scope="module")
def wired_maps(notes):
    return rec.method_maps(make_decoder(WIRED), notes[0][:16], CFG, seed=0)


@pytest.fixture(scope="module")
def wired_table(notes, wired_maps):
    mu, factors = notes
    return rec.method_recovery(make_decoder(WIRED), mu[:16], mu, factors, CFG, seed=0, maps=wired_maps)


@pytest.fixture(scope="module")
def shifted_table(notes):
    mu, factors = notes
    return rec.method_recovery(make_decoder(SHIFTED), mu[:16], mu, factors, CFG, seed=0)


# --------------------------------------------------------------------------- the maps


def test_every_method_maps_each_factor_to_its_wired_dimension(wired_maps):
    assert set(wired_maps) == set(rec.METHODS)
    for method, matrix in wired_maps.items():
        assert list(matrix.index) == list(range(D)), method
        assert (matrix.fillna(0) >= 0).all().all(), method
        got = rec.factor_map(matrix)
        want = {f"factor_{f}": j for f, j in WIRED.items()}
        assert {f: int(d) for f, d in got.dropna().items()} == want, method
        assert got.isna().sum() == 2  # pitch and inharmonicity have no descriptor
        assert matrix.loc[5].abs().max() < 1e-6, method  # the unused dimension moves nothing


def test_maps_hold_known_values_for_the_loudness_dimension(wired_maps, notes):
    """rms_db = 40 + 6 z_2 + (terms of other dimensions): a slope of exactly 6 dB per unit z."""
    mu = notes[0][:16]
    recon = spectral_descriptors(make_decoder(WIRED)(torch.as_tensor(mu)), CFG)
    spread = recon["rms_db"].std()
    assert wired_maps["oat"].loc[2, "rms_db"] == pytest.approx(LOUDNESS_DB_PER_Z / spread, rel=1e-4)
    assert wired_maps["jacobian"].loc[2, "rms_db"] == pytest.approx(LOUDNESS_DB_PER_Z / spread, rel=1e-4)
    ablation = LOUDNESS_DB_PER_Z * mu[:, 2].std() / recon["rms_db"].std(ddof=0)
    assert wired_maps["ablation"].loc[2, "rms_db"] == pytest.approx(ablation, rel=1e-3)
    assert wired_maps["sobol"].loc[2, "rms_db"] > 0.8  # nearly all of rms_db's variance


def test_method_maps_are_deterministic_and_check_their_inputs(notes):
    mu, small = notes[0][:4], config.make(n_mels=N_MELS, hop_length=HOP, n_anchors=1, sweep_steps=2)
    a = rec.method_maps(make_decoder(WIRED), mu, small, sobol_n=8, seed=3)
    b = rec.method_maps(make_decoder(WIRED), mu, small, sobol_n=8, seed=3)
    for method in rec.METHODS:
        pd.testing.assert_frame_equal(a[method], b[method])
    with pytest.raises(ConfigError, match="at least 2 test notes"):
        rec.method_maps(make_decoder(WIRED), mu[:1], small, sobol_n=8)
    with pytest.raises(ConfigError, match="describe_tensors"):
        rec.method_maps(make_decoder(WIRED), mu, small, describe=lambda x: pd.DataFrame({"a": x.mean((1, 2))}))


# --------------------------------------------------------------------------- maps to factors, the truth


def test_factor_map_takes_the_largest_row_and_leaves_undefined_factors_missing():
    matrix = pd.DataFrame(
        {"rms_db": [0.1, 0.9, 0.3], "centroid_hz": [np.nan] * 3, "flatness": [0.5, np.nan, 0.2]}
    ).rename_axis(index="dim")
    got = rec.factor_map(matrix)
    assert str(got.dtype) == "Int64"
    assert got["factor_loudness"] == 1 and got["factor_noise"] == 0
    for factor in ("factor_brightness", "factor_pitch", "factor_attack", "factor_decay", "factor_inharmonicity"):
        assert pd.isna(got[factor]), factor  # all NaN, no descriptor, or not a column
    assert list(got.index) == list(FACTOR_DESCRIPTORS)


def test_true_map_is_the_dimension_of_largest_mutual_information(notes):
    mu, factors = notes
    truth = rec.true_map(mu, factors)
    assert {f: int(d) for f, d in truth.dropna().items()} == {
        **{f"factor_{f}": j for f, j in WIRED.items()},
        "factor_pitch": 5,
    }
    assert pd.isna(truth["factor_inharmonicity"])
    shuffled = rec.true_map(mu[:, [1, 0, 2, 3, 4, 5]], factors)
    assert shuffled["factor_brightness"] == 1 and shuffled["factor_attack"] == 0


# --------------------------------------------------------------------------- recovery and its null


def test_recovery_counts_agreeing_factors_among_those_both_maps_name():
    truth = pd.Series({"factor_a": 0, "factor_b": 1, "factor_c": 2, "factor_d": 3, "factor_e": pd.NA}, dtype="Int64")
    mapped = pd.Series({"factor_a": 0, "factor_b": 1, "factor_c": 2, "factor_d": 0, "factor_e": 4}, dtype="Int64")
    assert rec.recovery(mapped, truth) == 0.75
    short = mapped.rename(index=lambda f: f.removeprefix("factor_"))
    assert rec.recovery(short, truth) == 0.75  # names align with or without the prefix
    assert np.isnan(rec.recovery(pd.Series({"factor_a": pd.NA}, dtype="Int64"), truth))
    with pytest.raises(ConfigError, match="share no name"):
        rec.recovery(pd.Series({"x": 1}, dtype="Int64"), truth)


def test_recovery_null_chance_is_one_over_the_dimensions_and_p_values_are_exact():
    truth = pd.Series({"a": 3, "b": 7, "c": 1}, dtype="Int64")
    perfect = rec.recovery_null(truth, truth, n_dims=10, n=4000, seed=1)
    assert perfect["chance"] == pytest.approx(0.1, abs=0.01)
    # all 3 right under relabelling: P = 1/(10·9·8), so p = (1 + about 4000/720) / 4001
    assert perfect["observed"] == 1.0 and perfect["p_value"] == pytest.approx((1 + 4000 / 720) / 4001, abs=1e-3)
    assert perfect["null_q95"] == pytest.approx(1 / 3)
    one = rec.recovery_null(truth.iloc[:1], truth, n_dims=10, n=4000, seed=1)  # P(null >= 1) = 1/10
    assert one["p_value"] == pytest.approx(0.1, abs=0.015)
    wrong = rec.recovery_null(pd.Series({"a": 0, "b": 0, "c": 0}, dtype="Int64"), truth, n_dims=10, n=200)
    assert wrong["observed"] == 0.0 and wrong["p_value"] == 1.0
    assert rec.recovery_null(truth, truth, 10, n=300, seed=5) == rec.recovery_null(truth, truth, 10, n=300, seed=5)
    with pytest.raises(ConfigError, match="n_dims"):
        rec.recovery_null(truth, truth, n_dims=4, n=10)


def test_method_recovery_scores_one_for_the_wired_decoder_and_zero_for_a_shifted_one(wired_table, shifted_table):
    assert list(wired_table["method"]) == list(rec.METHODS)
    assert (wired_table["recovery"] == 1.0).all()
    assert (wired_table["n_factors_scored"] == 5).all() and (wired_table["n_dims"] == D).all()
    assert wired_table["chance"].between(1 / D - 0.04, 1 / D + 0.04).all()
    assert (wired_table["p_value"] < 0.01).all()
    assert (wired_table["dim_loudness"] == 2).all() and (wired_table["true_loudness"] == 2).all()
    assert wired_table["dim_pitch"].isna().all() and (wired_table["true_pitch"] == 5).all()
    assert (shifted_table["recovery"] == 0.0).all()
    assert (shifted_table["p_value"] == 1.0).all()
    assert (shifted_table["dim_brightness"] == 1).all()


# --------------------------------------------------------------------------- the headline table


def _scores(wired_table, shifted_table, seeds: int) -> pd.DataFrame:
    rows = [
        table.assign(model=model, seed=s)
        for s in range(seeds)
        for model, table in (("wired", wired_table), ("shifted", shifted_table))
    ]
    return pd.concat(rows, ignore_index=True)


def test_recovery_table_gives_means_intervals_chance_and_p_values(wired_table, shifted_table):
    three = rec.recovery_table(_scores(wired_table, shifted_table, 3), n_null=500)
    assert list(three.index.get_level_values("model").unique()) == ["wired", "shifted"]
    assert list(three.loc["wired"].index) == list(rec.METHODS)
    wired = three.loc["wired"]
    assert (wired["mean"] == 1.0).all() and (wired["low"] == 1.0).all() and (wired["high"] == 1.0).all()
    assert (wired["interval"] == "bootstrap 95 %").all() and (wired["n_seeds"] == 3).all()
    assert np.allclose(wired["p_value"], 1 / 501)
    assert (three.loc["shifted", "p_value"] == 1.0).all()
    assert three.loc["wired", "chance"].between(0.12, 0.21).all()
    two = rec.recovery_table(_scores(wired_table, shifted_table, 2))
    assert (two["interval"] == "min-max").all() and (two["n_seeds"] == 2).all()


def test_recovery_table_bootstraps_over_seeds_reproducibly(wired_table, shifted_table):
    mixed = _scores(wired_table, shifted_table, 4)
    mixed = mixed[mixed["model"] == "wired"].copy()
    mixed.loc[mixed["seed"] == 0, "recovery"] = 0.2  # one seed recovers 1 of 5
    a, b = rec.recovery_table(mixed, seed=7), rec.recovery_table(mixed, seed=7)
    pd.testing.assert_frame_equal(a, b)
    row = a.loc[("wired", "oat")]
    assert row["mean"] == pytest.approx(0.8)
    assert 0.2 <= row["low"] < row["mean"] <= row["high"] == 1.0
    with pytest.raises(ConfigError, match="twice"):
        rec.recovery_table(pd.concat([mixed, mixed]))
    with pytest.raises(ConfigError, match="method_recovery"):
        rec.recovery_table(mixed[["model", "seed", "method", "recovery", "chance"]])
