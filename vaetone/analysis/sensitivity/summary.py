"""The quoted numbers and tables of the sensitivity stage: counts, Sobol sums, labels, and intervals over anchors.

Every phrase the chapter quotes that states a direction, a comparison or a significance is
built here from the numbers (:func:`sweep_intervals` says "raises" or "lowers" from the sign of
the estimate, and whether its interval excludes 0).

**Intervals.** The anchors of the sweeps are encoded test notes (plus the prior mean z = 0).
Notes of one instrument are not independent, so a headline score of the sweeps gets a 95 %
interval from an instrument-level bootstrap over the anchor notes
(:func:`vaetone.analysis.intervals.bootstrap`, ``cfg.bootstrap_n`` resamples). The prior-mean
anchor belongs to no instrument and is left out of the intervals and of their estimates. With
anchor notes from fewer than :data:`vaetone.analysis.intervals.MIN_GROUPS` instruments, the
interval is recorded as undefined, with the reason.

Chapter: 04_sensitivity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vaetone.analysis import intervals
from vaetone.analysis.sensitivity.labels import (
    LABEL_MIN_CHANGE,
    LABEL_MIN_RHO,
    LABEL_RATIO,
    MIXED,
    NONE,
    NOT_NAMES,
    sobol_sums,
)
from vaetone.analysis.sensitivity.oat import anchor_trends
from vaetone.analysis.sensitivity.ranking import Analysis
from vaetone.config import Config
from vaetone.errors import ConfigError

CHANGE_UNIT = "dB per unit z"
"""Unit of the log-mel change along the sweeps."""
MOVE_UNIT = "test-note spreads per unit z"
"""Unit of a descriptor's net change (its standard deviation over the test notes per prior std)."""


def sweep_counts(views: Analysis, moves: pd.DataFrame, n_notes: int) -> dict:
    """How many anchors, steps, decodes and descriptors the sweeps used, and their mean log-mel change.

    Returns:
        {n_test_notes, n_dims, n_anchor_points, n_anchor_notes (anchors that are notes), n_steps,
        n_oat_decodes, n_desc, mean_logmel_change (dB per unit z, over dimensions and all anchors),
        descriptors_moved (descriptors some dimension moves)}. Chapter: 04_sensitivity.
    """
    n_anchors, n_steps, n_dims = len(views.anchors), len(views.grid), views.anchors.shape[1]
    overall = views.sweeps.logmel.query("scope == 'all'")["change"]
    moved = moves.fillna(0.0).abs().gt(0)
    return {
        "n_test_notes": int(n_notes),
        "n_dims": int(n_dims),
        "n_anchor_points": int(n_anchors),
        "n_anchor_notes": int((np.asarray(views.rows) >= 0).sum()),
        "n_steps": int(n_steps),
        "n_oat_decodes": int(n_anchors * n_steps * n_dims),
        "n_desc": int(moves.shape[1]),
        "mean_logmel_change": float(overall.mean()),
        "descriptors_moved": [str(c) for c in moves.columns if moved[c].any()],
    }


def sobol_st(sobol: pd.DataFrame) -> pd.DataFrame:
    """Total Sobol indices, dims × descriptors in the descriptors' order (all-NaN columns kept)."""
    st = sobol.pivot(index="dim", columns="descriptor", values="ST")
    return st[list(dict.fromkeys(sobol["descriptor"]))]


def _span(values: pd.Series) -> str:
    """ "a to b" of a column, two decimals."""
    return f"{values.min():.2f} to {values.max():.2f}"


def sobol_findings(sobol: pd.DataFrame, labels: pd.Series) -> dict:
    """The quoted numbers of the Sobol analysis: sample, confidence, sums, negative S1, interactions, names.

    Args:
        sobol: tidy Sobol indices; labels: :func:`~vaetone.analysis.sensitivity.labels.sobol_labels`.
    Returns:
        {sobol_N, sobol_evals (decodes), sobol_conf ("95 %"), sobol_nan (descriptors without variance,
        or "none"), sobol_mean_conf (mean ST half-width), sobol_n_s1, sobol_negative_s1,
        sobol_negative_noise (negative S1 within their interval of 0), sobol_sum_s1, sobol_sum_st
        ("a to b" over descriptors), sobol_interactions ("5 of the 7 descriptors with variance": those
        whose interaction share 1 − ΣS1 exceeds one half), sobol_named (dims named by a significant
        S1), sobol_labels ({str(dim): label})}. Chapter: 04_sensitivity.
    """
    st = sobol_st(sobol)
    nan_desc = [str(d) for d in st.columns if st[d].isna().all()]
    sums = sobol_sums(sobol)
    most = int((sums["interaction_share"] > 0.5).sum()) if len(sums) else 0
    return {
        "sobol_N": int(sobol.attrs["N"]),
        "sobol_evals": int(sobol.attrs["n_evaluations"]),
        "sobol_conf": f"{100 * sobol.attrs['conf_level']:.0f} %",
        "sobol_nan": ", ".join(nan_desc) if nan_desc else "none",
        "sobol_mean_conf": float(sobol["ST_conf"].mean()),
        "sobol_n_s1": int(sobol["S1"].notna().sum()),
        "sobol_negative_s1": int(sums["negative_S1"].sum()) if len(sums) else 0,
        "sobol_negative_noise": int(sums["negative_S1_noise"].sum()) if len(sums) else 0,
        "sobol_sum_s1": _span(sums["sum_S1"]) if len(sums) else "undefined (no descriptor varies)",
        "sobol_sum_st": _span(sums["sum_ST"]) if len(sums) else "undefined (no descriptor varies)",
        "sobol_interactions": f"{most} of the {len(sums)} descriptors with variance",
        "sobol_named": int((~labels.isin(NOT_NAMES)).sum()),
        "sobol_labels": {str(int(d)): str(v) for d, v in labels.items()},
    }


def ranking_findings(ranking: pd.DataFrame, agreement: pd.DataFrame, top: Sequence[int]) -> dict:
    """The quoted agreement of the views, the most and least influential dimensions, and the labels.

    Args:
        ranking: :func:`~vaetone.analysis.sensitivity.ranking.rank_dimensions` (with labels);
        agreement: the views' Spearman correlations; top: the first dimensions of the ranking.
    Returns:
        {views, rho_min, rho_max (over pairs of views), rho_oat_jac (sweeps vs gradients), n_top,
        top_dimensions (ints), top_dims ("z5 (centroid_hz), z8 (mixed), ..."), bottom_dim ("z4"),
        dimension_descriptor ({str(dim): label} for labels other than "none"), n_named, n_mixed,
        n_none, label_rule (the rule in words, with its constants)}. Chapter: 04_sensitivity.
    """
    off = agreement.to_numpy()[np.triu_indices(len(agreement), 1)]
    label = ranking["label"]
    return {
        "views": [str(v) for v in agreement.columns],
        "rho_min": float(np.nanmin(off)),
        "rho_max": float(np.nanmax(off)),
        "rho_oat_jac": float(agreement.loc["oat_logmel", "jacobian"]),
        "n_top": len(top),
        "top_dimensions": [int(d) for d in top],
        "top_dims": ", ".join(f"z{d} ({label[d]})" for d in top),
        "bottom_dim": f"z{int(ranking.index[-1])}",
        "dimension_descriptor": {str(int(d)): str(v) for d, v in label.items() if v != NONE},
        "n_named": int((~label.isin(NOT_NAMES)).sum()),
        "n_mixed": int((label == MIXED).sum()),
        "n_none": int((label == NONE).sum()),
        "label_rule": (
            f"its net change is at least {LABEL_RATIO:g} times the runner-up's, monotonic (mean Spearman "
            f"|ρ| over the anchors at least {LABEL_MIN_RHO:g}) and at least {LABEL_MIN_CHANGE:g} {MOVE_UNIT}"
        ),
    }


def _undefined(groups: np.ndarray | None) -> str | None:
    """Why no instrument-level interval can be computed over these anchor notes, or None when one can."""
    if groups is None:
        return "the instruments of the anchor notes are not known"
    k = len(pd.unique(groups))
    if k < intervals.MIN_GROUPS:
        return (
            f"the {len(groups)} anchor notes come from {k} instrument(s), and an instrument-level interval "
            f"needs at least {intervals.MIN_GROUPS}"
        )
    return None


def _interval_row(values: np.ndarray, groups, reason: str | None, cfg: Config, where: str) -> dict:
    """estimate, low, high, n_notes, n_instruments and the interval in words (or why it is undefined)."""
    row = {"estimate": float(np.nanmean(values)) if np.isfinite(values).any() else 0.0, "low": np.nan, "high": np.nan}
    row.update(n_notes=int(np.isfinite(values).sum()), n_instruments=0, interval=f"undefined: {reason}")
    if reason is None:
        try:
            iv = intervals.bootstrap(values, groups, "mean", cfg.bootstrap_n, seed=cfg.seed, where=where)
        except ConfigError as exc:  # e.g. too few instruments left once NaN notes are dropped
            row["interval"] = f"undefined: {exc}"
            return row
        row.update(estimate=iv.estimate, low=iv.low, high=iv.high, n_notes=iv.n_notes, n_instruments=iv.n_groups)
        row["interval"] = f"{iv.low:.2f} to {iv.high:.2f}"
    return row


def sweep_intervals(
    views: Analysis, ranking: pd.DataFrame, spread: pd.Series, groups, cfg: Config, top: Sequence[int]
) -> tuple[pd.DataFrame, dict]:
    """95 % instrument-level intervals of the sweeps' headline scores, over the anchor notes (prior mean left out).

    The scores: the log-mel change of the sweeps averaged over all dimensions and of each top
    dimension (dB per unit z), and, for each top dimension named after a descriptor, the net
    change of that descriptor (test-note spreads per unit z).

    Args:
        views: the analysis (anchors' rows of mu, sweeps); ranking: with labels; spread: the
        descriptors' spread over the test notes; groups: (n,) the instrument of each note of mu,
        or None; cfg: ``bootstrap_n``, ``seed``; top: the most influential dimensions.
    Returns:
        (table "intervals" indexed by quantity: measure, unit, estimate, low, high, n_notes,
        n_instruments, interval (words); findings: interval_note, change_interval, top_change_intervals,
        label_moves). Chapter: 04_sensitivity.
    """
    notes = np.asarray(views.rows) >= 0
    anchors = np.flatnonzero(notes)
    note_groups = None if groups is None else np.asarray(groups)[np.asarray(views.rows)[notes]]
    reason = _undefined(note_groups)
    change = views.sweeps.anchor_logmel.pivot(index="anchor", columns="dim", values="change").loc[anchors]
    wanted = [("all dimensions", "log-mel change", CHANGE_UNIT, change.mean(axis=1).to_numpy())]
    wanted += [(f"z{d}", "log-mel change", CHANGE_UNIT, change[d].to_numpy()) for d in top]
    trends = anchor_trends(views.sweeps.curves).set_index(["dim", "descriptor", "anchor"])["net_slope"].sort_index()
    named = [(d, str(ranking.loc[d, "label"])) for d in top if ranking.loc[d, "label"] not in NOT_NAMES]
    for d, name in named:
        moves = trends.loc[(d, name)].reindex(anchors).to_numpy() / spread[name]
        wanted.append((f"z{d} {name}", f"net change of {name}", MOVE_UNIT, moves))
    rows = {
        q: {"measure": m, "unit": u, **_interval_row(v, note_groups, reason, cfg, f"{m} of {q}")}
        for q, m, u, v in wanted
    }
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("quantity")
    return table, _interval_findings(table, named, reason, cfg)


def interval_phrase(row: pd.Series) -> str:
    """A score in words with its 95 % interval or "(interval undefined)"; net changes add the verdict on 0."""
    head = f"{row['estimate']:.2f} {row['unit']}"
    if row["interval"].startswith("undefined"):
        return f"{head} (interval undefined)"
    text = f"{head} ({round(100 * intervals.LEVEL)} % interval {row['low']:.2f} to {row['high']:.2f}"
    if row["measure"].startswith("net change"):
        zero_out = row["low"] > 0 or row["high"] < 0
        text += "; the interval excludes 0" if zero_out else "; not significant: the interval contains 0"
    return text + ")"


def move_phrase(dim: int, name: str, row: pd.Series) -> str:
    """ "z5 raises centroid_hz: 0.41 spreads per unit z (95 % ...)": the direction and interval of one named move.

    Args:
        dim: the dimension; name: its descriptor; row: its row of :func:`sweep_intervals` (estimate, low, high, ...).
    Chapter: 04_sensitivity.
    """
    return f"z{dim} {'raises' if row['estimate'] > 0 else 'lowers'} {name}: {interval_phrase(row)}"


def _interval_findings(table: pd.DataFrame, named: list, reason: str | None, cfg: Config) -> dict:
    """The quoted interval phrases of :func:`sweep_intervals`."""
    first = table.iloc[0]
    if reason is None:
        note = (
            f"{round(100 * intervals.LEVEL)} % instrument-level bootstrap over the {first['n_notes']} anchor notes "
            f"from {first['n_instruments']} instruments ({cfg.bootstrap_n} resamples; the prior-mean anchor "
            "belongs to no instrument and is left out)"
        )
    else:
        note = f"undefined here, because {reason}"
    moves = [move_phrase(d, name, table.loc[f"z{d} {name}"]) for d, name in named]
    per_dim = table[(table["measure"] == "log-mel change")].iloc[1:]
    return {
        "interval_note": note,
        "change_interval": interval_phrase(first),
        "top_change_intervals": "; ".join(f"{q}: {interval_phrase(r)}" for q, r in per_dim.iterrows()),
        "label_moves": "; ".join(moves) or "none of the most influential dimensions is named after a descriptor",
    }


def view_tables(views: Analysis, moves: pd.DataFrame, ranking: pd.DataFrame, agreement: pd.DataFrame) -> dict:
    """The tables of the sensitivity result from the views, the moves, the ranking and the agreement.

    Returns:
        {ranking, moves, where, jacobian, sobol, sobol_st, sobol_sums, agreement, curves,
        sweeps_logmel, sweeps_descriptors, anchor_logmel}. Chapter: 04_sensitivity.
    """
    st = sobol_st(views.sobol)
    return {
        "ranking": ranking,
        "moves": moves,
        "where": _by_part(views.sweeps.logmel.query("scope != 'all'"), "change", "frequency band / time region"),
        "jacobian": _by_part(views.jacobian, "jacobian_rms", "output region"),
        "sobol": views.sobol,
        "sobol_st": st.drop(columns=[d for d in st.columns if st[d].isna().all()]),
        "sobol_sums": sobol_sums(views.sobol),
        "agreement": agreement,
        "curves": views.sweeps.curves,
        "sweeps_logmel": views.sweeps.logmel,
        "sweeps_descriptors": views.sweeps.descriptors,
        "anchor_logmel": views.sweeps.anchor_logmel,
    }


def _by_part(tidy: pd.DataFrame, value: str, axis: str) -> pd.DataFrame:
    """A tidy per-(dim, part) table as dims × parts, the parts in their order of appearance."""
    wide = tidy.pivot(index="dim", columns="part", values=value)[list(dict.fromkeys(tidy["part"]))]
    return wide.rename_axis(columns=axis)
