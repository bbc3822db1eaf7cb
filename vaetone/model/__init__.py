"""Step 3: the convolutional VAE (:mod:`~vaetone.model.vae`), its resumable training
(:mod:`~vaetone.model.train`) from DataLoader batches of the memory map (:mod:`~vaetone.model.loader`),
on one device or several through torchrun (:mod:`~vaetone.model.distributed`), its checkpoints
(:mod:`~vaetone.model.checkpoints`), and trained runs with the latents of every note (:mod:`~vaetone.model.runs`).
"""
