"""Tests on latents that respect the nesting of notes in instruments.

The notes of one instrument are not independent draws: they share a source sample, a
register and a timbre, so their latents resemble each other. A test that counts notes as
independent observations calls a difference "significant" that only a handful of
instruments carry. The two tests of chapter 06 therefore take the instrument as the unit:

* **Normality** (one sample against N(0, 1)): the Kolmogorov–Smirnov distance of the notes'
  posterior means from N(0, 1), with a p-value from a Monte Carlo null of *nested* standard
  normal notes. Each simulated note is ``sqrt(ρ) u_instrument + sqrt(1 − ρ) e_note`` (u, e
  independent N(0, 1)), with the observed instruments and their numbers of notes and the
  dimension's intraclass correlation ρ (:func:`intraclass_correlation`). With ρ = 0 this is
  the ordinary KS test; as ρ → 1 the effective sample shrinks to the number of instruments.
* **Differences between groups of instruments** (family, source): a one-way ANOVA on the
  instrument means (one value per instrument), so its n is the number of instruments.

Both also return the note-level test (notes counted as independent) beside, for comparison.

Chapter: 06_statistics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from vaetone.analysis.intervals import check_bootstrap
from vaetone.errors import VaetoneError

LEVEL = 0.05
"""Family-wise significance level of the tests, Bonferroni-corrected over the dimensions."""


def _as_2d(a) -> np.ndarray:
    """A float64 (n, D) array (a (n,) array becomes one column; a tensor is moved to the CPU)."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=float)
    return a[:, None] if a.ndim == 1 else a


def instrument_codes(groups, n: int) -> tuple[np.ndarray, int]:
    """Integer codes 0..k-1 of the instrument of each note, and k.

    Args:
        groups: (n,) the instrument of each note (any labels); n: the number of notes.
    Returns:
        ((n,) int codes in sorted label order, the number of instruments k). Chapter: 06_statistics.
    """
    labels = np.asarray(groups)
    if labels.shape != (n,):
        got = labels.shape[0] if labels.ndim else 0
        raise VaetoneError(f"{got} instrument labels for {n} notes; pass the instrument of every note")
    codes, uniques = pd.factorize(labels, sort=True)
    return codes, len(uniques)


def instrument_means(mu, groups) -> np.ndarray:
    """The mean posterior mean of each instrument: (k, D), instruments in sorted label order.

    Chapter: 06_statistics.
    """
    x = _as_2d(mu)
    codes, k = instrument_codes(groups, len(x))
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, codes, x)
    return sums / np.bincount(codes, minlength=k)[:, None]


def intraclass_correlation(mu, groups) -> np.ndarray:
    """Share of each dimension's variance that lies between instruments: ICC(1), one-way ANOVA estimator.

    ``ρ = σ²_b / (σ²_b + σ²_w)`` with ``σ²_w = MSW`` and ``σ²_b = max(0, (MSB − MSW) / n0)``,
    ``n0 = (N − Σ n_i² / N) / (k − 1)`` (unbalanced groups). 0 where every instrument has a
    single note or a dimension is constant; 1 where notes vary only between instruments.

    Args:
        mu: (n, D) posterior means; groups: (n,) the instrument of each note (at least 2).
    Returns:
        (D,) values in [0, 1]. Chapter: 06_statistics.
    """
    x = _as_2d(mu)
    codes, k = instrument_codes(groups, len(x))
    if k < 2:
        raise VaetoneError("an intraclass correlation needs notes of at least 2 instruments")
    n, sizes = len(x), np.bincount(codes, minlength=k)
    means = instrument_means(x, codes)
    if n == k:
        return np.zeros(x.shape[1])
    msb = (sizes[:, None] * (means - x.mean(0)) ** 2).sum(0) / (k - 1)
    msw = ((x - means[codes]) ** 2).sum(0) / (n - k)
    n0 = (n - (sizes**2).sum() / n) / (k - 1)
    between = np.maximum(0.0, (msb - msw) / n0)
    total = between + msw
    return np.divide(between, total, out=np.zeros_like(total), where=total > 0)


def ks_statistic(x) -> np.ndarray:
    """Kolmogorov–Smirnov distance from N(0, 1) of the samples along the last axis (scipy's two-sided D).

    Args:
        x: (..., n) samples.
    Returns:
        (...,) distances in [0, 1]. Chapter: 06_statistics.
    """
    s = np.sort(np.asarray(x, dtype=float), axis=-1)
    n = s.shape[-1]
    cdf, i = special.ndtr(s), np.arange(1, n + 1) / n
    return np.maximum((i - cdf).max(-1), (cdf - (i - 1 / n)).max(-1))


def nested_normality(mu, groups, n_sim: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Kolmogorov–Smirnov test of each dimension's posterior means against N(0, 1), notes nested in instruments.

    Args:
        mu: (n, D) posterior means; groups: (n,) the instrument of each note.
        n_sim: simulations of the nested null (100..1e6, the book's ``bootstrap_n``); seed: of the simulations.
    Returns:
        DataFrame indexed by dim: ks_stat (distance of the notes from N(0, 1)), icc (the
        intraclass correlation used by the null), ks_p (Monte Carlo p-value under nested N(0, 1)
        notes, ``(1 + #{null ≥ observed}) / (1 + n_sim)``; icc and ks_p are NaN, undefined, when
        the notes come from one instrument), ks_p_notes (scipy's KS p-value with the
        notes counted as independent). Chapter: 06_statistics.
    """
    check_bootstrap(n_sim)
    x = _as_2d(mu)
    codes, k = instrument_codes(groups, len(x))
    observed = ks_statistic(x.T)
    rho, p = np.full(x.shape[1], np.nan), np.full(x.shape[1], np.nan)
    if k >= 2:
        rho = intraclass_correlation(x, codes)
        rng = np.random.default_rng(seed)
        between, within = rng.standard_normal((n_sim, k))[:, codes], rng.standard_normal((n_sim, len(x)))
        for j, (r, d) in enumerate(zip(rho, observed)):
            null = ks_statistic(np.sqrt(r) * between + np.sqrt(1 - r) * within)
            p[j] = (1 + np.count_nonzero(null >= d - 1e-12)) / (1 + n_sim)
    frame = pd.DataFrame(
        {
            "ks_stat": observed,
            "icc": rho,
            "ks_p": p,
            "ks_p_notes": [stats.kstest(x[:, j], "norm").pvalue for j in range(x.shape[1])],
        }
    )
    frame.index.name = "dim"
    return frame


def simulations(n_boot: int, n_dims: int) -> int:
    """Simulations of the nested KS null: ``n_boot``, or more where needed to resolve the Bonferroni level.

    A Monte Carlo p-value is at least 1 / (n_sim + 1); with D dimensions the test needs p below
    LEVEL / D, so n_sim is raised to at least 4 D / LEVEL (1280 for 16 dimensions).

    Returns:
        max(n_boot, ceil(4 D / LEVEL)). Chapter: 06_statistics.
    """
    return max(int(n_boot), int(np.ceil(4 * n_dims / LEVEL)))


def one_way_anova(x, labels) -> tuple[np.ndarray, np.ndarray]:
    """One-way ANOVA of each column of x between the groups of ``labels`` (as ``scipy.stats.f_oneway``).

    Args:
        x: (m, D) values (notes or instrument means); labels: (m,) their groups.
    Returns:
        ((D,) F, (D,) p). NaN (undefined) with fewer than 2 groups, no more values than groups,
        or a constant column; F = inf, p = 0 where the groups differ and are constant inside.
    Chapter: 06_statistics.
    """
    x = _as_2d(x)
    codes, uniques = pd.factorize(np.asarray(labels), sort=True)
    g, m = len(uniques), len(x)
    nan = np.full(x.shape[1], np.nan)
    if g < 2 or m <= g:
        return nan, nan.copy()
    sizes = np.bincount(codes, minlength=g)
    means = np.zeros((g, x.shape[1]))
    np.add.at(means, codes, x)
    means /= sizes[:, None]
    ssb = (sizes[:, None] * (means - x.mean(0)) ** 2).sum(0)
    ssw = ((x - means[codes]) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ssb / (g - 1)) / (ssw / (m - g))
    f = np.where((ssw == 0) & (ssb > 0), np.inf, f)
    f = np.where((ssw == 0) & (ssb == 0), np.nan, f)
    return f, np.where(np.isnan(f), np.nan, stats.f.sf(np.nan_to_num(f, posinf=1e300), g - 1, m - g))


def instrument_labels(labels, groups, name: str = "attribute") -> np.ndarray:
    """The value of an instrument-level attribute (family, source) for each instrument, in sorted label order.

    Raises:
        VaetoneError: the attribute varies within an instrument (it cannot be tested on instrument means).
    Chapter: 06_statistics.
    """
    labels = np.asarray(labels)
    codes, k = instrument_codes(groups, len(labels))
    per = pd.Series(labels).groupby(codes)
    if (per.nunique() > 1).any():
        bad = int((per.nunique() > 1).sum())
        raise VaetoneError(
            f"{name} varies within {bad} instrument(s); a test on instrument means needs an attribute that is "
            "constant within each instrument (family, source)"
        )
    return per.first().to_numpy()


def nested_anova(mu, labels, groups, name: str = "attribute") -> pd.DataFrame:
    """One-way ANOVA of each dimension between groups of instruments, on the instrument means.

    Args:
        mu: (n, D) posterior means; labels: (n,) an instrument-level attribute (family, source);
        groups: (n,) the instrument of each note; name: the attribute, for messages.
    Returns:
        DataFrame indexed by dim: anova_F, anova_p (on the k instrument means: NaN where undefined,
        see :func:`one_way_anova`), anova_p_notes (the same ANOVA with the notes counted as
        independent), n_instruments, n_groups. Chapter: 06_statistics.
    """
    x = _as_2d(mu)
    means, per = instrument_means(x, groups), instrument_labels(labels, groups, name)
    f, p = one_way_anova(means, per)
    frame = pd.DataFrame(
        {
            "anova_F": f,
            "anova_p": p,
            "anova_p_notes": one_way_anova(x, labels)[1],
            "n_instruments": len(means),
            "n_groups": len(pd.unique(per)),
        }
    )
    frame.index.name = "dim"
    return frame


def undefined_anova(n_instruments: int, n_groups: int, plural: str) -> str:
    """Why an ANOVA on instrument means is undefined, e.g. "undefined: 3 instruments in 3 families ...".

    Chapter: 06_statistics.
    """
    if n_groups < 2:
        return f"undefined: the {n_instruments} instruments all belong to one of the {plural}"
    return (
        f"undefined: {n_instruments} instruments in {n_groups} {plural} leave no instrument to compare within "
        f"one of the {plural} (the ANOVA on instrument means needs more instruments than {plural})"
    )


def count_phrase(p_nested, p_notes, what: str, n_notes: int, unit: str) -> tuple[dict, str]:
    """How many dimensions a nested test rejects (Bonferroni over the dimensions), against the note-level count.

    Args:
        p_nested, p_notes: (D,) p-values of the nesting-aware and of the note-level test;
        what: what a rejection means ("differ from N(0, 1)"); n_notes: the notes;
        unit: the unit of the nested test ("a nested null of 44 instruments").
    Returns:
        ({"n": rejections or NaN when every nested p is undefined, "n_notes": note-level rejections},
        the phrase, e.g. "3 of 16 dimensions differ from N(0, 1) (...); counting the 480 notes as
        independent, 12 would"). Chapter: 06_statistics.
    """
    p_nested, p_notes = np.asarray(p_nested, dtype=float), np.asarray(p_notes, dtype=float)
    d = len(p_nested)
    n_notes_rej = int((p_notes < LEVEL / d).sum())
    tail = f"counting the {n_notes} notes as independent, {n_notes_rej} would"
    if np.isnan(p_nested).all():
        return {"n": float("nan"), "n_notes": n_notes_rej}, tail
    n = int((p_nested < LEVEL / d).sum())
    return (
        {"n": n, "n_notes": n_notes_rej},
        f"{n} of {d} dimensions {what} ({unit}, Bonferroni-corrected {100 * LEVEL:.0f} %); {tail}",
    )
