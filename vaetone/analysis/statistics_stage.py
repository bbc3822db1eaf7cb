"""The statistics stage: what the posterior means of the test notes look like, each number chapter 06 quotes.

:func:`result` encodes the test notes with the trained run of a configuration and describes
their posterior means with the functions of :mod:`vaetone.analysis.statistics`: per dimension
(against the N(0, 1) prior), between dimensions, and against pitch, velocity, family and
source; plus two 2-D maps. :func:`compute_statistics` does the same from arrays, with no run.
It is re-exported as ``vaetone.analysis.statistics.result``.

Chapter: 06_statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from vaetone import store
from vaetone.analysis.statistics import (
    _as_2d,
    categorical_association,
    correlation_matrix,
    dimension_table,
    embed_2d,
    factor_association,
    group_means,
    kl_order,
)
from vaetone.config import Config
from vaetone.errors import VaetoneError
from vaetone.results import StageResult, cached

NOTE_COLUMNS = {
    "instrument_family_str": "family",
    "instrument_source_str": "source",
    "instrument_str": "instrument",
    "pitch": "pitch",
    "velocity": "velocity",
}
"""The metadata columns the stage reads, and their names in the ``notes`` table."""

KS_LEVEL = 0.05
"""Significance level of the Kolmogorov–Smirnov tests, Bonferroni-corrected over the dimensions."""


@dataclass(frozen=True)
class StatisticsResult(StageResult):
    """Descriptive statistics of the posterior means of the test notes.

    Tables: ``dimensions`` (:func:`~vaetone.analysis.statistics.dimension_table` of the test
    notes' mu and std, indexed by dim), ``variance_split`` (dim × {variance of the posterior
    mean, mean posterior variance}), ``correlation`` (dim × dim Pearson r),
    ``factor_association`` (tidy: dim, factor, pearson_r, spearman_rho, mutual_info),
    ``rank_correlation`` and ``mutual_info`` (dim × {pitch, velocity}: Spearman ρ, MI in nats),
    ``categorical_association`` (tidy: dim, factor, eta_squared, anova_F, anova_p),
    ``eta_squared`` (dim × {family, source}), ``family_means`` (family × {n, 0..D-1}),
    ``notes`` (the test notes: family, source, instrument, pitch, velocity), ``pca`` and
    ``tsne`` (x, y per test note, in the order of ``notes``).
    Findings: see :func:`dimension_findings`, :func:`correlation_findings`,
    :func:`attribute_findings`, :func:`group_findings`; plus run_id, n_test,
    n_test_instruments and pca_explained_variance (list of 2 ratios).
    Arrays: ``mu`` (n_test, D) posterior means of the test notes.
    dimension_order: the dimensions by decreasing KL to the prior.
    Chapter: 06_statistics.
    """

    stage: ClassVar[str] = "statistics"
    version: ClassVar[int] = 1
    params: ClassVar[tuple[str, ...]] = ()


def dim_list(dims) -> str:
    """Dimensions as quoted text: "z3, z7", or "none" for an empty list."""
    return ", ".join(f"z{int(d)}" for d in dims) or "none"


def variance_split(table: pd.DataFrame, std) -> pd.DataFrame:
    """Where each dimension's variance goes: between notes (of the posterior mean) or within a note.

    Args:
        table: :func:`~vaetone.analysis.statistics.dimension_table` (its ``variance``).
        std: (n, D) posterior standard deviations of the same notes.
    Returns:
        DataFrame indexed by dim: "variance of the posterior mean", "mean posterior variance"
        (prior units²; they sum to 1 where the aggregate posterior matches the prior).
    Chapter: 06_statistics.
    """
    within = (_as_2d(std, "std") ** 2).mean(0)
    return pd.DataFrame(
        {"variance of the posterior mean": table["variance"], "mean posterior variance": within}, index=table.index
    )


def dimension_findings(table: pd.DataFrame, split: pd.DataFrame, order) -> dict:
    """The per-dimension numbers the chapter quotes.

    Args:
        table: :func:`~vaetone.analysis.statistics.dimension_table` with ``kl``.
        split: :func:`variance_split` of the same notes.
        order: the dimensions by decreasing KL.
    Returns:
        {"n_active", "n_dims": int; "inactive": "z3, z9" or "none"; "active": list of bool per dim;
         "kl_total": nats per note; "kl_top": the three largest, "z5 (1.3 nats), ...";
         "n_rejected": dimensions whose KS test rejects N(0, 1) at 5 %, Bonferroni-corrected;
         "var_range", "total_var_range": "0.04 to 1.13" (variance of the posterior mean; and plus
         the mean posterior variance)}. Chapter: 06_statistics.
    """
    total = split.sum(axis=1)
    return {
        "n_active": int(table["active"].sum()),
        "n_dims": len(table),
        "inactive": dim_list(table.index[~table["active"].astype(bool)]),
        "active": [bool(a) for a in table["active"]],
        "kl_total": float(table["kl"].sum()),
        "kl_top": ", ".join(f"z{d} ({table.loc[d, 'kl']:.1f} nats)" for d in order[:3]),
        "n_rejected": int((table["ks_p"] < KS_LEVEL / len(table)).sum()),
        "var_range": f"{table['variance'].min():.2f} to {table['variance'].max():.2f}",
        "total_var_range": f"{total.min():.2f} to {total.max():.2f}",
    }


def correlation_findings(corr: pd.DataFrame) -> dict:
    """The strongest and the mean absolute correlation between two different dimensions.

    Args:
        corr: D × D correlation matrix (NaN for a constant dimension).
    Returns:
        {"max_corr": largest |r|, "max_corr_pair": "z8 and z15", "mean_corr": mean |r|};
        NaN and "none" when no pair has a defined correlation. Chapter: 06_statistics.
    """
    off = corr.where(~np.eye(len(corr), dtype=bool)).abs().to_numpy()
    if not np.isfinite(off).any():
        return {"max_corr": float("nan"), "max_corr_pair": "none", "mean_corr": float("nan")}
    i, j = np.unravel_index(np.nanargmax(off), off.shape)
    return {"max_corr": float(off[i, j]), "max_corr_pair": f"z{i} and z{j}", "mean_corr": float(np.nanmean(off))}


def strongest(values: pd.Series) -> int:
    """The dimension with the largest value (NaN ignored; the first on ties).

    Raises:
        VaetoneError: every value is NaN (e.g. every dimension is constant).
    Chapter: 06_statistics.
    """
    if not values.notna().any():
        raise VaetoneError(f"no dimension has a defined {values.name!r} value (all dimensions constant?)")
    return int(values.idxmax())


def attribute_findings(mi: pd.DataFrame, rho: pd.DataFrame) -> dict:
    """For pitch and velocity: the dimension with the most mutual information, that MI and its ρ.

    Args:
        mi, rho: dim × {pitch, velocity} mutual information (nats) and Spearman ρ.
    Returns:
        {"pitch_dim": "z10", "pitch_mi", "pitch_rho", "velocity_dim", "velocity_mi", "velocity_rho"}.
    Chapter: 06_statistics.
    """
    out = {}
    for name in ("pitch", "velocity"):
        d = strongest(mi[name])
        out |= {f"{name}_dim": f"z{d}", f"{name}_mi": float(mi.loc[d, name]), f"{name}_rho": float(rho.loc[d, name])}
    return out


def group_findings(eta: pd.DataFrame, means: pd.DataFrame) -> dict:
    """The dimension each categorical attribute explains most of, and the number of families.

    Args:
        eta: dim × {family, source} η²; means: the family means (one row per family).
    Returns:
        {"family_dim": "z10", "family_eta", "source_dim", "source_eta", "n_families"}. Chapter: 06_statistics.
    """
    fam, src = strongest(eta["family"]), strongest(eta["source"])
    return {
        "family_dim": f"z{fam}",
        "family_eta": float(eta.loc[fam, "family"]),
        "source_dim": f"z{src}",
        "source_eta": float(eta.loc[src, "source"]),
        "n_families": int(len(means)),
    }


def note_table(meta: pd.DataFrame) -> pd.DataFrame:
    """The metadata of the notes the stage reads, renamed (family, source, instrument, pitch, velocity).

    Raises:
        VaetoneError: a column of :data:`NOTE_COLUMNS` is missing.
    Chapter: 06_statistics.
    """
    missing = [c for c in NOTE_COLUMNS if c not in meta.columns]
    if missing:
        raise VaetoneError(
            f"the notes' metadata lacks {missing} (it has {list(meta.columns)}); "
            "pass the features' meta table (vaetone.spectral.features.Features.meta)"
        )
    return meta[list(NOTE_COLUMNS)].rename(columns=NOTE_COLUMNS)


def compute_statistics(mu, std, meta: pd.DataFrame, seed: int = 0, run_id: str = "") -> StatisticsResult:
    """Every statistic of chapter 06's first part from posterior means and standard deviations.

    Args:
        mu, std: (n, D) posterior means and standard deviations of the notes (e.g. the test split).
        meta: (n rows) the notes' metadata with the columns of :data:`NOTE_COLUMNS`.
        seed: seed of the k-NN mutual information and of the PCA / t-SNE maps.
        run_id: the name of the run folder, quoted as ``run_id``.
    Returns:
        A :class:`StatisticsResult`. Chapter: 06_statistics.
    """
    mu, notes = _as_2d(mu), note_table(meta)
    if len(notes) != len(mu):
        raise VaetoneError(f"{len(notes)} rows of metadata for {len(mu)} latent vectors; pass the same notes")
    table = dimension_table(mu, std)
    order = [int(d) for d in kl_order(mu, std)]
    split = variance_split(table, std)
    corr = correlation_matrix(mu)
    assoc = factor_association(mu, notes[["pitch", "velocity"]], seed=seed)
    rho = assoc.pivot(index="dim", columns="factor", values="spearman_rho").rename_axis(columns="attribute")
    mi = assoc.pivot(index="dim", columns="factor", values="mutual_info").rename_axis(columns="attribute")
    cats = categorical_association(mu, notes[["family", "source"]])
    eta = cats.pivot(index="dim", columns="factor", values="eta_squared").rename_axis(columns="attribute")
    means = group_means(mu, notes["family"].to_numpy())
    pca, tsne = embed_2d(mu, "pca", seed=seed), embed_2d(mu, "tsne", seed=seed)
    findings = {
        "run_id": run_id,
        "n_test": len(notes),
        "n_test_instruments": int(notes["instrument"].nunique()),
        **dimension_findings(table, split, order),
        **correlation_findings(corr),
        **attribute_findings(mi, rho),
        **group_findings(eta, means),
        "pca_explained_variance": [float(v) for v in pca.attrs.pop("explained_variance_ratio")],
    }
    tables = {
        "dimensions": table,
        "variance_split": split,
        "correlation": corr,
        "factor_association": assoc,
        "rank_correlation": rho,
        "mutual_info": mi,
        "categorical_association": cats,
        "eta_squared": eta,
        "family_means": means,
        "notes": notes,
        "pca": pca.set_axis(notes.index),
        "tsne": tsne.set_axis(notes.index),
    }
    return StatisticsResult(tables, findings, {"mu": mu.astype(np.float32)}, tuple(order))


def load_test_latents(cfg: Config):
    """The trained run of ``cfg`` and the posterior of its test notes (trained or encoded if not cached).

    Returns:
        (``vaetone.model.runs.Run``, ``vaetone.model.runs.Latents`` of the test split). Chapter: 06_statistics.
    """
    from vaetone.model import runs
    from vaetone.spectral.features import load_features

    feats = load_features(cfg)
    run = runs.trained_model(cfg, feats)
    return run, runs.latents(cfg, run, feats).split("test")


def result(cfg: Config) -> StatisticsResult:
    """The descriptive statistics of the test notes' posterior under the run of ``cfg``, computed once.

    Args:
        cfg: the configuration; its data, feature, model and training parameters pick the run.
    Returns:
        A :class:`StatisticsResult`, cached in ``<run folder>/results/statistics-<key>/``.
    Chapter: 06_statistics.
    """

    def compute() -> StatisticsResult:
        run, test = load_test_latents(cfg)
        return compute_statistics(test.mu, test.std, test.meta, seed=cfg.seed, run_id=run.path.name)

    return cached(StatisticsResult, cfg, compute, folder=store.run_dir(cfg), upstream=store.key("train", cfg))
