"""Step 2: log-mel spectrograms (:mod:`~vaetone.spectral.melspec`), their cache and normalisation
(:mod:`~vaetone.spectral.features`), the one way back to audio (:mod:`~vaetone.spectral.inversion`),
and audio descriptors on waveforms and mel spectra (:mod:`~vaetone.spectral.descriptors`).
"""
