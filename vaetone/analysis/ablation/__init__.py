"""Feature ablation of the latent dimensions (chapter 05_ablation).

:mod:`~.methods`: ablation effects, baselines, Captum cross-check, cumulative ablation;
:mod:`~.effects`: what an ablation changes in the descriptors, and the name of each dimension;
:mod:`~.choice`: what the stage chooses, on the validation notes (order, free dimensions, k90);
:mod:`~.scores`: the test scores of those choices, with instrument-level intervals;
:mod:`~.reading`: what the chapter reads off the results (its answer, heatmaps, listening grid);
:mod:`~.stage`: the stage result, ``result(cfg) -> AblationResult``, every number chapter 05 quotes.
"""

from vaetone.analysis.ablation.effects import (
    ablation_descriptor_effects,
    ablation_labels,
    descriptor_effects,
    descriptor_labels,
    descriptor_metric,
    descriptor_rho,
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
    cumulative_table,
    importance_order,
    kept_errors,
    pitch_ranges,
    reconstruction_errors,
    summarise_ablation,
)
from vaetone.analysis.ablation.reading import HEATMAP_DIMS, listening_grid, overview_answer, top_dims_percent
from vaetone.analysis.ablation.stage import AblationInputs, AblationResult, compute_ablation, result
from vaetone.analysis.sensitivity.labels import MIXED

__all__ = [
    "BASELINES",
    "HEATMAP_DIMS",
    "MIXED",
    "AblationInputs",
    "AblationResult",
    "Metric",
    "ablate",
    "ablation_descriptor_effects",
    "ablation_effects",
    "ablation_labels",
    "ablation_matrix",
    "baseline_values",
    "captum_ablation",
    "compute_ablation",
    "cumulative_ablation",
    "cumulative_table",
    "descriptor_effects",
    "descriptor_labels",
    "descriptor_metric",
    "descriptor_rho",
    "importance_order",
    "kept_errors",
    "listening_grid",
    "overview_answer",
    "pitch_ranges",
    "reconstruction_errors",
    "result",
    "summarise_ablation",
    "top_dims_percent",
]
