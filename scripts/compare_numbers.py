"""Check that two runs of the chapters quote the same numbers (the refactoring check of ``make test``-sized runs).

Compares, chapter by chapter, every glued value (``glue(name, ...)``: what the prose quotes)
and the text output of every ``# NBVAL_CHECK_OUTPUT`` cell of two folders of executed
notebooks, as written by ``python -m vaetone.book execute --out DIR``::

    python scripts/compare_numbers.py BEFORE_DIR AFTER_DIR [--rtol 1e-9]

Numbers are compared with a relative tolerance; text exactly. A name glued in BEFORE but not
in AFTER is reported as missing; new names are listed. Exits 1 when anything differs.
"""

import argparse
import ast
import json
import math
import sys
from pathlib import Path

RECORD = "application/papermill.record/text/plain"


def glued(nb: dict) -> dict[str, str]:
    """Every glued value of a notebook: name -> its text/plain repr."""
    out = {}
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            if name and RECORD in o.get("data", {}):
                out[name] = o["data"][RECORD]
    return out


def checked(nb: dict) -> list[str]:
    """The stream output of every ``# NBVAL_CHECK_OUTPUT`` cell, in order."""
    texts = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "NBVAL_CHECK_OUTPUT" in "".join(cell["source"]):
            texts.append("".join("".join(o.get("text", "")) for o in cell.get("outputs", [])))
    return texts


def same(a: str, b: str, rtol: float) -> bool:
    """Equal reprs, or numbers equal within ``rtol``."""
    if a == b:
        return True
    try:
        x, y = ast.literal_eval(a), ast.literal_eval(b)
    except (ValueError, SyntaxError):
        return False
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return math.isclose(x, y, rel_tol=rtol, abs_tol=1e-12) or (math.isnan(x) and math.isnan(y))
    return x == y


def compare(before: Path, after: Path, rtol: float) -> list[str]:
    """The differences between two executed folders, one line each."""
    problems = []
    for old in sorted((before / "chapters").glob("*.ipynb")):
        new = after / "chapters" / old.name
        if not new.exists():
            problems.append(f"{old.stem}: not executed in {after}")
            continue
        a, b = json.loads(old.read_text()), json.loads(new.read_text())
        ga, gb = glued(a), glued(b)
        for name, value in ga.items():
            if name not in gb:
                problems.append(f"{old.stem}: glue {name!r} missing (was {value})")
            elif not same(value, gb[name], rtol):
                problems.append(f"{old.stem}: glue {name!r}: {value} -> {gb[name]}")
        added = sorted(set(gb) - set(ga))
        if added:
            print(f"{old.stem}: new glued names {added}")
        ca, cb = checked(a), checked(b)
        for i, text in enumerate(ca):
            if i >= len(cb) or text != cb[i]:
                problems.append(
                    f"{old.stem}: checked output {i} differs:\n  {text!r}\n  {cb[i] if i < len(cb) else None!r}"
                )
        print(f"{old.stem}: {len(ga)} glued values, {len(ca)} checked outputs compared")
    return problems


def main(argv=None) -> int:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rtol", type=float, default=1e-9)
    args = parser.parse_args(argv)
    problems = compare(args.before, args.after, args.rtol)
    print("\n".join(problems) if problems else "the same numbers")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
