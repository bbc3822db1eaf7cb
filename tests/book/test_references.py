"""Tests of the bibliography's author-year labels (vaetone.book.sphinxext)."""

from pybtex.database import parse_string

from vaetone.book.sphinxext import AuthorYearLabels

BIB = r"""
@misc{b, author = {Natsiou, Anastasia and Longo, Luca and O'Leary, Se{\'a}n}, title = {An investigation}, year = {2023}}
@misc{a, author = {Natsiou, Anastasia and O'Leary, Se{\'a}n and Longo, Luca}, title = {An exploration}, year = {2023}}
@misc{c, author = {Kingma, Diederik P. and Welling, Max}, title = {Auto-Encoding Variational Bayes}, year = {2014}}
@misc{d, author = {de Cheveign{\'e}, Alain}, title = {YIN}, year = {2002}}
"""


def test_labels_are_author_year_with_a_and_b_for_the_two_2023_papers():
    entries = parse_string(BIB, "bibtex").entries
    ordered = [entries[k] for k in ("a", "b", "c", "d")]
    labels = list(AuthorYearLabels().format_labels(ordered))
    assert labels[:3] == ["Natsiou et al., 2023a", "Natsiou et al., 2023b", "Kingma and Welling, 2014"]
    assert labels[3] == "de Cheveigné, 2002"  # the von part kept, the LaTeX accent decoded
