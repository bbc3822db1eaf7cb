"""Tests of the build stamp (vaetone.book.stamp), the preset a kernel reads, and the parameters a chapter gets."""

from pathlib import Path

import pytest
import yaml

from vaetone import config
from vaetone.book import pipeline, stamp

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("seconds", "text"), [(4.4, "4 s"), (59.6, "1 min 00 s"), (215, "3 min 35 s"), (3725, "1 h 02 min")]
)
def test_duration_reads_as_minutes_and_seconds(seconds, text):
    assert stamp.duration(seconds) == text


def test_record_time_keeps_one_preset_per_folder(tmp_path):
    stamp.record_time(tmp_path, "ci", "01_data", 31.24)
    data = stamp.record_time(tmp_path, "ci", "03_training", 200)
    assert data["chapters"] == {"01_data": 31.2, "03_training": 200.0} and data["preset"] == "ci"
    assert stamp.read_timings(tmp_path)["chapters"]["01_data"] == 31.2
    assert stamp.record_time(tmp_path, "default", "01_data", 5)["chapters"] == {"01_data": 5.0}


def test_substitutions_quote_the_times_of_this_build_and_of_its_siblings(tmp_path):
    stamp.record_time(tmp_path / "ci", "ci", "01_data", 30)
    stamp.record_time(tmp_path / "default", "default", "01_data", 65)
    stamp.record_time(tmp_path / "default", "default", "02_model", 6)
    subs = stamp.substitutions(tmp_path / "default", ["01_data", "02_model", "03_training"])
    assert subs["preset"] == "`default`"
    assert subs["time_01_data"] == "1 min 05 s" and subs["time_02_model"] == "6 s"
    assert subs["time_03_training"] == "not measured in this build"
    table = subs["times_table"].splitlines()
    assert table[2].startswith("| `ci` | 30 s |") and table[3].startswith("| `default` | 1 min 11 s |")
    assert subs["env_python"].startswith("3.") and len(subs["env_lock"]) == 12
    assert subs["book_commit"]  # a hash, or why there is none


def test_write_substitutions_adds_them_to_the_staged_config(tmp_path):
    cfg = tmp_path / "_config.yml"
    cfg.write_text("title: x\nparse:\n  myst_enable_extensions: [substitution]\n")
    stamp.write_substitutions(cfg, tmp_path / "executed", ["01_data"])
    parse = yaml.safe_load(cfg.read_text())["parse"]
    assert parse["myst_enable_extensions"] == ["substitution"]
    assert parse["myst_substitutions"]["time_01_data"] == "not measured in this build"


def test_a_chapter_gets_only_the_parameters_it_declares():
    preset = yaml.safe_load((ROOT / "params" / "ci.yaml").read_text())
    own = pipeline.own_parameters(ROOT / "chapters" / "02_model.md", preset)
    declared = pipeline.declared_parameters(ROOT / "chapters" / "02_model.md")
    assert set(own) <= set(declared) and "epochs" in preset and "epochs" not in declared
    assert all(own[k] == preset[k] for k in own)


def test_the_kernel_takes_what_the_chapter_does_not_declare_from_the_preset(tmp_path, monkeypatch):
    path = pipeline.write_preset({"epochs": 3, "latent_dim": 4}, tmp_path)
    monkeypatch.setenv(config.PRESET_ENV, str(path))
    cfg = config.from_notebook({"latent_dim": 8, "beta": 2.0})
    assert (cfg.epochs, cfg.latent_dim, cfg.beta) == (3, 8, 2.0)
    monkeypatch.delenv(config.PRESET_ENV)
    assert config.from_notebook({"latent_dim": 8}).epochs == config.Config().epochs


def test_a_broken_preset_file_says_where_it_is(tmp_path, monkeypatch):
    bad = tmp_path / "p.yaml"
    bad.write_text("- a list\n")
    monkeypatch.setenv(config.PRESET_ENV, str(bad))
    with pytest.raises(config.ConfigError, match="p.yaml named by \\$VAETONE_PRESET must hold a mapping"):
        config.from_notebook({})
