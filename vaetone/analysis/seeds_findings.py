"""The quoted numbers of the across-seeds stage: matches, rank agreement, and each analysis's own counts.

:func:`vaetone.analysis.seeds_stage.summarise` gathers them into a result's ``findings``.

Chapters: 04_sensitivity, 05_ablation, 06_statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from vaetone.analysis import seeds as seeds_mod

if TYPE_CHECKING:
    from vaetone.analysis.seeds_stage import Reading

K_TOP = 3
"""How many dimensions count as "the most important" of a seed (at most the latent size)."""

ONE_SEED = "n/a (one seed)"
"""What the seeds' rank agreement reads when there is no other seed to compare with."""


def match_findings(across: seeds_mod.AcrossSeeds) -> dict:
    """n_seeds_used, seeds, and match_r_median: the median |r| of the matched pairs over the non-reference seeds.

    Returns:
        JSON-native dict; ``match_r_median`` is 1.0 when there is only the reference seed.
        Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    match_r = across.match_table().xs("abs_r", axis=1, level=1).drop(columns=across.seeds[0])
    return {
        "n_seeds_used": len(across.seeds),
        "seeds": [int(s) for s in across.seeds],
        "match_r_median": float(np.median(match_r.to_numpy())) if match_r.size else 1.0,
    }


def ranking_findings(across: seeds_mod.AcrossSeeds, reading: Reading) -> dict:
    """How stable the most important dimensions are over seeds, and how well the seeds' rankings agree.

    Args:
        across: the aligned seeds.
        reading: the column and its direction.
    Returns:
        JSON-native dict: k_top (int), top_stable ("z5 (2/2), z6 (1/2)": the reference dims among
        the ``k_top`` most important of at least one seed, with the number of such seeds),
        seed_rho (the mean Spearman ρ of the other seeds' rankings with the reference's, as "0.35",
        or "n/a (one seed)"), seed_rank_agreement ({str(seed): ρ}, other seeds), top_counts
        ({str(dim): count}, every reference dim). Chapters: 04_sensitivity, 05_ablation.
    """
    k_top = min(K_TOP, len(across.summary))
    n = len(across.seeds)
    in_top = seeds_mod.top_counts(across, reading.column, k=k_top, largest=reading.largest)
    agree = seeds_mod.rank_agreement(across, reading.column).drop(index=across.seeds[0])
    return {
        "k_top": int(k_top),
        "top_stable": ", ".join(f"z{d} ({c}/{n})" for d, c in in_top.items() if c > 0),
        "seed_rho": f"{agree.mean():.2f}" if len(agree) else ONE_SEED,
        "seed_rank_agreement": {str(int(s)): float(r) for s, r in agree.items()},
        "top_counts": {str(int(d)): int(c) for d, c in in_top.items()},
    }


def _mean_std(values: Sequence[float]) -> str:
    """ "mean ± std" of a list, one decimal each (population standard deviation, as numpy's default)."""
    return f"{np.mean(values):.1f} ± {np.std(values):.1f}"


def ablation_findings(across: seeds_mod.AcrossSeeds) -> dict:
    """How many dimensions are free to ablate in each seed (they cost less than 1 % of the unablated error).

    Returns:
        JSON-native dict: free_per_seed (list of ints, one per seed), free_seeds ("16.0 ± 0.0",
        mean ± standard deviation over seeds). Chapter: 05_ablation.
    """
    from vaetone.analysis.ablation.steps import FREE_SHARE  # the threshold chapter 05's own count uses

    free = [int((t["increase_mean"] < FREE_SHARE * t["base_mean"]).sum()) for t in across.tables]
    return {"free_per_seed": free, "free_seeds": _mean_std(free)}


def statistics_findings(across: seeds_mod.AcrossSeeds) -> dict:
    """The number of active units and the total KL of each seed, listed and as mean ± standard deviation.

    Returns:
        JSON-native dict: active_per_seed (list of ints), active_seeds ("16, 16"), active_mean_std
        ("16.0 ± 0.0"), kl_total_per_seed (list, nats per note), kl_seeds ("6.9 ± 0.5").
        Chapter: 06_statistics.
    """
    active = [int(t["active"].sum()) for t in across.tables]
    kl = [float(t["kl"].sum()) for t in across.tables]
    return {
        "active_per_seed": active,
        "active_seeds": ", ".join(map(str, active)),
        "active_mean_std": _mean_std(active),
        "kl_total_per_seed": kl,
        "kl_seeds": _mean_std(kl),
    }


EXTRA_FINDINGS: dict[str, Callable[[seeds_mod.AcrossSeeds], dict]] = {
    "ablation": ablation_findings,
    "statistics": statistics_findings,
}
"""The analysis-specific findings beyond :func:`match_findings` and :func:`ranking_findings`."""
