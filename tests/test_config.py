"""Tests of vaetone.config: names, coercion, range checks and the parameter files."""

from pathlib import Path

import pytest
import yaml

from vaetone import config
from vaetone.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_equal_default_yaml():
    values = yaml.safe_load((ROOT / "params" / "default.yaml").read_text())
    assert set(values) == set(config.names())
    assert config.load_yaml(ROOT / "params" / "default.yaml") == config.Config()


@pytest.mark.parametrize("name", ["default", "ci", "paper", "nsynth"])
def test_every_preset_is_valid(name):
    cfg = config.load_yaml(ROOT / "params" / f"{name}.yaml")
    assert isinstance(cfg, config.Config)


def test_unknown_name_suggests_the_close_one():
    with pytest.raises(ConfigError, match="'datset'.*did you mean 'dataset'"):
        config.make(datset="synthetic")


@pytest.mark.parametrize(
    "params, match",
    [
        ({"dataset": "nsynt"}, "dataset='nsynt' is not one of"),
        ({"n_mels": 0}, "n_mels=0 must be > 0"),
        ({"latent_dim": 0}, "latent_dim=0 must be > 0"),
        ({"beta": -1}, "beta=-1.0 must be >= 0"),
        ({"lr": 0}, "lr=0.0 must be > 0"),
        ({"pitch_min": 80, "pitch_max": 60}, "pitch range 80..60"),
        ({"velocities": [30]}, "velocities"),
        ({"families": ["banjo"]}, "families \\['banjo'\\] unknown"),
        ({"f_max": 9000}, "f_max <= 8000"),
        ({"n_mels": "many"}, "n_mels' must be int"),
        ({"latent_dim": 2.5}, "latent_dim' must be int"),
        ({"dataset": "nsynth"}, "needs nsynth_path"),
        ({"peak_tolerance_cents": 0}, "peak_tolerance_cents=0.0 must be in \\(0, 600\\] cents"),
        ({"peak_tolerance_cents": 1200}, "peak_tolerance_cents=1200.0 must be in \\(0, 600\\] cents"),
        ({"bootstrap_n": 10}, "bootstrap_n=10 must be from 100 to 1000000 resamples"),
        ({"bootstrap_n": 10**7}, "bootstrap_n=10000000 must be from 100"),
        ({"valid_fraction": 0.6, "test_fraction": 0.5}, "sum to less than 1"),
        ({"n_mels": 8, "channels": [4, 8, 16, 32]}, "n_mels = 8 is too small for the model's 4 stride-2 layers"),
        (
            {"hop_length": 1024, "n_fft": 1024, "n_mels": 128, "channels": [2] * 7},
            "the frames of a note .* = 63 is too small",
        ),
    ],
)
def test_bad_values_raise_clear_errors(params, match):
    with pytest.raises(ConfigError, match=match):
        config.make(**params)


@pytest.mark.parametrize(
    "name, value",
    [
        ("beta", "nan"),
        ("lr", float("inf")),
        ("grad_clip", float("nan")),
        ("weight_decay", "nan"),
        ("free_bits", "inf"),
        ("sweep_sigma", float("inf")),
        ("f_min", "-inf"),
        ("peak_tolerance_cents", "nan"),
        ("valid_fraction", float("nan")),
    ],
)
def test_every_float_parameter_must_be_finite(name, value):
    with pytest.raises(ConfigError, match=f"parameter '{name}' must be a finite number"):
        config.make(**{name: value})


def test_integer_parameters_refuse_nan_and_infinity():
    for value in ("nan", float("inf")):
        with pytest.raises(ConfigError, match="'epochs' must be int"):
            config.make(epochs=value)


def test_papermill_strings_are_coerced():
    cfg = config.make(latent_dim="5", beta="0.5", velocities=127)
    assert (cfg.latent_dim, cfg.beta, cfg.velocities) == (5, 0.5, [127])


def test_from_notebook_ignores_modules_and_functions_but_not_typos():
    import math

    ns = {"math": math, "f": lambda: 1, "In": [], "_": None, "latent_dim": 8}
    assert config.from_notebook(ns).latent_dim == 8
    with pytest.raises(ConfigError, match="latentdim"):
        config.from_notebook({**ns, "latentdim": 4})


def test_stage_params_accumulate():
    cfg = config.Config()
    assert "n_mels" not in config.stage_params(cfg, "data")
    assert {"dataset", "n_mels", "latent_dim", "beta"} <= set(config.stage_params(cfg, "train"))
