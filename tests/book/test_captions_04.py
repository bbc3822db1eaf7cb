"""Chapter 04's prose against its results: every quoted name is a finding, and no level or interval is typed by hand."""

import re
from pathlib import Path

from vaetone.analysis import seeds, seeds_labels, sensitivity
from vaetone.book.findings import gluable

CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"
CHAPTER = CHAPTERS / "04_sensitivity.md"


def prose(path: Path = CHAPTER) -> str:
    """The chapter's markdown without its code cells."""
    return re.sub(r"```\{code-cell\}.*?```", "", path.read_text(), flags=re.S)


def code(path: Path = CHAPTER) -> str:
    """The chapter's code cells only."""
    return "\n".join(re.findall(r"```\{code-cell\}.*?```", path.read_text(), flags=re.S))


def caption(text: str, label: str) -> str:
    """The caption of the glued figure ``label``."""
    return text.split(f"```{{glue:figure}} {label}\n:name: {label}\n", 1)[1].split("\n```", 1)[0]


def test_every_glued_name_is_a_quotable_finding_of_the_run(tiny_cfg, stage_store):
    findings = {**sensitivity.result(tiny_cfg).findings, **seeds.result(tiny_cfg, "sensitivity").findings}
    names = set(re.findall(r"\{glue:text\}`([A-Za-z0-9_]+)", prose())) - {"answer"}
    quoted = {"strip_peak_dbfs", "change_interval", "label_moves_held", "label_rule", "labels_held", "sobol_sum_s1"}
    assert quoted <= names and "top_dims_across" in names
    missing = sorted(n for n in names if n not in findings or not gluable(findings[n]))
    assert not missing, f"chapter 04 quotes names its results do not hold: {missing}"


def test_levels_directions_and_intervals_are_quoted_not_typed():
    text = prose()
    assert not re.search(r"[−-]?\d+(\.\d+)?\s*dBFS", text), "a level in dBFS must be glued (strip_peak_dbfs)"
    assert not re.search(r"interval \d", text), "an interval must be glued from the findings"
    strips = caption(text, "fig-04-strips")
    assert "{glue:text}`strip_peak_dbfs:.1f` dBFS" in strips and "one gain for the whole" in strips


def test_dimensions_are_named_only_by_the_names_that_hold_across_seeds():
    """The reference seed's names (top_dims, label_moves, dimension_descriptor, strip_labels) are never quoted."""
    text = CHAPTER.read_text()
    quoted = set(re.findall(r"\{glue:text\}`([A-Za-z0-9_]+)", text))
    assert not quoted & {"top_dims", "label_moves", "dimension_descriptor"}, quoted & {"top_dims", "label_moves"}
    assert 'f["strip_labels"]' not in text and "strip_grid(" in text and ", held)" in text
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


def test_the_answer_is_glued_from_the_package_and_holds_for_the_run(tiny_cfg, stage_store):
    f, across = sensitivity.result(tiny_cfg).findings, seeds.result(tiny_cfg, "sensitivity").findings
    answer = sensitivity.overview_answer(f, across)
    assert answer.count(". ") == 0 and answer.endswith(".") and across["top_dims_across"] in answer
    assert 'glue("answer", sensitivity.overview_answer(f, sr.findings)' in code()


def test_both_chapters_follow_the_frame_and_number_every_figure():
    """Overview with the answer, Summary, What's next; every figure a numbered glued figure, referenced; no toggles."""
    for path in (CHAPTER, CHAPTERS / "05_ablation.md"):
        text, stem = path.read_text(), path.stem
        heads = re.findall(r"^## (.+)$", text, flags=re.M)
        assert heads[0] == "Overview" and heads[-2:] == ["Summary", "What's next"], (stem, heads)
        assert "**Answer.** {glue:text}`answer`" in text and f"{{{{ time_{stem} }}}}" in text
        assert "hide-input" not in text and "hide-output" not in text
        assert "spectrogram_grid" not in text and "audio_grid" not in text and "sound_grid(" in text
        glued = re.findall(r'glue_figure\("(fig-0[45]-[a-z-]+)"', text) + re.findall(
            r'glue_figure\(f"(fig-0[45]-)\{name\}"', text
        )
        figures = re.findall(r"```\{glue:figure\} (\S+)\n:name: (\S+)", text)
        assert figures and all(a == b for a, b in figures), stem
        assert all(any(name.startswith(g) for g in glued) for name, _ in figures), stem
        for name, _ in figures:
            assert f"{{numref}}`{name}`" in prose(path), f"{stem}: {name} is never referenced"
        for label in re.findall(r"\$\$ \((eq-0[45]-[a-z-]+)\)", text):
            assert f"{{eq}}`{label}`" in text, f"{stem}: {label} is never referenced"
        assert re.findall(r"\$\$ \((eq-0[45]-[a-z-]+)\)", text), stem
