"""Every value a page's prose glues in ({glue:text}`key`) is stored by that notebook.

The book is built from the stored outputs (no execution), so a markdown reference to a
key that no code cell glues, or that the stored outputs lack, breaks the build only at
the very end of CI. This finds it in a second.
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
# {glue}`key`, {glue:text}`key:.2f`, {glue:any}`key`, and ```{glue:figure} key
REFERENCE = re.compile(r"\{glue(?::\w+)?\}`([\w\-]+)|\{glue:\w+\}\s+([\w\-]+)")
RECORD = "application/papermill.record/"


def referenced_keys(cells):
    keys = set()
    for cell in cells:
        if cell["cell_type"] == "markdown":
            for inline, block in REFERENCE.findall("".join(cell["source"])):
                keys.add(inline or block)
    return keys


def stored_keys(cells):
    keys = set()
    for cell in cells:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook", {})
            if scrapbook.get("mime_prefix") == RECORD:
                keys.add(scrapbook["name"])
    return keys


def missing_keys(notebook):
    cells = notebook["cells"]
    return sorted(referenced_keys(cells) - stored_keys(cells))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_glued_reference_is_stored(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert missing_keys(notebook) == [], f"{path.name}: glued in prose but never stored"


def test_the_check_can_fail():
    prose = {"cell_type": "markdown",
             "source": ["mean {glue:text}`a:.1f`, {glue}`b` and\n",
                        "```{glue:figure} c\n"]}
    record = {"output_type": "display_data", "data": {RECORD + "text/plain": "1"},
              "metadata": {"scrapbook": {"mime_prefix": RECORD, "name": "a"}}}
    code = {"cell_type": "code", "source": [], "outputs": [record]}
    assert missing_keys({"cells": [prose, code]}) == ["b", "c"]
    assert missing_keys({"cells": [code]}) == []
