"""Tests of the count datasets and their parsers (blackout_tutorial.data, Chapters 7-9).

The MNIST (IDX) and CIFAR-10 (pickle tarball) parsers, the standard ``.npz`` and the
JPEG pack (``_sources``) run on tiny files written in the real formats; the downloader
is replaced, so nothing here touches the network or ``../shared/data``.
"""
import gzip
import hashlib
import io
import pickle
import struct
import subprocess
import sys
import tarfile
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

from blackout_tutorial import _files, _sources, data


def write_idx(path, array):
    """Write a uint8 array in the IDX format (gzip-compressed if the name ends in
    .gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(
        f">{array.ndim}i", *array.shape
    )
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if str(path).endswith(".gz") else payload)


def write_cifar_tarball(path, rng, n_per_batch=3, n_train_batches=2):
    """A cifar-10-python.tar.gz with the real layout: pickled dicts of uint8 rows."""
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        names = [f"data_batch_{i + 1}" for i in range(n_train_batches)] + ["test_batch"]
        for name in names:
            batch = {b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
                     b"labels": rng.integers(0, 10, n_per_batch).tolist(),
                     b"batch_label": name.encode()}
            blob = pickle.dumps(batch)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
            batches[name] = batch
    return batches


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_digits_counts_split_and_labels():
    d = data.load_digits()
    assert d.train.shape == (1437, 1, 8, 8) and d.test.shape == (360, 1, 8, 8)
    assert d.train.dtype == torch.uint8 and d.n_max == 16 and int(d.train.max()) == 16
    assert set(d.test_labels.tolist()) == set(range(10))
    again = data.load_digits()
    assert torch.equal(again.test, d.test) and torch.equal(
        again.train_labels, d.train_labels
    )
    # The split is a partition of the 1797 images (sorted rows compare as multisets).
    from sklearn.datasets import load_digits
    everything = torch.cat([d.train, d.test]).reshape(1797, -1)
    original = torch.from_numpy(load_digits().images.reshape(1797, -1).astype(np.uint8))
    assert torch.equal(torch.unique(everything, dim=0), torch.unique(original, dim=0))


def test_mnist5k_is_parsed_from_the_bundled_csv():
    d = data.load_mnist5k()
    assert d.train.shape == (4000, 1, 28, 28) and d.test.shape == (1000, 1, 28, 28)
    assert d.n_max == 255 and int(d.train.max()) == 255
    assert (
        torch.bincount(torch.cat([d.train_labels, d.test_labels])).tolist()
        == [500] * 10
    )


def test_read_idx_round_trip_and_errors(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    for name in ["x-idx3-ubyte.gz", "x-idx3-ubyte"]:
        write_idx(tmp_path / name, images)
        np.testing.assert_array_equal(data.read_idx(tmp_path / name), images)
    (tmp_path / "bad").write_bytes(
        b"\x00\x00\x0d\x01" + struct.pack(">i", 3) + bytes(12)
    )
    with pytest.raises(ValueError, match="not a uint8 IDX"):
        data.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(
        b"\x00\x00\x08\x01" + struct.pack(">i", 4) + bytes(3)
    )
    with pytest.raises(ValueError, match="header says shape"):
        data.read_idx(tmp_path / "short")


def _fake_mnist(folder, monkeypatch, rng):
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images": rng.integers(0, 256, (6, 28, 28)),
        "train-labels": rng.integers(0, 10, 6),
        "t10k-images": rng.integers(0, 256, (4, 28, 28)),
        "t10k-labels": rng.integers(0, 10, 4),
    }
    checksums = {}
    for name in data.MNIST_FILES:
        write_idx(folder / name, arrays[name.split("-idx")[0]])
        checksums[name] = md5(folder / name)
    monkeypatch.setattr(data, "MNIST_FILES", checksums)
    return arrays


def test_load_mnist_and_binarized_from_real_format_files(tmp_path, monkeypatch):
    arrays = _fake_mnist(tmp_path / "mnist", monkeypatch, np.random.default_rng(1))
    monkeypatch.setattr(
        _files, "_download", lambda url: pytest.fail("no download expected")
    )
    d = data.load_dataset("mnist", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(d.train[:, 0].numpy(), arrays["train-images"])
    np.testing.assert_array_equal(d.test_labels.numpy(), arrays["t10k-labels"])
    assert d.n_max == 255 and d.train.dtype == torch.uint8
    b = data.load_dataset("binarized_mnist", data_dir=tmp_path, download=False)
    assert (
        b.train.shape == (6, 1, 32, 32)
        and b.n_max == 1
        and set(b.train.unique().tolist()) <= {0, 1}
    )


def test_binarize_resizes_and_thresholds_above_one_half():
    levels = torch.tensor(
        [0, 127, 128, 255], dtype=torch.uint8
    )  # 127/255 < 0.5 < 128/255
    images = levels.reshape(4, 1, 1, 1).expand(4, 1, 28, 28)
    out = data.binarize(images)
    assert out.shape == (4, 1, 32, 32) and out.dtype == torch.uint8
    assert out.flatten(1).float().mean(1).tolist() == [0.0, 0.0, 1.0, 1.0]


def test_cifar_tarball_parser_keeps_channel_major_layout(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    batches = write_cifar_tarball(path, np.random.default_rng(2))
    train_x, train_y, test_x, test_y = data.read_cifar_tarball(path)
    assert train_x.shape == (6, 3, 32, 32) and test_x.shape == (3, 3, 32, 32)
    row = batches["data_batch_2"][b"data"][1]
    c, i, j = 2, 5, 7
    assert int(train_x[4, c, i, j]) == row[c * 1024 + i * 32 + j]
    assert (
        train_y.tolist()
        == batches["data_batch_1"][b"labels"] + batches["data_batch_2"][b"labels"]
    )
    assert test_y.tolist() == batches["test_batch"][b"labels"]


def test_load_cifar10_verifies_md5_and_turns_flips_on(tmp_path, monkeypatch):
    path = tmp_path / "cifar-10-python.tar.gz"
    write_cifar_tarball(path, np.random.default_rng(3))
    with pytest.raises(data.DownloadError, match="md5"):
        data.load_cifar10(tmp_path, download=False)      # fake file, official checksum
    monkeypatch.setattr(data, "CIFAR10_MD5", md5(path))
    d = data.load_cifar10(tmp_path, download=False)
    assert d.flip and d.n_max == 255 and d.shape == (3, 32, 32)


def test_fetch_downloads_atomically_and_checks_md5(tmp_path, monkeypatch):
    payload = b"counts" * 100
    good = hashlib.md5(payload).hexdigest()
    calls = []

    def fake_download(url):
        calls.append(url)
        if "mirror1" in url:
            raise urllib.error.URLError("offline")
        return payload

    monkeypatch.setattr(_files, "_download", fake_download)
    path = data.fetch(
        ["https://mirror1/f", "https://mirror2/f"], tmp_path / "sub" / "f.gz", good
    )
    assert path.read_bytes() == payload and calls == ["https://mirror1/f", "https://mirror2/f"]
    assert [p.name for p in path.parent.iterdir()] == ["f.gz"]  # no temporary left over
    data.fetch(["https://mirror2/f"], path, good)  # present: no download
    assert len(calls) == 2
    with pytest.raises(data.DownloadError, match="checksum mismatch"):
        data.fetch(["https://mirror2/g"], tmp_path / "g.gz", "0" * 32)
    assert not (tmp_path / "g.gz").exists()


def test_offline_error_says_what_to_download_and_where(tmp_path, monkeypatch):
    def offline(url):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(_files, "_download", offline)
    with pytest.raises(data.DownloadError) as err:
        data.load_dataset("cifar10", data_dir=tmp_path)
    message = str(err.value)
    assert (
        data.CIFAR10_URL in message
        and str(tmp_path / "cifar-10-python.tar.gz") in message
    )
    assert data.CIFAR10_MD5 in message
    with pytest.raises(data.DownloadError, match="download=False"):
        data.load_dataset("mnist", data_dir=tmp_path, download=False)


def test_random_hflip_flips_whole_images_half_the_time():
    x = torch.arange(2000 * 4, dtype=torch.uint8).reshape(2000, 1, 2, 2) % 251
    out = data.random_hflip(x, generator=torch.Generator().manual_seed(0))
    same = (out == x).flatten(1).all(1)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    assert bool((same | flipped).all())
    # Binomial(2000, 1/2): sd 22.4; +-100 is a 4.5-sigma band.
    assert abs(int(flipped.sum()) - 1000) < 100


def test_unknown_names_raise_and_specs_need_no_data():
    with pytest.raises(ValueError, match="dataset must be one of"):
        data.load_dataset("imagenet")
    with pytest.raises(ValueError, match="dataset must be one of"):
        data.dataset_spec("imagenet")
    spec = data.dataset_spec("cifar10")
    assert (spec.shape, spec.n_max) == ((3, 32, 32), 255)
    assert data.dataset_spec("binarized_mnist5k").n_max == 1


def test_bad_split_sizes_and_hflip_shapes_raise():
    with pytest.raises(ValueError, match="n_test"):
        data.load_digits(n_test=-1)
    with pytest.raises(ValueError, match="n_test"):
        data.load_digits(n_test=5000)
    with pytest.raises(ValueError, match="x must have shape"):
        data.random_hflip(torch.zeros(5, 8, 8))


class _Payload:
    """Unpickling this calls os.system: the planted code of REVIEW E."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def test_a_planted_pickle_payload_does_not_run(tmp_path):
    marker = tmp_path / "executed"
    blob = pickle.dumps({b"data": _Payload(marker), b"labels": [0]})
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in ("data_batch_1", "test_batch"):
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    with pytest.raises(
        pickle.UnpicklingError, match="posix.system|os.system|nt.system"
    ):
        data.read_cifar_tarball(path)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):
        data.load_cifar10_fixture(path)
    assert not marker.exists()
    # The same payload does run under plain pickle: the test can fail.
    pickle.loads(blob)
    assert marker.exists()


def test_cifar_fixture_is_in_the_cifar10_python_format(tmp_path):
    path = data.write_cifar10_fixture(
        tmp_path / "cifar-10-python.tar.gz", n_train=23, n_test=7
    )
    with tarfile.open(path, "r:gz") as tar:
        names = sorted(m.name for m in tar.getmembers())
        batch = data.load_pickle(tar.extractfile("cifar-10-batches-py/data_batch_1"))
    assert names == sorted([f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
                           + ["cifar-10-batches-py/test_batch",
                              "cifar-10-batches-py/batches.meta"])
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape[1] == 3072
    assert b"FIXTURE" in batch[b"batch_label"]
    # Rows are channel-major: 1024 red values, then green, then blue.
    images, labels = data.fixture_images(30)
    assert np.array_equal(batch[b"data"][0, 1024:2048].reshape(32, 32), images[0, 1])
    train_x, train_y, test_x, test_y = data.read_cifar_tarball(path)
    assert train_x.shape == (23, 3, 32, 32) and test_x.shape == (7, 3, 32, 32)
    assert torch.equal(train_x, torch.from_numpy(images[:23]))
    assert torch.equal(test_x, torch.from_numpy(images[23:]))
    assert train_y.tolist() == labels[:23].tolist()
    fixture = data.load_cifar10_fixture(path)
    assert fixture.name == "cifar10-fixture" and fixture.n_max == 255 and fixture.flip


def test_fixture_is_a_registry_entry_written_locally(tmp_path):
    d = data.load_dataset("cifar10-fixture", data_dir=tmp_path, download=False)
    spec = data.dataset_spec("cifar10-fixture")
    assert d.shape == spec.shape and d.n_max == spec.n_max
    assert d.train.shape[0] == 200 and d.test.shape[0] == 50
    assert (tmp_path / "cifar10-fixture.tar.gz").exists()


def test_fixture_classes_differ_and_writer_rejects_tiny_sizes(tmp_path):
    images, labels = data.fixture_images(400, seed=3)
    assert set(labels.tolist()) == set(range(10))
    with pytest.raises(ValueError, match="n_train"):
        data.write_cifar10_fixture(tmp_path / "x.tar.gz", n_train=3)


def test_a_killed_download_leaves_nothing_that_passes_for_data(tmp_path, monkeypatch):
    # REVIEW E: a killed download left its temporary file behind.
    payload = b"counts" * 1000
    md5 = hashlib.md5(payload).hexdigest()
    monkeypatch.setattr(_files, "_download", lambda url: payload)
    real_write = _files._write_checked

    def killed(tmp, payload, md5):
        tmp.write_bytes(payload[:100])
        raise KeyboardInterrupt           # as a kill during the write would
    monkeypatch.setattr(_files, "_write_checked", killed)
    with pytest.raises(KeyboardInterrupt):
        data.fetch(["https://mirror/f"], tmp_path / "f.gz", md5)
    assert list(tmp_path.iterdir()) == []
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()                          # a SIGKILL leaves temporaries of a dead pid
    for name in (f".f.gz.tmp{child.pid}", f"f.gz.tmp{child.pid}"):
        (tmp_path / name).write_bytes(payload[:100])
    monkeypatch.setattr(_files, "_write_checked", real_write)
    path = data.fetch(["https://mirror/f"], tmp_path / "f.gz", md5)
    assert [p.name for p in tmp_path.iterdir()] == ["f.gz"]
    assert path.read_bytes() == payload


@pytest.mark.parametrize("call, name", [
    (lambda: data.binarize(torch.zeros(1, 28, 28)), "images"),
    (lambda: data.binarize([[1]]), "images"),
    (lambda: data.binarize(torch.zeros(1, 1, 28, 28), size=0), "size"),
    (lambda: data.fixture_images(float("nan")), "n"),
    (lambda: data.fixture_images(-1), "n"),
    (lambda: data.fixture_images(2, seed=-1), "seed"),
    (lambda: data.write_cifar10_fixture("x.tgz", n_train=5.5), "n_train"),
    (lambda: data.write_cifar10_fixture("x.tgz", n_test=0), "n_test"),
    (lambda: data.load_digits(n_test=float("nan")), "n_test"),
    (lambda: data.load_dataset(["digits"]), "dataset"),
    (lambda: data.fetch([], "x.gz", "0" * 32), "urls"),
])
def test_data_functions_name_a_bad_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_a_file_that_is_no_cifar_tarball_is_named(tmp_path):
    (tmp_path / "empty.tar.gz").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.tar.gz"):
        data.read_cifar_tarball(tmp_path / "empty.tar.gz")
    with pytest.raises(ValueError, match="empty.tar.gz"):
        data.load_cifar10_fixture(tmp_path / "empty.tar.gz")


def _celeba_zip(path, n=5):
    """A small file in the img_align_celeba.zip layout: n 178x218 JPEGs."""
    import io
    import zipfile

    from PIL import Image
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("img_align_celeba/", b"")
        for i in range(n):
            image = np.full((218, 178, 3), 30, np.uint8)
            image[39:179, 19:159] = rng.integers(100, 200, size=3)   # the central crop
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="JPEG", quality=100)
            archive.writestr(f"img_align_celeba/{i + 1:06d}.jpg", buffer.getvalue())
    return path


def test_celeba_zip_is_cropped_centrally_and_resized_to_64(tmp_path):
    from blackout_tutorial import _celeba
    images = _celeba.read_zip(_celeba_zip(tmp_path / "img_align_celeba.zip"))
    assert images.shape == (5, 3, 64, 64) and images.dtype == np.uint8
    # Only the 140x140 centre survives the crop: the border value 30 is gone.
    inner = images[:, :, 2:-2, 2:-2].astype(int)
    assert inner.min() >= 90 and (inner.max(axis=(2, 3)) - inner.min(axis=(2, 3))
                                  ).max() <= 6
    (tmp_path / "empty.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    with pytest.raises(ValueError, match="no .jpg"):
        _celeba.read_zip(tmp_path / "empty.zip")


def test_celeba64_checks_the_md5_and_names_the_file_offline(tmp_path, monkeypatch):
    from blackout_tutorial import _celeba
    monkeypatch.setattr(_files, "_download", lambda url: (_ for _ in ()).throw(
        urllib.error.URLError("no network")))
    with pytest.raises(data.DownloadError) as err:
        data.load_dataset("celeba64", data_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "celeba" / "img_align_celeba.zip") in message
    assert _celeba.CELEBA_MD5 in message
    (tmp_path / "celeba").mkdir(exist_ok=True)
    _celeba_zip(tmp_path / "celeba" / "img_align_celeba.zip")
    with pytest.raises(data.DownloadError, match="md5"):   # not the official file
        data.load_dataset("celeba64", data_dir=tmp_path, download=False)
    monkeypatch.setattr(_celeba, "CELEBA_MD5", _files.file_digest(
        tmp_path / "celeba" / "img_align_celeba.zip"))
    monkeypatch.setattr(_celeba, "N_TEST", 2)
    celeba = data.load_dataset("celeba64", data_dir=tmp_path, download=False)
    assert celeba.train.shape == (3, 3, 64, 64) and celeba.test.shape[0] == 2
    assert celeba.n_max == 255 and data.dataset_spec("celeba64").shape == (3, 64, 64)
    assert list((tmp_path / "celeba").glob("celeba64_*.npy"))      # decoded once


def test_celeba64_fixture_is_written_locally_in_the_same_format(tmp_path):
    fixture = data.load_dataset("celeba64-fixture", data_dir=tmp_path)
    assert fixture.train.shape == (32, 3, 64, 64) and fixture.test.shape[0] == 8
    assert (tmp_path / "celeba64-fixture.zip").exists()


@pytest.fixture
def no_data_env(monkeypatch, tmp_path):
    monkeypatch.delenv("BLACKOUT_DATA", raising=False)
    monkeypatch.delenv("BLACKOUT_DATA_DIR", raising=False)
    monkeypatch.setenv("BLACKOUT_CACHE_DIR", str(tmp_path / "cache"))


def mnist_arrays(rng, n_train=12, n_test=5):
    return dict(x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
                y_train=rng.integers(0, 10, n_train).astype(np.uint8),
                x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
                y_test=rng.integers(0, 10, n_test).astype(np.uint8))


def smooth_images(rng, n):
    """RGB 32x32 images smooth enough for JPEG to keep them within a few levels."""
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    base = rng.uniform(40, 215, (n, 3, 1, 1))
    slope = rng.uniform(-30, 30, (n, 3, 1, 1))
    return np.clip(base + slope * (yy + xx), 0, 255).astype(np.uint8)


def write_jpeg_pack(path, rng, n_train=10, n_test=4):
    arrays, originals = {}, {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = smooth_images(rng, n)
        blobs = []
        for image in images:
            buffer = io.BytesIO()
            Image.fromarray(image.transpose(1, 2, 0)).save(buffer, "JPEG", quality=90)
            blobs.append(np.frombuffer(buffer.getvalue(), np.uint8))
        arrays[f"{split}_jpeg"] = np.concatenate(blobs)
        arrays[f"{split}_offsets"] = np.cumsum([0] + [len(b) for b in blobs])
        arrays[f"{split}_labels"] = rng.integers(0, 10, n).astype(np.uint8)
        originals[split] = images
    np.savez(path, classes=np.array(["a"] * 10), **arrays)
    return arrays, originals


def test_mnist_from_standard_npz(no_data_env, tmp_path):
    arrays = mnist_arrays(np.random.default_rng(0))
    np.savez(tmp_path / "mnist.npz", **arrays)
    d = data.load_dataset("mnist", tmp_path, download=False)
    assert d.train.shape == (12, 1, 28, 28) and d.test.shape == (5, 1, 28, 28)
    assert torch.equal(d.train[:, 0], torch.from_numpy(arrays["x_train"]))
    assert torch.equal(d.test_labels, torch.from_numpy(arrays["y_test"]).long())
    assert d.n_max == 255 and not d.lossy
    assert "mnist.npz" in d.source and "npz" in d.source and "17 images" in d.source
    b = data.load_dataset("binarized_mnist", tmp_path, download=False)
    assert b.train.shape == (12, 1, 32, 32) and b.n_max == 1
    assert b.source.endswith("binarized")


def test_cifar_npz_in_nhwc_is_transposed(no_data_env, tmp_path):
    rng = np.random.default_rng(1)
    x_train = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "cifar10.npz", x_train=x_train, y_train=np.arange(6),
             x_test=x_train[:2], y_test=np.arange(2))
    d = data.load_dataset("cifar10", tmp_path, download=False)
    assert d.train.shape == (6, 3, 32, 32) and d.flip
    assert torch.equal(d.train[3, 1], torch.from_numpy(x_train[3, :, :, 1]))


def test_jpeg_pack_decodes_close_to_the_originals_and_is_lossy(no_data_env,
                                                                tmp_path):
    arrays, originals = write_jpeg_pack(tmp_path / "cifar10_jpeg.npz",
                                        np.random.default_rng(2))
    d = data.load_dataset("cifar10", tmp_path, download=False)
    assert d.train.shape == (10, 3, 32, 32) and d.test.shape == (4, 3, 32, 32)
    assert d.lossy and "JPEG" in d.source and "14 images" in d.source
    error = np.abs(d.train.numpy().astype(int) - originals["train"].astype(int))
    assert error.mean() < 3, error.mean()        # quality-90 JPEG of smooth images
    assert torch.equal(d.train_labels, torch.from_numpy(arrays["train_labels"]).long())
    # A wrong decode (channels swapped) would not be this close:
    swapped = d.train.numpy()[:, ::-1].astype(int)
    assert np.abs(swapped - originals["train"].astype(int)).mean() > 3


def test_jpeg_pack_is_decoded_once_then_cached(no_data_env, tmp_path, monkeypatch):
    write_jpeg_pack(tmp_path / "cifar10_jpeg.npz", np.random.default_rng(3))
    first = data.load_dataset("cifar10", tmp_path, download=False)
    assert list((tmp_path / "cache").glob("jpeg-pack-*.npz"))

    def no_decode(*args):
        raise AssertionError("decoded again")
    monkeypatch.setattr(_sources, "_decode", no_decode)
    second = data.load_dataset("cifar10", tmp_path, download=False)
    assert torch.equal(first.train, second.train) and second.lossy


def test_the_data_root_order(no_data_env, tmp_path, monkeypatch):
    for name in ("arg", "new", "old"):
        (tmp_path / name).mkdir()
        arrays = mnist_arrays(np.random.default_rng(len(name)), n_train=len(name) + 5)
        np.savez(tmp_path / name / "mnist.npz", **arrays)
    monkeypatch.setenv("BLACKOUT_DATA_DIR", str(tmp_path / "old"))
    assert len(data.load_dataset("mnist", download=False).train) == 8
    monkeypatch.setenv("BLACKOUT_DATA", str(tmp_path / "new"))
    assert len(data.load_dataset("mnist", download=False).train) == 8
    assert data.default_data_dir() == tmp_path / "new"
    assert len(data.load_dataset("mnist", tmp_path / "arg", download=False).train) == 8
    assert _sources.data_root(tmp_path / "arg") == tmp_path / "arg"


@pytest.mark.parametrize("change, match", [
    (lambda a: a.pop("y_test"), r"lacks the arrays \['y_test'\]"),
    (lambda a: a.update(x_train=a["x_train"].astype(np.int16)), "must be uint8"),
    (lambda a: a.update(x_train=a["x_train"][:, :20]), r"shape \[N, 1, 28, 28\]"),
    (lambda a: a.update(y_train=a["y_train"][:3]), "y_train must hold 12"),
    (lambda a: a.update(y_train=np.full(12, 0.5)), "y_train must hold 12 integer"),
])
def test_a_bad_npz_raises_naming_what_is_wrong(no_data_env, tmp_path, change, match):
    arrays = mnist_arrays(np.random.default_rng(4))
    change(arrays)
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        data.load_dataset("mnist", tmp_path, download=False)


def test_a_corrupt_jpeg_pack_raises(no_data_env, tmp_path):
    arrays, _ = write_jpeg_pack(tmp_path / "x.npz", np.random.default_rng(5))
    bad_offsets = dict(arrays, train_offsets=arrays["train_offsets"][::-1])
    np.savez(tmp_path / "cifar10_jpeg.npz", **bad_offsets)
    with pytest.raises(ValueError, match="offsets must rise"):
        data.load_dataset("cifar10", tmp_path, download=False)
    garbage = dict(arrays, train_jpeg=np.zeros_like(arrays["train_jpeg"]))
    np.savez(tmp_path / "cifar10_jpeg.npz", **garbage)
    with pytest.raises(ValueError, match="image 0 is not a readable JPEG"):
        data.load_dataset("cifar10", tmp_path, download=False)
    (tmp_path / "cifar10_jpeg.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        data.load_dataset("cifar10", tmp_path, download=False)


def test_every_loaded_dataset_says_where_it_came_from(no_data_env):
    assert "load_digits" in data.load_dataset("digits").source
    assert "1797 images" in data.load_dataset("digits").source


def test_a_jpeg_pack_without_test_arrays_loads_with_an_empty_test_split(no_data_env,
                                                                       tmp_path):
    arrays, _ = write_jpeg_pack(tmp_path / "x.npz", np.random.default_rng(6))
    train_only = {k: v for k, v in arrays.items() if k.startswith("train")}
    np.savez(tmp_path / "cifar10_jpeg.npz", **train_only)
    d = data.load_dataset("cifar10", tmp_path, download=False)
    assert d.train.shape == (10, 3, 32, 32) and d.test.shape == (0, 3, 32, 32)
    assert "10 images" in d.source
