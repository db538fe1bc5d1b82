"""CelebA at 64x64, the paper's third data set (Chapter 9).

Source: the aligned-and-cropped CelebA images, ``img_align_celeba.zip`` (202,599 JPEGs
of 178x218 pixels in a folder ``img_align_celeba/``, md5 ``CELEBA_MD5``), from the
CelebA page (mmlab.ie.cuhk.edu.hk/projects/CelebA.html; the file lies on Google Drive,
which answers large downloads with a confirmation page, so in practice the file is
fetched by hand and its checksum verified here).

Preprocessing, as implemented: a central 140x140 crop (rows 39..178, columns 19..158)
resized to 64x64 with Pillow's antialiased bilinear filter, rounded to uint8. This is
the usual CelebA-64 recipe (score_sde's ``central_crop`` + ``resize_small``);
REFERENCE.md does not state the official Blackout notebook's crop, so it is
UNCONFIRMED. The official code trains on all 202,599 images; here the last
``N_TEST`` (after a fixed seeded shuffle) are held out for likelihood estimates.
The decoded array (2.5 GB) is cached next to the zip as ``celeba64_<md5>.npy``.
"""
import io
import zipfile
from pathlib import Path

import numpy as np

CELEBA_ZIP = "img_align_celeba.zip"
CELEBA_MD5 = "00d2c5bc6d35e252742224ab0c1e8fcb"
CELEBA_URL = ("https://drive.google.com/uc?export=download&"
              "id=0B7EVK8r0v71pZjFTYXZWM3FlRnM")
CROP, SIZE, N_TEST = 140, 64, 1000


def decode(jpeg_bytes, crop=CROP, size=SIZE):
    """One JPEG as uint8 ``[3, size, size]``: central ``crop`` square, then resized."""
    from PIL import Image
    with Image.open(io.BytesIO(jpeg_bytes)) as image:
        image = image.convert("RGB")
        w, h = image.size
        left, top = (w - crop) // 2, (h - crop) // 2
        image = image.crop((left, top, left + crop, top + crop))
        image = image.resize((size, size), Image.BILINEAR)
        return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def read_zip(path):
    """Every ``*.jpg`` of an ``img_align_celeba.zip``-format file, in name order, as
    uint8 ``[N, 3, 64, 64]`` (the preprocessing of the module docstring)."""
    with zipfile.ZipFile(path) as archive:
        names = sorted(n for n in archive.namelist() if n.lower().endswith(".jpg"))
        if not names:
            raise ValueError(f"{path} holds no .jpg images (expected the layout of "
                             f"{CELEBA_ZIP}: img_align_celeba/000001.jpg, ...)")
        return np.stack([decode(archive.read(n)) for n in names])


def _dataset(name, images, n_test):
    import torch

    from blackout_tutorial import data
    labels = torch.zeros(len(images), dtype=torch.long)   # CelebA-64 is unconditional
    return data._split(name, torch.from_numpy(images), labels, n_test, n_max=255,
                       source=f"CelebA aligned, 64x64 ({name})")


def load_celeba64(data_dir=None, download=True):
    """CelebA 64x64, 201,599 train / 1,000 held-out images, n_max = 255 (Chapter 9).

    Looks for ``<data_dir>/celeba/img_align_celeba.zip`` (md5 checked); a missing file
    raises ``DownloadError`` naming the file and the folder.
    """
    from blackout_tutorial import _files, data
    folder = Path(data_dir or data.default_data_dir()) / "celeba"
    cache = folder / f"celeba64_{CELEBA_MD5[:8]}.npy"
    if not cache.exists():
        path = _files.fetch([CELEBA_URL], folder / CELEBA_ZIP, CELEBA_MD5, download)
        images = read_zip(path)
        _files.atomic_write(cache, lambda tmp: _save(tmp, images))
    return _dataset("celeba64", np.load(cache), N_TEST)


def _save(tmp, images):
    with open(tmp, "wb") as f:       # a file object: np.save adds no ".npy" suffix
        np.save(f, images)


def write_fixture(path, n=40, seed=0):
    """A FIXTURE zip in the ``img_align_celeba.zip`` layout (``n`` 178x218 JPEGs made
    from ``data.fixture_images``; NOT CelebA), for CPU runs and tests."""
    from PIL import Image

    from blackout_tutorial import _files, data
    images, _ = data.fixture_images(n, seed)

    def write(tmp):
        with zipfile.ZipFile(tmp, "w") as archive:
            for i, image in enumerate(images):
                big = Image.fromarray(image.transpose(1, 2, 0)).resize((178, 218))
                buffer = io.BytesIO()
                big.save(buffer, format="JPEG", quality=95)
                archive.writestr(f"img_align_celeba/{i + 1:06d}.jpg",
                                 buffer.getvalue())
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return _files.atomic_write(Path(path), write)


def load_fixture(data_dir=None, download=True):
    """The FIXTURE of :func:`write_fixture` as ``celeba64-fixture`` (32 train / 8
    held-out 64x64 images); ``<data dir>/celeba64-fixture.zip``, written if missing."""
    from blackout_tutorial import data
    path = Path(data_dir or data.default_data_dir()) / "celeba64-fixture.zip"
    if not path.exists():
        write_fixture(path)                    # generated locally, never downloaded
    return _dataset("celeba64-fixture", read_zip(path), 8)
