"""Train one of the shipped real-data checkpoints with the package's CLI and export it.

    OMP_NUM_THREADS=1 python scripts/train_shipped.py mnist --data-dir ../shared/data

``NAME`` is ``mnist``, ``binarized-mnist`` or ``cifar10``: the preset ``NAME-cpu``
trains into ``runs/NAME`` (resumable: run the same command again to continue), then
the EMA weights are exported (float16) to ``blackout_tutorial/checkpoints/NAME.pt``
and the SHA-256 to record in ``runs.PRETRAINED_SHA256`` is printed.

``--steps TOTAL`` trains to TOTAL steps instead of the preset's. Where ``runs/NAME``
is gone (another machine), the run restarts from the shipped checkpoint: its EMA
weights as raw and EMA weights, a fresh Adam state, the cosine learning rate of a
TOTAL-step run from the shipped step on (``runs.start_finetune``).
"""
import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("mnist", "binarized-mnist", "cifar10")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=NAMES)
    parser.add_argument("--data-dir", help="folder with mnist.npz / cifar10_jpeg.npz")
    parser.add_argument("--runs", default=str(ROOT / "runs"), help="runs folder")
    parser.add_argument("--steps", type=int, help="train to this many steps")
    args = parser.parse_args()
    run = Path(args.runs) / args.name
    command = [sys.executable, "-m", "blackout_tutorial", "train", "--preset",
               f"{args.name}-cpu", "--out", str(run), "--no-progress"]
    if args.steps:
        command += ["--steps", str(args.steps)]
        if not (run / "checkpoint.pt").exists():
            from blackout_tutorial import runs
            shipped = runs.load_pretrained(args.name)[2]["step"]
            runs.start_finetune(run, args.steps - shipped, name=args.name)
            print(f"{run}: restarted from the shipped {args.name} (step {shipped})")
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True)
    from blackout_tutorial import data, runs
    path = runs.export(run, ROOT / "blackout_tutorial" / "checkpoints" /
                       f"{args.name}.pt")
    size = path.stat().st_size / 1e6
    print(f"exported {path} ({size:.1f} MB), sha256 {data.file_digest(path, 'sha256')}")


if __name__ == "__main__":
    main()
