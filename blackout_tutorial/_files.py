"""Reading and fetching dataset files (private; ``data`` re-exports the public names).

The MNIST IDX parser, the CIFAR-10 tarball parser with a restricted unpickler (only
numpy arrays and plain containers load: a planted payload fails instead of running),
file digests and the checked, atomic download of :func:`fetch`.
"""
import functools
import gzip
import hashlib
import io
import os
import pickle
import re
import tarfile
import urllib.request
import zlib
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
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                base = os.path.basename(member.name)
                if base.startswith("data_batch_") or base == "test_batch":
                    batches[base] = load_pickle(tar.extractfile(member))
    except (tarfile.TarError, EOFError, zlib.error) as err:
        raise ValueError(f"{path} is not a CIFAR-10 python tarball ({err})") from None
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


def atomic_write(path, write):
    """Call ``write(tmp)`` on a temporary file next to ``path``, fsync it, rename it.

    The temporary name is ``.<name>.tmp<pid>``; it is removed if ``write`` raises, and
    one left by a killed process is removed by :func:`remove_stale_temporaries`.
    """
    tmp = (path := Path(path)).with_name(f".{path.name}.tmp{os.getpid()}")
    if path.is_dir() or not path.parent.is_dir():
        raise (IsADirectoryError if path.is_dir() else FileNotFoundError)(
            f"cannot write {path}: it is a folder, or its folder does not exist")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())   # the data reach the disk before the rename
        os.replace(tmp, path)      # atomic on POSIX and Windows
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if os.name == "posix":         # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        except OSError:            # some file systems cannot sync a folder
            pass
        finally:
            os.close(fd)
    return path


def _running(pid):
    if pid == os.getpid() or os.name != "posix":
        return False               # ours (not writing yet) or unknowable: stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                # e.g. PermissionError: the process exists
        return True
    return True


def remove_stale_temporaries(folder, names=None):
    """Remove the temporary files of :func:`atomic_write` (and of older versions'
    downloads, ``<name>.tmp<pid>``) that a killed process left in ``folder``; only
    those of ``names`` when given. Returns the removed paths."""
    folder, removed = Path(folder), []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        m = re.fullmatch(r"\.(.+)\.tmp(\d+)", p.name) or (
            names is not None and re.fullmatch(r"(.+)\.tmp(\d+)", p.name))
        if m and (names is None or m.group(1) in names) and p.is_file() \
                and not _running(int(m.group(2))):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _download(url, timeout=60):
    """The bytes behind ``url`` (the one network call of the package; tests replace
    it)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def fetch(urls, path, md5, download=True):
    """Make sure ``path`` exists with the given MD5, downloading it from ``urls`` if
    needed.

    The download is written to a temporary file in the same folder, fsynced, checked
    against ``md5`` on disk and only then renamed to ``path`` (:func:`atomic_write`), so
    an interrupted download never leaves a file that passes for data; temporary files
    of a killed download are removed at the next call. Raises ``DownloadError`` with
    what to fetch and where to put it.
    """
    path = Path(path)
    if isinstance(urls, str) or not urls:
        raise ValueError(f"urls must be a non-empty list of URLs, got {urls!r}")
    remove_stale_temporaries(path.parent, names={path.name})
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
        return atomic_write(path, functools.partial(_write_checked, payload=payload,
                                                    md5=md5))
    raise DownloadError(
        f"could not download {path.name} ({'; '.join(errors)}). {manual}"
    )


def _write_checked(tmp, payload, md5):
    tmp.write_bytes(payload)
    if file_digest(tmp, "md5") != md5:
        raise DownloadError(f"{tmp} does not hold the downloaded bytes (md5 differs "
                            f"after writing): disk full or failing?")


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
