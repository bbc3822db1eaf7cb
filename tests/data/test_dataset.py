"""Tests of vaetone.data.dataset: NSynth's three official folders, one folder re-split, lazy audio, sample groups."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from vaetone import config, store
from vaetone.data import dataset as datasets
from vaetone.data import nsynth, wav
from vaetone.errors import DataError
from vaetone.spectral.features import load_features

from .nsynth_folders import add_note, instruments, official, write_folder


@pytest.fixture
def root(isolated_store):
    """NSynth's layout (4, 2 and 2 instruments x 2 pitches x 2 velocities) with a few broken notes."""
    root = official(isolated_store / "nsynth")
    add_note(root / "nsynth-train", "guitar_acoustic_000", 72, 127, "nan")
    add_note(root / "nsynth-train", "flute_acoustic_001", 72, 127, "truncated")
    add_note(root / "nsynth-test", "reed_acoustic_006", 72, 127, "rate")
    return root


def _cfg(root, **params):
    params = {"velocities": [25, 127], "n_mels": 16, **params}
    return config.make(dataset="nsynth", nsynth_path=str(root), **params)


def test_the_three_official_folders_are_the_splits(root):
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    ds = datasets.dataset(_cfg(root))
    assert ds.path == root and len(ds) == 32 and ds.audio.shape == (32, 64000)
    by_split = ds.meta.groupby("split")["instrument_str"].agg(["size", "nunique"])
    assert by_split.to_dict("index") == {
        "train": {"size": 16, "nunique": 4},
        "valid": {"size": 8, "nunique": 2},
        "test": {"size": 8, "nunique": 2},
    }
    train = json.loads((root / "nsynth-train" / "examples.json").read_text())
    assert set(ds.meta.index[ds.rows("train")]) == set(train) - {
        "guitar_acoustic_000-072-127",
        "flute_acoustic_001-072-127",
    }
    assert list(ds.meta.index) == sorted(ds.meta.index)
    reasons = {s["note"]: (s["folder"], s["reason"]) for s in ds.skipped}
    assert set(reasons) == {"guitar_acoustic_000-072-127", "flute_acoustic_001-072-127", "reed_acoustic_006-072-127"}
    assert (
        reasons["guitar_acoustic_000-072-127"][0] == "nsynth-train"
        and "NaN" in reasons["guitar_acoustic_000-072-127"][1]
    )
    assert "truncated" in reasons["flute_acoustic_001-072-127"][1]
    assert reasons["reed_acoustic_006-072-127"] == (
        "nsynth-test",
        "sample rate 44100 Hz, expected 16000 Hz (pass resample=True to resample)",
    )
    pd.testing.assert_frame_equal(load_features(_cfg(root)).meta, ds.meta)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before  # the user's folders are never written to
    assert len(list((store.data_dir() / "manifests").glob("nsynth-*.json"))) == 3  # one manifest per folder


def test_the_audio_is_read_from_the_wavs_when_indexed(root, monkeypatch):
    ds = datasets.dataset(_cfg(root))
    rows = np.array([5, 0, 31])
    audio = ds.audio[rows]
    assert audio.shape == (3, 64000) and audio.dtype == np.float32
    for row, y in zip(rows, audio):
        folder = root / f"nsynth-{ds.meta['split'].iloc[row]}"
        expected, _ = sf.read(folder / "audio" / f"{ds.meta.index[row]}.wav", dtype="float32")
        np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(ds.audio[5], audio[0])
    np.testing.assert_array_equal(ds.audio[[5, 0]], audio[:2])
    np.testing.assert_array_equal(ds.audio[30:], ds.audio[[30, 31]])
    assert len(ds.audio) == 32 and len(ds.audio[ds.meta["split"].to_numpy() == "valid"]) == 8

    calls = []
    monkeypatch.setattr(wav, "_decode_file", lambda *a: calls.append(a) or (None, "read"))
    monkeypatch.setattr(wav, "_pcm16_mono", lambda *a: calls.append(a))
    again = datasets.dataset(_cfg(root))  # prepared: no wav is read
    assert calls == [] and again.skipped == ds.skipped and again.digest == ds.digest


def test_a_wav_broken_after_the_preparation_is_reported_when_read(root):
    ds = datasets.dataset(_cfg(root))
    name = ds.meta.index[0]
    (root / f"nsynth-{ds.meta['split'].iloc[0]}" / "audio" / f"{name}.wav").unlink()
    with pytest.raises(DataError, match=f"note {name} of .* no longer reads .*audio file missing"):
        ds.audio[0]


def test_a_root_with_some_official_folders_missing_names_them(isolated_store):
    root = official(isolated_store / "nsynth", counts=(("train", 2), ("test", 1)))
    with pytest.raises(DataError) as err:
        datasets.dataset(_cfg(root))
    message = str(err.value)
    assert "nsynth-train/, nsynth-test/ but not nsynth-valid/" in message
    assert "download" in message and f"nsynth_path {root / 'nsynth-train'}" in message


def test_an_instrument_in_two_official_folders_is_refused(root):
    add_note(root / "nsynth-test", "guitar_acoustic_000", 48, 25)
    with pytest.raises(DataError, match=r"instruments of .* in more than one .*guitar_acoustic_000 in nsynth-t"):
        datasets.dataset(_cfg(root))


def test_one_folder_alone_is_split_by_instrument(root):
    ds = datasets.dataset(_cfg(root / "nsynth-train"))
    assert ds.path == root / "nsynth-train" and len(ds) == 16
    assert (ds.meta.groupby("instrument_str")["split"].nunique() == 1).all()
    assert set(ds.meta["split"]) == {"train", "valid", "test"}
    assert {s["folder"] for s in ds.skipped} == {"nsynth-train"} and len(ds.skipped) == 2


def test_filters_and_max_instruments_apply_to_every_official_folder(isolated_store):
    root = official(isolated_store / "nsynth", counts=(("train", 8), ("valid", 4), ("test", 4)))
    ds = datasets.dataset(_cfg(root, max_instruments=8, pitch_max=50, velocities=[127]))
    per_split = ds.meta.groupby("split")["instrument_str"].nunique().to_dict()
    assert per_split == {"train": 4, "valid": 2, "test": 2}  # in proportion to 8, 4 and 4 instruments
    assert set(ds.meta["pitch"]) == {48} and set(ds.meta["velocity"]) == {127}


def test_sample_groups_go_to_one_split_together(isolated_store):
    folder = write_folder(isolated_store / "corpus", instruments(12), pitches=(60,), velocities=(100,))
    examples = json.loads((folder / "examples.json").read_text())
    for entry in examples.values():  # instruments 0-5 share samples pairwise, 6-11 stand alone
        i = entry["instrument"]
        entry.update(soundfont="Font.sf2", program=i, sample_group=f"Font/{i // 2 if i < 6 else i}")
    (folder / "examples.json").write_text(json.dumps(examples))
    ds = datasets.dataset(_cfg(folder, velocities=[100]))
    assert {"soundfont", "program", "sample_group"} <= set(ds.meta.columns)
    assert (ds.meta.groupby("sample_group")["split"].nunique() == 1).all()
    assert ds.meta.loc["guitar_acoustic_000-060-100", "sample_group"] == "Font/0"


def test_meta_keeps_the_nsynth_fields_in_order(root):
    meta = datasets.dataset(_cfg(root)).meta
    assert list(meta.columns) == [*nsynth.FIELDS, "split"] and meta["pitch"].dtype == np.int64
