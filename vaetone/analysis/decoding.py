"""Decoders as plain callables: to dB, in batches, their throughput, and descriptors of their output.

Shared by sensitivity, ablation and the across-seed analyses.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd
import torch

from vaetone.config import Config
from vaetone.devices import resolve_device
from vaetone.errors import VaetoneError

Decoder = Callable[[torch.Tensor], torch.Tensor]
Describe = Callable[[torch.Tensor], pd.DataFrame]


def decoder_device(decode: Callable, device=None) -> torch.device:
    """The device to put latents on: ``device`` if given, else the decoder's, else CUDA when present.

    The decoder's device is found from a bound method of a module (``model.decode``) or a
    ``device`` attribute (as set by :func:`db_decoder`).
    """
    if device is not None:
        return torch.device(device)
    owner = getattr(decode, "__self__", None)
    if isinstance(owner, torch.nn.Module):
        for p in owner.parameters():
            return p.device
    if getattr(decode, "device", None) is not None:
        return torch.device(decode.device)
    return resolve_device()


def db_decoder(decode: Decoder, denormalise: Callable[[torch.Tensor], torch.Tensor], device=None) -> Decoder:
    """Compose a decoder of normalised log-mels with the features' ``denormalise`` → output in dB.

    Args:
        decode: e.g. ``model.decode``, ``(n, D) -> (n, 1, n_mels, frames)`` normalised.
        denormalise: e.g. ``feats.denormalise``, normalised → dB.
    Returns:
        A callable ``z -> dB`` with a ``device`` attribute. Chapters: 04_sensitivity, 05_ablation.
    """

    def decode_db(z: torch.Tensor) -> torch.Tensor:
        return denormalise(decode(z))

    decode_db.device = decoder_device(decode, device)
    return decode_db


def decode_batched(decode: Decoder, z, batch_size: int = 512, device=None) -> torch.Tensor:
    """Decode many latents in chunks without gradients.

    Args:
        decode: ``(n, D) -> (n, 1, n_mels, frames)`` or ``(n, n_mels, frames)``.
        z: (n, D) tensor or array.
        batch_size: latents per decoder call.
    Returns:
        (n, n_mels, frames) float32 on the CPU. Chapters: 04_sensitivity, 05_ablation.
    """
    dev = decoder_device(decode, device)
    z = torch.as_tensor(z, dtype=torch.float32)
    outs = []
    with torch.no_grad():
        for chunk in torch.split(z, batch_size):
            out = decode(chunk.to(dev))
            outs.append((out[:, 0] if out.dim() == 4 else out).float().cpu())
    if not outs:
        raise VaetoneError("decode_batched got no latents (z has 0 rows); pass at least one")
    return torch.cat(outs)


def decode_throughput(decode: Decoder, latent_dim: int, n: int = 256, batch_size: int = 512, device=None) -> dict:
    """Measure decodes per second on random latents (one warm-up call first).

    Returns:
        {"decodes_per_s", "seconds", "n", "batch_size", "device"}. Chapter: 04_sensitivity.
    """
    z = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(0))
    decode_batched(decode, z[: min(n, batch_size)], batch_size, device)
    start = time.perf_counter()
    decode_batched(decode, z, batch_size, device)
    seconds = time.perf_counter() - start
    return {
        "decodes_per_s": n / seconds,
        "seconds": seconds,
        "n": n,
        "batch_size": batch_size,
        "device": str(decoder_device(decode, device)),
    }


# --------------------------------------------------------------------------- descriptors


def default_describe(cfg: Config) -> Describe:
    """The default descriptor function: :func:`vaetone.spectral.descriptors.spectral_descriptors` bound to ``cfg``."""
    try:
        from vaetone.spectral.descriptors import spectral_descriptors
    except ImportError as exc:
        raise VaetoneError(
            f"vaetone.spectral.descriptors.spectral_descriptors is not available ({exc}); pass describe=... explicitly"
        ) from exc
    return lambda x_db: spectral_descriptors(x_db, cfg)


def _describe_checked(describe: Describe, x: torch.Tensor) -> pd.DataFrame:
    """Call ``describe`` and check it returned one numeric row per output."""
    frame = describe(x)
    if not isinstance(frame, pd.DataFrame) or len(frame) != len(x):
        raise VaetoneError(
            f"describe must return a DataFrame with one row per output "
            f"({len(x)}); got {type(frame).__name__} of length {len(frame)}"
        )
    return frame.reset_index(drop=True).astype(float)
