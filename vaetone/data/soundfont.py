"""The SoundFont source: General MIDI programs of a corpus of ``.sf2`` files rendered with FluidSynth.

Each (font, GM program) pair the font has in bank 0 is one instrument, named as NSynth names
them; programs map to NSynth families and sources by the committed table ``gm_programs.csv``
(drums and sound effects left out; every program of the OPL-3 FM font is "synthetic"). Notes
are held 3 s and released for 1 s, and rendered in chunks, by ``workers`` processes, each
chunk on a fresh synthesizer, so memory stays flat and a note's audio does not depend on
the number of workers.

Chapter: 01_data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from vaetone import store
from vaetone.config import DEFAULT_SOUNDFONT, Config
from vaetone.data import fluid, fonts
from vaetone.data.nsynth import EXTRA_FIELDS, SILENCE_PEAK
from vaetone.data.writer import (
    CLIP_PEAK,
    filter_instruments,
    guard_clipping,
    nsynth_rows,
    pitch_grid,
    require_notes,
    write_examples,
    write_wavs,
)
from vaetone.errors import ConfigError, DataError, DependencyError
from vaetone.progress import tqdm

CHUNK_NOTES = 256
"""Notes rendered (and written) together on one synthesizer: about 65 MB of float32 audio."""

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# The corpus: instruments of the fonts
# ---------------------------------------------------------------------------------------------


def gm_programs(include_excluded: bool = False) -> pd.DataFrame:
    """The committed table mapping General MIDI programs to NSynth families and sources.

    Args:
        include_excluded: also return the programs left out (drums, sound effects), whose
            family and source are empty and whose comment says why.
    Returns:
        DataFrame with columns program (0-127), name, family, source, pitch_min, pitch_max
        (the playable range, MIDI), comment. Chapter: 01_data.
    """
    table = pd.read_csv(Path(__file__).with_name("gm_programs.csv"), keep_default_na=False)
    if not include_excluded:
        table = table[table["family"] != ""].copy()
        table[["pitch_min", "pitch_max"]] = table[["pitch_min", "pitch_max"]].astype(int)
    return table.reset_index(drop=True)


def corpus_instruments(soundfonts: Sequence[str | Path]) -> pd.DataFrame:
    """The instruments of a SoundFont corpus: every GM program of the table that a font has in bank 0.

    The pitches an instrument plays are those of the GM table's playable range
    (``gm_programs``) that the font sounds: a key sounds when one of the preset's zones and a
    zone of its instrument both hold it (:func:`vaetone.data.fonts.preset_keys_and_samples`).
    A program with no such pitch is not an instrument. Names are ``<family>_<source>_<NNN>``
    with NNN a running index per (family, source) over the corpus (fonts in the order given,
    programs ascending); every program of the OPL-3 FM font is "synthetic". Programs of one
    font that share any sample, transitively, form one ``sample_group`` ("<font stem>/<n>").
    Args:
        soundfonts: ``.sf2`` paths (parsed with sf2utils, no rendering).
    Returns:
        One row per instrument: instrument (running int), instrument_str, soundfont (file
        name), path, program, name, family, source, pitches (tuple of MIDI pitches),
        pitch_min, pitch_max (MIDI, their hull), sample_group.
    Raises:
        ConfigError: a path is not a .sf2 or a file name repeats. DataError: a font is unusable.
    Chapter: 01_data.
    """
    _check_unique(soundfonts)
    gm, rows, counters = gm_programs(), [], {}
    for path in soundfonts:
        font = fonts.parse_font(path)
        source = "synthetic" if font.name in fonts.SYNTHETIC_FONTS else None
        kept = []
        for r in gm.itertuples(index=False):
            preset = font.presets.get(int(r.program))
            pitches = tuple(k for k in sorted(preset.keys) if r.pitch_min <= k <= r.pitch_max) if preset else ()
            if pitches:
                kept.append((r, source or r.source, pitches))
        groups = fonts.sample_groups({int(r.program): font.presets[int(r.program)].samples for r, _, _ in kept})
        for r, src, pitches in kept:
            number = counters[(r.family, src)] = counters.get((r.family, src), -1) + 1
            rows.append(
                {
                    "instrument": len(rows),
                    "instrument_str": f"{r.family}_{src}_{number:03d}",
                    "soundfont": font.name,
                    "path": str(font.path),
                    "program": int(r.program),
                    "name": r.name,
                    "family": r.family,
                    "source": src,
                    "pitches": pitches,
                    "pitch_min": pitches[0],
                    "pitch_max": pitches[-1],
                    "sample_group": f"{font.stem}/{groups[int(r.program)]}",
                }
            )
    return pd.DataFrame(rows, columns=_CORPUS_COLUMNS)


_CORPUS_COLUMNS = (
    "instrument instrument_str soundfont path program name family source pitches pitch_min pitch_max sample_group"
).split()


def corpus_notes(table: pd.DataFrame, pitches: Sequence[int], velocities: Sequence[int]) -> pd.DataFrame:
    """The notes of corpus instruments: NSynth fields plus soundfont, program and sample_group.

    Args:
        table: rows of :func:`corpus_instruments`; pitches: the pitch grid (MIDI); velocities:
            MIDI velocities. An instrument plays the grid pitches among its own ``pitches``.
    Returns:
        One row per note, in the order of ``table``, then pitch, then velocity. Chapter: 01_data.
    """
    notes = nsynth_rows(table, pitches, velocities)
    extra = table.set_index("instrument_str")
    plays = {(i, p) for i, ps in zip(table["instrument_str"], table["pitches"]) for p in ps}
    sounding = [(i, p) in plays for i, p in zip(notes["instrument_str"], notes["pitch"])]
    notes = notes[np.array(sounding, dtype=bool)].reset_index(drop=True)
    for column in (*EXTRA_FIELDS, "path"):
        notes[column] = notes["instrument_str"].map(extra[column])
    return notes


def _check_unique(soundfonts: Sequence[str | Path]) -> None:
    """Raise ConfigError when two entries of ``soundfonts`` share a file name or are one file (e.g. a link)."""
    names = [Path(p).name for p in soundfonts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"soundfonts lists {', '.join(twice)} more than once; give each font once")
    seen: dict[Path, str] = {}
    for p in soundfonts:
        real = Path(p).expanduser().resolve()
        if real in seen:
            raise ConfigError(f"soundfonts lists {seen[real]} and {p}, which are the same file; give each font once")
        seen[real] = str(p)


# ---------------------------------------------------------------------------------------------
# Rendering the corpus in chunks
# ---------------------------------------------------------------------------------------------


def build(cfg: Config, folder: Path) -> None:
    """Render the corpus notes chosen by ``cfg`` into an NSynth-format ``folder``, chunk by chunk.

    Chunks of at most :data:`CHUNK_NOTES` notes of one font are rendered (``cfg.workers``
    processes) and their wavs written before more are rendered. No note is normalised on its
    own: if the loudest note exceeds 0.99, the chunks written at another gain are rendered
    again at one common gain (a chunk renders identically on a fresh synthesizer). Silent
    notes are left out with a reason; a font that fails to load is named in a warning and in
    ``render_report.json`` ("failed_fonts"), and the others still render.
    Args:
        cfg: the configuration (soundfonts, pitches, velocities, filters, workers).
        folder: an empty folder (the temporary folder of ``atomic_folder``).
    Raises:
        ConfigError: a .sf3 or repeated font. DependencyError: FluidSynth or a font file is
        missing. DataError: no font loads, or no note matches the filters.
    Chapter: 01_data.
    """
    paths = [fluid.check_soundfont(p) for p in cfg.soundfonts]
    _check_unique(paths)
    usable, failed = _usable_fonts(paths)
    grid = pitch_grid(cfg)
    table = corpus_instruments(usable)
    table = filter_instruments(table[[any(p in ps for p in grid) for ps in table["pitches"]]], cfg)
    notes = corpus_notes(table, grid, cfg.velocities)
    require_notes(notes, cfg)
    log.info("rendering %d notes of %d instruments of %d fonts", len(notes), len(table), len(usable))
    start = time.perf_counter()
    results, gain = _render_all(notes, folder, cfg.workers)
    seconds = time.perf_counter() - start
    silent = notes["note_str"].isin([n for r in results for n in r["silent"]]).to_numpy()
    skipped = [{"note": n, "reason": "rendered silent by the SoundFont"} for n in notes["note_str"][silent]]
    if skipped:
        log.warning("%d rendered notes are silent and left out (e.g. %s)", len(skipped), skipped[0]["note"])
    kept = notes[~silent]
    write_examples(folder, kept)
    report = {
        "source": "soundfont",
        "soundfonts": _font_report(kept, results, usable),
        "failed_fonts": failed,
        "gain": gain,
        "rendered_again_chunks": sum(r["again"] for r in results),
        "synth_gain": fluid.RENDER_GAIN,
        "chunks": len(results),
        "workers": cfg.workers,
        "render_seconds": round(seconds, 3),
        "notes_per_second": round(len(kept) / max(seconds, 1e-9), 1),
        "skipped": skipped,
    }
    store.write_json(folder / "render_report.json", report)


@dataclass(frozen=True)
class _Chunk:
    """Notes of one font rendered together: the task a worker gets."""

    index: int
    path: str
    notes: pd.DataFrame  # note_str, program, pitch, velocity, in render order
    folder: str  # the NSynth-format folder: its wavs go to folder/audio
    synth_gain: float
    gain: float | None  # the common gain, or None: 1, or 0.99 / the chunk's peak when it would clip


def _chunks(notes: pd.DataFrame, folder: Path) -> list[_Chunk]:
    """Consecutive slices of at most CHUNK_NOTES notes, never across two fonts."""
    tasks = []
    for path, part in notes.groupby("path", sort=False):
        for lo in range(0, len(part), CHUNK_NOTES):
            rows = part.iloc[lo : lo + CHUNK_NOTES][["note_str", "program", "pitch", "velocity"]].reset_index(drop=True)
            tasks.append(_Chunk(len(tasks), str(path), rows, str(folder), fluid.RENDER_GAIN, None))
    return tasks


def _render_all(notes: pd.DataFrame, folder: Path, workers: int) -> tuple[list[dict], float]:
    """Render every chunk (``workers`` processes), then again those written at another gain than the common one.

    Returns the chunks' results (in chunk order) and the common gain; the wavs are in ``folder/audio``.
    """
    tasks = _chunks(notes, folder)
    results = _run(tasks, workers, "rendering notes")
    peak = max((r["peak"] for r in results), default=0.0)
    common = 1.0 if peak <= CLIP_PEAK else CLIP_PEAK / peak
    again = [
        _Chunk(t.index, t.path, t.notes, t.folder, t.synth_gain, common)
        for t, r in zip(tasks, results)
        if r["gain"] != common
    ]
    if again:
        log.warning("rendered peak %.3f would clip: all notes scaled by one gain %.4f", peak, common)
        for r in _run(again, workers, "rendering at the common gain"):
            results[r["index"]] = {**r, "again": True}
    return results, common


def _run(tasks: list[_Chunk], workers: int, desc: str) -> list[dict]:
    """Results of :func:`_render_chunk` for ``tasks``, in task order (here, or in a spawned process pool)."""
    total = sum(len(t.notes) for t in tasks)
    bar = tqdm(total=total, desc=desc, unit="note", leave=False, disable=total < 1000)
    out = []
    with bar:
        if workers <= 1 or len(tasks) <= 1:
            for t in tasks:
                out.append(_render_chunk(t))
                bar.update(len(t.notes))
        else:
            with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=get_context("spawn")) as pool:
                for r in pool.map(_render_chunk, tasks):
                    out.append(r)
                    bar.update(r["notes"])
    return out


def _render_chunk(task: _Chunk) -> dict:
    """Render one chunk on a fresh synthesizer and write its audible notes as 16-bit wavs into ``task.folder/audio``.

    Returns:
        {"index", "path", "notes" (count), "peak" (before any gain), "gain" (applied),
        "silent" (names of the silent notes, not written), "seconds", "again": False}.
    """
    start = time.perf_counter()
    notes = task.notes
    audio = fluid.render_audio(notes["program"], notes["pitch"], notes["velocity"], task.path, task.synth_gain)
    peaks = np.abs(audio).max(axis=1) if len(audio) else np.zeros(0, np.float32)
    peak = float(peaks.max(initial=0.0))
    gain = task.gain if task.gain is not None else (1.0 if peak <= CLIP_PEAK else CLIP_PEAK / peak)
    if gain != 1.0:
        audio *= np.float32(gain)
    silent = peaks <= SILENCE_PEAK
    write_wavs(task.folder, notes["note_str"][~silent], audio[~silent])
    seconds = time.perf_counter() - start
    return {
        "index": task.index,
        "path": task.path,
        "peak": peak,
        "gain": gain,
        "notes": len(notes),
        "silent": notes["note_str"][silent].tolist(),
        "seconds": seconds,
        "again": False,
    }


def _font_report(notes: pd.DataFrame, results: list[dict], usable: list[Path]) -> list[dict]:
    """Per rendered font: file, path, notes, programs, seconds and notes/s (render time summed over workers)."""
    report = []
    for path in usable:
        part = notes[notes["path"] == str(path)]
        seconds = sum(r["seconds"] for r in results if r["path"] == str(path))
        report.append(
            {
                "file": path.name,
                "path": str(path),
                "notes": len(part),
                "programs": int(part["program"].nunique()),
                "seconds": round(seconds, 3),
                "notes_per_s": round(len(part) / seconds, 1) if seconds else 0.0,
            }
        )
    return report


# ---------------------------------------------------------------------------------------------
# Rendering notes, checking fonts
# ---------------------------------------------------------------------------------------------


def render_notes(
    programs: Sequence[int],
    pitches: Sequence[int],
    velocities: Sequence[int],
    soundfont_path: str | Path = DEFAULT_SOUNDFONT,
) -> np.ndarray:
    """Render notes of General MIDI programs with FluidSynth: held 3 s, then released for 1 s.

    One fresh synthesizer renders all notes (reverb and chorus off, bank 0, 16 kHz); every
    note starts from silence. No note is normalised on its own: if the loudest note would
    exceed 0.99, all notes are scaled by one common gain.
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
    audio = fluid.render_audio(programs, pitches, velocities, fluid.check_soundfont(soundfont_path), fluid.RENDER_GAIN)
    guard_clipping(audio)
    return audio


def _usable_fonts(paths: list[Path]) -> tuple[list[Path], list[dict]]:
    """The fonts that sf2utils parses and FluidSynth loads, and {"file", "path", "reason"} of the others."""
    usable, failed = [], []
    for path in paths:
        try:
            fonts.parse_font(path)
            fluid.check_loads(path)
        except (DataError, DependencyError) as exc:
            log.warning("SoundFont %s fails to load and is left out: %s", path, exc)
            failed.append({"file": path.name, "path": str(path), "reason": str(exc)})
        else:
            usable.append(path)
    if not usable:
        raise DataError(
            f"none of the SoundFonts in soundfonts loads: {'; '.join(f['reason'] for f in failed)}. "
            "Replace the files (scripts/install_system.sh installs Debian's fonts) or fix soundfonts."
        )
    return usable, failed
