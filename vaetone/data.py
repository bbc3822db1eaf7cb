"""Instrument notes in the NSynth format, from three sources through one loader (chapter 01_data).

An NSynth split folder holds ``examples.json`` (a JSON object keyed by note_str, each entry
with the 13 fields of :data:`FIELDS`) and ``audio/<note_str>.wav`` (4 s, 16 kHz, mono);
note_str is ``<instrument_str>-<pitch:03d>-<velocity:03d>``. The sources:

- ``nsynth``: a user's NSynth split folder (``cfg.nsynth_path``), read as it is;
- ``soundfont`` (the default): General MIDI programs of a SoundFont rendered with FluidSynth
  (note held 3 s, released for 1 s), mapped to NSynth families and sources by the committed
  table ``gm_programs.csv`` (drums and sound effects left out);
- ``synthetic``: parametric harmonic tones whose generative factors are known and stored
  as ``factor_*`` fields.

Rendered sources are written as NSynth-format folders under ``store.data_dir()`` (atomically:
a temporary folder, then a rename), keyed by ``store.key("data", cfg)``, and then read back by
the same loader as a user's NSynth folder. Splits are by instrument, seeded, stratified by family.
"""
from __future__ import annotations

import ctypes
import dataclasses
import io
import json
import logging
import os
import shutil
import time
import uuid
from collections import Counter
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import soundfile as sf
from .progress import tqdm

from . import store
from .config import DEFAULT_SOUNDFONT, FAMILIES, NOTE_SECONDS, SAMPLE_RATE, SOURCES, Config
from .errors import DataError, DependencyError

log = logging.getLogger(__name__)

N_SAMPLES = int(SAMPLE_RATE * NOTE_SECONDS)
"""Samples of one note: 64000 (4 s at 16 kHz)."""

FIELDS = ("note", "note_str", "instrument", "instrument_str", "pitch", "velocity", "sample_rate",
          "qualities", "qualities_str", "instrument_family", "instrument_family_str",
          "instrument_source", "instrument_source_str")
"""The fields every entry of an NSynth ``examples.json`` holds."""

_INT_FIELDS = ("note", "instrument", "pitch", "velocity", "sample_rate", "instrument_family",
               "instrument_source")
_STR_FIELDS = ("note_str", "instrument_str", "instrument_family_str", "instrument_source_str")
_LIST_FIELDS = ("qualities", "qualities_str")

QUALITIES = ("bright", "dark", "distortion", "fast_decay", "long_release", "multiphonic",
             "nonlinear_env", "percussive", "reverb", "tempo-synced")
"""NSynth's note qualities, in the order of the ``qualities`` bit vector."""

FACTORS = ("factor_pitch", "factor_loudness", "factor_brightness", "factor_attack",
           "factor_decay", "factor_inharmonicity", "factor_noise")
"""Generative factors of the synthetic source: MIDI pitch, loudness (dB re. full level),
brightness (spectral tilt, dB per octave: higher is brighter), attack time (s), decay time
(s to fall by 60 dB while held), inharmonicity coefficient B (partial k at
k*f0*sqrt((1+B k^2)/(1+B))), noise level (dB re. the harmonic part)."""

HOLD_SECONDS = 3.0
"""Rendered notes are held this long, then released for the rest of the 4 s."""

SILENCE_PEAK = 1.0 / 32768
"""A note whose peak is at most one 16-bit step is silent."""

CLIP_PEAK = 0.99
"""Rendered audio is scaled by one common gain when its peak exceeds this."""

FADE_SECONDS = 0.05
"""Raised-cosine fade over the last 50 ms of a rendered SoundFont note (long releases end smoothly)."""

RENDER_GAIN = 0.8
"""FluidSynth's master gain (``synth.gain``); FluidR3_GM peaks at about 0.72 with it."""

INSTALL_HINT = ("Install FluidSynth and a General MIDI SoundFont: "
                "`apt-get install libfluidsynth3 fluid-soundfont-gm` (Debian/Ubuntu) or "
                "`brew install fluid-synth` (macOS), plus `pip install pyfluidsynth`; "
                "or pass soundfont_path=/path/to.sf2.")

SPLITS = ("train", "valid", "test")


# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------

@dataclass
class Dataset:
    """Notes with their metadata, audio and split (chapter 01_data and every later one).

    Attributes:
        meta: DataFrame indexed by note_str: the NSynth fields, ``split`` ("train", "valid",
            "test", by instrument) and, for the synthetic source, the ``factor_*`` columns.
        audio: float32 array (n, 64000), samples in [-1, 1], in the row order of ``meta``.
        sample_rate: 16000 Hz.
        path: the NSynth-format folder the notes were read from.
        skipped: notes left out, each ``{"note": note_str, "reason": text}``.
    """
    meta: pd.DataFrame
    audio: np.ndarray
    sample_rate: int
    path: Path
    skipped: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.meta)

    def rows(self, split: str) -> np.ndarray:
        """Row positions (into ``audio``) of the notes of one split ("train", "valid" or "test")."""
        return np.flatnonzero(self.meta["split"].to_numpy() == split)


def dataset(cfg: Config) -> Dataset:
    """Load the notes ``cfg`` asks for: render (cached) or read, filter, subset and split them.

    Args:
        cfg: the configuration; uses its data parameters (``config.STAGES["data"]``);
            ``pitch_step`` and ``synthetic_instruments`` apply to the rendered sources only.
    Returns:
        A :class:`Dataset`. Rendered sources are cached under
        ``store.data_dir()/<dataset>-<render_key(cfg)>/``; a second call reuses the folder.
    Raises:
        DataError: the folder is unusable or no note matches the filters.
        DependencyError: FluidSynth or the SoundFont is missing (soundfont source).
    Chapter: 01_data (and every later chapter through ``features``).
    """
    folder = Path(cfg.nsynth_path).expanduser() if cfg.dataset == "nsynth" else rendered_folder(cfg)
    entries = read_examples(folder)
    chosen = select_entries(entries, cfg)
    if not chosen:
        raise DataError(f"no note of {folder} matches the filters (pitch {cfg.pitch_min}..{cfg.pitch_max}, "
                        f"velocities {cfg.velocities}, families {cfg.families or 'all'}, sources "
                        f"{cfg.sources or 'all'}, instruments {cfg.instruments or 'all'}); widen them")
    meta, audio, skipped = load_split(folder, notes=chosen)
    skipped = _render_skips(folder) + skipped
    if meta.empty:
        raise DataError(f"none of the {len(chosen)} selected notes of {folder} could be loaded: "
                        f"{_reason_counts(skipped)}; check the folder with `python -m vaetone data-check {folder}`")
    families = meta.groupby("instrument_str")["instrument_family_str"].first()
    splits = split_instruments(families, cfg.valid_fraction, cfg.test_fraction, cfg.split_seed)
    meta["split"] = meta["instrument_str"].map(splits)
    log.info("dataset %s: %d notes of %d instruments (%s), %d skipped", folder.name, len(meta),
             len(families), dict(Counter(splits.values())), len(skipped))
    return Dataset(meta=meta, audio=audio, sample_rate=SAMPLE_RATE, path=folder, skipped=skipped)


def select_entries(entries: Mapping[str, dict], cfg: Config) -> list[str]:
    """The note names of ``entries`` that pass the filters of ``cfg`` and its instrument subset.

    Filters: pitch in pitch_min..pitch_max, velocity in velocities, family, source and
    instrument_str in the given lists (an empty list keeps all); then, if max_instruments > 0,
    a seeded subset of instruments stratified by family (seed: split_seed).
    Returns:
        Sorted note_str values. Chapter: 01_data.
    """
    keep = [name for name, e in entries.items()
            if cfg.pitch_min <= e["pitch"] <= cfg.pitch_max and e["velocity"] in cfg.velocities
            and (not cfg.families or e["instrument_family_str"] in cfg.families)
            and (not cfg.sources or e["instrument_source_str"] in cfg.sources)
            and (not cfg.instruments or e["instrument_str"] in cfg.instruments)]
    if cfg.max_instruments > 0:
        families = {entries[n]["instrument_str"]: entries[n]["instrument_family_str"] for n in keep}
        chosen = set(subset_instruments(families, cfg.max_instruments, cfg.split_seed))
        keep = [n for n in keep if entries[n]["instrument_str"] in chosen]
    return sorted(keep)


# ---------------------------------------------------------------------------------------------
# Reading an NSynth-format folder
# ---------------------------------------------------------------------------------------------

_EXPECTED = ("an NSynth-format split folder holding examples.json (a JSON object keyed by note_str) "
             "and audio/<note_str>.wav (4 s, 16 kHz, mono), like nsynth-test")


def read_examples(path: str | Path) -> dict[str, dict]:
    """Read and check the ``examples.json`` of an NSynth-format folder.

    Args:
        path: the split folder.
    Returns:
        {note_str: entry} sorted by note_str; every entry has the 13 :data:`FIELDS` with the
        right types (extra fields, e.g. ``factor_*``, are kept).
    Raises:
        DataError: the folder or examples.json is missing, examples.json is not valid JSON,
        or an entry lacks a field or has a bad value; the message names file, entry and field.
    Chapter: 01_data.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DataError(f"dataset folder {folder} {what}; expected {_EXPECTED}")
    file = folder / "examples.json"
    if not file.is_file():
        raise DataError(f"{folder} has no examples.json; expected {_EXPECTED}")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{file} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                        f"{exc.msg}); expected a JSON object keyed by note_str") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {file}: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{file} must hold a JSON object keyed by note_str, not a {type(data).__name__}")
    for name, entry in data.items():
        _check_entry(file, name, entry)
    return {name: data[name] for name in sorted(data)}


def _check_entry(file: Path, name: str, entry) -> None:
    """Raise DataError naming file, entry and field when an examples.json entry is incomplete or mistyped."""
    where = f"{file}: entry {name!r}"
    if not isinstance(entry, dict):
        raise DataError(f"{where} must be a JSON object with the fields {list(FIELDS)}")
    missing = [f for f in FIELDS if f not in entry]
    if missing:
        raise DataError(f"{where} lacks field {missing[0]!r} (missing: {missing}); "
                        f"every entry needs {list(FIELDS)}")
    for f in FIELDS:
        value = entry[f]
        ok = (isinstance(value, int) and not isinstance(value, bool) if f in _INT_FIELDS
              else isinstance(value, str) if f in _STR_FIELDS else isinstance(value, list))
        if not ok:
            kind = "an integer" if f in _INT_FIELDS else "text" if f in _STR_FIELDS else "a list"
            raise DataError(f"{where}: field {f!r} must be {kind}, got {value!r}")
    if entry["note_str"] != name:
        raise DataError(f"{where}: field 'note_str' is {entry['note_str']!r}, not the entry's key")


def load_split(path: str | Path, strict: bool = False, resample: bool = False,
               mix_to_mono: bool = False, notes: Iterable[str] | None = None
               ) -> tuple[pd.DataFrame, np.ndarray, list[dict]]:
    """Load the notes of an NSynth-format folder, skipping (and reporting) broken audio files.

    Args:
        path: the split folder (``examples.json`` + ``audio/``).
        strict: raise DataError on the first unusable note instead of skipping it.
        resample: resample files of another sample rate to 16 kHz (else they are skipped).
        mix_to_mono: average the channels of multi-channel files (else they are skipped).
        notes: note_str values to load (default: all entries of examples.json).
    Returns:
        ``(meta, audio, skipped)``: meta DataFrame indexed by note_str (NSynth fields and any
        ``factor_*`` fields), audio float32 (n, 64000) in meta's row order, skipped
        ``[{"note", "reason"}]``.
    Raises:
        DataError: the folder or examples.json is unusable; in strict mode, any bad note.
    Chapter: 01_data.
    """
    folder = Path(path).expanduser()
    entries = read_examples(folder)
    names = sorted(entries) if notes is None else list(notes)
    unknown = [n for n in names if n not in entries]
    if unknown:
        raise DataError(f"notes {unknown[:5]} are not entries of {folder / 'examples.json'}")
    audio = np.empty((len(names), N_SAMPLES), np.float32)
    loaded, skipped = [], []
    for name, y, reason in _iter_audio(folder, names, strict, resample, mix_to_mono):
        if reason is None:
            audio[len(loaded)] = y
            loaded.append(name)
        else:
            skipped.append({"note": name, "reason": reason})
    if len(loaded) < len(names):
        audio = audio[: len(loaded)].copy()
    if skipped:
        log.warning("%s: skipped %d of %d notes (%s)", folder, len(skipped), len(names),
                    _reason_counts(skipped))
    return _meta_frame(entries, loaded), audio, skipped


def data_check(path: str | Path, strict: bool = False, resample: bool = False,
               mix_to_mono: bool = False) -> dict:
    """Check every note of an NSynth-format folder without keeping the audio in memory.

    Args:
        path: the split folder; strict/resample/mix_to_mono as in :func:`load_split`.
    Returns:
        ``{"loaded": N, "skipped": [{"note": note_str, "reason": text}, ...]}``.
    Raises:
        DataError: the folder itself is unusable (or, in strict mode, a note is).
    Used by ``python -m vaetone data-check PATH`` (README, chapter 01_data).
    """
    folder = Path(path).expanduser()
    names = sorted(read_examples(folder))
    loaded, skipped = 0, []
    for name, _, reason in _iter_audio(folder, names, strict, resample, mix_to_mono):
        if reason is None:
            loaded += 1
        else:
            skipped.append({"note": name, "reason": reason})
    return {"loaded": loaded, "skipped": skipped}


def _iter_audio(folder: Path, names: Sequence[str], strict: bool, resample: bool,
                mix_to_mono: bool) -> Iterator[tuple[str, np.ndarray | None, str | None]]:
    """Yield ``(note_str, audio (64000,) or None, reason or None)`` for each note, with a progress bar."""
    audio_dir = (folder / "audio").resolve()
    bar = tqdm(names, desc=f"loading {folder.name}", unit="note", disable=len(names) < 5000,
               leave=False)
    for name in bar:
        file, reason = _audio_file(audio_dir, name)
        y = None
        if reason is None:
            y, reason = read_note(file, resample=resample, mix_to_mono=mix_to_mono)
        if reason is not None and strict:
            raise DataError(f"note {name!r} of {folder}: {reason} (strict mode; without it "
                            "the note would be skipped)")
        yield name, y, reason


def _audio_file(audio_dir: Path, name: str) -> tuple[Path | None, str | None]:
    """The wav of a note inside ``audio_dir``, or a reason when the name would reach outside it."""
    outside = "note name reaches outside the folder (path separators, '..' or an absolute path); not opened"
    if (not name or "/" in name or "\\" in name or "\x00" in name or name in (".", "..")
            or Path(name).is_absolute()):
        return None, outside
    file = audio_dir / f"{name}.wav"
    if not file.resolve().is_relative_to(audio_dir):
        return None, "audio file links outside the folder; not opened"
    return file, None


def read_note(file: str | Path, resample: bool = False,
              mix_to_mono: bool = False) -> tuple[np.ndarray | None, str | None]:
    """Read one note's wav and check it is 4 s, 16 kHz, mono, finite and not silent.

    Args:
        file: the wav path.
        resample: resample another sample rate to 16 kHz (soxr) instead of refusing it.
        mix_to_mono: average several channels instead of refusing them.
    Returns:
        ``(audio float32 (64000,), None)`` or ``(None, reason)``.
    Chapter: 01_data (through :func:`load_split`).
    """
    file = Path(file)
    if not file.is_file():
        return None, f"audio file missing: expected {file.parent.name}/{file.name}"
    try:
        y, sr = sf.read(file, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        return None, f"unreadable or corrupt audio file ({exc})"
    if y.shape[1] != 1:
        if not mix_to_mono:
            return None, f"{y.shape[1]} channels, expected mono (pass mix_to_mono=True to mix down)"
        y = y.mean(axis=1, keepdims=True)
    y = y[:, 0]
    if sr != SAMPLE_RATE:
        if not resample:
            return None, f"sample rate {sr} Hz, expected {SAMPLE_RATE} Hz (pass resample=True to resample)"
        y, sr = _resample(y, sr)
    return _check_samples(y)


def _resample(y: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    """Resample to 16 kHz, fixing a one- or two-sample rounding of a 4-s note's length."""
    import soxr  # installed with librosa
    out = soxr.resample(y, sr, SAMPLE_RATE, quality="HQ")
    if abs(len(y) / sr - NOTE_SECONDS) < 1.0 / sr and abs(len(out) - N_SAMPLES) <= 2:
        out = np.pad(out, (0, max(0, N_SAMPLES - len(out))))[:N_SAMPLES]
    return out.astype(np.float32), SAMPLE_RATE


def _check_samples(y: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """Refuse a note that is not 64000 samples, holds NaN/inf, or is silent."""
    if len(y) != N_SAMPLES:
        return None, (f"{len(y)} samples ({len(y) / SAMPLE_RATE:.3f} s), expected {N_SAMPLES} "
                      f"({NOTE_SECONDS:g} s at {SAMPLE_RATE} Hz): truncated or of another duration")
    if not np.isfinite(y).all():
        return None, "holds NaN or infinite samples"
    peak = float(np.abs(y).max())
    if peak <= SILENCE_PEAK:
        return None, f"silent (peak {peak:.1e}, at most one 16-bit step)"
    return y, None


def _meta_frame(entries: Mapping[str, dict], names: Sequence[str]) -> pd.DataFrame:
    """The metadata table of ``names``: NSynth fields, then any ``factor_*`` fields, indexed by note_str."""
    extra = sorted({k for n in names for k in entries[n] if k.startswith("factor_")},
                   key=lambda k: (FACTORS.index(k) if k in FACTORS else len(FACTORS), k))
    columns = list(FIELDS) + extra
    meta = pd.DataFrame([{c: entries[n].get(c) for c in columns} for n in names], columns=columns)
    meta.index = pd.Index(list(names))
    for c in _INT_FIELDS:
        meta[c] = meta[c].astype("int64")
    for c in extra:
        meta[c] = pd.to_numeric(meta[c], errors="coerce")
    return meta


def _reason_counts(skipped: Sequence[dict]) -> str:
    """Count skipped notes by the kind of reason, e.g. ``"2 silent, 1 audio file missing"``."""
    kinds = Counter(s["reason"].split(" (")[0].split(":")[0] for s in skipped)
    return ", ".join(f"{n} {k}" for k, n in kinds.most_common())


# ---------------------------------------------------------------------------------------------
# Instruments: subsets and splits
# ---------------------------------------------------------------------------------------------

def _stratified_order(families: Mapping[str, str], rng: np.random.Generator,
                      reserve_first: bool) -> list[str]:
    """Instruments in an order that spreads over families in proportion to their sizes.

    Each family is shuffled; instrument r >= 1 of a family of n gets the key (r + u) / n with
    u uniform in [0, 1), and the order is by key. The first instrument of each family comes
    before all others (so a subset covers every family it can) or, with ``reserve_first``,
    after all others (so a family keeps one instrument in train as long as possible).
    """
    names = sorted(families)
    by_family: dict[str, list[str]] = {}
    for name in names:
        by_family.setdefault(families[name], []).append(name)
    keys = {}
    for fam in sorted(by_family):
        members = [by_family[fam][i] for i in rng.permutation(len(by_family[fam]))]
        for r, name in enumerate(members):
            u = rng.random()
            keys[name] = (r + u) / len(members) if r else (1.0 + u if reserve_first else u - 1.0)
    return sorted(names, key=lambda n: keys[n])


def subset_instruments(families: Mapping[str, str], n: int, seed: int) -> list[str]:
    """A seeded subset of ``n`` instruments, stratified by family (``max_instruments``).

    One instrument of each family first (as long as n allows), the rest in proportion to the
    families' sizes.

    Args:
        families: {instrument_str: family}.
        n: how many to keep (all when n >= len(families)).
        seed: the random seed (``split_seed``).
    Returns:
        Sorted instrument_str values. Chapter: 01_data.
    """
    order = _stratified_order(families, np.random.default_rng([seed, 1]), reserve_first=False)
    return sorted(order[:n])


def split_instruments(families: Mapping[str, str] | pd.Series, valid_fraction: float,
                      test_fraction: float, seed: int) -> dict[str, str]:
    """Assign every instrument to "train", "valid" or "test", seeded and stratified by family.

    No instrument is in two splits. With at least 3 instruments every split is non-empty and
    held-out instruments come first from large families, so each family keeps an instrument in
    train while it can.
    Args:
        families: {instrument_str: family} (a dict or a Series).
        valid_fraction, test_fraction: shares of instruments held out.
        seed: ``split_seed``.
    Returns:
        {instrument_str: split}. Chapter: 01_data.
    """
    families = dict(families)
    total = len(families)
    n_test = max(1, round(total * test_fraction)) if total >= 3 else 0
    n_valid = max(1, round(total * valid_fraction)) if total >= 2 else 0
    while n_test + n_valid > max(total - 1, 0):
        n_test, n_valid = (n_test - 1, n_valid) if n_test >= n_valid else (n_test, n_valid - 1)
    if total < 3:
        log.warning("only %d instrument(s): the test%s split is empty", total,
                    "" if total == 2 else " and valid")
    order = _stratified_order(families, np.random.default_rng([seed, 2]), reserve_first=True)
    splits = dict.fromkeys(order, "train")
    quota = {"test": n_test, "valid": n_valid}
    turn = ["test", "valid"]
    for name in order[: n_test + n_valid]:
        pick = turn[0] if quota[turn[0]] > 0 else turn[1]
        splits[name] = pick
        quota[pick] -= 1
        turn.reverse()
    return {name: splits[name] for name in sorted(splits)}


# ---------------------------------------------------------------------------------------------
# Writing NSynth-format folders (rendered sources)
# ---------------------------------------------------------------------------------------------

def render_key(cfg: Config) -> str:
    """The cache key of a rendered source: the data parameters less those that only split it.

    The split fractions never change the audio, nor does the split seed unless it picks a
    subset of instruments (``max_instruments`` > 0); so changing only the split reuses the render.
    """
    base = Config()
    neutral = dataclasses.replace(cfg, valid_fraction=base.valid_fraction, test_fraction=base.test_fraction,
                                  split_seed=cfg.split_seed if cfg.max_instruments else base.split_seed)
    return store.key("data", neutral)


def rendered_folder(cfg: Config) -> Path:
    """The NSynth-format folder of a rendered source, rendering it first when it is not cached.

    Args:
        cfg: a configuration with dataset "soundfont" or "synthetic".
    Returns:
        ``store.data_dir()/<dataset>-<render_key(cfg)>``. Chapter: 01_data.
    """
    folder = store.data_dir() / f"{cfg.dataset}-{render_key(cfg)}"
    if (folder / "examples.json").is_file():
        log.info("reusing rendered dataset %s", folder)
        return folder
    build = {"soundfont": _build_soundfont, "synthetic": _build_synthetic}[cfg.dataset]
    with _atomic_folder(folder) as tmp:
        build(cfg, tmp)
    return folder


@contextmanager
def _atomic_folder(folder: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``folder``, renamed onto it when the block succeeds."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "examples.json").is_file():
                raise
            log.info("%s was written meanwhile by another process; keeping it", folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_split(folder: str | Path, notes: pd.DataFrame, audio: np.ndarray,
                report: dict | None = None) -> Path:
    """Write notes as an NSynth-format folder: ``examples.json`` and 16-bit ``audio/<note_str>.wav``.

    Args:
        folder: the folder to write into (created).
        notes: one row per note with the 13 :data:`FIELDS` (and optional ``factor_*`` columns).
        audio: float32 (n, 64000) in [-1, 1], in the row order of ``notes``.
        report: optional JSON-able facts about the rendering, written to ``render_report.json``.
    Returns:
        The folder. Chapter: 01_data (rendered sources).
    """
    folder = Path(folder)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    columns = list(FIELDS) + [c for c in notes.columns if c.startswith("factor_")]
    records = {}
    bar = tqdm(range(len(notes)), desc="writing wavs", unit="note", disable=len(notes) < 1000,
               leave=False)
    for i in bar:
        row = notes.iloc[i]
        _write_wav(folder / "audio" / f"{row['note_str']}.wav", audio[i])
        records[row["note_str"]] = {c: row[c] for c in columns}  # numpy values: store.jsonable
    store.write_json(folder / "examples.json", records)
    if report is not None:
        store.write_json(folder / "render_report.json", report)
    return folder


def _write_wav(file: Path, y: np.ndarray) -> None:
    """Write a 16-kHz 16-bit wav (encoded in memory: libsndfile would fsync every file it closes)."""
    buffer = io.BytesIO()
    sf.write(buffer, y, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    file.write_bytes(buffer.getvalue())


def _render_skips(folder: Path) -> list[dict]:
    """Notes a renderer left out of ``folder`` (recorded in its render_report.json)."""
    file = folder / "render_report.json"
    if not file.is_file():
        return []
    return list(json.loads(file.read_text()).get("skipped", []))


def _nsynth_rows(instruments: pd.DataFrame, pitches: Sequence[int],
                 velocities: Sequence[int]) -> pd.DataFrame:
    """The note grid (one row per note, NSynth fields) of instruments x pitches x velocities.

    ``instruments`` has columns instrument, instrument_str, family, source, pitch_min, pitch_max;
    each instrument gets the pitches inside its own range.
    """
    rows = []
    for inst in instruments.itertuples(index=False):
        for p in (p for p in pitches if inst.pitch_min <= p <= inst.pitch_max):
            for v in velocities:
                rows.append({
                    "note": int(inst.instrument) * 1_000_000 + p * 1000 + v,
                    "note_str": f"{inst.instrument_str}-{p:03d}-{v:03d}",
                    "instrument": int(inst.instrument), "instrument_str": inst.instrument_str,
                    "pitch": p, "velocity": v, "sample_rate": SAMPLE_RATE,
                    "qualities": [0] * len(QUALITIES), "qualities_str": [],
                    "instrument_family": FAMILIES.index(inst.family), "instrument_family_str": inst.family,
                    "instrument_source": SOURCES.index(inst.source), "instrument_source_str": inst.source})
    return pd.DataFrame(rows, columns=list(FIELDS))


def _require_notes(notes: pd.DataFrame, cfg: Config) -> None:
    """Raise DataError before rendering when the filters leave no note to render."""
    if notes.empty:
        raise DataError(f"the {cfg.dataset} source has no note for these filters (pitch "
                        f"{cfg.pitch_min}..{cfg.pitch_max} step {cfg.pitch_step}, families "
                        f"{cfg.families or 'all'}, sources {cfg.sources or 'all'}, instruments "
                        f"{cfg.instruments or 'all'}); widen them")


def _pitch_grid(cfg: Config) -> list[int]:
    """The rendered pitches: pitch_min..pitch_max in steps of pitch_step (MIDI)."""
    return list(range(cfg.pitch_min, cfg.pitch_max + 1, cfg.pitch_step))


def _filter_instruments(table: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """Instruments of a rendered source kept by the family/source/instrument filters and max_instruments."""
    grid = _pitch_grid(cfg)
    keep = (table["family"].isin(cfg.families or FAMILIES)
            & table["source"].isin(cfg.sources or SOURCES)
            & (table["instrument_str"].isin(cfg.instruments) if cfg.instruments else True)
            & np.array([any(lo <= p <= hi for p in grid)
                        for lo, hi in zip(table["pitch_min"], table["pitch_max"])], dtype=bool))
    table = table[keep]
    if cfg.max_instruments > 0:
        chosen = subset_instruments(dict(zip(table["instrument_str"], table["family"])),
                                    cfg.max_instruments, cfg.split_seed)
        table = table[table["instrument_str"].isin(chosen)]
    return table.reset_index(drop=True)


def _drop_silent(notes: pd.DataFrame, audio: np.ndarray, why: str) -> tuple[pd.DataFrame, np.ndarray, list]:
    """Leave out notes whose rendering is silent; returns the kept notes, audio and the skip list."""
    silent = np.abs(audio).max(axis=1) <= SILENCE_PEAK
    skipped = [{"note": n, "reason": why} for n in notes["note_str"][silent]]
    if skipped:
        log.warning("%d rendered notes are silent and left out: %s", len(skipped),
                    ", ".join(s["note"] for s in skipped[:10]) + (" ..." if len(skipped) > 10 else ""))
    return notes[~silent].reset_index(drop=True), audio[~silent], skipped


# ---------------------------------------------------------------------------------------------
# The SoundFont source
# ---------------------------------------------------------------------------------------------

def gm_programs(include_excluded: bool = False) -> pd.DataFrame:
    """The committed table mapping General MIDI programs to NSynth families and sources.

    Args:
        include_excluded: also return the programs left out (drums, sound effects), whose
            family and source are empty and whose comment says why.
    Returns:
        DataFrame with columns program (0-127), name, family, source, pitch_min, pitch_max
        (the playable range, MIDI), comment; plus instrument (= program) and instrument_str
        (``<family>_<source>_<program:03d>``). Chapter: 01_data.
    """
    table = pd.read_csv(Path(__file__).with_name("gm_programs.csv"), keep_default_na=False)
    used = table["family"] != ""
    if not include_excluded:
        table = table[used].copy()
        table[["pitch_min", "pitch_max"]] = table[["pitch_min", "pitch_max"]].astype(int)
    table["instrument"] = table["program"]
    table["instrument_str"] = [f"{f}_{s}_{p:03d}" if f else "" for f, s, p in
                               zip(table["family"], table["source"], table["program"])]
    return table.reset_index(drop=True)


def _build_soundfont(cfg: Config, folder: Path) -> None:
    """Render the GM programs chosen by ``cfg`` into an NSynth-format ``folder``."""
    _check_soundfont(cfg.soundfont_path)
    table = _filter_instruments(gm_programs(), cfg)
    notes = _nsynth_rows(table, _pitch_grid(cfg), cfg.velocities)
    _require_notes(notes, cfg)
    log.info("rendering %d notes of %d GM programs with %s", len(notes), len(table), cfg.soundfont_path)
    start = time.perf_counter()
    audio, gain = _render(notes["instrument"].to_numpy(), notes["pitch"].to_numpy(),
                          notes["velocity"].to_numpy(), cfg.soundfont_path)
    seconds = time.perf_counter() - start
    notes, audio, skipped = _drop_silent(notes, audio, "rendered silent by the SoundFont")
    report = {"source": "soundfont", "soundfont": str(cfg.soundfont_path), "gain": gain,
              "synth_gain": RENDER_GAIN, "render_seconds": round(seconds, 3),
              "notes_per_second": round(len(audio) / max(seconds, 1e-9), 1), "skipped": skipped}
    write_split(folder, notes, audio, report)


def render_notes(programs: Sequence[int], pitches: Sequence[int], velocities: Sequence[int],
                 soundfont_path: str | Path = DEFAULT_SOUNDFONT) -> np.ndarray:
    """Render notes of General MIDI programs with FluidSynth: held 3 s, then released for 1 s.

    One synthesizer renders all notes (reverb and chorus off, bank 0, 16 kHz); every note
    starts from silence. No note is normalised on its own: if the loudest note would exceed
    0.99, all notes are scaled by one common gain.
    Args:
        programs, pitches, velocities: one value per note (GM program 0-127, MIDI pitch, MIDI
            velocity 1-127); scalars are broadcast.
        soundfont_path: a ``.sf2`` file (default FluidR3_GM).
    Returns:
        float32 (n, 64000), mono, 16 kHz.
    Raises:
        DependencyError: FluidSynth (pyfluidsynth or libfluidsynth) or the SoundFont is missing.
    Chapter: 01_data.
    """
    return _render(programs, pitches, velocities, soundfont_path)[0]


def _render(programs, pitches, velocities, soundfont_path) -> tuple[np.ndarray, float]:
    """:func:`render_notes`, also returning the common gain applied (1.0 when none was needed)."""
    programs, pitches, velocities = (a.astype(int) for a in
                                     np.broadcast_arrays(programs, pitches, velocities))
    fluid = _open_synth(soundfont_path)
    audio = np.zeros((len(programs), N_SAMPLES), np.float32)
    current, ok = None, True
    try:
        order = np.argsort(programs, kind="stable")
        for i in tqdm(order, desc="rendering notes", unit="note", disable=len(order) < 1000, leave=False):
            if programs[i] != current:
                current = programs[i]
                ok = fluid.synth.program_select(0, fluid.sfid, 0, int(current)) == 0
                if not ok:
                    log.warning("%s has no preset for GM program %d (bank 0)", soundfont_path, current)
            if ok:
                audio[i] = _render_one(fluid, int(pitches[i]), int(velocities[i]))
    finally:
        fluid.synth.delete()
    _apply_fade(audio)
    return audio, _guard_clipping(audio)


def _render_one(fluid: "_Fluid", pitch: int, velocity: int) -> np.ndarray:
    """One note on MIDI channel 0, from silence: note on, 3 s, note off, 1 s, then all sound off.

    Nothing of the previous note sounds on; only FluidSynth's amplitude ramp over the first
    64 samples (4 ms) depends on the voice that used the same slot before, so a note's first
    block may differ by a few percent between render orders (the order is fixed for a cfg).
    """
    hold = int(HOLD_SECONDS * SAMPLE_RATE)
    left = np.empty(N_SAMPLES, np.float32)
    right = np.empty(N_SAMPLES, np.float32)
    fluid.synth.noteon(0, pitch, velocity)
    fluid.write(fluid.synth.synth, hold, left.ctypes.data, 0, 1, right.ctypes.data, 0, 1)
    fluid.synth.noteoff(0, pitch)
    fluid.write(fluid.synth.synth, N_SAMPLES - hold, left.ctypes.data, hold, 1, right.ctypes.data, hold, 1)
    _silence(fluid)
    return 0.5 * (left + right)


def _silence(fluid: "_Fluid") -> None:
    """End every voice and render one 64-sample block so that the next note starts from silence."""
    fluid.synth.all_sounds_off(0)
    flush = np.empty(64, np.float32)
    fluid.write(fluid.synth.synth, 64, flush.ctypes.data, 0, 1, flush.ctypes.data, 0, 1)
    if fluid.synth.get_active_voice_count():
        raise DataError("FluidSynth kept voices sounding after all-sounds-off; cannot render clean notes")


def _apply_fade(audio: np.ndarray) -> np.ndarray:
    """Fade the last :data:`FADE_SECONDS` of every note out with a raised cosine (in place)."""
    n = int(FADE_SECONDS * SAMPLE_RATE)
    audio[:, -n:] *= (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, n))).astype(np.float32)
    return audio


def _guard_clipping(audio: np.ndarray) -> float:
    """Scale all notes (in place) by one gain when the loudest exceeds :data:`CLIP_PEAK`; return the gain."""
    peak = max(float(audio.max()), -float(audio.min())) if audio.size else 0.0
    if peak <= CLIP_PEAK:
        return 1.0
    gain = CLIP_PEAK / peak
    audio *= np.float32(gain)
    log.warning("rendered peak %.3f would clip: all notes scaled by one gain %.4f", peak, gain)
    return gain


def _check_soundfont(soundfont_path: str | Path) -> Path:
    """Raise DependencyError when pyfluidsynth/libfluidsynth or the SoundFont file is missing."""
    _import_fluidsynth()
    path = Path(soundfont_path).expanduser()
    if not path.is_file():
        raise DependencyError(f"SoundFont {path} not found. {INSTALL_HINT}")
    return path


def _import_fluidsynth():
    """Import pyfluidsynth, turning a missing package or library into DependencyError."""
    try:
        import fluidsynth
    except (ImportError, OSError) as exc:
        raise DependencyError(f"FluidSynth is not available ({exc}). {INSTALL_HINT}") from None
    return fluidsynth


@dataclass
class _Fluid:
    """A FluidSynth synthesizer with its SoundFont and the float output call pyfluidsynth 1.4 does not wrap."""
    synth: object
    sfid: int
    write: object      # fluid_synth_write_float(synth, n, lbuf, loff, lincr, rbuf, roff, rincr)


def _open_synth(soundfont_path: str | Path) -> _Fluid:
    """A 16-kHz FluidSynth synthesizer (reverb and chorus off) with the SoundFont loaded."""
    path = _check_soundfont(soundfont_path)
    fluidsynth = _import_fluidsynth()
    synth = fluidsynth.Synth(gain=RENDER_GAIN, samplerate=SAMPLE_RATE, channels=16,
                             **{"synth.reverb.active": 0, "synth.chorus.active": 0})
    sfid = synth.sfload(str(path))
    if sfid < 0:
        synth.delete()
        raise DependencyError(f"{path} could not be loaded as a SoundFont (.sf2). {INSTALL_HINT}")
    c = ctypes
    write = c.CFUNCTYPE(c.c_int, c.c_void_p, c.c_int, c.c_void_p, c.c_int, c.c_int, c.c_void_p,
                        c.c_int, c.c_int)(("fluid_synth_write_float", fluidsynth._fl))
    return _Fluid(synth, sfid, write)


# ---------------------------------------------------------------------------------------------
# The synthetic source
# ---------------------------------------------------------------------------------------------

SYNTH_SEED = 20230701
"""Seed of the synthetic instruments' timbres: instrument i is the same whatever their number."""

_FAMILY_TIMBRE = {  # brightness dB/oct, attack s, decay s (T60), inharmonicity B, noise dB
    "bass": (-12.0, 0.010, 3.0, 1e-4, -40.0), "brass": (-4.0, 0.050, 20.0, 0.0, -35.0),
    "flute": (-15.0, 0.080, 20.0, 0.0, -20.0), "guitar": (-9.0, 0.005, 2.5, 3e-4, -40.0),
    "keyboard": (-8.0, 0.005, 4.0, 4e-4, -45.0), "mallet": (-14.0, 0.002, 1.0, 2e-3, -40.0),
    "organ": (-6.0, 0.030, 40.0, 0.0, -50.0), "reed": (-5.0, 0.040, 20.0, 0.0, -30.0),
    "string": (-6.0, 0.150, 20.0, 0.0, -32.0), "synth_lead": (-3.0, 0.010, 30.0, 0.0, -55.0),
    "vocal": (-10.0, 0.200, 20.0, 0.0, -28.0)}
_SOURCE_EFFECT = {"acoustic": (1.0, 0.0), "electronic": (0.3, -8.0), "synthetic": (0.0, -20.0)}
"""Per source: multiplier of the inharmonicity, offset of the noise level (dB)."""

SYNTH_PEAK = 0.4
"""Peak amplitude of the harmonic part of a synthetic note at velocity 127 (loudness 0 dB)."""

RELEASE_T60 = 0.25
"""Seconds a synthetic note takes to fall by 60 dB after its release at 3 s."""


def synthetic_instruments(n: int) -> pd.DataFrame:
    """The timbres of ``n`` synthetic instruments, spread over the 11 families.

    Instrument i has family ``FAMILIES[i % 11]`` and source ``SOURCES[(i // 11) % 3]``; its
    factors are the family's prototype jittered with a generator seeded by (SYNTH_SEED, i).
    Returns:
        DataFrame: instrument, instrument_str (``<family>_<source>_<i:03d>``), family, source,
        pitch_min=21, pitch_max=108, factor_brightness (dB/oct), factor_attack (s),
        factor_decay (s), factor_inharmonicity (B), factor_noise (dB). Chapter: 01_data.
    """
    rows = []
    for i in range(n):
        rng = np.random.default_rng([SYNTH_SEED, i])
        family, source = FAMILIES[i % len(FAMILIES)], SOURCES[(i // len(FAMILIES)) % len(SOURCES)]
        tilt, attack, decay, inharm, noise = _FAMILY_TIMBRE[family]
        inharm_mult, noise_offset = _SOURCE_EFFECT[source]
        rows.append({
            "instrument": i, "instrument_str": f"{family}_{source}_{i:03d}", "family": family,
            "source": source, "pitch_min": 21, "pitch_max": 108,
            "factor_brightness": round(float(tilt + rng.uniform(-3, 3)), 3),
            "factor_attack": round(float(np.clip(attack * np.exp(rng.normal(0, 0.5)), 0.002, 0.5)), 4),
            "factor_decay": round(float(np.clip(decay * np.exp(rng.normal(0, 0.4)), 0.3, 60.0)), 3),
            "factor_inharmonicity": float(f"{inharm * inharm_mult * np.exp(rng.normal(0, 0.5)):.3g}"),
            "factor_noise": round(float(min(noise + noise_offset + rng.uniform(-6, 6), -12.0)), 2)})
    return pd.DataFrame(rows)


def loudness_db(velocity) -> np.ndarray:
    """Loudness of a synthetic note from its MIDI velocity: 40*log10(velocity/127) dB (GM's curve)."""
    return np.round(40.0 * np.log10(np.asarray(velocity, float) / 127.0), 3)


def synthesize_notes(factors: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """Render harmonic tones from their generative factors (pure numpy).

    The tone is a sum of partials k = 1.. below 7.6 kHz at k*f0*sqrt((1+B k^2)/(1+B)) (the
    fundamental stays at f0) with amplitudes k^(brightness/6.02) (so brightness is the tilt
    in dB per octave) and Schroeder phases, plus white noise at ``factor_noise`` dB re. the
    tone; both share one envelope: linear attack, exponential decay (60 dB in factor_decay s),
    release at 3 s (60 dB in 0.25 s). Notes sharing all factors but loudness share one tone.
    Args:
        factors: one row per note with the :data:`FACTORS` columns.
        seed: seed of the noise.
    Returns:
        float32 (n, 64000), 16 kHz. Chapter: 01_data; later chapters for ground truth.
    """
    t = np.arange(N_SAMPLES, dtype=np.float32) / SAMPLE_RATE
    rng = np.random.default_rng(seed)
    audio = np.empty((len(factors), N_SAMPLES), np.float32)
    timbre = [c for c in FACTORS if c != "factor_loudness"]
    groups = factors.reset_index(drop=True).groupby(timbre, sort=True)
    bar = tqdm(groups, total=groups.ngroups, desc="synthesising notes", unit="tone",
               disable=len(factors) < 1000, leave=False)
    with _one_blas_thread():
        for _, group in bar:
            first = group.iloc[0]
            tone, rms = _harmonic_tone(t, first)
            level = SYNTH_PEAK * 10 ** (group["factor_loudness"].to_numpy() / 20)
            y = rng.standard_normal((len(group), N_SAMPLES), dtype=np.float32)
            y *= np.float32(rms * 10 ** (first["factor_noise"] / 20))
            y += tone
            y *= _envelope(t, first["factor_attack"], first["factor_decay"])
            y *= level[:, None].astype(np.float32)
            audio[group.index] = y
    return audio


def _one_blas_thread():
    """A context limiting BLAS to one thread: its small products stall when threads wait for busy cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(1, user_api="blas")


def _harmonic_tone(t: np.ndarray, f: pd.Series) -> tuple[np.ndarray, float]:
    """The steady harmonic part (peak <= 1) of one timbre at one pitch, and its RMS.

    Sums the partials block-wise: sample j*L + m of partial k is
    Im(a_k e^{i(phi_k + w_k j L)} e^{i w_k m}), so the sum over k is one complex matrix
    product (blocks x partials) @ (partials x L), exact in phase (float64 exponents).
    """
    f0 = 440.0 * 2 ** ((f["factor_pitch"] - 69) / 12)
    b = float(f["factor_inharmonicity"])
    k = np.arange(1, int(0.95 * SAMPLE_RATE / 2 / f0) + 1, dtype=np.float64)
    fk = k * f0 * np.sqrt((1 + b * k ** 2) / (1 + b))
    k, fk = k[fk < 0.95 * SAMPLE_RATE / 2], fk[fk < 0.95 * SAMPLE_RATE / 2]
    amp = k ** (f["factor_brightness"] / (20 * np.log10(2)))
    amp /= amp.sum()
    phase = np.pi * k ** 2 / len(k)
    w = 2 * np.pi * fk / SAMPLE_RATE
    block = 320
    starts = np.arange(len(t) // block) * block
    rotate = np.exp(1j * np.outer(w, np.arange(block))).astype(np.complex64)
    coef = (amp * np.exp(1j * (phase + np.outer(starts, w)))).astype(np.complex64)
    tone = (coef @ rotate).imag.reshape(-1).astype(np.float32)
    return tone, float(np.sqrt(0.5 * np.sum(amp ** 2)))


def _envelope(t: np.ndarray, attack: float, decay: float) -> np.ndarray:
    """Amplitude envelope: linear attack, decay by 60 dB in ``decay`` s, release at 3 s."""
    env = np.minimum(t / np.float32(attack), 1.0)
    env *= 10 ** (-3 * np.maximum(t - attack, 0) / decay)
    env *= 10 ** (-3 * np.maximum(t - HOLD_SECONDS, 0) / RELEASE_T60)
    return env.astype(np.float32)


def _synthetic_qualities(inst: pd.Series) -> list[int]:
    """NSynth quality bits that the factors of a synthetic instrument imply (bright, dark, fast_decay, percussive)."""
    bits = dict.fromkeys(QUALITIES, 0)
    bits["bright"] = int(inst["factor_brightness"] > -5)
    bits["dark"] = int(inst["factor_brightness"] < -12)
    bits["fast_decay"] = int(inst["factor_decay"] < 1.5)
    bits["percussive"] = int(inst["factor_attack"] < 0.008 and inst["factor_decay"] < 6)
    return [bits[q] for q in QUALITIES]


def _build_synthetic(cfg: Config, folder: Path) -> None:
    """Render the synthetic instruments chosen by ``cfg`` into an NSynth-format ``folder``."""
    table = _filter_instruments(synthetic_instruments(cfg.synthetic_instruments), cfg)
    notes = _nsynth_rows(table, _pitch_grid(cfg), cfg.velocities)
    _require_notes(notes, cfg)
    timbre = table.set_index("instrument")
    for c in ("factor_brightness", "factor_attack", "factor_decay", "factor_inharmonicity", "factor_noise"):
        notes[c] = notes["instrument"].map(timbre[c])
    notes["factor_pitch"] = notes["pitch"].astype(float)
    notes["factor_loudness"] = loudness_db(notes["velocity"])
    quals = {i: _synthetic_qualities(r) for i, r in timbre.iterrows()}
    notes["qualities"] = notes["instrument"].map(quals)
    notes["qualities_str"] = [[q for q, b in zip(QUALITIES, bits) if b] for bits in notes["qualities"]]
    log.info("synthesising %d notes of %d instruments", len(notes), len(table))
    start = time.perf_counter()
    audio = synthesize_notes(notes, seed=SYNTH_SEED)
    gain = _guard_clipping(audio)
    seconds = time.perf_counter() - start
    notes, audio, skipped = _drop_silent(notes, audio, "synthesised silent")
    report = {"source": "synthetic", "gain": gain, "render_seconds": round(seconds, 3),
              "notes_per_second": round(len(audio) / max(seconds, 1e-9), 1), "skipped": skipped}
    write_split(folder, notes, audio, report)


# ---------------------------------------------------------------------------------------------
# What the data chapter shows
# ---------------------------------------------------------------------------------------------

def summary_tables(meta: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Counts of notes and instruments by family, source, pitch, velocity and split.

    Args:
        meta: ``Dataset.meta`` (a ``split`` column is optional).
    Returns:
        {"family", "source": DataFrame(instruments, notes) in NSynth order, absent ones as 0;
         "pitch", "velocity": DataFrame(notes); "split": DataFrame(instruments, notes, families);
         "family_split": notes by family x split}. Chapter: 01_data.
    """
    def by(column: str, order: Sequence | None = None) -> pd.DataFrame:
        table = meta.groupby(column).agg(instruments=("instrument_str", "nunique"),
                                         notes=("note_str", "size"))
        if order is not None:
            table = table.reindex(order, fill_value=0)
        table.index.name = column.replace("instrument_", "").replace("_str", "")
        return table

    tables = {"family": by("instrument_family_str", FAMILIES), "source": by("instrument_source_str", SOURCES),
              "pitch": by("pitch")[["notes"]], "velocity": by("velocity")[["notes"]]}
    if "split" in meta:
        split = by("split", SPLITS)
        split["families"] = meta.groupby("split")["instrument_family_str"].nunique().reindex(SPLITS).fillna(0).astype(int)
        tables["split"] = split
        tables["family_split"] = (pd.crosstab(meta["instrument_family_str"], meta["split"])
                                  .reindex(index=FAMILIES, columns=SPLITS, fill_value=0))
        tables["family_split"].index.name, tables["family_split"].columns.name = "family", "split"
    return tables


def examples_per_family(ds: Dataset, n: int = 1, split: str | None = None,
                        pitch: int = 60, velocity: int = 100) -> pd.DataFrame:
    """Pick ``n`` example notes per family (from different instruments), near a given pitch and velocity.

    Args:
        ds: the dataset.
        n: notes per family.
        split: only from this split (default: any).
        pitch, velocity: preferred MIDI pitch and velocity; the closest notes are taken.
    Returns:
        Rows of ``ds.meta`` in NSynth family order, with a column ``row``: their position in
        ``ds.audio`` (``ds.audio[df["row"]]``). Chapter: 01_data.
    """
    meta = ds.meta.assign(row=np.arange(len(ds.meta)))
    if split is not None:
        meta = meta[meta["split"] == split]
    meta = meta.assign(_dp=(meta["pitch"] - pitch).abs(), _dv=(meta["velocity"] - velocity).abs(),
                       _fam=meta["instrument_family"])
    best = (meta.sort_values(["_fam", "_dp", "_dv", "instrument_str", "pitch"])
            .drop_duplicates("instrument_str").groupby("_fam", sort=True).head(n))
    return best.drop(columns=["_dp", "_dv", "_fam"])
