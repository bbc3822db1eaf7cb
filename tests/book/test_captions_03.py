"""Chapter 03's captions and sentences: no direction, comparison, significance or level is typed by hand.

Every such statement (a question asks, it states nothing) is either a glued phrase of the
evaluation stage's findings (checked here against the run's numbers) or one of the
definitional sentences listed in :data:`DEFINITIONS`.
"""

import re
from pathlib import Path

import numpy as np
import pytest

from vaetone.analysis import evaluation, intervals, scores

CHAPTER = Path(__file__).resolve().parents[2] / "chapters" / "03_training.md"

WORDS = re.compile(
    r"\b(rises?|rising|falls?|falling|grows?|growing|increases?|decreases?|higher|lower|better|worse|"
    r"smaller|larger|louder|quieter|improves?|significant(ly)?|dBFS|peaks? at)\b",
    re.IGNORECASE,
)
"""Words that state a direction, a comparison, significance or a level."""

DEFINITIONS = {
    "For the distances and f0 errors lower is better; for precision, recall and F1, 1 is perfect.",
    "A difference is called significant only when its interval excludes 0.",
}
"""Sentences that define a scale or a rule (true whatever the run finds), not a finding."""


def prose(text: str) -> str:
    """The chapter's text and figure captions, outside code cells, maths and front matter, roles removed."""
    text = re.sub(r"```\{code-cell\}.*?```", " ", text, flags=re.DOTALL)
    text = re.sub(r"^```.*$|^:name:.*$", " ", text, flags=re.MULTILINE)  # a figure's fences, not its caption
    text = re.sub(r"\$\$.*?\$\$( \([\w-]+\))?", " ", text, flags=re.DOTALL)
    text = re.sub(r"^---.*?---", " ", text, flags=re.DOTALL)
    return re.sub(r"\{(glue:text|cite:p|cite:t|numref|ref|eq|doc)\}`[^`]*`", "GLUED", text)


def sentences(text: str) -> list[str]:
    """Sentences of the prose (split at '. ' and paragraph ends), whitespace and emphasis normalised."""
    flat = [" ".join(p.replace("*", "").split()) for p in re.split(r"\n\s*\n", text)]
    return [s.strip() for p in flat for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", p) if s.strip()]


def test_no_direction_comparison_or_level_is_typed_outside_a_glue():
    found = [s for s in sentences(prose(CHAPTER.read_text())) if WORDS.search(s) and not s.endswith("?")]
    typed = [s for s in found if s not in DEFINITIONS]
    assert not typed, "state these from the findings (a glued phrase) or list them as definitions:\n" + "\n".join(typed)
    assert set(found) == DEFINITIONS, "a listed definition is no longer in the chapter"


def test_the_old_fixed_kl_caption_is_gone():
    text = CHAPTER.read_text()
    assert "grows while its weight is warmed up" not in text and "{glue:text}`kl_trend`" in text
    assert "{glue:text}`kl_reading`" in text and "{glue:text}`vae_vs_ae_reading`" in text


def test_the_sentence_helpers_find_a_typed_direction():
    text = "Intro.\n\n*The KL term {glue:text}`kl_trend`. It rises while warmed up.*\n\n```{code-cell}\nx = 1\n```"
    assert [s for s in sentences(prose(text)) if WORDS.search(s)] == ["It rises while warmed up."]
    caption = "```{glue:figure} fig-03-x\n:name: fig-03-x\n\nThe loss falls.\n```\n\n$$\nx\n$$ (eq-03-x)"
    assert sentences(prose(caption)) == ["The loss falls."]


@pytest.fixture
def tiny_result(tiny_cfg, stage_store):
    return evaluation.result(tiny_cfg)


def test_every_glued_name_is_a_finding_of_the_stage(tiny_result):
    names = set(re.findall(r"\{glue:text\}`([^`:]+)", CHAPTER.read_text()))
    assert names and not names - set(tiny_result.findings), names - set(tiny_result.findings)


def test_the_glued_phrases_follow_the_runs_numbers(tiny_result):
    r, f = tiny_result, tiny_result.findings
    kl = r.table("history")["valid_kl"].round(1)
    if "peak of" not in f["kl_trend"] and "low of" not in f["kl_trend"]:
        word = {1: "rises", -1: "falls", 0: "stays"}[int(np.sign(kl.iloc[-1] - kl.iloc[0]))]
        assert f["kl_trend"].startswith(word)
    comp = r.table("comparison")
    for model, prefix in scores.PREFIX.items():
        for key, metric in scores.METRICS.items():
            text, value = f[f"{prefix}_{key}_ci"], comp.loc[model, key]
            if np.isfinite(comp.loc[model, f"{key}_low"]):
                ci = intervals.Interval(value, comp.loc[model, f"{key}_low"], comp.loc[model, f"{key}_high"], 1, 1)
                assert text == ci.text(metric.digits, metric.unit)
            else:
                assert "interval undefined" in text
    for row in r.table("paired").itertuples():
        stem = f"{scores.SHORT[row.model_a]}_vs_{scores.SHORT[row.model_b]}_{row.metric}"
        phrase = f[stem]
        if row.verdict.startswith("undefined"):
            assert phrase == row.verdict and not row.significant
            continue
        digits = scores.METRICS[row.metric].digits
        if round(abs(row.difference), digits):
            assert phrase.split()[2 - (scores.METRICS[row.metric].unit == "")] == (
                "higher" if row.difference > 0 else "lower"
            )
        assert ("the interval excludes 0" in phrase) == bool(row.significant) == (row.low > 0 or row.high < 0)
    assert f["vae_vs_ae_reading"] == scores.vae_vs_ae_reading(r.table("paired").iloc[0])
    assert f["summary"].startswith("On notes of unseen instruments") and f["VAE_lsd_db_ci"] in f["summary"]
    assert f["answer"].startswith(f["summary"])
    played = {"example_level": r.arrays["recon_audio"], "prior_level": r.arrays["prior_audio"][None]}
    for level, audio in played.items():
        peaks = 20 * np.log10(np.abs(audio.reshape(len(audio), -1)).max(axis=1))  # measured on what is played
        np.testing.assert_allclose(peaks, -1.0, atol=1e-3)
        assert "its loudest sample is at -1.0 dBFS" in f[level]


def test_every_figure_is_numbered_referenced_and_every_formula_labelled():
    text = CHAPTER.read_text()
    figures = re.findall(r"```\{glue:figure\} (\S+)\n:name: (\S+)", text)
    assert figures and all(a == b and a.startswith("fig-03-") for a, b in figures)
    glued = set(re.findall(r'glue_figure\("(fig-03-[^"]+)"', text))
    assert glued == {a for a, _ in figures}, "every glued figure is shown, and every shown one glued"
    for name, _ in figures:
        assert f"{{numref}}`{name}`" in text, f"{name} is not referenced from the prose"
    assert "{eq}`eq-02-loss`" in text and "hide-input" not in text and "players.audio_grid" not in text
    labels = re.findall(r"\$\$ \((eq-03-[\w-]+)\)", text)
    assert labels and all(f"{{eq}}`{label}`" in text for label in labels)
