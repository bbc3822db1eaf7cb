"""The numbers and sentences chapter 08 and the intro quote about a β sweep.

Every phrase that states a level, a direction or a comparison is built here from the numbers.

Chapter: 08_validity.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from vaetone.config import Config

METHOD_NAMES = {
    "oat": "one-at-a-time sweeps",
    "jacobian": "the Jacobian",
    "sobol": "Sobol indices",
    "ablation": "ablation",
}
"""How the prose names each explanation method of :data:`vaetone.analysis.recovery.METHODS`."""

STABLE_COSINE = 0.9
"""A target's latent direction is called stable across seeds when its median cosine reaches this..."""

STABLE_R2 = 0.5
"""...and the code predicts the target linearly with at least this median test R²."""

SIGNIFICANCE = 0.05
"""The p-value below which a recovery score is said to beat chance."""


def and_list(items) -> str:
    """ "a", "a and b", "a, b and c". Chapter: 08_validity."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _curve(curves: pd.DataFrame, beta: float, column: str) -> float:
    """One score of the curves at one β (NaN when absent)."""
    return float(curves.loc[beta, column]) if column in curves and beta in curves.index else float("nan")


def _regime_findings(cfg: Config, curves: pd.DataFrame) -> dict:
    """Reconstruction, active units and calibrated β along the sweep, and their phrases."""
    betas = [b for b in curves.index if b > 0]
    low, high, ref = min(betas), max(betas), float(cfg.beta)
    active = {b: int(round(_curve(curves, b, "active_units"))) for b in curves.index}
    cal = {b: _curve(curves, b, "beta_calibrated") for b in betas}
    out = {
        "betas_text": and_list(f"{b:g}" for b in betas),
        "n_betas": len(betas),
        "beta_ref": ref,
        "beta_cal_ref": cal[ref],
        "beta_cal_text": and_list(f"{cal[b]:.3g}" for b in betas),
        "decoder_variance": cfg.decoder_variance,
        "active_ref": active[ref],
        "n_dims": int(cfg.latent_dim),
        "mse_ref": _curve(curves, ref, "valid_mse"),
        "has_autoencoder": bool(0.0 in curves.index),
        "active_trend": (
            _trend_phrase(active[low], active[high], "active units", low, high)
            if high > low
            else f"has {active[ref]} active units at the one β swept (β = {ref:g})"
        ),
    }
    if 0.0 in curves.index:
        out.update(active_ae=active[0.0], mse_ae=_curve(curves, 0.0, "valid_mse"))
        out["ae_line"] = (
            f"the autoencoder keeps {active[0.0]} of {cfg.latent_dim} units active, the VAE at β = {ref:g} keeps "
            f"{active[ref]}; validation MSE {out['mse_ae']:.4f} (autoencoder) against {out['mse_ref']:.4f} (VAE)"
        )
    else:
        out["ae_line"] = "this sweep has no autoencoder (add 0 to corpus_betas to train one per seed)"
    return out


def _trend_phrase(first: float, last: float, what: str, low: float, high: float) -> str:
    """ "falls from 16 to 3 active units between β = 0.25 and β = 16" (or rises, or stays)."""
    verb = "falls" if last < first else "rises" if last > first else "stays"
    span = f"from {first:g} to {last:g}" if verb != "stays" else f"at {first:g}"
    return f"{verb} {span} {what} between β = {low:g} and β = {high:g}"


def _agreement_findings(cfg: Config, by_beta: dict, best: float | None) -> dict:
    """Seed agreement at cfg.beta, at the best β and for the autoencoder: numbers and one line each."""
    out = {}
    for tag, beta in (("ref", float(cfg.beta)), ("ae", 0.0), ("best", best)):
        if beta is None or beta not in by_beta:
            continue
        f = by_beta[beta]
        out.update({f"{k}_{tag}": v for k, v in f.items() if isinstance(v, (int, float, str))})
        out[f"agreement_line_{tag}"] = (
            f"matched axes |r| {f['matched_r_median']:.2f}, subspace R² {f['subspace_r2_median']:.2f}, "
            f"mean canonical correlation {f['cca_mean_median']:.2f}"
        )
        out.update(_direction_findings(f, tag))
        more = f["subspace_r2_median"] > f["matched_r_median"] ** 2
        out[f"subspace_phrase_{tag}"] = (
            "the subspace the code spans agrees between seeds more than its single axes do"
            if more
            else "the subspace agrees between seeds no better than the single axes do"
        )
    return out


def _direction_findings(f: dict, tag: str) -> dict:
    """Per target, its direction's R² and cosine across seeds in one line, and which directions are stable."""
    targets = [k.removeprefix("direction_r2_median_") for k in f if k.startswith("direction_r2_median_")]
    parts, stable = [], []
    for t in targets:
        r2, cos = f[f"direction_r2_median_{t}"], f[f"direction_cosine_median_{t}"]
        parts.append(f"{t} R² {r2:.2f}, cosine {cos:.2f}")
        if r2 >= STABLE_R2 and cos >= STABLE_COSINE:
            stable.append(t)
    return {
        "stable_rule": f"test R² of at least {STABLE_R2:g} and a cosine between seeds of at least {STABLE_COSINE:g}",
        f"directions_line_{tag}": "; ".join(parts),
        f"stable_directions_{tag}": and_list(stable) if stable else "none of the targets",
        f"n_stable_directions_{tag}": len(stable),
        f"n_targets_{tag}": len(targets),
    }


def _recovery_findings(recovery: pd.DataFrame, cfg: Config, best: float) -> dict:
    """Recovery of each method for the VAE at cfg.beta, at the best β and the autoencoder, against chance."""
    out = {"best_beta": best}
    for tag, model in (("ref", f"VAE β={cfg.beta:g}"), ("best", f"VAE best β={best:g}"), ("ae", "autoencoder")):
        rows = recovery.xs(model, level="model")
        above = [m for m, r in rows.iterrows() if r["p_value"] < SIGNIFICANCE and r["mean"] > r["chance"]]
        for method, r in rows.iterrows():
            out[f"rec_{method}_{tag}"] = f"{r['mean']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
        out[f"n_above_chance_{tag}"] = len(above)
        out[f"above_chance_{tag}"] = and_list(METHOD_NAMES[m] for m in above) if above else "none of the methods"
        out[f"rec_best_method_{tag}"] = METHOD_NAMES[rows["mean"].idxmax()]
        out[f"rec_max_{tag}"] = float(rows["mean"].max())
    out["rec_chance"] = float(recovery["chance"].median())
    out["n_methods"] = int(recovery.index.get_level_values("method").nunique())
    return out


def _code_findings(curves: pd.DataFrame, references: pd.DataFrame, cfg: Config, best: float) -> dict:
    """MIG, DCI and SAP of the models beside the ceiling (perfect code) and floors (rotated, shuffled)."""
    out = {}
    for score in ("mig", "dci_disentanglement", "sap"):
        for code in references.index:
            out[f"{score}_{code}"] = float(references.loc[code, score])
        for tag, beta in (("ref", float(cfg.beta)), ("best", best), ("ae", 0.0)):
            out[f"{score}_{tag}"] = _curve(curves, beta, score)
    out["mig_line_ref"] = (
        f"MIG {out['mig_ref']:.2f} (ceiling {out['mig_perfect']:.2f}, rotated {out['mig_rotated']:.2f}, "
        f"shuffled {out['mig_shuffled']:.2f})"
    )
    out["kl_line"] = _kl_line(curves, float(cfg.beta))
    share = out["mig_ref"] / out["mig_perfect"] if out["mig_perfect"] > 0 else np.nan
    out["mig_share_ref"] = f"{100 * share:.0f} %"
    return out


def _kl_line(curves: pd.DataFrame, beta: float) -> str:
    """What the KL term buys in MIG: the VAE at β against the autoencoder, with their ranges over seeds."""
    ref, ae = curves.loc[beta], curves.loc[0.0]
    a, b = round(float(ref["mig"]), 2), round(float(ae["mig"]), 2)
    word = "higher than" if a > b else "lower than" if a < b else "the same, to two decimals, as"
    overlap = ref["mig_low"] <= ae["mig_high"] and ae["mig_low"] <= ref["mig_high"]
    return (
        f"MIG {ref['mig']:.2f} (seeds {ref['mig_low']:.2f}–{ref['mig_high']:.2f}) at β = {beta:g}, {word} the "
        f"autoencoder's {ae['mig']:.2f} ({ae['mig_low']:.2f}–{ae['mig_high']:.2f}); the ranges over seeds "
        f"{'overlap' if overlap else 'do not overlap'}"
    )


def regimes_findings(cfg: Config, source: str, tables: dict, by_beta: dict, best: float | None) -> dict:
    """Every number and phrase chapter 08 quotes about one sweep.

    Args:
        cfg: the configuration; source: "synthetic" or "data"; tables: the sweep's tables
        (``curves``, ``models`` and, on the synthetic source, ``recovery`` and ``references``);
        by_beta: {β: findings of :func:`vaetone.analysis.subspace_agreement.seed_agreement`}; best: the best β
        (synthetic) or None.
    Returns:
        JSON-able dict (see the keys built by the helpers of this module). Chapter: 08_validity.
    """
    models, curves = tables["models"], tables["curves"]
    out = {
        "source": source,
        "n_models": int(len(models)),
        "n_seeds": int(models["seed"].nunique()),
        **_regime_findings(cfg, curves),
        **_agreement_findings(cfg, by_beta, best),
    }
    if source == "synthetic":
        out.update(_recovery_findings(tables["recovery"], cfg, best))
        out.update(_code_findings(curves, tables["references"], cfg, best))
    return out


def validity_answer(f: Mapping) -> str:
    """The answer of the validity chapter in one sentence, built from the synthetic sweep's findings (unprefixed).

    Args:
        f: :func:`regimes_findings` of the synthetic source (``beta_ref``, ``n_above_chance_ref``,
            ``above_chance_ref``, ``n_methods``, ``rec_best_method_ref``, ``rec_max_ref``, ``rec_chance``,
            ``mig_share_ref`` and, with two seeds or more, ``agreement_line_ref`` and ``subspace_phrase_ref``).
    Returns:
        e.g. "At β = 1, 2 of the 4 explanation methods (the Jacobian and ablation) name the dimension
        that carries a factor more often than chance (best: ablation, 0.60 of the factors against
        0.25 by chance); the code reaches 41 % of a perfect code's MIG; across seeds (matched axes
        |r| 0.80, ...) the subspace ... ." Chapter: 08_validity.
    """
    n, m = int(f["n_above_chance_ref"]), int(f["n_methods"])
    if n == 0:
        who = f"none of the {m} explanation methods names"
    else:
        who = f"{n} of the {m} explanation methods ({f['above_chance_ref']}) name{'s' if n == 1 else ''}"
    share = str(f["mig_share_ref"])
    mig = (
        "the code's MIG share is undefined (the perfect code scores 0)"
        if "nan" in share
        else f"the code reaches {share} of a perfect code's MIG"
    )
    seeds = (
        f"; across seeds ({f['agreement_line_ref']}) {f['subspace_phrase_ref']}" if "agreement_line_ref" in f else ""
    )
    return (
        f"At β = {float(f['beta_ref']):g}, {who} the dimension that carries a factor more often than chance "
        f"(best: {f['rec_best_method_ref']}, {float(f['rec_max_ref']):.2f} of the factors against "
        f"{float(f['rec_chance']):.2f} by chance); {mig}{seeds}."
    )
