"""Tests of vaetone.features: log-mel, the way back to audio, normalisation and the cache."""

import dataclasses
import json
import os
from dataclasses import dataclass, field
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
from vaetone.spectral import descriptors, inversion, melspec
from vaetone.spectral import features as spectral_features

SR = 16000
T = np.arange(64000) / SR
CFG = config.make(device="cpu")


def sine(f, amp=0.5):
    return (amp * np.sin(2 * np.pi * f * T)).astype(np.float32)


def harmonic(f0, n=8, amp=0.4):
    y = sum(0.7**h * np.sin(2 * np.pi * f0 * (h + 1) * T) for h in range(n))
    return (amp * y / np.abs(y).max()).astype(np.float32)


@dataclass
class FakeDataset:
    """What vaetone.data.dataset returns, with the NSynth-like columns the cache must keep."""

    meta: pd.DataFrame
    audio: np.ndarray
    sample_rate: int = SR
    path: Path = Path(".")
    skipped: list = field(default_factory=list)
    digest: str = "fake-digest"


def fake_dataset(amps=(0.1, 0.2, 0.4, 0.8, 0.05, 0.6), splits=("train", "train", "train", "valid", "test", "test")):
    names = [f"fake_{i:03d}-060-{100:03d}" for i in range(len(amps))]
    meta = pd.DataFrame(
        {
            "note_str": names,
            "instrument": np.arange(len(amps)),
            "pitch": np.full(len(amps), 60),
            "qualities": [[0, 1, 0]] * len(amps),
            "instrument_family_str": ["organ"] * len(amps),
            "factor_brightness": np.linspace(0.1, 0.9, len(amps)) / 3,
            "split": list(splits),
        },
        index=pd.Index(names, name="note_str"),
    )
    audio_ = np.stack([harmonic(220 * (1 + i / 7), amp=a) for i, a in enumerate(amps)])
    return FakeDataset(meta, audio_)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAETONE_DATA", str(tmp_path))
    return tmp_path


@pytest.fixture
def counted(monkeypatch):
    """Patch the dataset seam with a fake and count calls of it and of the extractor."""
    calls = {"dataset": 0, "log_mel": 0}
    ds = fake_dataset()
    real_log_mel = melspec.log_mel

    def dataset(cfg):
        calls["dataset"] += 1
        return ds

    def log_mel(*args, **kwargs):
        calls["log_mel"] += 1
        return real_log_mel(*args, **kwargs)

    monkeypatch.setattr(spectral_features, "_dataset", dataset)
    monkeypatch.setattr(spectral_features, "_current_manifest", lambda cfg: {"digest": ds.digest, "notes": {}})
    monkeypatch.setattr(melspec, "log_mel", log_mel)
    return calls, ds


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
    base = spectral_features.cache_path(CFG)
    assert base.parent == data_dir and base.name.startswith("features-")
    for name, value in FEATURE_CHANGES.items():
        assert spectral_features.cache_path(config.make(**{name: value})) != base, name
    assert spectral_features.cache_path(config.make(pitch_step=3)) != base  # data parameters count too
    for name, value in {"latent_dim": 4, "beta": 0.5, "epochs": 2, "seed": 7}.items():
        assert spectral_features.cache_path(config.make(device="cpu", **{name: value})) == base, name


def test_features_are_computed_once_then_read_from_the_cache(data_dir, counted):
    calls, ds = counted
    first = spectral_features.load_features(CFG)
    assert calls == {"dataset": 1, "log_mel": 1}
    assert spectral_features.cache_path(CFG).exists()
    second = spectral_features.load_features(CFG)
    assert calls == {"dataset": 1, "log_mel": 1}
    assert torch.equal(first.logmel, second.logmel)
    assert (first.mean, first.std) == (second.mean, second.std)
    pd.testing.assert_frame_equal(second.meta, ds.meta)
    assert (second.n_mels, second.n_frames) == (64, 126)
    spectral_features.load_features(CFG, refresh=True)
    assert calls["log_mel"] == 2


def test_a_crash_while_writing_leaves_no_file_and_no_temporary(data_dir, counted, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        spectral_features.load_features(CFG)
    assert list(data_dir.iterdir()) == []


def test_a_corrupt_cache_is_recomputed(data_dir, counted, caplog):
    calls, _ = counted
    path = spectral_features.cache_path(CFG)
    path.write_bytes(b"not a torch file")
    feats = spectral_features.load_features(CFG)
    assert calls["log_mel"] == 1 and "unusable" in caplog.text
    assert torch.equal(spectral_features.load_features(CFG).logmel, feats.logmel)
    assert calls["log_mel"] == 1


def test_normalisation_uses_the_train_split_only(data_dir, counted):
    calls, ds = counted
    feats = spectral_features.load_features(CFG)
    train = melspec.log_mel(ds.audio[:3], CFG).double()
    assert feats.mean == pytest.approx(float(train.mean()), abs=1e-9)
    assert feats.std == pytest.approx(float(train.std()), abs=1e-9)
    everything = feats.logmel.double()
    assert abs(feats.mean - float(everything.mean())) > 0.1  # the other splits would change it
    x = feats.x("train")
    assert x.shape == (3, 1, 64, 126)
    assert float(x.mean()) == pytest.approx(0, abs=1e-5) and float(x.std()) == pytest.approx(1, abs=1e-4)
    assert feats.x("test").shape == (2, 1, 64, 126) and list(feats.rows("valid")) == [3]
    assert torch.allclose(feats.denormalise(feats.normalise(feats.logmel)), feats.logmel, atol=1e-4)
    with pytest.raises(ConfigError, match="no notes in split"):
        feats.x("holdout")


def test_no_train_notes_is_a_clear_error(data_dir, monkeypatch):
    monkeypatch.setattr(spectral_features, "_dataset", lambda cfg: fake_dataset(splits=["test"] * 6))
    with pytest.raises(DataError, match="train split"):
        spectral_features.load_features(CFG)
    assert list(data_dir.iterdir()) == []


def test_the_cache_is_keyed_so_another_n_mels_is_not_reused(data_dir, counted):
    calls, _ = counted
    spectral_features.load_features(CFG)
    other = spectral_features.load_features(dataclasses.replace(CFG, n_mels=32))
    assert calls["log_mel"] == 2 and other.n_mels == 32
    assert len(list(data_dir.glob("features-*.pt"))) == 2
    assert store.key("features", CFG) in spectral_features.cache_path(CFG).name


def test_features_of_a_small_synthetic_dataset_round_trip_through_the_cache(data_dir):
    cfg = config.make(dataset="synthetic", synthetic_instruments=11, pitch_step=18, velocities=[75], device="cpu")
    ds = datasets.dataset(cfg)
    computed = spectral_features.load_features(cfg)
    loaded = spectral_features.load_features(cfg)
    assert loaded.logmel.shape == (len(ds.meta), 64, 126)
    assert torch.equal(loaded.logmel, melspec.log_mel(ds.audio, cfg))
    pd.testing.assert_frame_equal(loaded.meta, ds.meta)
    pd.testing.assert_frame_equal(computed.meta, ds.meta)
    assert set(loaded.meta["split"]) == {"train", "valid", "test"}
    assert sum(len(loaded.rows(s)) for s in ("train", "valid", "test")) == len(ds.meta)


def test_non_finite_spectrograms_are_refused_before_griffin_lim():
    db = torch.full((3, CFG.n_mels, 20), -30.0)
    db[1, 2, 3] = float("nan")
    db[2, 0, 0] = float("inf")
    with pytest.raises(DataError, match="2 non-finite values .* in 2 of its 3 spectrograms"):
        inversion.mel_to_audio(db, CFG, n_iter=1)


def _nsynth_folder(root: Path) -> Path:
    """A small NSynth-format folder: 10 instruments of two families x 2 pitches, velocity 100."""
    (root / "audio").mkdir(parents=True)
    entries = {}
    for i in range(10):
        family = ("guitar", "flute")[i % 2]
        for pitch in (48, 60):
            name = f"{family}_acoustic_{i:03d}-{pitch:03d}-100"
            entries[name] = {
                "note": i * 1000 + pitch,
                "note_str": name,
                "instrument": i,
                "instrument_str": f"{family}_acoustic_{i:03d}",
                "pitch": pitch,
                "velocity": 100,
                "sample_rate": SR,
                "qualities": [0] * 10,
                "qualities_str": [],
                "instrument_family": config.FAMILIES.index(family),
                "instrument_family_str": family,
                "instrument_source": 0,
                "instrument_source_str": "acoustic",
            }
            sf.write(root / "audio" / f"{name}.wav", harmonic(110 * (1 + i / 10) * pitch / 48), SR, subtype="PCM_16")
    (root / "examples.json").write_text(json.dumps(entries))
    return root


def test_features_of_an_nsynth_folder_are_recomputed_when_a_wav_changes_not_when_it_is_touched(
    isolated_store, monkeypatch, caplog
):
    folder = _nsynth_folder(isolated_store / "nsynth-mini")
    cfg = config.make(dataset="nsynth", nsynth_path=str(folder), velocities=[100], n_mels=16, device="cpu")
    calls = []
    real_log_mel = melspec.log_mel
    monkeypatch.setattr(melspec, "log_mel", lambda *a, **k: calls.append(1) or real_log_mel(*a, **k))
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    first = spectral_features.load_features(cfg)
    assert first.digest == datasets.dataset(cfg).digest and len(first.digest) == 64 and len(calls) == 1

    wav = folder / "audio" / f"{first.meta.index[3]}.wav"
    st = wav.stat()
    os.utime(wav, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: same bytes
    touched = spectral_features.load_features(cfg)
    assert len(calls) == 1 and torch.equal(touched.logmel, first.logmel) and touched.digest == first.digest

    sf.write(wav, harmonic(1000.0), SR, subtype="PCM_16")  # other bytes, same size
    changed = spectral_features.load_features(cfg)
    assert len(calls) == 2
    assert "was made from other notes" in caplog.text and f"1 notes changed (e.g. {wav.stem})" in caplog.text
    assert changed.digest != first.digest
    assert not torch.equal(changed.logmel[3], first.logmel[3]) and torch.equal(changed.logmel[4:], first.logmel[4:])
    assert spectral_features.load_features(cfg).digest == changed.digest and len(calls) == 2
    assert {p for p in folder.rglob("*") if p.is_file()} == set(before)  # the user's folder is never written to
    assert all(p.read_bytes() == b for p, b in before.items() if p != wav)
