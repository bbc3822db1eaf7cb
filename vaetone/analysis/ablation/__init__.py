"""Feature ablation of the latent dimensions (chapter 05_ablation).

:mod:`~.methods`: ablation effects, baselines, Captum cross-check, cumulative ablation;
:mod:`~.effects`: what an ablation changes in descriptors and audio metrics;
:mod:`~.stage`: the stage result, ``result(cfg) -> AblationResult``, every number chapter 05 quotes.
"""

from vaetone.analysis.ablation.effects import (
    ablation_descriptor_effects,
    audio_ablation_effects,
    audio_metrics,
    descriptor_effects,
    descriptor_metric,
)
from vaetone.analysis.ablation.methods import (
    BASELINES,
    Metric,
    ablate,
    ablation_effects,
    ablation_matrix,
    baseline_values,
    captum_ablation,
    cumulative_ablation,
    importance_order,
    pitch_ranges,
    reconstruction_errors,
    summarise_ablation,
)
from vaetone.analysis.ablation.stage import AblationInputs, AblationResult, compute_ablation, result

__all__ = [
    "BASELINES",
    "AblationInputs",
    "AblationResult",
    "Metric",
    "ablate",
    "ablation_descriptor_effects",
    "ablation_effects",
    "ablation_matrix",
    "audio_ablation_effects",
    "audio_metrics",
    "baseline_values",
    "captum_ablation",
    "compute_ablation",
    "cumulative_ablation",
    "descriptor_effects",
    "descriptor_metric",
    "importance_order",
    "pitch_ranges",
    "reconstruction_errors",
    "result",
    "summarise_ablation",
]
