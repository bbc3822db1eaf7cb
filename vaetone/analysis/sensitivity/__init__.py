"""How much each latent dimension moves the decoder's output: one at a time, gradients, and Sobol indices.

Three views of the same question (chapter 04_sensitivity): :mod:`~.oat` (sweeps of one
dimension from anchor points), :mod:`~.jacobian` (the local view), :mod:`~.sobol` (the
global view), ranked together by :mod:`~.ranking`; :mod:`~.labels` names the dimensions (by
net, monotonic change along the sweeps, and by significant Sobol first-order indices);
:mod:`~.parts` names the frequency bands and time regions of the output. :mod:`~.stage` is the
chapter's stage result, ``result(cfg) -> SensitivityResult``, with its quoted numbers and
intervals from :mod:`~.summary`; :mod:`~.reading` reads the chapter's answer and sound grid off the results.
"""

from vaetone.analysis.sensitivity.jacobian import jacobian_norms
from vaetone.analysis.sensitivity.labels import (
    INTERACTIONS,
    MIXED,
    NONE,
    dimension_labels,
    sobol_labels,
    sobol_sums,
)
from vaetone.analysis.sensitivity.oat import (
    Sweeps,
    anchor_points,
    anchor_trends,
    descriptor_spread,
    net_change,
    normalised_moves,
    one_at_a_time,
    sensitivity_matrix,
    sweep_dimension,
    sweep_grid,
    sweep_latents,
)
from vaetone.analysis.sensitivity.parts import Part, frequency_bands, output_parts, time_regions
from vaetone.analysis.sensitivity.ranking import Analysis, analysis, rank_dimensions, top_descriptor
from vaetone.analysis.sensitivity.reading import overview_answer, strip_grid
from vaetone.analysis.sensitivity.sobol import sobol_indices, sobol_problem, sobol_sample
from vaetone.analysis.sensitivity.stage import SensitivityResult, compute_sensitivity, result

__all__ = [
    "INTERACTIONS",
    "MIXED",
    "NONE",
    "Analysis",
    "Part",
    "SensitivityResult",
    "Sweeps",
    "analysis",
    "anchor_points",
    "anchor_trends",
    "compute_sensitivity",
    "descriptor_spread",
    "dimension_labels",
    "frequency_bands",
    "jacobian_norms",
    "net_change",
    "normalised_moves",
    "one_at_a_time",
    "overview_answer",
    "output_parts",
    "rank_dimensions",
    "result",
    "sensitivity_matrix",
    "sobol_indices",
    "sobol_labels",
    "sobol_problem",
    "sobol_sample",
    "sobol_sums",
    "strip_grid",
    "sweep_dimension",
    "sweep_grid",
    "sweep_latents",
    "time_regions",
    "top_descriptor",
]
