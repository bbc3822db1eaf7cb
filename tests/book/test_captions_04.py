"""Chapter 04's prose against its results: every quoted name is a finding, and no level or interval is typed by hand."""

import re
from pathlib import Path

from vaetone.analysis import seeds, seeds_labels, sensitivity
from vaetone.book.findings import gluable

CHAPTER = Path(__file__).resolve().parents[2] / "chapters" / "04_sensitivity.md"


def prose() -> str:
    """The chapter's markdown without its code cells."""
    return re.sub(r"```\{code-cell\}.*?```", "", CHAPTER.read_text(), flags=re.S)


def test_every_glued_name_is_a_quotable_finding_of_the_run(tiny_cfg, stage_store):
    findings = {**sensitivity.result(tiny_cfg).findings, **seeds.result(tiny_cfg, "sensitivity").findings}
    names = set(re.findall(r"\{glue:text\}`([A-Za-z0-9_]+)", prose()))
    quoted = {"strip_peak_dbfs", "change_interval", "label_moves_held", "label_rule", "labels_held", "sobol_sum_s1"}
    assert quoted <= names and "top_dims_across" in names
    missing = sorted(n for n in names if n not in findings or not gluable(findings[n]))
    assert not missing, f"chapter 04 quotes names its results do not hold: {missing}"


def test_levels_directions_and_intervals_are_quoted_not_typed():
    text = prose()
    assert not re.search(r"[−-]?\d+(\.\d+)?\s*dBFS", text), "a level in dBFS must be glued (strip_peak_dbfs)"
    assert not re.search(r"interval \d", text), "an interval must be glued from the findings"
    caption = text[text.index("*The same decodes as sound") :].split("*\n")[0]
    assert "{glue:text}`strip_peak_dbfs:.1f` dBFS" in caption


def test_dimensions_are_named_only_by_the_names_that_hold_across_seeds():
    """The reference seed's names (top_dims, label_moves, dimension_descriptor, strip_labels) are never quoted."""
    text = CHAPTER.read_text()
    quoted = set(re.findall(r"\{glue:text\}`([A-Za-z0-9_]+)", text))
    assert not quoted & {"top_dims", "label_moves", "dimension_descriptor"}, quoted & {"top_dims", "label_moves"}
    assert 'f["strip_labels"]' not in text and text.count('sr.findings["strip_labels_held"]') == 2
    assert "held_labels(cfg)" in text and "reference seed's name" in text  # the reference's reading is titled as such


def test_the_held_names_in_the_findings_follow_the_rule(tiny_cfg, stage_store):
    f = seeds.result(tiny_cfg, "sensitivity").findings
    held, ref = seeds_labels.held_labels(tiny_cfg), sensitivity.result(tiny_cfg).findings
    assert f["top_dims_across"] == ", ".join(f"z{d} ({held[d]})" for d in ref["top_dimensions"])
    named = [d for d in ref["top_dimensions"] if held[d] not in ("mixed", "none")]
    assert all(f"z{d} " in f["label_moves_held"] for d in named)
    assert [label.split(" = ")[0] for label in f["strip_labels_held"][:: len(ref["strip_values"])]] == [
        f"z{d} ({held[d]})" for d in ref["top_dimensions"]
    ]
