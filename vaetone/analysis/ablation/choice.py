"""What the ablation stage chooses, chosen on the validation notes: the order, the free dimensions, k90, the KL order.

Nothing chosen here looks at a test note. The test notes then score these choices
(:mod:`~vaetone.analysis.ablation.scores`), so that no number of chapter 05 is both selected and
measured on the same notes. The choices cost little: one zero-baseline log-mel ablation of the
validation notes (D + 1 decodings) and one cumulative curve (D + 1 more); no audio.

Chapter: 05_ablation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaetone.analysis.ablation.methods import ablation_effects, importance_order, kept_errors, summarise_ablation
from vaetone.analysis.ablation.steps import FREE_SHARE, GROUP, RECOVERED_SHARE, AblationInputs
from vaetone.analysis.metrics import logmel_mse


@dataclass(frozen=True)
class Choice:
    """The choices of the ablation stage, made on the validation notes.

    Attributes:
        order: (D,) dimensions by their zero-baseline log-mel ablation effect, costliest first.
        kl: (D,) dimensions by their KL to the prior, largest first.
        free: dimensions whose ablation costs less than :data:`FREE_SHARE` of the unablated error, in ``order``.
        k90: the fewest dimensions, kept in ``order``, that recover :data:`RECOVERED_SHARE` of the
            error reduction from k = 0 to k = D.
        overall: the zero-baseline effects indexed by dim: base_mean, increase_mean, increase_sem,
            relative_increase (dB², as the test table ``zero_overall``).
        curve: the mean error (dB²) with the first k dimensions of ``order`` kept, indexed by k = 0..D.
        n_notes, n_instruments: the validation notes and their instruments.
    Chapter: 05_ablation.
    """

    order: np.ndarray
    kl: np.ndarray
    free: list[int]
    k90: int
    overall: pd.DataFrame
    curve: pd.Series
    n_notes: int
    n_instruments: int


def recovered_k(curve: pd.Series, share: float = RECOVERED_SHARE) -> int:
    """The smallest k whose error has come down by ``share`` of the whole reduction from k = 0 to k = D.

    Args:
        curve: mean error indexed by k = 0..D (the first k dimensions of an order kept).
        share: the share of ``curve[0] − curve[D]`` to recover, in (0, 1].
    Returns:
        k (0 when the curve does not come down at all). Chapter: 05_ablation.
    """
    target = curve.iloc[0] - share * (curve.iloc[0] - curve.iloc[-1])
    return int((curve <= target).idxmax())


def free_dimensions(overall: pd.DataFrame, order, share: float = FREE_SHARE) -> list[int]:
    """The dimensions whose ablation costs less than ``share`` of the unablated error, in ``order``.

    Args:
        overall: zero-baseline effects indexed by dim with ``base_mean`` and ``increase_mean`` (dB²).
        order: the dimensions, costliest first.
        share: the threshold as a share of the unablated error.
    Returns:
        list of dims. Chapter: 05_ablation.
    """
    return [int(d) for d in order if overall.loc[d, "increase_mean"] < share * overall.loc[d, "base_mean"]]


def choose_on_valid(inp: AblationInputs) -> Choice:
    """Every choice of the ablation stage, from the validation notes alone.

    Args:
        inp: the decoder and the validation notes' latents, log-mels and metadata.
    Returns:
        :class:`Choice`. Chapter: 05_ablation.
    """
    from vaetone.analysis.statistics import kl_order

    effects = ablation_effects(
        inp.decode, inp.valid_mu, inp.valid_ref, {"logmel_mse": logmel_mse}, baseline="zero", index=inp.valid_meta.index
    )
    overall = summarise_ablation(effects).query("grouping == 'overall'").set_index("dim")
    overall = overall[["base_mean", "increase_mean", "increase_sem", "relative_increase"]]
    order = importance_order(effects)
    curve = kept_errors(inp.decode, inp.valid_mu, inp.valid_ref, order).mean()
    return Choice(
        order=order,
        kl=kl_order(inp.valid_mu, inp.valid_std),
        free=free_dimensions(overall, order),
        k90=recovered_k(curve),
        overall=overall,
        curve=curve,
        n_notes=len(inp.valid_meta),
        n_instruments=int(inp.valid_meta[GROUP].nunique()),
    )


def choice_findings(choice: Choice) -> dict:
    """The quoted numbers of the choices: what was chosen, on how many validation notes.

    Args:
        choice: from :func:`choose_on_valid`.
    Returns:
        {n_valid, n_valid_instruments, n_free, free_pct (the threshold, % of the unablated error),
        free_dims ("z3, z7" or "none"), k90, recovered_pct (its share, %), kl_order (list)}.
        Chapter: 05_ablation.
    """
    return {
        "n_valid": choice.n_notes,
        "n_valid_instruments": choice.n_instruments,
        "n_free": len(choice.free),
        "free_pct": 100 * FREE_SHARE,
        "free_dims": ", ".join(f"z{d}" for d in choice.free) or "none",
        "k90": choice.k90,
        "recovered_pct": 100 * RECOVERED_SHARE,
        "kl_order": [int(d) for d in choice.kl],
    }
