"""The statistics stage: what the posterior means of the test notes look like, each number chapter 06 quotes.

:func:`result` encodes the test notes with the trained run of a configuration and describes
their posterior means with the functions of :mod:`vaetone.analysis.statistics`: per dimension
(against the N(0, 1) prior), between dimensions, and against pitch, velocity, family and
source; plus two 2-D maps. Its tests take the instrument as the unit
(:mod:`vaetone.analysis.nesting`) and its headline numbers carry instrument-level bootstrap
intervals (:mod:`vaetone.analysis.statistics_intervals`). :func:`compute_statistics` does the
same from arrays, with no run. It is re-exported as ``vaetone.analysis.statistics.result``.

Chapter: 06_statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from vaetone import store
from vaetone.analysis.nesting import count_phrase, nested_normality, simulations, undefined_anova
from vaetone.analysis.statistics import (
    _as_2d,
    categorical_association,
    correlation_matrix,
    dimension_table,
    embed_2d,
    eta_squared,
    factor_association,
    group_means,
    kl_order,
)
from vaetone.analysis.statistics_intervals import headline_intervals
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

GROUP_PLURALS = {"family": "families", "source": "sources"}
"""The instrument-level attributes tested on instrument means, and their plurals in phrases."""


@dataclass(frozen=True)
class StatisticsResult(StageResult):
    """Descriptive statistics of the posterior means of the test notes, tested with the instrument as unit.

    Tables: ``dimensions`` (:func:`~vaetone.analysis.statistics.dimension_table` of the test
    notes' mu and std, indexed by dim), ``normality`` (dim: ks_stat, icc, ks_p with the nested
    null, ks_p_notes; :func:`~vaetone.analysis.nesting.nested_normality`), ``variance_split``
    (dim × {variance of the posterior mean, mean posterior variance}), ``correlation`` (dim ×
    dim Pearson r), ``factor_association`` (tidy: dim, factor, pearson_r, spearman_rho,
    mutual_info), ``rank_correlation`` and ``mutual_info`` (dim × {pitch, velocity}: Spearman
    ρ, MI in nats), ``categorical_association`` (tidy: dim, factor, eta_squared, anova_F,
    anova_p on instrument means, anova_p_notes, n_instruments, n_groups), ``group_tests``
    (dim × {family, source}_{F, p, p_notes}), ``eta_squared`` (dim × {family, source,
    instrument}), ``family_means`` (family × {n, 0..D-1}), ``intervals`` (see
    :func:`~vaetone.analysis.statistics_intervals.headline_intervals`), ``notes`` (the test
    notes: family, source, instrument, pitch, velocity), ``pca`` and ``tsne`` (x, y per test
    note, in the order of ``notes``).
    Findings: see :func:`dimension_findings`, :func:`correlation_findings`,
    :func:`attribute_findings`, :func:`group_findings`, :func:`nested_test_findings`, ``answer``
    (:func:`statistics_answer`) and the intervals' ``<key>_ci``, ``<key>_low``, ``<key>_high``; plus run_id,
    n_test, n_test_instruments,
    n_boot and pca_explained_variance (list of 2 ratios).
    Arrays: ``mu`` (n_test, D) posterior means of the test notes.
    dimension_order: the dimensions by decreasing KL to the prior.
    Chapter: 06_statistics.
    """

    stage: ClassVar[str] = "statistics"
    version: ClassVar[int] = 3
    params: ClassVar[tuple[str, ...]] = ("bootstrap_n",)


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
         "kl_total": nats per note; "kl_top": the three largest, "z5 (1.3 nats), ..."; "kl_top_dim": "z5";
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
        "kl_top_dim": f"z{order[0]}",
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
    """The dimension each categorical attribute explains most of, instrument identity there, and the families.

    Args:
        eta: dim × {family, source, instrument} η²; means: the family means (one row per family).
    Returns:
        {"family_dim": "z10", "family_eta", "source_dim", "source_eta", "instrument_eta" (η² of
        instrument identity on the family's dimension: the family's share is at most this),
        "n_families"}. Chapter: 06_statistics.
    """
    fam, src = strongest(eta["family"]), strongest(eta["source"])
    return {
        "family_dim": f"z{fam}",
        "family_eta": float(eta.loc[fam, "family"]),
        "source_dim": f"z{src}",
        "source_eta": float(eta.loc[src, "source"]),
        "instrument_eta": float(eta.loc[fam, "instrument"]),
        "n_families": int(len(means)),
    }


def group_tests(cats: pd.DataFrame) -> pd.DataFrame:
    """The ANOVAs of :func:`~vaetone.analysis.statistics.categorical_association` side by side.

    Returns:
        DataFrame indexed by dim: {factor}_F, {factor}_p (on instrument means), {factor}_p_notes
        (notes counted as independent) for each factor. Chapter: 06_statistics.
    """
    cols = {"anova_F": "F", "anova_p": "p", "anova_p_notes": "p_notes"}
    parts = [
        sub.set_index("dim")[list(cols)].rename(columns=lambda c, f=f: f"{f}_{cols[c]}")
        for f, sub in cats.groupby("factor", sort=False)
    ]
    return pd.concat(parts, axis=1)


def nested_test_findings(
    normal: pd.DataFrame, cats: pd.DataFrame, n_notes: int, n_instruments: int, n_sim: int
) -> dict:
    """The counts and phrases of the nesting-aware tests (Bonferroni-corrected 5 % over the dimensions).

    Args:
        normal: :func:`~vaetone.analysis.nesting.nested_normality`; cats:
        :func:`~vaetone.analysis.statistics.categorical_association` (family and source);
        n_notes, n_instruments: the test notes and their instruments; n_sim: simulations of the KS null.
    Returns:
        {"n_rejected", "n_rejected_notes", "normality_test": "13 of 16 dimensions differ from
        N(0, 1) (KS against nested N(0, 1) notes of 60 instruments, ...); counting the 480 notes as
        independent, 15 would"; per attribute a in {family, source}: "n_{a}_differ" (NaN when
        undefined), "n_{a}_differ_notes", "{a}_test" (the phrase, or "undefined: ...; counting ...")}.
    Chapter: 06_statistics.
    """
    unit = f"Kolmogorov–Smirnov against nested N(0, 1) notes of {n_instruments} instruments, {n_sim} simulations"
    counts, phrase = count_phrase(normal["ks_p"], normal["ks_p_notes"], "differ from N(0, 1)", n_notes, unit)
    if np.isnan(counts["n"]):
        phrase = f"undefined: the notes come from {n_instruments} instrument; {phrase}"
    out = {"n_rejected": counts["n"], "n_rejected_notes": counts["n_notes"], "normality_test": phrase}
    for name, plural in GROUP_PLURALS.items():
        sub = cats[cats["factor"] == name]
        k, g = int(sub["n_instruments"].iloc[0]), int(sub["n_groups"].iloc[0])
        unit = f"one-way ANOVA on the means of {k} instruments in {g} {plural}"
        counts, phrase = count_phrase(sub["anova_p"], sub["anova_p_notes"], f"differ between {plural}", n_notes, unit)
        if np.isnan(counts["n"]):
            phrase = f"{undefined_anova(k, g, plural)}; {phrase}"
        out |= {f"n_{name}_differ": counts["n"], f"n_{name}_differ_notes": counts["n_notes"], f"{name}_test": phrase}
    return out


def statistics_answer(f: dict) -> str:
    """The answer of the statistics chapter in one sentence, built from the findings (negative results stated).

    Args:
        f: the findings of :func:`dimension_findings`, :func:`attribute_findings`,
            :func:`group_findings` and :func:`nested_test_findings` (n_rejected NaN: untestable).
    Returns:
        e.g. "3 of the 16 latent units are active on the test notes, with 41.2 nats per note of KL to
        the prior (most in z5); 2 of the 16 dimensions differ from N(0, 1) with the instrument as
        unit; pitch is read most from z5 (MI 0.91 nats), and the instrument family explains at most
        0.35 of a dimension's variance." Chapter: 06_statistics.
    """
    n, d = f["n_active"], f["n_dims"]
    rejected = f["n_rejected"]
    if isinstance(rejected, float) and np.isnan(rejected):
        normal = "whether they differ from N(0, 1) cannot be tested with the instrument as unit"
    else:
        normal = f"{int(rejected)} of the {d} dimensions differ from N(0, 1) with the instrument as unit"
    return (
        f"{n} of the {d} latent units {'is' if n == 1 else 'are'} active on the test notes, with "
        f"{f['kl_total']:.1f} nats per note of KL to the prior (most in {f['kl_top_dim']}); {normal}; pitch is "
        f"read most from {f['pitch_dim']} (MI {f['pitch_mi']:.2f} nats), and the instrument family explains at "
        f"most {f['family_eta']:.2f} of a dimension's variance."
    )


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


def compute_statistics(
    mu, std, meta: pd.DataFrame, seed: int = 0, run_id: str = "", n_boot: int = 1000
) -> StatisticsResult:
    """Every statistic of chapter 06's first part from posterior means and standard deviations.

    Args:
        mu, std: (n, D) posterior means and standard deviations of the notes (e.g. the test split).
        meta: (n rows) the notes' metadata with the columns of :data:`NOTE_COLUMNS`.
        seed: seed of the k-NN mutual information, the PCA / t-SNE maps, the KS null and the bootstrap.
        run_id: the name of the run folder, quoted as ``run_id``.
        n_boot: bootstrap resamples of the intervals (``bootstrap_n``); the nested KS null is simulated
            :func:`~vaetone.analysis.nesting.simulations` times (at least ``n_boot``).
    Returns:
        A :class:`StatisticsResult`. Chapter: 06_statistics.
    """
    mu, notes = _as_2d(mu), note_table(meta)
    if len(notes) != len(mu):
        raise VaetoneError(f"{len(notes)} rows of metadata for {len(mu)} latent vectors; pass the same notes")
    groups = notes["instrument"].to_numpy()
    n_sim = simulations(n_boot, mu.shape[1])
    table, normal = dimension_table(mu, std), nested_normality(mu, groups, n_sim, seed)
    order = [int(d) for d in kl_order(mu, std)]
    split = variance_split(table, std)
    corr = correlation_matrix(mu)
    assoc = factor_association(mu, notes[["pitch", "velocity"]], seed=seed)
    rho = assoc.pivot(index="dim", columns="factor", values="spearman_rho").rename_axis(columns="attribute")
    mi = assoc.pivot(index="dim", columns="factor", values="mutual_info").rename_axis(columns="attribute")
    cats = categorical_association(mu, notes[["family", "source"]], groups)
    eta = cats.pivot(index="dim", columns="factor", values="eta_squared").rename_axis(columns="attribute")
    eta["instrument"] = eta_squared(mu, groups)
    means = group_means(mu, notes["family"].to_numpy())
    pca, tsne = embed_2d(mu, "pca", seed=seed), embed_2d(mu, "tsne", seed=seed)
    n_inst = int(notes["instrument"].nunique())
    findings = {
        "run_id": run_id,
        "n_test": len(notes),
        "n_test_instruments": n_inst,
        "n_boot": int(n_boot),
        **dimension_findings(table, split, order),
        **correlation_findings(corr),
        **attribute_findings(mi, rho),
        **group_findings(eta, means),
        **nested_test_findings(normal, cats, len(notes), n_inst, n_sim),
        "pca_explained_variance": [float(v) for v in pca.attrs.pop("explained_variance_ratio")],
    }
    findings["answer"] = statistics_answer(findings)
    spans, quoted = headline_intervals(mu, std, notes, findings, n_boot, seed)
    tables = {
        "dimensions": table,
        "normality": normal,
        "variance_split": split,
        "correlation": corr,
        "factor_association": assoc,
        "rank_correlation": rho,
        "mutual_info": mi,
        "categorical_association": cats,
        "group_tests": group_tests(cats),
        "eta_squared": eta,
        "family_means": means,
        "intervals": spans,
        "notes": notes,
        "pca": pca.set_axis(notes.index),
        "tsne": tsne.set_axis(notes.index),
    }
    return StatisticsResult(tables, findings | quoted, {"mu": mu.astype(np.float32)}, tuple(order))


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
        cfg: the configuration; its data, feature, model and training parameters pick the run;
            ``bootstrap_n`` sizes the intervals and the nested KS null.
    Returns:
        A :class:`StatisticsResult`, cached in ``<run folder>/results/statistics-<key>/``.
    Chapter: 06_statistics.
    """

    def compute() -> StatisticsResult:
        run, test = load_test_latents(cfg)
        return compute_statistics(
            test.mu, test.std, test.meta, seed=cfg.seed, run_id=run.path.name, n_boot=cfg.bootstrap_n
        )

    return cached(StatisticsResult, cfg, compute, folder=store.run_dir(cfg), upstream=store.key("train", cfg))
