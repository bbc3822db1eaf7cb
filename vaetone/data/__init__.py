"""Step 1 of the data flow: NSynth-format notes from a user's NSynth folder(s), SoundFonts or the synthetic source.

Modules: :mod:`~vaetone.data.nsynth` and :mod:`~vaetone.data.wav` (reading folders and notes),
:mod:`~vaetone.data.splits` (instrument subsets; splits by instrument or by sample group),
:mod:`~vaetone.data.soundfont`, :mod:`~vaetone.data.fonts` (preset → sample tables) and
:mod:`~vaetone.data.fluid` (FluidSynth), :mod:`~vaetone.data.synthetic` (the rendered sources),
:mod:`~vaetone.data.writer` (NSynth-format folders), :mod:`~vaetone.data.dataset` (the notes of a
configuration, audio read lazily), :mod:`~vaetone.data.manifest` (what a folder's notes were, to
notice a changed folder), :mod:`~vaetone.data.summary` (what chapter 01 shows).
"""
