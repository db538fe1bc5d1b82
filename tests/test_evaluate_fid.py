"""Tests of the Chapter 8-9 parts of evaluate.py: FID, sample export, the shipped
checkpoint and the CIFAR-format fixture."""
import pickle
import shutil
import sys
import tarfile
import types

import numpy as np
import pytest
import scipy.linalg
import torch

from blackout_tutorial import data, evaluate, losses, nets, schedule, train


# ----------------------------------------------------------------------------- FID
def direct_fid(a, b):
    """FID written out with numpy and scipy.linalg.sqrtm, independently of the package."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root))


def small_features(images, seed=0):
    """A small fixed feature extractor: random 3x3 convolution, ReLU, global mean pool."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(6, images.shape[1], 3, 3, generator=gen)
    h = torch.relu(torch.nn.functional.conv2d(images.float() / 255, weight))
    return h.mean(dim=(2, 3)).double().numpy()


def test_fid_from_features_matches_direct_sqrtm_computation():
    images, _ = evaluate.fixture_images(300, seed=1)
    x = torch.from_numpy(images)
    real, shifted = small_features(x[:150]), small_features((x[150:] * 0.7).round())
    got = evaluate.fid_from_features(real, shifted)
    assert got == pytest.approx(direct_fid(real, shifted), rel=1e-8, abs=1e-12)
    assert got > 1e-3                                   # darker images are measurably different


def test_fid_is_zero_for_identical_sets_and_symmetric():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 4)), rng.normal(1.0, 2.0, size=(400, 4))
    assert abs(evaluate.fid_from_features(a, a)) < 1e-8
    assert evaluate.fid_from_features(a, b) == pytest.approx(evaluate.fid_from_features(b, a), rel=1e-8)


def test_frechet_distance_of_diagonal_gaussians_has_closed_form():
    # For commuting (diagonal) covariances: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert evaluate.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_fid_from_features_rejects_bad_shapes():
    with pytest.raises(ValueError, match="features"):
        evaluate.fid_from_features(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="mu1, mu2"):
        evaluate.fid_from_features(np.random.rand(5, 3), np.random.rand(5, 4))


# ----------------------------------------------------------------------------- Inception FID
@pytest.fixture
def png_dir(tmp_path):
    images, _ = evaluate.fixture_images(4)
    return evaluate.export_samples_png(torch.from_numpy(images), tmp_path / "png")


def test_inception_fid_without_a_backend_says_what_to_install(png_dir, monkeypatch):
    for name in ("torch_fidelity", "cleanfid", "pytorch_fid"):
        monkeypatch.setitem(sys.modules, name, None)    # makes `import name` fail
    assert evaluate.available_fid_backend() is None
    with pytest.raises(ImportError, match="pip install torch-fidelity") as err:
        evaluate.inception_fid(png_dir)
    assert "50,000" in str(err.value) and "download" in str(err.value)


def test_inception_fid_dispatches_to_torch_fidelity(png_dir, monkeypatch):
    calls = []

    def calculate_metrics(**kwargs):
        calls.append(kwargs)
        return {"frechet_inception_distance": 12.5}
    monkeypatch.setitem(sys.modules, "torch_fidelity", types.SimpleNamespace(calculate_metrics=calculate_metrics))
    assert evaluate.available_fid_backend() == "torch_fidelity"
    assert evaluate.inception_fid(png_dir, device="cpu") == 12.5
    assert calls[0]["input1"] == str(png_dir) and calls[0]["input2"] == "cifar10-train"
    assert calls[0]["fid"] is True and calls[0]["cuda"] is False


def test_inception_fid_uses_clean_fid_tensorflow_statistics_for_cifar10(png_dir, monkeypatch):
    calls = []
    fake = types.SimpleNamespace(compute_fid=lambda *args, **kw: calls.append((args, kw)) or 3.0)
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)
    monkeypatch.setitem(sys.modules, "cleanfid", types.SimpleNamespace(fid=fake))
    monkeypatch.setitem(sys.modules, "cleanfid.fid", fake)
    assert evaluate.inception_fid(png_dir, device="cpu") == 3.0
    args, kw = calls[0]
    assert args == (str(png_dir),) and kw["dataset_name"] == "cifar10" and kw["dataset_res"] == 32
    assert kw["dataset_split"] == "train" and kw["mode"] == "legacy_tensorflow"


def test_inception_fid_with_pytorch_fid_needs_a_reference_folder(png_dir, monkeypatch):
    calls = []
    fake = types.SimpleNamespace(calculate_fid_given_paths=lambda *args: calls.append(args) or 7.0)
    monkeypatch.setitem(sys.modules, "pytorch_fid.fid_score", fake)
    with pytest.raises(ValueError, match="no built-in CIFAR-10 reference"):
        evaluate.inception_fid(png_dir, backend="pytorch_fid", device="cpu")
    assert evaluate.inception_fid(png_dir, reference=str(png_dir), backend="pytorch_fid", device="cpu") == 7.0
    assert calls[0][0] == [str(png_dir), str(png_dir)] and calls[0][3] == 2048


def test_inception_fid_rejects_bad_arguments(png_dir, tmp_path):
    with pytest.raises(ValueError, match="backend"):
        evaluate.inception_fid(png_dir, backend="tensorflow")
    with pytest.raises(ValueError, match="sample_dir"):
        evaluate.inception_fid(tmp_path / "missing", backend="torch_fidelity")
    with pytest.raises(ValueError, match="reference"):
        evaluate.inception_fid(png_dir, reference=str(tmp_path / "nowhere"), backend="torch_fidelity")


# ----------------------------------------------------------------------------- export
def test_npz_export_round_trip_and_cli_layout(tmp_path):
    x = torch.randint(0, 2, (5, 1, 32, 32))
    path = evaluate.export_samples_npz(x, tmp_path / "s.npz", n_max=1)
    with np.load(path) as f:
        assert f["samples"].dtype == np.uint8 and f["samples"].shape == (5, 1, 32, 32)
    back, n_max = evaluate.load_samples_npz(path)
    assert n_max == 1 and torch.equal(back, x.to(torch.uint8))
    np.savez_compressed(tmp_path / "cli.npz", samples=np.zeros((2, 3, 4, 4), np.uint8))
    assert evaluate.load_samples_npz(tmp_path / "cli.npz")[1] == 255   # the CLI stores no n_max


@pytest.mark.parametrize("bad, message", [
    (torch.full((2, 1, 4, 4), -1), r"\[0, n_max\]"),
    (torch.full((2, 1, 4, 4), 256), r"\[0, n_max\]"),
    (torch.full((2, 1, 4, 4), 0.5), "integer counts"),
    (torch.zeros(2, 4, 4), r"\[N, C, H, W\]"),
])
def test_export_rejects_bad_samples(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        evaluate.export_samples_npz(bad, tmp_path / "bad.npz")
    with pytest.raises(ValueError, match=message):
        evaluate.export_samples_png(bad, tmp_path / "bad")


def test_png_export_scales_counts_to_8_bit(tmp_path):
    from PIL import Image
    binary = torch.tensor([[[[0, 1], [1, 0]]]])
    evaluate.export_samples_png(binary, tmp_path / "bin", n_max=1, start=7)
    img = np.asarray(Image.open(tmp_path / "bin" / "000007.png"))
    assert img.tolist() == [[0, 255], [255, 0]]
    rgb, _ = evaluate.fixture_images(3)
    evaluate.export_samples_png(torch.from_numpy(rgb), tmp_path / "rgb")
    back = np.asarray(Image.open(tmp_path / "rgb" / "000002.png"))
    assert back.shape == (32, 32, 3) and np.array_equal(back, rgb[2].transpose(1, 2, 0))


# ----------------------------------------------------------------------------- CIFAR fixture
def test_cifar_fixture_is_in_the_cifar10_python_format(tmp_path):
    path = evaluate.write_cifar10_fixture(tmp_path / "cifar-10-python.tar.gz", n_train=23, n_test=7)
    with tarfile.open(path, "r:gz") as tar:
        names = sorted(m.name for m in tar.getmembers())
        batch = pickle.load(tar.extractfile("cifar-10-batches-py/data_batch_1"), encoding="bytes")
    assert names == sorted([f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
                           + ["cifar-10-batches-py/test_batch", "cifar-10-batches-py/batches.meta"])
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape[1] == 3072
    assert b"FIXTURE" in batch[b"batch_label"]
    # Rows are channel-major: 1024 red values, then green, then blue.
    images, labels = evaluate.fixture_images(30)
    assert np.array_equal(batch[b"data"][0, 1024:2048].reshape(32, 32), images[0, 1])
    train_x, train_y, test_x, test_y = data.read_cifar_tarball(path)
    assert train_x.shape == (23, 3, 32, 32) and test_x.shape == (7, 3, 32, 32)
    assert torch.equal(train_x, torch.from_numpy(images[:23])) and torch.equal(test_x, torch.from_numpy(images[23:]))
    assert train_y.tolist() == labels[:23].tolist()
    fixture = evaluate.load_cifar10_fixture(path)
    assert fixture.name == "cifar10-fixture" and fixture.n_max == 255 and fixture.flip


def test_fixture_classes_differ_and_writer_rejects_tiny_sizes(tmp_path):
    images, labels = evaluate.fixture_images(400, seed=3)
    assert set(labels.tolist()) == set(range(10))
    with pytest.raises(ValueError, match="n_train"):
        evaluate.write_cifar10_fixture(tmp_path / "x.tar.gz", n_train=3)


# ----------------------------------------------------------------------------- shipped checkpoint
def test_shipped_checkpoint_matches_its_recorded_sha256_and_is_small():
    path = evaluate.pretrained_path("mnist5k_small")
    assert data.file_digest(path, "sha256") == evaluate.PRETRAINED_SHA256["mnist5k_small"]
    assert path.stat().st_size < 20 * 2 ** 20


def test_shipped_checkpoint_is_a_trained_mnist_rate_model():
    model, preset, info = evaluate.load_pretrained(device="cpu")
    assert preset.dataset == "mnist5k" and model.n_max == 255 and model.net.cfg.image_channels == 1
    assert info["history"].shape == (info["step"], 3) and info["seconds"] > 0
    # Trained means: a lower loss on held-out digits than the same network untrained.
    x0 = data.load_mnist5k().test[:32].float()
    times = schedule.observation_times(preset.T, preset.t_end)
    weights = schedule.loss_weights(times)

    def loss(m):
        return float(losses.blackout_loss(m, x0, times, weights, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        fresh = nets.build_rate_model(preset.net, 255).eval()
        assert loss(model) < loss(fresh) - 20.0      # measured gap: about 80


def test_corrupted_checkpoint_fails_its_checksum(tmp_path, monkeypatch):
    shutil.copy(evaluate.pretrained_path("mnist5k_small"), tmp_path / "mnist5k_small.pt")
    with open(tmp_path / "mnist5k_small.pt", "r+b") as f:
        f.seek(100)
        f.write(b"\x00corrupt")
    monkeypatch.setattr(evaluate, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(train.CheckpointError, match="sha256"):
        evaluate.load_pretrained()
    with pytest.raises(train.CheckpointError, match="name"):
        evaluate.pretrained_path("cifar10_huge")


def test_generate_shards_resumes_with_identical_images(tmp_path):
    run = evaluate.pretrained_path("mnist5k_small")
    first = evaluate.generate_shards(run, tmp_path, n=5, steps=3, batch_size=2, device="cpu")
    assert first.shape == (5, 1, 28, 28) and first.dtype == torch.uint8
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"shard_{i:05d}.npz" for i in range(3)]
    (tmp_path / "shard_00001.npz").unlink()                  # as if interrupted before shard 1
    assert torch.equal(evaluate.generate_shards(run, tmp_path, n=5, steps=3, batch_size=2, device="cpu"), first)
    with pytest.raises(ValueError, match="n must"):
        evaluate.generate_shards(run, tmp_path, n=0)


def test_finetune_continues_the_shipped_run(tmp_path):
    preset = evaluate.start_finetune(tmp_path, extra_steps=1, batch_size=4)
    _, _, info = evaluate.load_pretrained(device="cpu")
    images = torch.randint(0, 256, (20, 1, 28, 28), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    labels = torch.zeros(20, dtype=torch.long)
    small = data.CountDataset("mnist5k", images[:16], images[16:], labels[:16], labels[16:], 255)
    result = train.train(preset, tmp_path, dataset=small, device="cpu", progress=False)
    assert result.step == info["step"] + 1 and len(result.history) == info["step"] + 1
    with pytest.raises(ValueError, match="extra_steps"):
        evaluate.start_finetune(tmp_path / "again", extra_steps=0)
