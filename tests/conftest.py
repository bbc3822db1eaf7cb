"""Shared pytest options and fixtures."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_addoption(parser):
    parser.addoption("--book-html", default="", help="folder of a built book (index.html) for the browser tests")
    parser.addoption("--book-src", default="", help="the staged book source (executed notebooks) of that book")
