"""The chapter pipeline: MyST chapters → notebooks (jupytext) → executed (papermill) → HTML (Jupyter Book).

Used by the Makefile::

    python -m vaetone.book execute --params params/ci.yaml --out _build/executed/ci
    python -m vaetone.book build --executed _build/executed/ci --html _build/ci --strict

The book is built from the executed notebooks with execution off, in a staging folder
that holds no ``.md`` twin of any chapter (Jupyter Book would prefer the ``.md``).
"""

from __future__ import annotations

import argparse
import ast
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from vaetone import config, store
from vaetone.errors import ConfigError

log = logging.getLogger(__name__)
BOOK_FILES = ("_config.yml", "_toc.yml", "intro.md", "reproduce.md", "references.md", "references.bib")


def chapter_sources(root: Path | None = None) -> list[Path]:
    """The chapter sources ``chapters/NN_name.md``, in order."""
    root = root or store.root()
    return sorted((root / "chapters").glob("[0-9][0-9]_*.md"))


def toc_chapters(root: Path | None = None) -> list[str]:
    """The chapter names (``NN_name``) listed in ``_toc.yml``, in order."""
    toc = yaml.safe_load(((root or store.root()) / "_toc.yml").read_text())
    entries = [c for part in toc.get("parts", [toc]) for c in part.get("chapters", [])]
    return [Path(e["file"]).name for e in entries if e.get("file", "").startswith("chapters/")]


def to_notebook(source: Path, target: Path) -> Path:
    """Convert a MyST markdown chapter to an unexecuted ``.ipynb`` (jupytext)."""
    import jupytext

    nb = jupytext.read(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(nb, target)
    return target


def declared_parameters(source: Path) -> list[str]:
    """The names a chapter declares in its cell tagged ``parameters``, in order."""
    import jupytext

    for cell in jupytext.read(source).cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            return [t.id for stmt in tree.body if isinstance(stmt, ast.Assign) for t in stmt.targets]
    raise ConfigError(f"{source} has no code cell tagged 'parameters'; add one (see DESIGN.md, chapter conventions)")


def own_parameters(source: Path, parameters: dict) -> dict:
    """The part of a preset that a chapter declares (what papermill may inject without a warning)."""
    return {k: parameters[k] for k in declared_parameters(source) if k in parameters}


def write_preset(parameters: dict, out_dir: Path) -> Path:
    """Write the whole preset to ``<out_dir>/preset.yaml`` (atomically) for the chapters' kernels to read."""
    path = Path(out_dir) / "preset.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(dict(parameters), sort_keys=True))
    tmp.replace(path)
    return path


def execute_chapter(source: Path, out_dir: Path, parameters: dict) -> Path:
    """Execute one chapter with papermill; the executed notebook is written atomically.

    The chapter gets only the parameters it declares, so papermill warns about nothing; the
    rest of the preset reaches its configuration through the file named by
    :data:`vaetone.config.PRESET_ENV` (read by :func:`vaetone.config.from_notebook`).

    Args:
        source: ``chapters/NN_name.md``.
        out_dir: folder that receives ``chapters/NN_name.ipynb``.
        parameters: the whole preset (checked against :mod:`vaetone.config`).
    Returns:
        The path of the executed notebook.
    """
    import papermill

    config.make(**parameters)  # fail before starting a kernel
    own = own_parameters(source, parameters)
    os.environ[config.PRESET_ENV] = str(write_preset(parameters, out_dir).resolve())
    os.environ["VAETONE_PROGRESS"] = "0"  # progress bars are noise in a static page
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures into the notebook
    target = out_dir / "chapters" / f"{source.stem}.ipynb"
    running = out_dir / "running" / target.name  # kept, with the traceback, if the chapter fails
    raw = to_notebook(source, out_dir / "raw" / target.name)
    running.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(raw),
        str(running),
        parameters=own,
        cwd=str(source.parent),
        kernel_name="python3",
        progress_bar=False,
        log_output=False,
    )
    _prepare_for_book(running)
    target.parent.mkdir(parents=True, exist_ok=True)
    running.replace(target)
    return target


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _prepare_for_book(path: Path) -> None:
    """Make an executed notebook ready for the static book, in place.

    Folds papermill's injected-parameters cell (shown on a click), and drops live-widget
    outputs and the saved widget state: no kernel runs in the HTML, and the state would make
    the page load widget scripts from a CDN. The live explorer stays in the ``.md`` chapter.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")
            cell["source"] = "# Parameters of this run (papermill)\n" + cell["source"].removeprefix("# Parameters\n")
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    nbformat.write(nb, path)


def execute(params_file: Path, out_dir: Path, only: list[str] | None = None) -> list[Path]:
    """Execute every chapter (or those whose name starts with one of ``only``) on a parameters file.

    Each chapter's wall time is recorded in ``<out_dir>/timings.json`` (:func:`vaetone.book.stamp.record_time`).
    """
    from vaetone.book import stamp

    parameters = yaml.safe_load(Path(params_file).read_text()) or {}
    config.make(**parameters)
    done = []
    for source in chapter_sources():
        if only and not any(source.stem.startswith(o) for o in only):
            continue
        start = time.perf_counter()
        print(f"[book] executing {source.name} on {params_file} ...", flush=True)
        done.append(execute_chapter(source, Path(out_dir), parameters))
        seconds = time.perf_counter() - start
        stamp.record_time(Path(out_dir), Path(params_file).stem, source.stem, seconds)
        print(f"[book] {source.name} done in {seconds:.1f} s", flush=True)
    return done


def stage(executed: Path, staging: Path) -> Path:
    """Lay out a book source folder: the book files plus the executed chapters (no ``.md`` twins)."""
    root = store.root()
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "chapters").mkdir(parents=True)
    for name in BOOK_FILES:
        shutil.copy2(root / name, staging / name)
    shutil.copytree(root / "_static", staging / "_static")
    for name in toc_chapters(root):
        nb = executed / "chapters" / f"{name}.ipynb"
        if not nb.exists():
            raise ConfigError(
                f"chapter {name} (in _toc.yml) has no executed notebook at {nb}; "
                "run `python -m vaetone.book execute` first"
            )
        shutil.copy2(nb, staging / "chapters" / nb.name)
    return staging


def build(executed: Path, html_parent: Path, strict: bool = False) -> Path:
    """Build the HTML book from executed notebooks, with execution off, into ``<html_parent>/html``.

    Args:
        executed: folder written by :func:`execute`.
        html_parent: the book lands in ``<html_parent>/html``.
        strict: treat Sphinx warnings as errors (CI).
    Returns:
        The path of ``index.html``.
    """
    from vaetone.book import checks, stamp

    staging = stage(Path(executed), Path(executed) / "book_src")
    checks.check_book(staging)  # an illegible figure or a misaligned sound grid fails here, not in the browser
    stamp.write_substitutions(staging / "_config.yml", Path(executed), toc_chapters())
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(staging), "--path-output", str(staging)]
    if strict:
        cmd += ["-W", "--keep-going"]
    subprocess.run(cmd, check=True)
    html = Path(html_parent) / "html"
    tmp, old = html.with_name(".html.new"), html.with_name(".html.old")
    for leftover in (tmp, old):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(staging / "_build" / "html", tmp)  # the old book stays until the new one is complete
    if html.exists():
        html.rename(old)
    tmp.rename(html)
    shutil.rmtree(old, ignore_errors=True)
    return html / "index.html"


def main(argv: list[str] | None = None) -> int:
    """Command line of the pipeline (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m vaetone.book")
    sub = parser.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("execute", help="run the chapters with papermill")
    ex.add_argument("--params", required=True, type=Path)
    ex.add_argument("--out", required=True, type=Path)
    ex.add_argument("--only", nargs="*", help="chapter name prefixes, e.g. 01 03")
    bd = sub.add_parser("build", help="build the HTML book from executed chapters")
    bd.add_argument("--executed", required=True, type=Path)
    bd.add_argument("--html", type=Path, default=Path("_build"))
    bd.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.cmd == "execute":
        execute(args.params, args.out, args.only)
    else:
        print(f"[book] built {build(args.executed, args.html, args.strict)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
