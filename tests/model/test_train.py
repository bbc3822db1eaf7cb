"""Tests of vaetone.train: learning, determinism, resume, checkpoint errors, divergence, latents."""

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config, devices, store
from vaetone.errors import CheckpointError, ConfigError, DataError, TrainingError
from vaetone.model import checkpoints, vae
from vaetone.model import runs as model_runs
from vaetone.model import train as training

N_MELS, N_FRAMES = 16, 32


@dataclasses.dataclass
class FakeFeatures:
    """The part of vaetone.spectral.features.Features that training uses, on a tiny synthetic set.

    ``data`` is already in model units, so ``normalise`` is the identity and ``logmel`` its rows.
    """

    meta: pd.DataFrame
    data: torch.Tensor

    @property
    def logmel(self):
        return self.data[:, 0]

    def rows(self, split=None):
        if split is None:
            return np.arange(len(self.meta))
        return np.flatnonzero((self.meta["split"] == split).to_numpy())

    def normalise(self, db):
        return db

    def x(self, split=None):
        return self.data[torch.as_tensor(self.rows(split))]


def synthetic_features(n_train=96, n_valid=32, n_test=16, seed=0) -> FakeFeatures:
    """Notes with a pitch-dependent harmonic pattern and a decay, standardised; splits interleaved."""
    g = torch.Generator().manual_seed(seed)
    n = n_train + n_valid + n_test
    pitch = torch.randint(1, 6, (n,), generator=g).float()
    decay = 4 + 12 * torch.rand(n, generator=g)
    level = torch.rand(n, generator=g)
    m = torch.arange(N_MELS).float()[None, :, None]
    t = torch.arange(N_FRAMES).float()[None, None, :]
    harm = sum(torch.exp(-0.5 * (m - h * pitch[:, None, None]) ** 2) / h for h in (1, 2, 3))
    x = level[:, None, None] + harm * torch.exp(-t / decay[:, None, None])
    x = x + 0.05 * torch.randn(x.shape, generator=g)
    x = ((x - x.mean()) / x.std())[:, None]
    split = np.array(["train"] * n_train + ["valid"] * n_valid + ["test"] * n_test)
    split = split[np.random.default_rng(seed).permutation(n)]
    families = np.array(["brass", "flute", "reed", "string"])[np.arange(n) % 4]
    meta = pd.DataFrame(
        {
            "split": split,
            "instrument_str": [f"{f}_{s}" for f, s in zip(families, split)],
            "instrument_family_str": families,
            "pitch": pitch.int().numpy(),
            "velocity": 100,
        },
        index=pd.Index([f"note_{i:03d}" for i in range(n)], name="note_str"),
    )
    return FakeFeatures(meta, x)


def tiny(**params) -> config.Config:
    base = dict(
        dataset="synthetic",
        channels=[4, 8],
        latent_dim=4,
        epochs=4,
        batch_size=16,
        lr=1e-2,
        kl_warmup_epochs=1,
        patience=0,
        device="cpu",
    )
    return config.make(**{**base, **params})


def _numbers(history: pd.DataFrame) -> pd.DataFrame:
    """The history without wall-clock columns."""
    return history.drop(columns=["seconds", "notes_per_s"])


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_loss_falls_and_files_are_written(runs, feats):
    run = model_runs.trained_model(tiny(), feats, progress=False)
    h = run.history
    assert list(h.index) == [1, 2, 3, 4]
    assert h["train_recon"].iloc[-1] < 0.6 * h["train_recon"].iloc[0]
    assert h["valid_recon"].iloc[-1] < 0.6 * h["valid_recon"].iloc[0]
    assert np.allclose(h["valid_total"], h["valid_recon"] + h["valid_kl"])
    kl_dims = h.filter(like="valid_kl_d")
    assert kl_dims.shape[1] == 4 and np.allclose(kl_dims.sum(1), h["valid_kl"], rtol=1e-5)
    assert h["kl_weight"].tolist() == [1.0] * 4 and h["lr"].iloc[0] == pytest.approx(1e-2)
    assert h["lr"].is_monotonic_decreasing and (h["notes_per_s"] > 0).all()
    assert not run.model.training and run.device == "cpu" and run.stop_reason == "completed"
    assert run.best_epoch == int(h["valid_total"].idxmin())
    for name in ("checkpoint.pt", "best.pt", "history.csv"):
        assert (run.path / name).exists()
    assert run.path == store.run_dir(tiny())
    summary = model_runs.run_summary(run)
    assert summary["epochs_trained"] == 4 and summary["best_epoch"] == run.best_epoch
    assert summary["valid_total"] == pytest.approx(h.loc[run.best_epoch, "valid_total"])
    assert summary["parameters"] == sum(p.numel() for p in run.model.parameters())
    on_disk = pd.read_csv(run.path / "history.csv", index_col="epoch")
    assert np.allclose(on_disk["valid_total"], h["valid_total"])
    assert not list(run.path.glob("*.tmp"))


def test_two_cpu_runs_with_one_seed_are_identical(runs, feats, monkeypatch):
    a = model_runs.trained_model(tiny(), feats, progress=False)
    monkeypatch.setenv("VAETONE_RUNS", str(runs.parent / "other"))
    b = model_runs.trained_model(tiny(), feats, progress=False)
    assert a.path != b.path
    pd.testing.assert_frame_equal(_numbers(a.history), _numbers(b.history))
    assert _same_weights(a.model, b.model)
    monkeypatch.setenv("VAETONE_RUNS", str(runs.parent / "third"))
    c = model_runs.trained_model(tiny(seed=1), feats, progress=False)
    assert not _same_weights(a.model, c.model)


def test_resume_after_interruption_gives_the_uninterrupted_result(runs, feats, monkeypatch):
    whole = model_runs.trained_model(tiny(), feats, progress=False)
    monkeypatch.setenv("VAETONE_RUNS", str(runs.parent / "interrupted"))

    def stop_after_two(epoch, row):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model_runs.trained_model(tiny(), feats, progress=False, callback=stop_after_two)
    ckpt = torch.load(store.run_dir(tiny()) / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and not ckpt["finished"]
    seen = []
    resumed = model_runs.trained_model(tiny(), feats, progress=False, callback=lambda e, r: seen.append(e))
    assert seen == [3, 4]
    pd.testing.assert_frame_equal(_numbers(whole.history), _numbers(resumed.history))
    assert _same_weights(whole.model, resumed.model)
    again = model_runs.trained_model(tiny(), feats, progress=False, callback=lambda e, r: seen.append(e))
    assert seen == [3, 4] and _same_weights(again.model, resumed.model)


def test_checkpoint_from_another_config_is_refused(runs, feats):
    run = model_runs.trained_model(tiny(), feats, progress=False)
    other = tiny(latent_dim=3)
    shutil.copy(run.path / "checkpoint.pt", store.run_dir(other) / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=r"another configuration: latent_dim=4 \(this configuration: 3\)"):
        model_runs.trained_model(other, feats, progress=False)


def test_checkpoint_from_another_code_version_is_refused(runs, feats, monkeypatch):
    run = model_runs.trained_model(tiny(), feats, progress=False)
    monkeypatch.setitem(store.CODE_VERSIONS, "train", 99)
    shutil.copy(run.path / "checkpoint.pt", store.run_dir(tiny()) / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="code versions"):
        model_runs.trained_model(tiny(), feats, progress=False)


def test_checkpoint_of_other_input_size_is_refused(runs, feats):
    model_runs.trained_model(tiny(), feats, progress=False)
    wide = FakeFeatures(feats.meta, torch.nn.functional.pad(feats.data, (0, 4)))
    with pytest.raises(CheckpointError, match="trained on inputs"):
        model_runs.trained_model(tiny(), wide, progress=False)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_checkpoint_is_refused(runs, feats, damage):
    run = model_runs.trained_model(tiny(epochs=1), feats, progress=False)
    path = run.path / "checkpoint.pt"
    blob = path.read_bytes()
    path.write_bytes(b"not a checkpoint" * 10 if damage == "garbage" else blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        model_runs.trained_model(tiny(epochs=1), feats, progress=False)


@pytest.mark.parametrize("damage", ["garbage", "missing", "stale"])
def test_a_damaged_best_pt_is_rebuilt_from_the_checkpoint(runs, feats, damage):
    cfg = tiny(epochs=2)
    run = model_runs.trained_model(cfg, feats, progress=False)
    path = run.path / "best.pt"
    if damage == "garbage":
        path.write_bytes(b"not a checkpoint")
    elif damage == "missing":
        path.unlink()
    else:
        checkpoints.save(path, {**torch.load(path, weights_only=True), "epoch": 99})
    again = model_runs.trained_model(cfg, feats, progress=False)
    assert again.best_epoch == run.best_epoch
    assert all(torch.equal(v, again.model.state_dict()[k]) for k, v in run.model.state_dict().items())
    assert torch.load(path, weights_only=True)["epoch"] == run.best_epoch


def test_without_best_weights_anywhere_the_message_names_both_files(runs, feats):
    cfg = tiny(epochs=1)
    run = model_runs.trained_model(cfg, feats, progress=False)
    ckpt = torch.load(run.path / "checkpoint.pt", weights_only=True)
    checkpoints.save(run.path / "checkpoint.pt", {**ckpt, "best_model": None})
    (run.path / "best.pt").unlink()
    with pytest.raises(CheckpointError, match="delete both files to retrain this run"):
        model_runs.trained_model(cfg, feats, progress=False)


def test_a_split_too_small_for_the_later_stages_fails_before_any_training(runs):
    tiny_valid = synthetic_features(n_train=96, n_valid=32, n_test=1)
    with pytest.raises(DataError, match="the test split of .* has 1 notes of 1 instruments; .* at least 2 notes"):
        model_runs.trained_model(tiny(), tiny_valid, progress=False)
    assert not (store.run_dir(tiny()) / "checkpoint.pt").exists()


def test_a_diverging_run_stops_with_a_training_error_and_is_never_cached_as_finished(runs, feats):
    cfg = tiny(lr=10.0, grad_clip=0.0)
    with pytest.raises(TrainingError, match=r"training diverged: the validation loss of epoch \d+ .*\(lr=10\)"):
        model_runs.trained_model(cfg, feats, progress=False)
    path = store.run_dir(cfg) / "checkpoint.pt"
    if path.exists():  # earlier epochs may be saved, but never as finished
        ckpt = checkpoints.read_checkpoint(path, cfg, (N_MELS, N_FRAMES))
        assert not ckpt["finished"] and ckpt["initial_valid"] > 0
    with pytest.raises(TrainingError):  # a rerun does not find a finished run either
        model_runs.trained_model(cfg, feats, progress=False)


def test_the_divergence_bound_comes_from_the_untrained_loss(runs, feats):
    cfg = tiny(epochs=1)
    model_runs.trained_model(cfg, feats, progress=False)
    ckpt = checkpoints.read_checkpoint(store.run_dir(cfg) / "checkpoint.pt", cfg, (N_MELS, N_FRAMES))
    trainer = training.Trainer(cfg, (N_MELS, N_FRAMES), torch.device("cpu"))
    trainer.initial_valid = ckpt["initial_valid"]
    trainer.check_divergence({"valid_total": training.DIVERGENCE_FACTOR * ckpt["initial_valid"]})  # at the bound: fine
    with pytest.raises(TrainingError, match="more than 3 times the untrained model's"):
        trainer.check_divergence({"valid_total": training.DIVERGENCE_FACTOR * ckpt["initial_valid"] * 1.01})


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(runs, feats, monkeypatch):
    poisoned = {"on": False}
    real = vae.loss_terms

    def loss_terms(*args, **kwargs):
        terms = real(*args, **kwargs)
        if poisoned["on"]:
            terms = {k: v * float("nan") for k, v in terms.items()}
        return terms

    monkeypatch.setattr(training, "loss_terms", loss_terms)
    cfg = tiny()
    with pytest.raises(TrainingError, match=r"epoch 3.*last good checkpoint \(epoch 2\)"):
        model_runs.trained_model(cfg, feats, progress=False, callback=lambda e, r: poisoned.__setitem__("on", e == 2))
    ckpt = checkpoints.read_checkpoint(store.run_dir(cfg) / "checkpoint.pt", cfg, (N_MELS, N_FRAMES))
    assert ckpt["epoch"] == 2 and len(ckpt["history"]) == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    poisoned["on"] = False
    run = model_runs.trained_model(cfg, feats, progress=False)
    assert list(run.history.index) == [1, 2, 3, 4]


def test_early_stopping_keeps_the_best_weights(runs, feats, monkeypatch):
    real = training.Trainer.evaluate

    def worse_after_two(self, x):
        row = real(self, x)
        if self.epoch >= 2:
            row["valid_total"] = 2 * self.initial_valid + self.epoch  # worse, yet within the divergence bound
        return row

    monkeypatch.setattr(training.Trainer, "evaluate", worse_after_two)
    run = model_runs.trained_model(tiny(epochs=10, patience=2), feats, progress=False)
    assert list(run.history.index) == [1, 2, 3, 4] and run.best_epoch == 2
    assert run.stop_reason.startswith("early stopping")
    best = torch.load(run.path / "best.pt", weights_only=True)
    assert best["epoch"] == 2
    assert all(torch.equal(best["model"][k], v) for k, v in run.model.state_dict().items())


def test_latents_of_every_note_in_meta_order(runs, feats):
    cfg = tiny(epochs=2)
    run = model_runs.trained_model(cfg, feats, progress=False)
    lat = model_runs.latents(cfg, run, feats)
    assert lat.mu.shape == lat.std.shape == (len(feats.meta), 4) and lat.mu.dtype == np.float32
    mu, logvar = run.encode(feats.data)
    assert np.allclose(lat.mu, mu.numpy(), atol=1e-6)
    assert np.allclose(lat.std, np.exp(0.5 * logvar.numpy()), atol=1e-6) and (lat.std > 0).all()
    test = lat.split("test")
    assert len(test.mu) == 16 and (test.meta["split"] == "test").all()
    assert np.allclose(test.mu, run.encode(feats.x("test"))[0].numpy(), atol=1e-6)
    cached = model_runs.latents(cfg, run, feats)
    assert (run.path / "latents.npz").exists() and np.array_equal(cached.mu, lat.mu)


def test_latents_load_features_lazily(runs, feats, monkeypatch):
    cfg = tiny(epochs=1)
    import vaetone.spectral.features as spectral_features

    monkeypatch.setattr(spectral_features, "load_features", lambda c: feats)
    lat = model_runs.latents(cfg)
    assert lat.mu.shape == (len(feats.meta), 4)


def test_autoencoder_baseline_is_deterministic(runs, feats):
    cfg = tiny(epochs=2)
    ae = model_runs.autoencoder(cfg, feats, progress=False)
    assert ae.cfg.beta == 0 and ae.model.deterministic and "-b0-" in ae.path.name
    lat = model_runs.latents(ae.cfg, ae, feats)
    assert (lat.std == 0).all()
    x = feats.x("test")
    ae.model.train()
    with torch.no_grad():
        assert torch.equal(ae.model(x)[0], ae.model(x)[0])


def test_device_choice():
    assert devices.resolve_device(tiny(device="cpu")).type == "cpu"
    assert devices.resolve_device(tiny(device="auto")).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            devices.resolve_device(tiny(device="cuda"))


def test_training_restores_global_determinism_flag(runs, feats):
    assert not torch.are_deterministic_algorithms_enabled()
    model_runs.trained_model(tiny(epochs=1), feats, progress=False)
    assert not torch.are_deterministic_algorithms_enabled()


def test_nan_in_the_features_fails_in_the_first_epoch_without_a_checkpoint(runs, feats):
    bad = FakeFeatures(feats.meta, feats.data.clone())
    bad.data[int(np.flatnonzero(feats.meta["split"] == "train")[3]), 0, 2, 2] = float("nan")
    with pytest.raises(TrainingError, match="No epoch finished"):
        model_runs.trained_model(tiny(), bad, progress=False)
    assert not (store.run_dir(tiny()) / "checkpoint.pt").exists()


def test_new_best_weights_drop_the_cached_latents_and_runs_know_their_training_device(runs, feats):
    cfg = tiny(epochs=2)
    run = model_runs.trained_model(cfg, feats, progress=False)
    assert run.trained_on == "cpu" and model_runs.run_summary(run)["device"] == "cpu"
    model_runs.latents(cfg, run, feats)
    assert (run.path / checkpoints.LATENTS).exists()
    resumed = dataclasses.replace(cfg, epochs=3)  # another run folder, same data
    trainer = training.Trainer(resumed, (N_MELS, N_FRAMES), torch.device("cpu"))
    trainer.best_state = run.model.state_dict()
    shutil.copy(run.path / checkpoints.LATENTS, store.run_dir(resumed) / checkpoints.LATENTS)
    trainer.save(store.run_dir(resumed), improved=True)
    assert not (store.run_dir(resumed) / checkpoints.LATENTS).exists()


@dataclasses.dataclass
class RecordedFeatures(FakeFeatures):
    """FakeFeatures that say what they were made from, as vaetone's Features do."""

    digest: str = "a" * 64
    mean: float = -40.0
    std: float = 10.0


def test_a_finished_run_whose_features_changed_is_refused_with_what_to_delete(runs, feats):
    cfg = tiny(epochs=1)
    recorded = RecordedFeatures(feats.meta, feats.data)
    run = model_runs.trained_model(cfg, recorded, progress=False)
    assert torch.load(run.path / "best.pt", weights_only=True)["inputs"] == {
        "dataset_digest": "a" * 64,
        "mean": -40.0,
        "std": 10.0,
    }
    assert model_runs.trained_model(cfg, recorded, progress=False).best_epoch == run.best_epoch  # same inputs: reused
    other = dataclasses.replace(recorded, digest="b" * 64)
    folder = run.path
    with pytest.raises(CheckpointError) as err:
        model_runs.trained_model(cfg, other, progress=False)
    message = str(err.value)
    assert "dataset digest aaaaaaaaaaaa → bbbbbbbbbbbb" in message and "normalisation" not in message
    assert f"delete {folder / 'checkpoint.pt'} and {folder / 'best.pt'}" in message
    renormalised = dataclasses.replace(recorded, mean=-38.5)
    with pytest.raises(CheckpointError, match=r"normalisation mean -40 dB, std 10 dB → mean -38.5 dB, std 10 dB"):
        model_runs.trained_model(cfg, renormalised, progress=False)
    (folder / "checkpoint.pt").unlink()
    (folder / "best.pt").unlink()
    retrained = model_runs.trained_model(cfg, other, progress=False)
    assert torch.load(retrained.path / "checkpoint.pt", weights_only=True)["inputs"]["dataset_digest"] == "b" * 64


def test_a_resumed_run_on_changed_features_is_refused_and_an_old_checkpoint_without_the_record_is_accepted(
    runs, feats, monkeypatch
):
    cfg = tiny(epochs=2)
    plain = model_runs.trained_model(cfg, feats, progress=False)  # no record: as an older version wrote it
    assert torch.load(plain.path / "checkpoint.pt", weights_only=True)["inputs"] is None
    again = model_runs.trained_model(cfg, RecordedFeatures(feats.meta, feats.data), progress=False)
    assert _same_weights(again.model, plain.model)
    ckpt = torch.load(plain.path / "checkpoint.pt", weights_only=True)
    inputs = {"dataset_digest": "a" * 64, "mean": -40.0, "std": 10.0}
    checkpoints.save(plain.path / "checkpoint.pt", {**ckpt, "inputs": inputs, "finished": False, "epoch": 1})
    with pytest.raises(CheckpointError, match="dataset digest aaaaaaaaaaaa → cccccccccccc"):
        model_runs.trained_model(cfg, RecordedFeatures(feats.meta, feats.data, digest="c" * 64), progress=False)
