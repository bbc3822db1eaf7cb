"""FluidSynth: a fresh synthesizer per batch of notes, the note shape, and the checks of fonts and library.

A note is held 3 s and released for 1 s at 16 kHz, with reverb and chorus off, and faded over
its last 50 ms. The source that uses it, :mod:`vaetone.data.soundfont`, renders in chunks.

Chapter: 01_data.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaetone.config import SAMPLE_RATE
from vaetone.data import fonts
from vaetone.data.nsynth import N_SAMPLES
from vaetone.data.writer import HOLD_SECONDS
from vaetone.errors import DataError, DependencyError

FADE_SECONDS = 0.05
"""Raised-cosine fade over the last 50 ms of a rendered SoundFont note (long releases end smoothly)."""

RENDER_GAIN = 0.8
"""FluidSynth's master gain (``synth.gain``); FluidR3_GM peaks at about 0.72 with it."""

INSTALL_HINT = (
    "Install FluidSynth and the General MIDI SoundFonts with scripts/install_system.sh "
    "(`apt-get install libfluidsynth3 fluid-soundfont-gm timgm6mb-soundfont opl3-soundfont "
    "csound-soundfont` on Debian/Ubuntu) or `brew install fluid-synth` (macOS), plus "
    "`pip install pyfluidsynth`; or pass soundfonts=[/path/to.sf2]."
)

log = logging.getLogger(__name__)


def render_audio(programs, pitches, velocities, soundfont_path: str | Path, synth_gain: float) -> np.ndarray:
    """Render notes on one fresh synthesizer (grouped by program, in a stable order) and fade them.

    Every note starts from silence. No gain is applied beyond FluidSynth's ``synth_gain``, so
    peaks may exceed 1: the callers scale all notes by one common gain.
    Args:
        programs, pitches, velocities: one value per note (GM program, MIDI pitch, MIDI
            velocity); scalars are broadcast.
        soundfont_path: a checked ``.sf2`` file (:func:`check_soundfont`).
        synth_gain: FluidSynth's master gain (:data:`RENDER_GAIN`).
    Returns:
        float32 (n, 64000), mono, 16 kHz. Chapter: 01_data.
    """
    programs, pitches, velocities = (
        np.asarray(a).astype(int) for a in np.broadcast_arrays(programs, pitches, velocities)
    )
    fluid = _open_synth(Path(soundfont_path), synth_gain)
    audio = np.zeros((len(programs), N_SAMPLES), np.float32)
    current, ok = None, True
    try:
        for i in np.argsort(programs, kind="stable"):
            if programs[i] != current:
                current = programs[i]
                ok = fluid.synth.program_select(0, fluid.sfid, 0, int(current)) == 0
                if not ok:
                    log.warning("%s has no preset for GM program %d (bank 0)", soundfont_path, current)
            if ok:
                audio[i] = _render_one(fluid, int(pitches[i]), int(velocities[i]))
    finally:
        fluid.synth.delete()
    return _apply_fade(audio)


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


def check_soundfont(path: str | Path) -> Path:
    """Check that FluidSynth and a ``.sf2`` file are there; return the file's path.

    Args:
        path: an entry of ``soundfonts``.
    Returns:
        The path, ``~`` expanded.
    Raises:
        ConfigError: not a ``.sf2`` (a ``.sf3`` cannot be split by sample).
        DependencyError: pyfluidsynth or libfluidsynth is missing, or the file is; for Debian's
            fonts the message names the apt package and scripts/install_system.sh.
    Chapter: 01_data.
    """
    fonts.require_sf2(path)
    _import_fluidsynth()
    path = Path(path).expanduser()
    if not path.is_file():
        package = fonts.apt_package(path)
        if package:
            raise DependencyError(
                f"SoundFont {path} not found: it comes with the Debian package {package}. Run "
                f"scripts/install_system.sh (or `sudo apt-get install {package}`), or leave it out of soundfonts."
            )
        raise DependencyError(f"SoundFont {path} not found. {INSTALL_HINT}")
    return path


def check_loads(path: str | Path) -> None:
    """Raise DataError when FluidSynth cannot load the SoundFont ``path`` (its preset tables only).

    Args:
        path: an existing ``.sf2`` file.
    Chapter: 01_data.
    """
    _open_synth(Path(path), RENDER_GAIN).synth.delete()


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


def _open_synth(path: Path, synth_gain: float) -> _Fluid:
    """A fresh 16-kHz FluidSynth synthesizer (reverb and chorus off) with the SoundFont loaded.

    Samples load on demand (``synth.dynamic-sample-loading``): loading reads only the preset
    tables (tens of ms, even for the 148-MB FluidR3_GM), and a chunk holds only its own samples.
    """
    fluidsynth = _import_fluidsynth()
    settings = {"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.dynamic-sample-loading": 1}
    synth = fluidsynth.Synth(gain=synth_gain, samplerate=SAMPLE_RATE, channels=16, **settings)
    sfid = synth.sfload(str(path))
    if sfid < 0:
        synth.delete()
        raise DataError(f"FluidSynth could not load {path} as a SoundFont (.sf2); replace the file or leave it out")
    c = ctypes
    write = c.CFUNCTYPE(c.c_int, c.c_void_p, c.c_int, c.c_void_p, c.c_int, c.c_int, c.c_void_p, c.c_int, c.c_int)(
        ("fluid_synth_write_float", fluidsynth._fl)
    )
    return _Fluid(synth, sfid, write)
