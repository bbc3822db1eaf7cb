"""Agreement between training seeds beyond single axes: subspaces, directions, nulls and intervals.

Two seeds of the same model may encode the same information in rotated (mixed) axes. Per-axis
matching (:func:`vaetone.analysis.seeds.match_dimensions`) then finds low correlations although
the codes carry the same subspace. This module measures both, on the posterior means of the same
notes under each seed:

* **per-axis**: :func:`matched_correlations`, |r| of each reference axis with its matched axis;
* **subspace**: :func:`subspace_r2`, the share of one seed's latent variance that the other
  seed's code explains through a linear map fitted on training notes and scored on held-out
  notes, and :func:`canonical_correlations`, whose mean is invariant to any invertible linear
  map of either code;
* **directions**: :func:`stable_directions`, the regression direction of a target (pitch,
  velocity, a synthetic factor) in each seed, carried into the reference's space;
* **rank agreement** with a permutation null (:func:`rank_agreement_null`) and instrument-level
  bootstrap intervals (:func:`vaetone.analysis.subspace_agreement.seed_intervals`);
  :func:`vaetone.analysis.subspace_agreement.seed_agreement` gives all of them at once.

Chapter: 08_validity
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import r2_score

from vaetone.analysis import seeds
from vaetone.errors import ConfigError

RIDGE = 1e-6
"""Ridge of the canonical correlations, relative to a code's mean variance (see :func:`canonical_correlations`)."""


def _code(mu, where: str) -> np.ndarray:
    """A finite (n, D) float64 array, or ConfigError naming ``where``."""
    a = np.asarray(mu, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 3 or a.shape[1] < 1:
        raise ConfigError(f"{where}: a code must be a 2-d array (notes, dims) with at least 3 notes, got {a.shape}")
    if not np.isfinite(a).all():
        raise ConfigError(f"{where}: the code holds NaN or infinite values; encode the notes again")
    return a


def _pair(mu_a, mu_b, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Two codes of the same notes (same number of rows)."""
    a, b = _code(mu_a, where), _code(mu_b, where)
    if a.shape[0] != b.shape[0]:
        raise ConfigError(f"{where}: the codes must be of the same notes, got {a.shape[0]} and {b.shape[0]} rows")
    return a, b


def _rows(sel, n: int, where: str) -> np.ndarray:
    """Row positions from a boolean mask or an index array over ``n`` notes."""
    s = np.asarray(sel)
    idx = np.flatnonzero(s) if s.dtype == bool else s.astype(np.int64)
    if s.dtype == bool and s.shape != (n,):
        raise ConfigError(f"{where}: a boolean selection must have one entry per note ({n}), got {s.shape}")
    if idx.size == 0 or idx.min() < -n or idx.max() >= n:
        raise ConfigError(f"{where}: the selection is empty or points outside the {n} notes")
    return idx


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares coefficients (D_x + 1, D_y) of ``y`` on ``x`` with an intercept (last row)."""
    design = np.column_stack([x, np.ones(len(x))])
    return np.linalg.lstsq(design, y, rcond=None)[0]


def _predict(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x @ coef[:-1] + coef[-1]``."""
    return x @ coef[:-1] + coef[-1]


def _held_out_r2(a: np.ndarray, b: np.ndarray, tr: np.ndarray, te: np.ndarray) -> np.ndarray:
    """Per-dim held-out R² of ``b`` from ``a`` (map fitted on rows ``tr``, scored on rows ``te``)."""
    pred = _predict(_fit(a[tr], b[tr]), a[te])
    return r2_score(b[te], pred, multioutput="raw_values")


def _checked_split(a: np.ndarray, train, test, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the training and test notes, with enough of each for a map from ``a``."""
    tr, te = _rows(train, len(a), f"{where} train"), _rows(test, len(a), f"{where} test")
    if len(tr) <= a.shape[1] + 1:
        raise ConfigError(f"{where}: {len(tr)} training notes cannot fit a map from {a.shape[1]} dims; use more notes")
    if len(te) < 2:
        raise ConfigError(f"{where}: R² needs at least 2 test notes, got {len(te)}")
    return tr, te


def linear_map_r2(mu_ref, mu_other, train, test) -> pd.Series:
    """Held-out R² of each dimension of ``mu_other`` predicted linearly from all of ``mu_ref``.

    A least-squares map with intercept is fitted on the ``train`` notes and scored on the ``test``
    notes (R² about the test notes' own mean, :func:`sklearn.metrics.r2_score`; a constant test
    column scores 1 if predicted exactly, else 0). Under independent codes the expected held-out
    R² is slightly negative (about ``-D_ref / n_train``).

    Args:
        mu_ref: (n, D_a) posterior means of the predicting seed.
        mu_other: (n, D_b) posterior means of the predicted seed, the same notes in the same order.
        train, test: boolean masks (n,) or row-index arrays of the fitting and the scoring notes.
    Returns:
        Series of R² (unitless, ≤ 1) indexed by the dims 0..D_b-1 of ``mu_other`` (name "r2").
    Chapter: 08_validity
    """
    a, b = _pair(mu_ref, mu_other, "linear_map_r2")
    tr, te = _checked_split(a, train, test, "linear_map_r2")
    return pd.Series(_held_out_r2(a, b, tr, te), index=pd.RangeIndex(b.shape[1], name="dim"), name="r2")


def _weighted_r2(a: np.ndarray, b: np.ndarray, tr: np.ndarray, te: np.ndarray) -> float:
    """Variance-weighted held-out R² of ``b`` from ``a`` (weights: each dim's variance over ``te``)."""
    var = b[te].var(axis=0)
    return float(np.sum(_held_out_r2(a, b, tr, te) * var) / np.sum(var)) if var.sum() > 0 else float("nan")


def subspace_r2(mu_ref, mu_other, train, test) -> float:
    """Share of ``mu_other``'s held-out latent variance that ``mu_ref`` explains linearly (variance-weighted R²).

    The mean of :func:`linear_map_r2` weighted by each dimension's variance over the test notes,
    so near-constant (inactive) dimensions barely count. 1: ``mu_other`` is a linear function of
    ``mu_ref`` (e.g. a rotation); about 0 (slightly below) for independent codes; NaN when
    ``mu_other`` is constant on the test notes.

    Args:
        mu_ref, mu_other, train, test: as :func:`linear_map_r2`.
    Returns:
        float, R² (unitless, ≤ 1). Chapter: 08_validity
    """
    a, b = _pair(mu_ref, mu_other, "subspace_r2")
    return _weighted_r2(a, b, *_checked_split(a, train, test, "subspace_r2"))


def _inv_sqrt(c: np.ndarray) -> np.ndarray:
    """``(C + λI)^{-1/2}`` of symmetric scatter matrices (..., D, D), λ = :data:`RIDGE` × mean eigenvalue."""
    e, v = np.linalg.eigh(c)
    e = np.clip(e, 0.0, None)
    lam = RIDGE * e.mean(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        f = np.where(lam > 0, 1.0 / np.sqrt(e + lam), 0.0)
    return (v * f[..., None, :]) @ np.swapaxes(v, -1, -2)


def cca_from_scatter(scatter: np.ndarray, d: int) -> np.ndarray:
    """Canonical correlations between the first ``d`` and the other variables of scatter matrices.

    Args:
        scatter: (..., k, k) centred scatter (or covariance) matrices of two stacked codes, any batch shape.
        d: the first code's dims.
    Returns:
        (..., min(d, k - d)) correlations in [0, 1], descending (see :func:`canonical_correlations`).
    Chapter: 08_validity
    """
    c = (scatter + np.swapaxes(scatter, -1, -2)) / 2
    k = _inv_sqrt(c[..., :d, :d]) @ c[..., :d, d:] @ _inv_sqrt(c[..., d:, d:])
    return np.clip(np.linalg.svd(k, compute_uv=False), 0.0, 1.0)


def canonical_correlations(mu_a, mu_b) -> np.ndarray:
    """Canonical correlations between two codes of the same notes, largest first.

    The singular values of the whitened cross-covariance ``(C_aa + λI)^{-1/2} C_ab (C_bb + λI)^{-1/2}``
    (symmetric inverse square roots by eigendecomposition, negative round-off eigenvalues set to
    0). The tiny ridge λ (:data:`RIDGE` times the code's mean variance) keeps the whitening
    finite for constant or float-noise (inactive) dimensions, which then give correlations near 0
    instead of spurious ones (a direction of variance ``v`` is shrunk by ``sqrt(v / (v + λ))``),
    and bounds the condition number to 1e6, so forming the covariances loses no useful
    precision in float64; directions with variance above about 1e-4 of the mean are unaffected.

    The mean is invariant to any invertible linear map of either code (1 for rotated copies).
    It is biased upward on finite samples: for independent codes, the sum of squared canonical
    correlations is about ``D_a * D_b / (n - 1)``, so compare against a shuffled code.

    Args:
        mu_a: (n, D_a), mu_b: (n, D_b) posterior means of the same notes in the same order.
    Returns:
        (min(D_a, D_b),) correlations in [0, 1], descending. Chapter: 08_validity
    """
    a, b = _pair(mu_a, mu_b, "canonical_correlations")
    z = np.hstack([a, b])
    z = z - z.mean(axis=0)
    return cca_from_scatter(z.T @ z, a.shape[1])


def matched_correlations(mu_ref, mu_other) -> np.ndarray:
    """Per reference axis, |r| with its matched axis of the other seed (``seeds.match_dimensions``).

    Args:
        mu_ref, mu_other: (n, D) posterior means of the same notes under two seeds.
    Returns:
        (D,) |Pearson r| in [0, 1], in the reference's dimension order. Chapter: 08_validity
    """
    a, b = _pair(mu_ref, mu_other, "matched_correlations")
    return seeds.match_dimensions(a, b)[2]


def _ranks(values, scores: bool | None) -> np.ndarray:
    """Ranks (0 = most important) per dim of an importance order or of scores."""
    v = np.asarray(values)
    is_order = (
        not scores
        and v.ndim == 1
        and np.issubdtype(v.dtype, np.integer)
        and np.array_equal(np.sort(v), np.arange(len(v)))
    )
    if scores is False and not is_order:
        raise ConfigError(f"rank_agreement_null: an order must be a permutation of 0..D-1, got {v.tolist()[:8]}...")
    if is_order:
        ranks = np.empty(len(v), dtype=np.float64)
        ranks[v] = np.arange(len(v))
        return ranks
    return -stats.rankdata(np.asarray(v, dtype=np.float64))


def rank_agreement_null(order_a, order_b, n: int = 1000, seed: int = 0, scores: bool | None = None) -> dict:
    """Spearman ρ between two importance rankings of the same dims, with a permutation null.

    The null pairs one ranking with random permutations of the other
    (:func:`scipy.stats.permutation_test`, exact when D! ≤ ``n``); the p-value is one-sided
    (agreement above chance).

    Args:
        order_a, order_b: (D,) each either an importance *order* (a permutation of 0..D-1, the
            most important dim first, e.g. a stage's ``dimension_order``) or per-dim *scores*
            (larger = more important); both must refer to the same dims (match seeds first).
        n: permutations of the null; seed: of the permutations.
        scores: None: integer permutations of 0..D-1 are orders, anything else scores;
            True / False: force scores / orders.
    Returns:
        {"rho", "p_value", "null_q95" (the 95th percentile of the null), "chance" (mean null ρ),
        "n_dims"}; NaNs where a ranking is constant. Chapter: 08_validity
    """
    ra, rb = _ranks(order_a, scores), _ranks(order_b, scores)
    if ra.shape != rb.shape or len(ra) < 3:
        raise ConfigError(f"rank_agreement_null: needs two rankings of the same >= 3 dims, got {len(ra)} and {len(rb)}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 10:
        raise ConfigError(f"rank_agreement_null: n={n!r} permutations must be an integer >= 10 (null_n)")
    nan = float("nan")
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return {"rho": nan, "p_value": nan, "null_q95": nan, "chance": nan, "n_dims": len(ra)}
    za, zb = (ra - ra.mean()) / ra.std(), (rb - rb.mean()) / rb.std()

    def pearson(x, y, axis=-1):
        return np.mean(x * y, axis=axis)

    res = stats.permutation_test(
        (za, zb), pearson, permutation_type="pairings", vectorized=True, n_resamples=n,
        alternative="greater", random_state=np.random.default_rng(seed),
    )  # fmt: skip
    null = res.null_distribution
    return {
        "rho": float(res.statistic),
        "p_value": float(res.pvalue),
        "null_q95": float(np.quantile(null, 0.95)),
        "chance": float(null.mean()),
        "n_dims": len(ra),
    }


def _codes(mus, where: str) -> list[np.ndarray]:
    """The seeds' codes, checked: at least 2, all finite, the same notes."""
    if len(mus) < 2:
        raise ConfigError(f"{where}: agreement needs at least 2 seeds; set n_seeds >= 2")
    codes = [_code(m, f"{where} (seed {s})") for s, m in enumerate(mus)]
    if len({(c.shape) for c in codes}) != 1:
        raise ConfigError(f"{where}: every seed must encode the same notes with the same latent_dim, got "
                          f"{[c.shape for c in codes]}")  # fmt: skip
    return codes


def _direction(x: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares weights (D,) of ``y`` on ``x`` (fitted on ``tr``) and their R² on ``te``."""
    coef = _fit(x[tr], y[tr][:, None])
    return coef[:-1, 0], float(r2_score(y[te], _predict(coef, x[te])[:, 0]))


def _cosine(u: np.ndarray, v: np.ndarray, metric: np.ndarray | None = None) -> float:
    """Cosine of two vectors, in the inner product ``metric`` (default: Euclidean); NaN if either is zero."""
    g = np.eye(len(u)) if metric is None else metric
    uu, vv = float(u @ g @ u), float(v @ g @ v)
    return float(u @ g @ v / np.sqrt(uu * vv)) if uu > 0 and vv > 0 else float("nan")


def stable_directions(mus, targets: pd.DataFrame, train, test) -> pd.DataFrame:
    """The regression direction of each target in every seed's latent space, and its agreement with the reference's.

    For each target column and seed ``s``, ``w_s`` is the least-squares weight vector (with an
    intercept, fitted on the ``train`` notes) of the target on seed ``s``'s code, and ``r2`` its R²
    on the ``test`` notes. ``w_s`` is the target's gradient (a covector), so it is carried into
    the reference's space by pulling it back through the linear map from the reference's code to
    seed ``s``'s (``mu_s ≈ mu_0 N + c``, fitted on ``train``): ``v = N w_s``, the direction in
    the reference's space whose predictions equal seed ``s``'s. This equals ``M⁻¹ w_s`` for the
    map ``M`` of seed ``s`` → reference when that is invertible (``Mᵀ w_s`` for a rotation) but
    needs no inverse, so collapsed dims do no harm. ``cosine_to_reference`` is the cosine of
    ``v`` and ``w_0``: near 1 where the direction is stable even when single axes are not. It
    means little where ``r2`` is near 0 (the target is not encoded), and weights on
    near-constant (collapsed) dims are noisy and can pull it down. ``cosine_in_code`` is the
    same cosine in the metric of the reference code's covariance (train notes), i.e. the
    correlation of the two seeds' predictions of the target: collapsed dims do not count, but
    it is near 1 whenever both seeds predict the target well and the map is good, so read it
    as "the seeds agree on the target's predictor", not as geometry. Notes with a NaN target
    are left out for that target.

    Args:
        mus: one (n, D) code per seed, the same notes in the same order; ``mus[0]`` is the reference.
        targets: (n, k) DataFrame of targets per note (e.g. pitch in semitones, velocity), same rows.
        train, test: boolean masks (n,) or row-index arrays.
    Returns:
        DataFrame, one row per (target, seed): target, seed (index in ``mus``), r2 (held-out,
        unitless), cosine_to_reference and cosine_in_code (in [-1, 1]; 1 for the reference).
    Chapter: 08_validity
    """
    codes = _codes(mus, "stable_directions")
    n = len(codes[0])
    if len(targets) != n:
        raise ConfigError(f"stable_directions: {len(targets)} target rows for {n} notes; pass the same notes")
    tr, te = _checked_split(codes[0], train, test, "stable_directions")
    pullback = [_fit(codes[0][tr], c[tr])[:-1] for c in codes]
    metric = np.cov(codes[0][tr], rowvar=False).reshape(codes[0].shape[1], -1)
    rows = []
    for name in targets.columns:
        y = pd.to_numeric(targets[name], errors="coerce").to_numpy(dtype=np.float64)
        ok = np.isfinite(y)
        t_tr, t_te = tr[ok[tr]], te[ok[te]]
        if len(t_tr) <= codes[0].shape[1] + 1 or len(t_te) < 2:
            raise ConfigError(f"stable_directions: target {name!r} has too few finite values in train or test")
        fits = [_direction(c, y, t_tr, t_te) for c in codes]
        for s, ((w, r2), n_map) in enumerate(zip(fits, pullback)):
            v, w0 = n_map @ w, fits[0][0]
            cos, in_code = (1.0, 1.0) if s == 0 else (_cosine(w0, v), _cosine(w0, v, metric))
            rows.append(
                {"target": str(name), "seed": s, "r2": r2, "cosine_to_reference": cos, "cosine_in_code": in_code}
            )
    return pd.DataFrame(rows)
