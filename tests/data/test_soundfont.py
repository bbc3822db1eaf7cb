"""Tests of the SoundFont corpus source: chunked rendering, workers, the common gain, failing and missing fonts."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vaetone import config
from vaetone.data import fluid, soundfont
from vaetone.errors import ConfigError, DataError, DependencyError

SF2 = Path("/usr/share/sounds/sf2")
TIM, OPL = str(SF2 / "TimGM6mb.sf2"), str(SF2 / "OPL-3_FM_128M.sf2")
SMALL = dict(families=["bass"], pitch_min=48, pitch_max=60, pitch_step=12, velocities=[50, 127])


def _render(folder: Path, **params) -> tuple[dict, dict, dict]:
    """Build the corpus of ``params`` into ``folder``: (examples, report, {note: int16 samples})."""
    folder.mkdir(parents=True)
    soundfont.build(config.make(**params), folder)
    examples = json.loads((folder / "examples.json").read_text())
    report = json.loads((folder / "render_report.json").read_text())
    audio = {n: sf.read(folder / "audio" / f"{n}.wav", dtype="int16")[0] for n in examples}
    assert sorted(p.name for p in folder.iterdir()) == ["audio", "examples.json", "render_report.json"]
    return examples, report, audio


def _pcm16(y: np.ndarray) -> np.ndarray:
    """A float note as the 16-bit wav writer stores it (libsndfile's conversion)."""
    buffer = io.BytesIO()
    sf.write(buffer, y, 16000, subtype="PCM_16", format="WAV")
    buffer.seek(0)
    return sf.read(buffer, dtype="int16")[0]


def test_corpus_notes_carry_font_program_and_group(tmp_path):
    examples, report, audio = _render(tmp_path / "a", soundfonts=[TIM, OPL], max_instruments=3, **SMALL)
    entries = list(examples.values())
    assert {e["soundfont"] for e in entries} <= {"TimGM6mb.sf2", "OPL-3_FM_128M.sf2"} and len(audio) == len(entries)
    for e in entries:
        assert e["note_str"] == f"{e['instrument_str']}-{e['pitch']:03d}-{e['velocity']:03d}"
        assert e["sample_group"].startswith(Path(e["soundfont"]).stem + "/") and e["instrument_family_str"] == "bass"
        assert e["soundfont"] != "OPL-3_FM_128M.sf2" or e["instrument_source_str"] == "synthetic"
    table = soundfont.corpus_instruments([TIM, OPL]).set_index("instrument_str")
    for e in entries:
        assert (e["program"], e["soundfont"], e["instrument"]) == tuple(
            table.loc[e["instrument_str"], ["program", "soundfont", "instrument"]]
        )
    assert [f["file"] for f in report["soundfonts"]] == ["TimGM6mb.sf2", "OPL-3_FM_128M.sf2"]
    assert sum(f["notes"] for f in report["soundfonts"]) == len(entries) and report["failed_fonts"] == []
    assert report["gain"] == 1.0 and report["rendered_again_chunks"] == 0


def test_chunks_and_workers_render_the_same_notes(tmp_path, monkeypatch):
    monkeypatch.setattr(soundfont, "CHUNK_NOTES", 3)
    params = dict(soundfonts=[TIM], instruments=["bass_acoustic_000", "bass_electronic_000"], **SMALL)
    one, report, audio = _render(tmp_path / "one", workers=1, **params)
    assert len(one) == 8 and report["chunks"] == 3
    two, _, audio2 = _render(tmp_path / "two", workers=2, **params)
    assert one == two and all(np.array_equal(audio[n], audio2[n]) for n in one)
    # every chunk starts a fresh synthesizer: after the first 64 samples (FluidSynth's gain ramp,
    # which depends on the voice slot's history) a note equals one rendered in one pass
    names = sorted(one, key=lambda n: (one[n]["program"], one[n]["pitch"], one[n]["velocity"]))
    e = [one[n] for n in names]
    ref = soundfont.render_notes([x["program"] for x in e], [x["pitch"] for x in e], [x["velocity"] for x in e], TIM)
    assert all(np.array_equal(audio[n][64:], _pcm16(ref[i])[64:]) for i, n in enumerate(names))


def test_loud_notes_share_one_gain_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(soundfont, "CHUNK_NOTES", 2)
    monkeypatch.setattr(fluid, "RENDER_GAIN", 6.0)  # loud enough to clip
    params = dict(soundfonts=[TIM], instruments=["bass_acoustic_000"], velocities=[25, 50, 100, 127], pitch_min=48)
    examples, report, audio = _render(tmp_path / "a", pitch_max=48, **params)
    assert report["gain"] < 1 and report["rendered_again_chunks"] >= 1 and report["chunks"] == 2
    assert max(np.abs(a).max() for a in audio.values()) / 32767 == pytest.approx(0.99, abs=2e-4)
    velocities = [25, 50, 100, 127]
    ref = soundfont.render_notes(examples[next(iter(examples))]["program"], 48, velocities, TIM)
    for i, v in enumerate(velocities):  # as if all notes were scaled at once
        assert np.array_equal(audio[f"bass_acoustic_000-048-{v:03d}"][64:], _pcm16(ref[i])[64:])


def test_failing_font_is_named_and_the_others_render(tmp_path, caplog):
    junk = tmp_path / "junk.sf2"
    junk.write_bytes(os.urandom(20000))
    examples, report, _ = _render(tmp_path / "a", soundfonts=[str(junk), TIM], max_instruments=1, **SMALL)
    assert [f["file"] for f in report["failed_fonts"]] == ["junk.sf2"]
    assert "not a SoundFont 2 file" in report["failed_fonts"][0]["reason"]
    assert [f["file"] for f in report["soundfonts"]] == ["TimGM6mb.sf2"] and len(examples) == 4
    assert {e["soundfont"] for e in examples.values()} == {"TimGM6mb.sf2"}
    assert any("junk.sf2" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match=f"none of the SoundFonts in soundfonts loads: {junk}"):
        soundfont.build(config.make(soundfonts=[str(junk)], **SMALL), tmp_path / "b")


@pytest.mark.parametrize(
    "name, package",
    [
        ("FluidR3_GM.sf2", "fluid-soundfont-gm"),
        ("TimGM6mb.sf2", "timgm6mb-soundfont"),
        ("OPL-3_FM_128M.sf2", "opl3-soundfont"),
        ("sf_GMbank.sf2", "csound-soundfont"),
    ],
)
def test_missing_debian_font_names_its_package(tmp_path, name, package):
    cfg = config.make(soundfonts=[TIM, str(tmp_path / name)], **SMALL)
    with pytest.raises(DependencyError, match=f"Debian package {package}. Run scripts/install_system.sh"):
        soundfont.build(cfg, tmp_path)


def test_sf3_and_repeated_fonts_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="sample-disjoint splits need the preset → sample table"):
        soundfont.build(config.make(soundfonts=[TIM, str(SF2 / "MuseScore_General_Full.sf3")], **SMALL), tmp_path)
    with pytest.raises(ConfigError, match="lists TimGM6mb.sf2 more than once"):
        soundfont.build(config.make(soundfonts=[TIM, TIM], **SMALL), tmp_path)
    (tmp_path / "link.sf2").symlink_to(TIM)
    with pytest.raises(ConfigError, match="which are the same file"):
        soundfont.build(config.make(soundfonts=[TIM, str(tmp_path / "link.sf2")], **SMALL), tmp_path)
