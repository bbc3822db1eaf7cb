"""Tests of vaetone.spectral: log-mel, the way back to audio, and the features on their memory map."""

import dataclasses
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import torchaudio

from vaetone import config, devices, store
from vaetone.data import dataset as datasets
from vaetone.errors import ConfigError, DataError
from vaetone.spectral import chunks, descriptors, inversion, melspec
from vaetone.spectral import features as spectral_features
from vaetone.spectral.cache import cache_path
from vaetone.spectral.features import Features, LogmelArray

from ..data.nsynth_folders import instruments, official, write_folder

SR = 16000
T = np.arange(64000) / SR
CFG = config.make(device="cpu")


def sine(f, amp=0.5):
    return (amp * np.sin(2 * np.pi * f * T)).astype(np.float32)


def harmonic(f0, n=8, amp=0.4):
    y = sum(0.7**h * np.sin(2 * np.pi * f0 * (h + 1) * T) for h in range(n))
    return (amp * y / np.abs(y).max()).astype(np.float32)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAETONE_DATA", str(tmp_path))
    return tmp_path


@pytest.fixture
def folder(isolated_store):
    """An NSynth-format folder: 10 instruments of 4 families x 2 pitches, velocity 100 (20 notes)."""
    return write_folder(isolated_store / "nsynth-mini", instruments(10), pitches=(48, 60), velocities=(100,))


def _cfg(folder: Path, **params) -> config.Config:
    params = {"velocities": [100], "n_mels": 16, "device": "cpu", **params}
    return config.make(dataset="nsynth", nsynth_path=str(folder), **params)


@pytest.fixture
def chunks_read(monkeypatch):
    """Count the chunks the preparation reads (in this process: workers=1)."""
    calls = []
    real = chunks.read_chunk
    monkeypatch.setattr(chunks, "read_chunk", lambda task: calls.append(task.index) or real(task))
    return calls


# ----------------------------------------------------------------------------- log-mel


def test_log_mel_shape_with_defaults_is_64_by_126():
    x = melspec.log_mel(np.stack([sine(440), sine(880)]), CFG)
    assert x.shape == (2, 64, 126) and x.dtype == torch.float32
    assert melspec.n_frames(CFG) == 126
    assert melspec.log_mel(sine(440), CFG).shape == (1, 64, 126)


def test_log_mel_is_torchaudio_mel_spectrogram_in_db():
    y = np.stack([harmonic(110), sine(3000, 0.01)])
    mel = torchaudio.transforms.MelSpectrogram(
        SR, n_fft=CFG.n_fft, hop_length=CFG.hop_length, f_min=CFG.f_min, f_max=CFG.f_max, n_mels=CFG.n_mels
    )
    expected = 10 * torch.log10(mel(torch.tensor(y)).clamp_min(CFG.log_floor))
    assert torch.allclose(melspec.log_mel(y, CFG), expected, atol=1e-3)


@pytest.mark.parametrize("band", [5, 20, 40, 60])
def test_log_mel_of_a_sine_peaks_at_the_band_of_its_frequency(band):
    f = melspec.mel_frequencies(CFG)[band]
    x = melspec.log_mel(sine(f), CFG)[0]
    assert int(x[:, 5:-5].mean(1).argmax()) == band


def test_log_mel_of_silence_is_the_floor_and_batches_do_not_matter():
    x = melspec.log_mel(np.zeros((2, 64000), np.float32), CFG)
    assert torch.allclose(x, torch.full_like(x, -60.0))
    y = np.stack([sine(300), harmonic(110), sine(2000, 0.1)])
    assert torch.allclose(melspec.log_mel(y, CFG, batch_size=1), melspec.log_mel(y, CFG), atol=1e-4)


def test_log_mel_refuses_nan_and_bad_shapes():
    y = sine(440)
    y[10] = np.nan
    with pytest.raises(DataError, match="NaN"):
        melspec.log_mel(y, CFG)
    with pytest.raises(DataError, match="dimensions"):
        melspec.log_mel(np.zeros((1, 2, 3, 64000)), CFG)


def test_cuda_asked_for_but_absent_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.resolve_device(config.make(device="auto")).type == "cpu"
    with pytest.raises(ConfigError, match="cuda"):
        devices.resolve_device(config.make(device="cuda"))


# ----------------------------------------------------------------------------- the way back


def test_mel_inversion_without_nnls_is_torchaudio_inverse_mel_scale():
    power = 10 ** (melspec.log_mel(np.stack([harmonic(220), sine(1000)]), CFG) / 10)
    ours = inversion.mel_to_linear(power, CFG, n_nnls=0)
    theirs = torchaudio.transforms.InverseMelScale(
        CFG.n_fft // 2 + 1, CFG.n_mels, SR, CFG.f_min, CFG.f_max, driver="gelsd"
    )(power)
    assert torch.allclose(ours, theirs, atol=1e-4 * float(theirs.abs().max()))
    fb = melspec.mel_filterbank(CFG)
    misfit = lambda s: float(((fb.T @ s - power) ** 2).sum())  # noqa: E731
    assert misfit(inversion.mel_to_linear(power, CFG, n_nnls=30)) < 0.2 * misfit(ours)


@pytest.mark.parametrize("f0", [110.0, 220.0, 440.0])
def test_mel_to_audio_keeps_the_f0_of_a_harmonic_tone_and_is_deterministic(f0):
    db = melspec.log_mel(harmonic(f0), CFG)
    y1 = inversion.mel_to_audio(db, CFG, n_iter=32)
    y2 = inversion.mel_to_audio(db.unsqueeze(1), CFG, n_iter=32)  # (n, 1, n_mels, frames) too
    assert y1.shape == (1, 64000)
    assert torch.equal(y1, y2)
    f0_back = descriptors.descriptors(y1.numpy())["f0_hz"].iloc[0]
    assert abs(f0_back / f0 - 1) < 0.01
    loud = db > -30
    error = lambda y: float((melspec.log_mel(y, CFG) - db)[loud].abs().mean())  # noqa: E731 (dB)
    clipped_only = inversion.mel_to_audio(db, CFG, n_iter=32, n_nnls=0)
    assert error(y1) < 9.0 and error(y1) < error(clipped_only) - 1.0


def test_mel_to_audio_fast_path_and_wrong_band_count():
    db = melspec.log_mel(np.stack([harmonic(220), harmonic(330)]), CFG)
    y = inversion.mel_to_audio(db, CFG, n_iter=8)
    assert y.shape == (2, 64000) and torch.isfinite(y).all()
    with pytest.raises(ConfigError, match="n_mels"):
        inversion.mel_to_audio(db, dataclasses.replace(CFG, n_mels=32))


# ----------------------------------------------------------------------------- cache and normalisation

FEATURE_CHANGES = {"n_fft": 2048, "hop_length": 256, "n_mels": 32, "f_min": 40.0, "f_max": 7000.0, "log_floor": 1e-8}


def test_cache_key_changes_with_each_feature_parameter_and_not_with_later_ones(data_dir):
    base = cache_path(CFG)
    assert base.parent == data_dir and base.name.startswith("features-")
    for name, value in FEATURE_CHANGES.items():
        assert cache_path(config.make(**{name: value})) != base, name
    assert cache_path(config.make(pitch_step=3)) != base  # data parameters count too
    for name, value in {"latent_dim": 4, "beta": 0.5, "epochs": 2, "seed": 7, "workers": 2}.items():
        assert cache_path(config.make(device="cpu", **{name: value})) == base, name


def test_features_are_computed_once_then_read_from_the_cache(folder, chunks_read):
    cfg = _cfg(folder)
    first = spectral_features.load_features(cfg)
    assert chunks_read == [0] and cache_path(cfg).is_dir()
    assert sorted(p.name for p in cache_path(cfg).iterdir()) == [
        "logmel.npy",
        "manifest.json",
        "meta.json",
    ]
    second = spectral_features.load_features(cfg)
    assert chunks_read == [0]
    assert torch.equal(first.logmel[:], second.logmel[:])
    assert (first.mean, first.std, first.digest) == (second.mean, second.std, second.digest)
    pd.testing.assert_frame_equal(second.meta, first.meta)
    assert (second.n_mels, second.n_frames) == (16, 126) and len(second.logmel) == 20
    spectral_features.load_features(cfg, refresh=True)
    assert chunks_read == [0, 0]


def test_memmap_features_are_the_log_mel_of_the_wavs_within_float16_precision(folder):
    cfg = _cfg(folder)
    feats, ds = spectral_features.load_features(cfg), datasets.dataset(cfg)
    assert isinstance(feats.logmel, LogmelArray) and isinstance(feats.logmel.array, np.memmap)
    assert feats.logmel.array.dtype == np.float16 and feats.logmel.shape == (20, 16, 126)
    pd.testing.assert_frame_equal(feats.meta, ds.meta)
    exact = melspec.log_mel(ds.audio[:], cfg)
    got = feats.logmel[:]
    assert got.dtype == torch.float32 and got.shape == exact.shape
    assert ((got - exact).abs() <= exact.abs() * 2.0**-11 + 1e-6).all()  # float16 rounding, nothing more
    assert not torch.equal(got, exact)  # it is float16 on disk
    rows = np.array([3, 0, 5])
    assert torch.equal(feats.logmel[rows], got[rows]) and torch.equal(feats.logmel[rows.tolist()], got[rows])
    assert torch.equal(feats.logmel[torch.as_tensor(rows)], got[rows]) and torch.equal(feats.logmel[2:4], got[2:4])
    assert torch.equal(feats.logmel[7], got[7]) and torch.equal(feats.logmel[np.arange(20) % 3 == 0], got[::3])
    assert torch.equal(feats.logmel[rows, :, 5], got[rows, :, 5])
    assert feats.logmel[[]].shape == (0, 16, 126) and feats.logmel[np.array([], int)].shape == (0, 16, 126)
    travelled = pickle.dumps(feats.logmel)  # to DataLoader workers: the path, not the data
    assert len(travelled) < 1000 and torch.equal(pickle.loads(travelled)[:], got)


def test_a_corrupt_or_old_format_cache_is_recomputed_and_an_old_pt_file_ignored(folder, chunks_read, caplog):
    cfg = _cfg(folder)
    old = cache_path(cfg).with_suffix(".pt")  # the single-file cache of format 2
    old.parent.mkdir(parents=True)
    torch.save({"format": 2, "key": store.key("features", cfg), "logmel": torch.zeros(20, 16, 126)}, old)
    feats = spectral_features.load_features(cfg)
    assert chunks_read == [0] and old.is_file() and float(feats.logmel[:].abs().sum()) > 0
    manifest = cache_path(cfg) / "manifest.json"
    manifest.write_text("{not json")
    again = spectral_features.load_features(cfg)
    assert chunks_read == [0, 0] and "is unusable" in caplog.text
    assert torch.equal(again.logmel[:], feats.logmel[:])
    record = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**record, "format": 2}))
    spectral_features.load_features(cfg)
    assert chunks_read == [0, 0, 0] and "written by another version" in caplog.text


def test_normalisation_uses_the_train_split_only(folder):
    feats = spectral_features.load_features(_cfg(folder))
    train = feats.logmel[feats.rows("train")].double()
    assert feats.mean == pytest.approx(float(train.mean()), rel=1e-12)
    assert feats.std == pytest.approx(float(train.std()), rel=1e-12)
    assert abs(feats.mean - float(feats.logmel[:].double().mean())) > 0.1  # the other splits would change it
    x = feats.x("train")
    assert x.shape == (len(feats.rows("train")), 1, 16, 126) and x.dtype == torch.float32
    assert float(x.mean()) == pytest.approx(0, abs=1e-5) and float(x.std()) == pytest.approx(1, abs=1e-4)
    assert torch.allclose(feats.denormalise(feats.normalise(feats.logmel[:])), feats.logmel[:], atol=1e-4)
    with pytest.raises(ConfigError, match="no notes in split"):
        feats.x("holdout")


def test_features_built_from_an_in_memory_tensor_work_alike():
    meta = pd.DataFrame({"split": ["train", "train", "test"]}, index=["a", "b", "c"])
    logmel = torch.arange(3 * 2 * 4, dtype=torch.float32).reshape(3, 2, 4)
    feats = Features(meta, logmel, *spectral_features.train_statistics(logmel, meta))
    assert (feats.mean, feats.n_mels, feats.n_frames) == (7.5, 2, 4)
    assert torch.equal(feats.x("test")[0, 0], (logmel[2] - 7.5) / feats.std)
    assert torch.equal(feats.logmel[[2, 0]], logmel[[2, 0]])


def test_no_train_notes_is_a_clear_error(isolated_store):
    root = official(isolated_store / "nsynth", counts=(("train", 1), ("valid", 1), ("test", 1)))
    cfg = _cfg(root, velocities=[25], families=["flute", "reed"])  # the train folder holds a guitar only
    with pytest.raises(DataError, match="no notes in the train split"):
        spectral_features.load_features(cfg)
    assert not list((isolated_store / "data").glob("*features-*"))


def test_the_cache_is_keyed_so_another_n_mels_is_not_reused(folder, chunks_read):
    cfg = _cfg(folder)
    spectral_features.load_features(cfg)
    other = spectral_features.load_features(dataclasses.replace(cfg, n_mels=32))
    assert chunks_read == [0, 0] and other.n_mels == 32
    assert len(list(store.data_dir().glob("features-*"))) == 2
    assert store.key("features", cfg) in cache_path(cfg).name


def test_features_of_a_small_synthetic_dataset_round_trip_through_the_cache(data_dir):
    cfg = config.make(dataset="synthetic", synthetic_instruments=11, pitch_step=18, velocities=[75], device="cpu")
    ds = datasets.dataset(cfg)
    loaded = spectral_features.load_features(cfg)
    assert loaded.logmel.shape == (len(ds.meta), 64, 126)
    exact = melspec.log_mel(ds.audio[:], cfg)
    assert ((loaded.logmel[:] - exact).abs() <= exact.abs() * 2.0**-11 + 1e-6).all()
    pd.testing.assert_frame_equal(loaded.meta, ds.meta)
    assert set(loaded.meta["split"]) == {"train", "valid", "test"}
    assert sum(len(loaded.rows(s)) for s in ("train", "valid", "test")) == len(ds.meta)
    assert spectral_features.dataset_digest(cfg) == loaded.digest == ds.digest


def test_non_finite_spectrograms_are_refused_before_griffin_lim():
    db = torch.full((3, CFG.n_mels, 20), -30.0)
    db[1, 2, 3] = float("nan")
    db[2, 0, 0] = float("inf")
    with pytest.raises(DataError, match="2 non-finite values .* in 2 of its 3 spectrograms"):
        inversion.mel_to_audio(db, CFG, n_iter=1)


def test_features_of_an_nsynth_folder_are_recomputed_when_a_wav_changes_not_when_it_is_touched(
    folder, chunks_read, caplog
):
    cfg = _cfg(folder)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    first = spectral_features.load_features(cfg)
    assert first.digest == datasets.dataset(cfg).digest and len(first.digest) == 64 and chunks_read == [0]

    wav = folder / "audio" / f"{first.meta.index[3]}.wav"
    st = wav.stat()
    os.utime(wav, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: same bytes
    touched = spectral_features.load_features(cfg)
    assert chunks_read == [0] and torch.equal(touched.logmel[:], first.logmel[:]) and touched.digest == first.digest

    sf.write(wav, harmonic(1000.0), SR, subtype="PCM_16")  # other bytes, same size
    changed = spectral_features.load_features(cfg)
    assert chunks_read == [0, 0]
    assert "was made from other notes" in caplog.text and f"1 notes changed (e.g. {wav.stem})" in caplog.text
    assert changed.digest != first.digest and spectral_features.dataset_digest(cfg) == changed.digest
    assert not torch.equal(changed.logmel[3], first.logmel[3]) and torch.equal(changed.logmel[4:], first.logmel[4:])
    assert spectral_features.load_features(cfg).digest == changed.digest and chunks_read == [0, 0]
    assert {p for p in folder.rglob("*") if p.is_file()} == set(before)  # the user's folder is never written to
    assert all(p.read_bytes() == b for p, b in before.items() if p != wav)
