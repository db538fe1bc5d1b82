"""The synthetic CIFAR-format FIXTURE (NOT CIFAR-10) for the smoke profile and tests
(``data``, Chapter 9)."""
from pathlib import Path

import numpy as np

from blackout_tutorial import _checks, _sources
from blackout_tutorial._files import write_cifar_tarball

CIFAR10_FIXTURE_CLASSES = ("disc", "square", "h-bar", "v-bar", "ring", "cross",
                           "diagonal", "two-discs", "frame", "checker")


def _fixture_shape(label, dy, dx, r, yy, xx):
    box, disc = np.maximum(abs(dy), abs(dx)), np.hypot(dy, dx)
    return [disc < r, box < r, abs(dy) < r / 3, abs(dx) < r / 3, abs(disc - r) < 1.5,
            (abs(dy) < r / 4) | (abs(dx) < r / 4), abs(dy - dx) < 2.5,
            (np.hypot(dy, dx - r / 2) < r / 2) | (np.hypot(dy, dx + r / 2) < r / 2),
            abs(box - r) < 1.5, ((yy // 4 + xx // 4) % 2 == 0) & (box < r)][label]


def fixture_images(n, seed=0):
    """``n`` synthetic 3x32x32 uint8 images in 10 shape classes and their labels
    (Chapter 9).

    A FIXTURE for CPU runs and tests, NOT CIFAR-10: a coloured shape (disc, square,
    bars, ...) with a random position, size and colour on a random smooth background.
    """
    n = _checks.positive_int(n, "n")
    rng = np.random.default_rng(_checks.positive_int(seed, "seed", minimum=0))
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float64)
    labels = rng.integers(0, 10, size=n)
    images = np.empty((n, 3, 32, 32), dtype=np.uint8)
    for i, label in enumerate(labels):
        cy, cx = rng.uniform(10, 22, size=2)
        shape = _fixture_shape(label, yy - cy, xx - cx, rng.uniform(5, 9), yy, xx)
        top, bottom, colour = rng.uniform(0, 255, size=(3, 3))
        background = top[:, None, None] + (bottom - top)[:, None, None] * yy / 31
        image = np.where(shape, colour[:, None, None], 0.6 * background)
        images[i] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return images, labels


def write_cifar10_fixture(path, n_train=200, n_test=50, seed=0):
    """Write a tiny FIXTURE tarball in the CIFAR-10 python format (Chapter 9; NOT
    CIFAR-10).

    Same layout as ``cifar-10-python.tar.gz``: ``cifar-10-batches-py/data_batch_1..5``,
    ``test_batch`` and ``batches.meta``, each a pickled dict with byte-string keys;
    ``data`` is uint8 ``[N, 3072]`` (1024 red, 1024 green, 1024 blue values per row),
    ``labels`` a list of ints (``_files.write_cifar_tarball``). Images come from
    :func:`fixture_images`.
    """
    n_train = _checks.positive_int(n_train, "n_train", minimum=5)
    n_test = _checks.positive_int(n_test, "n_test")
    images, labels = fixture_images(n_train + n_test, seed)
    return write_cifar_tarball(path, images, labels, n_train, CIFAR10_FIXTURE_CLASSES,
                               note="FIXTURE (not CIFAR-10)")


def load_cifar10_fixture(path=None):
    """The FIXTURE tarball of :func:`write_cifar10_fixture` as a ``CountDataset`` named
    ``cifar10-fixture`` (n_max = 255, flips on), read by the real CIFAR-10 parser
    (Chapter 9). ``path=None``: ``<data dir>/cifar10-fixture.tar.gz``, written first if
    missing.
    """
    if path is None:
        path = _sources.data_root() / "cifar10-fixture.tar.gz"
    if not Path(path).exists():
        write_cifar10_fixture(path)               # generated locally, never downloaded
    from blackout_tutorial import data
    train_x, train_y, test_x, test_y = data.read_cifar_tarball(path)
    return data.CountDataset("cifar10-fixture", train_x, test_x, train_y, test_y,
                             n_max=255, flip=True,
                             source=f"{path} (synthetic FIXTURE, NOT CIFAR-10)")
