"""scripts/gpu_real.sh, the one-command GPU run of Chapters 8-9, end to end on a CPU at
smoke scale, on a small mnist.npz written here (no network, no ../shared). The
Fréchet proxy needs more samples than the classifier has features (256): N = 300."""
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_real.sh"


def write_mnist_npz(folder, n_train=256, n_test=1200, seed=0):
    """Blurry random strokes in the Keras mnist.npz layout (uint8, [N, 28, 28])."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n_train + n_test, 28, 28), np.uint8)
    for image in images:
        row, col = rng.integers(6, 22, size=2)
        image[row - 4:row + 4, col - 1:col + 2] = rng.integers(100, 256)
    labels = rng.integers(0, 10, size=n_train + n_test).astype(np.uint8)
    np.savez(folder / "mnist.npz", x_train=images[:n_train], y_train=labels[:n_train],
             x_test=images[n_train:], y_test=labels[n_train:])


def run_script(*args):
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)


def test_smoke_run_writes_the_whole_bundle(tmp_path):
    write_mnist_npz(tmp_path)
    out = tmp_path / "out"
    done = run_script("--data-dir", str(tmp_path), "--out", str(out), "--device", "cpu",
                      "--scale", "smoke", "--max-seconds", "20", "--n-samples", "300",
                      "--sample-steps", "5", "--sample-batch", "300", "--n-test", "16",
                      "--elbo-terms", "4")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    bundle = out / "bundle"
    for name in ("samples.npz", "samples.png", "history.csv", "config.json",
                 "train_throughput.json", "sample_throughput.json", "scores.json",
                 "metrics.json", "model.pt", "summary.txt"):
        assert (bundle / name).is_file(), name
    with np.load(bundle / "samples.npz") as f:
        assert f["samples"].shape == (300, 1, 28, 28) and int(f["n_max"]) == 255
    throughput = json.loads((bundle / "train_throughput.json").read_text())
    assert throughput["train_images_per_s"] > 0
    assert "note: scripts/real_metrics.py failed" not in done.stdout
    with tarfile.open(out / "bundle.tar.gz") as tar:
        assert "bundle/scores.json" in tar.getnames()


@pytest.mark.parametrize("args, fragment", [
    (["--out", "x"], "--data-dir and --out are required"),
    (["--data-dir", "d", "--out", "x", "--bogus"], "unknown argument --bogus"),
])
def test_bad_arguments_exit_2_with_one_line(args, fragment):
    done = run_script(*args)
    assert done.returncode == 2 and fragment in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
