"""Evaluating reconstructions against their originals: per-note metrics, summaries, and the PCA baseline.

Chapter: 03_training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from vaetone.analysis.metrics import (
    _pair,
    f0_error_cents,
    f0_range,
    frequency_accuracy,
    log_spectral_distance,
    logmel_mse,
    multires_stft_distance,
    spectral_convergence,
)
from vaetone.errors import ConfigError
from vaetone.spectral.inversion import mel_to_audio


def evaluate(
    ref_db,
    est_db,
    cfg,
    *,
    n_iter: int | None = None,
    index=None,
    ref_audio=None,
    f0_method: str = "yin",
    audio: bool = True,
) -> pd.DataFrame:
    """All metrics of reconstructions against their originals, one row per note.

    Args:
        ref_db, est_db: log-mel in dB ``(n, n_mels, frames)`` (originals, reconstructions).
        cfg: the configuration (inversion parameters).
        n_iter: Griffin-Lim iterations (default ``cfg.griffin_lim_iters``).
        index: row labels (e.g. the notes' ``note_str``).
        ref_audio: the originals' resynthesised audio if already computed (reuse across models).
        f0_method: "yin" or "pyin" (see :func:`median_f0`); the search range is :func:`f0_range`.
        audio: False skips the three audio metrics (resynthesis costs ~0.2 s per note on 2 CPU cores).
    Returns:
        DataFrame with ``logmel_mse_db2`` (dB²), ``lsd_db`` (dB), ``spectral_convergence``, and
        with audio ``mrstft``, ``frequency_accuracy`` (0..1), ``f0_error_cents``. Chapter: 03_training.
    """
    ref_db, est_db = _pair(ref_db, est_db)
    table = pd.DataFrame(
        {
            "logmel_mse_db2": logmel_mse(ref_db, est_db),
            "lsd_db": log_spectral_distance(ref_db, est_db),
            "spectral_convergence": spectral_convergence(ref_db, est_db),
        },
        index=index,
    )
    if audio:
        a = mel_to_audio(ref_db, cfg, n_iter).numpy() if ref_audio is None else np.asarray(ref_audio)
        b = mel_to_audio(est_db, cfg, n_iter).numpy()
        table["mrstft"] = multires_stft_distance(a, b)
        table["frequency_accuracy"] = frequency_accuracy(a, b)
        table["f0_error_cents"] = f0_error_cents(a, b, method=f0_method, **f0_range(cfg))
    return table


def summarise(per_note: pd.DataFrame, groups=None) -> pd.DataFrame:
    """Mean, standard deviation and median over notes of each metric, per group and over all notes.

    Args:
        per_note: a table from :func:`evaluate`.
        groups: labels aligned with its rows (e.g. ``meta["instrument_family_str"]``), or None.
    Returns:
        Rows: the groups then "all"; columns: (metric, "mean" | "std" | "median"). NaN entries
        (e.g. the frequency accuracy of a silent note) are left out. Chapter: 03_training.
    """
    stats = ["mean", "std", "median"]
    overall = per_note.agg(stats).T.stack().to_frame("all").T
    if groups is None:
        return overall
    labels = np.asarray(groups)
    by = per_note.groupby(labels).agg(stats)
    return pd.concat([by, overall])


def compare(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Side-by-side summary of several models' per-note tables (e.g. VAE, autoencoder, PCA).

    Args:
        tables: {model name: table from :func:`evaluate`} on the same notes.
    Returns:
        One row per model; columns (metric, "mean" | "std" | "median") over all notes. Chapter: 03_training.
    """
    return pd.concat({name: summarise(t).loc["all"] for name, t in tables.items()}, axis=1).T


@dataclass
class PCABaseline:
    """Principal-component baseline with the VAE's interface (``encode``, ``decode``, ``reconstruct``).

    Attributes:
        mean: ``(n_mels * frames,)`` train mean; components: ``(latent_dim, n_mels * frames)``;
        shape: ``(n_mels, frames)``; explained_variance_ratio: ``(latent_dim,)``.
    """

    mean: torch.Tensor
    components: torch.Tensor
    shape: tuple[int, int]
    explained_variance_ratio: np.ndarray

    @property
    def latent_dim(self) -> int:
        return int(self.components.shape[0])

    def encode(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """PCA scores ``(n, latent_dim)`` of ``(n, 1, n_mels, frames)``, and logvar = -inf (a deterministic encoder)."""
        x = torch.as_tensor(x).float().flatten(1)
        mu = (x - self.mean) @ self.components.T
        return mu, torch.full_like(mu, float("-inf"))

    def decode(self, z) -> torch.Tensor:
        """Scores ``(n, latent_dim)`` back to normalised log-mel ``(n, 1, n_mels, frames)``."""
        z = torch.as_tensor(np.asarray(z) if not isinstance(z, torch.Tensor) else z).float()
        return (z @ self.components + self.mean).reshape(len(z), 1, *self.shape)

    def reconstruct(self, x) -> torch.Tensor:
        """Project onto the principal subspace: ``(n, 1, n_mels, frames)``."""
        return self.decode(self.encode(x)[0])


def pca_baseline(train_x, latent_dim: int, seed: int = 0) -> PCABaseline:
    """Fit PCA (scikit-learn) with ``latent_dim`` components on the train split.

    Args:
        train_x: normalised log-mel ``(n, 1, n_mels, frames)`` of the train split.
        latent_dim: number of components (the VAE's latent size).
        seed: for the randomised solver.
    Returns:
        A :class:`PCABaseline`. Chapter: 03_training.
    """
    from sklearn.decomposition import PCA

    x = torch.as_tensor(train_x).float()
    flat = x.flatten(1).numpy()
    if not 1 <= latent_dim <= min(flat.shape):
        raise ConfigError(f"PCA needs 1 <= latent_dim <= min(notes, bins) = {min(flat.shape)}, got {latent_dim}")
    pca = PCA(n_components=latent_dim, random_state=seed).fit(flat)
    return PCABaseline(
        torch.as_tensor(pca.mean_).float(),
        torch.as_tensor(pca.components_).float(),
        tuple(x.shape[-2:]),
        pca.explained_variance_ratio_,
    )


def evaluate_models(models: dict[str, Callable], features, cfg, split: str = "test") -> dict[str, pd.DataFrame]:
    """Per-note metrics of several models' reconstructions of one split, against the same originals.

    The spectral metrics cover every note of the split; the audio metrics (Griffin-Lim, about
    0.25 s per note and model on 2 CPU cores) a seeded subset of ``cfg.n_eval_audio`` notes
    (all when 0), NaN elsewhere. The originals are resynthesised once and shared.

    Args:
        models: {name: reconstruct(x (n, 1, n_mels, frames) normalised) -> same shape}.
        features: the Features; cfg: the configuration; split: which split to score.
    Returns:
        {name: table of :func:`evaluate` indexed by note_str}. Chapter: 03_training.
    """
    rows = features.rows(split)
    index = features.meta.index[rows]
    x, ref_db = features.x(split), features.logmel[rows]
    n_audio = len(rows) if cfg.n_eval_audio == 0 else min(cfg.n_eval_audio, len(rows))
    sub = np.sort(np.random.default_rng(cfg.seed).choice(len(rows), n_audio, replace=False))
    ref_audio = mel_to_audio(ref_db[sub], cfg).numpy()
    tables = {}
    for name, reconstruct in models.items():
        est_db = features.denormalise(torch.as_tensor(reconstruct(x)).float())[:, 0]
        table = evaluate(ref_db, est_db, cfg, index=index, audio=False)
        audio = evaluate(ref_db[sub], est_db[sub], cfg, index=index[sub], ref_audio=ref_audio)
        tables[name] = table.join(audio.drop(columns=table.columns))
    return tables
