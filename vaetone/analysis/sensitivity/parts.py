"""The layout of a decoded spectrogram: frequency bands and time regions (attack, sustain, release).
Layout of the output (see :func:`output_parts`): frequency bands are contiguous groups of mel
bins of (nearly) equal mel width, labelled in Hz from the filter centres of
:func:`vaetone.spectral.melspec.mel_frequencies` (HTK mel scale, as the features); time regions
follow the NSynth note layout (a note is held for 3 s of its 4 s): *attack* is the frames
centred before ``ATTACK_S`` = 0.1 s, *sustain* those up to ``RELEASE_S`` = 3.0 s, *release* the
rest (frame ``t`` is centred at ``t * hop_length / sr``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaetone.config import SAMPLE_RATE, Config
from vaetone.errors import ConfigError
from vaetone.spectral.melspec import mel_frequencies

ATTACK_S = 0.1
"""End of the attack region, s: the frames centred before it."""
RELEASE_S = 3.0
"""Start of the release region, s: NSynth notes are held for 3 s, then released."""


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Part:
    """A region of the output spectrogram: all of it, a frequency band or a time region."""

    scope: str  # "all" | "band" | "region"
    name: str  # "all", "20-419 Hz", "attack", ...
    mels: slice
    frames: slice
    lo: float  # band: Hz; region: s; all: nan
    hi: float


def frequency_bands(n_mels: int, cfg: Config, n_bands: int = 6) -> list[Part]:
    """Split the mel bins into ``n_bands`` contiguous bands of (nearly) equal mel width, labelled in Hz.

    The bins are split into groups of (nearly) equal count, and mel bins are evenly spaced on
    the mel axis, so the bands have (nearly) equal mel width. A band's edges are the midpoints
    in Hz between the centre of its first bin and that of the previous bin, and between the
    centre of its last bin and that of the next bin; the outer edges are ``f_min`` and
    ``f_max``. The centres are :func:`vaetone.spectral.melspec.mel_frequencies`, the package's one
    mel-scale formula.

    Args:
        n_mels: mel bins of the output (must equal ``cfg.n_mels``).
        cfg: gives ``n_mels``, ``f_min``, ``f_max`` (Hz).
        n_bands: number of bands, 1..n_mels.
    Returns:
        Parts with scope "band", name like "20-419 Hz", lo/hi the band edges in Hz. Chapter: 04_sensitivity.
    """
    if not 1 <= n_bands <= n_mels:
        raise ConfigError(f"n_bands={n_bands} must be between 1 and n_mels={n_mels}")
    if n_mels != cfg.n_mels:
        raise ConfigError(
            f"the output has {n_mels} mel bins but cfg.n_mels is {cfg.n_mels}; pass the "
            "configuration the decoder was trained with"
        )
    centres = mel_frequencies(cfg)
    parts = []
    for idx in np.array_split(np.arange(n_mels), n_bands):
        a, b = int(idx[0]), int(idx[-1]) + 1
        lo = float(cfg.f_min) if a == 0 else float((centres[a - 1] + centres[a]) / 2)
        hi = float(cfg.f_max) if b == n_mels else float((centres[b - 1] + centres[b]) / 2)
        parts.append(Part("band", f"{lo:.0f}-{hi:.0f} Hz", slice(a, b), slice(None), lo, hi))
    return parts


def time_regions(n_frames: int, cfg: Config, attack_s: float = ATTACK_S, release_s: float = RELEASE_S) -> list[Part]:
    """The attack, sustain and release frames of a note (frame t centred at t·hop_length/sr).

    Args:
        n_frames: frames of the output (126 for a 4-s note with the defaults).
        cfg: gives ``hop_length``.
        attack_s, release_s: region boundaries, s.
    Returns:
        Parts with scope "region" named "attack", "sustain", "release" (empty ones left
        out), lo/hi in s. Chapter: 04_sensitivity.
    """
    t = np.arange(n_frames) * cfg.hop_length / SAMPLE_RATE
    bounds = (("attack", 0.0, attack_s), ("sustain", attack_s, release_s), ("release", release_s, np.inf))
    parts = []
    for name, lo, hi in bounds:
        idx = np.flatnonzero((t >= lo) & (t < hi))
        if idx.size:
            hi_s = min(hi, n_frames * cfg.hop_length / SAMPLE_RATE)
            parts.append(
                Part("region", name, slice(None), slice(int(idx[0]), int(idx[-1]) + 1), float(lo), float(hi_s))
            )
    return parts


def output_parts(n_mels: int, n_frames: int, cfg: Config, n_bands: int = 6) -> list[Part]:
    """All the regions a change is measured on: the whole output, each band, each time region."""
    whole = Part("all", "all", slice(None), slice(None), np.nan, np.nan)
    return [whole, *frequency_bands(n_mels, cfg, n_bands), *time_regions(n_frames, cfg)]


def _parts_frame(parts: Sequence[Part]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "scope": [p.scope for p in parts],
            "part": [p.name for p in parts],
            "lo": [p.lo for p in parts],
            "hi": [p.hi for p in parts],
            "unit": [{"band": "Hz", "region": "s"}.get(p.scope, "") for p in parts],
        }
    )
