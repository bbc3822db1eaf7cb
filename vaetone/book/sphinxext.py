"""A Sphinx extension for the book build: drops duplicate script tags from every page.

Jupyter Book 1 registers sphinx-thebe's inline configuration script twice, so every page
declared ``const THEBE_JS_URL`` twice and the browser logged a SyntaxError. Listed under
``sphinx: extra_extensions`` in ``_config.yml``.
"""

from __future__ import annotations


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
