"""Tests of vaetone.data and the data-check command: loader, bad input, renderers, splits, cache."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from vaetone import config, store
from vaetone.data import dataset as datasets
from vaetone.data import nsynth, soundfont, splits, summary, synthetic
from vaetone.errors import DataError, DependencyError

from . import nsynth_folders

SR = 16000
N = 64000


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    """Every test writes its caches under its own tmp folder, never under the repo."""
    monkeypatch.setenv("VAETONE_DATA", str(tmp_path / "cache"))


_entry = nsynth_folders.entry


def _tone(pitch: int, velocity: int, n: int = N, sr: int = SR) -> np.ndarray:
    """A decaying sine at the pitch, its level following the velocity."""
    t = np.arange(n) / sr
    f0 = 440 * 2 ** ((pitch - 69) / 12)
    return (0.5 * velocity / 127 * np.exp(-t) * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def _folder(
    root: Path,
    instruments=(("guitar_acoustic_001", "guitar"), ("flute_acoustic_002", "flute")),
    pitches=(48, 60),
    velocities=(25, 127),
) -> Path:
    """A good NSynth-format folder: every instrument x pitch x velocity, 16-bit wavs."""
    (root / "audio").mkdir(parents=True)
    entries = {}
    for inst, family in instruments:
        for p in pitches:
            for v in velocities:
                e = _entry(inst, p, v, family)
                entries[e["note_str"]] = e
                sf.write(root / "audio" / f"{e['note_str']}.wav", _tone(p, v), SR, subtype="PCM_16")
    (root / "examples.json").write_text(json.dumps(entries))
    return root


def _add(folder: Path, name: str, audio=None, sr: int = SR, subtype: str = "PCM_16", raw: bytes | None = None) -> None:
    """Add an entry named ``name`` to the folder's examples.json, with a wav (or raw bytes, or none)."""
    examples = json.loads((folder / "examples.json").read_text())
    parts = re.fullmatch(r"(.*)-(\d{3})-(\d{3})", name)
    inst, p, v = parts.groups() if parts else (name, "060", "100")
    e = _entry(inst, int(p), int(v))
    e["note_str"] = name
    examples[name] = e
    (folder / "examples.json").write_text(json.dumps(examples))
    file = folder / "audio" / f"{name}.wav"
    if raw is not None:
        file.write_bytes(raw)
    elif audio is not None:
        sf.write(file, audio, sr, subtype=subtype)


def _f0_cents(y: np.ndarray, pitch: float) -> float:
    """Cents between the strongest spectral peak near the pitch's f0 (held part) and the f0."""
    f0 = 440 * 2 ** ((pitch - 69) / 12)
    seg = y[SR // 2 : 5 * SR // 2] * np.hanning(2 * SR)
    spec = np.abs(np.fft.rfft(seg, 8 * len(seg)))
    freqs = np.fft.rfftfreq(8 * len(seg), 1 / SR)
    band = np.flatnonzero((freqs > f0 * 0.9) & (freqs < f0 * 1.1))
    i = band[np.argmax(spec[band])]
    a, b, c = np.log(spec[i - 1 : i + 2])
    peak = freqs[i] + 0.5 * (a - c) / (a - 2 * b + c) * (freqs[1] - freqs[0])
    return 1200 * np.log2(peak / f0)


def _rms_db(y: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.mean(np.square(y, dtype=np.float64), axis=-1) + 1e-20)


# ------------------------------------------------------------------------------------------
# Loader
# ------------------------------------------------------------------------------------------


def test_loader_reads_a_good_folder(tmp_path):
    folder = _folder(tmp_path / "split")
    meta, audio, skipped = nsynth.load_split(folder)
    assert skipped == []
    assert audio.shape == (8, N) and audio.dtype == np.float32
    assert list(meta.index) == sorted(meta.index) and list(meta.columns) == list(nsynth.FIELDS)
    assert meta.loc["flute_acoustic_002-060-127", "instrument_family_str"] == "flute"
    assert meta["pitch"].dtype == np.int64
    row = list(meta.index).index("guitar_acoustic_001-048-025")
    np.testing.assert_allclose(audio[row], _tone(48, 25), atol=1.5 / 32768)


def _broken_folder(root: Path) -> Path:
    folder = _folder(root)
    good = _tone(60, 100)
    _add(folder, "bad_missing-060-100")
    _add(folder, "bad_corrupt-060-100", raw=b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(200)))
    sf.write(root / "full.wav", good, SR, subtype="PCM_16")
    _add(folder, "bad_truncated-060-100", raw=(root / "full.wav").read_bytes()[:60000])
    _add(folder, "bad_rate-060-100", audio=_tone(60, 100, n=4 * 44100, sr=44100), sr=44100)
    _add(folder, "bad_stereo-060-100", audio=np.stack([good, 0.5 * good], axis=1))
    _add(folder, "bad_short-060-100", audio=good[: 3 * SR])
    _add(folder, "bad_long-060-100", audio=np.concatenate([good, good[:SR]]))
    _add(folder, "bad_silent-060-100", audio=np.zeros(N, np.float32))
    nan, inf = good.copy(), good.copy()
    nan[1000], inf[2000] = np.nan, np.inf
    _add(folder, "bad_nan-060-100", audio=nan, subtype="FLOAT")
    _add(folder, "bad_inf-060-100", audio=inf, subtype="FLOAT")
    return folder


EXPECTED_REASONS = {
    "missing": "missing",
    "corrupt": "corrupt",
    "truncated": "truncated",
    "rate": "44100 Hz",
    "stereo": "2 channels",
    "short": "48000 samples",
    "long": "80000 samples",
    "silent": "silent",
    "nan": "NaN",
    "inf": "infinite",
}


def test_bad_audio_files_are_skipped_with_reasons(tmp_path):
    folder = _broken_folder(tmp_path / "split")
    meta, audio, skipped = nsynth.load_split(folder)
    assert len(meta) == len(audio) == 8 and not meta.index.str.startswith("bad_").any()
    reasons = {s["note"].split("-")[0][4:]: s["reason"] for s in skipped}
    assert set(reasons) == set(EXPECTED_REASONS)
    for kind, words in EXPECTED_REASONS.items():
        assert words in reasons[kind], (kind, reasons[kind])


def test_strict_mode_raises_on_the_first_bad_note(tmp_path):
    folder = _folder(tmp_path / "split")
    _add(folder, "bad_silent-060-100", audio=np.zeros(N, np.float32))
    with pytest.raises(DataError, match="bad_silent-060-100.*silent"):
        nsynth.load_split(folder, strict=True)
    assert len(nsynth.load_split(folder)[0]) == 8


def test_resample_and_mix_to_mono_only_when_asked(tmp_path):
    folder = _folder(tmp_path / "split", instruments=(("reed_acoustic_003", "reed"),), pitches=(69,), velocities=(127,))
    _add(folder, "rate_x-069-100", audio=_tone(69, 100, n=4 * 22050, sr=22050), sr=22050)
    stereo = np.stack([_tone(69, 100), 0.5 * _tone(69, 100)], axis=1)
    _add(folder, "stereo_x-069-100", audio=stereo)
    assert len(nsynth.load_split(folder)[0]) == 1
    meta, audio, skipped = nsynth.load_split(folder, resample=True, mix_to_mono=True)
    assert skipped == [] and audio.shape == (3, N)
    rows = list(meta.index)
    assert abs(_f0_cents(audio[rows.index("rate_x-069-100")], 69)) < 5
    np.testing.assert_allclose(audio[rows.index("stereo_x-069-100")], stereo.mean(axis=1), atol=2 / 32768)


@pytest.mark.parametrize(
    "damage, words",
    [
        ("no_folder", "does not exist"),
        ("no_examples", "has no examples.json"),
        ("bad_json", r"not valid JSON \(line"),
        ("not_object", "must hold a JSON object"),
        ("missing_field", "lacks field 'pitch'"),
        ("bad_type", "field 'velocity' must be an integer"),
    ],
)
def test_unusable_folder_raises_a_clear_error(tmp_path, damage, words):
    folder = _folder(tmp_path / "split")
    file = folder / "examples.json"
    examples = json.loads(file.read_text())
    name = "guitar_acoustic_001-060-127"
    if damage == "no_folder":
        folder = tmp_path / "nowhere"
    elif damage == "no_examples":
        file.unlink()
    elif damage == "bad_json":
        file.write_text(file.read_text()[:-20])
    elif damage == "not_object":
        file.write_text(json.dumps(list(examples.values())))
    elif damage == "missing_field":
        del examples[name]["pitch"]
        file.write_text(json.dumps(examples))
    elif damage == "bad_type":
        examples[name]["velocity"] = "loud"
        file.write_text(json.dumps(examples))
    with pytest.raises(DataError, match=words) as err:
        nsynth.load_split(folder)
    message = str(err.value)
    assert str(folder) in message
    if damage in ("missing_field", "bad_type"):
        assert "examples.json" in message and name in message


def test_note_names_reaching_outside_are_never_opened(tmp_path):
    folder = _folder(tmp_path / "split")
    good = _tone(60, 100)
    sf.write(tmp_path / "split" / "escape.wav", good, SR)  # audio/../escape.wav
    sf.write(tmp_path / "abs.wav", good, SR)
    (tmp_path / "elsewhere").mkdir()
    sf.write(tmp_path / "elsewhere" / "linked.wav", good, SR)
    (folder / "audio" / "linked-060-100.wav").symlink_to(tmp_path / "elsewhere" / "linked.wav")
    for name in ("../escape", str(tmp_path / "abs"), "linked-060-100"):
        _add(folder, name)
    meta, audio, skipped = nsynth.load_split(folder)
    assert len(meta) == 8
    reasons = {s["note"]: s["reason"] for s in skipped}
    assert set(reasons) == {"../escape", str(tmp_path / "abs"), "linked-060-100"}
    assert all("outside the folder" in r and "not opened" in r for r in reasons.values())


def test_select_filters_and_max_instruments(tmp_path):
    instruments = [
        (f"{fam}_acoustic_{i:03d}", fam) for i, fam in enumerate(["bass", "bass", "brass", "brass", "reed", "reed"])
    ]
    folder = _folder(tmp_path / "split", instruments=instruments, pitches=(30, 48, 60), velocities=(25, 75))
    cfg = config.make(
        dataset="nsynth",
        nsynth_path=str(folder),
        pitch_min=40,
        pitch_max=70,
        velocities=[25],
        families=["bass", "reed"],
    )
    ds = datasets.dataset(cfg)
    assert len(ds) == 4 * 2 and set(ds.meta["pitch"]) == {48, 60} and set(ds.meta["velocity"]) == {25}
    assert set(ds.meta["instrument_family_str"]) == {"bass", "reed"}
    sub = datasets.dataset(config.make(dataset="nsynth", nsynth_path=str(folder), max_instruments=3))
    picked = sub.meta.groupby("instrument_family_str")["instrument_str"].nunique()
    assert picked.to_dict() == {"bass": 1, "brass": 1, "reed": 1}  # stratified by family


# ------------------------------------------------------------------------------------------
# SoundFont source
# ------------------------------------------------------------------------------------------


def test_render_notes_loudness_rises_with_velocity_and_notes_start_from_silence():
    audio = soundfont.render_notes([0, 0, 0], [60, 60, 60], [25, 75, 127])
    assert audio.shape == (3, N) and audio.dtype == np.float32
    rms = _rms_db(audio)
    assert np.all(np.abs(audio).max(axis=1) > 0.005) and np.all(np.diff(rms) > 3), rms
    assert abs(_f0_cents(audio[2], 60)) < 20  # a piano C4 sounds at C4
    # the same note after a loud sustained one: nothing of it leaks in (FluidSynth's amplitude
    # ramp over the first 64-sample block depends on the voice slot's history, nothing after it)
    alone = soundfont.render_notes([73], [72], [75])[0]
    after = soundfont.render_notes([48, 73], [40, 72], [127, 75])[1]
    np.testing.assert_array_equal(after[64:], alone[64:])
    assert np.abs(after[:64] - alone[:64]).max() < 0.05 * np.abs(alone).max()
    held = _rms_db(audio[:, SR : 3 * SR]) - _rms_db(audio[:, -SR // 4 :])
    assert np.all(held > 10)  # released after 3 s


def test_soundfont_dataset_is_nsynth_format(tmp_path):
    cfg = config.make(
        families=["keyboard", "bass"],
        max_instruments=2,
        pitch_min=48,
        pitch_max=60,
        pitch_step=12,
        velocities=[25, 127],
    )
    ds = datasets.dataset(cfg)
    assert ds.path == store.data_dir() / f"soundfont-{store.key('data', cfg)}"
    assert len(ds) == 8 and ds.sample_rate == SR and ds.audio.shape == (8, N)
    assert set(ds.meta["instrument_family_str"]) == {"keyboard", "bass"}
    assert ds.meta["instrument_str"].str.fullmatch(r"(keyboard|bass)_(acoustic|electronic|synthetic)_\d{3}").all()
    info = sf.info(ds.path / "audio" / f"{ds.meta.index[0]}.wav")
    assert (info.samplerate, info.channels, info.frames) == (SR, 1, N)
    quiet, loud = ds.meta["velocity"] == 25, ds.meta["velocity"] == 127
    assert (_rms_db(ds.audio[loud.to_numpy()]) > _rms_db(ds.audio[quiet.to_numpy()]) + 3).all()
    assert np.abs(ds.audio).max() < 1


def test_gm_table_maps_programs_to_nsynth_families():
    table = soundfont.gm_programs()
    assert set(table["family"]) == set(config.FAMILIES) and set(table["source"]) <= set(config.SOURCES)
    assert not set(table["program"]) & set(range(112, 128))  # percussive and sound effects out
    assert 47 not in set(table["program"])  # timpani (a drum) out
    assert (table["pitch_min"] < table["pitch_max"]).all() and table["program"].is_unique
    assert len(soundfont.gm_programs(include_excluded=True)) == 128


def test_missing_soundfont_or_fluidsynth_says_how_to_install(tmp_path, monkeypatch):
    with pytest.raises(DependencyError, match="apt-get install libfluidsynth3 fluid-soundfont-gm"):
        soundfont.render_notes([0], [60], [100], soundfont_path=tmp_path / "none.sf2")
    cfg = config.make(soundfonts=[str(tmp_path / "none.sf2")], max_instruments=1)
    with pytest.raises(DependencyError, match=r"soundfonts=\[/path/to.sf2\]"):
        datasets.dataset(cfg)
    assert not store.data_dir().exists() or not any(store.data_dir().iterdir())  # nothing half-written
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # library not importable
    with pytest.raises(DependencyError, match="brew install fluid-synth"):
        soundfont.render_notes([0], [60], [100])


# ------------------------------------------------------------------------------------------
# Synthetic source
# ------------------------------------------------------------------------------------------


def _factors(pitch, **kw) -> pd.DataFrame:
    base = dict(
        factor_pitch=pitch,
        factor_loudness=0.0,
        factor_brightness=-6.0,
        factor_attack=0.01,
        factor_decay=20.0,
        factor_inharmonicity=0.0,
        factor_noise=-40.0,
    )
    base.update(kw)
    return pd.DataFrame([base])


@pytest.mark.parametrize("pitch, inharmonicity", [(40, 0.0), (57, 1e-3), (69, 0.0), (81, 2e-3)])
def test_synthetic_f0_matches_pitch(pitch, inharmonicity):
    y = synthetic.synthesize_notes(_factors(float(pitch), factor_inharmonicity=inharmonicity))[0]
    assert abs(_f0_cents(y, pitch)) < 2


def test_synthetic_factors_are_known_answers():
    notes = pd.concat(
        [
            _factors(60.0, factor_loudness=-20.0),
            _factors(60.0),
            _factors(60.0, factor_brightness=-15.0),
            _factors(60.0, factor_attack=0.3),
        ],
        ignore_index=True,
    )
    y = synthetic.synthesize_notes(notes)
    level = _rms_db(y[:, SR : 2 * SR])
    assert abs(level[1] - level[0] - 20) < 0.2  # loudness in dB
    spec = np.abs(np.fft.rfft(y[:, SR : 2 * SR], axis=1)) ** 2
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    centroid = (spec * freqs).sum(1) / spec.sum(1)
    assert centroid[2] < 0.8 * centroid[1]  # darker tilt, lower centroid
    rise = [np.argmax(np.abs(v[: SR // 2]) > 0.9 * np.abs(v[: SR // 2]).max()) / SR for v in y[1::2]]
    assert rise[0] < 0.03 and 0.2 < rise[1] < 0.32  # attack times 0.01 s and 0.3 s
    assert np.abs(y[:, -SR // 10 :]).max() < 1e-4 * np.abs(y).max()  # release ends inside the 4 s


def test_synthetic_dataset_stores_its_factors():
    cfg = config.make(
        dataset="synthetic", synthetic_instruments=11, pitch_min=48, pitch_max=72, pitch_step=12, velocities=[25, 127]
    )
    ds = datasets.dataset(cfg)
    assert len(ds) == 11 * 3 * 2 and set(nsynth.FACTORS) <= set(ds.meta.columns)
    assert (ds.meta["factor_pitch"] == ds.meta["pitch"]).all()
    assert set(ds.meta["instrument_family_str"]) == set(config.FAMILIES)
    examples = json.loads((ds.path / "examples.json").read_text())
    note = ds.meta.index[0]
    assert examples[note]["factor_decay"] == pytest.approx(ds.meta.loc[note, "factor_decay"])
    drawn = synthetic.synthetic_notes(cfg).set_index("note_str").loc[ds.meta.index]
    np.testing.assert_allclose(
        ds.meta[list(nsynth.FACTORS)].to_numpy(float), drawn[list(nsynth.FACTORS)].to_numpy(float)
    )
    full = synthetic.synthesize_notes(drawn.assign(factor_loudness=0.0), seed=synthetic.SYNTH_SEED)  # at 0 dB
    gap = _rms_db(ds.audio[:]) - _rms_db(full)
    np.testing.assert_allclose(gap, synthetic.loudness_db(ds.meta["velocity"]), atol=0.1)  # loudness in dB


# ------------------------------------------------------------------------------------------
# Splits, cache, summaries
# ------------------------------------------------------------------------------------------


def test_split_by_instrument_is_disjoint_seeded_and_stratified():
    families = {
        f"{fam}_acoustic_{i:03d}": fam for i, fam in enumerate([f for f in config.FAMILIES[:5] for _ in range(4)])
    }
    split = splits.split_instruments(families, 0.15, 0.15, seed=0)
    assert set(split) == set(families) and set(split.values()) == {"train", "valid", "test"}
    counts = pd.Series(split).value_counts()
    assert (counts["valid"], counts["test"], counts["train"]) == (3, 3, 14)
    assert {families[i] for i, s in split.items() if s == "train"} == set(config.FAMILIES[:5])
    assert splits.split_instruments(families, 0.15, 0.15, seed=0) == split
    assert splits.split_instruments(families, 0.15, 0.15, seed=1) != split
    three = splits.split_instruments({"a": "bass", "b": "bass", "c": "reed"}, 0.15, 0.15, seed=3)
    assert sorted(three.values()) == ["test", "train", "valid"]


def test_dataset_splits_by_instrument(tmp_path):
    cfg = config.make(dataset="synthetic", synthetic_instruments=22, pitch_step=18, velocities=[75])
    ds = datasets.dataset(cfg)
    per_instrument = ds.meta.groupby("instrument_str")["split"].nunique()
    assert (per_instrument == 1).all()
    assert {len(ds.rows(s)) > 0 for s in splits.SPLITS} == {True}
    assert sum(len(ds.rows(s)) for s in splits.SPLITS) == len(ds)


def test_rendered_dataset_is_cached_and_keyed(monkeypatch):
    cfg = config.make(dataset="synthetic", synthetic_instruments=3, pitch_step=36, velocities=[127])
    first = datasets.dataset(cfg)
    monkeypatch.setattr(synthetic, "build", lambda *a: pytest.fail("re-rendered a cached dataset"))
    second = datasets.dataset(cfg)
    assert second.path == first.path and np.array_equal(second.audio[:], first.audio[:])
    resplit = datasets.dataset(dataclasses.replace(cfg, split_seed=7, test_fraction=0.3))  # same audio, new split
    assert resplit.path == first.path
    other = config.make(dataset="synthetic", synthetic_instruments=3, pitch_step=30, velocities=[127])
    assert datasets.render_key(other) != datasets.render_key(cfg)
    with pytest.raises(pytest.fail.Exception, match="re-rendered"):
        datasets.dataset(other)  # a new key renders anew
    names = sorted(p.name for p in store.data_dir().iterdir())
    assert [n for n in names if n.startswith("synthetic-")] == [first.path.name]
    assert not [n for n in names if n.startswith(".")]  # no temp left


def test_a_crash_while_rendering_leaves_nothing(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("crash mid-render")

    monkeypatch.setattr(synthetic, "synthesize_notes", boom)
    with pytest.raises(RuntimeError, match="crash mid-render"):
        datasets.dataset(config.make(dataset="synthetic", synthetic_instruments=3))
    assert list(store.data_dir().iterdir()) == []


def test_summary_tables_and_examples_per_family():
    cfg = config.make(
        dataset="synthetic", synthetic_instruments=22, pitch_min=48, pitch_max=72, pitch_step=12, velocities=[25, 127]
    )
    ds = datasets.dataset(cfg)
    tables = summary.summary_tables(ds.meta)
    assert list(tables["family"].index) == list(config.FAMILIES)
    assert (tables["family"]["instruments"] == 2).all() and (tables["family"]["notes"] == 12).all()
    assert tables["pitch"]["notes"].to_dict() == {48: 44, 60: 44, 72: 44}
    assert tables["velocity"]["notes"].sum() == len(ds) == tables["split"]["notes"].sum()
    assert tables["family_split"].to_numpy().sum() == len(ds)
    examples = summary.examples_per_family(ds)
    assert list(examples["instrument_family_str"]) == list(config.FAMILIES)
    assert (examples["pitch"] == 60).all() and (examples["velocity"] == 127).all()
    np.testing.assert_array_equal(ds.audio[examples["row"]], ds.audio[ds.meta.index.get_indexer(examples.index)])


# ------------------------------------------------------------------------------------------
# data-check
# ------------------------------------------------------------------------------------------


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(Path(nsynth.__file__).parents[2])}
    return subprocess.run(
        [sys.executable, "-m", "vaetone", *map(str, args)], capture_output=True, text=True, timeout=120, env=env
    )


def test_data_check_function(tmp_path):
    folder = _broken_folder(tmp_path / "split")
    report = nsynth.data_check(folder)
    assert report["loaded"] == 8 and len(report["skipped"]) == len(EXPECTED_REASONS)
    assert set(report["skipped"][0]) == {"note", "reason"}


def test_data_check_cli(tmp_path):
    folder = _folder(tmp_path / "split")
    _add(folder, "bad_silent-060-100", audio=np.zeros(N, np.float32))
    done = _cli("data-check", folder)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {
        "loaded": 8,
        "skipped": [{"note": "bad_silent-060-100", "reason": "silent (peak 0.0e+00, at most one 16-bit step)"}],
    }

    missing = _cli("data-check", tmp_path / "nowhere")
    assert missing.returncode == 1 and "nowhere" in missing.stderr and "examples.json" in missing.stderr
    assert missing.stdout == ""

    for wav in (folder / "audio").iterdir():
        wav.unlink()
    empty = _cli("data-check", folder)
    assert empty.returncode == 3 and json.loads(empty.stdout)["loaded"] == 0
    assert "no note" in empty.stderr
    assert _cli("data-check").returncode == 2  # usage error
