"""Sample quality against training time: ``scripts/real_metrics.py`` on snapshots of one
run (Chapter 8).

    python scripts/metric_curve.py mnist --data-dir DIR SNAP_1000.pt SNAP_2000.pt ...

Each snapshot is a copy of the run's ``checkpoint.pt`` taken while it trained (the run
of ``scripts/train_shipped.py NAME``); each is judged as the shipped model is (N = 1000,
seed 0, 100 tau-leaping steps, the shipped classifier), and
``book/results/NAME_curve.json`` lists step, training minutes and the report per
snapshot, then the shipped checkpoint itself. ``--extend`` keeps the points of the
existing file that lie before the first snapshot (a run continued later, on a machine
where the earlier snapshots are gone) and adds this command to its ``commands``.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import real_metrics

from blackout_tutorial import runs

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(real_metrics.NAMES))
    parser.add_argument("snapshots", nargs="+", help="checkpoint files of the run")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--extend", action="store_true",
                        help="keep the points of the existing file before the "
                        "first snapshot")
    args = parser.parse_args()
    path = ROOT / "book" / "results" / f"{args.name}_curve.json"
    points, commands, tmp = [], [], Path(tempfile.mkdtemp())
    for snap in [*args.snapshots, None]:
        out = tmp / "m.json"
        argv = [args.name, "--n", "1000", "--seeds", "1", "--steps", "100",
                "--out", str(out)]
        argv += ["--data-dir", args.data_dir] if args.data_dir else []
        argv += ["--checkpoint", snap] if snap else []
        real_metrics.main(argv)
        state = runs.read_checkpoint(snap or runs.pretrained_path(args.name),
                                     map_location="cpu")
        report = json.loads(out.read_text())["samplers"]["tau_leaping"]
        points.append({"step": int(state["step"]),
                       "minutes": round(float(state["seconds"]) / 60, 1), **report})
    if args.extend:
        earlier = json.loads(path.read_text())
        first = min(p["step"] for p in points)
        points = [p for p in earlier["points"] if p["step"] < first] + points
        commands = earlier["commands"]
    commands.append("python scripts/metric_curve.py " + " ".join(sys.argv[1:]))
    path.write_text(json.dumps({"commands": commands, "points": points}, indent=1)
                    + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
