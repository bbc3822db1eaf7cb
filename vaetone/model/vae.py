"""The convolutional VAE on normalised log-mel spectrograms, and its loss (chapter 02).

Architecture (``cfg.channels = [c1, ..., cD]``, depth ``D``):

* **pad**: the input ``(n, 1, n_mels, n_frames)`` is zero-padded at the top (high mel bands)
  and at the end (late frames) up to the next multiple of ``2**D`` in both axes, so that every
  stride-2 layer halves the size exactly. Zero is the train-split mean in normalised units,
  so the padding is "average spectrum"; it is never scored: the decoder output is cropped
  back to ``(n_mels, n_frames)`` before the loss. With the defaults 64 x 126 becomes 64 x 128.
* **encoder**: ``D`` blocks ``Conv2d(k, stride 2, padding (k-1)//2) -> norm -> activation``
  with widths ``c1..cD``, then flatten and two linear heads for the posterior mean ``mu`` and
  log-variance ``logvar`` (``cfg.latent_dim`` each; ``logvar`` clamped to [-12, 8]).
* **decoder**: linear to ``cD x (H / 2**D) x (W / 2**D)``, then the mirror image,
  ``ConvTranspose2d`` blocks ``cD -> ... -> c1`` and a last ``ConvTranspose2d(c1 -> 1)`` with
  no norm or activation (normalised log-mel values are unbounded), then the crop.

* **decoder noise** (``cfg.decoder_variance``): the decoder's output is the mean of a Gaussian
  over every bin. "fixed": its standard deviation is 1 in normalised units (one train-split
  standard deviation) and nothing is learned; "global": one learned ``log_sigma`` (a parameter of
  shape ``()``); "per_band": one learned ``log_sigma`` per mel band (shape ``(n_mels,)``). Both start
  at 0 (σ = 1) and exist only when learned, so "fixed" models have today's parameters and state dicts.

Inputs smaller than ``2**D`` in either axis are refused with a ConfigError (the strides would
shrink them below one cell without padding them mostly with zeros).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from vaetone.errors import ConfigError

LOGVAR_RANGE = (-12.0, 8.0)
"""Clamp of the encoder's log-variance: keeps exp() finite in bf16 and early training."""
DECODER_VARIANCES = ("fixed", "global", "per_band")
"""The decoder-noise options: σ = 1, one learned σ, one learned σ per mel band."""


def _activation(name: str) -> nn.Module:
    """The activation module called ``name`` (leaky_relu has slope 0.2)."""
    table = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}
    if name not in table:
        raise ConfigError(f"activation={name!r} is not one of {sorted(table)}")
    return table[name]()


def _norm(name: str, channels: int) -> nn.Module:
    """BatchNorm2d, GroupNorm (the largest group count <= 8 that divides ``channels``), or identity."""
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "group":
        groups = max(g for g in range(1, 9) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if name == "none":
        return nn.Identity()
    raise ConfigError(f"norm={name!r} is not one of ['batch', 'group', 'none']")


class PadTo(nn.Module):
    """Zero-pad ``(n, c, h, w)`` at the top of the mel axis and the end of the time axis to ``(height, width)``."""

    def __init__(self, height: int, width: int):
        super().__init__()
        self.height, self.width = height, width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad the last two axes to ``(height, width)``."""
        return F.pad(x, (0, self.width - x.shape[-1], 0, self.height - x.shape[-2]))


class CropTo(nn.Module):
    """Keep the first ``height`` mel bands and ``width`` frames of ``(n, c, h, w)``."""

    def __init__(self, height: int, width: int):
        super().__init__()
        self.height, self.width = height, width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Crop the last two axes to ``(height, width)``."""
        return x[..., : self.height, : self.width]


def _log_sigma(decoder_variance: str, n_mels: int) -> nn.Parameter | None:
    """The learned log σ of the decoder noise, zeros of shape () or (n_mels,); None when fixed."""
    if decoder_variance not in DECODER_VARIANCES:
        raise ConfigError(
            f"decoder_variance={decoder_variance!r} is not one of {list(DECODER_VARIANCES)}; "
            "use -p decoder_variance fixed, global or per_band"
        )
    if decoder_variance == "fixed":
        return None
    return nn.Parameter(torch.zeros(() if decoder_variance == "global" else (n_mels,)))


def padded_shape(n_mels: int, n_frames: int, depth: int) -> tuple[int, int]:
    """The input size after padding: each axis rounded up to a multiple of ``2**depth``.

    Raises ConfigError when an axis is smaller than ``2**depth`` (the strides would shrink it below 1).
    Returns ``(height, width)``. Chapter: 02_model.
    """
    step = 2**depth
    for name, size in (("n_mels", n_mels), ("n_frames", n_frames)):
        if size < step:
            raise ConfigError(
                f"input {name}={size} is too small for {depth} stride-2 layers (channels list of "
                f"length {depth}): it needs at least {step}. Use fewer channels or a larger input."
            )
    return math.ceil(n_mels / step) * step, math.ceil(n_frames / step) * step


class ConvVAE(nn.Module):
    """Convolutional VAE on normalised log-mel spectrograms (see the module docstring).

    Args:
        cfg: the configuration (``latent_dim``, ``channels``, ``kernel_size``, ``norm``,
            ``activation``, ``decoder_variance``; ``beta == 0`` makes the encoder deterministic: z = mu).
        n_mels, n_frames: the input size.
    Attributes:
        log_sigma: the learned log standard deviation of the decoder noise (normalised units), a
            parameter of shape ``()`` ("global") or ``(n_mels,)`` ("per_band"), initialised at 0;
            None for "fixed" (σ = 1, not a parameter, not in the state dict).
    Chapter: 02_model.
    """

    def __init__(self, cfg, n_mels: int, n_frames: int):
        super().__init__()
        channels = [int(c) for c in cfg.channels]
        k = int(cfg.kernel_size)
        if cfg.latent_dim < 1 or k < 1 or not channels:
            raise ConfigError(
                f"need latent_dim >= 1, kernel_size >= 1 and channels, got {cfg.latent_dim}, {k}, {channels}"
            )
        self.n_mels, self.n_frames, self.latent_dim = int(n_mels), int(n_frames), int(cfg.latent_dim)
        self.deterministic = float(cfg.beta) == 0.0
        height, width = padded_shape(self.n_mels, self.n_frames, len(channels))
        self.bottleneck = (channels[-1], height >> len(channels), width >> len(channels))
        flat = int(np.prod(self.bottleneck))
        pad, out_pad = (k - 1) // 2, k % 2
        self.pad = PadTo(height, width)
        blocks = [
            nn.Sequential(
                nn.Conv2d(c_in, c_out, k, 2, pad, bias=cfg.norm == "none"),
                _norm(cfg.norm, c_out),
                _activation(cfg.activation),
            )
            for c_in, c_out in zip([1] + channels[:-1], channels)
        ]
        self.encoder = nn.Sequential(*blocks, nn.Flatten())
        self.to_mu = nn.Linear(flat, self.latent_dim)
        self.to_logvar = nn.Linear(flat, self.latent_dim)
        rev = channels[::-1]
        ups = [
            nn.Sequential(
                nn.ConvTranspose2d(c_in, c_out, k, 2, pad, out_pad, bias=cfg.norm == "none"),
                _norm(cfg.norm, c_out),
                _activation(cfg.activation),
            )
            for c_in, c_out in zip(rev[:-1], rev[1:])
        ]
        self.decoder = nn.Sequential(
            nn.Linear(self.latent_dim, flat),
            nn.Unflatten(1, self.bottleneck),
            *ups,
            nn.ConvTranspose2d(channels[0], 1, k, 2, pad, out_pad),
            CropTo(self.n_mels, self.n_frames),
        )
        self.decoder_variance = str(getattr(cfg, "decoder_variance", "fixed"))
        self.register_parameter("log_sigma", _log_sigma(self.decoder_variance, self.n_mels))

    def _check(self, x: torch.Tensor) -> None:
        """Raise ConfigError unless ``x`` is ``(n, 1, n_mels, n_frames)`` for this model."""
        want = (1, self.n_mels, self.n_frames)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ConfigError(
                f"ConvVAE expects input (n, {', '.join(map(str, want))}), got "
                f"{tuple(x.shape)}; build the model for this input size"
            )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters of a batch.

        Args:
            x: normalised log-mel, ``(n, 1, n_mels, n_frames)``.
        Returns:
            ``(mu, logvar)``, each ``(n, latent_dim)``.
        """
        self._check(x)
        h = self.encoder(self.pad(x))
        return self.to_mu(h), self.to_logvar(h).clamp(*LOGVAR_RANGE)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode latents ``(n, latent_dim)`` to normalised log-mel ``(n, 1, n_mels, n_frames)``.

        Needs gradients? Call this directly (``Run.decode`` runs without them, batched).
        Chapters: 03_training, 04_sensitivity, 05_ablation, 06_statistics, 07_explorer.
        """
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ConfigError(f"decode expects z of shape (n, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def sample(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Reparameterised posterior sample in training mode; the mean in eval mode or for β = 0."""
        if not self.training or self.deterministic:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruct a batch: returns ``(recon (n, 1, n_mels, n_frames), mu, logvar)``."""
        mu, logvar = self.encode(x)
        return self.decode(self.sample(mu, logvar)), mu, logvar


def n_parameters(model: nn.Module) -> int:
    """The number of trainable parameters of ``model``. Chapter: 02_model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layer_table(model: ConvVAE, n_mels: int | None = None, n_frames: int | None = None) -> pd.DataFrame:
    """Layer-by-layer table of the model: output shape per note and parameter count.

    Args:
        model: a ConvVAE.
        n_mels, n_frames: the input size (default: the model's own).
    Returns:
        DataFrame with columns ``layer``, ``kind``, ``output_shape`` (C x H x W or features,
        per note) and ``parameters``, from the input to the output, then a ``log_sigma`` row
        (its shape) when the decoder's variance is learned. Chapter: 02_model.
    """
    n_mels, n_frames = n_mels or model.n_mels, n_frames or model.n_frames
    named = [("pad", model.pad)]
    named += [(f"encoder.{i}", m) for i, m in enumerate(model.encoder)]
    named += [("to_mu", model.to_mu), ("to_logvar", model.to_logvar)]
    named += [(f"decoder.{i}", m) for i, m in enumerate(model.decoder)]
    rows, hooks = {}, []
    for name, module in named:
        hooks.append(
            module.register_forward_hook(lambda mod, inp, out, name=name: rows.__setitem__(name, tuple(out.shape[1:])))
        )
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            device = next(model.parameters()).device
            model(torch.zeros(1, 1, n_mels, n_frames, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    table = [{"layer": "input", "kind": "log-mel", "output_shape": f"1×{n_mels}×{n_frames}", "parameters": 0}]
    table += [
        {
            "layer": name,
            "kind": _kind(module),
            "output_shape": "×".join(map(str, rows[name])),
            "parameters": n_parameters(module),
        }
        for name, module in named
    ]
    if model.log_sigma is not None:
        shape = "×".join(map(str, model.log_sigma.shape)) or "1"
        kind = f"decoder log σ ({model.decoder_variance.replace('_', ' ')})"
        table.append({"layer": "log_sigma", "kind": kind, "output_shape": shape, "parameters": model.log_sigma.numel()})
    return pd.DataFrame(table)


def _kind(module: nn.Module) -> str:
    """A short description of a layer, e.g. ``Conv2d 1→16 k4 s2 + BatchNorm2d + LeakyReLU``."""
    if isinstance(module, nn.Sequential):
        return " + ".join(_kind(m) for m in module)
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        return (
            f"{type(module).__name__} {module.in_channels}→{module.out_channels} "
            f"k{module.kernel_size[0]} s{module.stride[0]}"
        )
    if isinstance(module, nn.Linear):
        return f"Linear {module.in_features}→{module.out_features}"
    if isinstance(module, (PadTo, CropTo)):
        return f"{type(module).__name__} {module.height}×{module.width}"
    return type(module).__name__


def loss_terms(
    recon: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float,
    free_bits: float = 0.0,
    log_sigma: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The β-VAE loss of a batch, term by term, in nats per note.

    ``recon`` is the Gaussian negative log-likelihood of ``x`` under N(recon, σ²) in normalised
    units (one train-split standard deviation), without its constant 0.5·log 2π per bin, summed
    over all mel bins and frames and averaged over the batch:

    recon = sum over bands b and frames t of 0.5·((x[b,t] - recon[b,t]) / σ_b)² + log σ_b

    With ``log_sigma`` None (``decoder_variance`` "fixed") σ = 1 and the term is 0.5 x the squared
    error, computed exactly as before the option existed; β = 1 is then the ELBO of a decoder whose
    noise is one standard deviation, not the fitted one (see
    :func:`vaetone.model.summary.calibrated_beta`). ``kl`` is the KL divergence of N(mu, exp(logvar))
    to N(0, I), summed over dimensions and averaged over the batch. Free bits: each dimension's
    batch-mean KL enters the objective as ``max(kl_j, free_bits)`` (no pressure below ``free_bits``
    nats); the reported ``kl`` is the true one.

    Args:
        recon, x: ``(n, 1, n_mels, n_frames)`` normalised log-mel (output and target).
        mu, logvar: ``(n, latent_dim)``.
        beta: weight of the KL term (warm-up included by the caller); 0 gives the autoencoder.
        free_bits: nats per dimension.
        log_sigma: the decoder's learned log σ, shape ``()`` (one σ) or ``(n_mels,)`` (one per
            band); None for σ = 1.
    Returns:
        ``{"total": objective to minimise, "recon", "kl", "kl_per_dim": (latent_dim,)}``, float32
        tensors. Chapters: 02_model, 03_training.
    """
    recon, x, mu, logvar = recon.float(), x.float(), mu.float(), logvar.float()
    if log_sigma is None:
        rec = 0.5 * (recon - x).pow(2).flatten(1).sum(1).mean()
    else:
        rec = _gaussian_nll(recon, x, log_sigma.float())
    kl_per_dim = (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).mean(0)
    kl = kl_per_dim.sum()
    kl_obj = kl_per_dim.clamp(min=free_bits).sum() if free_bits > 0 else kl
    total = rec + beta * kl_obj if beta > 0 else rec
    return {"total": total, "recon": rec, "kl": kl, "kl_per_dim": kl_per_dim}


def _gaussian_nll(recon: torch.Tensor, x: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """Sum over bins of 0.5·((x - recon)/σ)² + log σ per note, batch mean; σ of shape () or (n_mels,)."""
    n_mels, n_frames = x.shape[-2], x.shape[-1]
    if log_sigma.ndim == 1 and log_sigma.shape[0] != n_mels:
        raise ConfigError(f"log_sigma has {log_sigma.shape[0]} bands but the input has {n_mels} mel bands")
    sse_band = (recon - x).pow(2).sum(-1).mean(0).flatten()  # (n_mels,): squared error per band, per note
    weighted = 0.5 * (sse_band * torch.exp(-2.0 * log_sigma)).sum()
    return weighted + n_frames * log_sigma.expand(n_mels).sum()


class Objective(nn.Module):
    """The training objective of a ConvVAE as a module: forward gives the loss of a batch.

    Computing the loss inside ``forward`` puts the decoder's ``log_sigma`` in the graph that
    DistributedDataParallel sees, and lets the autoencoder (β = 0) leave its unused log-variance
    head out of it (only ``total`` carries gradients).

    Args:
        vae: the model (its parameters are this module's); free_bits: nats per dimension;
        step: what computes ``(recon, mu, logvar)`` from a batch (default ``vae``; e.g. ``torch.compile(vae)``).
    Chapter: 03_training.
    """

    def __init__(self, vae: ConvVAE, free_bits: float = 0.0, step: nn.Module | None = None):
        super().__init__()
        self.vae, self.free_bits = vae, float(free_bits)
        self.step = vae if step is None else step
        self.deterministic = vae.deterministic

    def forward(self, x: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
        """The loss of a batch ``x`` ``(n, 1, n_mels, n_frames)`` with KL weight ``beta``.

        Returns:
            ``{"total"}`` with gradients, ``"recon"`` and ``"kl"`` detached (nats per note).
        """
        recon, mu, logvar = self.step(x)
        terms = loss_terms(recon, x, mu, logvar, beta, self.free_bits, self.vae.log_sigma)
        return {"total": terms["total"], "recon": terms["recon"].detach(), "kl": terms["kl"].detach()}
