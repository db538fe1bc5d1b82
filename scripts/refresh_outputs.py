"""Re-execute notebooks and store their outputs the way `pytest --nbval` compares them.

Usage:
    python scripts/refresh_outputs.py book/02_master_equation.ipynb ...
    BLACKOUT_PROFILE=smoke python scripts/refresh_outputs.py --keep-ignored \
        book/07_digits.ipynb

The kernel gets the environment of the test run (root conftest.py: thread count, hash
seed, no progress bars), so what is stored is what nbval reproduces. The profile is
the caller's (`BLACKOUT_PROFILE`, default `laptop`): training chapters store their
richest run.

`--keep-ignored` re-executes the notebook but keeps the stored outputs of the cells
marked `# NBVAL_IGNORE_OUTPUT` (matched by cell id). Those cells hold the profile-
dependent results (a laptop training, its samples and metrics), which nbval never
compares; every other cell's output is profile-independent by the book's rule, so a fast
`smoke` run refreshes it exactly. Use it after a change that alters no result (renamed
functions, printed source, rounding of printed checks); a change of behaviour needs a
full run in the richer profile.
"""
import argparse
import copy
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

MARKER = "NBVAL_IGNORE_OUTPUT"


def test_environment():
    """The variables the root conftest.py sets for `pytest --nbval` kernels."""
    env = {"OMP_NUM_THREADS": "2", "PYTHONHASHSEED": "0", "BLACKOUT_PROGRESS": "0",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    env.update({k: os.environ[k] for k in env if k in os.environ})
    env["BLACKOUT_PROFILE"] = os.environ.get("BLACKOUT_PROFILE", "laptop")
    return env


def is_ignored(cell):
    return cell.cell_type == "code" and (
        cell.source.lstrip().startswith(f"# {MARKER}")
        or MARKER in cell.get("metadata", {}).get("tags", []))


def execute(path, timeout):
    nb = nbformat.read(path, as_version=4)
    stored = {c.get("id"): copy.deepcopy(c.outputs) for c in nb.cells if is_ignored(c)}
    os.environ.update(test_environment())
    for cell in nb.cells:  # wall-clock stamps only make diffs noisy
        cell.get("metadata", {}).pop("execution", None)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb, stored


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--keep-ignored", action="store_true",
                        help="keep stored outputs of NBVAL_IGNORE_OUTPUT cells")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        if not path.is_file():
            parser.exit(2, f"refresh_outputs: no notebook at {path}\n")
    for path in args.notebooks:
        start = time.perf_counter()
        nb, stored = execute(path, args.timeout)
        kept = 0
        for cell in nb.cells:
            old = stored.get(cell.get("id"))
            if args.keep_ignored and is_ignored(cell) and old is not None:
                cell.outputs = old  # the new execution count: nbval needs one
                kept += 1
        nbformat.write(nb, path)
        print(f"{path}: executed in {time.perf_counter() - start:.0f} s "
              f"(profile {os.environ['BLACKOUT_PROFILE']}, kept {kept} ignored cells)")


if __name__ == "__main__":
    sys.exit(main())
