"""Descriptive statistics of the latent space, ground-truth disentanglement scores, and seed matching.

Used in chapter ``06_statistics`` (and by ``04``/``05`` for KL orders and across-seed views).
Inputs are plain arrays: ``mu`` (n, D) posterior means, ``std`` (n, D) posterior standard
deviations, factors as (n,) or (n, K) arrays / DataFrames.

Conventions: standard deviations and variances over notes use ``ddof=1``; kurtosis is
Fisher's *excess* kurtosis (0 for a Gaussian); KL is the analytic
``KL(N(mu, std²) || N(0, 1)) = ½(mu² + std² − 1 − ln std²)`` in nats, averaged over notes (std² floored
at 1e-12 inside the logarithm, so that the std = 0 of a β = 0 autoencoder gives a finite KL); a unit is
*active* when the variance over notes of its posterior mean exceeds 0.01 (Burda et al., 2016);
mutual information is in nats.
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import linear_sum_assignment

from .errors import ConfigError, VaetoneError

log = logging.getLogger(__name__)

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
        (D,) nats. Chapters 05, 06.
    """
    mu, std = _as_2d(mu), _as_2d(std, "std")
    var = std ** 2
    return (0.5 * (mu ** 2 + var - 1.0 - np.log(np.maximum(var, VAR_FLOOR)))).mean(0)


def kl_order(mu, std) -> np.ndarray:
    """Dimensions by decreasing KL to the prior (ties: lower dimension first). Chapter 05."""
    kl = kl_per_dimension(mu, std)
    return np.array(sorted(range(len(kl)), key=lambda d: (-kl[d], d)), dtype=int)


def active_units(mu, threshold: float = ACTIVE_THRESHOLD) -> np.ndarray:
    """Which units are active: variance over notes (ddof=1) of the posterior mean > threshold.

    Args:
        mu: (n, D) posterior means.
    Returns:
        (D,) bool; ``.sum()`` is the active-unit count. Chapter 06.
    """
    return _as_2d(mu).var(0, ddof=1) > threshold


def normality(mu) -> pd.DataFrame:
    """Kolmogorov–Smirnov test of each dimension's posterior means against N(0, 1).

    Returns:
        DataFrame indexed by dim: ks_stat, ks_p (small p: not standard normal). Chapter 06.
    """
    mu = _as_2d(mu)
    res = [stats.kstest(mu[:, j], "norm") for j in range(mu.shape[1])]
    frame = pd.DataFrame({"ks_stat": [r.statistic for r in res], "ks_p": [r.pvalue for r in res]})
    frame.index.name = "dim"
    return frame


def dimension_table(mu, std=None, threshold: float = ACTIVE_THRESHOLD) -> pd.DataFrame:
    """Per-dimension descriptive statistics of the posterior means.

    Args:
        mu: (n, D) posterior means (e.g. of the test notes).
        std: (n, D) posterior standard deviations, optional.
    Returns:
        DataFrame indexed by dim: mean, std, min, max, skewness, excess_kurtosis (Fisher,
        0 for a Gaussian), variance, active, ks_stat, ks_p, and with ``std`` also
        posterior_std (mean over notes) and kl (nats). Chapter 06.
    """
    mu = _as_2d(mu)
    table = pd.DataFrame({"mean": mu.mean(0), "std": mu.std(0, ddof=1), "min": mu.min(0),
                          "max": mu.max(0), "skewness": stats.skew(mu, axis=0),
                          "excess_kurtosis": stats.kurtosis(mu, axis=0, fisher=True),
                          "variance": mu.var(0, ddof=1), "active": active_units(mu, threshold)})
    table.index.name = "dim"
    if std is not None:
        table["posterior_std"] = _as_2d(std, "std").mean(0)
        table["kl"] = kl_per_dimension(mu, std)
    return table.join(normality(mu))


def correlation_matrix(mu, method: str = "pearson") -> pd.DataFrame:
    """The D × D correlation matrix between dimensions ("pearson" or "spearman"). Chapter 06."""
    return pd.DataFrame(_as_2d(mu)).corr(method=method).rename_axis(index="dim", columns="dim")


# --------------------------------------------------------------------------- association with attributes

def factor_association(mu, factors, seed: int = 0, n_neighbors: int = 3) -> pd.DataFrame:
    """Correlation and mutual information of each dimension with continuous attributes (pitch, velocity).

    Args:
        mu: (n, D) posterior means.
        factors: DataFrame / dict / array of (n,) numeric attributes, e.g. ``meta[["pitch", "velocity"]]``.
        seed: ``random_state`` of scikit-learn's ``mutual_info_regression`` (k-NN estimator).
    Returns:
        Tidy DataFrame: dim, factor, pearson_r, spearman_rho, mutual_info (nats). Chapter 06.
    """
    from sklearn.feature_selection import mutual_info_regression
    mu = _as_2d(mu)
    frame, rows = _factor_frame(factors, len(mu)), []
    for name in frame.columns:
        y = frame[name].to_numpy(dtype=float)
        mi = mutual_info_regression(mu, y, n_neighbors=n_neighbors, random_state=seed)
        for j in range(mu.shape[1]):
            rows.append({"dim": j, "factor": name, "pearson_r": stats.pearsonr(mu[:, j], y)[0],
                         "spearman_rho": stats.spearmanr(mu[:, j], y)[0], "mutual_info": mi[j]})
    return pd.DataFrame(rows)


def eta_squared(mu, labels) -> np.ndarray:
    """η² of each dimension with a categorical attribute: between-group / total sum of squares.

    Args:
        mu: (n, D) posterior means.
        labels: (n,) categories (e.g. family names).
    Returns:
        (D,) values in [0, 1]. Chapter 06.
    """
    mu, labels = _as_2d(mu), np.asarray(labels)
    total = ((mu - mu.mean(0)) ** 2).sum(0)
    means = pd.DataFrame(mu).groupby(labels).transform("mean").to_numpy()
    between = ((means - mu.mean(0)) ** 2).sum(0)
    return np.divide(between, total, out=np.full_like(total, np.nan), where=total > 0)


def categorical_association(mu, factors) -> pd.DataFrame:
    """η² and one-way ANOVA of each dimension with categorical attributes (family, source).

    Args:
        mu: (n, D) posterior means.
        factors: DataFrame / dict of (n,) categories, e.g. ``meta[["instrument_family_str", "instrument_source_str"]]``.
    Returns:
        Tidy DataFrame: dim, factor, eta_squared, anova_F, anova_p (NaN with fewer than 2 groups). Chapter 06.
    """
    mu = _as_2d(mu)
    frame, rows = _factor_frame(factors, len(mu)), []
    for name in frame.columns:
        labels = frame[name].to_numpy()
        eta = eta_squared(mu, labels)
        groups = [mu[labels == g] for g in pd.unique(labels)]
        for j in range(mu.shape[1]):
            f, p = (stats.f_oneway(*[g[:, j] for g in groups]) if len(groups) > 1
                    else (np.nan, np.nan))
            rows.append({"dim": j, "factor": name, "eta_squared": eta[j], "anova_F": f, "anova_p": p})
    return pd.DataFrame(rows)


def group_means(mu, labels) -> pd.DataFrame:
    """The mean posterior mean of each dimension per group (e.g. per family): groups × dims, plus n. Chapter 06."""
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
        DataFrame of n rows: x, y (in the note order of mu). Chapter 06.
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


# --------------------------------------------------------------------------- ground truth

def _discretise(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width histogram bins of each column (as disentanglement_lib); few-valued columns kept as codes."""
    out = np.empty(x.shape, dtype=int)
    for j in range(x.shape[1]):
        values = np.unique(x[:, j])
        if len(values) <= n_bins:
            out[:, j] = np.searchsorted(values, x[:, j])
        else:
            edges = np.histogram_bin_edges(x[:, j], bins=n_bins)
            out[:, j] = np.digitize(x[:, j], edges[1:-1])
    return out


def mutual_information_matrix(mu, factors, n_bins: int = 20) -> pd.DataFrame:
    """Discrete mutual information (nats) between every discretised latent and every factor.

    Latents and factors with more than ``n_bins`` distinct values are cut into ``n_bins``
    equal-width bins; others are used as categories.

    Returns:
        DataFrame dims × factors. Chapter 06.
    """
    from sklearn.metrics import mutual_info_score
    mu = _as_2d(mu)
    frame = _factor_frame(factors, len(mu))
    codes = _discretise(mu, n_bins)
    v = _discretise(_codes_of(frame), n_bins)
    mi = np.array([[mutual_info_score(v[:, k], codes[:, j]) for k in range(v.shape[1])]
                   for j in range(mu.shape[1])])
    return pd.DataFrame(mi, columns=list(frame.columns)).rename_axis(index="dim")


def _codes_of(frame: pd.DataFrame) -> np.ndarray:
    """Numeric matrix of the factors; non-numeric columns become category codes."""
    cols = [frame[c].to_numpy(dtype=float) if pd.api.types.is_numeric_dtype(frame[c])
            else pd.factorize(frame[c])[0].astype(float) for c in frame.columns]
    return np.stack(cols, axis=1)


def mig(mu, factors, n_bins: int = 20) -> tuple[float, pd.DataFrame]:
    """Mutual information gap (Chen et al., 2018): per factor, (top MI − second MI) / H(factor), averaged.

    Args:
        mu: (n, D) posterior means, D >= 2.
        factors: (n, K) known generative factors (e.g. the ``factor_*`` columns of the synthetic set).
        n_bins: discretisation of latents and continuous factors.
    Returns:
        (MIG in [0, 1], DataFrame per factor: factor, entropy (nats), top_dim, top_mi,
        second_dim, second_mi, gap (normalised)). Chapter 06.
    """
    mi = mutual_information_matrix(mu, factors, n_bins)
    if len(mi) < 2:
        raise VaetoneError("MIG needs at least 2 latent dimensions")
    frame = _factor_frame(factors, len(_as_2d(mu)))
    v = _discretise(_codes_of(frame), n_bins)
    from sklearn.metrics import mutual_info_score
    rows = []
    for k, name in enumerate(mi.columns):
        h = mutual_info_score(v[:, k], v[:, k])
        order = np.argsort(-mi[name].to_numpy(), kind="stable")
        top, second = mi[name].iloc[order[0]], mi[name].iloc[order[1]]
        rows.append({"factor": name, "entropy": h, "top_dim": int(order[0]), "top_mi": top,
                     "second_dim": int(order[1]), "second_mi": second,
                     "gap": (top - second) / h if h > 0 else np.nan})
    table = pd.DataFrame(rows)
    return float(table["gap"].mean()), table


def _entropy_weights(p: np.ndarray, base: int) -> np.ndarray:
    """1 − entropy (in base ``base``) of each row of a non-negative matrix, rows normalised."""
    p = p / np.clip(p.sum(1, keepdims=True), 1e-12, None)
    logs = np.log(np.where(p > 0, p, 1.0)) / np.log(base)
    return 1.0 + (p * logs).sum(1)


def dci(mu, factors, method: str = "gbt", seed: int = 0, test_fraction: float = 0.3,
        alpha: float = 0.01) -> tuple[dict, pd.DataFrame]:
    """DCI disentanglement, completeness and informativeness (Eastwood & Williams, 2018).

    One regressor per (standardised) factor predicts it from the latents: "gbt" uses
    scikit-learn's ``GradientBoostingRegressor`` (importance: impurity-based
    ``feature_importances_``), "lasso" uses ``Lasso(alpha)`` on standardised latents
    (importance: |coefficient|). From the importance matrix R (D × K): disentanglement =
    Σ_j ρ_j (1 − H_K(R_j·)), ρ_j = each dimension's share of total importance; completeness =
    mean_k (1 − H_D(R_·k)); informativeness = mean test-set R² of the regressors (higher is better).

    Returns:
        ({"disentanglement", "completeness", "informativeness"}, importance DataFrame dims × factors). Chapter 06.
    """
    from sklearn.model_selection import train_test_split
    mu = _as_2d(mu)
    mu = (mu - mu.mean(0)) / np.where(mu.std(0) > 0, mu.std(0), 1.0)
    frame = _factor_frame(factors, len(mu))
    y = _codes_of(frame)
    y = (y - y.mean(0)) / np.where(y.std(0) > 0, y.std(0), 1.0)
    tr, te = train_test_split(np.arange(len(mu)), test_size=test_fraction, random_state=seed)
    imp, r2 = np.zeros((mu.shape[1], y.shape[1])), []
    for k in range(y.shape[1]):
        model = _dci_regressor(method, seed, alpha).fit(mu[tr], y[tr, k])
        imp[:, k] = (model.feature_importances_ if method == "gbt" else np.abs(model.coef_))
        r2.append(model.score(mu[te], y[te, k]))
    imp = np.abs(imp)
    d_j = _entropy_weights(imp, max(2, y.shape[1])) if y.shape[1] > 1 else np.ones(len(imp))
    rho = imp.sum(1) / max(imp.sum(), 1e-12)
    c_k = _entropy_weights(imp.T, max(2, mu.shape[1]))
    scores = {"disentanglement": float((rho * d_j).sum()), "completeness": float(c_k.mean()),
              "informativeness": float(np.mean(r2))}
    return scores, pd.DataFrame(imp, columns=list(frame.columns)).rename_axis(index="dim")


def _dci_regressor(method: str, seed: int, alpha: float):
    """The per-factor regressor of :func:`dci`."""
    if method == "gbt":
        from sklearn.ensemble import GradientBoostingRegressor
        return GradientBoostingRegressor(n_estimators=50, max_depth=3, random_state=seed)
    if method == "lasso":
        from sklearn.linear_model import Lasso
        return Lasso(alpha=alpha, random_state=seed)
    raise ConfigError(f"unknown DCI method {method!r}; use 'gbt' or 'lasso'")


# --------------------------------------------------------------------------- across seeds

def match_dimensions(mu_ref, mu_other) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match the dimensions of another run to a reference run by absolute correlation (Hungarian algorithm).

    Args:
        mu_ref, mu_other: (n, D) posterior means of the same notes under two runs (seeds).
    Returns:
        (perm (D,), signs (D,) ±1, corr (D,)): reference dimension i corresponds to
        ``signs[i] * mu_other[:, perm[i]]``, with correlation ``corr[i]`` (≥ 0 after the sign).
        ``align(mu_other, perm, signs)`` gives the aligned latents. Chapters 04-06.
    """
    a, b = _as_2d(mu_ref, "mu_ref"), _as_2d(mu_other, "mu_other")
    if a.shape != b.shape:
        raise VaetoneError(f"match_dimensions needs latents of the same notes and size, got "
                           f"{a.shape} and {b.shape}")
    c = np.nan_to_num(np.corrcoef(a.T, b.T)[: a.shape[1], a.shape[1]:])
    rows, perm = linear_sum_assignment(-np.abs(c))
    signs = np.where(c[rows, perm] < 0, -1, 1)
    return perm, signs, np.abs(c[rows, perm])


def align(mu_other, perm, signs) -> np.ndarray:
    """Reorder and flip another run's latents onto the reference's dimensions: (n, D)."""
    return _as_2d(mu_other)[:, perm] * np.asarray(signs)[None, :]


def aggregate_seeds(tables: Sequence[pd.DataFrame], matches: Sequence[tuple] | None = None,
                    signed: Sequence[str] = ()) -> pd.DataFrame:
    """Mean and spread over seeds of per-dimension tables, after aligning dimensions to the first seed.

    Args:
        tables: one DataFrame per seed indexed by dim 0..D-1 (numeric columns), first = reference.
        matches: one (perm, signs, ...) per table from :func:`match_dimensions` (the
            reference's own is identity); None: no alignment.
        signed: columns whose sign flips with the dimension (e.g. "mean", "skewness",
            "pearson_r"); sign-free ones (KL, sensitivities, ablation effects) are not flipped.
            min and max swap under a flip: leave them out of ``signed`` and do not read
            their spread across seeds.
    Returns:
        DataFrame indexed by reference dim, columns MultiIndex (column, "mean" | "std" | "min" | "max")
        over seeds. Chapters 04-06.
    """
    aligned = []
    for s, table in enumerate(tables):
        table = table.select_dtypes("number").astype(float)
        if matches is not None:
            perm, signs = matches[s][0], matches[s][1]
            table = table.loc[list(perm)].reset_index(drop=True)
            for col in signed:
                table[col] = table[col].to_numpy() * np.asarray(signs)
        table.index.name = "dim"
        aligned.append(table.assign(seed=s))
    out = pd.concat(aligned).groupby("dim").agg(["mean", "std", "min", "max"])
    return out.drop(columns="seed", level=0)
