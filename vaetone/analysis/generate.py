"""Generation from the latent space: prior samples and interpolations between notes (chapter 03).

The generators take a ``decode(z) -> (n, 1, n_mels, frames)`` callable (``Run.decode``, a
PCA baseline's ``decode``) and return latents and normalised log-mel tensors; :func:`to_db`
turns those into dB. The ``*_examples`` functions build what chapter 03 shows and plays:
dB spectrograms with their audio (``vaetone.spectral.inversion.mel_to_audio``), as numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from vaetone.errors import ConfigError
from vaetone.spectral.inversion import mel_to_audio


def prior_samples(
    decode: Callable, n: int, latent_dim: int, seed: int = 0, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode ``n`` draws of the prior N(0, temperature² I).

    Args:
        decode: ``decode(z (n, latent_dim)) -> (n, 1, n_mels, frames)``.
        n, latent_dim: how many, of what size.
        seed: seed of the draws (same seed, same notes).
        temperature: scale of the prior's standard deviation.
    Returns:
        ``(z (n, latent_dim), x (n, 1, n_mels, frames))``, normalised log-mel on the CPU.
    Chapter: 03_training.
    """
    g = torch.Generator().manual_seed(seed)
    z = temperature * torch.randn(n, latent_dim, generator=g)
    return z, torch.as_tensor(decode(z)).float().cpu()


def lerp(z0, z1, steps: int) -> torch.Tensor:
    """Linear interpolation ``(1 - t) z0 + t z1`` at ``steps`` evenly spaced t in [0, 1]: ``(steps, d)``."""
    z0, z1, t = _endpoints(z0, z1, steps)
    return (1 - t) * z0 + t * z1


def slerp(z0, z1, steps: int) -> torch.Tensor:
    """Spherical interpolation (White 2016) at ``steps`` evenly spaced t in [0, 1]: ``(steps, d)``.

    ``sin((1-t)Ω)/sin Ω · z0 + sin(tΩ)/sin Ω · z1`` with Ω the angle between z0 and z1: the path
    follows the great circle, so it avoids the low-norm centre of the Gaussian prior that linear
    interpolation crosses. Falls back to :func:`lerp` for (anti)parallel endpoints.
    """
    z0, z1, t = _endpoints(z0, z1, steps)
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp(min=1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(torch.sin(omega).abs()) < 1e-6:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def _endpoints(z0, z1, steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checked float64 endpoints ``(d,)`` and the column of t values ``(steps, 1)``."""
    z0 = torch.as_tensor(np.asarray(z0), dtype=torch.float64).flatten()
    z1 = torch.as_tensor(np.asarray(z1), dtype=torch.float64).flatten()
    if z0.shape != z1.shape:
        raise ConfigError(f"interpolation endpoints differ in size: {tuple(z0.shape)} and {tuple(z1.shape)}")
    if steps < 2:
        raise ConfigError(f"interpolation needs steps >= 2, got {steps}")
    return z0, z1, torch.linspace(0, 1, steps, dtype=torch.float64)[:, None]


def interpolate(decode: Callable, z0, z1, steps: int = 7, method: str = "linear") -> tuple[torch.Tensor, torch.Tensor]:
    """Decode an interpolation between two latents.

    Args:
        decode: ``decode(z) -> (n, 1, n_mels, frames)``.
        z0, z1: latents ``(latent_dim,)`` (e.g. the posterior means of two notes).
        steps: points including both ends.
        method: "linear" or "spherical".
    Returns:
        ``(z (steps, latent_dim) float32, x (steps, 1, n_mels, frames))`` on the CPU.
    Chapter: 03_training.
    """
    paths = {"linear": lerp, "spherical": slerp}
    if method not in paths:
        raise ConfigError(f"method={method!r} is not one of {sorted(paths)}")
    z = paths[method](z0, z1, steps).float()
    return z, torch.as_tensor(decode(z)).float().cpu()


def pick_pair(meta: pd.DataFrame, split: str = "test", seed: int = 0) -> tuple[str, str]:
    """Two notes of ``split`` from different instrument families, at the same pitch and velocity if possible.

    Args:
        meta: the features' metadata (columns ``split``, ``instrument_family_str``, ``pitch``, ``velocity``).
        split: which split to draw from.
        seed: seed of the choice.
    Returns:
        Two index labels (note_str) of ``meta``. Chapter: 03_training.
    """
    rows = meta[meta["split"] == split]
    if rows["instrument_family_str"].nunique() < 2:
        raise ConfigError(
            f"the {split} split holds fewer than two instrument families; choose another split or widen the data"
        )
    rng = np.random.default_rng(seed)
    groups = [g for _, g in rows.groupby(["pitch", "velocity"]) if g["instrument_family_str"].nunique() > 1]
    pool = groups[rng.integers(len(groups))] if groups else rows
    first = pool.index[rng.integers(len(pool))]
    others = pool[pool["instrument_family_str"] != pool.loc[first, "instrument_family_str"]]
    return str(first), str(others.index[rng.integers(len(others))])


def to_db(x, features) -> torch.Tensor:
    """Normalised log-mel ``(n, 1, n_mels, frames)`` back to dB ``(n, n_mels, frames)`` (the features' statistics)."""
    db = torch.as_tensor(features.denormalise(torch.as_tensor(x).float()))
    return db[:, 0] if db.ndim == 4 else db


def pick_examples(per_note: pd.DataFrame, n: int, column: str = "lsd_db") -> list[str]:
    """``n`` notes spread over the range of one model's errors, from best to worst.

    Args:
        per_note: a per-note table of :func:`vaetone.analysis.evaluation.evaluate_models` (indexed by note_str).
        n: how many notes (0: none).
        column: the error that orders them (lower is better).
    Returns:
        Index labels, every ``len // n``-th note in order of ``column``. Chapter: 03_training.
    """
    if n <= 0:
        return []
    order = per_note.sort_values(column).index
    return [str(k) for k in order[:: max(1, len(order) // n)][:n]]


def reconstruction_examples(models: dict[str, Callable], x, original, features, cfg) -> tuple[np.ndarray, np.ndarray]:
    """The original, its inversion alone and each model's reconstruction, as dB spectrograms and audio.

    Column 0 is the original: its log-mel (``x``) and its wav. Column 1 is "inversion only":
    Griffin-Lim of the original's log-mel, shown as the log-mel of that audio
    (``vaetone.spectral.melspec.log_mel``), so its difference from column 0 is what the
    inversion alone loses. Then one column per model: its log-mel and that log-mel inverted the
    same way.

    Args:
        models: {name: reconstruct(x (n, 1, n_mels, frames) normalised) -> same shape}.
        x: the notes, normalised ``(n, 1, n_mels, frames)``; original: their wavs ``(n, samples')``.
        features: the Features (for :func:`to_db`); cfg: the configuration (inversion parameters).
    Returns:
        ``db (n, 2 + len(models), n_mels, frames)`` in dB and ``audio (n, 2 + len(models), samples)``
        at 16 kHz, ``samples = hop_length * (frames - 1)`` (the wav trimmed to it). Chapter: 03_training.
    """
    from vaetone.analysis.metrics import align_lengths
    from vaetone.spectral.melspec import log_mel

    x = torch.as_tensor(x).float()
    n, m, samples = len(x), 2 + len(models), cfg.hop_length * (x.shape[-1] - 1)
    if n == 0:
        return np.zeros((0, m, *x.shape[-2:]), np.float32), np.zeros((0, m, samples), np.float32)
    outs = [to_db(v, features) for v in [x] + [torch.as_tensor(f(x)).float().cpu() for f in models.values()]]
    audio = mel_to_audio(torch.stack(outs, 1).flatten(0, 1), cfg).reshape(n, m - 1, -1)
    wav = torch.as_tensor(align_lengths(original, audio[:, 0], cfg.hop_length)[0]).float()
    inverted = log_mel(audio[:, 0], cfg, device="cpu")
    db = torch.stack([outs[0], inverted[..., : outs[0].shape[-1]], *outs[1:]], 1)
    return db.numpy(), torch.cat([wav[:, None], audio], 1).numpy()


def level_phrase(audio) -> str:
    """The level of a set of sounds played as they are, in words, from its loudest sample (dBFS).

    Args: audio: the waveforms of any shape (samples at full scale 1.0).
    Returns: e.g. "The loudest sample of these sounds is at -8.3 dBFS, so none is clipped"; a peak
        above 0 dBFS says that the samples beyond full scale are clipped when played. Chapter: 03_training.
    """
    from vaetone.spectral.inversion import peak_dbfs

    if np.asarray(audio).size == 0:
        return "No sound is played"
    peak = peak_dbfs(audio)
    if not np.isfinite(peak):
        return "These sounds are silent"
    if peak > 0:
        return f"The loudest sample of these sounds is at +{peak:.1f} dBFS: samples beyond full scale are clipped"
    return f"The loudest sample of these sounds is at {peak:.1f} dBFS, so none is clipped"


def prior_examples(decode: Callable, latent_dim: int, features, cfg, n: int = 4) -> dict[str, np.ndarray]:
    """Notes decoded from ``n`` draws of the prior (seeded with ``cfg.seed``), as dB and audio.

    Args:
        decode: ``decode(z (n, latent_dim)) -> (n, 1, n_mels, frames)`` normalised.
        latent_dim: the latent size; features: the Features; cfg: the configuration; n: how many.
    Returns:
        ``{"prior_z": (n, latent_dim), "prior_db": (n, n_mels, frames) dB, "prior_audio": (n, samples)}``.
    Chapter: 03_training.
    """
    z, x = prior_samples(decode, n, latent_dim, seed=cfg.seed)
    db = to_db(x, features)
    return {"prior_z": z.numpy(), "prior_db": db.numpy(), "prior_audio": mel_to_audio(db, cfg).numpy()}


def interpolation_examples(decode: Callable, z0, z1, features, cfg, steps: int = 5) -> dict[str, np.ndarray]:
    """The linear and the spherical path between two latents, decoded, as dB and audio.

    Args:
        decode: ``decode(z) -> (n, 1, n_mels, frames)`` normalised; z0, z1: endpoints ``(latent_dim,)``.
        features: the Features; cfg: the configuration; steps: points including both ends.
    Returns:
        For method in ("linear", "spherical"): ``<method>_z (steps, latent_dim)``,
        ``<method>_db (steps, n_mels, frames)`` dB and ``<method>_audio (steps, samples)``. Chapter: 03_training.
    """
    arrays = {}
    for method in ("linear", "spherical"):
        z, x = interpolate(decode, z0, z1, steps=steps, method=method)
        db = to_db(x, features)
        arrays |= {
            f"{method}_z": z.numpy(),
            f"{method}_db": db.numpy(),
            f"{method}_audio": mel_to_audio(db, cfg).numpy(),
        }
    return arrays
