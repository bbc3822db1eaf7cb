"""Step 5: the book: the chapter pipeline (:mod:`~vaetone.book.pipeline`), plots, audio players,
the explorer, and a small Sphinx extension.
"""
