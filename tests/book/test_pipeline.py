"""Tests of the chapter pipeline and of the chapters' conventions (vaetone.book)."""

import ast
from pathlib import Path

import jupytext
import nbformat
import pytest

from vaetone import config
from vaetone.book import pipeline

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = pipeline.chapter_sources(ROOT)


def test_every_chapter_is_in_the_table_of_contents_and_back():
    assert [c.stem for c in CHAPTERS] == pipeline.toc_chapters(ROOT)
    assert len(CHAPTERS) == 8


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_one_parameters_cell_of_known_literals_then_the_check(source):
    cells = [c for c in jupytext.read(source).cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{source.name}: {len(tagged)} cells tagged parameters"
    params = {}
    for stmt in ast.parse(cells[tagged[0]].source).body:
        assert isinstance(stmt, ast.Assign), f"{source.name}: the parameters cell holds only assignments"
        params[stmt.targets[0].id] = ast.literal_eval(stmt.value)  # plain literals only
    assert config.make(**params) == config.make(**{k: getattr(config.Config(), k) for k in params}), (
        f"{source.name}: the parameters cell must hold the package defaults (params/default.yaml)"
    )
    assert "config.from_notebook(globals())" in cells[tagged[0] + 1].source


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_checks_numbers_and_quotes_a_stage_result(source):
    text = source.read_text()
    assert "# NBVAL_CHECK_OUTPUT" in text and "{glue:text}" in text
    assert "glue_findings(" in text, f"{source.name} must quote its numbers from a stage result's findings"
    assert "save_results" not in text, f"{source.name}: the stage result is the chapter's saved record"


def test_prepare_for_book_folds_parameters_and_drops_live_widgets(tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"widgets": {"state": {}}})
    injected = nbformat.v4.new_code_cell("# Parameters\nlatent_dim = 5\n", metadata={"tags": ["injected-parameters"]})
    widget = nbformat.v4.new_code_cell("display(app)")
    widget.outputs = [
        nbformat.v4.new_output("display_data", data={pipeline.WIDGET_VIEW: {}, "text/plain": "VBox()"}),
        nbformat.v4.new_output("display_data", data={"text/plain": "kept"}),
    ]
    nb.cells = [injected, widget]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    pipeline._prepare_for_book(path)
    out = nbformat.read(path, as_version=4)
    assert "widgets" not in out.metadata
    assert "hide-input" in out.cells[0].metadata.tags and "latent_dim = 5" in out.cells[0].source
    assert [o["data"]["text/plain"] for o in out.cells[1].outputs] == ["kept"]


def test_a_bad_parameter_stops_the_chapter_in_its_first_cell(tmp_path):
    papermill = pytest.importorskip("papermill")
    nb = pipeline.to_notebook(ROOT / "chapters" / "02_model.md", tmp_path / "02.ipynb")
    with pytest.raises(papermill.PapermillExecutionError, match="n_mels=0 must be > 0"):
        papermill.execute_notebook(
            str(nb),
            str(tmp_path / "out.ipynb"),
            parameters={"n_mels": 0},
            kernel_name="python3",
            progress_bar=False,
            cwd=str(tmp_path),
        )
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    ran = [c for c in executed.cells if c.cell_type == "code" and c.get("execution_count")]
    assert len(ran) == 3  # the parameters, the injected parameters, and the check that failed


def test_execute_refuses_unknown_parameters_before_starting_a_kernel(tmp_path):
    with pytest.raises(config.ConfigError, match="datset"):
        pipeline.execute_chapter(ROOT / "chapters" / "01_data.md", tmp_path, {"datset": "synthetic"})
    assert not (tmp_path / "chapters").exists()
