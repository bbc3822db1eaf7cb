"""Ground truth: MIG and DCI on known factors; do sensitivity and ablation single out the factors' carriers?

The stage result of chapter 06 that uses these, ``disentanglement.result(cfg)``, lives in
:mod:`vaetone.analysis.ground_truth` and is re-exported here.

Chapter: 06_statistics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from vaetone.analysis.statistics import _as_2d, _factor_frame
from vaetone.errors import ConfigError, VaetoneError

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
        DataFrame dims × factors. Chapter: 06_statistics.
    """
    from sklearn.metrics import mutual_info_score

    mu = _as_2d(mu)
    frame = _factor_frame(factors, len(mu))
    codes = _discretise(mu, n_bins)
    v = _discretise(_codes_of(frame), n_bins)
    mi = np.array([[mutual_info_score(v[:, k], codes[:, j]) for k in range(v.shape[1])] for j in range(mu.shape[1])])
    return pd.DataFrame(mi, columns=list(frame.columns)).rename_axis(index="dim")


def _codes_of(frame: pd.DataFrame) -> np.ndarray:
    """Numeric matrix of the factors; non-numeric columns become category codes."""
    cols = [
        frame[c].to_numpy(dtype=float)
        if pd.api.types.is_numeric_dtype(frame[c])
        else pd.factorize(frame[c])[0].astype(float)
        for c in frame.columns
    ]
    return np.stack(cols, axis=1)


def mig(mu, factors, n_bins: int = 20) -> tuple[float, pd.DataFrame]:
    """Mutual information gap (Chen et al., 2018): per factor, (top MI − second MI) / H(factor), averaged.

    Args:
        mu: (n, D) posterior means, D >= 2.
        factors: (n, K) known generative factors (e.g. the ``factor_*`` columns of the synthetic set).
        n_bins: discretisation of latents and continuous factors.
    Returns:
        (MIG in [0, 1], DataFrame per factor: factor, entropy (nats), top_dim, top_mi,
        second_dim, second_mi, gap (normalised)). Chapter: 06_statistics.
    """
    mi = mutual_information_matrix(mu, factors, n_bins)
    if len(mi) < 2:
        raise VaetoneError(
            f"MIG compares the two most informative latent dimensions, and the code has {len(mi)}; use latent_dim >= 2"
        )
    frame = _factor_frame(factors, len(_as_2d(mu)))
    v = _discretise(_codes_of(frame), n_bins)
    from sklearn.metrics import mutual_info_score

    rows = []
    for k, name in enumerate(mi.columns):
        h = mutual_info_score(v[:, k], v[:, k])
        order = np.argsort(-mi[name].to_numpy(), kind="stable")
        top, second = mi[name].iloc[order[0]], mi[name].iloc[order[1]]
        rows.append(
            {
                "factor": name,
                "entropy": h,
                "top_dim": int(order[0]),
                "top_mi": top,
                "second_dim": int(order[1]),
                "second_mi": second,
                "gap": (top - second) / h if h > 0 else np.nan,
            }
        )
    table = pd.DataFrame(rows)
    return float(table["gap"].mean()), table


def _entropy_weights(p: np.ndarray, base: int) -> np.ndarray:
    """1 − entropy (in base ``base``) of each row of a non-negative matrix, rows normalised; NaN for a zero row."""
    total = p.sum(1, keepdims=True)
    p = np.divide(p, total, out=np.zeros_like(p, dtype=float), where=total > 0)
    logs = np.log(np.where(p > 0, p, 1.0)) / np.log(base)
    return np.where(total[:, 0] > 0, 1.0 + (p * logs).sum(1), np.nan)


def instrument_folds(groups, n: int, n_folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/test folds that keep every instrument on one side (scikit-learn's ``GroupKFold``, shuffled).

    Args:
        groups: (n,) the instrument of each note; n: the number of notes;
        n_folds: folds (at most the number of instruments); seed: of the shuffle.
    Returns:
        [(train rows, test rows)] for min(n_folds, instruments) folds. Raises VaetoneError with fewer
        than 2 instruments. Chapter: 06_statistics.
    """
    from sklearn.model_selection import GroupKFold

    labels = np.asarray(groups)
    if labels.shape != (n,):
        raise VaetoneError(f"DCI needs the instrument of each of the {n} notes, got {labels.shape[0]} labels")
    k = len(pd.unique(labels))
    if k < 2:
        raise VaetoneError(
            f"DCI splits its notes by instrument, and the {n} notes come from {k} instrument; "
            "use data with at least 2 instruments (raise synthetic_instruments or max_instruments)"
        )
    split = GroupKFold(n_splits=min(n_folds, k), shuffle=True, random_state=seed)
    return list(split.split(np.zeros(n), groups=labels))


def dci(
    mu, factors, groups, method: str = "gbt", seed: int = 0, n_folds: int = 5, alpha: float = 0.01
) -> tuple[dict, pd.DataFrame]:
    """DCI disentanglement, completeness and informativeness (Eastwood & Williams, 2018), split by instrument.

    One regressor per (standardised) factor predicts it from the latents: "gbt" uses
    scikit-learn's ``GradientBoostingRegressor`` (importance: impurity-based
    ``feature_importances_``), "lasso" uses ``Lasso(alpha)`` on standardised latents
    (importance: |coefficient|). The notes are split into folds by instrument
    (:func:`instrument_folds`), so that a regressor is always scored on instruments it never
    saw: a code that only names the instrument cannot predict a factor of a new one. R (D × K)
    is the mean importance over the folds. Disentanglement = Σ_j ρ_j (1 − H_K(R_j·)),
    ρ_j = each dimension's share of total importance; completeness = mean over factors of
    (1 − H_D(R_·k)), where a factor that no dimension predicts (zero importance everywhere) is
    *undefined* (NaN) and left out of the mean; informativeness = mean over factors of the R²
    of the out-of-fold predictions, floored at 0 (chance: a prediction no better than the mean
    scores 0, and a worse one counts as no information; the raw R² is in the attrs).

    Args:
        mu: (n, D) posterior means; factors: (n, K) known factors; groups: (n,) the instrument of
        each note (pass ``np.arange(n)`` for notes that are independent draws);
        method: "gbt" or "lasso"; seed: folds and trees; n_folds: instrument folds; alpha: Lasso's.
    Returns:
        ({"disentanglement", "completeness", "informativeness": float (completeness NaN when
        every factor is undefined)}, DataFrame dims × factors of importance, with attrs
        "completeness" ({factor: value}, NaN where undefined), "r2" ({factor: raw out-of-fold R²})
        and "n_folds").
    Chapter: 06_statistics.
    """
    import sklearn

    mu = _as_2d(mu)
    _check_finite(mu, "the latents of DCI")
    mu = (mu - mu.mean(0)) / np.where(mu.std(0) > 0, mu.std(0), 1.0)
    frame = _factor_frame(factors, len(mu))
    y = _codes_of(frame)
    _check_finite(y, "the factors of DCI")
    y = (y - y.mean(0)) / np.where(y.std(0) > 0, y.std(0), 1.0)
    folds = instrument_folds(groups, len(mu), n_folds, seed)
    imp, pred = np.zeros((mu.shape[1], y.shape[1])), np.zeros_like(y)
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):  # inputs checked above
        for k in range(y.shape[1]):
            for tr, te in folds:
                model = _dci_regressor(method, seed, alpha).fit(mu[tr], y[tr, k])
                imp[:, k] += np.abs(model.feature_importances_ if method == "gbt" else model.coef_) / len(folds)
                pred[te, k] = model.predict(mu[te])
    r2 = [_r2(y[:, k], pred[:, k]) for k in range(y.shape[1])]
    d_j = _entropy_weights(imp, max(2, y.shape[1])) if y.shape[1] > 1 else np.ones(len(imp))
    rho = imp.sum(1) / imp.sum() if imp.sum() > 0 else np.zeros(len(imp))
    c_k = _entropy_weights(imp.T, max(2, mu.shape[1]))
    scores = {
        "disentanglement": float((rho * np.nan_to_num(d_j)).sum()) if imp.sum() > 0 else float("nan"),
        "completeness": float(np.nanmean(c_k)) if np.isfinite(c_k).any() else float("nan"),
        "informativeness": float(np.mean(np.maximum(r2, 0.0))),
    }
    table = pd.DataFrame(imp, columns=list(frame.columns)).rename_axis(index="dim")
    table.attrs.update(
        completeness=dict(zip(frame.columns, map(float, c_k))), r2=dict(zip(frame.columns, r2)), n_folds=len(folds)
    )
    return scores, table


def _check_finite(x: np.ndarray, what: str) -> None:
    """Raise VaetoneError when ``x`` holds a NaN or an infinity (the regressors skip sklearn's own check)."""
    bad = ~np.isfinite(x)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise VaetoneError(
            f"{what} hold {int(bad.sum())} non-finite values (first at row {rows[0]}, column {cols[0]}); "
            "drop those notes or check the run that produced them"
        )


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination of out-of-fold predictions (0 for a constant target)."""
    total = ((y - y.mean()) ** 2).sum()
    return float(1.0 - ((y - pred) ** 2).sum() / total) if total > 0 else 0.0


def completeness_text(completeness: dict, overall: float) -> str:
    """DCI completeness in words, with the factors it is undefined for.

    Args:
        completeness: {factor: completeness, NaN where no dimension predicts the factor};
        overall: their mean over the defined factors.
    Returns:
        "0.34", "0.34 (over 6 of 7 factors; undefined for inharmonicity: no dimension predicts it)"
        or "undefined (no dimension predicts any factor)". Chapter: 06_statistics.
    """
    undefined = [str(f).removeprefix("factor_") for f, c in completeness.items() if not np.isfinite(c)]
    if not undefined:
        return f"{overall:.2f}"
    if len(undefined) == len(completeness):
        return "undefined (no dimension predicts any factor)"
    it = "it" if len(undefined) == 1 else "them"
    n_def = len(completeness) - len(undefined)
    return (
        f"{overall:.2f} (over {n_def} of {len(completeness)} factors; undefined for "
        f"{', '.join(undefined)}: no dimension predicts {it})"
    )


def _dci_regressor(method: str, seed: int, alpha: float):
    """The per-factor regressor of :func:`dci`."""
    if method == "gbt":
        from sklearn.ensemble import GradientBoostingRegressor

        return GradientBoostingRegressor(n_estimators=50, max_depth=3, random_state=seed)
    if method == "lasso":
        from sklearn.linear_model import Lasso

        return Lasso(alpha=alpha, random_state=seed)
    raise ConfigError(f"unknown DCI method {method!r}; use 'gbt' or 'lasso'")


FACTOR_DESCRIPTORS = {
    "factor_pitch": None,
    "factor_loudness": "rms_db",
    "factor_brightness": "centroid_hz",
    "factor_attack": "attack_s",
    "factor_decay": "decay_db_per_s",
    "factor_inharmonicity": None,
    "factor_noise": "flatness",
}
"""The mel-domain descriptor (:func:`vaetone.spectral.descriptors.spectral_descriptors`) that follows each synthetic
factor most directly; None where none does (pitch moves the centroid, as brightness does;
inharmonicity needs audio)."""


def _rank_of(order: Sequence[int]) -> dict[int, int]:
    """{dim: 1-based position} of an importance order (most important first)."""
    return {int(d): k + 1 for k, d in enumerate(order)}


def ground_truth_check(
    mig_table: pd.DataFrame,
    dci_importance: pd.DataFrame,
    sensitivity_order: Sequence[int],
    ablation_order: Sequence[int],
    oat_matrix: pd.DataFrame | None = None,
    factor_descriptors: Mapping[str, str | None] = FACTOR_DESCRIPTORS,
) -> pd.DataFrame:
    """Per known factor: the dimension that carries it, and where sensitivity and ablation rank that dimension.

    The *carrier* of a factor is the dimension with the largest mutual information with it
    (MIG's ``top_dim``); DCI's most important dimension for it is given beside. Ranks are
    1-based positions in the importance orders (1 = most important).

    Args:
        mig_table: the per-factor table of :func:`vaetone.analysis.disentanglement.mig`.
        dci_importance: the dims × factors importance of :func:`vaetone.analysis.disentanglement.dci`.
        sensitivity_order: dimensions by sensitivity, most important first (e.g. the index of
            :func:`vaetone.analysis.sensitivity.rank_dimensions`).
        ablation_order: dimensions by ablation effect (:func:`vaetone.analysis.ablation.importance_order`).
        oat_matrix: dims × descriptors sensitivity (:func:`vaetone.analysis.sensitivity.sensitivity_matrix`), optional.
        factor_descriptors: {factor: descriptor that follows it, or None}.
    Returns:
        DataFrame indexed by factor: carrier, mi_gap (normalised), dci_dim (<NA> where no dimension
        predicts the factor), sensitivity_rank,
        ablation_rank, descriptor, oat_dim (the dimension whose sweep moves that descriptor
        most), oat_agrees (oat_dim == carrier). Chapter: 06_statistics.
    """
    sens_rank, abl_rank = _rank_of(sensitivity_order), _rank_of(ablation_order)
    rows = []
    for _, r in mig_table.iterrows():
        carrier, desc = int(r["top_dim"]), factor_descriptors.get(r["factor"])
        oat_dim = None
        if oat_matrix is not None and desc in oat_matrix and oat_matrix[desc].notna().any():
            oat_dim = int(oat_matrix[desc].idxmax())
        rows.append(
            {
                "factor": r["factor"],
                "carrier": carrier,
                "mi_gap": float(r["gap"]),
                "dci_dim": _top(dci_importance[r["factor"]]),
                "sensitivity_rank": sens_rank[carrier],
                "ablation_rank": abl_rank[carrier],
                "descriptor": desc or "",
                "oat_dim": oat_dim,
                "oat_agrees": (oat_dim == carrier) if oat_dim is not None else None,
            }
        )
    frame = pd.DataFrame(rows).set_index("factor")
    return frame.astype({"dci_dim": "Int64", "oat_dim": "Int64", "oat_agrees": "boolean"})


def _top(importance: pd.Series) -> int | None:
    """The most important dimension for a factor, or None when no dimension predicts it (all zero)."""
    return int(importance.idxmax()) if (importance > 0).any() else None


def carriers_singled_out(check: pd.DataFrame) -> dict:
    """Do the importance orders put the factor carriers first? A summary of :func:`ground_truth_check`.

    With k distinct carrier dimensions, counts how many of them are among the k first
    dimensions of the sensitivity order and of the ablation order.

    Returns:
        {"carriers": sorted distinct carrier dims, "k", "in_top_sensitivity", "in_top_ablation",
        "oat_checked" (factors with a descriptor), "oat_agree"}. Chapter: 06_statistics.
    """
    carriers = sorted(set(int(c) for c in check["carrier"]))
    first = check.drop_duplicates("carrier")
    k = len(carriers)
    oat = check["oat_agrees"].dropna()
    return {
        "carriers": carriers,
        "k": k,
        "in_top_sensitivity": int((first["sensitivity_rank"] <= k).sum()),
        "in_top_ablation": int((first["ablation_rank"] <= k).sum()),
        "oat_checked": int(len(oat)),
        "oat_agree": int(oat.astype(bool).sum()),
    }


# --------------------------------------------------------------------------- the stage

_STAGE = ("GroundTruthResult", "compute_ground_truth", "known_factors", "method_orders", "result", "synthetic_config")
"""Names of :mod:`vaetone.analysis.ground_truth` re-exported here (``disentanglement.result(cfg)``)."""


def __getattr__(name: str):
    """The ground-truth stage, re-exported lazily (the stage module imports this one, so not at the top)."""
    if name in _STAGE:
        from vaetone.analysis import ground_truth

        return getattr(ground_truth, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
