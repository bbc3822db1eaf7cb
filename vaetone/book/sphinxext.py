"""A Sphinx extension for the book build: author-year citation labels, and no duplicate script tags.

- **Citations.** A pybtex label style, registered as ``vaetone_author_year``, labels an entry
  "Natsiou et al., 2023a": the first author's surname (with "and" for two authors, "et al." for
  more) and the year, with a, b, ... where one label would name two works. The formatting style
  ``vaetone`` (pybtex's ``unsrt``, which prints DOIs, sorted by author, year and title) uses it;
  ``_config.yml`` sets ``bibtex_default_style: vaetone`` and ``bibtex_reference_style: label``
  so the text cites by the same label the bibliography lists.
- **Scripts.** Jupyter Book 1 registers sphinx-thebe's inline configuration script twice, so
  every page declared ``const THEBE_JS_URL`` twice and the browser logged a SyntaxError.

Listed under ``sphinx: extra_extensions`` in ``_config.yml``.
"""

from __future__ import annotations

import string
from collections import Counter

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle


def _surname(person) -> str:
    """A person's surname as printed: von part and last names, LaTeX accents decoded ("Cheveigné")."""
    return Text.from_latex(" ".join(person.prelast_names + person.last_names)).render_as("text")


def author_year(entry) -> str:
    """The author-year label of one pybtex entry without its suffix, e.g. "Natsiou et al., 2023"."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_surname(p) for p in people]
    if not names:
        who = entry.fields.get("organization") or entry.fields.get("title", "Anonymous").split(":")[0]
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    """Labels "Surname et al., 2023", with "a", "b", ... in order where two works would share a label."""

    def format_labels(self, sorted_entries):
        """Yield one label per entry, in the order given (the bibliography's sorting)."""
        entries = list(sorted_entries)
        bases = [author_year(e) for e in entries]
        counts, seen = Counter(bases), Counter()
        for base in bases:
            if counts[base] > 1:
                yield base + string.ascii_lowercase[seen[base]]
                seen[base] += 1
            else:
                yield base


class AuthorYearStyle(UnsrtStyle):
    """pybtex's unsrt formatting (DOIs included), sorted by author, year and title, with author-year labels."""

    default_label_style = "vaetone_author_year"
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.labels", "vaetone_author_year", AuthorYearLabels)
register_plugin("pybtex.style.formatting", "vaetone", AuthorYearStyle)


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    """Keep the first of identical script entries (same file, same attributes and body)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        attrs = tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items()))
        key = (str(getattr(js, "filename", js) or ""), attrs)  # None and "" both mean inline
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    """Register the page hook (late, after the themes have added their scripts)."""
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
