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
        raise VaetoneError("MIG needs at least 2 latent dimensions")
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
    """1 − entropy (in base ``base``) of each row of a non-negative matrix, rows normalised."""
    p = p / np.clip(p.sum(1, keepdims=True), 1e-12, None)
    logs = np.log(np.where(p > 0, p, 1.0)) / np.log(base)
    return 1.0 + (p * logs).sum(1)


def dci(
    mu, factors, method: str = "gbt", seed: int = 0, test_fraction: float = 0.3, alpha: float = 0.01
) -> tuple[dict, pd.DataFrame]:
    """DCI disentanglement, completeness and informativeness (Eastwood & Williams, 2018).

    One regressor per (standardised) factor predicts it from the latents: "gbt" uses
    scikit-learn's ``GradientBoostingRegressor`` (importance: impurity-based
    ``feature_importances_``), "lasso" uses ``Lasso(alpha)`` on standardised latents
    (importance: |coefficient|). From the importance matrix R (D × K): disentanglement =
    Σ_j ρ_j (1 − H_K(R_j·)), ρ_j = each dimension's share of total importance; completeness =
    mean_k (1 − H_D(R_·k)); informativeness = mean test-set R² of the regressors (higher is better).

    Returns:
        ({"disentanglement", "completeness", "informativeness"}, importance DataFrame dims × factors).
    Chapter: 06_statistics.
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
        imp[:, k] = model.feature_importances_ if method == "gbt" else np.abs(model.coef_)
        r2.append(model.score(mu[te], y[te, k]))
    imp = np.abs(imp)
    d_j = _entropy_weights(imp, max(2, y.shape[1])) if y.shape[1] > 1 else np.ones(len(imp))
    rho = imp.sum(1) / max(imp.sum(), 1e-12)
    c_k = _entropy_weights(imp.T, max(2, mu.shape[1]))
    scores = {
        "disentanglement": float((rho * d_j).sum()),
        "completeness": float(c_k.mean()),
        "informativeness": float(np.mean(r2)),
    }
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


FACTOR_DESCRIPTORS = {
    "factor_pitch": None,
    "factor_loudness": "rms_db",
    "factor_brightness": "centroid_hz",
    "factor_attack": "attack_s",
    "factor_decay": "decay_s",
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
        DataFrame indexed by factor: carrier, mi_gap (normalised), dci_dim, sensitivity_rank,
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
                "dci_dim": int(dci_importance[r["factor"]].idxmax()),
                "sensitivity_rank": sens_rank[carrier],
                "ablation_rank": abl_rank[carrier],
                "descriptor": desc or "",
                "oat_dim": oat_dim,
                "oat_agrees": (oat_dim == carrier) if oat_dim is not None else None,
            }
        )
    frame = pd.DataFrame(rows).set_index("factor")
    return frame.astype({"oat_dim": "Int64", "oat_agrees": "boolean"})


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
