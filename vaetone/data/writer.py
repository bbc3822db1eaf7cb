"""Writing rendered notes as NSynth-format folders: atomic folders, WAV files, note rows, checks.

Shared by the rendered sources (:mod:`~vaetone.data.soundfont`, :mod:`~vaetone.data.synthetic`).

Chapter: 01_data.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from vaetone import store
from vaetone.config import FAMILIES, SAMPLE_RATE, SOURCES, Config
from vaetone.data.nsynth import EXTRA_FIELDS, FIELDS, QUALITIES, SILENCE_PEAK
from vaetone.data.splits import subset_instruments
from vaetone.errors import DataError
from vaetone.progress import tqdm

log = logging.getLogger(__name__)

HOLD_SECONDS = 3.0
"""Rendered notes are held this long, then released for the rest of the 4 s."""


CLIP_PEAK = 0.99
"""Rendered audio is scaled by one common gain when its peak exceeds this."""


@contextmanager
def atomic_folder(folder: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``folder``, renamed onto it when the block succeeds.

    Args:
        folder: the folder to write.
        replace: an existing ``folder`` (a damaged one) is moved aside and deleted once the new
            one is in place; otherwise an existing complete folder (written meanwhile by another
            process) is kept.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp, aside = folder.parent / f".{folder.name}.tmp-{tag}", folder.parent / f".{folder.name}.old-{tag}"
    tmp.mkdir()
    try:
        yield tmp
        if replace and folder.exists():
            os.rename(folder, aside)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "examples.json").is_file():
                raise
            log.info("%s was written meanwhile by another process; keeping it", folder)
    finally:
        for path in (tmp, aside):
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)


def write_split(folder: str | Path, notes: pd.DataFrame, audio: np.ndarray, report: dict | None = None) -> Path:
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
    write_wavs(folder, notes["note_str"], audio)
    write_examples(folder, notes)
    if report is not None:
        store.write_json(folder / "render_report.json", report)
    return folder


def write_wavs(folder: str | Path, names, audio: np.ndarray) -> None:
    """Write 16-bit 16-kHz ``audio/<note_str>.wav`` files (``folder/audio`` is created), e.g. one chunk at a time.

    Args:
        folder: the NSynth-format folder; names: note_str values; audio: float32 (n, samples)
            in [-1, 1], in the order of ``names``. Chapter: 01_data (rendered sources).
    """
    folder = Path(folder)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    names = list(names)
    bar = tqdm(range(len(names)), desc="writing wavs", unit="note", disable=len(names) < 1000, leave=False)
    for i in bar:
        _write_wav(folder / "audio" / f"{names[i]}.wav", audio[i])


def write_examples(folder: str | Path, notes: pd.DataFrame) -> None:
    """Write a folder's ``examples.json`` atomically, one entry at a time (no second copy of the table in memory).

    Each entry holds the :data:`FIELDS`, any ``factor_*`` columns (synthetic source) and those of
    :data:`~vaetone.data.nsynth.EXTRA_FIELDS` the table has (SoundFont corpus).
    Args:
        folder: the NSynth-format folder; notes: one row per note. Chapter: 01_data (rendered sources).
    """
    columns = [*FIELDS, *(c for c in notes.columns if c.startswith("factor_") or c in EXTRA_FIELDS)]
    with store.atomic_path(Path(folder) / "examples.json") as tmp, open(tmp, "w") as out:
        out.write("{")
        for i, row in enumerate(notes[columns].itertuples(index=False)):
            entry = json.dumps(dict(zip(columns, row)), sort_keys=True, default=store.jsonable)
            out.write(f"{',' if i else ''}\n  {json.dumps(row.note_str)}: {entry}")
        out.write("\n}\n")


def _write_wav(file: Path, y: np.ndarray) -> None:
    """Write a 16-kHz 16-bit wav (encoded in memory: libsndfile would fsync every file it closes)."""
    buffer = io.BytesIO()
    sf.write(buffer, y, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    file.write_bytes(buffer.getvalue())


def render_skips(folder: Path) -> list[dict]:
    """Notes a renderer left out of ``folder`` (recorded in its render_report.json)."""
    file = folder / "render_report.json"
    if not file.is_file():
        return []
    return list(json.loads(file.read_text()).get("skipped", []))


def nsynth_rows(instruments: pd.DataFrame, pitches: Sequence[int], velocities: Sequence[int]) -> pd.DataFrame:
    """The note grid (one row per note, NSynth fields) of instruments x pitches x velocities.

    ``instruments`` has columns instrument, instrument_str, family, source, pitch_min, pitch_max;
    each instrument gets the pitches inside its own range.
    """
    rows = []
    for inst in instruments.itertuples(index=False):
        for p in (p for p in pitches if inst.pitch_min <= p <= inst.pitch_max):
            for v in velocities:
                rows.append(
                    {
                        "note": int(inst.instrument) * 1_000_000 + p * 1000 + v,
                        "note_str": f"{inst.instrument_str}-{p:03d}-{v:03d}",
                        "instrument": int(inst.instrument),
                        "instrument_str": inst.instrument_str,
                        "pitch": p,
                        "velocity": v,
                        "sample_rate": SAMPLE_RATE,
                        "qualities": [0] * len(QUALITIES),
                        "qualities_str": [],
                        "instrument_family": FAMILIES.index(inst.family),
                        "instrument_family_str": inst.family,
                        "instrument_source": SOURCES.index(inst.source),
                        "instrument_source_str": inst.source,
                    }
                )
    return pd.DataFrame(rows, columns=list(FIELDS))


def require_notes(notes: pd.DataFrame, cfg: Config) -> None:
    """Raise DataError before rendering when the filters leave no note to render."""
    if notes.empty:
        raise DataError(
            f"the {cfg.dataset} source has no note for these filters (pitch "
            f"{cfg.pitch_min}..{cfg.pitch_max} step {cfg.pitch_step}, families "
            f"{cfg.families or 'all'}, sources {cfg.sources or 'all'}, instruments "
            f"{cfg.instruments or 'all'}); widen them"
        )


def pitch_grid(cfg: Config) -> list[int]:
    """The rendered pitches: pitch_min..pitch_max in steps of pitch_step (MIDI)."""
    return list(range(cfg.pitch_min, cfg.pitch_max + 1, cfg.pitch_step))


def filter_instruments(table: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """Instruments of a rendered source kept by the family/source/instrument filters and max_instruments."""
    grid = pitch_grid(cfg)
    keep = (
        table["family"].isin(cfg.families or FAMILIES)
        & table["source"].isin(cfg.sources or SOURCES)
        & (table["instrument_str"].isin(cfg.instruments) if cfg.instruments else True)
        & np.array(
            [any(lo <= p <= hi for p in grid) for lo, hi in zip(table["pitch_min"], table["pitch_max"])], dtype=bool
        )
    )
    table = table[keep]
    if cfg.max_instruments > 0:
        chosen = subset_instruments(
            dict(zip(table["instrument_str"], table["family"])), cfg.max_instruments, cfg.split_seed
        )
        table = table[table["instrument_str"].isin(chosen)]
    return table.reset_index(drop=True)


def drop_silent(notes: pd.DataFrame, audio: np.ndarray, why: str) -> tuple[pd.DataFrame, np.ndarray, list]:
    """Leave out notes whose rendering is silent; returns the kept notes, audio and the skip list."""
    silent = np.abs(audio).max(axis=1) <= SILENCE_PEAK
    skipped = [{"note": n, "reason": why} for n in notes["note_str"][silent]]
    if skipped:
        log.warning(
            "%d rendered notes are silent and left out: %s",
            len(skipped),
            ", ".join(s["note"] for s in skipped[:10]) + (" ..." if len(skipped) > 10 else ""),
        )
    return notes[~silent].reset_index(drop=True), audio[~silent], skipped


def guard_clipping(audio: np.ndarray) -> float:
    """Scale all notes (in place) by one gain when the loudest exceeds :data:`CLIP_PEAK`; return the gain."""
    peak = max(float(audio.max()), -float(audio.min())) if audio.size else 0.0
    if peak <= CLIP_PEAK:
        return 1.0
    gain = CLIP_PEAK / peak
    audio *= np.float32(gain)
    log.warning("rendered peak %.3f would clip: all notes scaled by one gain %.4f", peak, gain)
    return gain
