"""How much each latent dimension moves the decoder's output: one at a time, gradients, and Sobol indices.

Three views of the same question, used in chapter ``04_sensitivity``:

* **one at a time** (:func:`one_at_a_time`): from anchor points (encoded test notes and the
  prior mean), set ``z_j`` to each value of a grid from ``-sweep_sigma`` to ``+sweep_sigma``
  (absolute values: the prior has unit standard deviation) with the other dimensions fixed,
  decode, and measure the mean absolute slope of the output log-mel (overall, per frequency
  band, per time region) and of each audio descriptor along the sweep;
* **local** (:func:`jacobian_norms`): the root-mean-square of the decoder's partial derivative
  ``∂x/∂z_j`` over the output bins, averaged over data points (forward-mode ``torch.func.jvp``
  vmapped over the ``D`` directions);
* **global** (:func:`sobol_indices`): Sobol first-order and total indices of every descriptor,
  with SALib's Sobol/Saltelli sample of the prior truncated at ``±sigma``.

:func:`rank_dimensions` ranks the dimensions by four scores of these views (two from the
sweeps: log-mel change and mean normalised descriptor change; the Jacobian norm; the mean
Sobol total index) and by their mean rank; :func:`analysis` runs the whole sequence for one
decoder (chapter 06, and every seed of chapter 04); :func:`normalised_moves` expresses the
sweeps' descriptor slopes in units of the descriptors' spread over real notes (chapters 04, 06).

Everything works on a plain callable ``decode(z (n, D)) -> (n, 1, n_mels, frames)`` (or
``(n, n_mels, frames)``). Pass a decoder that returns dB (see :func:`db_decoder`) to get the
changes in dB and meaningful descriptors. Descriptors come from a ``describe(x_db (n, n_mels,
frames)) -> DataFrame`` callable, by default :func:`vaetone.audio.spectral_descriptors`.

Layout of the output (see :func:`output_parts`): frequency bands are contiguous groups of mel
bins of (nearly) equal mel width, labelled in Hz from the filter centres of
:func:`vaetone.features.mel_frequencies` (HTK mel scale, as the features); time regions
follow the NSynth note layout (a note is held for 3 s of its 4 s): *attack* is the frames
centred before ``ATTACK_S`` = 0.1 s, *sustain* those up to ``RELEASE_S`` = 3.0 s, *release* the
rest (frame ``t`` is centred at ``t * hop_length / sr``).
"""
from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from .progress import tqdm

from .config import SAMPLE_RATE, Config
from .errors import ConfigError, VaetoneError
from .features import mel_frequencies

log = logging.getLogger(__name__)

Decoder = Callable[[torch.Tensor], torch.Tensor]
Describe = Callable[[torch.Tensor], pd.DataFrame]

ATTACK_S = 0.1
"""End of the attack region, s: the frames centred before it."""
RELEASE_S = 3.0
"""Start of the release region, s: NSynth notes are held for 3 s, then released."""


# --------------------------------------------------------------------------- layout

@dataclass(frozen=True)
class Part:
    """A region of the output spectrogram: all of it, a frequency band or a time region."""
    scope: str          # "all" | "band" | "region"
    name: str           # "all", "20-419 Hz", "attack", ...
    mels: slice
    frames: slice
    lo: float           # band: Hz; region: s; all: nan
    hi: float


def frequency_bands(n_mels: int, cfg: Config, n_bands: int = 6) -> list[Part]:
    """Split the mel bins into ``n_bands`` contiguous bands of (nearly) equal mel width, labelled in Hz.

    The bins are split into groups of (nearly) equal count, and mel bins are evenly spaced on
    the mel axis, so the bands have (nearly) equal mel width. A band's edges are the midpoints
    in Hz between the centre of its first bin and that of the previous bin, and between the
    centre of its last bin and that of the next bin; the outer edges are ``f_min`` and
    ``f_max``. The centres are :func:`vaetone.features.mel_frequencies`, the package's one
    mel-scale formula.

    Args:
        n_mels: mel bins of the output (must equal ``cfg.n_mels``).
        cfg: gives ``n_mels``, ``f_min``, ``f_max`` (Hz).
        n_bands: number of bands, 1..n_mels.
    Returns:
        Parts with scope "band", name like "20-419 Hz", lo/hi the band edges in Hz. Chapter 04.
    """
    if not 1 <= n_bands <= n_mels:
        raise ConfigError(f"n_bands={n_bands} must be between 1 and n_mels={n_mels}")
    if n_mels != cfg.n_mels:
        raise ConfigError(f"the output has {n_mels} mel bins but cfg.n_mels is {cfg.n_mels}; pass the "
                          "configuration the decoder was trained with")
    centres = mel_frequencies(cfg)
    parts = []
    for idx in np.array_split(np.arange(n_mels), n_bands):
        a, b = int(idx[0]), int(idx[-1]) + 1
        lo = float(cfg.f_min) if a == 0 else float((centres[a - 1] + centres[a]) / 2)
        hi = float(cfg.f_max) if b == n_mels else float((centres[b - 1] + centres[b]) / 2)
        parts.append(Part("band", f"{lo:.0f}-{hi:.0f} Hz", slice(a, b), slice(None), lo, hi))
    return parts


def time_regions(n_frames: int, cfg: Config, attack_s: float = ATTACK_S,
                 release_s: float = RELEASE_S) -> list[Part]:
    """The attack, sustain and release frames of a note (frame t centred at t·hop_length/sr).

    Args:
        n_frames: frames of the output (126 for a 4-s note with the defaults).
        cfg: gives ``hop_length``.
        attack_s, release_s: region boundaries, s.
    Returns:
        Parts with scope "region" named "attack", "sustain", "release" (empty ones left
        out), lo/hi in s. Chapter 04.
    """
    t = np.arange(n_frames) * cfg.hop_length / SAMPLE_RATE
    bounds = (("attack", 0.0, attack_s), ("sustain", attack_s, release_s),
              ("release", release_s, np.inf))
    parts = []
    for name, lo, hi in bounds:
        idx = np.flatnonzero((t >= lo) & (t < hi))
        if idx.size:
            hi_s = min(hi, n_frames * cfg.hop_length / SAMPLE_RATE)
            parts.append(Part("region", name, slice(None), slice(int(idx[0]), int(idx[-1]) + 1),
                              float(lo), float(hi_s)))
    return parts


def output_parts(n_mels: int, n_frames: int, cfg: Config, n_bands: int = 6) -> list[Part]:
    """All the regions a change is measured on: the whole output, each band, each time region."""
    whole = Part("all", "all", slice(None), slice(None), np.nan, np.nan)
    return [whole, *frequency_bands(n_mels, cfg, n_bands), *time_regions(n_frames, cfg)]


def _parts_frame(parts: Sequence[Part]) -> pd.DataFrame:
    return pd.DataFrame({"scope": [p.scope for p in parts], "part": [p.name for p in parts],
                         "lo": [p.lo for p in parts], "hi": [p.hi for p in parts],
                         "unit": [{"band": "Hz", "region": "s"}.get(p.scope, "") for p in parts]})


# --------------------------------------------------------------------------- decoding

def resolve_device(decode: Callable, device=None) -> torch.device:
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
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def db_decoder(decode: Decoder, denormalise: Callable[[torch.Tensor], torch.Tensor],
               device=None) -> Decoder:
    """Compose a decoder of normalised log-mels with the features' ``denormalise`` → output in dB.

    Args:
        decode: e.g. ``model.decode``, ``(n, D) -> (n, 1, n_mels, frames)`` normalised.
        denormalise: e.g. ``feats.denormalise``, normalised → dB.
    Returns:
        A callable ``z -> dB`` with a ``device`` attribute. Chapters 04, 05.
    """
    def decode_db(z: torch.Tensor) -> torch.Tensor:
        return denormalise(decode(z))
    decode_db.device = resolve_device(decode, device)
    return decode_db


def decode_batched(decode: Decoder, z, batch_size: int = 512, device=None) -> torch.Tensor:
    """Decode many latents in chunks without gradients.

    Args:
        decode: ``(n, D) -> (n, 1, n_mels, frames)`` or ``(n, n_mels, frames)``.
        z: (n, D) tensor or array.
        batch_size: latents per decoder call.
    Returns:
        (n, n_mels, frames) float32 on the CPU. Chapters 04, 05.
    """
    dev = resolve_device(decode, device)
    z = torch.as_tensor(z, dtype=torch.float32)
    outs = []
    with torch.no_grad():
        for chunk in torch.split(z, batch_size):
            out = decode(chunk.to(dev))
            outs.append((out[:, 0] if out.dim() == 4 else out).float().cpu())
    if not outs:
        raise VaetoneError("decode_batched got no latents (z has 0 rows); pass at least one")
    return torch.cat(outs)


def decode_throughput(decode: Decoder, latent_dim: int, n: int = 256, batch_size: int = 512,
                      device=None) -> dict:
    """Measure decodes per second on random latents (one warm-up call first).

    Returns:
        {"decodes_per_s", "seconds", "n", "batch_size", "device"}. Chapter 04.
    """
    z = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(0))
    decode_batched(decode, z[:min(n, batch_size)], batch_size, device)
    start = time.perf_counter()
    decode_batched(decode, z, batch_size, device)
    seconds = time.perf_counter() - start
    return {"decodes_per_s": n / seconds, "seconds": seconds, "n": n, "batch_size": batch_size,
            "device": str(resolve_device(decode, device))}


# --------------------------------------------------------------------------- descriptors

def default_describe(cfg: Config) -> Describe:
    """The default descriptor function: :func:`vaetone.audio.spectral_descriptors` bound to ``cfg``."""
    try:
        from .audio import spectral_descriptors
    except ImportError as exc:
        raise VaetoneError("vaetone.audio.spectral_descriptors is not available "
                           f"({exc}); pass describe=... explicitly") from exc
    return lambda x_db: spectral_descriptors(x_db, cfg)


def _describe_checked(describe: Describe, x: torch.Tensor) -> pd.DataFrame:
    """Call ``describe`` and check it returned one numeric row per output."""
    frame = describe(x)
    if not isinstance(frame, pd.DataFrame) or len(frame) != len(x):
        raise VaetoneError(f"describe must return a DataFrame with one row per output "
                           f"({len(x)}); got {type(frame).__name__} of length {len(frame)}")
    return frame.reset_index(drop=True).astype(float)


# --------------------------------------------------------------------------- one at a time

def anchor_points(mu, n_anchors: int, seed: int = 0, prior_mean: bool = True):
    """Anchor points of the sweeps: a seeded choice of posterior means, and the prior mean.

    Args:
        mu: (n, D) posterior means of (test) notes.
        n_anchors: how many notes (at most n).
        seed: the choice's seed.
        prior_mean: put the origin first.
    Returns:
        (z (a, D) float32 tensor, rows (a,) int array: the row of mu, -1 for the prior mean). Chapter 04.
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


def sweep_dimension(decode: Decoder, anchors, dim: int, grid, batch_size: int = 512,
                    device=None) -> torch.Tensor:
    """Decode the sweep of one dimension from all anchors at once (chunked).

    Args:
        decode: latent (n, D) → output (n, [1,] n_mels, frames).
        anchors: (a, D) latents.
        dim: the swept dimension.
        grid: (g,) values given to z_dim.
    Returns:
        (a, g, n_mels, frames) float32 CPU tensor. Chapter 04 (sweep strips, sweep plots).
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
    """Results of :func:`one_at_a_time`, three tidy tables.

    Attributes:
        logmel: one row per (dim, part): dim, scope, part, lo, hi, unit, change (mean absolute
            slope of the output along the sweep, output units per unit z, averaged over anchors
            and the part's bins), change_std (over anchors).
        descriptors: one row per (dim, descriptor): slope (mean |Δdescriptor/Δz| along the sweep,
            averaged over anchors), slope_std (over anchors), range (max − min along the sweep,
            averaged over anchors), slope_norm (slope divided by the descriptor's standard
            deviation over all sweep outputs: unitless, comparable across descriptors).
        curves: one row per decoded output: dim, anchor (position), row (row of mu, -1 prior
            mean), step, z (the swept value), then one column per descriptor.
    """
    logmel: pd.DataFrame
    descriptors: pd.DataFrame
    curves: pd.DataFrame


def one_at_a_time(decode: Decoder, anchors, grid, cfg: Config, describe: Describe | None = None,
                  rows=None, n_bands: int = 6, dims: Sequence[int] | None = None,
                  batch_size: int = 512, device=None) -> Sweeps:
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
        :class:`Sweeps` (logmel, descriptors, curves). Chapter 04.
    """
    anchors = torch.as_tensor(anchors, dtype=torch.float32)
    grid = torch.as_tensor(grid, dtype=torch.float32)
    describe = describe or default_describe(cfg)
    dims = range(anchors.shape[1]) if dims is None else dims
    rows = np.arange(len(anchors)) if rows is None else np.asarray(rows)
    logmel, curves = [], []
    for j in tqdm(dims, desc="one-at-a-time sweeps", leave=False):
        out = sweep_dimension(decode, anchors, j, grid, batch_size, device)
        parts = output_parts(out.shape[2], out.shape[3], cfg, n_bands)
        change = _logmel_change(out, grid, parts)
        logmel.append(_parts_frame(parts).assign(dim=j, change=change.mean(1), change_std=change.std(1)))
        desc = _describe_checked(describe, out.reshape(-1, *out.shape[2:]))
        a, g = len(anchors), len(grid)
        curves.append(pd.concat([pd.DataFrame({
            "dim": j, "anchor": np.repeat(np.arange(a), g), "row": np.repeat(rows, g),
            "step": np.tile(np.arange(g), a), "z": np.tile(grid.numpy(), a)}), desc], axis=1))
    curves = pd.concat(curves, ignore_index=True)
    cols = ["dim", "scope", "part", "lo", "hi", "unit", "change", "change_std"]
    logmel = pd.concat(logmel, ignore_index=True)[cols]
    return Sweeps(logmel, _descriptor_sensitivity(curves, grid), curves)


def _descriptor_sensitivity(curves: pd.DataFrame, grid: torch.Tensor) -> pd.DataFrame:
    """Per (dim, descriptor): mean |slope| and range along the sweeps, and the normalised slope."""
    names = [c for c in curves.columns if c not in ("dim", "anchor", "row", "step", "z")]
    dz = np.diff(grid.numpy())
    scale = curves[names].std(ddof=0)
    out = []
    for j, part in curves.groupby("dim", sort=True):
        g = len(grid)
        values = part.sort_values(["anchor", "step"])[names].to_numpy().reshape(-1, g, len(names))
        slope = np.nanmean(np.abs(np.diff(values, axis=1)) / dz[None, :, None], axis=1)
        span = np.nanmax(values, axis=1) - np.nanmin(values, axis=1)
        frame = pd.DataFrame({"dim": j, "descriptor": names,
                              "slope": np.nanmean(slope, 0), "slope_std": np.nanstd(slope, 0),
                              "range": np.nanmean(span, 0)})
        out.append(frame)
    out = pd.concat(out, ignore_index=True)
    denom = out["descriptor"].map(scale).replace(0.0, np.nan)
    out["slope_norm"] = out["slope"] / denom
    return out


def sensitivity_matrix(sweeps: Sweeps, value: str = "slope_norm") -> pd.DataFrame:
    """The dimensions × descriptors matrix of a one-at-a-time result, for a heatmap.

    Args:
        sweeps: from :func:`one_at_a_time`.
        value: "slope_norm" (default), "slope" or "range".
    Returns:
        DataFrame indexed by dim, one column per descriptor (in ``describe``'s order). Chapter 04.
    """
    table = sweeps.descriptors.pivot(index="dim", columns="descriptor", values=value)
    return table[list(dict.fromkeys(sweeps.descriptors["descriptor"]))]


# --------------------------------------------------------------------------- gradients

def _directional_derivatives(decode: Decoder, z: torch.Tensor) -> torch.Tensor:
    """∂decode/∂z_j at every point of z for every j by forward-mode jvp: (D, n, n_mels, frames)."""
    from torch.func import jvp, vmap
    tangents = torch.eye(z.shape[1], dtype=z.dtype, device=z.device)[:, None, :].expand(-1, len(z), -1)

    def along(t: torch.Tensor) -> torch.Tensor:
        return jvp(decode, (z,), (t,))[1]
    try:
        with warnings.catch_warnings():   # torch's own forward-AD set-up calls torch.jit.script
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
            out = vmap(along)(tangents)
    except (RuntimeError, NotImplementedError) as exc:   # a layer without a vmap rule
        log.warning("vmap over jvp failed (%s); looping over the %d dimensions", exc, z.shape[1])
        out = torch.stack([along(t) for t in tangents])
    return out[:, :, 0] if out.dim() == 5 else out


def jacobian_norms(decode: Decoder, z, cfg: Config, n_bands: int = 6, batch_size: int = 64,
                   device=None) -> pd.DataFrame:
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
        jacobian_rms (mean over points), jacobian_rms_std (over points). Chapter 04.
    """
    dev = resolve_device(decode, device)
    z = torch.as_tensor(z, dtype=torch.float32)
    per_point, parts = [], None
    for chunk in tqdm(torch.split(z, batch_size), desc="decoder Jacobian", leave=False):
        jac = _directional_derivatives(decode, chunk.to(dev)).detach().float().cpu()
        parts = parts or output_parts(jac.shape[2], jac.shape[3], cfg, n_bands)
        per_point.append(torch.stack([jac[:, :, p.mels, p.frames].pow(2).mean(dim=(2, 3)).sqrt()
                                      for p in parts]))       # (parts, D, chunk)
    values = torch.cat(per_point, dim=2).numpy()
    n_dims = values.shape[1]
    frame = pd.concat([_parts_frame(parts).assign(dim=j) for j in range(n_dims)], ignore_index=True)
    frame["jacobian_rms"] = values.mean(2).T.reshape(-1)
    frame["jacobian_rms_std"] = values.std(2).T.reshape(-1)
    return frame[["dim", "scope", "part", "lo", "hi", "unit", "jacobian_rms", "jacobian_rms_std"]]


# --------------------------------------------------------------------------- Sobol

def sobol_problem(latent_dim: int, sigma: float = 3.0) -> dict:
    """The SALib problem of the latent prior N(0, I) truncated at ±sigma (SALib's "truncnorm")."""
    return {"num_vars": latent_dim, "names": [f"z{j}" for j in range(latent_dim)],
            "bounds": [[-sigma, sigma, 0.0, 1.0]] * latent_dim, "dists": ["truncnorm"] * latent_dim}


def sobol_sample(latent_dim: int, n: int, sigma: float = 3.0, seed: int = 0) -> np.ndarray:
    """Saltelli's scheme on a scrambled Sobol sequence (SALib ``sample.sobol``, second order off).

    Returns:
        (n·(D+2), D) latents distributed as the truncated prior. Chapter 04.
    """
    from SALib.sample import sobol as sobol_sampler
    if n < 2 or n & (n - 1):
        raise ConfigError(f"sobol_n={n} must be a power of 2 (e.g. 128) for Sobol sequences")
    return sobol_sampler.sample(sobol_problem(latent_dim, sigma), n, calc_second_order=False,
                                seed=seed)


def sobol_indices(decode: Decoder, latent_dim: int, cfg: Config, describe: Describe | None = None,
                  n: int | None = None, sigma: float | None = None, seed: int | None = None,
                  conf_level: float = 0.95, num_resamples: int = 100, batch_size: int = 512,
                  device=None) -> pd.DataFrame:
    """Sobol first-order (S1) and total (ST) indices of each dimension for each descriptor.

    Decodes the ``n·(D+2)`` latents of :func:`sobol_sample`, describes them, and runs SALib's
    ``analyze.sobol`` on each descriptor (bootstrap confidence intervals, seeded with ``seed + 1``:
    SALib leaves the bootstrap unseeded for a seed of 0). Non-finite
    descriptor values are replaced by the descriptor's mean (logged); a constant descriptor
    gets NaN indices.

    Args:
        decode: latent (n, D) → output, best in dB.
        latent_dim: D.
        cfg: defaults ``n = cfg.sobol_n``, ``sigma = cfg.sweep_sigma``, ``seed = cfg.seed``.
        describe: default :func:`default_describe`.
        conf_level: of the intervals; ``*_conf`` columns are their half-widths.
    Returns:
        Tidy DataFrame: descriptor, dim, S1, S1_conf, ST, ST_conf; ``attrs`` holds N,
        n_evaluations, sigma, conf_level. Chapter 04.
    """
    from SALib.analyze import sobol as sobol_analyzer
    n, sigma = n or cfg.sobol_n, sigma or cfg.sweep_sigma
    seed = cfg.seed if seed is None else seed
    describe = describe or default_describe(cfg)
    x = sobol_sample(latent_dim, n, sigma, seed)
    frames = [_describe_checked(describe, decode_batched(decode, chunk, batch_size, device))
              for chunk in tqdm(np.array_split(x, max(1, len(x) // batch_size)), desc="Sobol", leave=False)]
    y = pd.concat(frames, ignore_index=True)
    problem, keys = sobol_problem(latent_dim, sigma), ("S1", "S1_conf", "ST", "ST_conf")
    rows = []
    for name in y.columns:
        values = _finite(y[name].to_numpy(), name)
        if values is None or np.ptp(values) == 0:
            res = {k: np.full(latent_dim, np.nan) for k in keys}
        else:
            res = sobol_analyzer.analyze(problem, values, calc_second_order=False, seed=seed + 1,
                                         num_resamples=num_resamples, conf_level=conf_level)
        rows.append(pd.DataFrame({"descriptor": name, "dim": np.arange(latent_dim),
                                  **{k: np.asarray(res[k]) for k in keys}}))
    out = pd.concat(rows, ignore_index=True)
    out.attrs.update(N=n, n_evaluations=len(x), sigma=sigma, conf_level=conf_level)
    return out


def _finite(values: np.ndarray, name: str) -> np.ndarray | None:
    """Replace non-finite values by the mean of the finite ones; None when none is finite."""
    bad = ~np.isfinite(values)
    if bad.all():
        log.warning("descriptor %s is never finite on the Sobol sample; indices set to NaN", name)
        return None
    if bad.any():
        log.warning("descriptor %s: %.1f%% non-finite values replaced by the mean", name, 100 * bad.mean())
        values = np.where(bad, values[~bad].mean(), values)
    return values


# --------------------------------------------------------------------------- summary

def rank_dimensions(sweeps: Sweeps | None = None, jacobian: pd.DataFrame | None = None,
                    sobol: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rank the dimensions by each available view of sensitivity, and by their mean rank.

    Args:
        sweeps: :func:`one_at_a_time` result → ``oat_logmel`` (overall change) and
            ``oat_descriptors`` (mean slope_norm over descriptors).
        jacobian: :func:`jacobian_norms` result → ``jacobian`` (overall RMS).
        sobol: :func:`sobol_indices` result → ``sobol_ST`` (mean total index over descriptors).
    Returns:
        DataFrame indexed by dim, sorted by ``mean_rank`` (1 = most influential): the scores
        above, ``rank_<score>`` for each, ``mean_rank`` (the mean of the available ranks: four
        with all three arguments, two of them from the sweeps), and ``top_descriptor`` (the
        descriptor each dimension moves most: by Sobol ST if given, else by slope_norm; None
        where unknown). Chapters 04, 06.
    """
    scores, top = {}, None
    if sweeps is not None:
        scores["oat_logmel"] = sweeps.logmel.query("scope == 'all'").set_index("dim")["change"]
        matrix = sensitivity_matrix(sweeps)
        scores["oat_descriptors"] = matrix.mean(axis=1)
        top = top_descriptor(matrix)
    if jacobian is not None:
        scores["jacobian"] = jacobian.query("scope == 'all'").set_index("dim")["jacobian_rms"]
    if sobol is not None:
        st = sobol.pivot(index="dim", columns="descriptor", values="ST")
        scores["sobol_ST"] = st.mean(axis=1)
        top = top_descriptor(st) if st.notna().any().any() else top
    if not scores:
        raise VaetoneError("rank_dimensions needs at least one of sweeps, jacobian, sobol")
    table = pd.DataFrame(scores)
    for name in scores:
        table[f"rank_{name}"] = table[name].rank(ascending=False, method="min")
    table["mean_rank"] = table[[f"rank_{s}" for s in scores]].mean(axis=1)
    if top is not None:
        table["top_descriptor"] = pd.Series([top.get(int(d)) for d in table.index], index=table.index,
                                            dtype=object)
    table.index.name = "dim"
    return table.sort_values(["mean_rank"] + list(scores)[:1], ascending=[True, False])



def top_descriptor(matrix: pd.DataFrame) -> dict[int, str]:
    """The column of each row's largest value, ``{dim: descriptor}``; rows that are all NaN are left out.

    Args:
        matrix: dims × descriptors, e.g. :func:`sensitivity_matrix`, :func:`normalised_moves` or
            :func:`vaetone.compare.ablation_descriptor_effects`.
    Returns:
        {dim: name of the descriptor with the largest value}. Chapters 04, 05.
    """
    return {int(d): str(row.idxmax()) for d, row in matrix.iterrows() if row.notna().any()}


def normalised_moves(sweeps: Sweeps, decode: Decoder, mu, cfg: Config, describe: Describe | None = None,
                     batch_size: int = 512, device=None) -> pd.DataFrame:
    """Descriptor slopes of the sweeps in units of each descriptor's spread over real notes.

    The ``slope`` of :func:`sensitivity_matrix` (descriptor units per unit z) divided by the
    standard deviation (ddof=1) of the descriptor over the reconstructions ``decode(mu)``: 0.5
    means that moving z_j by one prior standard deviation moves the descriptor by half its spread
    across the notes. A descriptor constant over the reconstructions gives NaN.

    Args:
        sweeps: from :func:`one_at_a_time`.
        decode: the decoder of the sweeps (dB output, :func:`db_decoder`).
        mu: (n, D) posterior means of the notes that set the spread (e.g. the test notes).
        cfg, describe: as in :func:`one_at_a_time`.
    Returns:
        DataFrame indexed by dim, one column per descriptor (unitless). Chapters 04, 06.
    """
    describe = describe or default_describe(cfg)
    spread = _describe_checked(describe, decode_batched(decode, mu, batch_size, device)).std()
    return sensitivity_matrix(sweeps, "slope") / spread.replace(0.0, np.nan)


@dataclass
class Analysis:
    """All three views of one decoder (:func:`analysis`).

    Attributes:
        anchors: (a, D) anchor latents; rows: (a,) their rows of mu (-1: the prior mean).
        grid: (g,) sweep values.
        sweeps: :func:`one_at_a_time` result.
        jacobian: :func:`jacobian_norms` result at the anchors.
        sobol: :func:`sobol_indices` result, or None.
        ranking: :func:`rank_dimensions` of the views, sorted by mean rank.
    """
    anchors: torch.Tensor
    rows: np.ndarray
    grid: torch.Tensor
    sweeps: Sweeps
    jacobian: pd.DataFrame
    sobol: pd.DataFrame | None
    ranking: pd.DataFrame


def analysis(decode: Decoder, mu, cfg: Config, seed: int | None = None, sobol: bool = True,
             describe: Describe | None = None) -> Analysis:
    """The sensitivity analysis of chapter 04 in one call: anchors → sweeps → Jacobian → Sobol → ranking.

    Args:
        decode: latent (n, D) → dB output (:func:`db_decoder`).
        mu: (n, D) posterior means the anchors are chosen from (``cfg.n_anchors`` of them, plus
            the prior mean).
        cfg: gives ``n_anchors``, ``sweep_sigma``, ``sweep_steps``, ``sobol_n`` and the layout.
        seed: seed of the anchor choice and of the Sobol sample (default ``cfg.seed``).
        sobol: include Sobol indices (the slowest part).
        describe: default :func:`default_describe`.
    Returns:
        :class:`Analysis`. Chapter 06 (ground-truth check), and per seed through
        :func:`vaetone.seeds.sensitivity_per_run` (chapter 04).
    """
    seed = cfg.seed if seed is None else seed
    anchors, rows = anchor_points(mu, cfg.n_anchors, seed=seed)
    grid = sweep_grid(cfg.sweep_sigma, cfg.sweep_steps)
    sweeps = one_at_a_time(decode, anchors, grid, cfg, describe, rows=rows)
    jac = jacobian_norms(decode, anchors, cfg)
    sob = sobol_indices(decode, anchors.shape[1], cfg, describe, seed=seed) if sobol else None
    return Analysis(anchors, rows, grid, sweeps, jac, sob, rank_dimensions(sweeps, jac, sob))
