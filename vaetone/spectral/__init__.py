"""Step 2: log-mel spectrograms (:mod:`~vaetone.spectral.melspec`), their preparation in chunks by worker
processes (:mod:`~vaetone.spectral.prepare`, :mod:`~vaetone.spectral.chunks`) into a float16 memory map
(:mod:`~vaetone.spectral.cache`), the features and their normalisation (:mod:`~vaetone.spectral.features`),
the one way back to audio (:mod:`~vaetone.spectral.inversion`), and audio descriptors on waveforms and mel
spectra (:mod:`~vaetone.spectral.descriptors`).
"""
