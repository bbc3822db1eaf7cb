"""Disentanglement scores with their ceiling and floors: SAP, and the perfect, rotated and shuffled codes.

Every score of a learnt code is read against the same score of three reference codes of the
same notes: the *perfect* code (one standardised factor per dimension, the ceiling), a random
*rotation* of it (complete but entangled: every dimension mixes every factor) and a *shuffled*
copy (rows permuted, so independent of the factors: chance).

Chapter: 08_validity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import digamma

from vaetone.analysis.disentanglement import _codes_of, dci, mig
from vaetone.analysis.statistics import _as_2d, _factor_frame
from vaetone.errors import VaetoneError

REFERENCE_CODES = ("perfect", "rotated", "shuffled")
"""The reference codes of :func:`reference_scores`, ceiling first."""

SCORE_NAMES = ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap")
"""The keys of :func:`code_scores` (and the columns of :func:`reference_scores`)."""


def _standardised(x: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit standard deviation; a constant column becomes zeros."""
    sd = x.std(0)
    return (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)


def sap(mu, factors) -> tuple[float, pd.DataFrame]:
    """SAP, the separated attribute predictability (Kumar, Sattigeri & Balakrishnan, 2018).

    For every factor, the R² of a linear regression of the factor on each single latent
    dimension (the squared Pearson correlation; 0 for a constant dimension or factor); the
    factor's gap is the top R² minus the second; SAP is the mean gap over factors. All factors
    are treated as continuous (ordered levels are numbers; a non-numeric factor uses its
    category codes). A perfect code scores 1 (R² 1 on its own dimension, 0 elsewhere); a code
    independent of the factors scores about 0 (each R² is about 1/n).

    Args:
        mu: (n, D) posterior means, D >= 2.
        factors: (n, K) known factors (DataFrame, dict, or array).
    Returns:
        (SAP in [0, 1], DataFrame indexed by factor: top_dim (int), top_r2, second_r2, gap).
    Chapter: 08_validity.
    """
    mu = _as_2d(mu)
    if mu.shape[1] < 2:
        raise VaetoneError(f"SAP compares the two best latent dimensions, and the code has {mu.shape[1]}; use D >= 2")
    frame = _factor_frame(factors, len(mu))
    r = _standardised(mu).T @ _standardised(_codes_of(frame)) / len(mu)  # (D, K) correlations
    r2 = np.clip(r**2, 0.0, 1.0)
    order = np.argsort(-r2, axis=0, kind="stable")
    cols = np.arange(r2.shape[1])
    top, second = r2[order[0], cols], r2[order[1], cols]
    table = pd.DataFrame(
        {"top_dim": order[0].astype(int), "top_r2": top, "second_r2": second, "gap": top - second},
        index=pd.Index(list(frame.columns), name="factor"),
    )
    return float(table["gap"].mean()), table


def perfect_code(factors) -> np.ndarray:
    """The axis-aligned perfect code of the factors: the ceiling of every score.

    Args:
        factors: (n, K) known factors (DataFrame, dict or array; non-numeric columns use their
            category codes).
    Returns:
        (n, K) float array, column k the k-th factor standardised to mean 0 and standard
        deviation 1 (zeros for a constant factor), in the factors' column order.
    Chapter: 08_validity.
    """
    n = len(factors) if not isinstance(factors, dict) else len(next(iter(factors.values())))
    return _standardised(_codes_of(_factor_frame(factors, n)))


def rotated_code(code, seed: int = 0) -> np.ndarray:
    """A code times a uniformly random rotation (``scipy.stats.special_ortho_group``): complete but entangled.

    It keeps all the information of ``code`` (informativeness stays at the ceiling) but spreads
    every factor over every dimension, the floor of disentanglement for a complete code. A
    random rotation does not score 0: see :func:`rotation_floor`.

    Args:
        code: (n, D) code, D >= 2; seed: of the rotation.
    Returns:
        (n, D) ``code @ Q`` with Q a (D, D) rotation drawn with ``seed``.
    Chapter: 08_validity.
    """
    from scipy.stats import special_ortho_group

    code = _as_2d(code, "code")
    if code.shape[1] < 2:
        raise VaetoneError(f"a rotation needs a code of at least 2 dimensions, got {code.shape[1]}; use D >= 2")
    return code @ special_ortho_group.rvs(code.shape[1], random_state=seed)


def shuffled_code(code, seed: int = 0) -> np.ndarray:
    """A code with its rows permuted, so that it is independent of the factors: chance.

    Args:
        code: (n, D) code; seed: of the permutation (``numpy.random.default_rng``).
    Returns:
        (n, D) the rows of ``code`` in a random order (same values, same marginals).
    Chapter: 08_validity.
    """
    code = _as_2d(code, "code")
    return code[np.random.default_rng(seed).permutation(len(code))]


def rotation_floor(k: int) -> float:
    """Expected DCI disentanglement (and completeness) of a uniformly random rotation of a k-factor perfect code.

    With importance proportional to the squared loadings, each dimension's importances are the
    squares of a uniform point on the unit sphere, Dirichlet(1/2, …, 1/2); their expected
    entropy is ψ(k/2 + 1) − ψ(3/2), so the floor is 1 − (ψ(k/2 + 1) − ψ(3/2)) / ln k
    (0.31 for 7 factors): a rotation is far from the ceiling, but not at 0.

    Args:
        k: number of factors (and dimensions), k >= 2.
    Returns:
        The expected score in (0, 1). Chapter: 08_validity.
    """
    if k < 2:
        raise VaetoneError(f"the rotation floor needs at least 2 factors, got {k}")
    return float(1.0 - (digamma(k / 2 + 1) - digamma(1.5)) / np.log(k))


def code_scores(mu, factors, groups, seed: int = 0, n_bins: int = 20, dci_method: str = "gbt") -> dict:
    """MIG, DCI (disentanglement, completeness, informativeness) and SAP of one code, in one call.

    MIG and DCI are :func:`vaetone.analysis.disentanglement.mig` and
    :func:`vaetone.analysis.disentanglement.dci` unchanged (DCI in folds by instrument;
    completeness is NaN when no dimension predicts any factor). MIG's plug-in estimate is
    biased upwards by about (n_bins − 1)(L − 1) / (2n) nats for a continuous dimension
    independent of an L-level factor (0.11 nats, 7 % of ln 5, with 20 bins, 5 levels and 352
    notes); a dimension with at most ``n_bins`` distinct values is used as categories.

    Args:
        mu: (n, D) code, D >= 2; factors: (n, K) known factors; groups: (n,) the instrument of
        each note; seed: DCI's folds and trees; n_bins: MIG's bins; dci_method: "gbt" or "lasso".
    Returns:
        {"mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap"}: floats.
    Chapter: 08_validity.
    """
    mig_score = mig(mu, factors, n_bins)[0]  # first: it checks D >= 2 before DCI's trees
    scores = dci(mu, factors, groups, method=dci_method, seed=seed)[0]
    return {
        "mig": mig_score,
        **{f"dci_{k}": float(scores[k]) for k in ("disentanglement", "completeness", "informativeness")},
        "sap": sap(mu, factors)[0],
    }


def reference_scores(factors, groups, seed: int = 0, n_bins: int = 20, dci_method: str = "gbt") -> pd.DataFrame:
    """The ceiling and floors of every score on the same notes: the perfect, rotated and shuffled codes.

    Args:
        factors: (n, K) known factors, K >= 2; groups: (n,) the instrument of each note;
        seed: of the rotation, the shuffle, and DCI's folds and trees; n_bins, dci_method: as
        :func:`code_scores` (use the settings of the codes they are compared with).
    Returns:
        DataFrame indexed by code ("perfect", "rotated", "shuffled"), columns :data:`SCORE_NAMES`.
    Chapter: 08_validity.
    """
    perfect = perfect_code(factors)
    if perfect.shape[1] < 2:
        raise VaetoneError(
            f"the reference codes need at least 2 factors to entangle, got {perfect.shape[1]}; pass every known factor"
        )
    codes = {"perfect": perfect, "rotated": rotated_code(perfect, seed), "shuffled": shuffled_code(perfect, seed)}
    rows = {name: code_scores(code, factors, groups, seed, n_bins, dci_method) for name, code in codes.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(index="code")[list(SCORE_NAMES)]
