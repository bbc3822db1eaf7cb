"""Step 4: what the latent space does, one stage result per analysis.

Shared tools: :mod:`~vaetone.analysis.decoding` (decoders as batched callables),
:mod:`~vaetone.analysis.metrics` (reconstruction metrics), :mod:`~vaetone.analysis.generate`.
Stages: :mod:`~vaetone.analysis.evaluation` (chapter 03), :mod:`~vaetone.analysis.sensitivity`
(04), :mod:`~vaetone.analysis.ablation` (05), :mod:`~vaetone.analysis.statistics` and
:mod:`~vaetone.analysis.disentanglement` (06), :mod:`~vaetone.analysis.seeds` (04-06).
"""
