"""A diagram of the ConvVAE drawn from the model itself: its blocks, and the shapes a forward pass gives them.

:func:`model_blocks` walks a :class:`~vaetone.model.vae.ConvVAE` (``pad``, the encoder's conv blocks,
the μ and log σ² heads, the decoder's linear layer, transposed-conv blocks and crop) and records
each block's output shape with forward hooks on one dummy note of the model's input size;
:func:`architecture_figure` draws them as a U: the encoder left to right on the top row, the
decoder right to left underneath, so that each decoder block sits under the encoder block of the
same shape. Nothing in the drawing is typed in: another channel list gives another diagram.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.layout_engine import PlaceHolderLayoutEngine
from matplotlib.patches import Rectangle
from torch import nn

from vaetone.book import style
from vaetone.config import Config
from vaetone.errors import ConfigError
from vaetone.model.vae import ConvVAE

FONT_PT = 9.0
"""Size of every text in the diagram (points)."""
COLOURS = {"input": "#d9d9d9", "encoder": "#9ecae1", "latent": "#fdae6b", "decoder": "#a1d99b"}
"""Face colour of each part's boxes: input/output grey, encoder blue, latent orange, decoder green."""

style.use()
HEIGHT = 4.05
"""Height of the diagram (in)."""
ROWS = (3.0, 1.2)
"""Heights (in) of the centres of the encoder's and the decoder's rows of boxes."""
LEFT, RIGHT = 0.3, 0.35
"""Margins (in): the rows' names on the left, the arrow from the heads to the sample on the right."""
TIGHT_PAD_IN = 0.1
"""The margin (in) that Jupyter's inline backend adds around a figure it saves (``bbox_inches="tight"``)."""
ARROW = {"arrowstyle": "-|>", "color": "0.3", "lw": 1}
"""How every arrow of the diagram is drawn."""


@dataclass(frozen=True)
class Block:
    """One box of the diagram: a layer (or a block of layers) and the shape of its output for one note.

    Attributes:
        part: "input", "encoder", "latent" or "decoder" (the box's colour).
        label: the layer, two or three lines (e.g. "Conv2d\\n1→8\\nk4, stride 2").
        shape: its output per note, (channels, mel bands, frames) or (features,).
        text: how the diagram writes the shape, when not "×"-joined (the heads: "16 + 16").
    """

    part: str
    label: str
    shape: tuple[int, ...]
    text: str = ""

    @property
    def shape_text(self) -> str:
        """The shape as the diagram writes it, e.g. "8×32×64" (or ``text`` when given, e.g. "16 + 16")."""
        return self.text or "×".join(map(str, self.shape))


def _conv_label(conv: nn.Module, name: str) -> str:
    """E.g. "Conv2d\\n1→8\\nk4, stride 2" for a (transposed) convolution called ``name``."""
    return f"{name}\n{conv.in_channels}→{conv.out_channels}\nk{conv.kernel_size[0]}, stride {conv.stride[0]}"


def _first(module: nn.Module, kind: type) -> nn.Module:
    """The first submodule of ``module`` (itself included) that is a ``kind``."""
    return next(m for m in module.modules() if isinstance(m, kind))


def _check(model: ConvVAE, cfg: Config) -> None:
    """Raise ConfigError when ``model`` was not built with ``cfg``'s channels and latent size."""
    convs = [_first(b, nn.Conv2d) for b in list(model.encoder)[:-1]]
    channels = [c.out_channels for c in convs]
    if channels != [int(c) for c in cfg.channels] or model.latent_dim != int(cfg.latent_dim):
        raise ConfigError(
            f"architecture_figure: the model has channels={channels}, latent_dim={model.latent_dim} but cfg "
            f"says channels={list(cfg.channels)}, latent_dim={cfg.latent_dim}; pass the cfg the model was built with"
        )


def model_blocks(model: ConvVAE) -> tuple[list[Block], list[Block]]:
    """The encoder's and the decoder's boxes, with the output shapes that a forward pass records.

    One note of zeros, (1, 1, n_mels, n_frames), goes through the model in eval mode; forward hooks
    record the output of the padding, each encoder block, the two heads, the decoder's linear
    layer (with its reshape), each transposed-conv block and the crop.

    Args:
        model: a ConvVAE (any device; its mode is restored).
    Returns:
        (encoder, decoder): encoder = [input, pad, conv blocks..., heads (μ and log σ²)] and
        decoder = [z, linear + reshape, transposed-conv blocks..., output], in data-flow order.
    Chapter: 02_model.
    """
    convs = list(model.encoder)[:-1]  # the last is Flatten
    dec = list(model.decoder)  # Linear, Unflatten, blocks..., ConvTranspose2d, CropTo
    watched = [model.pad, *convs, model.to_mu, model.to_logvar, dec[1], *dec[2:-2], dec[-2], dec[-1]]
    shapes: dict[int, tuple[int, ...]] = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, out, k=k: shapes.__setitem__(k, tuple(out.shape[1:])))
        for k, m in enumerate(watched)
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            device = next(model.parameters()).device
            model(torch.zeros(1, 1, model.n_mels, model.n_frames, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    depth = len(convs)
    mu, logvar = shapes[depth + 1], shapes[depth + 2]
    encoder = [Block("input", "input\nlog-mel", (1, model.n_mels, model.n_frames))]
    encoder.append(Block("encoder", "zero-pad\n(not scored)", shapes[0]))
    encoder += [
        Block("encoder", _conv_label(_first(b, nn.Conv2d), "Conv2d"), shapes[1 + i]) for i, b in enumerate(convs)
    ]
    heads = f"flatten {model.to_mu.in_features}\nLinear ×2\n→ μ, log σ²"
    encoder.append(Block("latent", heads, (mu[0] + logvar[0],), f"{mu[0]} + {logvar[0]}"))
    sample = "sample\nz = μ\n(β = 0: no noise)" if model.deterministic else "sample\nz = μ + σ·ε\nε ~ N(0, I)"
    decoder = [Block("latent", sample, mu)]
    decoder.append(Block("decoder", f"Linear\n{model.latent_dim}→{dec[0].out_features}\nreshape", shapes[depth + 3]))
    ups = [_first(b, nn.ConvTranspose2d) for b in dec[2:-2]] + [dec[-2]]
    decoder += [Block("decoder", _conv_label(up, "ConvT"), shapes[depth + 4 + i]) for i, up in enumerate(ups)]
    decoder.append(Block("input", "crop →\noutput\nlog-mel", shapes[len(watched) - 1]))
    return encoder, decoder


def _block_note(model: ConvVAE) -> str:
    """What follows the conv in every block but the decoder's last, e.g. "BatchNorm2d → LeakyReLU(0.2)"."""
    names = []
    for m in list(model.encoder[0])[1:]:
        if isinstance(m, nn.LeakyReLU):
            names.append(f"LeakyReLU({m.negative_slope:g})")
        elif not isinstance(m, nn.Identity):
            names.append(type(m).__name__)
    return " → ".join(names) or "nothing"


def _footer(model: ConvVAE) -> str:
    """The two footer lines: what each block holds, what a shape means, the decoder's noise."""
    sigma = {
        "fixed": "decoder σ = 1 (fixed)",
        "global": "decoder σ: one learned value",
        "per_band": f"decoder σ: learned, one per mel band ({model.n_mels})",
    }[model.decoder_variance]
    return (
        f"each block but the last ConvT: conv → {_block_note(model)};  ConvT: transposed convolution\n"
        f"shapes per note: channels × mel bands × frames, or features;  {sigma}"
    )


def _box_size(block: Block, biggest: tuple[int, int], cell: float) -> tuple[float, float]:
    """Width and height (in) of a block's box: height ∝ its mel bands, width grows with log2 channels."""
    max_h, max_c = biggest
    if len(block.shape) == 1:
        return 0.12 * cell, 0.35
    c, h = block.shape[0], block.shape[1]
    height = 0.8 * max(0.16, h / max_h)
    width = cell * (0.12 + 0.3 * math.log2(c + 1) / math.log2(max_c + 1))
    return width, height


def architecture_figure(model: ConvVAE, cfg: Config):
    """Draw the model's encoder (top, left to right) and decoder (bottom, right to left) as boxes with shapes.

    Each box is a block's output: its height grows with the mel bands, its width with the channels;
    above it the layer (kind, channels in→out, kernel and stride), below it the output shape per note.
    The heads' box holds μ and log σ², the sampling box z = μ + σ·ε (z = μ for β = 0).

    Args:
        model: a ConvVAE (trained or not: only its structure and shapes are drawn).
        cfg: the configuration it was built with (checked against the model's channels and latent size).
    Returns:
        The matplotlib Figure, passed through :func:`vaetone.book.style.check_figure`.
    Raises:
        ConfigError: the model's channels or latent size differ from ``cfg``'s.
    Chapter: 02_model.
    """
    _check(model, cfg)
    encoder, decoder = model_blocks(model)
    fig_w = style.width() - 2 * TIGHT_PAD_IN - 0.05
    cell = (fig_w - LEFT - RIGHT) / len(encoder)
    fig = plt.figure(figsize=(fig_w, HEIGHT))
    fig.set_layout_engine(PlaceHolderLayoutEngine(True, True))  # placed by hand; None would become constrained
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set(xlim=(0, fig_w), ylim=(0, HEIGHT))
    ax.set_axis_off()
    maps = [b for b in encoder + decoder if len(b.shape) == 3]
    biggest = (max(b.shape[1] for b in maps), max(b.shape[0] for b in maps))
    for blocks, y, name, colour in (
        (encoder, ROWS[0], "encoder", "#08519c"),
        (decoder[::-1], ROWS[1], "decoder", "#006d2c"),
    ):
        _draw_row(ax, blocks, y, cell, biggest, forward=blocks is encoder)
        ax.text(0.12, y, name, rotation=90, ha="center", va="center", fontsize=FONT_PT, style="italic", color=colour)
    x = LEFT + cell * (len(encoder) - 0.5) + 0.07 * cell
    arc = "arc,angleA=0,angleB=0,armA=34,armB=34,rad=6"
    ax.annotate("", (x, ROWS[1]), (x, ROWS[0]), arrowprops={**ARROW, "connectionstyle": arc})
    ax.text(fig_w / 2, 0.05, _footer(model), ha="center", va="bottom", fontsize=FONT_PT, color="0.2")
    return style.check_figure(fig)


def _draw_row(ax, blocks: list[Block], y: float, cell: float, biggest: tuple[int, int], forward: bool) -> None:
    """Draw one row of boxes centred at height ``y`` (in), labels above, shapes below, arrows between them."""
    xs = [LEFT + cell * (i + 0.5) for i in range(len(blocks))]
    sizes = [_box_size(b, biggest, cell) for b in blocks]
    for b, x, (w, h) in zip(blocks, xs, sizes):
        ax.add_patch(Rectangle((x - w / 2, y - h / 2), w, h, facecolor=COLOURS[b.part], edgecolor="0.25", lw=0.8))
        ax.text(x, y + 0.47, b.label, ha="center", va="bottom", fontsize=FONT_PT, linespacing=1.1)
        ax.text(x, y - 0.47, b.shape_text, ha="center", va="top", fontsize=FONT_PT, weight="bold")
    for i in range(len(blocks) - 1):
        left, right = xs[i] + sizes[i][0] / 2, xs[i + 1] - sizes[i + 1][0] / 2
        start, end = (left, right) if forward else (right, left)
        ax.annotate("", (end, y), (start, y), arrowprops=ARROW)
