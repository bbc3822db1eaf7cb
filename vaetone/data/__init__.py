"""Step 1 of the data flow: NSynth-format notes from a user's NSynth folder, SoundFonts or the synthetic source.

Modules: :mod:`~vaetone.data.nsynth` (reading folders), :mod:`~vaetone.data.splits`
(instrument subsets and splits), :mod:`~vaetone.data.soundfont` and
:mod:`~vaetone.data.synthetic` (the rendered sources), :mod:`~vaetone.data.dataset` (the
dataset of a configuration, cached), :mod:`~vaetone.data.manifest` (what a folder's notes were,
to notice a changed folder), :mod:`~vaetone.data.summary` (what chapter 01 shows).
"""
