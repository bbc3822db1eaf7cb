"""β regimes: models trained across β and seeds, scored against the known factors and against each other.

The validity chapter (08) asks whether the explanations of chapters 04–07 hold. For every β of a sweep (and
β = 0, the plain autoencoder) and every training seed, a model is trained (each one cached in
its own run folder by its parameters, so that one more β trains only that one) and scored:

* on the factorial ``synthetic`` source (:func:`result` with ``source="synthetic"``): its
  reconstruction, active units and KL per dimension; MIG, DCI and SAP against the seven known
  factors (:mod:`vaetone.analysis.codes`); and how often each explanation method (sweeps,
  Jacobian, Sobol, ablation) points at the dimension that carries each factor
  (:mod:`vaetone.analysis.recovery`);
* on the book's data source (``source="data"``, ``cfg.corpus_betas``): reconstruction, active
  units and KL per dimension.

Across seeds, each β gets its agreement: matched axes, the subspace (linear-map R², CCA) and
the stable directions of known targets (:mod:`vaetone.analysis.subspace`).

Chapter: 08_validity.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from vaetone import store
from vaetone.analysis import codes, recovery, subspace_agreement
from vaetone.analysis.decoding import db_decoder
from vaetone.analysis.disentanglement import mig
from vaetone.analysis.ground_truth import known_factors
from vaetone.analysis.regimes_findings import regimes_findings
from vaetone.analysis.statistics import active_units
from vaetone.config import Config
from vaetone.errors import ConfigError
from vaetone.results import StageResult, cached, with_weights

SOURCES = ("synthetic", "data")
"""The two sweeps: the factorial synthetic source (known factors) and the book's data source."""

AUTOENCODER = "autoencoder"
DATA_TARGETS = ("pitch", "velocity")
"""Known attributes of every note of the data source whose latent directions are compared across seeds."""


def model_name(beta: float) -> str:
    """The name of a model of the sweep: "autoencoder" for β = 0, else "VAE β=<beta>". Chapter: 08_validity."""
    return AUTOENCODER if beta == 0 else f"VAE β={beta:g}"


def source_config(cfg: Config, source: str) -> Config:
    """``cfg`` on the sweep's source: the synthetic source, or ``cfg`` itself for the data source.

    Raises:
        ConfigError: ``source`` is not one of :data:`SOURCES`.
    Chapter: 08_validity.
    """
    if source not in SOURCES:
        raise ConfigError(f"regimes source {source!r} is not one of {list(SOURCES)}")
    return dataclasses.replace(cfg, dataset="synthetic") if source == "synthetic" else cfg


def sweep_betas(cfg: Config, source: str) -> list[float]:
    """The β values of a sweep, ascending: ``cfg.beta`` and ``cfg.betas`` (synthetic, always with 0, the
    autoencoder) or ``cfg.corpus_betas`` (data; with the autoencoder only where the list holds 0).

    Chapter: 08_validity.
    """
    betas = [0.0, *cfg.betas] if source == "synthetic" else cfg.corpus_betas
    return sorted({float(cfg.beta), *(float(b) for b in betas)})


def sweep_configs(cfg: Config, source: str) -> dict[tuple[float, int], Config]:
    """The configuration of every model of a sweep, keyed by (β, seed); seeds are cfg.seed, cfg.seed+1, ....

    Raises:
        ConfigError: fewer than 2 seeds (agreement across seeds needs at least 2).
    Chapter: 08_validity.
    """
    if cfg.n_seeds < 2:
        raise ConfigError(
            f"n_seeds={cfg.n_seeds}: the β regimes measure agreement across seeds, which needs at least 2; "
            "set n_seeds >= 2 (the default is 3)"
        )
    base = source_config(cfg, source)
    return {
        (b, s): dataclasses.replace(base, beta=b, seed=s)
        for b in sweep_betas(cfg, source)
        for s in range(cfg.seed, cfg.seed + cfg.n_seeds)
    }


# --------------------------------------------------------------------------- one model


@dataclass(frozen=True)
class ModelScoresResult(StageResult):
    """What one trained model of the sweep does: reconstruction, KL, active units and, with known factors, recovery.

    Tables: ``summary`` (one row: beta, seed, beta_calibrated, decoder_variance, valid_mse,
    valid_kl, active_units and, on the synthetic source, mig, mig_valid, dci_*, sap and
    recovery_<method>); ``kl`` (per dim: kl, nats, at the best epoch on the validation notes);
    ``recovery`` (synthetic only: one row per method, :func:`vaetone.analysis.recovery.method_recovery`).
    Findings: the summary row. Chapter: 08_validity.
    """

    stage: ClassVar[str] = "model_scores"
    version: ClassVar[int] = 1
    params: ClassVar[tuple[str, ...]] = ("n_anchors", "sweep_sigma", "sweep_steps", "validity_sobol_n", "null_n")


def _kl_per_dim(history: pd.DataFrame, best_epoch: int) -> pd.DataFrame:
    """KL per latent dimension (nats, validation notes) at the best epoch, indexed by dim."""
    row = history.loc[best_epoch]
    cols = sorted(c for c in history.columns if c.startswith("valid_kl_d"))
    return pd.DataFrame({"kl": [float(row[c]) for c in cols]}, index=pd.Index(range(len(cols)), name="dim"))


def _run_row(mcfg: Config, run, mu: np.ndarray) -> dict:
    """The reconstruction and KL numbers of one run (best epoch), with β on the calibrated scale."""
    from vaetone.model.summary import calibrated_beta, decoder_sigma

    best = run.history.loc[run.best_epoch]
    sigma = decoder_sigma(run.model)
    return {
        "beta": float(mcfg.beta),
        "seed": int(mcfg.seed),
        "decoder_variance": mcfg.decoder_variance,
        "beta_calibrated": float(
            calibrated_beta(mcfg.beta, mcfg.decoder_variance, float(best["valid_mse"]), sigma=sigma)
        ),
        "valid_mse": float(best["valid_mse"]),
        "valid_kl": float(best["valid_kl"]),
        "active_units": int(active_units(mu).sum()),
    }


def _truth_scores(mcfg: Config, run, feats, lat) -> tuple[dict, pd.DataFrame]:
    """MIG, DCI, SAP (all notes; MIG also on the validation notes alone) and each method's recovery."""
    factors, groups = known_factors(lat.meta), lat.meta["instrument_str"].to_numpy()
    valid = (lat.meta["split"] == "valid").to_numpy()
    scores = codes.code_scores(lat.mu, factors, groups, seed=mcfg.seed)
    decode = db_decoder(run.decode, feats.denormalise)
    test = lat.split("test").mu
    rec = recovery.method_recovery(decode, test, lat.mu, factors, mcfg, seed=mcfg.seed, sobol_n=mcfg.validity_sobol_n)
    row = {
        **{k: float(v) for k, v in scores.items()},
        "mig_valid": float(mig(lat.mu[valid], factors[valid])[0]),
        **{f"recovery_{m}": float(v) for m, v in zip(rec["method"], rec["recovery"])},
    }
    return row, rec


def model_scores(mcfg: Config, feats=None) -> ModelScoresResult:
    """The scores of the model trained with ``mcfg`` (trained first if need be), cached in its run folder.

    Args:
        mcfg: one configuration of :func:`sweep_configs`.
        feats: its features (default: loaded).
    Returns:
        A :class:`ModelScoresResult`. Chapter: 08_validity.
    """
    from vaetone.model import runs
    from vaetone.spectral.features import load_features

    def compute() -> ModelScoresResult:
        f = load_features(mcfg) if feats is None else feats
        run = runs.trained_model(mcfg, f, progress=False)
        lat = runs.latents(mcfg, run, f)
        row, tables = _run_row(mcfg, run, lat.mu), {"kl": _kl_per_dim(run.history, run.best_epoch)}
        if mcfg.dataset == "synthetic":
            truth, tables["recovery"] = _truth_scores(mcfg, run, f, lat)
            row.update(truth)
        tables["summary"] = pd.DataFrame([row])
        return ModelScoresResult(tables, row)

    folder = store.run_dir(mcfg)
    return cached(ModelScoresResult, mcfg, compute, folder=folder, upstream=store.key("train", mcfg))


# --------------------------------------------------------------------------- the sweep


@dataclass(frozen=True)
class RegimesResult(StageResult):
    """A β sweep of one source: every model's scores, the curves against β, seed agreement and recovery.

    Tables: ``models`` (one row per (β, seed), the columns of :class:`ModelScoresResult`'s
    summary plus ``model``); ``curves`` (per β: the median over seeds of every score, with
    ``<score>_low``/``_high`` the range over seeds, and the seed agreement: ``matched_r``,
    ``subspace_r2``, ``cca_mean``, ``rank_rho``); ``kl_profile`` (β × rank: the KL of the
    k-th most informative dimension, median over seeds); ``agreement`` (per β and other seed:
    the pairs table of :func:`vaetone.analysis.subspace_agreement.seed_agreement`); ``directions``
    (per β, target and seed: the stable directions); ``intervals`` (per β: instrument-level
    bootstrap intervals of the agreement). On the synthetic source also ``recovery``
    (:func:`vaetone.analysis.recovery.recovery_table` of the VAE at ``cfg.beta``, at the best β
    and the autoencoder) and ``references`` (the ceiling and floors of every score,
    :func:`vaetone.analysis.codes.reference_scores`).
    Findings: see :func:`regimes_findings`. Chapter: 08_validity.
    """

    stage: ClassVar[str] = "regimes"
    version: ClassVar[int] = 1
    params: ClassVar[tuple[str, ...]] = (
        "betas",
        "corpus_betas",
        "n_seeds",
        "n_anchors",
        "sweep_sigma",
        "sweep_steps",
        "validity_sobol_n",
        "null_n",
        "bootstrap_n",
    )


SCORES = (
    "beta_calibrated",
    "valid_mse",
    "valid_kl",
    "active_units",
    "mig",
    "dci_disentanglement",
    "dci_completeness",
    "dci_informativeness",
    "sap",
)


AGREEMENT = {"matched_r_median": "matched_r", "subspace_r2": "subspace_r2", "cca_mean": "cca_mean", "rho": "rank_rho"}
"""Seed-agreement columns of the pairs of :func:`vaetone.analysis.subspace_agreement.seed_agreement`, by curve name."""

CURVE_COLUMNS = ["model", *SCORES, *AGREEMENT.values()]
"""The columns of the curves that chapter 08 shows (medians over seeds), beside :func:`recovery_columns`."""


def recovery_columns(curves: pd.DataFrame) -> list[str]:
    """The median recovery of each method in a curves table (no ranges), synthetic source only. Chapter: 08_validity."""
    return [c for c in curves.columns if c.startswith("recovery_") and not c.endswith(("_low", "_high"))]


def _curves(models: pd.DataFrame, agreement: pd.DataFrame) -> pd.DataFrame:
    """Per β: median, low and high over seeds of every score column, joined with the seed agreement."""
    cols = [c for c in models.columns if c in SCORES or c.startswith("recovery_")]
    grouped = models.groupby("beta")[cols]
    curves = grouped.median().join(grouped.min().add_suffix("_low")).join(grouped.max().add_suffix("_high"))
    present = [c for c in AGREEMENT if c in agreement]
    curves = curves.join(agreement.groupby("beta")[present].median().rename(columns=AGREEMENT))
    curves.insert(0, "model", [model_name(b) for b in curves.index])
    return curves


def _kl_profile(kls: dict[tuple[float, int], np.ndarray]) -> pd.DataFrame:
    """β × rank: the KL (nats) of the k-th most informative dimension, median over seeds."""
    rows = {}
    for beta in sorted({b for b, _ in kls}):
        profiles = np.stack([np.sort(v)[::-1] for (b, _), v in kls.items() if b == beta])
        rows[beta] = np.median(profiles, axis=0)
    frame = pd.DataFrame(rows).T
    frame.index.name, frame.columns.name = "beta", "rank"
    return frame


def _targets(meta: pd.DataFrame, source: str) -> pd.DataFrame:
    """The known targets whose latent directions are compared across seeds: the factors, or pitch and velocity."""
    if source == "synthetic":
        return known_factors(meta).rename(columns=lambda c: c.removeprefix("factor_"))
    return meta[list(DATA_TARGETS)].astype(float)


def _agreement(cfg: Config, source: str, lats: dict, kls: dict) -> tuple[dict[str, pd.DataFrame], dict]:
    """Seed agreement of every β: pairs, directions, intervals (tables with a ``beta`` column) and findings by β."""
    parts: dict[str, list[pd.DataFrame]] = {"pairs": [], "directions": [], "intervals": [], "ranks": []}
    found = {}
    for beta in sorted({b for b, _ in lats}):
        seeds = sorted(s for b, s in lats if b == beta)
        ls = [lats[(beta, s)] for s in seeds]
        meta = ls[0].meta
        train, test = (meta["split"] == "train").to_numpy(), (meta["split"] == "test").to_numpy()
        orders = [np.argsort(-kls[(beta, s)], kind="stable") for s in seeds]  # by KL, in each seed's own dims
        tables, found[beta] = subspace_agreement.seed_agreement(
            [lt.mu for lt in ls],
            meta["instrument_str"].to_numpy(),
            _targets(meta, source),
            train,
            test,
            orders=orders,
            n_null=cfg.null_n,
            n_boot=cfg.bootstrap_n,
            seed=cfg.seed,
        )
        for name in parts:
            parts[name].append(tables[name].assign(beta=beta))
    ranks = pd.concat(parts.pop("ranks"), ignore_index=True)
    pairs = pd.concat(parts.pop("pairs"), ignore_index=True)
    parts["pairs"] = [pairs.merge(ranks, on=["beta", "seed"], how="left")]
    return {k: pd.concat(v, ignore_index=True) for k, v in parts.items()}, found


def best_beta(models: pd.DataFrame) -> float:
    """The β > 0 whose models have the highest median MIG on the validation notes (chosen on valid, not test).

    Chapter: 08_validity.
    """
    vae = models[models["beta"] > 0]
    return float(vae.groupby("beta")["mig_valid"].median().idxmax())


def _recovery(models: dict, cfg: Config, best: float) -> pd.DataFrame:
    """The headline table: method × model recovery with intervals over seeds and chance."""
    rows = []
    chosen = {model_name(0.0): 0.0, f"VAE β={cfg.beta:g}": float(cfg.beta), f"VAE best β={best:g}": best}
    for name, beta in chosen.items():
        for (b, seed), m in models.items():
            if b == beta:
                rows.append(m.table("recovery").assign(model=name, seed=seed))
    return recovery.recovery_table(pd.concat(rows, ignore_index=True), n_null=cfg.null_n, seed=cfg.seed)


def _sweep(configs: dict, progress: bool, source: str):
    """Train (or load) and score every model of a sweep: (the sweep's features, {(β, seed): scores})."""
    from vaetone.progress import tqdm
    from vaetone.spectral.features import load_features

    feats = load_features(next(iter(configs.values())))
    bar = tqdm(configs.items(), desc=f"β sweep ({source})", unit="model", disable=not progress)
    return feats, {key: model_scores(mcfg, feats) for key, mcfg in bar}


def _latents(configs: dict, feats) -> dict:
    """The latents of every (trained) model of a sweep, {(β, seed): Latents}."""
    from vaetone.model import runs

    return {key: runs.latents(c, runs.trained_model(c, feats, progress=False), feats) for key, c in configs.items()}


def _data_findings(mcfg: Config, meta: pd.DataFrame, source: str) -> dict:
    """The notes a sweep was trained and scored on: counts, and the dataset's name."""
    return {
        "source_name": mcfg.dataset,
        "n_notes": int(len(meta)),
        "n_instruments": int(meta["instrument_str"].nunique()),
        "n_factors": int(known_factors(meta).shape[1]) if source == "synthetic" else 0,
    }


def _upstream(configs: dict[tuple[float, int], Config]) -> str:
    """A key of every model of a sweep, with its weights: a retrained model invalidates the aggregate."""
    keys = [with_weights(store.run_dir(c), store.key("train", c)) for c in configs.values()]
    return hashlib.sha256("|".join(keys).encode()).hexdigest()[:16]


def result(cfg: Config, source: str = "synthetic", progress: bool = True) -> RegimesResult:
    """The β sweep of ``source`` ("synthetic" or "data"): every model trained, scored and compared, computed once.

    Args:
        cfg: the configuration; the sweep runs ``cfg.betas`` (synthetic) or ``cfg.corpus_betas``
            (data), with β = 0 and ``cfg.beta`` beside, each over ``cfg.n_seeds`` seeds.
        source: "synthetic" (known factors) or "data" (``cfg.dataset``).
        progress: show a bar over the models.
    Returns:
        A :class:`RegimesResult`, cached in the folder of the sweep's first model (the
        autoencoder of seed ``cfg.seed``); each model's scores are cached in its own run folder.
    Chapter: 08_validity.
    """
    configs = sweep_configs(cfg, source)
    feats, scores = _sweep(configs, progress, source)

    def compute() -> RegimesResult:
        lats = _latents(configs, feats)
        kls = {key: s.table("kl")["kl"].to_numpy() for key, s in scores.items()}
        models = pd.concat([m.table("summary") for m in scores.values()], ignore_index=True)
        models.insert(0, "model", [model_name(b) for b in models["beta"]])
        agree, by_beta = _agreement(cfg, source, lats, kls)
        tables = {
            "models": models,
            "curves": _curves(models, agree["pairs"]),
            "kl_profile": _kl_profile(kls),
            "agreement": agree["pairs"],
            "directions": agree["directions"],
            "intervals": agree["intervals"],
        }
        best, first_key = None, next(iter(configs))
        meta = lats[first_key].meta
        if source == "synthetic":
            best = best_beta(models)
            tables["recovery"] = _recovery(scores, cfg, best)
            tables["references"] = codes.reference_scores(
                known_factors(meta), meta["instrument_str"].to_numpy(), seed=cfg.seed
            )
        findings = regimes_findings(cfg, source, tables, by_beta, best)
        findings.update(_data_findings(configs[first_key], meta, source))
        return RegimesResult(tables, findings)

    first = next(iter(configs.values()))
    return cached(RegimesResult, cfg, compute, folder=store.run_dir(first), upstream=_upstream(configs))
