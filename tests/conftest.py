"""Shared pytest options and fixtures: known-answer decoders, an isolated cache, and a tiny trained run.

* :func:`one_dim_decoder`: a decoder whose output depends on latent dimension 0 alone, the
  known answer of every sensitivity and ablation method (each must single out z_0);
* :func:`isolated_store`: data and runs in a fresh temporary folder;
* :func:`tiny_cfg`: a configuration on the synthetic source small enough to render, extract and
  train in seconds; with :func:`stage_store` its run is trained once per test session and shared
  by the tests of the stage results.
"""

import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")

KA_MELS, KA_FRAMES, KA_DIMS = 16, 12, 4
"""Shape of the known-answer decoder's output and its latent size."""


def pytest_addoption(parser):
    parser.addoption("--book-html", default="", help="folder of a built book (index.html) for the browser tests")
    parser.addoption("--book-src", default="", help="the staged book source (executed notebooks) of that book")


def bump_decoder(z: torch.Tensor) -> torch.Tensor:
    """A 10-dB Gaussian bump in mel frequency whose centre moves with z_0; constant in time; (n, 1, 16, 12)."""
    centre = KA_MELS / 2 + z[:, :1] * KA_MELS / 10
    m = torch.arange(KA_MELS, dtype=z.dtype, device=z.device)[None, :]
    spec = 10 * torch.exp(-((m - centre) ** 2) / (2 * 2.0**2))
    return spec[:, None, :, None].expand(-1, 1, -1, KA_FRAMES)


@pytest.fixture
def one_dim_decoder():
    """The known-answer decoder (:func:`bump_decoder`): output depends on z_0 only, latent size 4."""
    return bump_decoder


@pytest.fixture
def isolated_store(tmp_path, monkeypatch):
    """Rendered data, features and runs under a fresh temporary folder; yields that folder."""
    monkeypatch.setenv("VAETONE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("VAETONE_RUNS", str(tmp_path / "runs"))
    return tmp_path


TINY = dict(
    dataset="synthetic",
    synthetic_instruments=22,
    pitch_min=48,
    pitch_max=72,
    pitch_step=12,
    velocities=[25, 127],
    n_mels=32,
    latent_dim=4,
    channels=[4, 8],
    epochs=2,
    kl_warmup_epochs=1,
    patience=2,
    batch_size=16,
    n_seeds=2,
    n_anchors=3,
    sweep_steps=3,
    sobol_n=8,
    griffin_lim_iters=2,
    n_eval_audio=4,
    n_audio_examples=1,
    device="cpu",
)
"""A whole pipeline in seconds: 22 synthetic instruments x 3 pitches x 2 velocities, 32 mels, 4 latents."""


@pytest.fixture
def tiny_cfg():
    """The checked configuration of :data:`TINY`."""
    from vaetone import config

    return config.make(**TINY)


@pytest.fixture
def stage_store(tmp_path_factory, monkeypatch):
    """A cache shared by the whole test session, so the tiny run trains once for all stage tests."""
    root = tmp_path_factory.getbasetemp() / "stage-store"
    monkeypatch.setenv("VAETONE_DATA", str(root / "data"))
    monkeypatch.setenv("VAETONE_RUNS", str(root / "runs"))
    return root
