"""Tests of vaetone.explorer: the widget app driven programmatically, as a user would drive it."""

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config, store
from vaetone.book import explorer

N_MELS, N_FRAMES = 16, 32


class OneDimRun:
    """A decoder whose output depends on z_0 alone: a loud band whose position moves with z_0."""

    def decode(self, z):
        z = torch.as_tensor(z, dtype=torch.float32)
        centre = (N_MELS - 1) / 2 + 2.0 * z[:, :1]  # (n, 1)
        bands = torch.arange(N_MELS, dtype=torch.float32)[None]  # (1, M)
        level = torch.exp(-0.5 * ((bands - centre) / 1.5) ** 2)  # (n, M)
        return level[:, None, :, None].expand(-1, 1, N_MELS, N_FRAMES) * 4.0 - 2.0


class Feats:
    def denormalise(self, x):
        return x * 15.0 - 40.0


@pytest.fixture
def app():
    cfg = config.make(n_mels=N_MELS, latent_dim=3, griffin_lim_iters=4)
    meta = pd.DataFrame(
        {"instrument_family_str": ["brass", "reed"], "pitch": [60, 64]}, index=["brass_a-060-100", "reed_b-064-100"]
    )
    mu = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.5]], dtype=np.float32)
    return explorer.Explorer(explorer.Renderer(OneDimRun(), Feats(), cfg), mu, meta, seed=0)


def test_moving_an_inactive_dimension_changes_nothing_and_the_active_one_changes_the_sound(app):
    db0, wav0 = app.db.copy(), app.sound.value
    app.sliders[1].value = 2.5  # z_1 does not enter the decoder
    np.testing.assert_allclose(app.db, db0, atol=1e-6)
    app.sliders[0].value = 2.0  # z_0 moves the loud band up by 4 mel bands
    assert np.abs(app.db - db0).max() > 20  # dB
    assert np.argmax(app.db[:, 0]) == np.argmax(db0[:, 0]) + 4
    assert bytes(app.sound.value) != bytes(wav0) and bytes(app.image.value).startswith(b"\x89PNG")


def test_start_note_reset_prior_and_interpolation(app):
    app.start.value = "reed_b-064-100"
    np.testing.assert_allclose(app.z, [1.0, -1.0, 0.5], atol=1e-6)
    app.sliders[0].value = -2.0
    app.buttons["reset"].click()
    np.testing.assert_allclose(app.z, [1.0, -1.0, 0.5], atol=1e-6)
    app.start.value, app.other.value = "brass_a-060-100", "reed_b-064-100"
    app.mix.value = 1.0
    np.testing.assert_allclose(app.z, [1.0, -1.0, 0.5], atol=1e-4)  # the far end of the path
    app.buttons["prior sample"].click()
    assert np.all(np.abs(app.z) <= app.decoder.cfg.sweep_sigma)
    assert set(app.timings) == {"decode_s", "invert_s", "total_s"}


def test_sliders_follow_the_saved_importance_order(tmp_path, monkeypatch):
    monkeypatch.setenv("VAETONE_RUNS", str(tmp_path))
    cfg = config.make(dataset="synthetic", latent_dim=3)
    assert explorer.slider_order(cfg, 3) == ([0, 1, 2], {0: "z0", 1: "z1", 2: "z2"})
    store.write_json(
        store.run_dir(cfg) / "04_sensitivity.json",
        {"dimension_order": [2, 0, 1], "dimension_descriptor": {"2": "rms_db"}},
    )
    order, labels = explorer.slider_order(cfg, 3)
    assert order == [2, 0, 1] and labels[2] == "z2 · rms_db" and labels[0] == "z0"
