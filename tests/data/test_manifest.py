"""Tests of vaetone.data.manifest and of damaged rendered folders: missing wavs, edited examples.json."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pandas as pd
import soundfile as sf

from vaetone.data import dataset as datasets
from vaetone.data import manifest

SR = 16000


def _wav(path, freq: float, amp: float = 0.3) -> None:
    """A 4-s 16-bit sine."""
    t = np.arange(4 * SR) / SR
    sf.write(path, (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR, subtype="PCM_16")


def test_the_digest_follows_content_not_mtimes_and_only_changed_files_are_hashed(tmp_path, monkeypatch):
    (tmp_path / "audio").mkdir()
    entries = {f"n{i}": {"note_str": f"n{i}", "pitch": 60 + i} for i in range(3)}
    for i in range(3):
        _wav(tmp_path / "audio" / f"n{i}.wav", 220 * (i + 1))
    (tmp_path / "examples.json").write_text(json.dumps(entries))
    first = manifest.build(tmp_path, entries, list(entries))
    assert set(first["notes"]) == {"n0", "n1", "n2"} and first["notes"]["n0"]["size"] > 4 * SR * 2
    assert first["notes"]["n1"]["sha256"] == manifest.file_sha256(tmp_path / "audio" / "n1.wav")

    wav = tmp_path / "audio" / "n1.wav"
    st = wav.stat()
    os.utime(wav, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same bytes
    hashed = []
    real = manifest.file_sha256
    monkeypatch.setattr(manifest, "file_sha256", lambda p: hashed.append(p.name) or real(p))
    touched = manifest.build(tmp_path, entries, list(entries), previous=first)
    assert sorted(hashed) == ["examples.json", "n1.wav"]  # only the wav whose mtime moved
    assert touched["digest"] == first["digest"]

    _wav(wav, 330)  # same size, other bytes
    os.utime(wav, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old mtime, verify=True notices
    assert manifest.build(tmp_path, entries, list(entries), previous=first)["digest"] == first["digest"]
    verified = manifest.build(tmp_path, entries, list(entries), previous=first, verify=True)
    assert verified["digest"] != first["digest"]
    assert manifest.damage(first, verified)["changed"] == ["n1"]

    wav.unlink()
    gone = manifest.build(tmp_path, entries, list(entries), previous=first)
    missing = {"size": None, "mtime_ns": None, "sha256": None}
    assert gone["notes"]["n1"] == {"entry": first["notes"]["n1"]["entry"], **missing}
    assert manifest.damage(first, gone)["missing"] == ["n1"]
    assert manifest.describe(manifest.damage(first, gone)) == "1 wav files missing (e.g. n1)"


def test_a_rendered_folder_with_half_its_wavs_deleted_is_rendered_again(isolated_store, tiny_cfg, caplog):
    original = datasets.dataset(tiny_cfg)
    folder = original.path
    assert (folder / manifest.MANIFEST).is_file() and len(original) == 132 and not original.skipped
    wavs = sorted((folder / "audio").glob("*.wav"))
    for wav in wavs[::2]:
        wav.unlink()
    again = datasets.dataset(tiny_cfg)
    assert "is damaged (66 wav files missing" in caplog.text and "rendering it again" in caplog.text
    assert len(again) == 132 and again.skipped == original.skipped
    np.testing.assert_array_equal(again.audio[:], original.audio[:])
    pd.testing.assert_frame_equal(again.meta, original.meta)
    assert again.digest == original.digest
    assert sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(".")) == []  # no temporaries left
    assert datasets.folder_damage(folder, verify=True) is None


def test_an_edited_examples_json_is_rendered_again(isolated_store, tiny_cfg, caplog):
    original = datasets.dataset(tiny_cfg)
    file = original.path / "examples.json"
    examples = json.loads(file.read_text())
    name = original.meta.index[0]
    examples[name]["instrument_family_str"] = "vocal"
    file.write_text(json.dumps(examples))
    again = datasets.dataset(tiny_cfg)
    assert "examples.json edited" in caplog.text
    assert again.meta.loc[name, "instrument_family_str"] == original.meta.loc[name, "instrument_family_str"] != "vocal"
    pd.testing.assert_frame_equal(again.meta, original.meta)
    np.testing.assert_array_equal(again.audio[:], original.audio[:])


def test_a_folder_without_a_manifest_is_rendered_again_and_then_reused(isolated_store, tiny_cfg, caplog):
    original = datasets.dataset(tiny_cfg)
    (original.path / manifest.MANIFEST).unlink()
    again = datasets.dataset(tiny_cfg)
    assert "no readable manifest.json" in caplog.text
    np.testing.assert_array_equal(again.audio[:], original.audio[:])
    caplog.clear()
    caplog.set_level(logging.INFO, logger="vaetone.data.dataset")
    datasets.dataset(tiny_cfg)
    assert "damaged" not in caplog.text and "reusing rendered dataset" in caplog.text
