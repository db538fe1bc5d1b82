"""Tests of the sample-quality metrics (blackout_tutorial.evaluate, Chapters 7 and 10)."""
import numpy as np
import pytest
import scipy.linalg
import torch

from blackout_tutorial import data, evaluate


def test_frechet_distance_closed_forms():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2.
    assert evaluate.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)
    # Commuting (diagonal) covariances: sum of the 1-D terms.
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 4.0, 1.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, 2.0])
    assert evaluate.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(5 + (1 + 0 + 4))


def test_frechet_distance_is_symmetric_and_zero_on_identical_gaussians():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2, mu1, mu2 = a @ a.T, b @ b.T, rng.normal(size=4), rng.normal(size=4)
    d12 = evaluate.frechet_distance(mu1, s1, mu2, s2)
    assert d12 == pytest.approx(evaluate.frechet_distance(mu2, s2, mu1, s1), rel=1e-8)
    assert evaluate.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-8)
    # Against the symmetric form tr(s1 + s2 - 2 (s1^1/2 s2 s1^1/2)^1/2).
    r = np.real(scipy.linalg.sqrtm(s1))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(scipy.linalg.sqrtm(r @ s2 @ r)))
    assert d12 == pytest.approx(expected, rel=1e-6)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="sigma1, sigma2"):
        evaluate.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="features must have shape"):
        evaluate.feature_statistics(np.zeros((1, 3)))


def test_feature_statistics_match_numpy():
    f = np.random.default_rng(1).normal(size=(50, 3))
    mu, sigma = evaluate.feature_statistics(f)
    np.testing.assert_allclose(mu, f.mean(0))
    np.testing.assert_allclose(sigma, np.cov(f.T))


@pytest.fixture(scope="module")
def digits():
    return data.load_digits()


def test_classifier_separates_real_digits_from_pixel_noise(digits):
    report = evaluate.digit_report(evaluate.pixel_marginal_samples(digits.train, 400), digits)
    # Real held-out digits: most are classified confidently; independent pixels: almost none.
    assert report["confident_fraction_real"] > 0.6
    assert report["confident_fraction"] < 0.25
    assert report["frechet_distance_real"] < 0.2 * report["frechet_distance"]
    assert report["frechet_distance_baseline"] == pytest.approx(report["frechet_distance"], rel=0.5)


def test_class_fractions_sum_to_one(digits):
    clf = evaluate.fit_digit_classifier(digits.train, digits.train_labels, digits.n_max)
    m = evaluate.classifier_metrics(clf, digits.test)
    assert m["class_fractions"].sum() == pytest.approx(1.0) and m["min_class_fraction"] > 0.04
    assert "frechet_distance" not in m
    with pytest.raises(ValueError, match="labels must have shape"):
        evaluate.fit_digit_classifier(digits.train, digits.train_labels[:5], 16)


def test_pixel_marginal_samples_keep_each_pixel_distribution():
    train = torch.tensor([[0, 5], [2, 5], [4, 7]], dtype=torch.uint8).reshape(3, 1, 1, 2)
    x = evaluate.pixel_marginal_samples(train, 3000, torch.Generator().manual_seed(0))
    assert x.shape == (3000, 1, 1, 2)
    assert set(x[:, 0, 0, 0].tolist()) == {0, 2, 4} and set(x[:, 0, 0, 1].tolist()) == {5, 7}
    # P(pixel 1 = 7) = 1/3: sd of the mean over 3000 draws is 0.0086; 0.04 is > 4 sd.
    assert (x[:, 0, 0, 1] == 7).float().mean().item() == pytest.approx(1 / 3, abs=0.04)


def test_pixel_marginal_bits_per_dim_matches_a_hand_count():
    train = torch.tensor([[0, 1], [0, 0], [1, 1]]).reshape(3, 1, 1, 2)
    test = torch.tensor([[0, 1]]).reshape(1, 1, 1, 2)
    # n_max = 1, alpha = 1: pixel 0 has P(0) = (2+1)/(3+2); pixel 1 has P(1) = (2+1)/(3+2).
    expected = -2 * np.log2(3 / 5) / 2
    got = evaluate.pixel_marginal_bits_per_dim(train, test, n_max=1)
    assert got.shape == (1,) and got.item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="0..n_max"):
        evaluate.pixel_marginal_bits_per_dim(train, test + 1, n_max=1)


def test_shipped_digits_checkpoint_generates_digits(digits):
    from blackout_tutorial import sampling, schedule
    model, preset, info = evaluate.load_pretrained("digits_laptop", device="cpu")
    assert (preset.name, preset.scale, info["step"]) == ("digits", "laptop", 2000)
    x = sampling.sample(model, (300, 1, 8, 8), schedule.observation_times(50, preset.t_end),
                        n_max=16, generator=torch.Generator().manual_seed(0))
    report = evaluate.digit_report(x, digits)
    # The Chapter 7 model reaches ~0.9 of the real confident fraction at 250 steps; at 50
    # steps and 300 samples 0.6 leaves a wide margin, and pixel noise scores below 0.1.
    assert report["confident_ratio"] > 0.6 and report["min_class_fraction"] > 0.02
