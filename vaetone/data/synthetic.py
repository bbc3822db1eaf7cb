"""The synthetic source: a factorial design of parametric harmonic tones whose generative factors are known.

Every note draws its own factors, independently and uniformly: pitch from the pitch grid,
loudness from the velocities, and five timbre factors (brightness, attack, decay,
inharmonicity, noise), each from ``cfg.factor_levels`` values spanning its range in the
configuration (attack and decay spaced evenly in log, the others linearly). Instruments only
group notes for the splits; they carry no factor. So the factors are mutually independent,
and a code equal to them is a perfect, recoverable ground truth.

The factors are stored as ``factor_*`` fields of each note.

:func:`factor_grid` renders notes that vary one factor at a time (chapter 08's sound grid).

Chapters: 01_data, 06_statistics, 08_validity (ground truth).
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from vaetone.config import FAMILIES, SAMPLE_RATE, SOURCES, Config
from vaetone.data.nsynth import FACTORS, N_SAMPLES, QUALITIES
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
from vaetone.errors import ConfigError
from vaetone.progress import tqdm

# ---------------------------------------------------------------------------------------------
# The factorial design
# ---------------------------------------------------------------------------------------------

SYNTH_SEED = 20230701
"""Seed of the synthetic notes' factors and noise: a note's draw depends only on (instrument, pitch, velocity)."""

TIMBRE_FACTORS = {  # factor column: (config range, spaced in log)
    "factor_brightness": ("brightness_range", False),
    "factor_attack": ("attack_range", True),
    "factor_decay": ("decay_range", True),
    "factor_inharmonicity": ("inharmonicity_range", False),
    "factor_noise": ("noise_range", False),
}
"""The five timbre factors drawn per note, with the configuration range each spans."""

TONE_FACTORS = ("factor_pitch", "factor_brightness", "factor_inharmonicity")
"""The factors that set the steady harmonic tone; notes sharing them share one rendered tone."""

SYNTH_PEAK = 0.4
"""Peak amplitude of the harmonic part of a synthetic note at velocity 127 (loudness 0 dB)."""

RELEASE_T60 = 0.25
"""Seconds a synthetic note takes to fall by 60 dB after its release at 3 s."""


log = logging.getLogger(__name__)


def synthetic_instruments(n: int) -> pd.DataFrame:
    """The ``n`` synthetic instruments: a grouping of notes for the splits, spread over the 11 families.

    Instrument i has family ``FAMILIES[i % 11]`` and source ``SOURCES[(i // 11) % 3]``, so the
    split code and the family and source filters work as for the other sources; an instrument
    carries no factor (each note draws its own, :func:`draw_factors`).
    Args:
        n: number of instruments.
    Returns:
        DataFrame (n rows): instrument, instrument_str (``<family>_<source>_<i:03d>``), family,
        source, pitch_min=21, pitch_max=108. Chapter: 01_data.
    """
    rows = []
    for i in range(n):
        family, source = FAMILIES[i % len(FAMILIES)], SOURCES[(i // len(FAMILIES)) % len(SOURCES)]
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
    return pd.DataFrame(rows, columns=["instrument", "instrument_str", "family", "source", "pitch_min", "pitch_max"])


def factor_values(cfg: Config) -> dict[str, np.ndarray]:
    """The values each timbre factor takes: ``cfg.factor_levels`` of them spanning its configured range.

    Attack and decay are spaced evenly in log (equal ratios), the others linearly; values are
    rounded to 6 significant digits so that they survive examples.json unchanged.
    Args:
        cfg: uses factor_levels and the ``*_range`` parameters.
    Returns:
        {factor column: (factor_levels,) float64 ascending}, in the units of
        :data:`~vaetone.data.nsynth.FACTORS` (dB/oct, s, s, B, dB). Chapters: 01_data, 08_validity.
    """
    out = {}
    for column, (name, in_log) in TIMBRE_FACTORS.items():
        low, high = (float(v) for v in getattr(cfg, name))
        values = (np.geomspace if in_log else np.linspace)(low, high, cfg.factor_levels)
        out[column] = np.array([float(f"{v:.6g}") for v in values])
    return out


def draw_factors(notes: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """Draw the seven generative factors of each note, independently and uniformly.

    Pitch and loudness come from the note's pitch and velocity; each timbre factor is one of
    :func:`factor_values`, drawn uniformly by a generator seeded by (SYNTH_SEED, instrument,
    pitch, velocity), so a note's factors do not depend on the other notes, the number of
    instruments, or the instrument's family and source.
    Args:
        notes: one row per note with instrument, pitch and velocity (e.g. from ``nsynth_rows``).
        cfg: uses factor_levels and the ``*_range`` parameters.
    Returns:
        DataFrame (same index as ``notes``) with the :data:`~vaetone.data.nsynth.FACTORS`
        columns. Chapters: 01_data, 08_validity.
    """
    values = factor_values(cfg)
    keys = zip(notes["instrument"], notes["pitch"], notes["velocity"])
    idx = np.array(
        [
            np.random.default_rng([SYNTH_SEED, int(i), int(p), int(v)]).integers(
                cfg.factor_levels, size=len(TIMBRE_FACTORS)
            )
            for i, p, v in keys
        ],
        dtype=np.int64,
    ).reshape(len(notes), len(TIMBRE_FACTORS))
    out = pd.DataFrame(index=notes.index)
    out["factor_pitch"] = notes["pitch"].astype(float)
    out["factor_loudness"] = loudness_db(notes["velocity"])
    for j, column in enumerate(TIMBRE_FACTORS):
        out[column] = values[column][idx[:, j]]
    return out[list(FACTORS)]


def loudness_db(velocity) -> np.ndarray:
    """Loudness of a synthetic note from its MIDI velocity: 40*log10(velocity/127) dB (GM's curve).

    Args:
        velocity: MIDI velocities (scalar or array). Returns: float64 dB (<= 0), rounded to 1e-3.
    Chapter: 01_data.
    """
    return np.round(40.0 * np.log10(np.asarray(velocity, float) / 127.0), 3)


def synthetic_notes(cfg: Config) -> pd.DataFrame:
    """The synthetic source's note table for ``cfg``, with its factors and quality bits, without audio.

    Instruments are those of :func:`synthetic_instruments` kept by the family, source and
    instrument filters; each plays every pitch of the grid at every velocity.
    Args:
        cfg: uses synthetic_instruments, the pitch grid, velocities, filters and factor ranges.
    Returns:
        DataFrame (one row per note): the NSynth fields, the :data:`~vaetone.data.nsynth.FACTORS`
        columns and the qualities implied by them (:func:`synthetic_qualities`).
    Chapters: 01_data, 08_validity.
    """
    table = filter_instruments(synthetic_instruments(cfg.synthetic_instruments), cfg)
    notes = nsynth_rows(table, pitch_grid(cfg), cfg.velocities)
    require_notes(notes, cfg)
    notes = pd.concat([notes, draw_factors(notes, cfg)], axis=1)
    notes["qualities"] = synthetic_qualities(notes)
    notes["qualities_str"] = [[q for q, b in zip(QUALITIES, bits) if b] for bits in notes["qualities"]]
    return notes


def synthetic_qualities(factors: pd.DataFrame) -> list[list[int]]:
    """NSynth quality bits that each note's factors imply: bright, dark, fast_decay, percussive.

    bright: tilt > -5 dB/oct; dark: tilt < -12 dB/oct; fast_decay: T60 < 1.5 s; percussive:
    attack < 30 ms and T60 < 3 s. The other qualities are 0.
    Args:
        factors: one row per note with factor_brightness, factor_attack, factor_decay.
    Returns:
        One list of len(QUALITIES) bits per note, in :data:`~vaetone.data.nsynth.QUALITIES` order.
    Chapter: 01_data.
    """
    bright, attack, decay = (factors[c].to_numpy(float) for c in ("factor_brightness", "factor_attack", "factor_decay"))
    bits = {q: np.zeros(len(factors), int) for q in QUALITIES}
    bits["bright"] = (bright > -5).astype(int)
    bits["dark"] = (bright < -12).astype(int)
    bits["fast_decay"] = (decay < 1.5).astype(int)
    bits["percussive"] = ((attack < 0.03) & (decay < 3.0)).astype(int)
    return [list(map(int, row)) for row in np.stack([bits[q] for q in QUALITIES], axis=1)]


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def synthesize_notes(factors: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """Render harmonic tones from their generative factors (pure numpy).

    The tone is a sum of partials k = 1.. below 7.6 kHz at k*f0*sqrt((1+B k^2)/(1+B)) (the
    fundamental stays at f0) with amplitudes k^(brightness/6.02) (so brightness is the tilt
    in dB per octave) and Schroeder phases, plus white noise at ``factor_noise`` dB re. the
    tone; both share one envelope: linear attack over factor_attack s, exponential decay
    (60 dB in factor_decay s), release at 3 s (60 dB in 0.25 s). Notes sharing pitch,
    brightness and inharmonicity share one rendered tone. Each note's noise comes from a
    generator seeded by (seed, its ``note`` id, or its row position when there is no ``note``
    column), so a note sounds the same whatever the other notes.
    Args:
        factors: one row per note with the :data:`FACTORS` columns (and optionally ``note``).
        seed: seed of the noise.
    Returns:
        float32 (n, 64000), 16 kHz. Chapter: 01_data; 06_statistics and 08_validity for ground truth.
    """
    t = np.arange(N_SAMPLES, dtype=np.float32) / SAMPLE_RATE
    frame = factors.reset_index(drop=True)
    ids = frame["note"].to_numpy(np.int64) if "note" in frame else np.arange(len(frame), dtype=np.int64)
    level = SYNTH_PEAK * 10 ** (frame["factor_loudness"].to_numpy(float) / 20)
    noise_db, attack, decay = (frame[c].to_numpy(float) for c in ("factor_noise", "factor_attack", "factor_decay"))
    audio = np.empty((len(frame), N_SAMPLES), np.float32)
    groups = frame.groupby(list(TONE_FACTORS), sort=True).indices
    bar = tqdm(groups.values(), total=len(groups), desc="synthesising notes", unit="tone", disable=len(frame) < 1000)
    with _one_blas_thread():
        for rows in bar:
            tone, rms = _harmonic_tone(t, frame.iloc[rows[0]])
            for j in rows:
                y = audio[j]
                np.random.default_rng([seed, int(ids[j])]).standard_normal(dtype=np.float32, out=y)
                y *= np.float32(rms * 10 ** (noise_db[j] / 20))
                y += tone
                y *= _envelope(t, attack[j], decay[j])
                y *= np.float32(level[j])
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
    fk = k * f0 * np.sqrt((1 + b * k**2) / (1 + b))
    k, fk = k[fk < 0.95 * SAMPLE_RATE / 2], fk[fk < 0.95 * SAMPLE_RATE / 2]
    amp = k ** (f["factor_brightness"] / (20 * np.log10(2)))
    amp /= amp.sum()
    phase = np.pi * k**2 / len(k)
    w = 2 * np.pi * fk / SAMPLE_RATE
    block = 320
    starts = np.arange(len(t) // block) * block
    rotate = np.exp(1j * np.outer(w, np.arange(block))).astype(np.complex64)
    coef = (amp * np.exp(1j * (phase + np.outer(starts, w)))).astype(np.complex64)
    tone = (coef @ rotate).imag.reshape(-1).astype(np.float32)
    return tone, float(np.sqrt(0.5 * np.sum(amp**2)))


def _envelope(t: np.ndarray, attack: float, decay: float) -> np.ndarray:
    """Amplitude envelope (float32, like ``t``): linear attack, decay by 60 dB in ``decay`` s, release at 3 s.

    Both exponential segments go through one ``exp``: 10^(-3 x / T) = e^(-3 ln(10) x / T).
    """
    rate = np.float32(-3 * np.log(10))
    x = np.maximum(t - np.float32(attack), np.float32(0)) * (rate / np.float32(decay))
    x += np.maximum(t - np.float32(HOLD_SECONDS), np.float32(0)) * (rate / np.float32(RELEASE_T60))
    env = np.exp(x, out=x)
    env *= np.minimum(t / np.float32(attack), np.float32(1.0))
    return env


# ---------------------------------------------------------------------------------------------
# One factor at a time
# ---------------------------------------------------------------------------------------------

GRID_ROWS = {  # factor column: (row label, unit, number format)
    "factor_brightness": ("brightness", "dB/oct", "{:g}"),
    "factor_attack": ("attack", "s", "{:.2g}"),
    "factor_decay": ("decay (T60)", "s", "{:.2g}"),
    "factor_inharmonicity": ("inharmonicity B", "", "{:.2g}"),
    "factor_noise": ("noise", "dB re. tone", "{:g}"),
    "factor_loudness": ("loudness", "dB", "{:.1f}"),
    "factor_pitch": ("pitch", "MIDI", "{:g}"),
}
"""The rows of :func:`factor_grid`: each factor's label, unit and number format."""

GRID_DEFAULT = tuple(GRID_ROWS)[:-1]
"""The rows chapter 08 shows: every factor but pitch (no descriptor scores it, and each row costs ~1 MB of page)."""


@dataclass(frozen=True)
class FactorGrid:
    """Notes that vary one synthetic factor at a time, every other factor at its middle level.

    factors: one row per note (row-major), with ``row`` (the factor varied), ``level`` (0..n-1)
    and the :data:`~vaetone.data.nsynth.FACTORS` columns; audio: (n_rows, n_levels, 64000)
    float32 at 16 kHz, as rendered times one gain for the whole grid; logmel: (n_rows, n_levels,
    n_mels, frames) dB of that audio; rows: row labels (the factors); columns: column titles;
    cell_titles: (n_rows, n_levels) each note's value and unit; findings: ``peak_range`` ("-29 to
    -1 dBFS", the clips' peaks), ``gain_db`` (the one gain) and ``middle`` (the middle levels, as text).
    Chapter: 08_validity.
    """

    factors: pd.DataFrame
    audio: np.ndarray
    logmel: np.ndarray
    rows: list
    columns: list
    cell_titles: list
    findings: dict


def grid_levels(cfg: Config, n_levels: int = 5) -> dict[str, np.ndarray]:
    """The ``n_levels`` values of each factor in a :func:`factor_grid`, spanning the design's range.

    Timbre factors: :func:`factor_values` with ``n_levels`` values (the design's own values when
    ``n_levels == cfg.factor_levels``); loudness: :func:`loudness_db` of velocities spaced evenly
    from the lowest to the highest of ``cfg.velocities``; pitch: MIDI pitches spaced evenly over
    pitch_min..pitch_max (rounded). Args: cfg; n_levels: odd, 3 to 9, so that a middle level exists.
    Returns:
        {factor column of :data:`GRID_ROWS`: (n_levels,) ascending}. Chapter: 08_validity.
    """
    if n_levels % 2 == 0 or not 3 <= n_levels <= 9:
        raise ConfigError(f"n_levels={n_levels!r}: a factor grid needs an odd number of levels from 3 to 9")
    levels = factor_values(replace(cfg, factor_levels=n_levels))
    velocity = np.linspace(min(cfg.velocities), max(cfg.velocities), n_levels).round()
    levels["factor_loudness"] = loudness_db(velocity)
    levels["factor_pitch"] = np.linspace(cfg.pitch_min, cfg.pitch_max, n_levels).round()
    return {c: levels[c] for c in GRID_ROWS}


def factor_grid(cfg: Config, n_levels: int = 5, factors=GRID_DEFAULT, peak_dbfs: float = -1.0) -> FactorGrid:
    """Render what each factor sounds like: one row per factor, its levels across, the rest at their middle.

    Args:
        cfg: the synthetic source's ranges, pitch grid and velocities, and the log-mel parameters.
        n_levels: levels per row (odd, 3 to 9; :func:`grid_levels`).
        factors: the factor columns of :data:`GRID_ROWS` to show, in row order (default :data:`GRID_DEFAULT`).
        peak_dbfs: the whole grid is scaled by one gain so that its loudest sample is at this level
            (dBFS; :func:`vaetone.spectral.inversion.peak_normalise`): the levels between notes stay as rendered.
    Returns:
        A :class:`FactorGrid`: audio rendered by :func:`synthesize_notes` times the one gain, and its
        log-mel (:func:`vaetone.spectral.melspec.log_mel`, on the CPU). Chapter: 08_validity.
    """
    from vaetone.spectral.inversion import peak_normalise
    from vaetone.spectral.melspec import log_mel

    unknown = [f for f in factors if f not in GRID_ROWS]
    if unknown or not factors:
        raise ConfigError(f"factors {unknown or list(factors)}: choose one or more of {list(GRID_ROWS)}")
    levels = grid_levels(cfg, n_levels)
    middle = {c: float(v[n_levels // 2]) for c, v in levels.items()}
    frame = pd.DataFrame(
        [{**middle, f: float(v), "row": f, "level": i} for f in factors for i, v in enumerate(levels[f])]
    )
    rendered = synthesize_notes(frame, seed=SYNTH_SEED)
    audio, gain = peak_normalise(rendered, peak_dbfs)
    logmel = log_mel(audio, cfg, device="cpu").numpy()
    peaks = 20 * np.log10(np.abs(audio).max(1))
    columns = [f"level {i + 1}" for i in range(n_levels)]
    columns[0], columns[n_levels // 2], columns[-1] = "lowest", f"level {n_levels // 2 + 1} (middle)", "highest"
    findings = {
        "peak_range": f"{peaks.min():.0f} to {peaks.max():.0f} dBFS",
        "gain_db": float(20 * np.log10(gain)),
        "middle": "; ".join(
            f"{GRID_ROWS[c][0]} " + _with_unit(c, GRID_ROWS[c][2].format(v)) for c, v in middle.items()
        ),
    }
    shape = (len(factors), n_levels)
    return FactorGrid(
        frame[["row", "level", *FACTORS]],
        audio.reshape(*shape, -1),
        logmel.reshape(*shape, *logmel.shape[1:]),
        [GRID_ROWS[f][0] for f in factors],
        columns,
        [[_with_unit(f, GRID_ROWS[f][2].format(v)) for v in levels[f]] for f in factors],
        findings,
    )


def _with_unit(factor: str, text: str) -> str:
    """``text`` followed by the factor's unit (none for B)."""
    unit = GRID_ROWS[factor][1]
    return f"{text} {unit}" if unit else text


def build(cfg: Config, folder: Path) -> None:
    """Render the synthetic notes chosen by ``cfg`` (:func:`synthetic_notes`) into an NSynth-format ``folder``.

    Args:
        cfg: the data parameters; folder: the folder to write (its render_report.json records
            the gain, the render time and notes per second). Chapter: 01_data.
    """
    notes = synthetic_notes(cfg)
    log.info("synthesising %d notes of %d instruments", len(notes), notes["instrument"].nunique())
    start = time.perf_counter()
    audio = synthesize_notes(notes, seed=SYNTH_SEED)
    gain = guard_clipping(audio)
    seconds = time.perf_counter() - start
    notes, audio, skipped = drop_silent(notes, audio, "synthesised silent")
    report = {
        "source": "synthetic",
        "gain": gain,
        "render_seconds": round(seconds, 3),
        "notes_per_second": round(len(audio) / max(seconds, 1e-9), 1),
        "skipped": skipped,
    }
    write_split(folder, notes, audio, report)
