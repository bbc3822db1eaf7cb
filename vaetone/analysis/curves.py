"""The training run in words: how the curves moved, the KL schedule, the KL per dimension (chapter 03).

Every phrase is built from the run's history, so a caption that states a direction states the
one the curve took.

Chapter: 03_training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def trend_phrase(values: pd.Series, unit: str = "nats per note", digits: int = 1) -> str:
    """How a curve moves: "rises from 0.1 (epoch 1) to 5.1 nats per note (epoch 3)", with its turn if it has one.

    The values are compared as shown (rounded to ``digits``). A curve whose highest (or lowest)
    point lies strictly inside and beyond both ends is described through that turn: "rises from
    2.0 (epoch 1) to a peak of 5.0 (epoch 2), then falls to 1.9 nats per note (epoch 3)"; the
    larger of a peak and a trough is the one named.

    Args:
        values: one value per epoch, indexed by epoch.
        unit: the values' unit; digits: decimals shown.
    Returns:
        "rises ...", "falls ...", "stays at ..." or, for one epoch, "is ...". Chapter: 03_training.
    """
    epochs, v = list(values.index), np.round(values.to_numpy(dtype=float), digits)
    show = [f"{x:.{digits}f}" for x in v]
    if len(v) == 1:
        return f"is {show[0]} {unit} (epoch {epochs[0]})"
    hi, lo = int(np.argmax(v)), int(np.argmin(v))
    peak = v[hi] - max(v[0], v[-1]) if 0 < hi < len(v) - 1 else 0.0
    trough = min(v[0], v[-1]) - v[lo] if 0 < lo < len(v) - 1 else 0.0
    if max(peak, trough) > 0:
        k, (up, down, name) = (hi, ("rises", "falls", "peak")) if peak >= trough else (lo, ("falls", "rises", "low"))
        return (
            f"{up} from {show[0]} (epoch {epochs[0]}) to a {name} of {show[k]} (epoch {epochs[k]}), "
            f"then {down} to {show[-1]} {unit} (epoch {epochs[-1]})"
        )
    if v[0] == v[-1]:
        return f"stays at {show[0]} {unit} (epochs {epochs[0]} to {epochs[-1]})"
    word = "rises" if v[-1] > v[0] else "falls"
    return f"{word} from {show[0]} (epoch {epochs[0]}) to {show[-1]} {unit} (epoch {epochs[-1]})"


def kl_reading(values: pd.Series, digits: int = 1) -> str:
    """What the net change of the validation KL means, from its first to its last epoch (rounded to ``digits``).

    Args: values: the validation KL per epoch (nats per note). Returns: the reading. Chapter: 03_training.
    """
    first, last = (round(float(values.iloc[i]), digits) for i in (0, -1))
    if last < first:
        return "Over training the posteriors moved closer to the prior: the latent code carries less information"
    if last > first:
        return "Over training the posteriors moved away from the prior: the latent code carries more information"
    return "The information the latent code carries ended where it started"


def warmup_phrase(kl_warmup_epochs: int) -> str:
    """How the KL weight is scheduled, e.g. "is warmed up linearly from 0 over the first 5 epochs".

    Chapter: 03_training.
    """
    if kl_warmup_epochs == 0:
        return "is not warmed up (it is full from the first batch)"
    span = "epoch" if kl_warmup_epochs == 1 else f"{kl_warmup_epochs} epochs"
    return f"is warmed up linearly from 0 over the first {span}"


def history_findings(history: pd.DataFrame, kl_warmup_epochs: int) -> dict:
    """The phrases of the training-curve caption: the KL schedule and how the validation terms moved.

    Args:
        history: the run's history (indexed by epoch; columns ``valid_kl``, ``valid_recon``, nats per note).
        kl_warmup_epochs: the warm-up length of the KL weight.
    Returns:
        ``{"kl_warmup", "kl_trend", "kl_reading", "recon_trend"}`` (phrases). Chapter: 03_training.
    """
    return {
        "kl_warmup": warmup_phrase(kl_warmup_epochs),
        "kl_trend": trend_phrase(history["valid_kl"]),
        "kl_reading": kl_reading(history["valid_kl"]),
        "recon_trend": trend_phrase(history["valid_recon"]),
    }


def kl_per_dim(history: pd.DataFrame, epoch: int) -> pd.DataFrame:
    """The validation KL of each latent dimension at one epoch.

    Args:
        history: the run's history (columns ``valid_kl_d00``, ...); epoch: e.g. the kept epoch.
    Returns:
        One row per dimension (index ``dimension``), column ``kl_nats`` (nats per note). Chapter: 03_training.
    """
    kl = history.loc[epoch].filter(like="valid_kl_d")
    dims = pd.Index([int(c.removeprefix("valid_kl_d")) for c in kl.index], name="dimension")
    return pd.DataFrame({"kl_nats": kl.to_numpy(dtype=float)}, index=dims)


def training_findings(run, n_train: int, kl_warmup_epochs: int) -> dict:
    """The quoted numbers of a training run: its summary, the train size, latent size and curve phrases.

    Args:
        run: a ``vaetone.model.runs.Run``; n_train: notes in the train split; kl_warmup_epochs: the schedule.
    Returns:
        ``vaetone.model.runs.run_summary(run)`` with ``n_train``, ``latent_dim`` and :func:`history_findings`.
    Chapter: 03_training.
    """
    from vaetone.model.runs import run_summary

    return {
        **run_summary(run),
        "n_train": int(n_train),
        "latent_dim": int(run.model.latent_dim),
        **history_findings(run.history, kl_warmup_epochs),
    }
