"""Check every page of the built book in headless Chromium (DevTools protocol, a pipe).

Fails on: a MathJax error, raw `$$` / `\\begin` / `\\(` left untypeset in the visible
text, a doubled reference word ("Exercise Exercise 3"), a display equation or a table
wider than its column (measured in the browser), a local link, image, script or style
that does not resolve (with the #fragments of internal links), a local resource that
fails to load, and any request to a remote host (only file: and data: are allowed).
Reports (does not fail on) code/output blocks that scroll sideways, cramped table cells.
Saves a full-page screenshot of each page into _build/screenshots/.

Usage:
  python scripts/check_site.py                 # all pages of _build/html
  python scripts/check_site.py PAGE.html ...   # some pages
  python scripts/check_site.py --report FILE   # also write the defect list as Markdown
  python scripts/check_site.py --self-test     # prove each check can fail
"""
import argparse
import base64
import re
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cdp import Browser

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
MEASURE = (Path(__file__).resolve().parent / "site_measure.js").read_text()
SKIPPED = {
    "index.html": "a redirect to book/intro.html",
    "search.html": "filled by JavaScript from a query string; no content of its own",
    "genindex.html": "generated index of API names; links checked through api.html",
    "py-modindex.html": "generated module index; links checked through api.html",
}
LOCAL_SCHEMES = ("file", "data", "blob", "about")
WAIT_JS = """(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  if (document.querySelector('script[src*="mathjax"]')) {
    for (let i = 0; i < 100 && !(window.MathJax && MathJax.startup
         && MathJax.startup.promise); i++) await sleep(100);
    if (window.MathJax && MathJax.startup) await MathJax.startup.promise;
  }
  await document.fonts.ready;
  return document.querySelectorAll("mjx-container").length;
})()"""


class Tab:
    """One page target: open, wait for math and network to settle, measure, shoot."""

    def __init__(self, browser, width=1280):
        self.b = browser
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        self.s = browser.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            browser.call(f"{domain}.enable", self.s)
        self.width = width
        self.resize(1000)

    def evaluate(self, js, await_promise=False):
        reply = self.b.call("Runtime.evaluate", self.s, expression=js,
                            returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"page script failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def load(self, url):
        """Open `url`; return the network log {requestId: [url, error or None]}."""
        self.b.events()
        self.b.call("Page.navigate", self.s, url=url)
        net, loaded, pending = {}, False, set()
        quiet_since, deadline = None, time.monotonic() + 60
        while time.monotonic() < deadline:
            for ev in self.b.events(wait=0.1):
                loaded |= self._record(ev, net, pending)
            if loaded and not pending:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 0.5:
                    break
            else:
                quiet_since = None
        self.evaluate(WAIT_JS, await_promise=True)
        time.sleep(0.3)
        for ev in self.b.events():
            self._record(ev, net, pending)
        return net

    def _record(self, ev, net, pending):
        method, p = ev.get("method", ""), ev.get("params", {})
        if method == "Network.requestWillBeSent":
            net[p["requestId"]] = [p["request"]["url"], None]
            pending.add(p["requestId"])
        elif method in ("Network.loadingFinished", "Network.loadingFailed"):
            pending.discard(p["requestId"])
            if method == "Network.loadingFailed" and p["requestId"] in net:
                net[p["requestId"]][1] = p.get("errorText", "failed")
        return method == "Page.loadEventFired"

    def screenshot(self, path):
        """Full page: make the viewport as tall as the page, shoot, restore it."""
        size = self.b.call("Page.getLayoutMetrics", self.s)["cssContentSize"]
        height = min(int(size["height"]) + 1, 60000)
        self.resize(height)
        try:
            shot = self.b.call("Page.captureScreenshot", self.s, format="png")
        finally:
            self.resize(1000)
        path.write_bytes(base64.b64decode(shot["data"]))

    def resize(self, height):
        self.b.call("Emulation.setDeviceMetricsOverride", self.s, width=self.width,
                    height=height, deviceScaleFactor=1, mobile=False)


_IDS = {}


def page_ids(path):
    if path not in _IDS:
        text = path.read_text(encoding="utf-8", errors="replace")
        _IDS[path] = set(re.findall(r'\b(?:id|name)="([^"]+)"', text))
    return _IDS[path]


def link_problems(page, refs, live_ids):
    """Local references that do not resolve; remote resources the page embeds."""
    out = []
    for ref in refs:
        url = urlparse(ref["url"])
        if url.scheme in ("http", "https"):
            if ref["tag"] != "a":
                out.append(f"remote resource <{ref['tag']}> {ref['raw']}")
            continue
        if url.scheme != "file":
            continue
        target = Path(unquote(url.path))
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            out.append(f"broken link <{ref['tag']}> {ref['raw']}")
        elif ref["tag"] == "a" and url.fragment and target.suffix == ".html":
            ids = live_ids if target == page else page_ids(target)
            if unquote(url.fragment) not in ids:
                out.append(f"broken anchor {ref['raw']}")
    return sorted(set(out))


def numbering_problems(page, numbers):
    """On chapter NN's page every equation/figure/exercise number reads NN.k."""
    chapter = re.match(r"(\d\d)_", page.name)
    if not chapter:
        return [f"number {n!r} on an unnumbered page" for n in numbers]
    ok = re.compile(rf"^\(?(?:\w+ )?{int(chapter.group(1))}\.\d+\)?$")
    return [f"number {n!r} is not of chapter {int(chapter.group(1))}"
            for n in numbers if not ok.match(n)]


def network_problems(net):
    out = []
    for url, error in net.values():
        scheme = urlparse(url).scheme
        if scheme not in LOCAL_SCHEMES:
            out.append(f"remote request {url[:120]}")
        elif error and error != "net::ERR_ABORTED":
            out.append(f"failed to load {unquote(url)[:160]} ({error})")
    return sorted(set(out))


def check_page(tab, page, shots=SHOTS):
    """All defects of one page: {'fail': [...], 'note': [...], 'typeset': n}."""
    net = tab.load(page.as_uri())
    m = tab.evaluate(MEASURE)
    fail = [f"math error: {e['message']} in `{e['tex']}`" for e in m["mathErrors"]]
    fail += [f"raw TeX in visible text: {t!r}" for t in m["rawTex"]]
    fail += [f"doubled reference word: {t!r}" for t in m["doubled"]]
    for e in m["wideEquations"]:
        name = e["label"].replace("equation-", "") or "(no label)"
        fail.append(f"equation {e['number'] or ''} {name} overflows by {e['px']} px "
                    f"(column {m['column']} px): `{e['tex']}`")
    fail += [f"table overflows by {t['px']} px: {t['head']!r}" for t in m["wideTables"]]
    fail += numbering_problems(page, m["numbers"])
    fail += link_problems(page, m["refs"], set(m["ids"]))
    fail += network_problems(net)
    sc = m["scrolling"]
    note = []
    if sc["input"] + sc["output"] + sc["other"]:
        note.append(f"blocks scrolling sideways: {sc['input']} code, "
                    f"{sc['output']} output, {sc['other']} other "
                    f"(longest line {sc['widest']} chars)")
    if m["bareImages"]:
        note.append(f"{m['bareImages']} output images without a numbered caption")
    if m["crampedCells"]:
        note.append(f"{m['crampedCells']} table cells wrap over 3+ lines")
    shots.mkdir(parents=True, exist_ok=True)
    tab.screenshot(shots / (page.stem + ".png"))
    return {"fail": fail, "note": note, "typeset": m["typeset"]}


def all_pages(html=HTML):
    """All built .html pages but SKIPPED, and the toc pages that were not built."""
    pages, missing = [], []
    toc = (ROOT / "_toc.yml").read_text()
    for name in re.findall(r"(?:root|file):\s*(\S+)", toc):
        if not (html / f"{name}.html").exists():
            missing.append(f"{name}.html")
    for path in sorted(html.rglob("*.html")):
        rel = path.relative_to(html).as_posix()
        if rel.split("/")[0] in ("_static", "_sources", "_images"):
            continue
        if rel in SKIPPED:
            print(f"skip {rel}: {SKIPPED[rel]}")
            continue
        pages.append(path)
    return pages, missing


def write_report(results, path, missing):
    n_bad = sum(1 for r in results.values() if r["fail"])
    lines = ["# Site report (scripts/check_site.py)", "",
             f"Built pages checked: {len(results)}; pages with defects: {n_bad}.", ""]
    lines += [f"- MISSING toc page: {m}" for m in missing]
    for page, r in results.items():
        lines.append(f"## {page} ({len(r['fail'])} defects, "
                     f"{r['typeset']} formulas typeset)")
        lines += [f"- {f}" for f in r["fail"]]
        lines += [f"- note: {n}" for n in r["note"]] + [""]
    Path(path).write_text("\n".join(lines) + "\n")


def run(pages, report=None, missing=()):
    browser = Browser()
    results = {}
    try:
        tab = Tab(browser)
        for page in pages:
            page = Path(page).resolve()
            results[page.relative_to(ROOT).as_posix()] = r = check_page(tab, page)
            status = "FAIL" if r["fail"] else "ok  "
            notes = "".join(f"; {n}" for n in r["note"])
            print(f"{status} {page.relative_to(ROOT)}: {r['typeset']} formulas "
                  f"typeset, {len(r['fail'])} defects{notes}")
            for f in r["fail"]:
                print(f"       {f}")
    finally:
        browser.close()
    if report:
        write_report(results, report, missing)
    for m in missing:
        print(f"FAIL: toc page {m} was not built")
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pages", nargs="*", help="pages to check (default: all)")
    ap.add_argument("--report", help="write the defect list as Markdown to this file")
    ap.add_argument("--self-test", action="store_true",
                    help="prove each check can fail")
    args = ap.parse_args(argv)
    if args.self_test:
        from check_site_selftest import self_test
        return self_test()
    missing = []
    pages = [Path(p) for p in args.pages]
    if not pages:
        pages, missing = all_pages()
    if not pages:
        sys.exit(f"no pages under {HTML}: build the book first")
    results = run(pages, args.report, missing)
    bad = sum(1 for r in results.values() if r["fail"])
    print(f"check_site: {len(results)} pages, {bad} with defects, "
          f"{sum(len(r['fail']) for r in results.values())} defects in all")
    return 1 if bad or missing else 0


if __name__ == "__main__":
    sys.exit(main())
