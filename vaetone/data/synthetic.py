"""The synthetic source: parametric harmonic tones whose generative factors are known.

The factors are stored as ``factor_*`` fields of each note.

Chapters: 01_data, 06_statistics (ground truth).
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
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
from vaetone.progress import tqdm

# ---------------------------------------------------------------------------------------------
# The synthetic source
# ---------------------------------------------------------------------------------------------

SYNTH_SEED = 20230701
"""Seed of the synthetic instruments' timbres: instrument i is the same whatever their number."""

_FAMILY_TIMBRE = {  # brightness dB/oct, attack s, decay s (T60), inharmonicity B, noise dB
    "bass": (-12.0, 0.010, 3.0, 1e-4, -40.0),
    "brass": (-4.0, 0.050, 20.0, 0.0, -35.0),
    "flute": (-15.0, 0.080, 20.0, 0.0, -20.0),
    "guitar": (-9.0, 0.005, 2.5, 3e-4, -40.0),
    "keyboard": (-8.0, 0.005, 4.0, 4e-4, -45.0),
    "mallet": (-14.0, 0.002, 1.0, 2e-3, -40.0),
    "organ": (-6.0, 0.030, 40.0, 0.0, -50.0),
    "reed": (-5.0, 0.040, 20.0, 0.0, -30.0),
    "string": (-6.0, 0.150, 20.0, 0.0, -32.0),
    "synth_lead": (-3.0, 0.010, 30.0, 0.0, -55.0),
    "vocal": (-10.0, 0.200, 20.0, 0.0, -28.0),
}
_SOURCE_EFFECT = {"acoustic": (1.0, 0.0), "electronic": (0.3, -8.0), "synthetic": (0.0, -20.0)}
"""Per source: multiplier of the inharmonicity, offset of the noise level (dB)."""

SYNTH_PEAK = 0.4
"""Peak amplitude of the harmonic part of a synthetic note at velocity 127 (loudness 0 dB)."""

RELEASE_T60 = 0.25
"""Seconds a synthetic note takes to fall by 60 dB after its release at 3 s."""


log = logging.getLogger(__name__)


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
        rows.append(
            {
                "instrument": i,
                "instrument_str": f"{family}_{source}_{i:03d}",
                "family": family,
                "source": source,
                "pitch_min": 21,
                "pitch_max": 108,
                "factor_brightness": round(float(tilt + rng.uniform(-3, 3)), 3),
                "factor_attack": round(float(np.clip(attack * np.exp(rng.normal(0, 0.5)), 0.002, 0.5)), 4),
                "factor_decay": round(float(np.clip(decay * np.exp(rng.normal(0, 0.4)), 0.3, 60.0)), 3),
                "factor_inharmonicity": float(f"{inharm * inharm_mult * np.exp(rng.normal(0, 0.5)):.3g}"),
                "factor_noise": round(float(min(noise + noise_offset + rng.uniform(-6, 6), -12.0)), 2),
            }
        )
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
    bar = tqdm(
        groups, total=groups.ngroups, desc="synthesising notes", unit="tone", disable=len(factors) < 1000, leave=False
    )
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


def build(cfg: Config, folder: Path) -> None:
    """Render the synthetic instruments chosen by ``cfg`` into an NSynth-format ``folder``."""
    table = filter_instruments(synthetic_instruments(cfg.synthetic_instruments), cfg)
    notes = nsynth_rows(table, pitch_grid(cfg), cfg.velocities)
    require_notes(notes, cfg)
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
