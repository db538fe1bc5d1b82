"""Train the shipped classifiers of ``blackout_tutorial.classifiers`` (pinned recipe).

    OMP_NUM_THREADS=1 nice -n 10 python scripts/train_classifiers.py \\
        --data-dir ../shared/data

trains, on one thread, ``mnist`` (3 epochs), ``binarized_mnist`` (2 epochs) and
``cifar10`` (3 epochs, the JPEG-derived copy when that is what --data-dir holds), seed
0, writes ``blackout_tutorial/checkpoints/<name>_classifier.pt`` (float16) and
``book/results/classifiers.json`` (test accuracy, wall and CPU seconds, source), and
prints the SHA-256 to record in ``classifiers.CLASSIFIER_SHA256``. ``--only NAME``
trains one of them (the JSON keeps the others' entries).
"""
import argparse
import json
import platform
import sys
from pathlib import Path

import torch

from blackout_tutorial import classifiers, data

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = {"mnist": 3, "binarized_mnist": 2, "cifar10": 3}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--only", choices=sorted(EPOCHS), action="append")
    parser.add_argument("--out-dir", default=str(classifiers.CLASSIFIER_DIR))
    parser.add_argument("--json", default=str(ROOT / "book/results/classifiers.json"))
    parser.add_argument("--epochs", type=int, default=None, help="override (tests)")
    parser.add_argument("--max-train", type=int, default=None, help="(tests)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.json)
    results = json.loads(out.read_text()) if out.is_file() else {}
    for name in args.only or list(EPOCHS):
        dataset = data.load_dataset(name, args.data_dir, download=False)
        clf = classifiers.train_classifier(
            dataset, epochs=args.epochs or EPOCHS[name], seed=0,
            max_train=args.max_train, progress=True)
        path = classifiers.save_classifier(
            clf, Path(args.out_dir) / f"{name}_classifier.pt")
        digest = data.file_digest(path, "sha256")
        info = clf.info
        results[name] = {
            "test_accuracy": round(info["test_accuracy"], 4),
            "train_seconds": round(info["train_seconds"], 1),
            "cpu_seconds": round(info["cpu_seconds"], 1),
            "outlier_weight": info["outlier_weight"],
            "epochs": info["epochs"], "seed": info["seed"], "widths": info["widths"],
            "train_images": info["train_images"], "test_images": len(dataset.test),
            "source": dataset.source, "lossy": dataset.lossy,
            "file_kb": round(path.stat().st_size / 1024, 1), "sha256": digest}
        print(f"{name}: test accuracy {info['test_accuracy']:.4f}, "
              f"{info['train_seconds']:.0f} s, {path} sha256 {digest}", flush=True)
    results["_recipe"] = {
        "command": "OMP_NUM_THREADS=1 nice -n 10 python scripts/train_classifiers.py "
                   "--data-dir ../shared/data", "threads": 1,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
