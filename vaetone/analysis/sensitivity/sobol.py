"""The global view: Sobol first-order and total indices of the descriptors (SALib, Saltelli sampling).

Chapter: 04_sensitivity.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from vaetone.analysis.decoding import Decoder, Describe, _describe_checked, decode_batched, default_describe
from vaetone.analysis.sensitivity.oat import CONSTANT_SPREAD
from vaetone.config import Config
from vaetone.errors import ConfigError
from vaetone.progress import tqdm

# --------------------------------------------------------------------------- Sobol

log = logging.getLogger(__name__)


def sobol_problem(latent_dim: int, sigma: float = 3.0) -> dict:
    """The SALib problem of the latent prior N(0, I) truncated at ±sigma (SALib's "truncnorm")."""
    return {
        "num_vars": latent_dim,
        "names": [f"z{j}" for j in range(latent_dim)],
        "bounds": [[-sigma, sigma, 0.0, 1.0]] * latent_dim,
        "dists": ["truncnorm"] * latent_dim,
    }


def sobol_sample(latent_dim: int, n: int, sigma: float = 3.0, seed: int = 0) -> np.ndarray:
    """Saltelli's scheme on a scrambled Sobol sequence (SALib ``sample.sobol``, second order off).

    Returns:
        (n·(D+2), D) latents distributed as the truncated prior. Chapter: 04_sensitivity.
    """
    from SALib.sample import sobol as sobol_sampler

    if n < 2 or n & (n - 1):
        raise ConfigError(f"sobol_n={n} must be a power of 2 (e.g. 128) for Sobol sequences")
    return sobol_sampler.sample(sobol_problem(latent_dim, sigma), n, calc_second_order=False, seed=seed)


def sobol_indices(
    decode: Decoder,
    latent_dim: int,
    cfg: Config,
    describe: Describe | None = None,
    n: int | None = None,
    sigma: float | None = None,
    seed: int | None = None,
    conf_level: float = 0.95,
    num_resamples: int = 100,
    batch_size: int = 512,
    device=None,
) -> pd.DataFrame:
    """Sobol first-order (S1) and total (ST) indices of each dimension for each descriptor.

    Decodes the ``n·(D+2)`` latents of :func:`sobol_sample`, describes them, and runs SALib's
    ``analyze.sobol`` on each descriptor (bootstrap confidence intervals, seeded with ``seed + 1``:
    SALib leaves the bootstrap unseeded for a seed of 0). Non-finite
    descriptor values are replaced by the descriptor's mean (logged); a constant descriptor
    (its range at most ``CONSTANT_SPREAD`` times its mean magnitude: float rounding) gets NaN indices.

    Args:
        decode: latent (n, D) → output, best in dB.
        latent_dim: D.
        cfg: defaults ``n = cfg.sobol_n``, ``sigma = cfg.sweep_sigma``, ``seed = cfg.seed``.
        describe: default :func:`default_describe`.
        conf_level: of the intervals; ``*_conf`` columns are their half-widths.
    Returns:
        Tidy DataFrame: descriptor, dim, S1, S1_conf, ST, ST_conf; ``attrs`` holds N,
        n_evaluations, sigma, conf_level. Chapter: 04_sensitivity.
    """
    from SALib.analyze import sobol as sobol_analyzer

    n, sigma = n or cfg.sobol_n, sigma or cfg.sweep_sigma
    seed = cfg.seed if seed is None else seed
    describe = describe or default_describe(cfg)
    x = sobol_sample(latent_dim, n, sigma, seed)
    frames = [
        _describe_checked(describe, decode_batched(decode, chunk, batch_size, device))
        for chunk in tqdm(np.array_split(x, max(1, len(x) // batch_size)), desc="Sobol", leave=False)
    ]
    y = pd.concat(frames, ignore_index=True)
    problem, keys = sobol_problem(latent_dim, sigma), ("S1", "S1_conf", "ST", "ST_conf")
    rows = []
    for name in y.columns:
        values = _finite(y[name].to_numpy(), name)
        if values is None or np.ptp(values) <= CONSTANT_SPREAD * np.abs(values).mean():  # constant up to rounding
            res = {k: np.full(latent_dim, np.nan) for k in keys}
        else:
            with warnings.catch_warnings():  # SALib warns when a bootstrap resample happens to be constant
                warnings.filterwarnings("ignore", message="Constant values encountered", category=UserWarning)
                res = sobol_analyzer.analyze(
                    problem,
                    values,
                    calc_second_order=False,
                    seed=seed + 1,
                    num_resamples=num_resamples,
                    conf_level=conf_level,
                )
        rows.append(
            pd.DataFrame({"descriptor": name, "dim": np.arange(latent_dim), **{k: np.asarray(res[k]) for k in keys}})
        )
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
