"""Baselines with the VAE's interface: PCA fitted on the training spectrograms.

Chapter: 03_training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vaetone.errors import ConfigError


@dataclass
class PCABaseline:
    """Principal-component baseline with the VAE's interface (``encode``, ``decode``, ``reconstruct``).

    Attributes:
        mean: ``(n_mels * frames,)`` train mean; components: ``(latent_dim, n_mels * frames)``;
        shape: ``(n_mels, frames)``; explained_variance_ratio: ``(latent_dim,)``.
    Chapter: 03_training.
    """

    mean: torch.Tensor
    components: torch.Tensor
    shape: tuple[int, int]
    explained_variance_ratio: np.ndarray

    @property
    def latent_dim(self) -> int:
        """Number of components."""
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
        A :class:`PCABaseline`.
    Raises:
        ConfigError: ``latent_dim`` exceeds the number of training notes or of spectrogram bins.
    Chapter: 03_training.
    """
    from sklearn.decomposition import PCA

    x = torch.as_tensor(train_x).float()
    flat = x.flatten(1).numpy()
    if not 1 <= latent_dim <= min(flat.shape):
        raise ConfigError(
            f"PCA needs 1 <= latent_dim <= min(notes, bins) = {min(flat.shape)}, got {latent_dim}; "
            "lower latent_dim or train on more notes"
        )
    pca = PCA(n_components=latent_dim, random_state=seed).fit(flat)
    return PCABaseline(
        torch.as_tensor(pca.mean_).float(),
        torch.as_tensor(pca.components_).float(),
        tuple(x.shape[-2:]),
        pca.explained_variance_ratio_,
    )
