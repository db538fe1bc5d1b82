"""`python scripts/check_site.py --self-test`: every check of check_site.py and
check_urls.py must catch a page (or a repository) built to fail it, and pass a clean
one."""
import json
import shutil
import tempfile
from pathlib import Path

import check_site
import check_urls

HEAD = """<!DOCTYPE html><html><head><meta charset="utf-8">
<script>window.MathJax = {{options: {{processHtmlClass: "math",
  ignoreHtmlClass: "tex2jax_ignore"}}}};</script>
<script defer src="{mathjax}"></script>
<style>article {{ width: 420px; padding: 0 10px; }}</style></head>
<body class="tex2jax_ignore"><article class="bd-article">"""
CLEAN = """<h1 id="top">Clean</h1>
<div class="math" id="equation-short"><span class="eqno">(1.1)</span>\\[ a + b \\]</div>
<p>See <a href="#equation-short">Eq. (1.1)</a> and
<a href="02_bad.html#top">the other page</a>.</p>
<table><tr><td>1</td><td>2</td></tr></table></article></body></html>"""
BAD = """<h1 id="top">Bad</h1>
<div class="math" id="equation-wide"><span class="eqno">(9.9)</span>\\[ {wide} \\]</div>
<div class="math">\\[ x^{{2}}^{{3}} \\]</div>
<p>Left raw: $$ x^2 $$. See Exercise Exercise 3.</p>
<table><tr><td style="white-space: nowrap">{cell}</td></tr></table>
<div class="cell_input"><pre>{line}</pre></div>
<p><a href="nope.html">gone</a> <a href="01_clean.html#nowhere">anchor</a>
<img src="missing.png"> <img src="https://example.invalid/remote.png"></p>
<style>@font-face {{ font-family: Gone; src: url(missing-font.woff2); }}</style>
<p style="font-family: Gone">text in a font that does not load</p>
<script>fetch("https://example.invalid/data.json").catch(() => null);</script>
</article></body></html>"""
EXPECT = {
    "math error": "math error:",
    "raw TeX": "raw TeX in visible text",
    "doubled word": "doubled reference word: 'Exercise Exercise 3'",
    "wide equation": "equation (9.9) wide overflows",
    "wide table": "table overflows",
    "broken link": "broken link <a> nope.html",
    "broken anchor": "broken anchor 01_clean.html#nowhere",
    "broken image": "broken link <img> missing.png",
    "remote resource": "remote resource <img> https://example.invalid/remote.png",
    "remote request": "remote request https://example.invalid/data.json",
    "failed load": "missing-font.woff2 (net::ERR_FILE_NOT_FOUND)",
    "numbering": "number '(9.9)' is not of chapter 2",
}


def mathjax_url():
    for path in ("_offline/static/mathjax/tex-mml-chtml.js",
                 "_build/html/_static/mathjax/tex-mml-chtml.js"):
        if (check_site.ROOT / path).exists():
            return (check_site.ROOT / path).as_uri()
    raise SystemExit("self-test needs MathJax: run scripts/offline_assets.sh first")


def site_self_test(tmp):
    head = HEAD.format(mathjax=mathjax_url())
    wide = " + ".join(f"x_{{{i}}}^{{2}}" for i in range(60))
    (tmp / "01_clean.html").write_text(head + CLEAN)
    bad = BAD.format(wide=wide, cell="w" * 200, line="y" * 200)
    (tmp / "02_bad.html").write_text(head + bad)
    browser = check_site.Browser()
    try:
        tab = check_site.Tab(browser)
        clean = check_site.check_page(tab, tmp / "01_clean.html", shots=tmp)
        bad = check_site.check_page(tab, tmp / "02_bad.html", shots=tmp)
    finally:
        browser.close()
    errors = [f"clean page flagged: {f}" for f in clean["fail"]]
    print("self-test bad page:\n  " + "\n  ".join(bad["fail"] + bad["note"]))
    for name, needle in EXPECT.items():
        if not any(needle in f for f in bad["fail"]):
            errors.append(f"{name} not caught (wanted {needle!r})")
    if not any("1 code" in n for n in bad["note"]):
        errors.append("sideways-scrolling code block not reported")
    if not (tmp / "02_bad.png").stat().st_size:
        errors.append("no screenshot")
    return errors, len(bad["fail"])


def fake_repo(tmp, url, config_url, readme, install, colab):
    (tmp / "book").mkdir(parents=True)
    (tmp / "pyproject.toml").write_text(f'[project.urls]\nRepository = "{url}"\n')
    config = f"repository:\n  url: {config_url}\n  branch: main\n"
    (tmp / "_config.yml").write_text(config)
    (tmp / "README.md").write_text(readme)
    cell = {"cell_type": "code", "source": [install]}
    (tmp / "book" / "01_a.ipynb").write_text(json.dumps({"cells": [cell]}))
    html = tmp / "_build" / "html" / "book"
    html.mkdir(parents=True)
    binder = "https://mybinder.org/v2/gh/o/r/main?urlpath=tree/book/01_a.ipynb"
    (html / "01_a.html").write_text(f'<a href="{colab}"></a><a href="{binder}"></a>'
                                    f'<a href="{url}"></a>')


def urls_self_test(tmp):
    url = "https://github.com/o/r"
    good_cell = ("import sys\nif 'google.colab' in sys.modules:\n"
                 f"    !pip install git+{url}\n")
    colab = "https://colab.research.google.com/github/o/r/blob/main/book/01_a.ipynb"
    fake_repo(tmp / "good", url, url, f"pip install git+{url}\n", good_cell, colab)
    other = "https://github.com/x/y"
    fake_repo(tmp / "bad", url, other, f"pip install git+{other}\n",
              good_cell.replace("o/r", "x/r"), colab.replace("book/01_a", "01_a"))
    good = check_urls.problems(tmp / "good")[1]
    errors = [f"consistent repo flagged: {p}" for p in good]
    found = check_urls.problems(tmp / "bad")[1]
    for needle in ("_config.yml repository.url", "README.md does not mention",
                   "README.md: https://github.com/x/y", "01_a.ipynb: first code cell",
                   "01_a.ipynb: installs git+https://github.com/x/r", "Colab button"):
        if not any(needle in p for p in found):
            errors.append(f"check_urls missed {needle!r}")
    return errors, len(found)


def self_test():
    tmp = Path(tempfile.mkdtemp(prefix="check_site-selftest-", dir="/tmp"))
    try:
        site_errors, n_site = site_self_test(tmp)
        url_errors, n_url = urls_self_test(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for e in site_errors + url_errors:
        print(f"SELF-TEST FAIL: {e}")
    print(f"self-test: bad page gave {n_site} defects ({len(EXPECT)} kinds expected), "
          f"bad repository {n_url} disagreements; "
          f"{'all checks can fail' if not site_errors + url_errors else 'BROKEN'}")
    return 1 if site_errors + url_errors else 0
