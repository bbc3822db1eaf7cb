"""Descriptive statistics of the latent space.

Used in chapter ``06_statistics`` (and by ``04``/``05`` for KL orders and across-seed views); the stage
result of chapter 06 is ``statistics.result(cfg)`` (:mod:`vaetone.analysis.statistics_stage`).
Inputs are plain arrays: ``mu`` (n, D) posterior means, ``std`` (n, D) posterior standard
deviations, factors as (n,) or (n, K) arrays / DataFrames.

Conventions: standard deviations and variances over notes use ``ddof=1``; kurtosis is
Fisher's *excess* kurtosis (0 for a Gaussian); KL is the analytic
``KL(N(mu, std²) || N(0, 1)) = ½(mu² + std² − 1 − ln std²)`` in nats, averaged over notes (std² floored
at 1e-12 inside the logarithm, so that the std = 0 of a β = 0 autoencoder gives a finite KL); a unit is
*active* when the variance over notes of its posterior mean exceeds 0.01 (Burda et al., 2016);
mutual information is in nats. Tests take the nesting of notes in instruments into account
(:mod:`vaetone.analysis.nesting`): notes of one instrument are not independent observations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from vaetone.analysis.nesting import nested_anova
from vaetone.errors import ConfigError, VaetoneError

ACTIVE_THRESHOLD = 0.01
"""Variance of the posterior means above which a unit is active (Burda et al., 2016)."""

VAR_FLOOR = 1e-12
"""Smallest posterior variance used inside ``ln std²`` of the KL (β = 0 gives std = 0)."""


def _as_2d(a, name: str = "mu") -> np.ndarray:
    """A float64 (n, D) array; a tensor is detached and moved to the CPU."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or len(a) < 2:
        raise VaetoneError(f"{name} must be (n, D) with n >= 2, got shape {a.shape}")
    return a


def _factor_frame(factors, n: int) -> pd.DataFrame:
    """Factors as a DataFrame of n rows (a Series, dict, (n,) or (n, K) array)."""
    if isinstance(factors, pd.Series):
        factors = factors.to_frame()
    if isinstance(factors, pd.DataFrame):
        frame = factors.reset_index(drop=True)
    elif isinstance(factors, dict):
        frame = pd.DataFrame({k: np.asarray(v) for k, v in factors.items()})
    else:
        arr = np.asarray(factors)
        arr = arr[:, None] if arr.ndim == 1 else arr
        frame = pd.DataFrame(arr, columns=[f"factor{k}" for k in range(arr.shape[1])])
    if len(frame) != n:
        raise VaetoneError(f"factors have {len(frame)} rows but the latents have {n}")
    return frame


# --------------------------------------------------------------------------- per dimension


def kl_per_dimension(mu, std) -> np.ndarray:
    """Analytic KL of each posterior dimension to N(0, 1), averaged over notes.

    A posterior standard deviation of 0 (the deterministic autoencoder, β = 0, reports
    ``std = 0``) would make ``ln std²`` infinite; the variance is floored at
    ``VAR_FLOOR`` = 1e-12 inside the logarithm, so such a dimension gets a large but finite KL
    (about 13.3 nats plus ``mu²/2``) and orders still work.

    Args:
        mu, std: (n, D) posterior means and standard deviations (std ≥ 0).
    Returns:
        (D,) nats. Chapters: 05_ablation, 06_statistics.
    """
    return kl_terms(mu, std).mean(0)


def kl_terms(mu, std) -> np.ndarray:
    """Analytic KL of each note's posterior to N(0, 1), per dimension (variance floored as in :func:`kl_per_dimension`).

    Args:
        mu, std: (n, D) posterior means and standard deviations.
    Returns:
        (n, D) nats; ``.sum(1)`` is each note's total KL. Chapter: 06_statistics.
    """
    mu, std = _as_2d(mu), _as_2d(std, "std")
    var = std**2
    return 0.5 * (mu**2 + var - 1.0 - np.log(np.maximum(var, VAR_FLOOR)))


def kl_order(mu, std) -> np.ndarray:
    """Dimensions by decreasing KL to the prior (ties: lower dimension first). Chapter: 05_ablation."""
    kl = kl_per_dimension(mu, std)
    return np.array(sorted(range(len(kl)), key=lambda d: (-kl[d], d)), dtype=int)


def active_units(mu, threshold: float = ACTIVE_THRESHOLD) -> np.ndarray:
    """Which units are active: variance over notes (ddof=1) of the posterior mean > threshold.

    Args:
        mu: (n, D) posterior means.
    Returns:
        (D,) bool; ``.sum()`` is the active-unit count. Chapter: 06_statistics.
    """
    return _as_2d(mu).var(0, ddof=1) > threshold


def dimension_table(mu, std=None, threshold: float = ACTIVE_THRESHOLD) -> pd.DataFrame:
    """Per-dimension descriptive statistics of the posterior means.

    Args:
        mu: (n, D) posterior means (e.g. of the test notes).
        std: (n, D) posterior standard deviations, optional.
    Returns:
        DataFrame indexed by dim: mean, std, min, max, skewness, excess_kurtosis (Fisher,
        0 for a Gaussian), variance, active, and with ``std`` also posterior_std (mean over
        notes) and kl (nats). The normality test, which needs the instruments, is
        :func:`vaetone.analysis.nesting.nested_normality`. Chapter: 06_statistics.
    """
    mu = _as_2d(mu)
    table = pd.DataFrame(
        {
            "mean": mu.mean(0),
            "std": mu.std(0, ddof=1),
            "min": mu.min(0),
            "max": mu.max(0),
            "skewness": stats.skew(mu, axis=0),
            "excess_kurtosis": stats.kurtosis(mu, axis=0, fisher=True),
            "variance": mu.var(0, ddof=1),
            "active": active_units(mu, threshold),
        }
    )
    table.index.name = "dim"
    if std is not None:
        table["posterior_std"] = _as_2d(std, "std").mean(0)
        table["kl"] = kl_per_dimension(mu, std)
    return table


def correlation_matrix(mu, method: str = "pearson") -> pd.DataFrame:
    """The D × D correlation matrix between dimensions ("pearson" or "spearman"). Chapter: 06_statistics."""
    return pd.DataFrame(_as_2d(mu)).corr(method=method).rename_axis(index="dim", columns="dim")


# --------------------------------------------------------------------------- association with attributes


def factor_association(mu, factors, seed: int = 0, n_neighbors: int = 3) -> pd.DataFrame:
    """Correlation and mutual information of each dimension with continuous attributes (pitch, velocity).

    Args:
        mu: (n, D) posterior means.
        factors: DataFrame / dict / array of (n,) numeric attributes, e.g. ``meta[["pitch", "velocity"]]``.
        seed: ``random_state`` of scikit-learn's ``mutual_info_regression`` (k-NN estimator).
    Returns:
        Tidy DataFrame: dim, factor, pearson_r, spearman_rho, mutual_info (nats). Chapter: 06_statistics.
    """
    from sklearn.feature_selection import mutual_info_regression

    mu = _as_2d(mu)
    frame, rows = _factor_frame(factors, len(mu)), []
    for name in frame.columns:
        y = frame[name].to_numpy(dtype=float)
        mi = mutual_info_regression(mu, y, n_neighbors=n_neighbors, random_state=seed)
        for j in range(mu.shape[1]):
            rows.append(
                {
                    "dim": j,
                    "factor": name,
                    "pearson_r": stats.pearsonr(mu[:, j], y)[0],
                    "spearman_rho": stats.spearmanr(mu[:, j], y)[0],
                    "mutual_info": mi[j],
                }
            )
    return pd.DataFrame(rows)


def eta_squared(mu, labels) -> np.ndarray:
    """η² of each dimension with a categorical attribute: between-group / total sum of squares.

    Args:
        mu: (n, D) posterior means.
        labels: (n,) categories (e.g. family names).
    Returns:
        (D,) values in [0, 1]. Chapter: 06_statistics.
    """
    mu, labels = _as_2d(mu), np.asarray(labels)
    total = ((mu - mu.mean(0)) ** 2).sum(0)
    means = pd.DataFrame(mu).groupby(labels).transform("mean").to_numpy()
    between = ((means - mu.mean(0)) ** 2).sum(0)
    return np.divide(between, total, out=np.full_like(total, np.nan), where=total > 0)


def categorical_association(mu, factors, groups) -> pd.DataFrame:
    """η² of each dimension with instrument-level categories (family, source), and their ANOVA on instrument means.

    The test takes the instrument as its unit (:func:`vaetone.analysis.nesting.nested_anova`):
    notes of one instrument are not independent, so counting them would call differences
    between a few instruments significant. The note-level p-value is given beside.

    Args:
        mu: (n, D) posterior means.
        factors: DataFrame / dict of (n,) categories constant within each instrument, e.g.
            ``meta[["instrument_family_str", "instrument_source_str"]]``.
        groups: (n,) the instrument of each note (``meta["instrument_str"]``).
    Returns:
        Tidy DataFrame: dim, factor, eta_squared (over notes), anova_F, anova_p (one-way ANOVA
        on the instrument means; NaN where undefined), anova_p_notes (notes as independent),
        n_instruments, n_groups. Chapter: 06_statistics.
    """
    mu = _as_2d(mu)
    frame, parts = _factor_frame(factors, len(mu)), []
    for name in frame.columns:
        labels = frame[name].to_numpy()
        test = nested_anova(mu, labels, groups, name).reset_index()
        test.insert(1, "factor", name)
        test.insert(2, "eta_squared", eta_squared(mu, labels))
        parts.append(test)
    return pd.concat(parts, ignore_index=True)


def group_means(mu, labels) -> pd.DataFrame:
    """The mean posterior mean of each dimension per group (e.g. per family): groups × dims, plus n.

    Chapter: 06_statistics.
    """
    mu = _as_2d(mu)
    frame = pd.DataFrame(mu).groupby(np.asarray(labels)).mean()
    frame.insert(0, "n", pd.Series(np.asarray(labels)).value_counts())
    frame.index.name = "group"
    return frame


def embed_2d(mu, method: str = "pca", seed: int = 0, perplexity: float = 30.0) -> pd.DataFrame:
    """2-D coordinates of the posterior means for scatter plots.

    Args:
        mu: (n, D) posterior means.
        method: "pca" (``attrs["explained_variance_ratio"]`` set) or "tsne" (seeded; the
            perplexity is capped at (n − 1) / 3).
    Returns:
        DataFrame of n rows: x, y (in the note order of mu). Chapter: 06_statistics.
    """
    mu = _as_2d(mu)
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed).fit(mu)
        frame = pd.DataFrame(pca.transform(mu), columns=["x", "y"])
        frame.attrs["explained_variance_ratio"] = pca.explained_variance_ratio_.tolist()
        return frame
    if method == "tsne":
        from sklearn.manifold import TSNE

        perp = float(min(perplexity, max(1.0, (len(mu) - 1) / 3)))
        xy = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed).fit_transform(mu)
        return pd.DataFrame(xy, columns=["x", "y"])
    raise ConfigError(f"unknown 2-D method {method!r}; use 'pca' or 'tsne'")


# --------------------------------------------------------------------------- the stage

_STAGE = ("StatisticsResult", "compute_statistics", "load_test_latents", "result")
"""Names of :mod:`vaetone.analysis.statistics_stage` that this module re-exports (``statistics.result(cfg)``)."""


def __getattr__(name: str):
    """The statistics stage, re-exported lazily (the stage module imports this one, so not at the top)."""
    if name in _STAGE:
        from vaetone.analysis import statistics_stage

        return getattr(statistics_stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
