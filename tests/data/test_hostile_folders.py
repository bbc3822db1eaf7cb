"""Hostile NSynth-format folders: data-check and the loader skip with a reason or refuse clearly, never a traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vaetone.data import nsynth, wav
from vaetone.errors import DataError

from .test_data import SR, _add, _folder, _tone


def _cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m vaetone ...`` as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(Path(nsynth.__file__).parents[2])}
    return subprocess.run([sys.executable, "-m", "vaetone", *args], capture_output=True, text=True, env=env)


def _reasons(report: dict) -> dict:
    return {s["note"]: s["reason"] for s in report["skipped"]}


def test_deeply_nested_examples_json_is_refused_clearly(tmp_path):
    folder = _folder(tmp_path / "f")
    (folder / "examples.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(DataError, match="nested too deeply"):
        nsynth.read_examples(folder)
    out = _cli("data-check", str(folder))
    assert out.returncode == 1 and "nested too deeply" in out.stderr and "Traceback" not in out.stderr


def test_an_oversized_examples_json_is_refused_before_reading(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "f")
    monkeypatch.setattr(nsynth, "MAX_EXAMPLES_BYTES", 100)
    with pytest.raises(DataError, match="MiB, more than"):
        nsynth.read_examples(folder)


def test_long_names_symlink_loops_and_folders_are_skipped_with_reasons(tmp_path):
    folder = _folder(tmp_path / "f")
    long_name = "guitar_acoustic_001-" + "x" * 300
    _add(folder, long_name)
    _add(folder, "loop_acoustic_003-060-100")
    os.symlink(folder / "audio" / "loop_acoustic_003-060-100.wav", folder / "audio" / "loop_acoustic_003-060-100.wav")
    _add(folder, "dir_acoustic_004-060-100")
    (folder / "audio" / "dir_acoustic_004-060-100.wav").mkdir()
    report = nsynth.data_check(folder)
    reasons = _reasons(report)
    assert report["loaded"] == 8
    assert "cannot open the audio file" in reasons[long_name] or "missing" in reasons[long_name]
    assert reasons["loop_acoustic_003-060-100"]
    assert reasons["dir_acoustic_004-060-100"] == "audio/dir_acoustic_004-060-100.wav is a folder, not a wav file"
    out = _cli("data-check", str(folder))
    assert out.returncode == 0 and "Traceback" not in out.stderr
    assert json.loads(out.stdout)["loaded"] == 8


def test_samples_outside_the_unit_range_are_skipped_or_scaled(tmp_path):
    folder = _folder(tmp_path / "f")
    loud = _tone(60, 127) / 0.5 * 50  # float wav peaking near 50
    _add(folder, "loud_acoustic_005-060-127", loud, subtype="FLOAT")
    reasons = _reasons(nsynth.data_check(folder))
    assert reasons["loud_acoustic_005-060-127"].startswith("samples outside [-1, 1] (peak 4")
    meta, audio, skipped = nsynth.load_split(folder, normalise=True)
    row = list(meta.index).index("loud_acoustic_005-060-127")
    assert not skipped and np.isclose(np.abs(audio[row]).max(), 1.0)
    out = _cli("data-check", "--normalise", str(folder))
    assert json.loads(out.stdout) == {"loaded": 9, "skipped": []}


def test_a_long_wav_is_refused_from_its_header_without_reading(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "f")
    sf.write(folder / "audio" / "long.wav", np.zeros(SR * 61, np.float32), SR)
    _add(folder, "long_acoustic_006-060-100")
    (folder / "audio" / "long.wav").rename(folder / "audio" / "long_acoustic_006-060-100.wav")

    def no_read(*args, **kwargs):
        raise AssertionError("the samples of a long file were read")

    monkeypatch.setattr(wav.sf.SoundFile, "read", no_read)
    reason = nsynth.read_note(folder / "audio" / "long_acoustic_006-060-100.wav")[1]
    assert reason == "61.0 s long, expected 4 s: refused from its header without reading it"
