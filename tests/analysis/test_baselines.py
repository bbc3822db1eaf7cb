"""Tests of vaetone.analysis.baselines: PCA reconstructs data of its own rank exactly."""

import pytest
import torch

from vaetone.analysis import baselines
from vaetone.errors import ConfigError


def test_pca_reconstructs_data_in_a_k_dim_subspace_exactly():
    g = torch.Generator().manual_seed(0)
    k, n, shape = 3, 40, (8, 12)
    basis = torch.randn(k, 96, generator=g)
    offset = torch.randn(96, generator=g)
    x = (torch.randn(n, k, generator=g) @ basis + offset).reshape(n, 1, *shape)
    pca = baselines.pca_baseline(x, k)
    mu, logvar = pca.encode(x)
    assert mu.shape == (n, k) and torch.isneginf(logvar).all() and pca.latent_dim == k
    assert pca.decode(mu).shape == x.shape
    assert torch.allclose(pca.reconstruct(x), x, atol=1e-4)
    assert pca.explained_variance_ratio.sum() == pytest.approx(1.0, abs=1e-5)
    fresh = (torch.randn(5, k, generator=g) @ basis + offset).reshape(5, 1, *shape)
    assert torch.allclose(pca.reconstruct(fresh), fresh, atol=1e-4)
    lower = baselines.pca_baseline(x, k - 1)
    assert (lower.reconstruct(x) - x).abs().max() > 1e-2
    with pytest.raises(ConfigError, match="latent_dim"):
        baselines.pca_baseline(x, 41)
