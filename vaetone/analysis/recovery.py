"""Do the explanation methods find the dimension that carries each known factor? Recovery against the truth.

On notes whose generative factors are known (the factorial ``synthetic`` source), each
method's map (:mod:`vaetone.analysis.recovery_maps`) names, for every factor that a mel-domain
descriptor follows (:data:`~vaetone.analysis.disentanglement.FACTOR_DESCRIPTORS`), the dimension
that moves that descriptor most (:func:`factor_map`). The truth names the dimension with the
largest mutual information with the factor (:func:`true_map`). *Recovery* is the share of the
scored factors where the two agree (:func:`recovery`).

Chance is a relabelling null (:func:`recovery_null`): the method's dimensions are renamed by a
uniformly random permutation of the D dimensions, which keeps the method's structure (how many
distinct dimensions it names, which factors share one) and breaks only its link to the truth;
its expected recovery is 1/D. Across seeds (:func:`recovery_table`), the mean recovery is tested
against the distribution of the mean of independent per-seed relabellings, and its interval is a
percentile bootstrap over the seeds.

Chapter: 08_validity.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from vaetone.analysis.disentanglement import FACTOR_DESCRIPTORS, mutual_information_matrix
from vaetone.analysis.intervals import bootstrap, check_bootstrap
from vaetone.analysis.recovery_maps import METHODS, method_maps
from vaetone.config import Config
from vaetone.errors import ConfigError

__all__ = [
    "METHODS",
    "factor_map",
    "method_maps",
    "method_recovery",
    "recovery",
    "recovery_null",
    "recovery_table",
    "true_map",
]

PREFIX = "factor_"
"""Prefix of the synthetic factors' metadata columns; maps are aligned on the names without it."""
MIN_BOOTSTRAP_SEEDS = 3
"""Fewest seeds a bootstrap interval is drawn from; with fewer the interval is the min–max over seeds."""


def _short(name) -> str:
    """A factor's name without the ``factor_`` prefix."""
    return str(name).removeprefix(PREFIX)


def factor_map(matrix: pd.DataFrame, factor_descriptors: Mapping[str, str | None] = FACTOR_DESCRIPTORS) -> pd.Series:
    """Each factor's dimension according to one method: the row with the largest value in its descriptor's column.

    Args:
        matrix: dims × descriptors (one map of :func:`method_maps`), indexed by dim.
        factor_descriptors: {factor: descriptor that follows it, or None}.
    Returns:
        Series (nullable Int64) indexed by factor: the dimension; <NA> where the factor has no
        descriptor, the descriptor is not a column of ``matrix``, or its column is all NaN.
    Chapter: 08_validity.
    """
    dims = {}
    for factor, desc in factor_descriptors.items():
        column = matrix[desc] if desc is not None and desc in matrix.columns else None
        dims[factor] = int(column.idxmax()) if column is not None and column.notna().any() else pd.NA
    return pd.Series(dims, dtype="Int64", name="dim").rename_axis(index="factor")


def true_map(mu, factors) -> pd.Series:
    """Each factor's true dimension: the one with the largest mutual information with it.

    Args:
        mu: (n, D) posterior means of the notes (all the synthetic notes).
        factors: (n, K) their known factors (e.g. :func:`vaetone.analysis.ground_truth.known_factors`).
    Returns:
        Series (nullable Int64) indexed by factor (as named in ``factors``); <NA> where no
        dimension shares any information with the factor (e.g. a constant factor).
        Ties go to the lower dimension. Chapter: 08_validity.
    """
    mi = mutual_information_matrix(mu, factors)
    dims = {f: int(mi[f].idxmax()) if mi[f].max() > 0 else pd.NA for f in mi.columns}
    return pd.Series(dims, dtype="Int64", name="dim").rename_axis(index="factor")


def _aligned(method_map: pd.Series, truth: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(mapped dims, true dims) of the factors both name, aligned on factor names without ``factor_``."""
    m = pd.Series(method_map).rename(index=_short).astype("Int64")
    t = pd.Series(truth).rename(index=_short).astype("Int64")
    common = [f for f in m.index if f in t.index]
    if not common and len(m) and len(t):
        raise ConfigError(
            f"recovery: the method's factors {list(m.index)} and the true map's {list(t.index)} share no name; "
            "pass maps of the same factors (factor_map of FACTOR_DESCRIPTORS and true_map of the factor_* columns)"
        )
    both = [f for f in common if not pd.isna(m[f]) and not pd.isna(t[f])]
    return m[both].to_numpy(dtype=np.int64), t[both].to_numpy(dtype=np.int64)


def recovery(method_map: pd.Series, truth: pd.Series) -> float:
    """The share of the scored factors whose mapped dimension is the true one.

    Args:
        method_map: factor → dimension of one method (:func:`factor_map`; <NA> = not scored).
        truth: factor → true dimension (:func:`true_map`).
    Returns:
        Recovery in [0, 1] over the factors both maps name; NaN when there is none. Chapter: 08_validity.
    """
    mapped, true = _aligned(method_map, truth)
    return float((mapped == true).mean()) if len(mapped) else float("nan")


def _null_draws(mapped: np.ndarray, true: np.ndarray, n_dims: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) recoveries of the mapped dims relabelled by n uniform random permutations of range(n_dims)."""
    if len(mapped) == 0:
        return np.full(n, np.nan)
    if n_dims < 1 or mapped.max() >= n_dims or true.max() >= n_dims:
        raise ConfigError(
            f"recovery null: n_dims={n_dims} but the maps name dimension {max(mapped.max(), true.max())}; "
            "pass the latent size of the model"
        )
    perms = rng.permuted(np.tile(np.arange(n_dims), (n, 1)), axis=1)  # (n, n_dims)
    return (perms[:, mapped] == true[None, :]).mean(axis=1)


def _p_value(null: np.ndarray, observed: float) -> float:
    """(1 + #null >= observed) / (n + 1), with a tolerance for equal fractions computed differently."""
    if not np.isfinite(observed):
        return float("nan")
    return float((1 + np.sum(null >= observed - 1e-9)) / (len(null) + 1))


def recovery_null(method_map: pd.Series, truth: pd.Series, n_dims: int, n: int = 1000, seed: int = 0) -> dict:
    """Chance recovery: the method's dimensions relabelled by random permutations of the D dimensions.

    Args:
        method_map: factor → dimension of one method; truth: factor → true dimension.
        n_dims: D, the latent size; n: permutations (>= 1); seed: of the permutations.
    Returns:
        {"observed": recovery, "chance": mean null recovery (1/D in expectation), "p_value":
        (1 + #null >= observed) / (n + 1), "null_q95": 95th percentile of the null, "n": n,
        "n_factors": factors scored}; NaN values when no factor is scored. Chapter: 08_validity.
    """
    if n < 1:
        raise ConfigError(f"recovery_null needs n >= 1 permutations, got {n}; use e.g. null_n=1000")
    mapped, true = _aligned(method_map, truth)
    null = _null_draws(mapped, true, int(n_dims), int(n), np.random.default_rng(seed))
    observed = float((mapped == true).mean()) if len(mapped) else float("nan")
    empty = not len(mapped)
    return {
        "observed": observed,
        "chance": float("nan") if empty else float(null.mean()),
        "p_value": _p_value(null, observed),
        "null_q95": float("nan") if empty else float(np.percentile(null, 95)),
        "n": int(n),
        "n_factors": int(len(mapped)),
    }


# --------------------------------------------------------------------------- one model, many models


def _map_columns(mapping: pd.Series, prefix: str) -> dict[str, float]:
    """{prefix + factor: dimension as float, NaN for <NA>} (result tables are stored as JSON, which has no <NA>)."""
    return {f"{prefix}{_short(f)}": float("nan") if pd.isna(d) else float(d) for f, d in mapping.items()}


def method_recovery(
    decode,
    mu_test,
    mu_all,
    factors_all,
    cfg: Config,
    seed: int = 0,
    sobol_n: int | None = None,
    describe=None,
    maps: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Recovery of the known factors by every method of :data:`METHODS`, for one model.

    Args:
        decode: latent (n, D) → dB output (:func:`~vaetone.analysis.decoding.db_decoder`).
        mu_test: (n, D) posterior means of the test notes (anchors, spread, ablation; n >= 2).
        mu_all: (N, D) posterior means of all the notes, and factors_all: (N, K) their known factors
            (``factor_*`` columns): the truth (:func:`true_map`).
        cfg: as :func:`method_maps`, and ``null_n`` (permutations of the null).
        seed: of the anchors, the Sobol sample and the null.
        sobol_n: Saltelli base sample (default ``cfg.validity_sobol_n``); describe: as :func:`method_maps`.
        maps: the :func:`method_maps` of this decoder and ``mu_test`` when already computed (e.g. to
            show them too); then ``decode``, ``describe`` and ``sobol_n`` are not used.
    Returns:
        DataFrame, one row per method: method, recovery, chance, p_value, null_q95,
        n_factors_scored, n_dims, then ``dim_<factor>`` (the method's map) and ``true_<factor>``
        (the truth) per factor, as float (NaN where a factor is not mapped). Chapter: 08_validity.
    """
    if maps is None:
        maps = method_maps(decode, mu_test, cfg, describe=describe, seed=seed, sobol_n=sobol_n)
    elif missing := [m for m in METHODS if m not in maps]:
        raise ConfigError(f"method_recovery: the maps lack {missing}; pass all of method_maps' output or maps=None")
    truth = true_map(mu_all, factors_all)
    n_dims = int(np.shape(mu_test)[1])
    rows = []
    for method in METHODS:
        fm = factor_map(maps[method])
        null = recovery_null(fm, truth, n_dims, n=cfg.null_n, seed=seed)
        rows.append(
            {
                "method": method,
                "recovery": null["observed"],
                "chance": null["chance"],
                "p_value": null["p_value"],
                "null_q95": null["null_q95"],
                "n_factors_scored": null["n_factors"],
                "n_dims": n_dims,
                **_map_columns(fm, "dim_"),
                **_map_columns(truth, "true_"),
            }
        )
    return pd.DataFrame(rows)


def _maps_of(row: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(method map, truth) of one row of :func:`method_recovery` (``dim_*`` and ``true_*`` columns)."""

    def pick(prefix: str) -> pd.Series:
        cols = [c for c in row.index if str(c).startswith(prefix)]
        values = pd.to_numeric(row[cols], errors="coerce").astype("Float64").round().astype("Int64")
        return values.rename(index=lambda c: str(c)[len(prefix) :])

    return pick("dim_"), pick("true_")


def _mean_p_value(group: pd.DataFrame, n: int, rng: np.random.Generator) -> float:
    """Permutation p-value of the mean recovery over the seeds of one (model, method) group.

    Each null draw relabels every seed's map by its own random permutation of that model's
    dimensions (:func:`recovery_null`'s null, independent across seeds) and averages the
    recoveries over the seeds; p = (1 + #null means >= the observed mean) / (n + 1).
    """
    draws, observed = [], []
    for _, row in group.iterrows():
        mapped, true = _aligned(*_maps_of(row))
        if len(mapped):
            draws.append(_null_draws(mapped, true, int(row["n_dims"]), n, rng))
            observed.append(float((mapped == true).mean()))
    if not draws:
        return float("nan")
    return _p_value(np.mean(draws, axis=0), float(np.mean(observed)))


def _interval(values: np.ndarray, level: float, n_boot: int, seed: int) -> tuple[float, float, str]:
    """(low, high, kind): percentile bootstrap over seeds with >= MIN_BOOTSTRAP_SEEDS seeds, else min–max."""
    if len(values) == 0:
        return float("nan"), float("nan"), "none"
    if len(values) < MIN_BOOTSTRAP_SEEDS:
        return float(values.min()), float(values.max()), "min-max"
    iv = bootstrap(values, np.arange(len(values)), "mean", n_boot, level, seed, where="recovery over seeds")
    return iv.low, iv.high, f"bootstrap {round(100 * level)} %"


def recovery_table(
    scores: pd.DataFrame, level: float = 0.95, n_boot: int = 1000, n_null: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """The headline table: recovery of the known factors per model and method, over seeds, with chance.

    Args:
        scores: long rows of :func:`method_recovery` with ``model`` and ``seed`` added (one per
            model, seed and method): model, seed, method, recovery, chance, and for the p-value
            n_dims with the ``dim_<factor>`` and ``true_<factor>`` maps.
        level: coverage of the interval; n_boot: bootstrap resamples; n_null: null draws;
        seed: of the bootstrap and the null (the table is the same for the same scores and seed).
    Returns:
        DataFrame indexed by (model, method) in the order the models first appear and
        :data:`METHODS`: mean (recovery over the seeds with a score), low, high, interval
        ("bootstrap 95 %" over seeds, or "min-max" with fewer than 3 seeds), n_seeds, chance (mean
        of the per-seed chance), p_value (the mean against the mean of independent per-seed
        relabelling nulls, :func:`recovery_null`). Chapter: 08_validity.
    """
    need = {"model", "seed", "method", "recovery", "chance", "n_dims"}
    missing = sorted(need - set(scores.columns))
    if missing or not any(str(c).startswith("dim_") for c in scores.columns):
        raise ConfigError(
            f"recovery_table: the scores lack {missing or ['dim_<factor> columns']}; pass the rows of "
            "method_recovery with a 'model' and a 'seed' column added"
        )
    if scores.duplicated(["model", "seed", "method"]).any():
        raise ConfigError(
            "recovery_table: some (model, seed, method) appear twice in the scores; give each model a distinct "
            "name and each of its seeds one row per method"
        )
    check_bootstrap(n_boot, level)
    rng, rows = np.random.default_rng(seed), []
    methods = [m for m in METHODS if m in set(scores["method"])] + sorted(set(scores["method"]) - set(METHODS))
    for model in pd.unique(scores["model"]):
        for method in methods:
            group = scores[(scores["model"] == model) & (scores["method"] == method)]
            if group.empty:
                continue
            values = group["recovery"].to_numpy(dtype=float)
            values, chance = values[np.isfinite(values)], group["chance"].to_numpy(dtype=float)
            low, high, kind = _interval(values, level, n_boot, seed)
            rows.append(
                {
                    "model": model,
                    "method": method,
                    "mean": float(values.mean()) if len(values) else float("nan"),
                    "low": low,
                    "high": high,
                    "interval": kind,
                    "n_seeds": int(len(values)),
                    "chance": float(np.nanmean(chance)) if np.isfinite(chance).any() else float("nan"),
                    "p_value": _mean_p_value(group, n_null, rng),
                }
            )
    return pd.DataFrame(rows).set_index(["model", "method"])
