"""The local view: RMS of the decoder's partial derivatives by region (forward mode, vmapped).

Chapter: 04_sensitivity.
"""

from __future__ import annotations

import logging
import warnings

import pandas as pd
import torch

from vaetone.analysis.decoding import Decoder, decoder_device
from vaetone.analysis.sensitivity.parts import _parts_frame, output_parts
from vaetone.config import Config
from vaetone.progress import tqdm

# --------------------------------------------------------------------------- gradients

log = logging.getLogger(__name__)


def directional_derivatives(decode: Decoder, z: torch.Tensor) -> torch.Tensor:
    """∂decode/∂z_j at every point of z for every j by forward-mode jvp: (D, n, n_mels, frames)."""
    from torch.func import jvp, vmap

    tangents = torch.eye(z.shape[1], dtype=z.dtype, device=z.device)[:, None, :].expand(-1, len(z), -1)

    def along(t: torch.Tensor) -> torch.Tensor:
        return jvp(decode, (z,), (t,))[1]

    try:
        with warnings.catch_warnings():  # torch's own forward-AD set-up calls torch.jit.script
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
            out = vmap(along)(tangents)
    except (RuntimeError, NotImplementedError) as exc:  # a layer without a vmap rule
        log.warning("vmap over jvp failed (%s); looping over the %d dimensions", exc, z.shape[1])
        out = torch.stack([along(t) for t in tangents])
    return out[:, :, 0] if out.dim() == 5 else out


def jacobian_norms(
    decode: Decoder, z, cfg: Config, n_bands: int = 6, batch_size: int = 64, device=None
) -> pd.DataFrame:
    """Root-mean-square of the decoder's partial derivative w.r.t. each dimension, averaged over points.

    For point z and dimension j, the RMS over the bins of a part of ``∂x/∂z_j`` (output units
    per unit z: dB per unit z with a dB decoder); i.e. the Jacobian column's Frobenius norm
    divided by the square root of the part's bin count.

    Args:
        decode: latent (n, D) → output (n, [1,] n_mels, frames), differentiable.
        z: (n, D) points (e.g. posterior means of test notes).
        cfg: gives the layout.
        batch_size: points per jvp call (memory ~ D·batch·n_mels·frames floats).
    Returns:
        Tidy DataFrame, one row per (dim, part): dim, scope, part, lo, hi, unit,
        jacobian_rms (mean over points), jacobian_rms_std (over points). Chapter: 04_sensitivity.
    """
    dev = decoder_device(decode, device)
    z = torch.as_tensor(z, dtype=torch.float32)
    per_point, parts = [], None
    for chunk in tqdm(torch.split(z, batch_size), desc="decoder Jacobian", leave=False):
        jac = directional_derivatives(decode, chunk.to(dev)).detach().float().cpu()
        parts = parts or output_parts(jac.shape[2], jac.shape[3], cfg, n_bands)
        per_point.append(
            torch.stack([jac[:, :, p.mels, p.frames].pow(2).mean(dim=(2, 3)).sqrt() for p in parts])
        )  # (parts, D, chunk)
    values = torch.cat(per_point, dim=2).numpy()
    n_dims = values.shape[1]
    frame = pd.concat([_parts_frame(parts).assign(dim=j) for j in range(n_dims)], ignore_index=True)
    frame["jacobian_rms"] = values.mean(2).T.reshape(-1)
    frame["jacobian_rms_std"] = values.std(2).T.reshape(-1)
    return frame[["dim", "scope", "part", "lo", "hi", "unit", "jacobian_rms", "jacobian_rms_std"]]
