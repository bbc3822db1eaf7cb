"""NSynth-format folders for the tests: harmonic tones of known instruments, the three-folder layout, broken notes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from vaetone import config
from vaetone.data.writer import nsynth_rows, write_split

SR, N = 16000, 64000
FAMILY_CYCLE = ("guitar", "flute", "reed", "brass")


def tone(pitch: int, velocity: int, number: int = 0) -> np.ndarray:
    """A decaying harmonic tone at the pitch, its level following the velocity, its timbre the instrument number."""
    t = np.arange(N) / SR
    f0 = 440 * 2 ** ((pitch - 69) / 12)
    tilt = 0.4 + 0.1 * (number % 5)
    y = sum(tilt**h * np.sin(2 * np.pi * f0 * (h + 1) * t) for h in range(6))
    return (0.5 * velocity / 127 * np.exp(-t) * y / 2).astype(np.float32)


def instruments(n: int, start: int = 0, families=FAMILY_CYCLE, source: str = "acoustic") -> pd.DataFrame:
    """``n`` instruments numbered from ``start``, families in turn, playable over the whole NSynth range."""
    rows = []
    for i in range(start, start + n):
        family = families[i % len(families)]
        rows.append(
            {
                "instrument": i,
                "instrument_str": f"{family}_{source}_{i:03d}",
                "family": family,
                "source": source,
                "pitch_min": 21,
                "pitch_max": 108,
            }
        )
    return pd.DataFrame(rows)


def write_folder(folder: Path, table: pd.DataFrame, pitches=(48, 60), velocities=(25, 127)) -> Path:
    """An NSynth-format folder of every instrument x pitch x velocity (16-bit wavs)."""
    notes = nsynth_rows(table, pitches, velocities)
    audio = np.stack([tone(p, v, i) for i, p, v in zip(notes["instrument"], notes["pitch"], notes["velocity"])])
    return write_split(folder, notes, audio)


def official(root: Path, counts=(("train", 4), ("valid", 2), ("test", 2)), pitches=(48, 60), velocities=(25, 127)):
    """NSynth's layout: ``root/nsynth-{train,valid,test}``, each with its own instruments (numbered on)."""
    start = 0
    for split, n in counts:
        write_folder(root / f"nsynth-{split}", instruments(n, start), pitches, velocities)
        start += n
    return root


def entry(
    inst: str,
    pitch: int,
    velocity: int,
    family: str = "guitar",
    source: str = "acoustic",
    note: int | None = None,
    number: int = 7,
) -> dict:
    """An NSynth examples.json entry (``note`` defaults to pitch * 1000 + velocity; ``number`` is its instrument)."""
    return {
        "note": pitch * 1000 + velocity if note is None else note,
        "note_str": f"{inst}-{pitch:03d}-{velocity:03d}",
        "instrument": number,
        "instrument_str": inst,
        "pitch": pitch,
        "velocity": velocity,
        "sample_rate": SR,
        "qualities": [0] * 10,
        "qualities_str": [],
        "instrument_family": config.FAMILIES.index(family),
        "instrument_family_str": family,
        "instrument_source": config.SOURCES.index(source),
        "instrument_source_str": source,
    }


def add_note(folder: Path, instrument: str, pitch: int, velocity: int, kind: str = "good", family: str = "guitar"):
    """Add an entry to examples.json with a wav that is good or broken: "rate", "nan", "truncated", "silent"."""
    name = f"{instrument}-{pitch:03d}-{velocity:03d}"
    examples = json.loads((folder / "examples.json").read_text())
    examples[name] = entry(instrument, pitch, velocity, family, note=10**6 + len(examples), number=999)
    (folder / "examples.json").write_text(json.dumps(examples))
    file, y = folder / "audio" / f"{name}.wav", tone(pitch, velocity)
    if kind == "good":
        sf.write(file, y, SR, subtype="PCM_16")
    elif kind == "rate":
        sf.write(file, np.resize(y, 4 * 44100), 44100, subtype="PCM_16")
    elif kind == "nan":
        y[1000] = np.nan
        sf.write(file, y, SR, subtype="FLOAT")
    elif kind == "truncated":
        sf.write(file, y, SR, subtype="PCM_16")
        file.write_bytes(file.read_bytes()[:60000])
    elif kind == "silent":
        sf.write(file, np.zeros(N, np.float32), SR, subtype="PCM_16")
    else:
        raise ValueError(kind)
    return name
