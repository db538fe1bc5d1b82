"""Docstrings cite equations by their label in the book (`Eq. ch4-bridge-prob, Chapter
4`).

Every citation must name a label that some notebook in book/ defines (`$$ (label)` after
a
display equation), the chapter given with it must be the label's chapter, and no
docstring
may cite a hand-typed number such as "(4.6)" or "Algorithm 6.1" (they go stale).
"""
import ast
import json
import re
from pathlib import Path

import pytest

import blackout_tutorial

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(blackout_tutorial.__file__).resolve().parent
LABEL = re.compile(r"\$\$\s*\(([A-Za-z][\w\-:.]*)\)")
CITATION = re.compile(r"Eq\.\s+([A-Za-z][\w\-]*)(?:,\s*Chapter\s+(\d+))?")
TYPED_NUMBER = re.compile(r"(Eq\.\s*\(|Eqs?\.\s*\d|Algorithm\s+\d+\.\d+|\(\d+\.\d+\))")


def book_labels():
    labels = set()
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            if cell["cell_type"] == "markdown":
                labels.update(LABEL.findall("".join(cell["source"])))
    return labels


def docstrings(source):
    """(name, docstring) of the module and every class and function in ``source``."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(
            node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        ):
            text = ast.get_docstring(node)
            if text:
                yield getattr(node, "name", "<module>"), text


def citation_errors(source, labels):
    """Every bad citation in the docstrings of ``source``, as readable strings."""
    errors = []
    for name, text in docstrings(source):
        for match in TYPED_NUMBER.finditer(text):
            errors.append(f"{name}: typed number {match.group(0)!r} (cite a label)")
        for label, chapter in CITATION.findall(text):
            if label not in labels:
                errors.append(f"{name}: Eq. {label} is defined in no notebook")
            elif chapter and re.match(r"ch(\d+)-", label) and \
                    re.match(r"ch(\d+)-", label).group(1) != chapter:
                errors.append(f"{name}: Eq. {label} is not in Chapter {chapter}")
    return errors


@pytest.fixture(scope="module")
def labels():
    found = book_labels()
    assert len(found) > 40, "the notebooks define their equation labels"
    return found


MODULES = sorted(PACKAGE.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_every_docstring_citation_names_a_book_label(path, labels):
    assert citation_errors(path.read_text(encoding="utf-8"), labels) == []


def test_the_check_can_fail(labels):
    fake = '''
def f():
    """Good: Eq. ch4-bridge-prob, Chapter 4. Bad: Eq. ch4-no-such-label, Chapter 4,
    Eq. ch3-binomial, Chapter 5, and the typed (4.6) and Algorithm 6.1."""
'''
    errors = citation_errors(fake, labels)
    assert len(errors) == 4, errors
    assert any("ch4-no-such-label" in e for e in errors)
    assert any("not in Chapter 5" in e for e in errors)
    assert sum("typed number" in e for e in errors) == 2
    assert citation_errors('"""Eq. ch4-bridge-prob, Chapter 4."""', labels) == []
