"""Feature ablation of the latent dimensions (chapter 05_ablation).

:mod:`~.methods`: ablation effects, baselines, Captum cross-check, cumulative ablation;
:mod:`~.effects`: what an ablation changes in descriptors and audio metrics.
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

__all__ = [
    "BASELINES",
    "Metric",
    "ablate",
    "ablation_descriptor_effects",
    "ablation_effects",
    "ablation_matrix",
    "audio_ablation_effects",
    "audio_metrics",
    "baseline_values",
    "captum_ablation",
    "cumulative_ablation",
    "descriptor_effects",
    "descriptor_metric",
    "importance_order",
    "pitch_ranges",
    "reconstruction_errors",
    "summarise_ablation",
]
