#!/usr/bin/env bash
# README command 1: set up everything on a fresh machine, then build the book.
# Extra arguments go to `jupyter-book build` (CI passes: -W -n --keep-going).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/offline_assets.sh      # MathJax + widget manager served locally (needs npm)
.venv/bin/jupyter-book build . "$@"
echo "The book is at: file://$PWD/_build/html/index.html"
