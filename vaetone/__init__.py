"""vaetone: the helper package of the book on the latent space of a convolutional VAE of instrument tones.

Modules by role: ``config`` (parameters), ``store`` (cache), ``data`` (NSynth-format notes
from NSynth, a SoundFont or a synthetic source), ``features`` (log-mel and back), ``audio``
(descriptors), ``model``, ``train``, ``metrics``, ``sensitivity``, ``ablation``,
``latent_stats``, ``explorer``, ``plots``.
"""
__version__ = "0.1.0"
