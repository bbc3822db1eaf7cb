"""What each explanation method says a latent dimension does: one dims × descriptors map per method.

Four methods of chapters 04 and 05 are asked the same question of one decoder, how strongly
does latent dimension j move descriptor c, and each answers with a non-negative dims ×
descriptors matrix in units of the descriptor's spread (its standard deviation over the notes'
reconstructions or decodes):

- ``oat``: the net change along one-at-a-time sweeps from anchor points
  (:func:`vaetone.analysis.sensitivity.normalised_moves`);
- ``jacobian``: the mean absolute derivative of the descriptor w.r.t. the latent at the same
  anchors (forward-mode, through the differentiable mel-domain descriptors of
  :func:`vaetone.spectral.descriptors.spectral_descriptor_tensors`);
- ``sobol``: the total-order Sobol index of the latent for the descriptor under the prior
  (:func:`vaetone.analysis.sensitivity.sobol_indices`; a share of variance, unitless);
- ``ablation``: the net change when the dimension is set to 0 on every note
  (:func:`vaetone.analysis.ablation.ablation_descriptor_effects`).

:mod:`vaetone.analysis.recovery` scores the maps against the known truth.

Chapter: 08_validity.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from vaetone.analysis import ablation, sensitivity
from vaetone.analysis.decoding import Decoder, Describe, decode_batched, decoder_device, default_describe
from vaetone.analysis.sensitivity.jacobian import directional_derivatives
from vaetone.config import Config
from vaetone.errors import ConfigError

METHODS = ("oat", "jacobian", "sobol", "ablation")
"""The explanation methods scored against the truth, in the order the tables show them."""

DescribeTensors = Callable[[torch.Tensor], dict]
"""Outputs (n, n_mels, frames) dB → {descriptor: (n,) tensor}, differentiable (forward mode)."""


def _spectral_tensors(cfg: Config) -> DescribeTensors:
    """The differentiable mel-domain descriptors bound to ``cfg``."""
    from vaetone.spectral.descriptors import spectral_descriptor_tensors

    return lambda x_db: spectral_descriptor_tensors(x_db, cfg)


def _check_inputs(mu, cfg: Config) -> torch.Tensor:
    """``mu`` as an (n, D) float32 tensor, n >= 2, finite; ConfigError otherwise."""
    mu = torch.as_tensor(np.asarray(mu) if not isinstance(mu, torch.Tensor) else mu, dtype=torch.float32)
    if mu.dim() != 2 or len(mu) < 2 or mu.shape[1] < 1:
        raise ConfigError(
            f"method_maps needs the (n, D) posterior means of at least 2 test notes, got shape {tuple(mu.shape)}; "
            "pass the test split's mu"
        )
    if not torch.isfinite(mu).all():
        raise ConfigError("method_maps: the posterior means hold NaN or inf values; check the encoder's output")
    if cfg.n_anchors < 1:
        raise ConfigError(f"method_maps needs n_anchors >= 1, got {cfg.n_anchors}")
    return mu


def jacobian_map(
    decode: Decoder, anchors, spread: pd.Series, cfg: Config, describe_tensors: DescribeTensors | None = None
) -> pd.DataFrame:
    """The mean absolute derivative of each descriptor w.r.t. each latent at the anchors, in spread units.

    Forward-mode derivatives (one jvp per dimension, vmapped, as
    :func:`vaetone.analysis.sensitivity.jacobian_norms`) of ``describe_tensors(decode(z))``; forward
    mode also passes through decoders that run under ``torch.no_grad`` (``Run.decode``). Anchors
    where a derivative is not finite are left out of its mean.

    Args:
        decode: latent (n, D) → dB output (n, [1,] n_mels, frames).
        anchors: (a, D) latents (e.g. :func:`vaetone.analysis.sensitivity.anchor_points`).
        spread: the descriptors' spread over the reconstructions
            (:func:`~vaetone.analysis.sensitivity.descriptor_spread`).
        cfg: the feature layout; describe_tensors: default the spectral descriptors' tensors.
    Returns:
        DataFrame indexed by dim, one column per descriptor of ``spread``: |∂descriptor/∂z_j| per
        unit z divided by the spread (>= 0; NaN where the spread is NaN or no derivative is finite).
    Chapter: 08_validity.
    """
    describe_tensors = describe_tensors or _spectral_tensors(cfg)
    names = list(spread.index)
    z = torch.as_tensor(anchors, dtype=torch.float32).to(decoder_device(decode))

    def described(latents: torch.Tensor) -> torch.Tensor:
        out = describe_tensors(decode(latents))
        return torch.stack([out[name].float() for name in names], dim=1)  # (a, k)

    derivs = directional_derivatives(described, z).detach().abs().double().cpu().numpy()  # (D, a, k)
    finite = np.isfinite(derivs)
    counts = finite.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, np.where(finite, derivs, 0.0).sum(1) / np.maximum(counts, 1), np.nan)
    frame = pd.DataFrame(mean, columns=names).rename_axis(index="dim")
    return frame / spread.to_numpy()


def sobol_map(
    decode: Decoder, latent_dim: int, cfg: Config, describe: Describe | None, n: int, seed: int
) -> pd.DataFrame:
    """Total-order Sobol indices, dims × descriptors, floored at 0 (the estimator can dip below 0 by noise).

    Args:
        decode, latent_dim, cfg, describe: as :func:`vaetone.analysis.sensitivity.sobol_indices`;
        n: the Saltelli base sample (a power of 2); seed: of the sample and its bootstrap.
    Returns:
        DataFrame indexed by dim, one column per descriptor: ST, about 0 to 1 (NaN for a constant
        descriptor). Chapter: 08_validity.
    """
    table = sensitivity.sobol_indices(decode, latent_dim, cfg, describe, n=n, seed=seed)
    st = table.pivot(index="dim", columns="descriptor", values="ST")
    return st[list(dict.fromkeys(table["descriptor"]))].clip(lower=0.0)


def method_maps(
    decode: Decoder,
    mu,
    cfg: Config,
    describe: Describe | None = None,
    seed: int = 0,
    sobol_n: int | None = None,
    describe_tensors: DescribeTensors | None = None,
) -> dict[str, pd.DataFrame]:
    """How strongly each latent dimension moves each descriptor, by each method of :data:`METHODS`.

    The anchors are ``cfg.n_anchors`` notes of ``mu`` (seeded choice) and the prior mean; the
    sweeps run over ``cfg.sweep_steps`` values within ±``cfg.sweep_sigma``. The spread that sets
    the unit of ``oat`` and ``jacobian`` is the descriptors' standard deviation over the
    reconstructions ``decode(mu)`` (so ``oat`` is exactly
    :func:`~vaetone.analysis.sensitivity.normalised_moves`); ``ablation`` uses that of the same
    decodes in its own form (:func:`~vaetone.analysis.ablation.descriptor_effects`); ``sobol`` is a
    share of variance.

    Args:
        decode: latent (n, D) → dB output (n, [1,] n_mels, frames) (:func:`~vaetone.analysis.decoding.db_decoder`).
        mu: (n, D) posterior means of the test notes, n >= 2 (anchors, spread, ablation).
        cfg: ``n_anchors``, ``sweep_sigma``, ``sweep_steps``, ``validity_sobol_n`` and the feature layout.
        describe: outputs → DataFrame of descriptors (default the spectral descriptors); when given,
            pass ``describe_tensors`` too (its differentiable twin, for the Jacobian).
        seed: of the anchor choice and the Sobol sample.
        sobol_n: Saltelli base sample (a power of 2; default ``cfg.validity_sobol_n``).
        describe_tensors: outputs → {descriptor: (n,) tensor}, differentiable; default
            :func:`~vaetone.spectral.descriptors.spectral_descriptor_tensors`.
    Returns:
        {method: DataFrame indexed by dim (0..D-1), one column per descriptor}, non-negative,
        NaN where undefined (a descriptor constant over the reconstructions). Chapter: 08_validity.
    """
    if describe is not None and describe_tensors is None:
        raise ConfigError(
            "method_maps got a describe function but no describe_tensors: the Jacobian needs the same "
            "descriptors as differentiable tensors; pass describe_tensors=... or leave both at their defaults"
        )
    mu = _check_inputs(mu, cfg)
    describe = describe or default_describe(cfg)
    anchors, rows = sensitivity.anchor_points(mu, cfg.n_anchors, seed=seed)
    grid = sensitivity.sweep_grid(cfg.sweep_sigma, cfg.sweep_steps)
    sweeps = sensitivity.one_at_a_time(decode, anchors, grid, cfg, describe, rows=rows)
    spread = sensitivity.descriptor_spread(describe, decode_batched(decode, mu))
    maps = {
        "oat": sensitivity.net_change(sweeps, spread, signed=False),
        "jacobian": jacobian_map(decode, anchors, spread, cfg, describe_tensors),
        "sobol": sobol_map(decode, mu.shape[1], cfg, describe, sobol_n or cfg.validity_sobol_n, seed),
        "ablation": ablation.ablation_descriptor_effects(decode, mu, cfg, "zero", describe=describe).abs(),
    }
    dims, names = pd.RangeIndex(mu.shape[1], name="dim"), list(spread.index)
    return {m: maps[m].reindex(index=dims, columns=names).astype(float) for m in METHODS}
