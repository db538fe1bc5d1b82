#!/usr/bin/env bash
# Create .venv (if missing) with the exact, tested environment and the package in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e . 2>/dev/null \
  || .venv/bin/python -m pip install --quiet --no-deps -e .
.venv/bin/python -c "import blackout_tutorial as b, torch; print('environment ready: blackout_tutorial', b.__version__, '| torch', torch.__version__)"
