"""The across-seeds stage: one cached result per analysis (sensitivity, ablation, statistics).

The chapters 04_sensitivity, 05_ablation and 06_statistics each end with the same question: does the
analysis of the reference model (seed ``cfg.seed``) hold for models trained with other seeds?
:func:`result` answers it for one analysis. The reference seed's table comes from that analysis's
own stage result (so it is computed once, by the chapter's stage); every other seed's table is
computed by the per-run analyses of :mod:`vaetone.analysis.seeds`, its dimensions are matched to the
reference's (:func:`vaetone.analysis.seeds.match_to_reference`) and the tables are aggregated on the
reference's dimensions. :func:`compute` does the same from given posterior means and tables, without
loading anything (the known-answer tests call it).

Chapters: 04_sensitivity, 05_ablation, 06_statistics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from vaetone import results, store
from vaetone.analysis import seeds as seeds_mod
from vaetone.analysis.seeds_findings import EXTRA_FINDINGS, K_TOP, match_findings, ranking_findings
from vaetone.analysis.seeds_labels import (
    LABEL,
    ReferenceReading,
    ablation_named_per_run,
    held_findings,
    label_findings,
    label_table,
    reference_top,
    top_names,
)
from vaetone.config import Config
from vaetone.errors import ConfigError, VaetoneError
from vaetone.results import StageResult

ANALYSES = ("sensitivity", "ablation", "statistics")
"""The analyses that are repeated over seeds, one per chapter (04, 05, 06)."""


@dataclass(frozen=True)
class Reading:
    """How one analysis's per-dimension table is read across seeds.

    Attributes:
        column: the score each chapter plots (mean and std over seeds) and ranks.
        largest: True when a larger ``column`` is a more important dimension (an effect), False
            when a smaller one is (a rank).
        signed: columns whose sign flips with a matched dimension.
        ranked: whether the stage reports top counts and rank agreement of ``column``.
        tiebreak: the column that orders ties of ``column`` as the reference stage does (larger first).
    """

    column: str
    largest: bool
    signed: tuple[str, ...] = ()
    ranked: bool = True
    tiebreak: str | None = None


READINGS = {
    "sensitivity": Reading("mean_rank", largest=False, signed=("label_change",), tiebreak="oat_logmel"),
    "ablation": Reading("increase_mean", largest=True),
    "statistics": Reading("kl", largest=True, signed=seeds_mod.SIGNED_STATISTICS, ranked=False),
}
"""The reading of each analysis in :data:`ANALYSES`."""


@dataclass(frozen=True)
class SeedsResult(StageResult):
    """One analysis repeated over the ``n_seeds`` training seeds, read on the reference seed's dimensions.

    Args (the fields of :class:`vaetone.results.StageResult`):
        tables: "mean_std" (index: reference dim; columns mean, std over seeds of the plotted
            column: sensitivity ``mean_rank``, ablation ``increase_mean`` (dB²), statistics ``kl``
            (nats per note)); "summary" (:attr:`AcrossSeeds.summary`: columns (column, "mean" | "std"
            | "min" | "max")); "matches" (:meth:`AcrossSeeds.match_table`: columns (seed, "dim" |
            "sign" | "abs_r")); "per_seed" (the plotted column, reference dims x seeds);
            "seed_tables" (every seed's own table, rows (seed, dim) in that seed's dimensions);
            sensitivity and ablation: "labels" (:func:`vaetone.analysis.seeds_labels.label_table`: each
            seed's name of the matched dimension and the name that holds across seeds, else "mixed").
        findings: every seed-related number the chapter quotes; all analyses: ``n_seeds_used``,
            ``seeds`` (list of ints, reference first), ``match_r_median`` (median |r| of the matched
            pairs, 1.0 with one seed); sensitivity and ablation: ``k_top``, ``top_stable`` ("z5 (2/2),
            z6 (1/2)"), ``seed_rho`` (mean Spearman ρ as "0.35" or "n/a (one seed)"),
            ``seed_rank_agreement`` ({str(seed): ρ}), ``top_counts`` ({str(dim): count}); ablation:
            ``free_seeds`` ("16.0 ± 0.0"), ``free_per_seed``; statistics: ``active_seeds`` ("16, 16"),
            ``active_mean_std``, ``kl_seeds``, ``active_per_seed``, ``kl_total_per_seed`` (nats);
            sensitivity and ablation: ``seed_labels``, ``labels_held``, ``n_labels_held``,
            ``n_labels_reference``, ``n_labels_lost`` (:func:`vaetone.analysis.seeds_labels.label_findings`),
            ``top_dims_across`` and the reference stage's phrases restated with the names that hold
            (:func:`vaetone.analysis.seeds_labels.held_findings`): sensitivity ``label_moves_held``,
            ``strip_labels_held``; ablation ``top_desc_held``.
        dimension_order: reference dimensions, most important first by the mean over seeds.
    Returns:
        (a result) built by :func:`compute` and cached by :func:`result`.
    Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """

    analysis: ClassVar[str] = ""


class SensitivitySeedsResult(SeedsResult):
    """The sensitivity ranking of chapter 04 over seeds (see :class:`SeedsResult`). Chapter: 04_sensitivity."""

    stage = "seeds-sensitivity"
    version = 4
    analysis = "sensitivity"
    params = ("n_seeds", "n_anchors", "sweep_sigma", "sweep_steps", "sobol_n")


class AblationSeedsResult(SeedsResult):
    """The zero-baseline ablation of chapter 05 over seeds (see :class:`SeedsResult`). Chapter: 05_ablation."""

    stage = "seeds-ablation"
    version = 2
    analysis = "ablation"
    params = ("n_seeds",)


class StatisticsSeedsResult(SeedsResult):
    """The per-dimension statistics of chapter 06 over seeds (see :class:`SeedsResult`). Chapter: 06_statistics."""

    stage = "seeds-statistics"
    analysis = "statistics"
    params = ("n_seeds",)


RESULT_CLASSES: dict[str, type[SeedsResult]] = {
    c.analysis: c for c in (SensitivitySeedsResult, AblationSeedsResult, StatisticsSeedsResult)
}


def check_analysis(analysis: str) -> str:
    """``analysis`` if it is one of :data:`ANALYSES`; else a ConfigError naming the choices."""
    if analysis not in ANALYSES:
        choices = ", ".join(repr(a) for a in ANALYSES)
        raise ConfigError(
            f"unknown across-seeds analysis {analysis!r} in vaetone.analysis.seeds.result; choose one of {choices}"
        )
    return analysis


# --------------------------------------------------------------------------- the stage


def result(cfg: Config, analysis: str) -> SeedsResult:
    """The across-seeds result of one analysis: computed once per run and parameters, then loaded.

    Args:
        cfg: the configuration; ``cfg.seed`` is the reference seed, ``cfg.n_seeds`` seeds
            ``cfg.seed, cfg.seed + 1, ...`` are used (runs not yet trained are trained).
        analysis: "sensitivity", "ablation" or "statistics".
    Returns:
        the :class:`SeedsResult` subclass of ``analysis``, cached in the reference run's folder
        under ``results/seeds-<analysis>-<key>/``; the key holds the reference run, the reference
        table and reading (so a changed reference stage recomputes) and the class's ``params``.
    Raises:
        ConfigError: ``analysis`` is not one of :data:`ANALYSES`.
    Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    cls = RESULT_CLASSES[check_analysis(analysis)]
    reference = reference_table(cfg, analysis)
    top_reading = READS[analysis](cfg) if analysis in READS else None
    upstream = f"{store.key('train', cfg)}-{table_digest(reference)}"
    upstream += f"-{top_reading.digest()}" if top_reading is not None else ""
    return results.cached(
        cls,
        cfg,
        lambda: compute_from_runs(cfg, analysis, reference, top_reading),
        folder=store.run_dir(cfg),
        upstream=upstream,
    )


def _sensitivity_reference(cfg: Config) -> pd.DataFrame:
    """The reference seed's ranking (chapter 04's sensitivity stage), indexed by dim."""
    from vaetone.analysis import sensitivity

    return sensitivity.result(cfg).table("ranking").sort_index()


def _ablation_reference(cfg: Config) -> pd.DataFrame:
    """The reference seed's zero-baseline ablation effects (chapter 05's ablation stage), indexed by dim."""
    from vaetone.analysis import ablation

    cols = ["base_mean", "increase_mean", "increase_sem", "relative_increase", LABEL]
    return ablation.result(cfg).table("zero_overall")[cols].sort_index()


def _statistics_reference(cfg: Config) -> pd.DataFrame:
    """The reference seed's dimension table (chapter 06's statistics stage), ``active`` as 0/1."""
    from vaetone.analysis import statistics

    table = statistics.result(cfg).table("dimensions")
    return table.assign(active=table["active"].astype(int))


REFERENCES: dict[str, Callable[[Config], pd.DataFrame]] = {
    "sensitivity": _sensitivity_reference,
    "ablation": _ablation_reference,
    "statistics": _statistics_reference,
}
"""Where each analysis's reference-seed table comes from: that chapter's own stage result."""


def _sensitivity_reading(cfg: Config) -> ReferenceReading:
    """The sensitivity stage's top dimensions, strip values and intervals, to restate with held names."""
    from vaetone.analysis import sensitivity

    found = sensitivity.result(cfg)
    f = found.findings
    return ReferenceReading(tuple(f["top_dimensions"]), tuple(f["strip_values"]), found.table("intervals"))


def _ablation_reading(cfg: Config) -> ReferenceReading:
    """The ablation stage's costliest dimensions (chosen on the validation notes), to restate with held names."""
    from vaetone.analysis import ablation
    from vaetone.analysis.ablation.steps import N_QUOTED

    return ReferenceReading(tuple(int(d) for d in ablation.result(cfg).dimension_order[:N_QUOTED]))


READS: dict[str, Callable[[Config], ReferenceReading]] = {
    "sensitivity": _sensitivity_reading,
    "ablation": _ablation_reading,
}
"""Where the reference stage's reading of its top dimensions comes from (the analyses that name dimensions)."""


def reference_table(cfg: Config, analysis: str) -> pd.DataFrame:
    """The reference seed's per-dimension table of ``analysis``, from that analysis's stage result.

    Args:
        cfg: the configuration (its seed is the reference).
        analysis: one of :data:`ANALYSES`.
    Returns:
        DataFrame indexed by dim 0..D-1 with at least the column of :data:`READINGS`.
    Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    table = REFERENCES[check_analysis(analysis)](cfg)
    column = READINGS[analysis].column
    if column not in table.columns:
        raise VaetoneError(
            f"the {analysis} stage's reference table has no column {column!r} (it has {list(table.columns)}); "
            f"the across-seeds stage reads that column, so the {analysis} stage must provide it"
        )
    return table


def table_digest(table: pd.DataFrame) -> str:
    """A 12-hex-digit hash of a table's content (index, columns, values, dtypes)."""
    return hashlib.sha256(results.table_to_json(table).encode()).hexdigest()[:12]


def per_run(cfg: Config, feats, analysis: str) -> seeds_mod.PerRun:
    """The per-run analysis that gives every non-reference seed's table, as the reference stage computes it.

    Args:
        cfg: the configuration (its seed fixes the sensitivity anchors and Sobol sample of every seed).
        feats: the Features; analysis: one of :data:`ANALYSES`.
    Returns:
        ``fn(seed_cfg, run, latents) -> DataFrame`` indexed by dim.
    Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    if check_analysis(analysis) == "sensitivity":
        return seeds_mod.sensitivity_per_run(feats, cfg.seed)
    if analysis == "ablation":
        return ablation_named_per_run(feats, "zero", cfg.seed)
    return seeds_mod.statistics_per_run()


def compute_from_runs(
    cfg: Config, analysis: str, reference: pd.DataFrame, top_reading: ReferenceReading | None = None
) -> SeedsResult:
    """Load (or train) every seed's run and latents, run the per-run analysis, and summarise.

    Args:
        cfg: the configuration; analysis: one of :data:`ANALYSES`.
        reference: the reference seed's table (:func:`reference_table`).
        top_reading: the reference stage's reading of its top dimensions (:data:`READS`), or None.
    Returns:
        the :class:`SeedsResult` of ``analysis`` (not yet cached). Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    from vaetone.spectral.features import load_features

    feats = load_features(cfg)
    fn, signed = per_run(cfg, feats, analysis), READINGS[analysis].signed
    return summarise(analysis, seeds_mod.across_seeds(cfg, feats, fn, signed=signed, reference=reference), top_reading)


# --------------------------------------------------------------------------- pure computation


def compute(
    analysis: str,
    mus: Sequence[np.ndarray],
    tables: Sequence[pd.DataFrame],
    seeds: Sequence[int],
    top_reading: ReferenceReading | None = None,
) -> SeedsResult:
    """The across-seeds result from every seed's posterior means and per-dimension table (nothing loaded).

    Args:
        analysis: one of :data:`ANALYSES` (decides the column read, its direction and the findings).
        mus: one (n, D) array of posterior means per seed, the same notes in the same order;
            the first is the reference seed's.
        tables: one DataFrame per seed indexed by that seed's own dims 0..D-1 (the per-run analysis).
        seeds: the training seeds, reference first.
        top_reading: the reference stage's reading of its top dimensions, restated with the names that
            hold (:func:`vaetone.analysis.seeds_labels.held_findings`), or None.
    Returns:
        the :class:`SeedsResult` subclass of ``analysis``. Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    check_analysis(analysis)
    if not (len(mus) == len(tables) == len(seeds)) or not seeds:
        raise VaetoneError(
            f"compute needs one latent array and one table per seed, got {len(mus)} arrays, "
            f"{len(tables)} tables and {len(seeds)} seeds"
        )
    matches = seeds_mod.match_to_reference([np.asarray(mu) for mu in mus])
    n_dims = len(matches[0][0])
    for seed, table in zip(seeds, tables):
        if sorted(table.index) != list(range(n_dims)):
            raise VaetoneError(f"the table of seed {seed} must be indexed by dim 0..{n_dims - 1}")
    tables = [t.sort_index() for t in tables]
    signed = READINGS[analysis].signed
    summary = seeds_mod.aggregate_seeds(tables, matches, signed=list(signed))
    across = seeds_mod.AcrossSeeds([int(s) for s in seeds], tables, matches, summary, signed)
    return summarise(analysis, across, top_reading)


def summarise(analysis: str, across: seeds_mod.AcrossSeeds, top_reading: ReferenceReading | None = None) -> SeedsResult:
    """The result of ``analysis`` from its :class:`~vaetone.analysis.seeds.AcrossSeeds`: tables, findings, order.

    Args:
        analysis: one of :data:`ANALYSES`.
        across: from :func:`vaetone.analysis.seeds.across_seeds` (or built by :func:`compute`).
        top_reading: the reference stage's reading of its top dimensions (named analyses), or None.
    Returns:
        the :class:`SeedsResult` subclass of ``analysis``. Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    reading = READINGS[check_analysis(analysis)]
    check_columns(across)
    findings = match_findings(across)
    if reading.ranked:
        findings.update(ranking_findings(across, reading))
    findings.update(EXTRA_FINDINGS.get(analysis, lambda _: {})(across))
    tables = result_tables(across, reading)
    if all(LABEL in t.columns for t in across.tables):  # names of the dimensions: do they hold across seeds?
        tables["labels"] = label_table(across)
        findings.update(label_findings(tables["labels"]))
        if reading.ranked:
            top = reference_top(across.tables[0], reading.column, reading.largest, reading.tiebreak, K_TOP)
            findings["top_dims_across"] = top_names(top, tables["labels"])
        if top_reading is not None:
            findings.update(held_findings(tables["labels"][LABEL], top_reading, analysis))
    mean = across.mean_std(reading.column)["mean"]
    order = mean.sort_values(ascending=not reading.largest, kind="stable").index
    return RESULT_CLASSES[analysis](tables=tables, findings=findings, dimension_order=tuple(int(d) for d in order))


def check_columns(across: seeds_mod.AcrossSeeds) -> None:
    """Raise a VaetoneError unless every seed's table has the same numeric columns as the reference's."""
    columns = [set(t.select_dtypes("number").columns) for t in across.tables]
    for seed, cols in zip(across.seeds[1:], columns[1:]):
        if cols != columns[0]:
            raise VaetoneError(
                f"the table of seed {seed} has numeric columns {sorted(cols)}, the reference seed's "
                f"{sorted(columns[0])}: the per-run analysis of vaetone.analysis.seeds must compute what the "
                "reference stage computes"
            )


def result_tables(across: seeds_mod.AcrossSeeds, reading: Reading) -> dict[str, pd.DataFrame]:
    """The stage's tables: mean_std, summary, matches, per_seed and seed_tables (see :class:`SeedsResult`)."""
    seed_tables = pd.concat(across.tables, keys=across.seeds, names=["seed", "dim"])
    return {
        "mean_std": across.mean_std(reading.column),
        "summary": across.summary,
        "matches": across.match_table(),
        "per_seed": across.aligned(reading.column),
        "seed_tables": seed_tables,
    }
