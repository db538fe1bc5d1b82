"""Tests of blackout_tutorial.classifiers: training on a tiny synthetic set, the
(probabilities, features) interface, determinism, the file format and the SHA-256
check of the shipped weights (no test reads ../shared/data)."""
import numpy as np
import pytest
import torch

from blackout_tutorial import classifiers, data, runs


def tiles(n, seed):
    """Class k: a random 3x3 binary pattern k tiled over a noisy 12x12 image (counts
    0..249): a texture, so the shifts of the training augmentation keep the class.
    """
    fixed, gen = torch.Generator().manual_seed(123), torch.Generator().manual_seed(seed)
    patterns = torch.rand(10, 3, 3, generator=fixed) < 0.5
    labels = torch.arange(n) % 10
    noise = torch.randint(0, 50, (n, 1, 12, 12), generator=gen)
    return (patterns[labels].repeat(1, 4, 4)[:, None] * 200 + noise).to(
        torch.uint8), labels


KW = {"epochs": 10, "lr": 1e-2, "batch_size": 32, "widths": (8, 16)}  # ~1 s


@pytest.fixture(scope="module")
def toy():
    (train, y_train), (test, y_test) = tiles(400, 0), tiles(200, 1)
    return data.CountDataset("toy", train, test, y_train, y_test, 255)


@pytest.fixture(scope="module")
def trained(toy, one_thread):
    return classifiers.train_classifier(toy, **KW, seed=0)


def test_training_learns_the_toy_classes(trained):
    # Chance is 0.1; the textures are easy: measured 1.0 on the 200 test images.
    assert trained.info["test_accuracy"] > 0.9
    assert trained.info["train_images"] == 400 and trained.info["train_seconds"] > 0


def test_probabilities_sum_to_one_and_features_have_the_last_width(trained, toy):
    probs, feats = trained.predict(toy.test[:50])
    assert probs.shape == (50, 10) and feats.shape == (50, 16)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(trained.probabilities(toy.test[:50]), probs)
    np.testing.assert_array_equal(trained.features(toy.test[:50]), feats)


def test_training_is_deterministic_for_a_seed(toy, trained, one_thread):
    again = classifiers.train_classifier(toy, **KW, seed=0)
    other = classifiers.train_classifier(toy, **KW, seed=1)
    x = toy.test[:20]
    np.testing.assert_array_equal(again.probabilities(x), trained.probabilities(x))
    assert np.abs(other.probabilities(x) - trained.probabilities(x)).max() > 1e-4


def test_outlier_exposure_lowers_the_confidence_on_pixel_noise(trained, toy,
                                                              one_thread):
    from blackout_tutorial import evaluate
    noise = evaluate.independent_pixels(toy.train, 200, seed=7)
    plain = classifiers.train_classifier(toy, **{**KW, "outlier_weight": 0.0}, seed=0)
    top = {name: float(c.probabilities(noise).max(1).mean())
           for name, c in (("exposed", trained), ("plain", plain))}
    # Mean top probability on independent-pixel images, measured: exposed 0.25 (near
    # the uniform 0.1 plus ties), plain 0.48.
    assert top["exposed"] < 0.35 and top["plain"] > top["exposed"] + 0.1, top
    assert plain.info["test_accuracy"] > 0.9


def test_saved_float16_classifier_round_trips(trained, toy, tmp_path):
    path = classifiers.save_classifier(trained, tmp_path / "toy_classifier.pt")
    back = classifiers.read_classifier(path)
    assert (back.name, back.n_max, back.shape) == ("toy", 255, (1, 12, 12))
    assert back.info["test_accuracy"] == trained.info["test_accuracy"]
    # float16 weights: probabilities agree to about 1e-3 (measured 2e-4).
    np.testing.assert_allclose(back.probabilities(toy.test), trained.probabilities(
        toy.test), atol=1e-2)
    assert back.accuracy(toy.test, toy.test_labels) > 0.9


@pytest.mark.parametrize("images, match", [
    (torch.zeros(3, 1, 8, 8, dtype=torch.uint8), r"images must have shape \[N, 1, 12"),
    (torch.full((3, 1, 12, 12), 256), "images"),
    (torch.zeros(0, 1, 12, 12), "images")])
def test_bad_images_raise_naming_them(trained, images, match):
    with pytest.raises(ValueError, match=match):
        trained.predict(images)


def test_bad_training_arguments_raise_naming_them(toy):
    with pytest.raises(ValueError, match="dataset"):
        classifiers.train_classifier(toy.train)
    with pytest.raises(ValueError, match="epochs"):
        classifiers.train_classifier(toy, epochs=0)
    with pytest.raises(ValueError, match="lr"):
        classifiers.train_classifier(toy, lr=-1.0)


def test_a_file_that_is_no_classifier_is_refused(tmp_path):
    (bad := tmp_path / "x.pt").write_bytes(b"not a torch file")
    with pytest.raises(runs.CheckpointError, match="not a readable classifier"):
        classifiers.read_classifier(bad)
    torch.save({"format": "other", "header": "{}"}, tmp_path / "y.pt")
    with pytest.raises(runs.CheckpointError, match="classifier"):
        classifiers.read_classifier(tmp_path / "y.pt")


def test_shipped_classifiers_load_and_are_deterministic():
    assert set(classifiers.CLASSIFIER_SHA256) <= {"mnist", "binarized_mnist", "cifar10"}
    for name in classifiers.CLASSIFIER_SHA256:
        path = classifiers.classifier_path(name)
        assert path.stat().st_size < 2 * 2 ** 20          # small files
        clf = classifiers.load_classifier(name.replace("_", "-"))
        assert clf.name == name and clf.info["test_accuracy"] > 0.7
        shape, n_max = runs.image_spec(name)
        assert clf.shape == shape and clf.n_max == n_max
        x = torch.randint(0, n_max + 1, (8, *shape),
                          generator=torch.Generator().manual_seed(0))
        p1, f1 = clf.predict(x)
        p2, f2 = clf.predict(x)
        np.testing.assert_array_equal(p1, p2)
        np.testing.assert_array_equal(f1, f2)
        np.testing.assert_allclose(p1.sum(1), 1.0, atol=1e-9)
        # Outlier exposure: uniform pixel noise is not confidently an image of a class.
        assert (p1.max(1) >= 0.9).mean() < 0.5


def test_a_changed_or_unknown_shipped_classifier_is_refused(trained, tmp_path,
                                                           monkeypatch):
    with pytest.raises(runs.CheckpointError, match="name must be one of"):
        classifiers.load_classifier("imagenet")
    monkeypatch.setattr(classifiers, "CLASSIFIER_DIR", tmp_path)
    path = classifiers.save_classifier(trained, tmp_path / "toy_classifier.pt")
    monkeypatch.setitem(classifiers.CLASSIFIER_SHA256, "toy",
                        data.file_digest(path, "sha256"))
    assert classifiers.load_classifier("toy").name == "toy"      # the recorded file
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 1                                       # one flipped bit
    path.write_bytes(bytes(raw))
    with pytest.raises(runs.CheckpointError, match="sha256"):
        classifiers.load_classifier("toy")
    path.unlink()
    with pytest.raises(runs.CheckpointError, match="missing"):
        classifiers.load_classifier("toy")
