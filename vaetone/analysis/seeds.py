"""The same analysis over several training seeds, with latent dimensions matched across seeds.

Latent dimensions carry no fixed meaning: a model trained with another seed may put the
same factor in another dimension, with the opposite sign. The across-seed views of chapters
04-06 therefore match every seed's dimensions to those of the *reference* seed (the first,
``cfg.seed``) before aggregating:

1. every seed's model encodes the same notes (the test split by default); the posterior
   means of seed ``s`` are matched to the reference's with
   :func:`vaetone.analysis.seeds.match_dimensions`: the one-to-one assignment of dimensions
   (Hungarian algorithm) that maximises the summed absolute Pearson correlation of the
   posterior means, and for each pair the sign that makes the correlation positive;
2. a per-run analysis gives a per-dimension table in each seed's own dimensions; the table
   of seed ``s`` is reordered onto the reference's dimensions (and signed columns flipped)
   and :func:`vaetone.analysis.seeds.aggregate_seeds` gives the mean, standard deviation, min
   and max over seeds for each reference dimension.

A match is only as good as its correlation (``AcrossSeeds.match_table``): an active
dimension usually has a clear counterpart (|r| near 1), while inactive, collapsed
dimensions are noise and get an arbitrary partner (|r| near 0); their aggregated values
are those of "some inactive dimension" of each seed, which is still what matters for the
spread of a headline such as the number of active units.

Chapters: 04_sensitivity, 05_ablation, 06_statistics.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment

from vaetone.analysis import ablation, decoding, sensitivity, statistics
from vaetone.analysis.statistics import _as_2d
from vaetone.config import Config
from vaetone.errors import VaetoneError
from vaetone.model import runs as model_runs

log = logging.getLogger(__name__)

PerRun = Callable[[Config, "model_runs.Run", "model_runs.Latents"], pd.DataFrame]
"""A per-run analysis: ``fn(seed_cfg, run, split_latents) -> DataFrame indexed by dim 0..D-1``."""


def seed_configs(cfg: Config) -> list[Config]:
    """The configurations of the ``cfg.n_seeds`` training seeds ``cfg.seed, cfg.seed + 1, ...``.

    Args:
        cfg: the chapter's configuration (its ``seed`` is the reference seed).
    Returns:
        ``n_seeds`` Configs equal to ``cfg`` but for ``seed``; the first is ``cfg`` itself.
    Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    return [dataclasses.replace(cfg, seed=cfg.seed + s) for s in range(cfg.n_seeds)]


def seed_runs(cfg: Config, feats=None, progress: bool = False, reference_run=None) -> list:
    """The trained runs of every seed (loaded from ``runs/`` or trained, see :func:`vaetone.model.runs.trained_model`).

    Args:
        cfg: the configuration; ``cfg.n_seeds`` runs are returned, reference seed first.
        feats: the Features (default: computed or loaded for ``cfg``).
        progress: show the training progress bar of runs that still need training.
        reference_run: the reference seed's run if the chapter has already loaded it (it is then
            not loaded again).
    Returns:
        list of ``vaetone.model.runs.Run``. Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    return [
        reference_run if s == 0 and reference_run is not None else model_runs.trained_model(c, feats, progress=progress)
        for s, c in enumerate(seed_configs(cfg))
    ]


def seed_latents(
    cfg: Config, feats=None, runs: Sequence | None = None, split: str = "test", reference_latents=None
) -> list:
    """Posterior means and standard deviations of one split's notes under every seed's model.

    Args:
        cfg, feats: as in :func:`seed_runs`.
        runs: the runs of :func:`seed_runs` (default: loaded).
        split: "train", "valid" or "test".
        reference_latents: the reference seed's ``Latents`` of the ``split`` notes if the chapter
            has already loaded them (they are then not loaded again).
    Returns:
        list of ``vaetone.model.runs.Latents`` (each ``mu``, ``std`` (n, D), same notes in the same order).
    Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    runs = seed_runs(cfg, feats) if runs is None else runs
    return [
        reference_latents if s == 0 and reference_latents is not None else model_runs.latents(c, r, feats).split(split)
        for s, (c, r) in enumerate(zip(seed_configs(cfg), runs))
    ]


def match_to_reference(mus: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Match the dimensions of every seed's posterior means to the first seed's.

    Args:
        mus: one (n, D) array per seed, the same notes in the same order; the first is the reference.
    Returns:
        one ``(perm, signs, corr)`` per seed (see :func:`vaetone.analysis.seeds.match_dimensions`):
        reference dimension ``i`` is ``signs[i] * mu_s[:, perm[i]]``; the reference's own
        match is the identity with correlation 1. Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    if not mus:
        raise VaetoneError("no seeds to match: n_seeds must be at least 1")
    ref = np.asarray(mus[0])
    d = ref.shape[1]
    out = [(np.arange(d), np.ones(d, dtype=int), np.ones(d))]
    out += [match_dimensions(ref, mu) for mu in mus[1:]]
    return out


@dataclass
class AcrossSeeds:
    """A per-dimension analysis repeated over training seeds, aligned on the reference seed.

    Attributes:
        seeds: the training seeds, reference first.
        tables: one table per seed, indexed by that seed's *own* dimensions.
        matches: one ``(perm, signs, corr)`` per seed (see :func:`match_to_reference`).
        summary: :func:`vaetone.analysis.seeds.aggregate_seeds` of the tables: indexed by reference
            dimension, columns (column, "mean" | "std" | "min" | "max") over seeds.
        signed: the columns whose sign was flipped with the matched dimension.
    """

    seeds: list[int]
    tables: list[pd.DataFrame]
    matches: list[tuple]
    summary: pd.DataFrame
    signed: tuple[str, ...] = ()

    def aligned(self, column: str) -> pd.DataFrame:
        """One column of every seed's table on the reference dimensions: dims × seeds (signed if flipped)."""
        cols = {}
        for seed, table, (perm, signs, *_rest) in zip(self.seeds, self.tables, self.matches):
            values = table[column].loc[list(perm)].to_numpy(dtype=float)
            cols[seed] = values * np.asarray(signs) if column in self.signed else values
        frame = pd.DataFrame(cols, index=pd.RangeIndex(len(values), name="dim"))
        frame.columns.name = "seed"
        return frame

    def match_table(self) -> pd.DataFrame:
        """For each reference dimension and seed: the matched dimension, its sign and |correlation|.

        Returns:
            DataFrame indexed by reference dim, columns MultiIndex (seed, "dim" | "sign" | "abs_r").
        """
        parts = {
            seed: pd.DataFrame({"dim": perm, "sign": signs, "abs_r": corr})
            for seed, (perm, signs, corr) in zip(self.seeds, self.matches)
        }
        frame = pd.concat(parts, axis=1, names=["seed", None])
        frame.index.name = "dim"
        return frame

    def mean_std(self, column: str) -> pd.DataFrame:
        """The mean and standard deviation over seeds of one column: DataFrame indexed by dim, columns mean, std."""
        return self.summary[column][["mean", "std"]]


def across_seeds(
    cfg: Config,
    feats,
    fn: PerRun,
    signed: Sequence[str] = (),
    runs: Sequence | None = None,
    split: str = "test",
    reference: pd.DataFrame | None = None,
    reference_run=None,
    reference_latents=None,
) -> AcrossSeeds:
    """Apply a per-dimension analysis to every seed's model and aggregate it on the reference's dimensions.

    Each seed's dimensions are matched to the reference seed's (``cfg.seed``) by the absolute
    correlation of the posterior means of the ``split`` notes (Hungarian assignment, sign
    flips where negative; see the module docstring); then the seed's table is reordered onto
    the reference dimensions and aggregated with :func:`vaetone.analysis.seeds.aggregate_seeds`.

    Args:
        cfg: the configuration (``cfg.n_seeds`` seeds from ``cfg.seed``).
        feats: the Features.
        fn: ``fn(seed_cfg, run, latents) -> DataFrame`` indexed by dim 0..D-1 with numeric
            columns (others are ignored by the summary), ``latents`` being the seed's
            :class:`vaetone.model.runs.Latents` of the ``split`` notes.
        signed: columns whose sign flips with a dimension (e.g. a mean or a correlation);
            sign-free ones (sensitivities, ablation effects, KL) are not flipped.
        runs: the runs of :func:`seed_runs` (default: loaded or trained).
        split: the notes the dimensions are matched on and that ``fn`` receives.
        reference: the reference seed's table if the chapter has already computed it (``fn``
            is then not called for that seed).
        reference_run, reference_latents: the reference seed's run and its ``split`` latents if the
            chapter has already loaded them (see :func:`seed_runs`, :func:`seed_latents`).
    Returns:
        :class:`AcrossSeeds`. Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    configs = seed_configs(cfg)
    runs = seed_runs(cfg, feats, reference_run=reference_run) if runs is None else list(runs)
    lats = seed_latents(cfg, feats, runs, split, reference_latents=reference_latents)
    matches = match_to_reference([lat.mu for lat in lats])
    tables = []
    for s, (c, run, lat) in enumerate(zip(configs, runs, lats)):
        table = reference.copy() if s == 0 and reference is not None else fn(c, run, lat)
        if sorted(table.index) != list(range(lat.mu.shape[1])):
            raise VaetoneError(
                f"the per-run analysis of seed {c.seed} must return a table indexed by "
                f"dim 0..{lat.mu.shape[1] - 1}, got index {list(table.index)[:8]}..."
            )
        tables.append(table.sort_index())
    summary = aggregate_seeds(tables, matches, signed=list(signed))
    return AcrossSeeds([c.seed for c in configs], tables, matches, summary, tuple(signed))


def rank_agreement(result: AcrossSeeds, column: str) -> pd.Series:
    """Spearman correlation of each seed's ranking of the reference dimensions by ``column`` with the reference's.

    Args:
        result: from :func:`across_seeds`.
        column: a sign-free score (e.g. a sensitivity or an ablation effect).
    Returns:
        Series indexed by seed (the reference's own is 1). Chapters: 04_sensitivity, 05_ablation.
    """
    from scipy.stats import spearmanr

    table = result.aligned(column)
    ref = table.iloc[:, 0]
    return pd.Series(
        {
            seed: float(spearmanr(ref, table[seed])[0]) if table[seed].nunique() > 1 else np.nan
            for seed in table.columns
        },
        name=f"spearman_{column}",
    ).rename_axis("seed")


def top_counts(result: AcrossSeeds, column: str, k: int = 3, largest: bool = True) -> pd.Series:
    """In how many seeds each reference dimension is among the ``k`` most important by ``column`` (after matching).

    Args:
        result: from :func:`across_seeds`.
        column: the score; ``largest=True``: larger is more important (an effect), False: smaller
            is (a rank).
        k: how many dimensions count as the top.
    Returns:
        Series indexed by reference dim, integer counts 0..n_seeds. Chapters: 04_sensitivity, 05_ablation.
    """
    table = result.aligned(column)
    ranks = table.rank(ascending=not largest, method="first")
    return (ranks <= k).sum(axis=1).astype(int).rename(f"top{k}_seeds")


def result(cfg: Config, analysis: str):
    """The cached across-seeds result of one analysis (see :mod:`vaetone.analysis.seeds_stage`).

    Args:
        cfg: the configuration (``cfg.n_seeds`` seeds from the reference seed ``cfg.seed``).
        analysis: "sensitivity" (chapter 04), "ablation" (05) or "statistics" (06).
    Returns:
        :class:`vaetone.analysis.seeds_stage.SeedsResult`: tables mean_std, summary, matches, per_seed,
        seed_tables; the findings the chapter quotes. Raises ConfigError for another ``analysis``.
    Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    from vaetone.analysis import seeds_stage

    return seeds_stage.result(cfg, analysis)


# --------------------------------------------------------------------------- per-run analyses


def split_rows(feats, lat) -> torch.Tensor:
    """Row positions in ``feats`` of the notes of ``lat`` (a :class:`vaetone.model.runs.Latents` of one split)."""
    pos = feats.meta.index.get_indexer(lat.meta.index)
    if (pos < 0).any():
        raise VaetoneError("the latents' notes are not all in the features; pass the features they were encoded from")
    return torch.as_tensor(pos, dtype=torch.long)


def sensitivity_per_run(feats, anchor_seed: int, sobol: bool = True) -> PerRun:
    """The per-run analysis of chapter 04: the labelled ranking of :func:`~vaetone.analysis.sensitivity.analysis`.

    One-at-a-time sweeps from the same anchor notes in every seed (``anchor_seed``, the
    reference seed), decoder Jacobian norms at those anchors, (``sobol``) Sobol indices of the
    same Saltelli sample (seeded by ``anchor_seed``), and the dimensions' labels from their net
    changes in units of the descriptors' spread over the seed's notes themselves (their log-mels
    in ``feats``: the same notes, hence the same unit, in every seed; no decoding).

    Args:
        feats: the Features (its ``denormalise`` gives dB, its ``logmel`` the notes' own dB log-mels).
        anchor_seed: seed of the anchor choice and of the Sobol sample.
        sobol: include Sobol indices (the slowest part).
    Returns:
        ``fn(seed_cfg, run, latents) -> DataFrame`` indexed by dim: the scores of
        ``rank_dimensions`` (oat_logmel, oat_descriptors, jacobian[, sobol_ST]), their ranks,
        mean_rank and the label columns (label, label_descriptor, label_change, label_runner_up,
        label_rho[, sobol_label]), as the sensitivity stage computes them. Chapter: 04_sensitivity.
    """

    def fn(c: Config, run, lat) -> pd.DataFrame:
        decode = decoding.db_decoder(run.decode, feats.denormalise)
        spread = sensitivity.descriptor_spread(decoding.default_describe(c), feats.logmel[split_rows(feats, lat)])
        views = sensitivity.analysis(decode, lat.mu, c, seed=anchor_seed, sobol=sobol, spread=spread)
        return views.ranking.sort_index()

    return fn


def ablation_per_run(feats, baseline: str = "zero", seed: int = 0) -> PerRun:
    """The per-run analysis of chapter 05: the mean effect of ablating each dimension of one seed's model.

    Args:
        feats: the Features (references: the notes' own log-mels in dB).
        baseline, seed: as in :func:`vaetone.analysis.ablation.baseline_values`.
    Returns:
        ``fn(seed_cfg, run, latents) -> DataFrame`` indexed by dim: base_mean (dB² of the
        unablated reconstruction), increase_mean (dB²), increase_sem, relative_increase of the
        log-mel MSE over the notes. Chapter: 05_ablation.
    """

    def fn(c: Config, run, lat) -> pd.DataFrame:
        decode = decoding.db_decoder(run.decode, feats.denormalise)
        ref = feats.logmel[split_rows(feats, lat)]
        effects = ablation.ablation_effects(decode, lat.mu, ref, baseline=baseline, seed=seed)
        overall = ablation.summarise_ablation(effects).query("grouping == 'overall'")
        cols = ["base_mean", "increase_mean", "increase_sem", "relative_increase"]
        return overall.set_index("dim")[cols].sort_index()

    return fn


def statistics_per_run(threshold: float = statistics.ACTIVE_THRESHOLD) -> PerRun:
    """The per-run analysis of chapter 06: :func:`vaetone.analysis.statistics.dimension_table` of one seed's posteriors.

    Returns:
        ``fn(seed_cfg, run, latents) -> DataFrame`` indexed by dim (``active`` as 0/1, so that
        its mean over seeds is the share of seeds in which the matched unit is active). Aggregate
        with ``signed=SIGNED_STATISTICS``. Chapter: 06_statistics.
    """

    def fn(c: Config, run, lat) -> pd.DataFrame:
        table = statistics.dimension_table(lat.mu, lat.std, threshold)
        return table.assign(active=table["active"].astype(int))

    return fn


SIGNED_STATISTICS = ("mean", "skewness")
"""Columns of :func:`vaetone.analysis.statistics.dimension_table` whose sign flips with the dimension
(min and max swap instead: do not read their spread across seeds)."""


# --------------------------------------------------------------------------- across seeds


def match_dimensions(mu_ref, mu_other) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match the dimensions of another run to a reference run by absolute correlation (Hungarian algorithm).

    Args:
        mu_ref, mu_other: (n, D) posterior means of the same notes under two runs (seeds).
    Returns:
        (perm (D,), signs (D,) ±1, corr (D,)): reference dimension i corresponds to
        ``signs[i] * mu_other[:, perm[i]]``, with correlation ``corr[i]`` (≥ 0 after the sign).
        ``align(mu_other, perm, signs)`` gives the aligned latents.
    Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    a, b = _as_2d(mu_ref, "mu_ref"), _as_2d(mu_other, "mu_other")
    if a.shape != b.shape:
        raise VaetoneError(f"match_dimensions needs latents of the same notes and size, got {a.shape} and {b.shape}")
    c = np.nan_to_num(np.corrcoef(a.T, b.T)[: a.shape[1], a.shape[1] :])
    rows, perm = linear_sum_assignment(-np.abs(c))
    signs = np.where(c[rows, perm] < 0, -1, 1)
    return perm, signs, np.abs(c[rows, perm])


def align(mu_other, perm, signs) -> np.ndarray:
    """Reorder and flip another run's latents onto the reference's dimensions: (n, D)."""
    return _as_2d(mu_other)[:, perm] * np.asarray(signs)[None, :]


def aggregate_seeds(
    tables: Sequence[pd.DataFrame], matches: Sequence[tuple] | None = None, signed: Sequence[str] = ()
) -> pd.DataFrame:
    """Mean and spread over seeds of per-dimension tables, after aligning dimensions to the first seed.

    Args:
        tables: one DataFrame per seed indexed by dim 0..D-1 (numeric columns), first = reference.
        matches: one (perm, signs, ...) per table from :func:`match_dimensions` (the
            reference's own is identity); None: no alignment.
        signed: columns whose sign flips with the dimension (e.g. "mean", "skewness",
            "pearson_r"); sign-free ones (KL, sensitivities, ablation effects) are not flipped;
            columns a table lacks are skipped.
            min and max swap under a flip: leave them out of ``signed`` and do not read
            their spread across seeds.
    Returns:
        DataFrame indexed by reference dim, columns MultiIndex (column, "mean" | "std" | "min" | "max")
        over seeds. Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    aligned = []
    for s, table in enumerate(tables):
        table = table.select_dtypes("number").astype(float)
        if matches is not None:
            perm, signs = matches[s][0], matches[s][1]
            table = table.loc[list(perm)].reset_index(drop=True)
            for col in (c for c in signed if c in table):
                table[col] = table[col].to_numpy() * np.asarray(signs)
        table.index.name = "dim"
        aligned.append(table.assign(seed=s))
    out = pd.concat(aligned).groupby("dim").agg(["mean", "std", "min", "max"])
    return out.drop(columns="seed", level=0)
