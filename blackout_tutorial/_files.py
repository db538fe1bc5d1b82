"""Reading and fetching dataset files (private; ``data`` re-exports the public names).

The MNIST IDX parser, the CIFAR-10 tarball parser with a restricted unpickler (only
numpy arrays and plain containers load: a planted payload fails instead of running),
file digests and the checked, atomic download of :func:`fetch`.
"""
import gzip
import hashlib
import io
import os
import pickle
import tarfile
import urllib.request
from pathlib import Path

import numpy as np


class DownloadError(RuntimeError):
    """A dataset file is missing and could not be downloaded (or failed its
    checksum)."""


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
        raise ValueError(
            f"{path}: header says shape {tuple(dims)}, file holds {data.size} values"
        )
    return data.reshape(tuple(int(d) for d in dims)).copy()  # writable, owns its memory


_PICKLE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}  # how protocol 2 stores bytes: str -> bytes only


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name} from a pickle "
                f"(only numpy arrays and plain containers)"
            )
        return super().find_class(module, name)


def load_pickle(file):
    """Unpickle a CIFAR-style batch from an open binary ``file``: numpy arrays,
    dicts, lists, strings and numbers only; any other global raises
    ``pickle.UnpicklingError``."""
    return _ArrayUnpickler(file, encoding="bytes").load()


def read_cifar_tarball(path):
    """Parse ``cifar-10-python.tar.gz`` into ``(train_x, train_y, test_x, test_y)``.

    Each batch is a pickled dict with ``data`` (uint8 [10000, 3072], channel-major rows)
    and ``labels``. A pickle can name any Python function to call; :func:`load_pickle`
    allows only numpy arrays and plain containers, so a planted payload fails to load
    instead of running (and ``load_cifar10`` also verifies the official MD5 first).
    """
    batches = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            base = os.path.basename(member.name)
            if base.startswith("data_batch_") or base == "test_batch":
                batches[base] = load_pickle(tar.extractfile(member))
    train_names = sorted(b for b in batches if b.startswith("data_batch_"))
    if not train_names or "test_batch" not in batches:
        raise ValueError(f"{path} holds no CIFAR-10 data_batch_* / test_batch files")

    def images_labels(names):
        x = np.concatenate([batches[n][b"data"] for n in names]).reshape(-1, 3, 32, 32)
        y = np.concatenate([batches[n][b"labels"] for n in names]).astype(np.int64)
        return x, y

    return (*images_labels(train_names), *images_labels(["test_batch"]))


def file_digest(path, algorithm="md5"):
    """Hex digest (``md5`` for downloads, ``sha256`` for shipped checkpoints) of a file,
    read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url, timeout=60):
    """The bytes behind ``url`` (the one network call of the package; tests replace
    it)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def fetch(urls, path, md5, download=True):
    """Make sure ``path`` exists with the given MD5, downloading it from ``urls`` if
    needed.

    The download is written to a temporary file and moved into place with ``os.replace``
    only once its checksum matches, so an interrupted download never leaves a truncated
    file behind. Raises ``DownloadError`` with what to fetch and where to put it.
    """
    path = Path(path)
    manual = (f"Download {urls[0]} by hand and save it as {path} (md5 {md5}), "
              f"or point data_dir / BLACKOUT_DATA_DIR to a folder that holds it.")
    if path.exists():
        if file_digest(path, "md5") != md5:
            raise DownloadError(
                f"{path} exists but its md5 is not {md5} (corrupt or partial "
                f"file): delete it and retry. {manual}"
            )
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
    raise DownloadError(
        f"could not download {path.name} ({'; '.join(errors)}). {manual}"
    )


def write_cifar_tarball(path, images, labels, n_train, label_names, note=""):
    """Write uint8 ``images [N, 3, 32, 32]`` and ``labels`` in the CIFAR-10 python
    format.

    Same layout as ``cifar-10-python.tar.gz``: ``cifar-10-batches-py/data_batch_1..5``
    (the first ``n_train`` images), ``test_batch`` (the rest) and ``batches.meta``, each
    a pickled dict with byte-string keys; ``data`` is uint8 ``[N, 3072]`` (1024 red,
    1024 green, 1024 blue values per row), ``labels`` a list of ints.
    """
    rows = np.asarray(images, dtype=np.uint8).reshape(len(images), 3072)
    parts = {f"data_batch_{i + 1}": idx
             for i, idx in enumerate(np.array_split(np.arange(n_train), 5))}
    parts["test_batch"] = np.arange(n_train, len(images))
    batches = {name: {b"batch_label": f"{note} {name}".strip().encode(),
                      b"labels": [int(v) for v in labels[idx]],
                      b"data": rows[idx],
                      b"filenames": [f"image_{j:05d}.png".encode() for j in idx]}
               for name, idx in parts.items()}
    batches["batches.meta"] = {b"label_names": [c.encode() for c in label_names],
                               b"num_cases_per_batch": len(parts["test_batch"]),
                               b"num_vis": 3072}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in batches.items():
            payload = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path
