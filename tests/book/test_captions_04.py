"""Chapter 04's prose against its results: every quoted name is a finding, and no level or interval is typed by hand."""

import re
from pathlib import Path

from vaetone.analysis import seeds, sensitivity
from vaetone.book.findings import gluable

CHAPTER = Path(__file__).resolve().parents[2] / "chapters" / "04_sensitivity.md"


def prose() -> str:
    """The chapter's markdown without its code cells."""
    return re.sub(r"```\{code-cell\}.*?```", "", CHAPTER.read_text(), flags=re.S)


def test_every_glued_name_is_a_quotable_finding_of_the_run(tiny_cfg, stage_store):
    findings = {**sensitivity.result(tiny_cfg).findings, **seeds.result(tiny_cfg, "sensitivity").findings}
    names = set(re.findall(r"\{glue:text\}`([A-Za-z0-9_]+)", prose()))
    assert {"strip_peak_dbfs", "change_interval", "label_moves", "label_rule", "labels_held", "sobol_sum_s1"} <= names
    missing = sorted(n for n in names if n not in findings or not gluable(findings[n]))
    assert not missing, f"chapter 04 quotes names its results do not hold: {missing}"


def test_levels_directions_and_intervals_are_quoted_not_typed():
    text = prose()
    assert not re.search(r"[−-]?\d+(\.\d+)?\s*dBFS", text), "a level in dBFS must be glued (strip_peak_dbfs)"
    assert not re.search(r"interval \d", text), "an interval must be glued from the findings"
    caption = text[text.index("*The same decodes as sound") :].split("*\n")[0]
    assert "{glue:text}`strip_peak_dbfs:.1f` dBFS" in caption
