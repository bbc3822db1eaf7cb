"""One at a time: sweep one latent dimension from anchor points, measure how the output moves.

Two kinds of measure come out of a sweep. The mean absolute slope along it (Morris's μ*) says
how much a dimension moves the output or a descriptor at all, back and forth included: it
ranks influence, and it rewards jitter, so it never names a dimension. The *net* change says
where the sweep takes a descriptor: the least-squares slope of the descriptor against z and
Spearman's ρ between them (how monotonic the change is), per anchor, then averaged over the
anchors (a dimension that raises a descriptor from some anchors and lowers it from others has
little net change). Dimension labels (:mod:`~vaetone.analysis.sensitivity.labels`) rest on the
net change alone.

Chapter: 04_sensitivity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

from vaetone.analysis.decoding import Decoder, Describe, _describe_checked, decode_batched, default_describe
from vaetone.analysis.sensitivity.parts import Part, _parts_frame, output_parts
from vaetone.config import Config
from vaetone.errors import ConfigError
from vaetone.progress import tqdm

# --------------------------------------------------------------------------- one at a time


def anchor_points(mu, n_anchors: int, seed: int = 0, prior_mean: bool = True):
    """Anchor points of the sweeps: a seeded choice of posterior means, and the prior mean.

    Args:
        mu: (n, D) posterior means of (test) notes.
        n_anchors: how many notes (at most n).
        seed: the choice's seed.
        prior_mean: put the origin first.
    Returns:
        (z (a, D) float32 tensor, rows (a,) int array: the row of mu, -1 for the prior mean). Chapter: 04_sensitivity.
    """
    mu = torch.as_tensor(mu, dtype=torch.float32)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(mu), size=min(n_anchors, len(mu)), replace=False))
    z = mu[torch.as_tensor(rows, dtype=torch.long)]
    if prior_mean:
        z = torch.cat([torch.zeros(1, mu.shape[1]), z])
        rows = np.concatenate([[-1], rows])
    return z, rows


def sweep_grid(sigma: float = 3.0, steps: int = 9) -> torch.Tensor:
    """The sweep values of a dimension: ``steps`` points evenly from -sigma to +sigma (prior std units)."""
    if steps < 2 or sigma <= 0:
        raise ConfigError(f"a sweep needs sweep_steps >= 2 and sweep_sigma > 0, got {steps}, {sigma}")
    return torch.linspace(-sigma, sigma, steps)


def sweep_latents(anchors: torch.Tensor, dim: int, grid: torch.Tensor) -> torch.Tensor:
    """The latents of one sweep: every anchor with ``z_dim`` set to every grid value.

    Returns:
        (a, g, D) tensor.
    """
    z = anchors[:, None, :].repeat(1, len(grid), 1)
    z[:, :, dim] = grid.to(z)[None, :]
    return z


def sweep_dimension(decode: Decoder, anchors, dim: int, grid, batch_size: int = 512, device=None) -> torch.Tensor:
    """Decode the sweep of one dimension from all anchors at once (chunked).

    Args:
        decode: latent (n, D) → output (n, [1,] n_mels, frames).
        anchors: (a, D) latents.
        dim: the swept dimension.
        grid: (g,) values given to z_dim.
    Returns:
        (a, g, n_mels, frames) float32 CPU tensor. Chapter: 04_sensitivity (sweep strips, sweep plots).
    """
    anchors = torch.as_tensor(anchors, dtype=torch.float32)
    grid = torch.as_tensor(grid, dtype=torch.float32)
    if not 0 <= dim < anchors.shape[1]:
        raise ConfigError(f"dimension {dim} out of range for latents of size {anchors.shape[1]}")
    z = sweep_latents(anchors, dim, grid).reshape(-1, anchors.shape[1])
    out = decode_batched(decode, z, batch_size, device)
    return out.reshape(len(anchors), len(grid), *out.shape[1:])


def _slopes(values: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """|Δvalue / Δz| between neighbouring grid points along axis 1."""
    dz = torch.diff(grid).reshape(1, -1, *([1] * (values.dim() - 2)))
    return (torch.diff(values, dim=1) / dz).abs()


def _logmel_change(out: torch.Tensor, grid: torch.Tensor, parts: Sequence[Part]) -> np.ndarray:
    """Mean absolute slope of the output in each part, per anchor: (n_parts, a)."""
    slope = _slopes(out, grid)
    return np.stack([slope[:, :, p.mels, p.frames].mean(dim=(1, 2, 3)).numpy() for p in parts])


@dataclass
class Sweeps:
    """Results of :func:`one_at_a_time`, four tidy tables.

    Attributes:
        logmel: one row per (dim, part): dim, scope, part, lo, hi, unit, change (mean absolute
            slope of the output along the sweep, output units per unit z, averaged over anchors
            and the part's bins), change_std (over anchors).
        descriptors: one row per (dim, descriptor): slope (mean |Δdescriptor/Δz| along the sweep,
            averaged over anchors: influence, not direction), slope_std (over anchors), range
            (max − min along the sweep, averaged over anchors), slope_norm (slope divided by the
            descriptor's standard deviation over all sweep outputs: unitless), net_slope (the
            least-squares slope of the descriptor against z, descriptor units per unit z, mean over
            anchors), net_slope_std (over anchors), rho (Spearman ρ of descriptor and z, mean over
            anchors; 0 where the descriptor is constant along a sweep), net_norm (net_slope divided
            by the same standard deviation as slope_norm).
        curves: one row per decoded output: dim, anchor (position), row (row of mu, -1 prior
            mean), step, z (the swept value), then one column per descriptor.
        anchor_logmel: one row per (dim, anchor): dim, anchor, row, change (the mean absolute
            slope of the whole output along that anchor's sweep, output units per unit z).
    """

    logmel: pd.DataFrame
    descriptors: pd.DataFrame
    curves: pd.DataFrame
    anchor_logmel: pd.DataFrame | None = None


def one_at_a_time(
    decode: Decoder,
    anchors,
    grid,
    cfg: Config,
    describe: Describe | None = None,
    rows=None,
    n_bands: int = 6,
    dims: Sequence[int] | None = None,
    batch_size: int = 512,
    device=None,
) -> Sweeps:
    """One-at-a-time sweeps of every dimension: change of the log-mel and of each descriptor.

    Args:
        decode: latent (n, D) → output (n, [1,] n_mels, frames), best in dB (:func:`db_decoder`).
        anchors: (a, D) anchor latents (:func:`anchor_points`).
        grid: (g,) increasing sweep values (:func:`sweep_grid`).
        cfg: gives the layout (f_min, f_max, hop_length).
        describe: outputs (m, n_mels, frames) → DataFrame of m rows; default
            :func:`default_describe`.
        rows: (a,) labels of the anchors for ``curves`` (default 0..a-1).
        n_bands: frequency bands of :func:`frequency_bands`.
        dims: dimensions to sweep (default all).
    Returns:
        :class:`Sweeps` (logmel, descriptors, curves). Chapter: 04_sensitivity.
    """
    anchors = torch.as_tensor(anchors, dtype=torch.float32)
    grid = torch.as_tensor(grid, dtype=torch.float32)
    describe = describe or default_describe(cfg)
    dims = range(anchors.shape[1]) if dims is None else dims
    rows = np.arange(len(anchors)) if rows is None else np.asarray(rows)
    logmel, curves, per_anchor = [], [], []
    for j in tqdm(dims, desc="one-at-a-time sweeps", leave=False):
        out = sweep_dimension(decode, anchors, j, grid, batch_size, device)
        parts = output_parts(out.shape[2], out.shape[3], cfg, n_bands)
        change = _logmel_change(out, grid, parts)
        logmel.append(_parts_frame(parts).assign(dim=j, change=change.mean(1), change_std=change.std(1)))
        whole = [k for k, p in enumerate(parts) if p.scope == "all"][0]
        per_anchor.append(
            pd.DataFrame({"dim": j, "anchor": np.arange(len(anchors)), "row": rows, "change": change[whole]})
        )
        desc = _describe_checked(describe, out.reshape(-1, *out.shape[2:]))
        a, g = len(anchors), len(grid)
        curves.append(
            pd.concat(
                [
                    pd.DataFrame(
                        {
                            "dim": j,
                            "anchor": np.repeat(np.arange(a), g),
                            "row": np.repeat(rows, g),
                            "step": np.tile(np.arange(g), a),
                            "z": np.tile(grid.numpy(), a),
                        }
                    ),
                    desc,
                ],
                axis=1,
            )
        )
    curves = pd.concat(curves, ignore_index=True)
    cols = ["dim", "scope", "part", "lo", "hi", "unit", "change", "change_std"]
    logmel = pd.concat(logmel, ignore_index=True)[cols]
    anchor_logmel = pd.concat(per_anchor, ignore_index=True)
    return Sweeps(logmel, _descriptor_sensitivity(curves, grid), curves, anchor_logmel)


CURVE_KEYS = ("dim", "anchor", "row", "step", "z")
"""The columns of ``Sweeps.curves`` that are not descriptors."""


def _descriptor_sensitivity(curves: pd.DataFrame, grid: torch.Tensor) -> pd.DataFrame:
    """Per (dim, descriptor): mean |slope|, range, net slope and ρ along the sweeps, and their normalised forms."""
    names = [c for c in curves.columns if c not in CURVE_KEYS]
    dz = np.diff(grid.numpy())
    scale = curves[names].std(ddof=0)
    out = []
    for j, part in curves.groupby("dim", sort=True):
        g = len(grid)
        values = part.sort_values(["anchor", "step"])[names].to_numpy().reshape(-1, g, len(names))
        slope = np.nanmean(np.abs(np.diff(values, axis=1)) / dz[None, :, None], axis=1)
        span = np.nanmax(values, axis=1) - np.nanmin(values, axis=1)
        net, rho = _trends(grid.numpy(), values)
        frame = pd.DataFrame(
            {
                "dim": j,
                "descriptor": names,
                "slope": np.nanmean(slope, 0),
                "slope_std": np.nanstd(slope, 0),
                "range": np.nanmean(span, 0),
                "net_slope": np.nanmean(net, 0),
                "net_slope_std": np.nanstd(net, 0),
                "rho": np.nanmean(rho, 0),
            }
        )
        out.append(frame)
    out = pd.concat(out, ignore_index=True)
    denom = out["descriptor"].map(scale).replace(0.0, np.nan)
    out["slope_norm"] = out["slope"] / denom
    out["net_norm"] = out["net_slope"] / denom
    return out


def _trends(z: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope and Spearman ρ of ``values`` (a, g, k) against ``z`` (g,) along axis 1: two (a, k) arrays.

    ρ is 0 where a descriptor is constant along a sweep (no monotonic change); NaN values give NaN.
    """
    zc = (z - z.mean())[None, :, None]
    vc = values - values.mean(axis=1, keepdims=True)
    slope = (zc * vc).sum(1) / (zc**2).sum()
    rz = rankdata(z) - (len(z) + 1) / 2
    rv = rankdata(values, axis=1) - (len(z) + 1) / 2
    ss = np.sqrt((rv**2).sum(1) * (rz**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(ss > 0, (rz[None, :, None] * rv).sum(1) / np.where(ss > 0, ss, 1.0), 0.0)
    return slope, np.where(np.isnan(values).any(1), np.nan, rho)


def anchor_trends(curves: pd.DataFrame) -> pd.DataFrame:
    """The net change of every descriptor along every anchor's sweep, one row per (dim, anchor, descriptor).

    Args:
        curves: ``Sweeps.curves`` (dim, anchor, row, step, z, one column per descriptor).
    Returns:
        Tidy DataFrame: dim, anchor, row, descriptor, net_slope (least-squares slope of the
        descriptor against z, descriptor units per unit z), rho (Spearman ρ, 0 for a constant
        descriptor). Chapter: 04_sensitivity (intervals over anchors).
    """
    names = [c for c in curves.columns if c not in CURVE_KEYS]
    out = []
    for j, part in curves.groupby("dim", sort=True):
        part = part.sort_values(["anchor", "step"])
        n_anchors = part["anchor"].nunique()
        z = part["z"].to_numpy()[: len(part) // n_anchors]
        net, rho = _trends(z, part[names].to_numpy(dtype=float).reshape(n_anchors, len(z), len(names)))
        first = part.drop_duplicates("anchor")
        out.append(
            pd.DataFrame(
                {
                    "dim": j,
                    "anchor": np.repeat(first["anchor"].to_numpy(), len(names)),
                    "row": np.repeat(first["row"].to_numpy(), len(names)),
                    "descriptor": np.tile(names, n_anchors),
                    "net_slope": net.reshape(-1),
                    "rho": rho.reshape(-1),
                }
            )
        )
    return pd.concat(out, ignore_index=True)


def sensitivity_matrix(sweeps: Sweeps, value: str = "slope_norm") -> pd.DataFrame:
    """The dimensions × descriptors matrix of a one-at-a-time result, for a heatmap.

    Args:
        sweeps: from :func:`one_at_a_time`.
        value: a column of ``Sweeps.descriptors``: "slope_norm" (default), "slope", "range",
            "net_slope", "net_norm" or "rho".
    Returns:
        DataFrame indexed by dim, one column per descriptor (in ``describe``'s order). Chapter: 04_sensitivity.
    """
    table = sweeps.descriptors.pivot(index="dim", columns="descriptor", values=value)
    return table[list(dict.fromkeys(sweeps.descriptors["descriptor"]))]


CONSTANT_SPREAD = 1e-5
"""A descriptor whose spread over notes is below this share of its mean magnitude counts as constant."""


def descriptor_spread(describe: Describe, db) -> pd.Series:
    """The standard deviation (ddof=1) of every descriptor over a set of notes: the unit of the net changes.

    Args:
        describe: outputs (m, n_mels, frames) → DataFrame of m rows (:func:`default_describe`).
        db: (m, [1,] n_mels, frames) dB log-mels of real notes (e.g. the test notes), m >= 2.
    Returns:
        Series indexed by descriptor; NaN where a descriptor is constant over the notes (to
        float32 precision: a spread below :data:`CONSTANT_SPREAD` times its mean magnitude, which
        would turn rounding noise into large changes).
    Chapters: 04_sensitivity, 06_statistics.
    """
    x = torch.as_tensor(np.asarray(db) if not isinstance(db, torch.Tensor) else db, dtype=torch.float32)
    x = x[:, 0] if x.dim() == 4 else x
    if len(x) < 2:
        raise ConfigError(f"a descriptor's spread needs at least 2 notes, got {len(x)}; use more test notes")
    values = _describe_checked(describe, x)
    spread = values.std()
    return spread.where(spread > CONSTANT_SPREAD * values.abs().mean())


def net_change(sweeps: Sweeps, spread: pd.Series, signed: bool = True) -> pd.DataFrame:
    """The net change of each descriptor along the sweeps, in units of its spread over real notes per unit z.

    The least-squares slope of the descriptor against z (``net_slope``, averaged over the
    anchors) divided by ``spread``: +0.5 means that the sweep of z_j raises the descriptor by
    half its spread across the notes per prior standard deviation, overall (back and forth
    along the sweep cancels out).

    Args:
        sweeps: from :func:`one_at_a_time`; spread: :func:`descriptor_spread` (per descriptor).
        signed: keep the direction (default), else the magnitude.
    Returns:
        DataFrame indexed by dim, one column per descriptor (NaN where the spread is NaN).
    Chapters: 04_sensitivity, 06_statistics.
    """
    change = sensitivity_matrix(sweeps, "net_slope") / spread.reindex(sweeps.descriptors["descriptor"].unique())
    return change if signed else change.abs()


def normalised_moves(
    sweeps: Sweeps,
    decode: Decoder,
    mu,
    cfg: Config,
    describe: Describe | None = None,
    batch_size: int = 512,
    device=None,
) -> pd.DataFrame:
    """The magnitude of each descriptor's net change along the sweeps, in units of its spread over reconstructions.

    :func:`net_change` (unsigned) with the spread (:func:`descriptor_spread`) taken over the
    reconstructions ``decode(mu)`` of the notes: 0.5 means that the sweep of z_j moves the
    descriptor, overall, by half its spread across the notes per prior standard deviation. A
    descriptor constant over the reconstructions gives NaN.

    Args:
        sweeps: from :func:`one_at_a_time`.
        decode: the decoder of the sweeps (dB output, :func:`db_decoder`).
        mu: (n, D) posterior means of the notes that set the spread (e.g. the test notes), n >= 2.
        cfg, describe: as in :func:`one_at_a_time`.
    Returns:
        DataFrame indexed by dim, one column per descriptor (unitless, >= 0). Chapter: 06_statistics.
    """
    describe = describe or default_describe(cfg)
    return net_change(sweeps, descriptor_spread(describe, decode_batched(decode, mu, batch_size, device)), signed=False)
