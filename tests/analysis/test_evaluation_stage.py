"""Tests of the training-evaluation stage (vaetone.analysis.evaluation): known answers and the cached result."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config, results, store
from vaetone.analysis import curves, evaluation, generate, scores
from vaetone.book import tables
from vaetone.errors import DataError


class FakeFeatures:
    """Eight notes (two train, six test from three instruments in two families) of 8 mel bands: one loud band."""

    meta = pd.DataFrame(
        {
            "split": ["train", "train"] + ["test"] * 6,
            "instrument_family_str": ["brass", "reed", "brass", "brass", "brass", "brass", "reed", "reed"],
            "instrument_str": ["t0", "t1", "i1", "i1", "i2", "i2", "i3", "i3"],
        },
        index=[f"n{i}" for i in range(8)],
    )
    logmel = torch.full((8, 8, 20), -30.0)
    logmel[:, 2, :] = 0.0
    logmel[5, 2, :] = -3.0  # one test note quieter

    def rows(self, split):
        return np.flatnonzero(self.meta.split.to_numpy() == split)

    def x(self, split):
        return self.normalise(self.logmel[self.rows(split)])[:, None]

    def normalise(self, db):
        return (db + 30.0) / 10.0

    def denormalise(self, x):
        return x * 10.0 - 30.0


def originals(cfg, n=8, frames=20):
    """The notes' "wavs": a 440 Hz tone each, 100 samples longer than Griffin-Lim's output (as a real note may be)."""
    t = np.arange(cfg.hop_length * (frames - 1) + 100) / 16000
    return np.tile(0.3 * np.sin(2 * np.pi * 440 * t), (n, 1)).astype(np.float32)


def identity(x):
    return torch.as_tensor(x).clone()


def three_db_up(x):
    """Every bin 3 dB louder (0.3 normalised units of 10 dB)."""
    return torch.as_tensor(x) + 0.3


@pytest.fixture(scope="module")
def small_cfg():
    return config.make(n_mels=8, channels=[4], n_eval_audio=3, griffin_lim_iters=4, seed=1, bootstrap_n=200)


def test_every_note_is_scored_against_its_original_and_inversion_alone_is_the_ceiling(small_cfg):
    models = {"VAE": identity, "autoencoder": three_db_up}
    tables = evaluation.evaluate_models(models, FakeFeatures(), originals(small_cfg), small_cfg)
    assert list(tables) == ["VAE", "autoencoder", "inversion only"]
    vae, ae, inv = tables["VAE"], tables["autoencoder"], tables["inversion only"]
    assert list(vae.index) == ["n2", "n3", "n4", "n5", "n6", "n7"]
    assert list(vae.columns) == [*evaluation.SPECTRAL_COLUMNS, *evaluation.AUDIO_COLUMNS]
    np.testing.assert_array_equal(inv[list(evaluation.SPECTRAL_COLUMNS)], 0.0)  # log-mel vs itself: 0 by definition
    np.testing.assert_allclose(ae["lsd_db"], 3.0, rtol=1e-6)
    audio = vae["mrstft"].notna()
    assert audio.sum() == 3 and FakeFeatures.meta.loc[vae.index[audio], "instrument_str"].nunique() == 3
    # a perfect model's audio is the inversion's audio: the same scores against the original, and not perfect ones
    pd.testing.assert_frame_equal(
        vae.loc[audio, list(evaluation.AUDIO_COLUMNS)], inv.loc[audio, list(evaluation.AUDIO_COLUMNS)]
    )
    assert (inv.loc[audio, "lsd_audio_db"] > 0).all() and (inv.loc[audio, "ref_peaks"] >= 1).all()
    assert not ae.loc[audio, "lsd_audio_db"].equals(inv.loc[audio, "lsd_audio_db"])
    with pytest.raises(DataError, match="differ by more than"):
        evaluation.evaluate_models(models, FakeFeatures(), originals(small_cfg, frames=40), small_cfg)


def test_a_perfect_vae_is_significantly_3_db_lower_than_an_autoencoder_3_db_off(small_cfg):
    models = {"VAE": identity, "autoencoder": three_db_up, "PCA": identity}
    tables, f = evaluation.compute_evaluation(models, FakeFeatures(), originals(small_cfg), small_cfg)
    assert sorted(tables) == sorted(
        ["comparison", "paired", "per_family_lsd", "per_note_PCA", "per_note_VAE", "per_note_autoencoder"]
        + ["per_note_inversion"]
    )
    comp = tables["comparison"]
    assert list(comp.index) == ["VAE", "autoencoder", "PCA", "inversion only"] and comp.index.name == "model"
    assert list(comp.columns[:5]) == ["lsd_db", "lsd_db_low", "lsd_db_high", "lsd_db_n_notes", "lsd_db_n_instruments"]
    assert comp.loc["autoencoder", ["lsd_db", "lsd_db_low", "lsd_db_high"]].tolist() == pytest.approx([3.0] * 3)
    assert comp.loc["inversion only", ["lsd_db", "lsd_db_low", "lsd_db_high"]].tolist() == [0.0, 0.0, 0.0]
    assert comp.loc["VAE", "lsd_db_n_notes"] == 6 and comp.loc["VAE", "freq_f1_n_notes"] == 3
    assert (comp["lsd_db_n_instruments"] == 3).all()
    assert f["VAE_lsd_db"] == 0.0 and f["autoencoder_lsd_db"] == pytest.approx(3.0)
    assert f["inversion_freq_f1"] == comp.loc["inversion only", "freq_f1"] == f["VAE_freq_f1"]
    assert f["autoencoder_lsd_db_ci"] == "3.00 dB (95 % interval 3.00 to 3.00)"
    assert f["vae_vs_ae_lsd_db_diff"] == pytest.approx(-3.0) and f["vae_vs_ae_lsd_db_significant"] is True
    assert f["vae_vs_ae_lsd_db"].startswith("3.00 dB lower (95 % interval -3.00 to -3.00 dB; the interval excludes 0)")
    assert f["vae_vs_pca_lsd_db"].startswith("the same to within 0.005 dB") and not f["vae_vs_pca_lsd_db_significant"]
    assert f["vae_vs_ae_reading"] == scores.vae_vs_ae_reading(
        {"verdict": "significant", "significant": True, "difference": -3}
    )
    assert f["n_test"] == 6 and f["n_test_instruments"] == 3 and f["n_audio"] == 3 and f["n_audio_instruments"] == 3
    assert f["bootstrap_n"] == 200 and f["peak_tolerance_cents"] == 50.0
    lows = comp[[f"{m}_low" for m in scores.METRICS]]
    assert f["intervals_undefined"] == lows.isna().sum().sum()  # here: f0 of a Griffin-Lim toy, off by octaves
    assert lows.iloc[:, :6].notna().all().all()  # the LSDs, MR-STFT and frequency scores rest on 3 instruments
    pairs = tables["paired"]
    columns = ["model_a", "model_b", "metric", "difference", "low", "high", "n_notes", "n_instruments"]
    assert len(pairs) == 9 and list(pairs.columns) == [*columns, "significant", "verdict"]
    first = pairs.iloc[0][["model_a", "model_b", "metric", "verdict"]].tolist()
    assert first == ["VAE", "autoencoder", "lsd_db", "significant"]
    fam = tables["per_family_lsd"]
    assert list(fam.index) == ["brass", "reed", "all"]
    assert list(fam.columns) == ["VAE", "autoencoder", "PCA", "n_notes", "n_instruments"]
    assert fam["n_notes"].tolist() == [4, 2, 6] and fam["n_instruments"].tolist() == [2, 1, 3]
    np.testing.assert_allclose(fam["autoencoder"], 3.0, rtol=1e-6)
    assert f["summary"] == scores.summary_sentence(f) and f["VAE_lsd_db_ci"] in f["summary"]


def test_too_few_instruments_leave_the_intervals_undefined_never_nan_in_words(small_cfg):
    cfg = dataclasses.replace(small_cfg, n_eval_audio=2)  # two notes: two instruments
    models = {"VAE": three_db_up, "autoencoder": identity}
    tables, f = evaluation.compute_evaluation(models, FakeFeatures(), originals(cfg), cfg)
    comp = tables["comparison"]
    assert comp.loc["VAE", "freq_f1_n_instruments"] == 2 and np.isnan(comp.loc["VAE", "freq_f1_low"])
    assert np.isfinite(comp.loc["VAE", "freq_f1"])  # the estimate is kept
    assert "interval undefined: 2 scored notes from 2 instrument(s)" in f["VAE_freq_f1_ci"]
    assert "nan" not in f["VAE_freq_f1_ci"] and f["intervals_undefined"] > 0
    assert f["vae_vs_ae_freq_f1"].startswith("undefined: ") and f["vae_vs_ae_freq_f1_significant"] is False
    # the log-mel comparison covers all six notes of three instruments: defined, and the worse VAE reads so
    assert f["vae_vs_ae_lsd_db"].startswith("3.00 dB higher") and f["vae_vs_ae_lsd_db_significant"]
    assert f["vae_vs_ae_reading"].startswith("the VAE reconstructs significantly worse")
    assert "PCA_lsd_db" not in f and "vae_vs_pca_lsd_db" not in f


def test_examples_are_picked_across_the_errors_and_rendered_alike(small_cfg):
    per_note = pd.DataFrame({"lsd_db": [5.0, 1.0, 3.0, 2.0, 4.0]}, index=list("abcde"))
    assert generate.pick_examples(per_note, 2) == ["b", "c"]
    assert generate.pick_examples(per_note, 9) == ["b", "d", "c", "e", "a"]
    assert generate.pick_examples(per_note, 0) == []
    feats = FakeFeatures()
    x, wav = feats.x("test")[:2], originals(small_cfg, n=2)
    db, audio = generate.reconstruction_examples({"same": identity, "flat": torch.zeros_like}, x, wav, feats, small_cfg)
    samples = small_cfg.hop_length * 19
    assert db.shape == (2, 4, 8, 20) and audio.shape == (2, 4, samples)
    np.testing.assert_allclose(db[:, 0], feats.logmel[2:4].numpy(), atol=1e-5)  # the original's log-mel
    np.testing.assert_array_equal(audio[:, 0], wav[:, :samples])  # and its wav, trimmed to the inversion's length
    np.testing.assert_array_equal(db[:, 2], db[:, 0])  # a perfect model shows the original's log-mel ...
    np.testing.assert_array_equal(audio[:, 2], audio[:, 1])  # ... and sounds like the inversion alone
    np.testing.assert_array_equal(db[:, 3], -30.0)
    assert np.abs(db[:, 1] - db[:, 0]).max() > 0.1  # the inversion-only panel is the log-mel of its audio
    assert (
        generate.level_phrase(0.5 * np.ones((2, 3)))
        == "The loudest sample of these sounds is at -6.0 dBFS, so none is clipped"
    )
    assert generate.level_phrase(np.array([0.1, -2.0])).endswith("+6.0 dBFS: samples beyond full scale are clipped")
    assert generate.level_phrase(np.zeros((0, 3))) == "No sound is played"
    assert generate.level_phrase(np.zeros(3)) == "These sounds are silent"
    empty_db, empty_audio = generate.reconstruction_examples({"same": identity}, x[:0], wav[:0], feats, small_cfg)
    assert empty_db.shape == (0, 3, 8, 20) and empty_audio.shape == (0, 3, samples)


class Unscaled:
    """Features whose normalised scale is dB."""

    def denormalise(self, x):
        return x


def test_generation_examples_follow_the_one_dimension_decoder(one_dim_decoder):
    cfg = config.make(n_mels=16, griffin_lim_iters=2, seed=3)
    prior = generate.prior_examples(one_dim_decoder, 4, Unscaled(), cfg)
    z = torch.as_tensor(prior["prior_z"])
    assert z.shape == (4, 4) and prior["prior_audio"].shape == (4, cfg.hop_length * 11)
    np.testing.assert_allclose(prior["prior_db"], one_dim_decoder(z)[:, 0].numpy(), atol=1e-6)
    again = generate.prior_examples(one_dim_decoder, 4, Unscaled(), cfg)
    np.testing.assert_array_equal(again["prior_audio"], prior["prior_audio"])
    z0, z1 = np.array([1.0, 0.0, 2.0, 0.0]), np.array([1.0, 3.0, 0.0, 0.0])
    paths = generate.interpolation_examples(one_dim_decoder, z0, z1, Unscaled(), cfg, steps=5)
    assert paths["linear_z"].shape == (5, 4) and paths["spherical_audio"].shape == (5, cfg.hop_length * 11)
    # z_0 stays 1 along the straight line, so every decoded point is the same note ...
    np.testing.assert_allclose(paths["linear_db"], np.broadcast_to(paths["linear_db"][:1], (5, 16, 12)), atol=1e-6)
    # ... while the arc changes z_0 between the same two ends
    np.testing.assert_allclose(paths["spherical_db"][[0, -1]], paths["linear_db"][[0, -1]], atol=1e-5)
    assert np.abs(paths["spherical_db"][2] - paths["linear_db"][2]).max() > 0.1


@pytest.fixture
def tiny_result(tiny_cfg, stage_store):
    return evaluation.result(tiny_cfg)


def test_the_stage_result_holds_what_chapter_03_quotes(tiny_cfg, tiny_result):
    r, f = tiny_result, tiny_result.findings
    assert isinstance(r, evaluation.EvaluationResult)
    history = r.table("history")
    assert f["epochs_trained"] == len(history) and 1 <= f["best_epoch"] <= len(history)
    assert f["latent_dim"] == 4 and f["n_train"] > 0 and f["n_audio"] == 4 and f["device"] == "cpu"
    assert f["valid_kl"] == history.loc[f["best_epoch"], "valid_kl"]
    assert f["kl_trend"] == curves.trend_phrase(history["valid_kl"]) and f["kl_reading"] == curves.kl_reading(
        history["valid_kl"]
    )
    assert r.table("kl_per_dim")["kl_nats"].sum() == pytest.approx(f["valid_kl"], rel=1e-4)
    assert f["autoencoder_run"] != f["run_id"] and "-b0-" in f["autoencoder_run"]
    comp = r.table("comparison")
    assert list(comp.index) == [*scores.MODELS, scores.INVERSION]
    for model in comp.index:
        for metric in scores.METRICS:
            assert f[f"{scores.PREFIX[model]}_{metric}"] == pytest.approx(comp.loc[model, metric], nan_ok=True)
        per_note = r.table(evaluation.table_name(model))
        assert comp.loc[model, "lsd_db"] == pytest.approx(per_note["lsd_db"].mean())
        assert comp.loc[model, "f0_median_cents"] == pytest.approx(per_note["f0_error_cents"].median())
    assert (r.table("per_note_inversion")["lsd_db"] == 0).all()
    # the audio subset spreads over the test instruments: 4 notes of 4 instruments
    scored = r.table("per_note_VAE")["freq_f1"].notna()
    assert scored.sum() == 4 and f["n_audio_instruments"] == min(4, f["n_test_instruments"])
    # the VAE-autoencoder phrase follows the paired interval on the log-mel LSD
    row = r.table("paired").iloc[0]
    assert (row.model_a, row.model_b, row.metric) == ("VAE", "autoencoder", "lsd_db")
    assert f["vae_vs_ae_reading"] == scores.vae_vs_ae_reading(row)
    assert f["vae_vs_ae_lsd_db_significant"] == bool(row.significant) == (row.low > 0 or row.high < 0)
    assert f["example_models"] == ["original", "inversion only", "VAE", "autoencoder", "PCA"]
    assert len(f["example_notes"]) == 1 and f["example_notes"][0] in r.table("per_note_VAE").index
    frames = r.arrays["prior_db"].shape[-1]
    assert r.arrays["recon_db"].shape == (1, 5, tiny_cfg.n_mels, frames)
    assert r.arrays["recon_audio"].shape == (1, 5, tiny_cfg.hop_length * (frames - 1))
    assert r.arrays["prior_db"].shape == (4, tiny_cfg.n_mels, frames) and r.arrays["linear_audio"].shape[0] == 5
    assert f["interpolation_t"] == [0.0, 0.25, 0.5, 0.75, 1.0] and f["interpolation_from"] != f["interpolation_to"]


def test_the_stage_result_quotes_and_shows_no_nan(tiny_result):
    for name, value in tiny_result.findings.items():
        if isinstance(value, str):
            assert "nan" not in value.lower().replace("(", " ").split(), f"{name}: {value}"
    shown = [
        tables.interval_table(tiny_result.table("comparison"), scores.LABELS),
        tables.paired_table(tiny_result.table("paired"), scores.LABELS),
    ]
    for table in shown:
        assert table.notna().all().all() and not table.map(lambda c: "nan" in c.lower()).any().any()


def test_the_stage_result_is_cached_and_keyed_by_its_parameters(tiny_cfg, tiny_result, monkeypatch):
    upstream = store.key("train", tiny_cfg)
    key = results.result_key(evaluation.EvaluationResult, tiny_cfg, upstream)
    path = results.result_path(evaluation.EvaluationResult, tiny_cfg, store.run_dir(tiny_cfg), upstream)
    assert (path / "manifest.json").exists()

    def no_compute(cfg):
        raise AssertionError("a cached result was recomputed")

    with monkeypatch.context() as m:
        m.setattr(evaluation, "_compute", no_compute)
        again = evaluation.result(dataclasses.replace(tiny_cfg, sweep_steps=7))  # not a parameter of this stage
        assert again.findings == tiny_result.findings
        np.testing.assert_array_equal(again.arrays["recon_audio"], tiny_result.arrays["recon_audio"])
        for name, value in (("bootstrap_n", 500), ("peak_tolerance_cents", 30.0)):
            other = dataclasses.replace(tiny_cfg, **{name: value})
            assert results.result_key(evaluation.EvaluationResult, other, upstream) != key
        changed = dataclasses.replace(tiny_cfg, n_audio_examples=0)
        assert results.result_key(evaluation.EvaluationResult, changed, upstream) != key
        with pytest.raises(AssertionError, match="recomputed"):
            evaluation.result(changed)
    none = evaluation.result(changed)
    assert none.findings["example_notes"] == [] and none.arrays["recon_db"].shape[0] == 0
    assert none.findings["VAE_lsd_db"] == tiny_result.findings["VAE_lsd_db"]


def test_rows_are_scaled_by_one_gain_each_and_the_phrase_says_so():
    audio = np.zeros((3, 2, 4), np.float32)
    audio[0, 0, 0], audio[0, 1, 0] = 0.1, 0.05  # row 0 peaks at -20 dBFS, its second clip 6 dB below
    audio[1, 1, 2] = -0.5  # row 1 peaks at -6.02 dBFS; row 2 is silent
    scaled, gains = evaluation.scale_rows(audio, peak=-1.0)
    assert gains[0] == pytest.approx(19.0, abs=1e-4) and gains[1] == pytest.approx(5.0206, abs=1e-4)
    assert np.isnan(gains[2]) and not scaled[2].any()
    peak = 10 ** (-1 / 20)
    assert np.abs(scaled[0]).max() == pytest.approx(peak) and np.abs(scaled[1]).max() == pytest.approx(peak)
    assert scaled[0, 1, 0] == pytest.approx(peak / 2)  # the relative level within a row is kept
    assert evaluation.scaling_phrase(gains, -1.0) == (
        "Each row is scaled by one gain (+5.0 to +19.0 dB) so that its loudest sample is at -1.0 dBFS: "
        "the clips of a row keep their relative levels; 1 silent row stays silent"
    )
    assert evaluation.scaling_phrase([-3.0]).startswith("Each row is scaled by one gain (-3.0 dB) so that")
    assert evaluation.scaling_phrase([]) == "No sound is played"
    assert evaluation.scaling_phrase([float("nan")]) == "These sounds are silent"


def test_the_answer_adds_the_frequency_f1_beside_the_inversions():
    found = {"summary": "On notes of unseen instruments the VAE's log-mel log-spectral distance is 5.0 dB"}
    assert evaluation.answer_sentence(found) == found["summary"]
    found |= {"VAE_freq_f1_ci": "0.50 [0.40, 0.60]", "inversion_freq_f1_ci": "0.90 [0.85, 0.95]"}
    assert evaluation.answer_sentence(found) == (
        "On notes of unseen instruments the VAE's log-mel log-spectral distance is 5.0 dB; against the original "
        "wav its frequency F1 is 0.50 [0.40, 0.60], where the inversion alone reaches 0.90 [0.85, 0.95]"
    )


def test_the_stage_result_plays_each_row_at_the_stated_peak(tiny_result):
    r, f = tiny_result, tiny_result.findings
    assert f["answer"] == evaluation.answer_sentence(f) and f["answer"].startswith(f["summary"])
    for audio, phrase in (
        (r.arrays["recon_audio"], f["example_level"]),
        (r.arrays["prior_audio"][None], f["prior_level"]),
        (np.stack([r.arrays["linear_audio"], r.arrays["spherical_audio"]]), f["interpolation_level"]),
    ):
        peaks = 20 * np.log10(np.abs(audio.reshape(len(audio), -1)).max(axis=1))
        np.testing.assert_allclose(peaks, -1.0, atol=1e-3)
        assert "so that its loudest sample is at -1.0 dBFS" in phrase
    grid = r.interpolation_sounds()
    assert grid["rows"] == ["linear", "spherical"] and grid["columns"][0] == "t = 0.00"
    assert grid["dbs"].shape[:2] == grid["audio"].shape[:2] == (2, 5)
    recon = r.reconstruction_sounds()
    assert recon["rows"] == f["example_notes"] and recon["columns"] == f["example_models"]
