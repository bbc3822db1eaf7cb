"""The command line: papermill-style parameters, prepare and train with their JSON lines, and clear refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vaetone import __main__ as cli
from vaetone import config, store
from vaetone.model import runs as model_runs

from .conftest import TINY

ROOT = Path(__file__).resolve().parents[1]


def _last_json(out: str) -> dict:
    """The JSON object on the last line of a command's stdout."""
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def tiny_yaml(tmp_path):
    """TINY as a parameters file."""
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return str(path)


@pytest.mark.parametrize(
    "text, value",
    [
        ("3", 3),
        ("-2", -2),
        ("3.5", 3.5),
        ("1e-3", 0.001),
        ("True", True),
        ("False", False),
        ("None", None),
        ("true", "true"),
        ("cpu", "cpu"),
        ("", ""),
        ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/FluidR3_GM.sf2"),
        ("[25, 127]", [25, 127]),
        ("[]", []),
        ("[/a/x.sf2, /b/y.sf2]", ["/a/x.sf2", "/b/y.sf2"]),
    ],
)
def test_p_values_are_typed_as_papermill_types_them_and_brackets_are_lists(text, value):
    got = cli.typed_value(text)
    assert got == value and type(got) is type(value)


def test_parameters_merge_in_papermills_order(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("epochs: 3\nlatent_dim: 8\nbeta: 2.0\nseed: 1\n")
    second.write_text("epochs: 4\n")
    params = cli.parameters(
        [str(first), str(second)],
        ["{latent_dim: 6, velocities: [25, 127]}"],
        [("beta", "0.5"), ("seed", "5"), ("families", "[brass, reed]")],
        [("seed", "7"), ("nsynth_path", "123")],
    )
    assert params == {
        "epochs": 4,
        "latent_dim": 6,
        "beta": 0.5,
        "seed": "7",
        "velocities": [25, 127],
        "families": ["brass", "reed"],
        "nsynth_path": "123",
    }
    cfg = config.make(**params)
    assert cfg.seed == 7 and cfg.nsynth_path == "123" and cfg.velocities == [25, 127]


def _run(argv, capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["-p", "epoch", "3"], "unknown parameter 'epoch' (did you mean 'epochs'?)"),
        (["-p", "lr", "nan"], "parameter 'lr' must be a finite number, got nan"),
        (["-p", "batch_size", "True"], "parameter 'batch_size' must be a number or text, got True"),
        (["-p", "velocities", "[25, 126]"], "velocities [25, 126] must be a non-empty subset"),
        (["-p", "velocities", "[25,"], "the value '[25,' is not a YAML list"),
        (["-y", "epochs: [3"], "-y 'epochs: [3' is not valid YAML"),
        (["-y", "[3]"], "must hold a mapping of name: value, not list"),
        (["-f", "/nonexistent/params.yaml"], "cannot read parameters file /nonexistent/params.yaml"),
        (["-r", "epochs", "many"], "parameter 'epochs' must be int, got 'many'"),
    ],
)
@pytest.mark.parametrize("command", ["train", "prepare"])
def test_bad_parameters_end_with_one_line_and_exit_1(command, args, message, capsys, isolated_store):
    code, out, err = _run([command, *args], capsys)
    assert code == 1 and out == ""
    assert err.startswith(f"vaetone {command}: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (isolated_store / "data").exists() and not (isolated_store / "runs").exists()  # stopped before work


def test_a_bad_parameter_from_the_shell_gives_exit_1_and_no_traceback(tmp_path):
    env = {**os.environ, "VAETONE_DATA": str(tmp_path / "d"), "VAETONE_RUNS": str(tmp_path / "r")}
    out = subprocess.run(
        [sys.executable, "-m", "vaetone", "train", "-p", "latent_dims", "8"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert out.returncode == 1 and out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.strip() == (
        "vaetone train: error: unknown parameter 'latent_dims' (did you mean 'latent_dim'?); the known "
        "parameters are listed in vaetone/config.py and params/default.yaml"
    )


def test_train_ends_with_its_json_line_and_uses_the_chapters_run(tiny_yaml, capsys, isolated_store):
    code, out, err = _run(["train", "-f", tiny_yaml, "-p", "epochs", "3"], capsys)
    assert code == 0 and err == ""  # no progress bars nor logs when stderr is not a terminal
    report = _last_json(out)
    cfg = config.make(**{**TINY, "epochs": 3})
    assert set(report) == {"run", "epochs", "notes_per_s", "world_size", "device"}
    assert report["run"] == str(store.run_dir(cfg)) and report["epochs"] == 3
    assert report["world_size"] == 1 and report["device"] == "cpu" and report["notes_per_s"] > 0
    seen = []
    run = model_runs.trained_model(cfg, progress=False, callback=lambda e, r: seen.append(e))  # chapter 03's call
    assert seen == [] and str(run.path) == report["run"] and len(run.history) == 3
    code, out, _ = _run(["train", "-f", tiny_yaml, "-y", "epochs: 3"], capsys)
    again = _last_json(out)
    assert code == 0 and again["epochs"] == 3 and again["notes_per_s"] is None  # nothing left to train


def test_train_resumes_an_interrupted_run_and_counts_the_epochs_in_total(tiny_yaml, capsys, isolated_store):
    cfg = config.make(**{**TINY, "epochs": 3})

    def stop_after_one(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model_runs.trained_model(cfg, progress=False, callback=stop_after_one)
    code, out, _ = _run(["train", "-f", tiny_yaml, "-p", "epochs", "3"], capsys)
    report = _last_json(out)
    assert code == 0 and report["epochs"] == 3 and report["notes_per_s"] > 0
    assert model_runs.trained_model(cfg, progress=False).history.index.tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--backend", "nccl"], {}, "the nccl backend needs CUDA GPUs, but this run trains on the CPU"),
        (["-p", "batch_size", "15"], {}, "batch_size=15 is the global batch, shared by the 2 ranks"),
        (["-p", "device", "cuda"], {}, "device 'cuda' was asked for but torch sees no CUDA GPU"),
        ([], {"RANK": "2"}, "inconsistent torchrun environment: RANK=2"),
    ],
)
def test_torchrun_setups_that_cannot_work_are_refused_before_joining(
    args, env, message, tiny_yaml, capsys, monkeypatch, isolated_store
):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2", **env}.items():
        monkeypatch.setenv(name, value)
    code, out, err = _run(["train", "-f", tiny_yaml, *args], capsys)
    assert code == 1 and out == "" and message in err and err.count("\n") == 1
    assert not (isolated_store / "runs").exists()


def test_prepare_ends_with_its_json_line_and_train_reuses_its_cache(tiny_yaml, capsys, isolated_store):
    code, out, err = _run(["prepare", "-f", tiny_yaml], capsys)
    assert code == 0
    report = _last_json(out)
    assert {"notes", "skipped", "splits", "instruments", "features", "seconds"} <= set(report)
    assert report["notes"] == 22 * 3 * 2 == sum(report["splits"].values())
    assert set(report["splits"]) == set(report["instruments"]) == {"train", "valid", "test"}
    assert sum(report["instruments"].values()) == 22 and report["seconds"] >= 0
    cached = {p: p.stat().st_mtime_ns for p in (isolated_store / "data").rglob("*") if p.is_file()}
    code, out, _ = _run(["train", "-f", tiny_yaml, "-p", "epochs", "1"], capsys)
    assert code == 0 and _last_json(out)["epochs"] == 1
    assert {p: p.stat().st_mtime_ns for p in cached} == cached  # features reused, not recomputed
