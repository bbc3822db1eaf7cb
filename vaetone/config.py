"""Every parameter of the book in one place: names, defaults, checks, and which stage uses them.

A chapter's ``parameters`` cell holds plain literals; the next cell calls
:func:`from_notebook` (or :func:`make`), which rejects unknown names and bad values
before any work. The same name means the same thing in every chapter, and one YAML
file (``params/*.yaml``) drives them all through papermill.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from vaetone.errors import ConfigError

FAMILIES = ("bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal")
SOURCES = ("acoustic", "electronic", "synthetic")
VELOCITIES = (25, 50, 75, 100, 127)
DATASETS = ("soundfont", "synthetic", "nsynth")
SAMPLE_RATE = 16000
NOTE_SECONDS = 4.0
DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
CORPUS_SOUNDFONTS = (
    DEFAULT_SOUNDFONT,
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/OPL-3_FM_128M.sf2",
    "/usr/share/sounds/sf2/sf_GMbank.sf2",
)
"""The four General MIDI SoundFonts Debian packages as .sf2 (scripts/install_system.sh installs them)."""


@dataclass(frozen=True)
class Config:
    """All parameters of every chapter, with the defaults of ``params/default.yaml``.

    Groups (see :data:`STAGES`) decide which parameters key which cache: changing
    ``n_mels`` recomputes features and everything after them, never the rendered audio.
    """

    # --- data (chapter 01) ---
    dataset: str = "soundfont"  # soundfont | synthetic | nsynth
    nsynth_path: str = ""  # an NSynth split folder (nsynth-test, ...), for dataset="nsynth"
    soundfonts: list = field(default_factory=lambda: list(CORPUS_SOUNDFONTS))  # .sf2 files, one corpus
    pitch_min: int = 40  # MIDI
    pitch_max: int = 76  # MIDI, inclusive
    pitch_step: int = 12  # semitones between rendered pitches (soundfont, synthetic)
    velocities: list = field(default_factory=lambda: [25, 127])
    families: list = field(default_factory=list)  # empty: all families
    sources: list = field(default_factory=list)  # empty: all sources
    instruments: list = field(default_factory=list)  # instrument_str values; empty: all
    max_instruments: int = 0  # 0: all; else a seeded subset, stratified by family
    synthetic_instruments: int = 44  # instruments of the synthetic source (4 per family)
    # the factorial synthetic source: every timbre factor is drawn per note, independently,
    # uniformly from factor_levels values spanning its range (attack and decay spaced in log)
    factor_levels: int = 5
    attack_range: list = field(default_factory=lambda: [0.02, 0.4])  # s, linear attack
    decay_range: list = field(default_factory=lambda: [0.5, 8.0])  # s, T60 of the decay
    brightness_range: list = field(default_factory=lambda: [-15.0, -3.0])  # dB per octave, spectral tilt
    inharmonicity_range: list = field(default_factory=lambda: [0.0, 0.002])  # B of stiff strings
    noise_range: list = field(default_factory=lambda: [-50.0, -10.0])  # dB re. the harmonic part
    valid_fraction: float = 0.15  # share of instruments held out for validation
    test_fraction: float = 0.15  # share of instruments held out for testing
    split_seed: int = 0
    # --- features (chapter 01) ---
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 64
    f_min: float = 20.0  # Hz
    f_max: float = 8000.0  # Hz, at most sample_rate / 2
    log_floor: float = 1e-6  # power floor before 10*log10, i.e. -60 dB
    # --- model (chapter 02) ---
    latent_dim: int = 16
    channels: list = field(default_factory=lambda: [8, 16, 32, 64])
    kernel_size: int = 4
    norm: str = "batch"  # batch | group | none
    activation: str = "leaky_relu"  # leaky_relu | relu | gelu | silu
    # --- training (chapter 03) ---
    beta: float = 1.0  # 0 gives the plain autoencoder
    epochs: int = 15
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    kl_warmup_epochs: int = 5
    free_bits: float = 0.0  # nats per dimension; 0: off
    decoder_variance: str = "fixed"  # fixed (sigma = 1 in normalised units) | global | per_band (learned)
    patience: int = 8  # early stopping on the validation loss
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    workers: int = 1  # processes that read or render notes and compute features (1: this one)
    # --- analyses (chapters 04-07) ---
    n_seeds: int = 3  # training seeds seed, seed+1, ... for the across-seed views
    n_anchors: int = 16  # encoded test notes used as sweep anchors
    sweep_sigma: float = 3.0  # sweep range in prior standard deviations
    sweep_steps: int = 9
    sobol_n: int = 512  # Saltelli base sample size (a power of 2)
    griffin_lim_iters: int = 32  # for audio played in the book
    n_eval_audio: int = 32  # test notes whose audio metrics are computed (seeded subset); 0: all
    n_audio_examples: int = 3
    peak_tolerance_cents: float = 50.0  # spectral peaks of a reconstruction match the original's within this
    bootstrap_n: int = 1000  # resamples of the instrument-level bootstrap intervals
    # --- validity (chapter 08) ---
    betas: list = field(default_factory=lambda: [0.25, 4.0, 16.0])  # synthetic-source β sweep (with 0 and beta)
    corpus_betas: list = field(
        default_factory=lambda: [1.0]
    )  # beta sweep on cfg.dataset (with beta; 0: the autoencoder)
    validity_sobol_n: int = 128  # Saltelli base sample of the Sobol indices of each swept model
    null_n: int = 1000  # permutations of the null models (recovery, rank agreement)


STAGES: dict[str, tuple[str, ...]] = {
    "data": (
        "dataset",
        "nsynth_path",
        "soundfonts",
        "pitch_min",
        "pitch_max",
        "pitch_step",
        "velocities",
        "families",
        "sources",
        "instruments",
        "max_instruments",
        "synthetic_instruments",
        "factor_levels",
        "attack_range",
        "decay_range",
        "brightness_range",
        "inharmonicity_range",
        "noise_range",
        "valid_fraction",
        "test_fraction",
        "split_seed",
    ),
    "features": ("n_fft", "hop_length", "n_mels", "f_min", "f_max", "log_floor"),
    "model": ("latent_dim", "channels", "kernel_size", "norm", "activation"),
    "train": (
        "beta",
        "epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "kl_warmup_epochs",
        "free_bits",
        "decoder_variance",
        "patience",
        "grad_clip",
        "seed",
    ),
}
"""Which parameters each cached stage depends on (a stage also depends on all earlier ones)."""

_CHOICES = {
    "dataset": DATASETS,
    "norm": ("batch", "group", "none"),
    "activation": ("leaky_relu", "relu", "gelu", "silu"),
    "device": ("auto", "cpu", "cuda"),
    "decoder_variance": ("fixed", "global", "per_band"),
}
_POSITIVE = (
    "workers",
    "n_fft",
    "hop_length",
    "n_mels",
    "latent_dim",
    "kernel_size",
    "epochs",
    "batch_size",
    "pitch_step",
    "synthetic_instruments",
    "sweep_steps",
    "sobol_n",
    "griffin_lim_iters",
    "n_seeds",
    "n_anchors",
    "lr",
    "log_floor",
    "sweep_sigma",
    "validity_sobol_n",
    "null_n",
)
_NON_NEGATIVE = (
    "beta",
    "weight_decay",
    "kl_warmup_epochs",
    "free_bits",
    "patience",
    "grad_clip",
    "max_instruments",
    "n_audio_examples",
    "f_min",
    "seed",
    "split_seed",
    "n_eval_audio",
)


def names() -> list[str]:
    """The names of all parameters, in declaration order."""
    return [f.name for f in fields(Config)]


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Convert a value from papermill/YAML to the type of the default, or raise ConfigError."""
    if isinstance(default, list):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"parameter {name!r} must be a list, got {value!r}")
        return list(value)
    if isinstance(default, bool) or isinstance(value, bool):
        raise ConfigError(f"parameter {name!r} must be a number or text, got {value!r}")
    try:
        if isinstance(default, int):
            if float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if isinstance(default, float):
            number = float(value)
    except (TypeError, ValueError, OverflowError):
        kind = type(default).__name__
        raise ConfigError(f"parameter {name!r} must be {kind}, got {value!r}") from None
    if isinstance(default, float):
        if not math.isfinite(number):
            raise ConfigError(
                f"parameter {name!r} must be a finite number, got {value!r}; give a real value such as "
                f"the default {default!r}"
            )
        return number
    if not isinstance(value, str):
        raise ConfigError(f"parameter {name!r} must be text, got {value!r}")
    return value


def _check(cfg: Config) -> None:
    """Raise ConfigError on the first value out of range."""
    for name, choices in _CHOICES.items():
        if getattr(cfg, name) not in choices:
            raise ConfigError(f"parameter {name}={getattr(cfg, name)!r} is not one of {list(choices)}")
    for name in _POSITIVE:
        if not getattr(cfg, name) > 0:
            raise ConfigError(f"parameter {name}={getattr(cfg, name)!r} must be > 0")
    for name in _NON_NEGATIVE:
        if getattr(cfg, name) < 0:
            raise ConfigError(f"parameter {name}={getattr(cfg, name)!r} must be >= 0")
    if not 21 <= cfg.pitch_min <= cfg.pitch_max <= 108:
        raise ConfigError(
            f"pitch range {cfg.pitch_min}..{cfg.pitch_max} must satisfy "
            "21 <= pitch_min <= pitch_max <= 108 (MIDI, the NSynth range)"
        )
    bad = [v for v in cfg.velocities if v not in VELOCITIES]
    if bad or not cfg.velocities:
        raise ConfigError(f"velocities {cfg.velocities} must be a non-empty subset of {list(VELOCITIES)}")
    for name, allowed in (("families", FAMILIES), ("sources", SOURCES)):
        bad = [v for v in getattr(cfg, name) if v not in allowed]
        if bad:
            raise ConfigError(f"{name} {bad} unknown; choose from {list(allowed)}")
    if not (0 < cfg.valid_fraction < 1 and 0 < cfg.test_fraction < 1 and cfg.valid_fraction + cfg.test_fraction < 1):
        raise ConfigError(
            "valid_fraction and test_fraction must be in (0, 1) and sum to less than 1, "
            f"got {cfg.valid_fraction} and {cfg.test_fraction}"
        )
    if not cfg.f_min < cfg.f_max <= SAMPLE_RATE / 2:
        raise ConfigError(f"need f_min < f_max <= {SAMPLE_RATE // 2} Hz, got {cfg.f_min}..{cfg.f_max}")
    if cfg.hop_length > cfg.n_fft:
        raise ConfigError(f"hop_length={cfg.hop_length} must not exceed n_fft={cfg.n_fft}")
    if not cfg.channels or any(int(c) < 1 for c in cfg.channels):
        raise ConfigError(f"channels={cfg.channels} must be a non-empty list of positive widths")
    step, frames = 2 ** len(cfg.channels), 1 + int(SAMPLE_RATE * NOTE_SECONDS) // cfg.hop_length
    for name, size in (
        ("n_mels", cfg.n_mels),
        (f"the frames of a note (1 + 64000 // hop_length={cfg.hop_length})", frames),
    ):
        if size < step:
            raise ConfigError(
                f"{name} = {size} is too small for the model's {len(cfg.channels)} stride-2 layers (channels="
                f"{cfg.channels}): each halves the input, so it needs at least {step}; use fewer channels or a "
                "larger input"
            )
    if not 0 < cfg.peak_tolerance_cents <= 600:
        raise ConfigError(
            f"peak_tolerance_cents={cfg.peak_tolerance_cents!r} must be in (0, 600] cents (half an octave at most); "
            "the default is 50 (a quarter tone)"
        )
    if not 100 <= cfg.bootstrap_n <= 1_000_000:
        raise ConfigError(f"bootstrap_n={cfg.bootstrap_n!r} must be from 100 to 1000000 resamples; the default is 1000")
    _check_factor_ranges(cfg)
    _check_betas(cfg)
    if cfg.dataset == "nsynth" and not cfg.nsynth_path:
        raise ConfigError(
            "dataset='nsynth' needs nsynth_path, the folder of an NSynth split (e.g. -p nsynth_path /data/nsynth-test)"
        )


FACTOR_RANGES = ("attack_range", "decay_range", "brightness_range", "inharmonicity_range", "noise_range")
"""The ranges of the synthetic source's timbre factors (pitch and loudness come from the pitch grid and velocities)."""


def _check_factor_ranges(cfg: Config) -> None:
    """Each factor range is [low, high] of finite numbers, low < high; time ranges span at least one hop."""
    if not 2 <= cfg.factor_levels <= 64:
        raise ConfigError(f"factor_levels={cfg.factor_levels!r} must be from 2 to 64 values per synthetic factor")
    hop_s = cfg.hop_length / SAMPLE_RATE
    for name in FACTOR_RANGES:
        value = getattr(cfg, name)
        try:
            low, high = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={value!r} must be two numbers [low, high]") from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ConfigError(f"{name}={value!r} must be finite with low < high")
        if name in ("attack_range", "decay_range") and (low <= 0 or high - low < hop_s):
            raise ConfigError(
                f"{name}={value!r} s must be positive and span at least one hop ({hop_s * 1000:.0f} ms = "
                f"hop_length {cfg.hop_length} / {SAMPLE_RATE} Hz), or the features cannot see the factor vary; "
                f"widen it (the default is {getattr(Config(), name)})"
            )
    if cfg.inharmonicity_range[0] < 0:
        raise ConfigError(f"inharmonicity_range={cfg.inharmonicity_range!r} must not go below 0 (B >= 0)")


def _check_betas(cfg: Config) -> None:
    """The β lists of chapter 08: non-empty, finite and >= 0 (0 is the plain autoencoder)."""
    for name in ("betas", "corpus_betas"):
        value = getattr(cfg, name)
        try:
            numbers = [float(v) for v in value]
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={value!r} must be a list of numbers") from None
        if not numbers:
            raise ConfigError(f"{name} is empty; give at least one β >= 0, e.g. [0.25, 1, 4, 16]")
        bad = [v for v in numbers if not (math.isfinite(v) and v >= 0)]
        if bad:
            raise ConfigError(
                f"{name}={value!r} holds {bad}: every β must be a finite number >= 0 (0 is the plain autoencoder)"
            )


def make(**params: Any) -> Config:
    """Build a checked Config from keyword parameters; unknown names and bad values raise ConfigError."""
    known = {f.name: f for f in fields(Config)}
    unknown = [k for k in params if k not in known]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, known, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(
            f"unknown parameter {', '.join(hints)}; the known parameters are listed "
            "in vaetone/config.py and params/default.yaml"
        )
    defaults = Config()
    values = {k: _coerce(k, v, getattr(defaults, k)) for k, v in params.items()}
    cfg = dataclasses.replace(defaults, **values)
    _check(cfg)
    return cfg


_NOTEBOOK_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}
PRESET_ENV = "VAETONE_PRESET"
"""Environment variable naming a parameters file whose values a chapter takes for the names it does not declare.

``python -m vaetone.book execute`` sets it, and passes each chapter only the parameters it
declares, so that papermill warns about no unknown parameter."""


def preset_params() -> dict:
    """The parameters of the file named by :data:`PRESET_ENV` ({} when unset).

    Raises:
        ConfigError: when the file cannot be read or holds no mapping.
    """
    path = os.environ.get(PRESET_ENV, "")
    if not path:
        return {}
    try:
        params = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"cannot read the preset {path} named by ${PRESET_ENV}: {exc}; unset it or fix the file"
        ) from exc
    if not isinstance(params, dict):
        raise ConfigError(f"the preset {path} named by ${PRESET_ENV} must hold a mapping of name: value")
    return params


def from_notebook(namespace: dict) -> Config:
    """Build the Config from a notebook's globals: the parameters cell plus papermill's injected cell.

    Names the chapter does not set come from the preset named by :data:`PRESET_ENV`, if any.
    Every plain value whose name does not start with ``_`` must be a known parameter;
    modules, functions and classes are ignored. Used by the validation cell of every chapter.
    """
    params = {
        k: v
        for k, v in namespace.items()
        if not k.startswith("_")
        and k not in _NOTEBOOK_NAMES
        and not isinstance(v, (types.ModuleType, types.FunctionType, type))
        and not callable(v)
    }
    return make(**{**preset_params(), **params})


def load_yaml(path: str | Path) -> Config:
    """Read a parameters file (``params/*.yaml``) into a checked Config."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read parameters file {path}: {exc}") from exc
    if not isinstance(params, dict):
        raise ConfigError(f"parameters file {path} must hold a mapping of name: value")
    return make(**params)


def stage_params(cfg: Config, stage: str) -> dict:
    """The parameters that the cache of ``stage`` depends on, including all earlier stages."""
    order = list(STAGES)
    if stage not in order:
        raise ConfigError(f"unknown stage {stage!r}; stages are {order}")
    keys = [k for s in order[: order.index(stage) + 1] for k in STAGES[s]]
    return {k: getattr(cfg, k) for k in keys}
