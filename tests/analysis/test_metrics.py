"""Tests of vaetone.analysis.metrics on known answers, and of the per-note scores built on them (evaluation)."""

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config
from vaetone.analysis import evaluation, metrics
from vaetone.errors import ConfigError, DataError

SR = 16000


def tone(f0, n_harmonics=6, seconds=1.0, decay=1.5, keep=None, extra=()):
    """A harmonic tone with equal-amplitude partials (optionally only the first ``keep``, plus ``extra`` Hz)."""
    t = np.arange(int(seconds * SR)) / SR
    freqs = [f0 * k for k in range(1, (keep or n_harmonics) + 1)] + list(extra)
    y = sum(np.sin(2 * np.pi * f * t + 0.3 * k) for k, f in enumerate(freqs, 1)) * np.exp(-t * decay)
    return (0.2 * y).astype(np.float32)


def scores(ref, est, **kw):
    """Precision, recall and F1 of the first note, as a list."""
    return metrics.frequency_scores(ref, est, **kw)[["freq_precision", "freq_recall", "freq_f1"]].iloc[0].tolist()


@pytest.fixture(scope="module")
def notes():
    return np.stack([tone(110), tone(220), tone(330.0)])


def test_a_signal_against_itself_is_perfect(notes):
    db = torch.randn(3, 16, 32) * 10 - 40
    assert np.array_equal(metrics.logmel_mse(db, db), np.zeros(3))
    assert np.array_equal(metrics.log_spectral_distance(db, db), np.zeros(3))
    assert np.array_equal(metrics.spectral_convergence(db, db), np.zeros(3))
    assert np.array_equal(metrics.multires_stft_distance(notes, notes), np.zeros(3))
    same = metrics.frequency_scores(notes, notes)
    assert (same[["freq_precision", "freq_recall", "freq_f1"]] == 1.0).all().all()
    assert same["ref_peaks"].tolist() == same["est_peaks"].tolist() == [6, 6, 6]
    assert np.array_equal(metrics.audio_log_spectral_distance(notes, notes), np.zeros(3))
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
    assert (metrics.frequency_scores(notes, up)[["freq_precision", "freq_recall", "freq_f1"]] == 0.0).all().all()
    assert (metrics.multires_stft_distance(notes, up) > 0.5).all()


def test_pyin_agrees_on_the_semitone():
    err = metrics.f0_error_cents(tone(220)[None], tone(220 * 2 ** (1 / 12))[None], method="pyin")
    assert err == pytest.approx([100], abs=10)


def test_frequency_scores_known_answers():
    ref = tone(220, 6)[None]
    assert metrics.spectral_peaks(ref)[0] == pytest.approx(220 * np.arange(1, 7), rel=2e-3)
    assert scores(ref, ref) == [1.0, 1.0, 1.0]
    # two spurious partials between the harmonics: 6 of 8 estimate peaks match, all 6 reference peaks are found
    spurious = tone(220, 6, extra=(330.0, 770.0))[None]
    assert metrics.spectral_peaks(spurious)[0].size == 8
    assert scores(ref, spurious) == pytest.approx([6 / 8, 1.0, 2 * 0.75 / 1.75])
    # and the other way round: recall 6 / 8, precision 1
    assert scores(spurious, ref) == pytest.approx([1.0, 6 / 8, 2 * 0.75 / 1.75])
    half = tone(220, 6, keep=3)[None]  # first 3 of 6 harmonics: precision 1, recall 1/2
    assert scores(ref, half) == pytest.approx([1.0, 0.5, 2 / 3])
    up_100 = tone(220 * 2 ** (100 / 1200), 6)[None]  # 100 cents sharp, tolerance 50: nothing matches
    assert scores(ref, up_100, tolerance_cents=50) == [0.0, 0.0, 0.0]
    assert scores(ref, up_100, tolerance_cents=150) == [1.0, 1.0, 1.0]
    slightly = tone(220 * 2 ** (20 / 1200), 6)[None]  # 20 cents sharp: within 50, not within 10
    assert scores(ref, slightly) == [1.0, 1.0, 1.0]
    assert scores(ref, slightly, tolerance_cents=10) == [0.0, 0.0, 0.0]


def test_frequency_scores_edge_cases_are_defined():
    ref, silence = tone(220, 6)[None], np.zeros((1, SR), np.float32)
    assert scores(ref, silence) == [0.0, 0.0, 0.0]  # an estimate without peaks reproduces none
    assert np.isnan(scores(silence, ref)).all()  # a silent reference cannot be scored
    assert np.isnan(scores(silence, silence)).all()
    table = metrics.frequency_scores(np.concatenate([silence, ref]), np.concatenate([ref, ref]))
    assert table["ref_peaks"].tolist() == [0, 6] and table["est_peaks"].tolist() == [6, 6]


def test_peaks_are_matched_one_to_one():
    assert metrics.match_peaks([100.0], [100.0, 100.5], 50) == 1  # one reference peak takes one estimate peak
    assert metrics.match_peaks([100.0, 101.0], [100.5], 50) == 1
    # greedy nearest-first would pair 101 with 100.9 and leave 99.5 alone; the assignment finds both pairs
    assert metrics.match_peaks([99.5, 101.0], [100.9, 102.5], 50) == 2
    assert metrics.match_peaks([], [100.0], 50) == 0 and metrics.match_peaks([100.0], [], 50) == 0
    assert metrics.match_peaks([100.0], [200.0], 50) == 0


def test_lengths_are_aligned_by_trimming_the_end():
    cfg = config.make(n_mels=16)
    frames = 1 + 64000 // cfg.hop_length
    db = torch.full((2, 16, frames), -40.0)
    inverted = evaluation.mel_to_audio(db, cfg, n_iter=1)
    assert inverted.shape == (2, cfg.hop_length * (frames - 1))  # 64000 with the defaults
    long = np.arange(2 * 64100, dtype=np.float32).reshape(2, 64100)
    ref, est = metrics.align_lengths(long, inverted, cfg.hop_length)
    assert ref.shape == est.shape == inverted.shape and ref[1, 0] == 64100.0 and ref[0, -1] == inverted.shape[1] - 1
    with pytest.raises(DataError, match="differ by more than 512 samples"):
        metrics.align_lengths(long, inverted[:, :60000], cfg.hop_length)
    with pytest.raises(DataError):
        metrics.align_lengths(long[:1], inverted, cfg.hop_length)


def test_audio_lsd_known_offset():
    y = tone(220)[None]
    # doubling the amplitude multiplies the power by 4: +6.02 dB in every bin above the floor
    lsd = metrics.audio_log_spectral_distance(y, 2 * y, floor=1e-30)
    assert lsd == pytest.approx([20 * np.log10(2)], rel=1e-6)


def test_spectral_scores_of_a_note_against_itself_and_one_band_off():
    ref = torch.full((3, 16, 20), -60.0)
    ref[np.arange(3), [2, 5, 9], :] = -10.0
    same = evaluation.spectral_scores(ref, ref.clone(), index=["a", "b", "c"])
    assert list(same.columns) == list(evaluation.SPECTRAL_COLUMNS) and list(same.index) == ["a", "b", "c"]
    assert (same == 0).all().all()
    moved = ref.clone()
    moved[0] = torch.roll(ref[0], 1, 0)  # the first note one band up: 2 bands of 16 off by 50 dB
    table = evaluation.spectral_scores(ref, moved)
    assert table["lsd_db"].tolist() == pytest.approx([np.sqrt(2 * 50.0**2 / 16), 0.0, 0.0])
    assert table["logmel_mse_db2"].iloc[0] == pytest.approx(2 * 50.0**2 / 16)


def test_audio_scores_against_the_original():
    cfg = config.make(n_mels=16)
    wav = np.stack([tone(110, seconds=4.0), tone(220, seconds=4.0)])  # 64000 samples, like a note
    est = wav[:, : cfg.hop_length * 125]  # what Griffin-Lim returns for 126 frames
    same = evaluation.audio_scores(wav, est, cfg, index=["a", "b"])
    assert list(same.columns) == list(evaluation.AUDIO_COLUMNS) and list(same.index) == ["a", "b"]
    assert (same[["lsd_audio_db", "mrstft", "f0_error_cents"]] == 0).all().all()
    assert (same[["freq_precision", "freq_recall", "freq_f1"]] == 1).all().all()
    sharp = np.stack([tone(110 * 2 ** (1 / 12), seconds=4.0), tone(220, seconds=4.0)])
    table = evaluation.audio_scores(wav, sharp, cfg)
    assert table["f0_error_cents"].iloc[0] == pytest.approx(100, abs=10) and table["f0_error_cents"].iloc[1] == 0
    assert table["freq_f1"].tolist() == [0.0, 1.0] and table["lsd_audio_db"].iloc[0] > 1.0
    ref = evaluation.reference(est, cfg)  # computed once, scored against several estimates: the same numbers
    assert ref["f0"] == pytest.approx([110, 220], rel=0.01) and [len(p) for p in ref["peaks"]] == [6, 6]
    pd.testing.assert_frame_equal(evaluation.audio_scores(wav, sharp, cfg, ref=ref), table)
    cfg = config.make(n_mels=16, peak_tolerance_cents=150.0)  # the tolerance is the configuration's
    assert evaluation.audio_scores(wav, sharp, cfg)["freq_f1"].tolist() == [1.0, 1.0]


def test_the_audio_subset_spans_the_instruments():
    instruments = np.array(["a"] * 6 + ["b"] * 3 + ["c"] * 1 + ["d"] * 2)
    for seed in range(5):
        sub = evaluation.audio_subset(instruments, 4, seed)
        assert len(sub) == 4 and sorted(set(instruments[sub])) == ["a", "b", "c", "d"]
        assert np.array_equal(sub, np.sort(sub)) and np.array_equal(sub, evaluation.audio_subset(instruments, 4, seed))
        counts = pd.Series(instruments[evaluation.audio_subset(instruments, 9, seed)]).value_counts()
        assert counts.to_dict() == {"a": 3, "b": 3, "d": 2, "c": 1}  # round-robin: c and d run out first
    assert not np.array_equal(evaluation.audio_subset(instruments, 4, 0), evaluation.audio_subset(instruments, 4, 1))
    np.testing.assert_array_equal(evaluation.audio_subset(instruments, 0, 0), np.arange(12))
    np.testing.assert_array_equal(evaluation.audio_subset(instruments, 50, 0), np.arange(12))
