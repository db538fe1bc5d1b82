"""Where a dataset's files come from: the data root and the two local formats
(``data.load_dataset``, Chapters 8-9).

Besides the official downloads, a data root may hold

* a standard ``.npz`` of uint8 arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``
  (the Keras layout: MNIST ``[N, 28, 28]``, CIFAR-10 ``[N, 32, 32, 3]`` or NCHW);
* a JPEG pack: ``train_jpeg`` / ``test_jpeg`` (JPEG files back to back, uint8),
  ``train_offsets`` / ``test_offsets`` (int64 ``[N + 1]``), ``train_labels`` /
  ``test_labels``; decoded with Pillow once and cached as arrays.

A JPEG-derived dataset is lossy, so its ``source`` says so wherever it is shown.
"""
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blackout_tutorial._files import atomic_write, file_digest

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# The test arrays may be left out (a GPU run that carries the training JPEGs only).
JPEG_KEYS = ("train_jpeg", "train_offsets", "train_labels")


@dataclass(frozen=True)
class Arrays:
    """Images uint8 ``[N, C, H, W]`` and labels of both splits, and what they came
    from (path, format, number of images)."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    lossy: bool = False


def data_root(data_dir=None):
    """``data_dir`` if given, else env ``BLACKOUT_DATA``, else ``BLACKOUT_DATA_DIR``,
    else ``~/.cache/blackout_tutorial``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("BLACKOUT_DATA") or os.environ.get("BLACKOUT_DATA_DIR")
    return Path(env or "~/.cache/blackout_tutorial").expanduser()


def cache_root():
    """Where decoded JPEG packs are cached (writable even if the data root is not)."""
    return Path(os.environ.get("BLACKOUT_CACHE_DIR",
                               "~/.cache/blackout_tutorial")).expanduser()


def _nchw(images, path, shape):
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] == shape[0] != images.shape[1]:
        images = images.transpose(0, 3, 1, 2)
    if images.dtype != np.uint8 or images.shape[1:] != tuple(shape):
        raise ValueError(f"{path}: images must be uint8 of shape [N, "
                         f"{', '.join(map(str, shape))}] (or NHWC), got "
                         f"{images.dtype} {list(images.shape)}")
    return np.ascontiguousarray(images)


def _labels(labels, n, path, key):
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != n or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: {key} must hold {n} integer labels, got "
                         f"{labels.dtype} {list(labels.shape)}")
    return labels.astype(np.int64)


def _open_npz(path, keys):
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable .npz file: {err}") from None
    missing = [k for k in keys if k not in archive.files]
    if missing:
        raise ValueError(f"{path} lacks the arrays {missing} (it has "
                         f"{sorted(archive.files)})")
    return archive


def read_npz(path, shape):
    """A standard ``.npz`` (``NPZ_KEYS``) as :class:`Arrays` of image ``shape``."""
    with _open_npz(path, NPZ_KEYS) as z:
        x_train, x_test = _nchw(z["x_train"], path, shape), _nchw(z["x_test"], path,
                                                                  shape)
        y_train = _labels(z["y_train"], len(x_train), path, "y_train")
        y_test = _labels(z["y_test"], len(x_test), path, "y_test")
    n = len(x_train) + len(x_test)
    return Arrays(x_train, y_train, x_test, y_test, f"{path} (npz, {n} images)")


def _decode(blob, offsets, path, shape):
    from PIL import Image
    offsets = np.asarray(offsets, dtype=np.int64)
    if offsets.ndim != 1 or offsets[0] != 0 or offsets[-1] != len(blob) or \
            (np.diff(offsets) <= 0).any():
        raise ValueError(f"{path}: offsets must rise from 0 to the size of the JPEG "
                         f"bytes ({len(blob)})")
    images = np.empty((len(offsets) - 1, shape[1], shape[2], shape[0]), np.uint8)
    for i in range(len(images)):
        jpeg = blob[offsets[i]:offsets[i + 1]].tobytes()
        try:
            image = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
        except OSError:
            raise ValueError(f"{path}: image {i} is not a readable JPEG") from None
        if image.shape != images.shape[1:]:
            raise ValueError(f"{path}: image {i} decodes to {list(image.shape)}, not "
                             f"{list(images.shape[1:])}")
        images[i] = image
    return images.transpose(0, 3, 1, 2)


def read_jpeg_pack(path, shape, cache=None):
    """A JPEG pack (``JPEG_KEYS``) as lossy :class:`Arrays`; the decoded arrays are
    cached under ``cache`` (default :func:`cache_root`), keyed by the file's SHA-256."""
    digest = file_digest(path, "sha256")
    cached = Path(cache or cache_root()) / f"jpeg-pack-{digest[:16]}.npz"
    if cached.is_file():
        arrays = read_npz(cached, shape)
    else:
        with _open_npz(path, JPEG_KEYS) as z:
            split = {s: (_decode(z[f"{s}_jpeg"], z[f"{s}_offsets"], path, shape),
                         z[f"{s}_labels"]) for s in ("train", "test")
                     if f"{s}_jpeg" in z.files}
        split.setdefault("test", (np.zeros((0, *shape), np.uint8),
                                  np.zeros(0, np.int64)))
        for s, (x, y) in split.items():
            _labels(y, len(x), path, f"{s}_labels")
        def write(tmp):  # a file object: np.savez would append ".npz" to a name
            with open(tmp, "wb") as f:
                np.savez(f, x_train=split["train"][0], y_train=split["train"][1],
                         x_test=split["test"][0], y_test=split["test"][1])
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cached, write)
        arrays = read_npz(cached, shape)
    n = len(arrays.x_train) + len(arrays.x_test)
    return Arrays(arrays.x_train, arrays.y_train, arrays.x_test, arrays.y_test,
                  f"{path} (JPEG pack, lossy: not the original pixels; {n} images)",
                  lossy=True)


def find_local(root, names):
    """The first of ``names`` that is a file in ``root`` and its format (``npz`` or
    ``jpeg``, by the arrays it holds), else ``None``."""
    for name in names:
        path = Path(root) / name
        if path.is_file():
            with _open_npz(path, ()) as z:
                kind = "jpeg" if "train_jpeg" in z.files else "npz"
            return path, kind
    return None
