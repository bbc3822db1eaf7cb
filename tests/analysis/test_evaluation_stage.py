"""Tests of the training-evaluation stage (vaetone.analysis.evaluation): known answers and the cached result."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config, results, store
from vaetone.analysis import evaluation, generate


class FakeFeatures:
    """Six notes (two train, four test in two families) of 8 mel bands: one loud band at 0 dB on -30 dB."""

    meta = pd.DataFrame(
        {
            "split": ["train", "train", "test", "test", "test", "test"],
            "instrument_family_str": ["brass", "reed", "brass", "brass", "reed", "reed"],
        },
        index=[f"n{i}" for i in range(6)],
    )
    logmel = torch.full((6, 8, 20), -30.0)
    logmel[:, 2, :] = 0.0

    def rows(self, split):
        return np.flatnonzero(self.meta.split.to_numpy() == split)

    def x(self, split):
        return self.normalise(self.logmel[self.rows(split)])[:, None]

    def normalise(self, db):
        return (db + 30.0) / 10.0

    def denormalise(self, x):
        return x * 10.0 - 30.0


def identity(x):
    return torch.as_tensor(x).clone()


def three_db_up(x):
    """Every bin 3 dB louder (0.3 normalised units of 10 dB)."""
    return torch.as_tensor(x) + 0.3


@pytest.fixture(scope="module")
def small_cfg():
    return config.make(n_mels=8, channels=[4], n_eval_audio=2, griffin_lim_iters=4, seed=1)


def test_a_perfect_vae_scores_zero_and_is_3_db_lower_than_an_autoencoder_3_db_off(small_cfg):
    models = {"VAE": identity, "autoencoder": three_db_up, "PCA": identity}
    tables, f = evaluation.compute_evaluation(models, FakeFeatures(), small_cfg)
    assert f["VAE_lsd_db"] == 0.0 and f["VAE_logmel_mse_db2"] == 0.0
    assert f["autoencoder_lsd_db"] == pytest.approx(3.0) and f["autoencoder_logmel_mse_db2"] == pytest.approx(9.0)
    assert f["VAE_mrstft"] == pytest.approx(0.0, abs=1e-6) and f["VAE_f0_error_cents"] == pytest.approx(0.0)
    assert f["vae_vs_ae_db"] == pytest.approx(-3.0)
    assert f["vae_vs_ae"] == "3.00 dB lower"
    assert f["vae_vs_ae_reading"] == "here the KL term costs no reconstruction accuracy"
    assert f["n_audio"] == 2
    assert sorted(tables) == ["comparison", "per_family_lsd", "per_note_PCA", "per_note_VAE", "per_note_autoencoder"]
    assert list(tables["comparison"].index) == ["VAE", "autoencoder", "PCA"]
    assert f["PCA_lsd_db"] == tables["comparison"].loc["PCA", ("lsd_db", "mean")]
    fam = tables["per_family_lsd"]
    assert list(fam.index) == ["brass", "reed", "all"] and list(fam.columns) == ["VAE", "autoencoder", "PCA"]
    np.testing.assert_allclose(fam["autoencoder"], 3.0, rtol=1e-6)
    np.testing.assert_array_equal(fam["VAE"], 0.0)
    assert list(tables["per_note_VAE"].index) == ["n2", "n3", "n4", "n5"]


def test_a_worse_vae_reads_higher(small_cfg):
    models = {"VAE": three_db_up, "autoencoder": identity}
    _, f = evaluation.compute_evaluation(models, FakeFeatures(), dataclasses.replace(small_cfg, n_eval_audio=1))
    assert f["vae_vs_ae_db"] == pytest.approx(3.0) and f["vae_vs_ae"] == "3.00 dB higher"
    assert f["vae_vs_ae_reading"] == "the KL term trades reconstruction for a regular latent space"
    assert f["n_audio"] == 1 and "PCA_lsd_db" not in f


def test_phrases_are_built_from_the_numbers():
    assert evaluation.gap_phrase(0.04) == "0.04 dB higher"
    assert evaluation.gap_phrase(-1.2) == "1.20 dB lower"
    assert evaluation.gap_phrase(0.004) == "the same to within 0.005 dB"
    assert evaluation.gap_phrase(math.nan) == "not measured"
    assert evaluation.warmup_phrase(1) == "is warmed up linearly from 0 over the first epoch"
    assert evaluation.warmup_phrase(5) == "is warmed up linearly from 0 over the first 5 epochs"
    assert evaluation.warmup_phrase(0).startswith("is not warmed up")
    epochs = pd.Index([1, 2, 3], name="epoch")
    history = pd.DataFrame({"valid_kl": [0.12, 1.6, 5.11], "valid_recon": [3902.9, 3883.4, 3827.4]}, index=epochs)
    f = evaluation.history_findings(history, 1)
    assert f["kl_trend"] == "rises from 0.1 (epoch 1) to 5.1 nats per note (epoch 3)"
    assert f["recon_trend"] == "falls from 3902.9 (epoch 1) to 3827.4 nats per note (epoch 3)"
    assert f["kl_warmup"] == evaluation.warmup_phrase(1)
    flat = pd.Series([2.01, 5.0, 1.98], index=epochs)
    assert evaluation.trend_phrase(flat) == "stays at 2.0 nats per note (epochs 1 to 3)"
    assert evaluation.trend_phrase(flat.iloc[:1]) == "is 2.0 nats per note (epoch 1)"


def test_kl_per_dim_reads_the_kept_epoch():
    history = pd.DataFrame(
        {"valid_kl": [1.0, 6.0], "valid_kl_d00": [0.5, 1.0], "valid_kl_d01": [0.5, 5.0]},
        index=pd.Index([1, 2], name="epoch"),
    )
    kl = evaluation.kl_per_dim(history, 2)
    assert list(kl.index) == [0, 1] and kl.index.name == "dimension"
    assert kl["kl_nats"].tolist() == [1.0, 5.0]


def test_examples_are_picked_across_the_errors_and_rendered_alike(small_cfg):
    per_note = pd.DataFrame({"lsd_db": [5.0, 1.0, 3.0, 2.0, 4.0]}, index=list("abcde"))
    assert generate.pick_examples(per_note, 2) == ["b", "c"]
    assert generate.pick_examples(per_note, 9) == ["b", "d", "c", "e", "a"]
    assert generate.pick_examples(per_note, 0) == []
    feats = FakeFeatures()
    x = feats.x("test")[:2]
    db, audio = generate.reconstruction_examples({"same": identity, "flat": torch.zeros_like}, x, feats, small_cfg)
    assert db.shape == (2, 3, 8, 20) and audio.shape == (2, 3, small_cfg.hop_length * 19)
    np.testing.assert_allclose(db[:, 0], feats.logmel[2:4].numpy(), atol=1e-5)
    np.testing.assert_array_equal(db[:, 1], db[:, 0])
    np.testing.assert_array_equal(db[:, 2], -30.0)
    np.testing.assert_array_equal(audio[:, 1], audio[:, 0])
    empty_db, empty_audio = generate.reconstruction_examples({"same": identity}, x[:0], feats, small_cfg)
    assert empty_db.shape == (0, 2, 8, 20) and empty_audio.shape == (0, 2, small_cfg.hop_length * 19)


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
    assert r.table("kl_per_dim")["kl_nats"].sum() == pytest.approx(f["valid_kl"], rel=1e-4)
    assert f["vae_vs_ae"] == evaluation.gap_phrase(f["VAE_lsd_db"] - f["autoencoder_lsd_db"])
    assert f["autoencoder_run"] != f["run_id"] and "-b0-" in f["autoencoder_run"]
    for model in evaluation.MODELS:
        for metric in ("lsd_db", "frequency_accuracy", "f0_error_cents", "logmel_mse_db2"):
            assert f[f"{model}_{metric}"] == r.table("comparison").loc[model, (metric, "mean")]
    assert f["example_models"] == ["original", "VAE", "autoencoder", "PCA"] and len(f["example_notes"]) == 1
    assert f["example_notes"][0] in r.table("per_note_VAE").index
    frames = r.arrays["prior_db"].shape[-1]
    assert r.arrays["recon_db"].shape == (1, 4, tiny_cfg.n_mels, frames)
    assert r.arrays["recon_audio"].shape == (1, 4, tiny_cfg.hop_length * (frames - 1))
    assert r.arrays["prior_db"].shape == (4, tiny_cfg.n_mels, frames) and r.arrays["linear_audio"].shape[0] == 5
    assert f["interpolation_t"] == [0.0, 0.25, 0.5, 0.75, 1.0] and f["interpolation_from"] != f["interpolation_to"]


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
        changed = dataclasses.replace(tiny_cfg, n_audio_examples=0)
        assert results.result_key(evaluation.EvaluationResult, changed, upstream) != key
        with pytest.raises(AssertionError, match="recomputed"):
            evaluation.result(changed)
    none = evaluation.result(changed)
    assert none.findings["example_notes"] == [] and none.arrays["recon_db"].shape[0] == 0
    assert none.findings["VAE_lsd_db"] == tiny_result.findings["VAE_lsd_db"]
