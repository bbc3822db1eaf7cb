"""vaetone: the helper package of the book on the latent space of a convolutional VAE of instrument tones.

Subpackages follow the data flow: ``data`` (NSynth-format notes from NSynth, SoundFonts or a
synthetic source) → ``spectral`` (log-mel features, the way back to audio, descriptors) →
``model`` (the ConvVAE, its training, trained runs and latents) → ``analysis`` (one stage
result per analysis: evaluation, sensitivity, ablation, statistics, ground truth, seeds) →
``book`` (the chapter pipeline, plots, players, the explorer). Beside them: ``config``
(parameters), ``store`` (the cache), ``devices``, ``errors``, ``progress``.
"""

__version__ = "0.1.0"
