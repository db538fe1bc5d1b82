"""One repository URL: pyproject.toml `[project.urls] Repository` is the source.

Fails when _config.yml (`repository: url:`), README.md (its clone/install lines) or a
chapter notebook's Colab install cell (`git+<URL>` under `google.colab`) disagree with
it, and, when the book is built, when a page's Colab, Binder or repository button does
not open book/NN_name.ipynb on the configured branch of that repository.

Usage: python scripts/check_urls.py [--no-html]
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GITHUB = re.compile(r"https://github\.com/[\w.-]+/[\w.-]+?(?=\.git\b|[/\s\"'`)@#]|$)")


def repository_url(root=ROOT):
    text = (root / "pyproject.toml").read_text()
    block = re.search(r"^\[project\.urls\]\n(.*?)(?=^\[|\Z)", text,
                      re.MULTILINE | re.DOTALL)
    pattern = r'^Repository\s*=\s*"([^"]+)"'
    found = block and re.search(pattern, block.group(1), re.MULTILINE)
    if not found:
        raise SystemExit("pyproject.toml: no `Repository = ...` in [project.urls]")
    return found.group(1).rstrip("/")


def config_value(root, key):
    """`repository:` sub-key of _config.yml (url or branch), without a YAML parser."""
    text = (root / "_config.yml").read_text()
    block = re.search(r"^repository:\n((?:[ \t]+.*\n?)*)", text, re.MULTILINE)
    pattern = rf"^\s+{key}:\s*\"?([^\"\s#]+)"
    found = block and re.search(pattern, block.group(1), re.MULTILINE)
    return found.group(1).rstrip("/") if found else None


def readme_problems(root, url):
    text = (root / "README.md").read_text()
    out = [] if url in text else [f"README.md does not mention {url}"]
    for line in text.splitlines():
        if re.search(r"git clone|git\+|pip install", line):
            for other in GITHUB.findall(line):
                if other != url:
                    out.append(f"README.md: {other} in {line.strip()!r}")
    return out


def notebook_problems(root, url):
    out = []
    for path in sorted((root / "book").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        first = code[0] if code else ""
        if "google.colab" not in first or f"git+{url}" not in first:
            out.append(f"{path.name}: first code cell does not install "
                       f"git+{url} on Colab")
        for src in code:
            for other in re.findall(r"git\+(https://[^\s\"'`@#]+)", src):
                if other.rstrip("/").removesuffix(".git") != url:
                    out.append(f"{path.name}: installs git+{other}")
    return out


def launch_problems(root, url, branch):
    """Colab/Binder/repository buttons of the built chapter pages."""
    html = root / "_build" / "html" / "book"
    slug = url.removeprefix("https://github.com/")
    out = []
    for page in sorted(html.glob("[0-9][0-9]_*.html")):
        text = page.read_text(encoding="utf-8")
        nb = f"book/{page.stem}.ipynb"
        want = {
            "Colab": "https://colab.research.google.com/github/"
                     f"{slug}/blob/{branch}/{nb}",
            "Binder": f"https://mybinder.org/v2/gh/{slug}/{branch}?urlpath=tree/{nb}",
        }
        hrefs = re.findall(r'href="(https://[^"]+)"', text)
        for name, link in want.items():
            host = link.split("/")[2]
            got = [h.replace("&amp;", "&") for h in hrefs if h.split("/")[2] == host]
            if link not in got:
                found = got[0] if got else "missing"
                out.append(f"{page.name}: {name} button {found} != {link}")
        if url not in hrefs:
            out.append(f"{page.name}: no repository button to {url}")
    return out


def problems(root=ROOT, html=True):
    url = repository_url(root)
    out = []
    if config_value(root, "url") != url:
        out.append(f"_config.yml repository.url {config_value(root, 'url')} != {url}")
    branch = config_value(root, "branch") or "main"
    if branch != "main":
        out.append(f"_config.yml repository.branch is {branch}, not main")
    out += readme_problems(root, url) + notebook_problems(root, url)
    if html and (root / "_build" / "html" / "book").is_dir():
        out += launch_problems(root, url, branch)
    return url, out


def main(argv):
    url, out = problems(html="--no-html" not in argv)
    for p in out:
        print(f"FAIL {p}")
    print(f"check_urls: repository {url}: {len(out)} disagreements")
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
