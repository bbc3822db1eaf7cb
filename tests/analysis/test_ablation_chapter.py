"""Chapter 05 against its stage results: every quoted name is a finding, directions and levels come from them.

The chapter's prose quotes numbers and phrases only through ``{glue:text}`` of the ablation
stage's findings (and the across-seeds stage's). These tests read the chapter's source and check
that each glued name exists, that no sentence types a direction, a comparison or a level of its
own, and that the parameters cell declares every parameter the stage is keyed by.
"""

import ast
import re
from pathlib import Path

import jupytext
import pytest

from vaetone.analysis import ablation, seeds
from vaetone.book.findings import gluable

CHAPTER = Path(__file__).resolve().parents[2] / "chapters" / "05_ablation.md"
GLUED = re.compile(r"\{glue:text\}`([A-Za-z0-9_]+)(?::[^`]*)?`")


def _prose() -> str:
    """The chapter's markdown without its code cells."""
    return "\n".join(c.source for c in jupytext.read(CHAPTER).cells if c.cell_type == "markdown")


def test_every_glued_name_is_a_finding_of_the_chapters_stages(tiny_cfg, stage_store):
    own = {k for k, v in ablation.result(tiny_cfg).findings.items() if gluable(v)}
    across = {k for k, v in seeds.result(tiny_cfg, "ablation").findings.items() if gluable(v)}
    names = set(GLUED.findall(CHAPTER.read_text())) - {"answer", "heatmap_dims"}  # glued by the chapter itself
    assert names, "chapter 05 quotes nothing"
    assert names <= own | across, f"glued but not found: {sorted(names - own - across)}"
    must = {"base_mse_ci", "top_abl", "free_cost", "recovered_test", "vae_vs_pca", "listen_peak_dbfs", "error_bars"}
    assert must <= names  # the intervals, the paired comparison and the level are quoted


def test_no_direction_comparison_or_level_is_typed_by_hand():
    prose = _prose()
    words = re.findall(r"\b(higher|lower|better|significant(?:ly)?|excludes)\b", prose, flags=re.IGNORECASE)
    assert not words, f"chapter 05 types {words}: such words must come from findings (e.g. vae_vs_pca)"
    assert not re.search(r"[−-]?\d+(\.\d+)?\s*dBFS", prose), "a level in dBFS must be glued (listen_peak_dbfs)"
    assert "{glue:text}`listen_peak_dbfs" in prose


def test_the_parameters_cell_declares_what_the_stage_is_keyed_by():
    cells = [c for c in jupytext.read(CHAPTER).cells if c.cell_type == "code"]
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    declared = {stmt.targets[0].id for stmt in ast.parse(tagged[0].source).body}
    assert set(ablation.AblationResult.params) <= declared
    assert "bootstrap_n" in declared and "n_seeds" in declared


@pytest.mark.parametrize("name", ["base_mse_ci", "top_abl", "recovered_test"])
def test_quoted_intervals_of_the_tiny_run_read_as_intervals(tiny_cfg, stage_store, name):
    text = ablation.result(tiny_cfg).findings[name]
    assert "95 % interval" in text or "interval undefined: " in text
    assert "nan" not in text.lower()


def test_the_answer_and_the_heatmaps_come_from_the_package(tiny_cfg, stage_store):
    """The Overview's answer is the package's sentence for the run; the heatmaps show the costliest dimensions only."""
    r, across = ablation.result(tiny_cfg), seeds.result(tiny_cfg, "ablation")
    answer = ablation.overview_answer(r.findings, across.findings)
    assert answer.endswith(".") and r.findings["recovered_test"] in answer
    text = CHAPTER.read_text()
    assert 'glue("answer", ablation.overview_answer(f, s.findings)' in text
    assert 'glue("heatmap_dims", ablation.HEATMAP_DIMS' in text and text.count("top_dims_percent(") == 1
    shown = ablation.top_dims_percent(r.table("by_family"), r.dimension_order)
    assert shown.shape[1] == min(ablation.HEATMAP_DIMS, r.findings["n_dims"])
