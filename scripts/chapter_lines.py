"""Count the code lines of each chapter (lines inside ``{code-cell}`` blocks, without cell options).

Usage: ``python scripts/chapter_lines.py [chapters/*.md]``; prints one line per chapter and the total.
"""

import sys
from pathlib import Path


def code_lines(path: Path) -> int:
    """Non-blank code lines of a MyST chapter, not counting ``:tags:`` options or the fences."""
    count, inside = 0, False
    for line in path.read_text().splitlines():
        if line.startswith("```{code-cell}"):
            inside = True
        elif inside and line.startswith("```"):
            inside = False
        elif inside and line.strip() and not line.startswith(":"):
            count += 1
    return count


def main(argv: list[str]) -> int:
    """Print the counts."""
    paths = [Path(p) for p in argv] or sorted(Path("chapters").glob("[0-9][0-9]_*.md"))
    total = 0
    for p in paths:
        n = code_lines(p)
        total += n
        print(f"{p.stem:>16} {n:4d}")
    print(f"{'total':>16} {total:4d}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
