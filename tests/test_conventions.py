"""The package's conventions (DESIGN.md), checked: docstrings, chapter links, module size, one-way data flow."""

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vaetone"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 450
"""'Modules stay under about 400 lines'; a little slack, no more."""


def _public(tree: ast.Module):
    """Module-level public functions and classes, and the public methods of public classes."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            yield node.name, node
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                        yield f"{node.name}.{item.name}", item


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_public_function_and_module_has_a_docstring(path):
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path} has no module docstring"
    missing = [name for name, node in _public(tree) if not ast.get_docstring(node)]
    assert not missing, f"{path}: public names without a docstring: {missing}"


def test_docstrings_link_to_chapters_in_one_form():
    chapters = {p.stem for p in (ROOT / "chapters").glob("[0-9][0-9]_*.md")}
    bad = []
    for path in MODULES:
        text = path.read_text()
        for m in re.finditer(r"\b(Chapters?:?|Used by:)[ \t]+([^\n]*)", text):
            head, rest = m.groups()
            if head == "Used by:" and re.match(r"\d{2}", rest):
                bad.append(f"{path.name}: {m.group(0)!r}")
            elif head.startswith("Chapter") and re.match(r"\d{2}", rest):
                names = re.findall(r"\d{2}[\w-]*", rest)
                if not head.endswith(":") or any(n not in chapters for n in names):
                    bad.append(f"{path.name}: {m.group(0)!r}")
    assert not bad, "write chapter links as 'Chapter: 04_sensitivity' or 'Chapters: 04_sensitivity, 05_ablation':\n" + (
        "\n".join(bad)
    )


def test_no_module_is_too_long():
    long = {
        str(p.relative_to(PACKAGE)): n for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_the_package_never_reads_what_a_chapter_wrote():
    for path in MODULES:
        text = path.read_text()
        assert not re.search(r"\d{2}_\w+\.json", text), f"{path} names a chapter's JSON file"


def test_chapters_compute_no_quoted_numbers_and_stay_short():
    sys.path.insert(0, str(ROOT / "scripts"))
    from chapter_lines import code_lines

    total = sum(code_lines(p) for p in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md")))
    assert total <= 380, f"the chapters hold {total} code lines; the package should do the work (at most 380)"
    for path in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md")):
        assert "save_results" not in path.read_text(), f"{path.name} writes results itself"
