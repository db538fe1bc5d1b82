"""Train one of the shipped real-data checkpoints with the package's CLI and export it.

    OMP_NUM_THREADS=1 python scripts/train_shipped.py mnist --data-dir ../shared/data

``NAME`` is ``mnist``, ``binarized-mnist`` or ``cifar10``. The recipe has stages:
first the preset ``NAME-cpu`` trains into ``runs/NAME``; then each continuation of
``CONTINUATIONS[NAME]`` restarts from the exported model (its EMA weights as raw and
EMA weights, a fresh Adam state, the cosine learning rate of a run of that many steps
from the exported step on: ``runs.start_finetune``) and trains into
``runs/NAME-to{STEPS}``. Every stage resumes if its folder holds a checkpoint (run the
same command again to continue) and ends with an export (float16 EMA weights) to
``blackout_tutorial/checkpoints/NAME.pt``; the SHA-256 to record in
``runs.PRETRAINED_SHA256`` is printed. ``--steps TOTAL`` adds one more continuation.
"""
import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("mnist", "binarized-mnist", "cifar10")
# How the shipped models were made: the preset's steps, then these continuations (the
# first stage ran in the session that shipped it first, the continuation a day later).
CONTINUATIONS = {"mnist": (11000,), "binarized-mnist": (4500,), "cifar10": ()}


def train_stage(name, run, data_dir, steps=None):
    command = [sys.executable, "-m", "blackout_tutorial", "train", "--preset",
               f"{name}-cpu", "--out", str(run), "--no-progress"]
    command += ["--steps", str(steps)] if steps else []
    command += ["--data-dir", data_dir] if data_dir else []
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True)
    from blackout_tutorial import data, runs
    path = runs.export(run, ROOT / "blackout_tutorial" / "checkpoints" / f"{name}.pt")
    size = path.stat().st_size / 1e6
    print(f"exported {path} ({size:.1f} MB), sha256 {data.file_digest(path, 'sha256')}")
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=NAMES)
    parser.add_argument("--data-dir", help="folder with mnist.npz / cifar10_jpeg.npz")
    parser.add_argument("--runs", default=str(ROOT / "runs"), help="runs folder")
    parser.add_argument("--steps", type=int, help="continue to this many steps")
    args = parser.parse_args()
    from blackout_tutorial import runs
    export = train_stage(args.name, Path(args.runs) / args.name, args.data_dir)
    for total in CONTINUATIONS[args.name] + ((args.steps,) if args.steps else ()):
        run = Path(args.runs) / f"{args.name}-to{total}"
        if not (run / runs.CHECKPOINT).exists():
            step = int(runs.read_checkpoint(export)["step"])
            runs.start_finetune(run, total - step, name=export)
            print(f"{run}: restarts from {export.name} (step {step})")
        export = train_stage(args.name, run, args.data_dir, total)


if __name__ == "__main__":
    main()
