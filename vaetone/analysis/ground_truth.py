"""The ground-truth stage: a model trained on notes with known factors, scored and checked against the methods.

:func:`result` trains (or loads) the model of a configuration on the ``synthetic`` source,
whose notes come from seven known factors, and asks two questions of it: how disentangled
is its code (MIG and DCI on all its notes, DCI's regressors scored on instruments they were not
trained on; :mod:`vaetone.analysis.disentanglement`), and do
the sensitivity sweeps and gradients of chapter 04 (no Sobol indices) and the zero-baseline
ablation of chapter 05 single out the dimensions that carry the factors
(:func:`~vaetone.analysis.disentanglement.ground_truth_check`)? :func:`compute_ground_truth`
does the scoring from arrays and importance orders, with no run. It is re-exported as
``vaetone.analysis.disentanglement.result``.

Chapter: 06_statistics.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from vaetone import store
from vaetone.analysis import ablation, sensitivity
from vaetone.analysis.decoding import Decoder, Describe, db_decoder
from vaetone.analysis.disentanglement import carriers_singled_out, completeness_text, dci, ground_truth_check, mig
from vaetone.analysis.statistics import active_units
from vaetone.config import Config
from vaetone.errors import DataError
from vaetone.results import StageResult, cached

FACTOR_PREFIX = "factor_"
"""Metadata columns of the synthetic source that hold its generative factors."""


@dataclass(frozen=True)
class GroundTruthResult(StageResult):
    """How the latent code of a model trained on known factors lines up with them.

    Tables (factor names without the ``factor_`` prefix): ``mig`` (indexed by factor:
    entropy, top_dim, top_mi, second_dim, second_mi, gap; see
    :func:`~vaetone.analysis.disentanglement.mig`), ``dci_importance`` (dim × factor
    importance of gradient-boosted trees, mean over the instrument folds), ``dci_factors``
    (indexed by factor: completeness, NaN where no dimension predicts the factor; r2, the
    out-of-fold R² on held-out instruments), ``check`` (indexed by factor: carrier, mi_gap,
    dci_dim, sensitivity_rank, ablation_rank, descriptor, oat_dim, oat_agrees; see
    :func:`~vaetone.analysis.disentanglement.ground_truth_check`).
    Findings: see :func:`ground_truth_findings`.
    Chapter: 06_statistics.
    """

    stage: ClassVar[str] = "ground_truth"
    version: ClassVar[int] = 3
    params: ClassVar[tuple[str, ...]] = ("n_anchors", "sweep_sigma", "sweep_steps")


def synthetic_config(cfg: Config) -> Config:
    """``cfg`` on the synthetic source: the same data filters, features, model and training. Chapter: 06_statistics."""
    return dataclasses.replace(cfg, dataset="synthetic")


def known_factors(meta: pd.DataFrame) -> pd.DataFrame:
    """The generative factors of the notes: the ``factor_*`` columns of their metadata.

    Raises:
        DataError: there are none (the notes are not from the synthetic source).
    Chapter: 06_statistics.
    """
    factors = meta[[c for c in meta.columns if c.startswith(FACTOR_PREFIX)]]
    if factors.shape[1] == 0:
        raise DataError(
            f"the notes have no {FACTOR_PREFIX}* columns (they have {list(meta.columns)}); "
            "the ground truth needs notes of the synthetic source (dataset='synthetic')"
        )
    return factors


def method_orders(
    decode: Decoder, mu, ref, cfg: Config, seed: int | None = None, describe: Describe | None = None
) -> tuple[list[int], list[int], pd.DataFrame]:
    """Importance orders of the dimensions by sensitivity and by ablation, and the descriptor moves of the sweeps.

    Args:
        decode: latent (n, D) → dB output (n, [1,] n_mels, frames) (:func:`~vaetone.analysis.decoding.db_decoder`).
        mu: (n, D) posterior means of the notes (anchors from ``cfg.n_anchors`` of them; ablated).
        ref: (n, [1,] n_mels, frames) dB log-mel of the same notes (the ablation's reference).
        cfg: ``n_anchors``, ``sweep_sigma``, ``sweep_steps`` and the feature layout.
        seed: seed of the anchor choice (default ``cfg.seed``).
        describe: descriptor function (default :func:`~vaetone.analysis.decoding.default_describe`).
    Returns:
        (dimensions by mean sensitivity rank of sweeps and gradients, no Sobol indices; dimensions
        by the mean log-mel MSE increase when each is set to 0, most important first;
        dims × descriptors :func:`~vaetone.analysis.sensitivity.normalised_moves`). Chapter: 06_statistics.
    """
    sens = sensitivity.analysis(decode, mu, cfg, seed=seed, sobol=False, describe=describe)
    moves = sensitivity.normalised_moves(sens.sweeps, decode, mu, cfg, describe)
    effects = ablation.ablation_effects(decode, mu, ref)
    return [int(d) for d in sens.ranking.index], [int(d) for d in ablation.importance_order(effects)], moves


def ground_truth_findings(
    score: float, scores: dict, found: dict, mu: np.ndarray, n_factors: int, dci_info: dict
) -> dict:
    """The numbers and phrases the chapter quotes about the ground truth.

    Args:
        score: MIG; scores: DCI's {"disentanglement", "completeness", "informativeness"} (completeness
        NaN when undefined for every factor); found: :func:`~vaetone.analysis.disentanglement.carriers_singled_out`;
        mu: (n, D) the posterior means that were scored; n_factors: the number of factors;
        dci_info: {"completeness": {factor: value or NaN}, "n_folds", "n_instruments"}.
    Returns:
        {"mig", "dci_disentanglement", "dci_completeness", "dci_informativeness": float;
         "dci_completeness_text": "0.34" or "0.34 (over 6 of 7 factors; undefined for ...)";
         "n_complete_defined": factors with a defined completeness; "dci_split": "5 folds of the
         22 instruments (each regressor scored on instruments it was not trained on)";
         "n_syn_instruments"; "scores_line": "MIG = 0.015; DCI: disentanglement 0.349, completeness ...";
         "n_syn": notes; "n_factors"; "n_dims_syn"; "n_active_syn": active units of those notes;
         "syn_line": "synthetic: 176 notes of 22 instruments, 7 factors; 16 of 16 units active";
         "n_carriers": distinct carrier dimensions k; "carrier_dims": "6 distinct dimensions"
         (singular for one); "carriers": "z0, z1, ..."; "carrier_list": list of ints;
         "in_top_sens", "in_top_abl": carriers among the first k by sensitivity, by ablation;
         "in_top_sens_verb": "3 are" / "1 is"; "oat_checked": factors with a descriptor;
         "oat_agree_n": of these, where the descriptor sweeps name the carrier; "oat_agree": "0 of 5"}.
    Chapter: 06_statistics.
    """
    k, sens = found["k"], found["in_top_sensitivity"]
    n_active, n_inst = int(active_units(mu).sum()), int(dci_info["n_instruments"])
    complete = completeness_text(dci_info["completeness"], scores["completeness"])
    dci_text = (
        f"disentanglement {scores['disentanglement']:.3f}, completeness {complete}, "
        f"informativeness {scores['informativeness']:.3f}"
    )
    return {
        "mig": float(score),
        **{f"dci_{name}": float(v) for name, v in scores.items()},
        "dci_completeness_text": complete,
        "n_complete_defined": int(np.isfinite(list(dci_info["completeness"].values())).sum()),
        "dci_split": (
            f"{dci_info['n_folds']} folds of the {n_inst} instruments (each regressor scored on instruments "
            "it was not trained on)"
        ),
        "n_syn_instruments": n_inst,
        "scores_line": f"MIG = {score:.3f}; DCI: {dci_text}",
        "n_syn": int(len(mu)),
        "n_factors": int(n_factors),
        "n_dims_syn": int(mu.shape[1]),
        "n_active_syn": n_active,
        "syn_line": (
            f"synthetic: {len(mu)} notes of {n_inst} instruments, {n_factors} factors; "
            f"{n_active} of {mu.shape[1]} units active"
        ),
        "n_carriers": k,
        "carrier_dims": f"{k} distinct dimension{'s' if k != 1 else ''}",
        "carriers": ", ".join(f"z{d}" for d in found["carriers"]),
        "carrier_list": [int(d) for d in found["carriers"]],
        "in_top_sens": sens,
        "in_top_sens_verb": f"{sens} {'is' if sens == 1 else 'are'}",
        "in_top_abl": found["in_top_ablation"],
        "oat_checked": found["oat_checked"],
        "oat_agree_n": found["oat_agree"],
        "oat_agree": f"{found['oat_agree']} of {found['oat_checked']}",
    }


def _short(name) -> str:
    """A factor's name without the ``factor_`` prefix."""
    return str(name).removeprefix(FACTOR_PREFIX)


def _without_na(check: pd.DataFrame) -> pd.DataFrame:
    """The check table without pd.NA, which a result table (stored as JSON) cannot hold.

    ``dci_dim`` and ``oat_dim`` become float (NaN where no dimension predicts the factor, where
    no descriptor follows it), ``oat_agrees`` an object column of True, False or None; all load
    back as they were saved.
    """
    agrees = [None if pd.isna(v) else bool(v) for v in check["oat_agrees"]]
    return check.assign(
        dci_dim=check["dci_dim"].astype("float64"),
        oat_dim=check["oat_dim"].astype("float64"),
        oat_agrees=pd.Series(agrees, index=check.index, dtype=object),
    )


def compute_ground_truth(
    mu,
    factors: pd.DataFrame,
    groups,
    sensitivity_order: Sequence[int],
    ablation_order: Sequence[int],
    moves: pd.DataFrame | None = None,
    seed: int = 0,
) -> GroundTruthResult:
    """Score a latent code against known factors and check where the methods rank the factors' carriers.

    Args:
        mu: (n, D) posterior means of the notes (all the synthetic notes).
        factors: (n, K) their generative factors (``factor_*`` columns, :func:`known_factors`).
        groups: (n,) the instrument of each note: DCI's folds keep each instrument on one side.
        sensitivity_order, ablation_order: dimensions most important first (:func:`method_orders`).
        moves: dims × descriptors sweep moves (:func:`method_orders`), optional.
        seed: seed of DCI's instrument folds and trees.
    Returns:
        A :class:`GroundTruthResult`. Chapter: 06_statistics.
    """
    mu = np.asarray(mu)
    score, mig_table = mig(mu, factors)
    scores, importance = dci(mu, factors, groups, seed=seed)
    check = ground_truth_check(mig_table, importance, sensitivity_order, ablation_order, moves)
    found = carriers_singled_out(check)
    per_factor = pd.DataFrame({"completeness": importance.attrs["completeness"], "r2": importance.attrs["r2"]})
    info = {
        "completeness": importance.attrs["completeness"],
        "n_folds": importance.attrs["n_folds"],
        "n_instruments": int(pd.Series(np.asarray(groups)).nunique()),
    }
    importance.attrs.clear()
    tables = {
        "mig": mig_table.set_index("factor").rename(index=_short),
        "dci_importance": importance.rename(columns=_short).rename_axis(columns="factor"),
        "dci_factors": per_factor.rename(index=_short).rename_axis(index="factor"),
        "check": _without_na(check).rename(index=_short),
    }
    findings = {
        **ground_truth_findings(score, scores, found, mu, factors.shape[1], info),
        "sensitivity_order": [int(d) for d in sensitivity_order],
        "ablation_order": [int(d) for d in ablation_order],
    }
    return GroundTruthResult(tables, findings)


def result(cfg: Config) -> GroundTruthResult:
    """The ground truth of ``cfg``: its model trained on the synthetic source, scored and checked, computed once.

    MIG and DCI use all synthetic notes (DCI in folds by instrument); the sweeps start from ``cfg.n_anchors`` test notes
    (and the prior mean) and the ablation uses the test notes, as in chapters 04 and 05.

    Args:
        cfg: the configuration; it is used with ``dataset="synthetic"`` (:func:`synthetic_config`).
    Returns:
        A :class:`GroundTruthResult`, cached in the synthetic run's folder,
        ``<run folder>/results/ground_truth-<key>/``.
    Chapter: 06_statistics.
    """
    from vaetone.model import runs
    from vaetone.spectral.features import load_features

    syn_cfg = synthetic_config(cfg)

    def compute() -> GroundTruthResult:
        feats = load_features(syn_cfg)
        run = runs.trained_model(syn_cfg, feats)
        syn = runs.latents(syn_cfg, run, feats)
        test, rows = syn.split("test"), feats.rows("test")
        decode = db_decoder(run.decode, feats.denormalise)
        orders = method_orders(decode, test.mu, feats.logmel[rows], syn_cfg, seed=syn_cfg.seed)
        groups = syn.meta["instrument_str"].to_numpy()
        return compute_ground_truth(syn.mu, known_factors(syn.meta), groups, *orders, seed=syn_cfg.seed)

    folder, upstream = store.run_dir(syn_cfg), store.key("train", syn_cfg)
    return cached(GroundTruthResult, syn_cfg, compute, folder=folder, upstream=upstream)
