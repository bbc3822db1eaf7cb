"""Reading NSynth-format split folders: examples.json, audio/*.wav, and per-note skip reasons.

An NSynth split folder holds ``examples.json`` (a JSON object keyed by note_str, each entry
with the 13 fields of :data:`FIELDS`) and ``audio/<note_str>.wav`` (4 s, 16 kHz, mono);
note_str is ``<instrument_str>-<pitch:03d>-<velocity:03d>``.

Chapter: 01_data.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from vaetone.data.manifest import NO_RECORD
from vaetone.data.wav import N_SAMPLES, SILENCE_PEAK, read_note, read_note_file  # noqa: F401 (re-exported)
from vaetone.errors import DataError
from vaetone.progress import tqdm

FIELDS = (
    "note",
    "note_str",
    "instrument",
    "instrument_str",
    "pitch",
    "velocity",
    "sample_rate",
    "qualities",
    "qualities_str",
    "instrument_family",
    "instrument_family_str",
    "instrument_source",
    "instrument_source_str",
)
"""The fields every entry of an NSynth ``examples.json`` holds."""

EXTRA_FIELDS = ("soundfont", "program", "sample_group")
"""Fields of the rendered SoundFont corpus kept in the metadata when present (the font's file name, the GM
program, and the group of programs that share samples, which the splits keep together)."""

_INT_FIELDS = ("note", "instrument", "pitch", "velocity", "sample_rate", "instrument_family", "instrument_source")
_STR_FIELDS = ("note_str", "instrument_str", "instrument_family_str", "instrument_source_str")
_LIST_FIELDS = ("qualities", "qualities_str")

QUALITIES = (
    "bright",
    "dark",
    "distortion",
    "fast_decay",
    "long_release",
    "multiphonic",
    "nonlinear_env",
    "percussive",
    "reverb",
    "tempo-synced",
)
"""NSynth's note qualities, in the order of the ``qualities`` bit vector."""


# ---------------------------------------------------------------------------------------------
# Reading an NSynth-format folder
# ---------------------------------------------------------------------------------------------

MAX_EXAMPLES_BYTES = 1 << 30
"""The largest examples.json read (1 GiB; NSynth's training split's is about 120 MB)."""

_EXPECTED = (
    "an NSynth-format split folder holding examples.json (a JSON object keyed by note_str) "
    "and audio/<note_str>.wav (4 s, 16 kHz, mono), like nsynth-test"
)


log = logging.getLogger(__name__)

FACTORS = (
    "factor_pitch",
    "factor_loudness",
    "factor_brightness",
    "factor_attack",
    "factor_decay",
    "factor_inharmonicity",
    "factor_noise",
)
"""Generative factors of the synthetic source: MIDI pitch, loudness (dB re. full level),
brightness (spectral tilt, dB per octave: higher is brighter), attack time (s), decay time
(s to fall by 60 dB while held), inharmonicity coefficient B (partial k at
k*f0*sqrt((1+B k^2)/(1+B))), noise level (dB re. the harmonic part)."""


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
        size = file.stat().st_size
        if size > MAX_EXAMPLES_BYTES:
            raise DataError(
                f"{file} is {size / 2**20:.0f} MiB, more than the {MAX_EXAMPLES_BYTES >> 20} MiB an NSynth "
                "examples.json can be; check that it is the right file"
            )
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{file} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}); expected a JSON object keyed by note_str"
        ) from None
    except RecursionError:
        raise DataError(
            f"{file} is nested too deeply to be an NSynth examples.json (a JSON object of note entries, "
            "three levels deep); check that it is the right file"
        ) from None
    except (OSError, UnicodeDecodeError, MemoryError) as exc:
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
        raise DataError(f"{where} lacks field {missing[0]!r} (missing: {missing}); every entry needs {list(FIELDS)}")
    for f in FIELDS:
        value = entry[f]
        ok = (
            isinstance(value, int) and not isinstance(value, bool)
            if f in _INT_FIELDS
            else isinstance(value, str)
            if f in _STR_FIELDS
            else isinstance(value, list)
        )
        if not ok:
            kind = "an integer" if f in _INT_FIELDS else "text" if f in _STR_FIELDS else "a list"
            raise DataError(f"{where}: field {f!r} must be {kind}, got {value!r}")
    if entry["note_str"] != name:
        raise DataError(f"{where}: field 'note_str' is {entry['note_str']!r}, not the entry's key")


def load_split(
    path: str | Path,
    strict: bool = False,
    resample: bool = False,
    mix_to_mono: bool = False,
    notes: Iterable[str] | None = None,
    normalise: bool = False,
) -> tuple[pd.DataFrame, np.ndarray, list[dict]]:
    """Load the notes of an NSynth-format folder, skipping (and reporting) broken audio files.

    Args:
        path: the split folder (``examples.json`` + ``audio/``).
        strict: raise DataError on the first unusable note instead of skipping it.
        resample: resample files of another sample rate to 16 kHz (else they are skipped).
        mix_to_mono: average the channels of multi-channel files (else they are skipped).
        notes: note_str values to load (default: all entries of examples.json).
        normalise: scale notes whose samples leave [-1, 1] to a peak of 1 (else they are skipped).
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
    for name, y, reason in _iter_audio(folder, names, strict, resample, mix_to_mono, normalise):
        if reason is None:
            audio[len(loaded)] = y
            loaded.append(name)
        else:
            skipped.append({"note": name, "reason": reason})
    if len(loaded) < len(names):
        audio = audio[: len(loaded)].copy()
    if skipped:
        log.warning("%s: skipped %d of %d notes (%s)", folder, len(skipped), len(names), reason_counts(skipped))
    return meta_frame(entries, loaded), audio, skipped


def data_check(
    path: str | Path, strict: bool = False, resample: bool = False, mix_to_mono: bool = False, normalise: bool = False
) -> dict:
    """Check every note of an NSynth-format folder without keeping the audio in memory.

    Args:
        path: the split folder; strict/resample/mix_to_mono/normalise as in :func:`load_split`.
    Returns:
        ``{"loaded": N, "skipped": [{"note": note_str, "reason": text}, ...]}``.
    Raises:
        DataError: the folder itself is unusable (or, in strict mode, a note is).
    Used by ``python -m vaetone data-check PATH`` (README, chapter 01_data).
    """
    folder = Path(path).expanduser()
    names = sorted(read_examples(folder))
    loaded, skipped = 0, []
    for name, _, reason in _iter_audio(folder, names, strict, resample, mix_to_mono, normalise):
        if reason is None:
            loaded += 1
        else:
            skipped.append({"note": name, "reason": reason})
    return {"loaded": loaded, "skipped": skipped}


def _iter_audio(
    folder: Path, names: Sequence[str], strict: bool, resample: bool, mix_to_mono: bool, normalise: bool = False
) -> Iterator[tuple[str, np.ndarray | None, str | None]]:
    """Yield ``(note_str, audio (64000,) or None, reason or None)`` for each note, with a progress bar."""
    audio_dir = (folder / "audio").resolve()
    bar = tqdm(names, desc=f"loading {folder.name}", unit="note", disable=len(names) < 5000, leave=False)
    for name in bar:
        try:
            file, reason = _audio_file(audio_dir, name)
            y = None
            if reason is None:
                y, reason = read_note(file, resample=resample, mix_to_mono=mix_to_mono, normalise=normalise)
        except (OSError, RuntimeError, ValueError) as exc:  # long names, symlink loops, odd files
            y, reason = None, f"cannot open the audio file ({type(exc).__name__}: {str(exc)[:200]})"
        if reason is not None and strict:
            raise DataError(f"note {name!r} of {folder}: {reason} (strict mode; without it the note would be skipped)")
        yield name, y, reason


def read_entry(audio_dir: str | Path, name: str) -> tuple[np.ndarray | None, str | None, dict]:
    """Read one note of a folder once, as the preparation does: audio or reason, and the wav's record.

    Args:
        audio_dir: the folder's ``audio/``, resolved (``(folder / "audio").resolve()``).
        name: the note_str.
    Returns:
        ``(audio (64000,) float32 or None, reason or None, record)`` as
        :func:`vaetone.data.wav.read_note_file`; a name that would reach outside the folder is
        never opened. Chapter: 01_data (through ``vaetone.spectral.prepare``).
    """
    try:
        file, reason = _audio_file(audio_dir, name)
        if reason is not None:
            return None, reason, dict(NO_RECORD)
        return read_note_file(file)
    except (OSError, RuntimeError, ValueError) as exc:  # long names, symlink loops, odd files
        return None, f"cannot open the audio file ({type(exc).__name__}: {str(exc)[:200]})", dict(NO_RECORD)


def _audio_file(audio_dir: str | Path, name: str) -> tuple[str | None, str | None]:
    """The wav of a note inside ``audio_dir`` (resolved), or a reason when the name would reach outside it.

    Only a symbolic link is resolved (the name holds no separator, so the file itself is the only
    link there can be), which keeps this to one ``lstat`` per note.
    """
    outside = "note name reaches outside the folder (path separators, '..' or an absolute path); not opened"
    if not name or "/" in name or "\\" in name or "\x00" in name or name in (".", "..") or Path(name).is_absolute():
        return None, outside
    file = os.path.join(audio_dir, f"{name}.wav")
    if os.path.islink(file) and not Path(file).resolve().is_relative_to(audio_dir):
        return None, "audio file links outside the folder; not opened"
    return file, None


def meta_frame(entries: Mapping[str, dict], names: Sequence[str]) -> pd.DataFrame:
    """The metadata of ``names``, indexed by note_str: NSynth fields, ``factor_*`` fields, :data:`EXTRA_FIELDS`.

    Args:
        entries: an examples.json as read (:func:`read_examples`); names: note_str values.
    Returns:
        DataFrame in the order of ``names``; integer fields as int64, factors as floats. Chapter: 01_data.
    """
    extra = sorted(
        {k for n in names for k in entries[n] if k.startswith("factor_")},
        key=lambda k: (FACTORS.index(k) if k in FACTORS else len(FACTORS), k),
    )
    present = [c for c in EXTRA_FIELDS if any(c in entries[n] for n in names)]
    columns = list(FIELDS) + extra + present
    meta = pd.DataFrame([{c: entries[n].get(c) for c in columns} for n in names], columns=columns)
    meta.index = pd.Index(list(names))
    for c in _INT_FIELDS:
        meta[c] = meta[c].astype("int64")
    for c in extra:
        meta[c] = pd.to_numeric(meta[c], errors="coerce")
    return meta


def reason_counts(skipped: Sequence[dict]) -> str:
    """Count skipped notes by the kind of reason, e.g. ``"2 silent, 1 audio file missing"``."""
    kinds = Counter(s["reason"].split(" (")[0].split(":")[0] for s in skipped)
    return ", ".join(f"{n} {k}" for k, n in kinds.most_common())
