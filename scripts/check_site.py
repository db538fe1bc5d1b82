"""Open built pages in headless Chromium and fail unless the math was typeset offline and every
local asset the page references exists. Screenshots go to _build/screenshots/.

Usage: python scripts/check_site.py PAGE.html [PAGE.html ...]   (paths under _build/html)
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

HTML = Path("_build/html")
SHOTS = Path("_build/screenshots")


def chromium():
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    sys.exit("check_site: no Chromium found (install Debian's `chromium` or set CHROMIUM)")


def run_chromium(args):
    profile = tempfile.mkdtemp()
    base = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--window-size=1280,2000"]
    out = subprocess.run(base + args, capture_output=True, text=True, timeout=180)
    shutil.rmtree(profile, ignore_errors=True)
    return out.stdout


def missing_local_assets(page):
    """Local src/href targets (scripts, styles, images, fonts) that do not exist on disk."""
    text = page.read_text(encoding="utf-8")
    missing = []
    for ref in re.findall(r'(?:src|href)="([^"#?]+)', text):
        url = urlparse(ref)
        if url.scheme or ref.startswith("//") or ref.startswith("mailto:"):
            continue
        target = (page.parent / unquote(url.path)).resolve()
        if not target.exists():
            missing.append(ref)
    return missing


def check(page):
    page = page if page.is_absolute() else Path.cwd() / page
    problems = [f"missing local asset: {m}" for m in missing_local_assets(page)]
    dom = run_chromium(["--dump-dom", page.as_uri()])
    n_math = dom.count("<mjx-container")
    if n_math == 0:
        problems.append("no typeset math (no <mjx-container> in the rendered DOM)")
    if re.search(r"https?://cdn", " ".join(re.findall(r'<script[^>]+src="([^"]+)"', dom))):
        problems.append("a script is loaded from a CDN")
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = (SHOTS / (page.stem + ".png")).resolve()
    run_chromium([f"--screenshot={shot}", page.as_uri()])
    print(f"{page}: {n_math} typeset equations, screenshot {shot}")
    return problems


def main(pages):
    failures = {p: check(Path(p)) for p in pages}
    bad = {p: f for p, f in failures.items() if f}
    for p, f in bad.items():
        print(f"FAIL {p}: " + "; ".join(f[:10]))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main(sys.argv[1:] or [str(HTML / "book" / "intro.html")])
