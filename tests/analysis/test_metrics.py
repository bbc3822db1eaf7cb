"""Tests of vaetone.analysis.metrics on known answers, and of the per-note evaluation built on them."""

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config
from vaetone.analysis import evaluation, metrics
from vaetone.errors import ConfigError

SR = 16000


def tone(f0, n_harmonics=6, seconds=1.0, decay=1.5, keep=None):
    """A harmonic tone with equal-amplitude partials (optionally only the first ``keep``), exponential decay."""
    t = np.arange(int(seconds * SR)) / SR
    ks = range(1, (keep or n_harmonics) + 1)
    y = sum(np.sin(2 * np.pi * f0 * k * t + 0.3 * k) for k in ks) * np.exp(-t * decay)
    return (0.2 * y).astype(np.float32)


@pytest.fixture(scope="module")
def notes():
    return np.stack([tone(110), tone(220), tone(330.0)])


def test_a_signal_against_itself_is_perfect(notes):
    db = torch.randn(3, 16, 32) * 10 - 40
    assert np.array_equal(metrics.logmel_mse(db, db), np.zeros(3))
    assert np.array_equal(metrics.log_spectral_distance(db, db), np.zeros(3))
    assert np.array_equal(metrics.spectral_convergence(db, db), np.zeros(3))
    assert np.array_equal(metrics.multires_stft_distance(notes, notes), np.zeros(3))
    assert np.array_equal(metrics.frequency_accuracy(notes, notes), np.ones(3))
    assert np.array_equal(metrics.f0_error_cents(notes, notes), np.zeros(3))


def test_spectrogram_metrics_known_offsets():
    ref = torch.randn(2, 1, 8, 10).double() * 10 - 30  # (n, 1, mels, frames) is accepted too
    assert metrics.logmel_mse(ref, ref + 3).tolist() == pytest.approx([9.0, 9.0])
    assert metrics.log_spectral_distance(ref, ref - 3).tolist() == pytest.approx([3.0, 3.0])
    # +20 log10(2) dB doubles every magnitude: ‖2S − S‖ / ‖S‖ = 1
    assert metrics.spectral_convergence(ref, ref + 20 * np.log10(2)).tolist() == pytest.approx([1.0, 1.0])
    lsd = metrics.log_spectral_distance(torch.zeros(1, 2, 2), torch.tensor([[[3.0, 0.0], [4.0, 0.0]]]))
    assert lsd.tolist() == pytest.approx([(np.sqrt(12.5) + 0) / 2])  # RMS over bins, mean over frames
    with pytest.raises(ConfigError, match="differ in shape"):
        metrics.logmel_mse(ref, ref[:1])


def test_a_semitone_higher_is_100_cents_off_and_misses_the_harmonics(notes):
    up = np.stack([tone(f * 2 ** (1 / 12)) for f in (110, 220, 330.0)])
    err = metrics.f0_error_cents(notes, up)
    assert err == pytest.approx([100, 100, 100], abs=10)
    assert metrics.frequency_accuracy(notes, up).tolist() == [0.0, 0.0, 0.0]
    assert (metrics.multires_stft_distance(notes, up) > 0.5).all()


def test_pyin_agrees_on_the_semitone():
    err = metrics.f0_error_cents(tone(220)[None], tone(220 * 2 ** (1 / 12))[None], method="pyin")
    assert err == pytest.approx([100], abs=10)


def test_frequency_accuracy_counts_the_reproduced_harmonics():
    ref = tone(220, 6)[None]
    half = tone(220, 6, keep=3)[None]  # first 3 of 6 harmonics
    assert metrics.frequency_accuracy(ref, half).tolist() == [0.5]
    peaks = metrics.spectral_peaks(ref)[0]
    assert peaks == pytest.approx(220 * np.arange(1, 7), rel=2e-3)
    slightly = tone(220 * 2 ** (20 / 1200), 6)[None]  # 20 cents sharp: within 50
    assert metrics.frequency_accuracy(ref, slightly).tolist() == [1.0]
    assert metrics.frequency_accuracy(ref, slightly, tolerance_cents=10).tolist() == [0.0]
    silence = np.zeros((1, SR), np.float32)
    assert np.isnan(metrics.frequency_accuracy(silence, ref)[0])
    assert metrics.frequency_accuracy(ref, silence).tolist() == [0.0]


def test_evaluate_resynthesises_both_sides(monkeypatch):
    def mel_to_audio(db, cfg, n_iter):
        """A tone whose pitch follows the loudest mel band of the first frame."""
        band = db[:, :, 0].argmax(1).double()
        return torch.stack([torch.as_tensor(tone(100.0 + 20.0 * float(b))) for b in band])

    monkeypatch.setattr(evaluation, "mel_to_audio", mel_to_audio)
    cfg = config.make(n_mels=16)
    ref = torch.full((3, 16, 20), -60.0)
    ref[np.arange(3), [2, 5, 9], :] = -10.0
    same = evaluation.evaluate(ref, ref.clone(), cfg, index=["a", "b", "c"])
    assert list(same.columns) == [
        "logmel_mse_db2",
        "lsd_db",
        "spectral_convergence",
        "mrstft",
        "frequency_accuracy",
        "f0_error_cents",
    ]
    assert list(same.index) == ["a", "b", "c"]
    assert (same.drop(columns="frequency_accuracy") == 0).all().all()
    assert (same["frequency_accuracy"] == 1).all()
    moved = ref.clone()
    moved[0] = torch.roll(ref[0], 1, 0)  # the first note one band up
    table = evaluation.evaluate(ref, moved, cfg)
    assert table["lsd_db"].iloc[0] > 0 and table["f0_error_cents"].iloc[0] > 50
    assert (table.iloc[1:] == same.iloc[1:].to_numpy()).all().all()


def test_summarise_per_group_and_overall():
    table = pd.DataFrame({"lsd_db": [1.0, 3.0, 5.0], "mrstft": [0.0, 0.0, 3.0]})
    s = evaluation.summarise(table, ["brass", "brass", "reed"])
    assert list(s.index) == ["brass", "reed", "all"]
    assert s.loc["brass", ("lsd_db", "mean")] == 2.0 and s.loc["all", ("lsd_db", "mean")] == 3.0
    assert s.loc["all", ("lsd_db", "std")] == pytest.approx(2.0) and s.loc["all", ("mrstft", "mean")] == 1.0
    assert list(evaluation.summarise(table).index) == ["all"]


def test_compare_models():
    a = pd.DataFrame({"lsd_db": [1.0, 3.0], "mrstft": [0.5, 0.5]})
    b = pd.DataFrame({"lsd_db": [2.0, 2.0], "mrstft": [1.0, 3.0]})
    c = evaluation.compare({"vae": a, "pca": b})
    assert list(c.index) == ["vae", "pca"]
    assert c.loc["vae", ("lsd_db", "mean")] == 2.0 and c.loc["pca", ("mrstft", "median")] == 2.0


def test_evaluate_models_scores_every_note_and_audio_on_a_subset():
    import dataclasses

    from vaetone import config

    class FakeFeatures:
        meta = pd.DataFrame({"split": ["train", "test", "test", "test"]}, index=list("abcd"))
        logmel = torch.full((4, 8, 20), -30.0)
        logmel[:, 2, :] = 0.0  # one loud band: a harmonic at a fixed frequency

        def rows(self, split):
            return np.flatnonzero(self.meta.split.to_numpy() == split)

        def x(self, split):
            return ((self.logmel[self.rows(split)] + 30.0) / 10.0)[:, None]

        def denormalise(self, x):
            return x * 10.0 - 30.0

    cfg = dataclasses.replace(config.make(n_mels=8, channels=[4], n_eval_audio=2, griffin_lim_iters=4), seed=1)
    tables = evaluation.evaluate_models(
        {"identity": lambda x: x, "flat": lambda x: torch.zeros_like(x)}, FakeFeatures(), cfg
    )
    ident, flat = tables["identity"], tables["flat"]
    assert list(ident.index) == ["b", "c", "d"]
    np.testing.assert_allclose(ident["logmel_mse_db2"], 0.0, atol=1e-9)
    np.testing.assert_allclose(flat["logmel_mse_db2"], 30.0**2 / 8, rtol=1e-6)  # 30 dB off in 1 band of 8
    assert ident["mrstft"].notna().sum() == 2 and flat["mrstft"].notna().sum() == 2
    np.testing.assert_allclose(ident["mrstft"].dropna(), 0.0, atol=1e-6)
