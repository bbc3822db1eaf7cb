"""Step 3: the convolutional VAE (:mod:`~vaetone.model.vae`), its resumable training
(:mod:`~vaetone.model.train`), and trained runs with the latents of every note (:mod:`~vaetone.model.runs`).
"""
