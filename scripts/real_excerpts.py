"""Write the small excerpts of the real test sets that chapters 8-9 display.

    python scripts/real_excerpts.py --data-dir ../shared/data

The chapters show real images even where the datasets are absent (a fresh clone, CI),
so 64 test images of each set are stored in ``book/results/`` (uint8 counts, the
``runs.save_samples_npz`` layout, with the data source): ``mnist_real64.npz`` (8-bit,
n_max = 255), ``binarized-mnist_real64.npz`` (32x32, n_max = 1) and
``cifar10_real64.npz`` (the JPEG-derived copy when that is what ``--data-dir`` holds).
The first 64 images of a fixed seeded permutation of each test set (seed 0).
"""
import argparse
from pathlib import Path

import numpy as np
import torch

from blackout_tutorial import data, runs

OUT = Path(__file__).resolve().parents[1] / "book" / "results"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with mnist.npz / cifar10_jpeg.npz")
    args = parser.parse_args()
    for name, dataset in (("mnist", "mnist"), ("binarized-mnist", "binarized_mnist"),
                          ("cifar10", "cifar10")):
        d = data.load_dataset(dataset, args.data_dir, download=False)
        order = torch.from_numpy(np.random.default_rng(0).permutation(len(d.test)))
        path = OUT / f"{name}_real64.npz"
        runs.save_samples_npz(d.test[order[:64]], path, d.n_max)
        with np.load(path) as z:   # add the source beside the images
            arrays = dict(z)
        source = d.source.replace(f"{Path(args.data_dir or '.')}/", "")  # no folder
        np.savez_compressed(path, source=np.array(source), **arrays)
        print(f"{path}: 64 of {d.source}")


if __name__ == "__main__":
    main()
