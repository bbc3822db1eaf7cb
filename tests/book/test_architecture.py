"""Tests of vaetone.book.architecture: the diagram is drawn from the model, with the shapes it really produces."""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.patches import Rectangle

from vaetone import config
from vaetone.book import architecture, style
from vaetone.errors import ConfigError
from vaetone.model.summary import untrained_model

MELS, FRAMES = 16, 30
CHAPTER = Path(__file__).resolve().parents[2] / "chapters" / "02_model.md"


@pytest.fixture
def cfg():
    """A small model: channels [4, 8], latent size 3."""
    return config.make(latent_dim=3, channels=[4, 8], beta=1.0, device="cpu")


def _texts(fig) -> list[str]:
    """Every visible text of the figure."""
    return [t.get_text() for t in fig.findobj(plt.Text) if t.get_visible() and t.get_text()]


def _boxes(fig) -> list[Rectangle]:
    """The diagram's boxes (the axes' patches)."""
    return [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]


def test_the_recorded_shapes_are_those_of_a_forward_pass(cfg):
    vae = untrained_model(cfg, MELS, FRAMES)
    encoder, decoder = architecture.model_blocks(vae)
    x = torch.randn(1, 1, MELS, FRAMES)
    with torch.no_grad():
        h = vae.pad(x)
        maps = [h]
        for block in list(vae.encoder)[:-1]:
            maps.append(block(maps[-1]))
        mu = vae.to_mu(vae.encoder[-1](maps[-1]))
        y = vae.decoder[1](vae.decoder[0](mu))
        ups = [y]
        for layer in list(vae.decoder)[2:]:
            ups.append(layer(ups[-1]))
    want_encoder = [(1, MELS, FRAMES), *(tuple(m.shape[1:]) for m in maps), (6,)]
    want_decoder = [tuple(mu.shape[1:]), *(tuple(u.shape[1:]) for u in ups)]
    assert [b.shape for b in encoder] == want_encoder
    assert [b.shape for b in decoder] == want_decoder
    assert [b.shape_text for b in encoder] == ["1×16×30", "1×16×32", "4×8×16", "8×4×8", "3 + 3"]
    assert [b.shape_text for b in decoder] == ["3", "8×4×8", "4×8×16", "1×16×32", "1×16×30"]
    assert [b.part for b in encoder + decoder] == [
        "input",
        *["encoder"] * 3,
        "latent",
        "latent",
        *["decoder"] * 3,
        "input",
    ]


def test_the_figure_names_every_layer_and_shape(cfg):
    fig = architecture.architecture_figure(untrained_model(cfg, MELS, FRAMES), cfg)
    texts = _texts(fig)
    layers = [
        "input\nlog-mel",
        "zero-pad\n(not scored)",
        "Conv2d\n1→4\nk4, stride 2",
        "Conv2d\n4→8\nk4, stride 2",
        "flatten 256\nLinear ×2\n→ μ, log σ²",
        "sample\nz = μ + σ·ε\nε ~ N(0, I)",
        "Linear\n3→256\nreshape",
        "ConvT\n8→4\nk4, stride 2",
        "ConvT\n4→1\nk4, stride 2",
        "crop →\noutput\nlog-mel",
    ]
    shapes = ["1×16×30", "1×16×32", "4×8×16", "8×4×8", "3 + 3", "3"]
    assert all(t in texts for t in layers + shapes), sorted(set(layers + shapes) - set(texts))
    assert texts.count("4×8×16") == 2 and texts.count("1×16×30") == 2  # each decoder block mirrors an encoder one
    assert any("BatchNorm2d → LeakyReLU(0.2)" in t and "σ = 1 (fixed)" in t for t in texts)
    assert len(_boxes(fig)) == 10
    plt.close(fig)


def test_another_channel_list_draws_another_diagram(cfg):
    small = architecture.architecture_figure(untrained_model(cfg, MELS, FRAMES), cfg)
    deep_cfg = dataclasses.replace(cfg, channels=[2, 4, 8], latent_dim=5, norm="none", activation="gelu")
    deep = architecture.architecture_figure(untrained_model(deep_cfg, MELS, FRAMES), deep_cfg)
    assert len(_boxes(deep)) == len(_boxes(small)) + 2
    texts = _texts(deep)
    assert "Conv2d\n4→8\nk4, stride 2" in texts and "Conv2d\n1→4\nk4, stride 2" not in texts
    assert "8×2×4" in texts and "5 + 5" in texts and "Linear\n5→64\nreshape" in texts
    assert any("conv → GELU;" in t for t in texts)
    plt.close(small)
    plt.close(deep)


def test_box_heights_follow_the_mel_bands(cfg):
    fig = architecture.architecture_figure(untrained_model(cfg, MELS, FRAMES), cfg)
    heights = [round(b.get_height(), 3) for b in _boxes(fig)[:4]]  # input, pad, 4×8×16, 8×4×8
    assert heights[0] == heights[1] > heights[2] > heights[3]
    plt.close(fig)


def test_the_autoencoder_and_a_learned_sigma_are_drawn_as_they_are(cfg):
    ae_cfg = dataclasses.replace(cfg, beta=0.0, decoder_variance="per_band")
    fig = architecture.architecture_figure(untrained_model(ae_cfg, MELS, FRAMES), ae_cfg)
    texts = _texts(fig)
    assert "sample\nz = μ\n(β = 0: no noise)" in texts
    assert any("decoder σ: learned, one per mel band (16)" in t for t in texts)
    plt.close(fig)


def test_the_figure_is_legible(cfg):
    book = config.make(latent_dim=16, channels=[8, 16, 32, 64])
    fig = architecture.architecture_figure(untrained_model(book, 64, 126), book)
    assert fig.get_figwidth() <= style.MAX_WIDTH_IN
    texts = [t for t in fig.findobj(plt.Text) if t.get_visible() and t.get_text()]
    assert min(t.get_fontsize() for t in texts) >= style.MIN_FONT_PT
    renderer = fig.canvas.get_renderer()
    extents = [t.get_window_extent(renderer) for t in texts]
    figure_box = fig.bbox
    for a, b in itertools.combinations(range(len(texts)), 2):
        assert not extents[a].overlaps(extents[b]), (texts[a].get_text(), texts[b].get_text())
    for t, e in zip(texts, extents):
        assert figure_box.x0 <= e.x0 and e.x1 <= figure_box.x1 and figure_box.y0 <= e.y0 and e.y1 <= figure_box.y1, t
    plt.close(fig)


@pytest.mark.filterwarnings("error")
def test_the_figure_saved_as_jupyter_saves_it_fits_the_column(cfg):
    book = config.make(latent_dim=16, channels=[8, 16, 32, 64])
    fig = architecture.architecture_figure(untrained_model(book, 64, 126), book)
    for _ in range(2):  # the inline backend saves twice (glue, then the cell's flush): the layout must not change
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight")
        assert style.svg_problems(buffer.getvalue(), "fig-02-architecture") == []
    plt.close(fig)


def test_the_model_mode_is_kept_and_a_wrong_cfg_is_refused(cfg):
    vae = untrained_model(cfg, MELS, FRAMES).train()
    architecture.model_blocks(vae)
    assert vae.training
    with pytest.raises(ConfigError, match=r"channels=\[4, 8\], latent_dim=3 but cfg says channels=\[4, 8, 16\]"):
        architecture.architecture_figure(vae, dataclasses.replace(cfg, channels=[4, 8, 16]))
    with pytest.raises(ConfigError, match="latent_dim=5"):
        architecture.architecture_figure(vae, dataclasses.replace(cfg, latent_dim=5))


def test_chapter_02_has_its_frame_and_numbers_its_figure_and_formulas():
    text = CHAPTER.read_text()
    heads = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert heads[0] == "Overview" and heads[-2:] == ["Summary", "What's next"]
    assert (
        "**Answer.** {glue:text}`answer:s`" in text and "{{ time_02_model }}" in text and "{doc}`03_training`" in text
    )
    assert 'glue_figure("fig-02-architecture", architecture_figure(' in text
    assert "```{glue:figure} fig-02-architecture\n:name: fig-02-architecture" in text
    assert "{numref}`fig-02-architecture`" in text and "hide-input" not in text
    labels = re.findall(r"^\$\$ \((eq-02-[\w-]+)\)$", text, flags=re.MULTILINE)
    assert "eq-02-loss" in labels and "eq-02-kl" in labels and "eq-02-warmup" in labels
    assert all(f"{{eq}}`{label}`" in text for label in labels), [x for x in labels if f"{{eq}}`{x}`" not in text]
    assert "kingma2014vae" in text and "higgins2017beta" in text
