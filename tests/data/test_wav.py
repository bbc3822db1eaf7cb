"""Tests of vaetone.data.wav: the one-read decoder gives libsndfile's samples and reasons, and the wav's record."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from vaetone.data import manifest, wav

from .nsynth_folders import SR, N, tone


def _list_chunk_first(path) -> None:
    """Rewrite a wav with a LIST chunk (odd length, padded) between fmt and data, as some editors write them."""
    data = path.read_bytes()
    at = data.index(b"data")
    extra = b"LIST" + (5).to_bytes(4, "little") + b"INFOx" + b"\x00"
    body = data[12:at] + extra + data[at:]
    path.write_bytes(b"RIFF" + (4 + len(body)).to_bytes(4, "little") + b"WAVE" + body)


@pytest.mark.parametrize("layout", ["plain", "list_chunk"])
def test_a_16_bit_mono_wav_is_decoded_exactly_as_libsndfile_does_and_recorded(tmp_path, layout):
    path = tmp_path / "n.wav"
    sf.write(path, tone(60, 127) * 1.9, SR, subtype="PCM_16")  # loud: uses the full 16-bit range
    if layout == "list_chunk":
        _list_chunk_first(path)
    assert wav._pcm16_mono(path.read_bytes()) is not None  # the direct path, not the fallback
    y, reason, record = wav.read_note_file(path)
    expected, _ = sf.read(path, dtype="float32")
    assert reason is None and y.dtype == np.float32 and np.array_equal(y, expected)
    assert record == manifest.wav_record(path)
    assert np.array_equal(wav.read_note(path)[0], y)


@pytest.mark.parametrize(
    "kind, write, words",
    [
        ("float", lambda p, y: sf.write(p, y, SR, subtype="FLOAT"), None),
        ("rate", lambda p, y: sf.write(p, np.resize(y, 4 * 22050), 22050, subtype="PCM_16"), "22050 Hz"),
        ("stereo", lambda p, y: sf.write(p, np.stack([y, y], 1), SR, subtype="PCM_16"), "2 channels"),
        ("24 bit", lambda p, y: sf.write(p, y, SR, subtype="PCM_24"), None),
        ("short", lambda p, y: sf.write(p, y[: N // 2], SR, subtype="PCM_16"), "32000 samples"),
        ("silent", lambda p, y: sf.write(p, np.full(N, 1 / 32768), SR, subtype="PCM_16"), "silent (peak 3.1e-05"),
        (
            "truncated",
            lambda p, y: sf.write(p, y, SR, subtype="PCM_16") or p.write_bytes(p.read_bytes()[:5000]),
            "2478",
        ),
        ("junk", lambda p, y: p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk"), "corrupt"),
    ],
)
def test_other_files_give_the_samples_and_reasons_of_read_note(tmp_path, kind, write, words):
    path = tmp_path / "n.wav"
    write(path, tone(48, 100))
    y, reason, record = wav.read_note_file(path)
    y0, reason0 = wav.read_note(path)
    assert reason == reason0 and (words is None or words in reason) and (reason is None) == (words is None)
    assert (y is None and y0 is None) or np.array_equal(y, y0)
    assert record == manifest.wav_record(path)


def test_missing_files_and_folders_are_reasons_not_errors(tmp_path):
    (tmp_path / "dir.wav").mkdir()
    assert wav.read_note_file(tmp_path / "dir.wav")[1] == f"{tmp_path.name}/dir.wav is a folder, not a wav file"
    y, reason, record = wav.read_note_file(tmp_path / "gone.wav")
    assert y is None and reason == f"audio file missing: expected {tmp_path.name}/gone.wav"
    assert record == {"size": None, "mtime_ns": None, "sha256": None}
