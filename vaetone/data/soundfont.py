"""The SoundFont source: General MIDI programs rendered with FluidSynth in the NSynth format.

Notes are held 3 s and released for 1 s; programs map to NSynth families and sources by the
committed table ``gm_programs.csv`` (drums and sound effects left out).

Chapter: 01_data.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vaetone.config import DEFAULT_SOUNDFONT, SAMPLE_RATE, Config
from vaetone.data.nsynth import N_SAMPLES
from vaetone.data.writer import (
    HOLD_SECONDS,
    drop_silent,
    filter_instruments,
    guard_clipping,
    nsynth_rows,
    pitch_grid,
    require_notes,
    write_split,
)
from vaetone.errors import DataError, DependencyError
from vaetone.progress import tqdm

FADE_SECONDS = 0.05
"""Raised-cosine fade over the last 50 ms of a rendered SoundFont note (long releases end smoothly)."""

RENDER_GAIN = 0.8
"""FluidSynth's master gain (``synth.gain``); FluidR3_GM peaks at about 0.72 with it."""

INSTALL_HINT = (
    "Install FluidSynth and a General MIDI SoundFont: "
    "`apt-get install libfluidsynth3 fluid-soundfont-gm` (Debian/Ubuntu) or "
    "`brew install fluid-synth` (macOS), plus `pip install pyfluidsynth`; "
    "or pass soundfont_path=/path/to.sf2."
)


# ---------------------------------------------------------------------------------------------
# The SoundFont source
# ---------------------------------------------------------------------------------------------

log = logging.getLogger(__name__)


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
    table["instrument_str"] = [
        f"{f}_{s}_{p:03d}" if f else "" for f, s, p in zip(table["family"], table["source"], table["program"])
    ]
    return table.reset_index(drop=True)


def build(cfg: Config, folder: Path) -> None:
    """Render the GM programs chosen by ``cfg`` into an NSynth-format ``folder``."""
    _check_soundfont(cfg.soundfonts[0])
    table = filter_instruments(gm_programs(), cfg)
    notes = nsynth_rows(table, pitch_grid(cfg), cfg.velocities)
    require_notes(notes, cfg)
    log.info("rendering %d notes of %d GM programs with %s", len(notes), len(table), cfg.soundfonts[0])
    start = time.perf_counter()
    audio, gain = _render(
        notes["instrument"].to_numpy(), notes["pitch"].to_numpy(), notes["velocity"].to_numpy(), cfg.soundfonts[0]
    )
    seconds = time.perf_counter() - start
    notes, audio, skipped = drop_silent(notes, audio, "rendered silent by the SoundFont")
    report = {
        "source": "soundfont",
        "soundfont": str(cfg.soundfonts[0]),
        "gain": gain,
        "synth_gain": RENDER_GAIN,
        "render_seconds": round(seconds, 3),
        "notes_per_second": round(len(audio) / max(seconds, 1e-9), 1),
        "skipped": skipped,
    }
    write_split(folder, notes, audio, report)


def render_notes(
    programs: Sequence[int],
    pitches: Sequence[int],
    velocities: Sequence[int],
    soundfont_path: str | Path = DEFAULT_SOUNDFONT,
) -> np.ndarray:
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
    programs, pitches, velocities = (a.astype(int) for a in np.broadcast_arrays(programs, pitches, velocities))
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
    return audio, guard_clipping(audio)


def _render_one(fluid: _Fluid, pitch: int, velocity: int) -> np.ndarray:
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


def _silence(fluid: _Fluid) -> None:
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
    write: object  # fluid_synth_write_float(synth, n, lbuf, loff, lincr, rbuf, roff, rincr)


def _open_synth(soundfont_path: str | Path) -> _Fluid:
    """A 16-kHz FluidSynth synthesizer (reverb and chorus off) with the SoundFont loaded."""
    path = _check_soundfont(soundfont_path)
    fluidsynth = _import_fluidsynth()
    synth = fluidsynth.Synth(
        gain=RENDER_GAIN, samplerate=SAMPLE_RATE, channels=16, **{"synth.reverb.active": 0, "synth.chorus.active": 0}
    )
    sfid = synth.sfload(str(path))
    if sfid < 0:
        synth.delete()
        raise DependencyError(f"{path} could not be loaded as a SoundFont (.sf2). {INSTALL_HINT}")
    c = ctypes
    write = c.CFUNCTYPE(c.c_int, c.c_void_p, c.c_int, c.c_void_p, c.c_int, c.c_int, c.c_void_p, c.c_int, c.c_int)(
        ("fluid_synth_write_float", fluidsynth._fl)
    )
    return _Fluid(synth, sfid, write)
