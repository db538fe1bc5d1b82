"""Tests of blackout_tutorial.evaluate: Frechet distance, digit classifier metrics,
pixel-marginal baselines, Inception FID backends (mocked) and the chi-square test."""
import sys
import types
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from blackout_tutorial import data, evaluate, runs


def test_frechet_distance_closed_forms():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2.
    got = evaluate.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]])
    assert got == pytest.approx(4 + 1)
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
    root = np.real(scipy.linalg.sqrtm(r @ s2 @ r))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root)
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
    noise = evaluate.pixel_marginal_samples(digits.train, 400)
    report = evaluate.digit_report(noise, digits)
    # Real held-out digits: most are classified confidently; independent pixels: almost
    # none.
    assert report["confident_fraction_real"] > 0.6
    assert report["confident_fraction"] < 0.25
    assert report["frechet_distance_real"] < 0.2 * report["frechet_distance"]
    assert report["frechet_distance_baseline"] == pytest.approx(
        report["frechet_distance"], rel=0.5)


def test_class_fractions_sum_to_one(digits):
    clf = evaluate.fit_digit_classifier(digits.train, digits.train_labels, digits.n_max)
    m = evaluate.classifier_metrics(clf, digits.test)
    assert m["class_fractions"].sum() == pytest.approx(1.0)
    assert m["min_class_fraction"] > 0.04
    assert "frechet_distance" not in m
    with pytest.raises(ValueError, match="labels must have shape"):
        evaluate.fit_digit_classifier(digits.train, digits.train_labels[:5], 16)


def test_pixel_marginal_samples_keep_each_pixel_distribution():
    train = torch.tensor([[0, 5], [2, 5], [4, 7]], dtype=torch.uint8)
    train = train.reshape(3, 1, 1, 2)
    x = evaluate.pixel_marginal_samples(train, 3000, torch.Generator().manual_seed(0))
    assert x.shape == (3000, 1, 1, 2)
    assert set(x[:, 0, 0, 0].tolist()) == {0, 2, 4}
    assert set(x[:, 0, 0, 1].tolist()) == {5, 7}
    # P(pixel 1 = 7) = 1/3: sd of the mean over 3000 draws is 0.0086; 0.04 is > 4 sd.
    assert (x[:, 0, 0, 1] == 7).float().mean().item() == pytest.approx(1 / 3, abs=0.04)


def test_pixel_marginal_bits_per_dim_matches_a_hand_count():
    train = torch.tensor([[0, 1], [0, 0], [1, 1]]).reshape(3, 1, 1, 2)
    test = torch.tensor([[0, 1]]).reshape(1, 1, 1, 2)
    # n_max = 1, alpha = 1: pixel 0 has P(0) = (2+1)/(3+2); pixel 1 has
    # P(1) = (2+1)/(3+2).
    expected = -2 * np.log2(3 / 5) / 2
    got = evaluate.pixel_marginal_bits_per_dim(train, test, n_max=1)
    assert got.shape == (1,) and got.item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="test_images must hold counts <= n_max"):
        evaluate.pixel_marginal_bits_per_dim(train, test + 1, n_max=1)


def test_frechet_distance_drops_round_off_but_rejects_non_covariances():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(6, 5))  # N < d: singular covariance
    mu, sigma = evaluate.feature_statistics(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # round-off must not even warn
        got = evaluate.frechet_distance(mu, sigma, mu, sigma)
        assert got == pytest.approx(0, abs=1e-6)
    negative = np.diag([-1.0, 1.0])  # not a covariance: sqrtm is complex
    with pytest.raises(ValueError, match="imaginary parts"):
        evaluate.frechet_distance(np.zeros(2), negative, np.zeros(2), np.eye(2))


# ----------------------------------------------------------------------------- FID
def direct_fid(a, b):
    """FID written out with numpy and scipy.linalg.sqrtm, apart from the package."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root))


def small_features(images, seed=0):
    """A small fixed feature extractor: random 3x3 convolution, ReLU, mean pool."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(6, images.shape[1], 3, 3, generator=gen)
    h = torch.relu(torch.nn.functional.conv2d(images.float() / 255, weight))
    return h.mean(dim=(2, 3)).double().numpy()


def test_fid_from_features_matches_direct_sqrtm_computation():
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (300, 3, 16, 16), generator=gen)
    real, shifted = small_features(x[:150]), small_features((x[150:] * 0.7).round())
    got = evaluate.fid_from_features(real, shifted)
    assert got == pytest.approx(direct_fid(real, shifted), rel=1e-8, abs=1e-12)
    assert got > 1e-3  # darker images are measurably different


def test_fid_is_zero_for_identical_sets_and_symmetric():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 4)), rng.normal(1.0, 2.0, size=(400, 4))
    assert abs(evaluate.fid_from_features(a, a)) < 1e-8
    assert evaluate.fid_from_features(a, b) == pytest.approx(
        evaluate.fid_from_features(b, a), rel=1e-8)


def test_frechet_distance_of_diagonal_gaussians_has_closed_form():
    # For commuting (diagonal) covariances: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = evaluate.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-10)


def test_fid_from_features_rejects_bad_shapes():
    with pytest.raises(ValueError, match="features"):
        evaluate.fid_from_features(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="mu1, mu2"):
        evaluate.fid_from_features(np.random.rand(5, 3), np.random.rand(5, 4))


# ------------------------------------------------------------------------ Inception FID
@pytest.fixture
def png_dir(tmp_path):
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 3, 8, 8), generator=gen)
    return runs.save_samples_png(images, tmp_path / "png", 255)


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
    fake = types.SimpleNamespace(calculate_metrics=calculate_metrics)
    monkeypatch.setitem(sys.modules, "torch_fidelity", fake)
    assert evaluate.available_fid_backend() == "torch_fidelity"
    assert evaluate.inception_fid(png_dir, device="cpu") == 12.5
    assert calls[0]["input1"] == str(png_dir) and calls[0]["input2"] == "cifar10-train"
    assert calls[0]["fid"] is True and calls[0]["cuda"] is False


def test_inception_fid_uses_clean_fid_tensorflow_statistics_for_cifar10(png_dir,
                                                                        monkeypatch):
    calls = []

    def compute_fid(*args, **kw):
        calls.append((args, kw))
        return 3.0
    fake = types.SimpleNamespace(compute_fid=compute_fid)
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)
    monkeypatch.setitem(sys.modules, "cleanfid", types.SimpleNamespace(fid=fake))
    monkeypatch.setitem(sys.modules, "cleanfid.fid", fake)
    assert evaluate.inception_fid(png_dir, device="cpu") == 3.0
    args, kw = calls[0]
    assert args == (str(png_dir),)
    assert kw["dataset_name"] == "cifar10" and kw["dataset_res"] == 32
    assert kw["dataset_split"] == "train" and kw["mode"] == "legacy_tensorflow"


def test_inception_fid_with_pytorch_fid_needs_a_reference_folder(png_dir, monkeypatch):
    calls = []
    def calculate_fid_given_paths(*args):
        calls.append(args)
        return 7.0
    fake = types.SimpleNamespace(calculate_fid_given_paths=calculate_fid_given_paths)
    monkeypatch.setitem(sys.modules, "pytorch_fid.fid_score", fake)
    with pytest.raises(ValueError, match="no built-in CIFAR-10 reference"):
        evaluate.inception_fid(png_dir, backend="pytorch_fid", device="cpu")
    got = evaluate.inception_fid(png_dir, reference=str(png_dir), backend="pytorch_fid",
                                 device="cpu")
    assert got == 7.0
    assert calls[0][0] == [str(png_dir), str(png_dir)] and calls[0][3] == 2048


def test_inception_fid_rejects_bad_arguments(png_dir, tmp_path):
    with pytest.raises(ValueError, match="backend"):
        evaluate.inception_fid(png_dir, backend="tensorflow")
    with pytest.raises(ValueError, match="sample_dir"):
        evaluate.inception_fid(tmp_path / "missing", backend="torch_fidelity")
    with pytest.raises(ValueError, match="reference"):
        evaluate.inception_fid(png_dir, reference=str(tmp_path / "nowhere"),
                               backend="torch_fidelity")


# --------------------------------------------------------------------------- chi-square
def test_chi_square_accepts_the_true_pmf_and_rejects_a_wrong_one():
    from scipy import stats
    gen = torch.Generator().manual_seed(0)
    x = torch.distributions.Binomial(10, torch.full((4000,), 0.3)).sample().long()
    pmf = torch.tensor(stats.binom.pmf(np.arange(11), 10, 0.3))
    statistic, p_value, n_bins = evaluate.chi_square_test(x, pmf)
    assert p_value > 1e-3 and 3 <= n_bins <= 11 and statistic >= 0
    wrong = torch.tensor(stats.binom.pmf(np.arange(11), 10, 0.35))
    assert evaluate.chi_square_test(x, wrong)[1] < 1e-6
    del gen


def test_chi_square_merges_sparse_bins_and_handles_one_bin():
    samples = torch.tensor([0] * 20 + [1] * 3 + [2] * 2)
    pmf = torch.tensor([0.8, 0.12, 0.08], dtype=torch.float64)
    # Expected 20, 3, 2: bins 1 and 2 merge (3 < 4.5), then reach 5.
    statistic, p_value, n_bins = evaluate.chi_square_test(samples, pmf, 4.5)
    assert n_bins == 2 and statistic == pytest.approx(0.0, abs=1e-12) and p_value == 1.0
    zeros = torch.zeros(10, dtype=torch.long)
    assert evaluate.chi_square_test(zeros, torch.tensor([1.0])) == (0.0, 1.0, 1)


@pytest.mark.parametrize("samples, pmf, match", [
    (torch.tensor([0, 3]), torch.tensor([0.5, 0.5]), "0..len"),
    (torch.tensor([-1, 0]), torch.tensor([0.5, 0.5]), "samples"),
    (torch.tensor([0.5, 0.0]), torch.tensor([0.5, 0.5]), "samples"),
    (torch.tensor([0, 1]), torch.tensor([0.5, 0.5]), "min_expected"),
])
def test_chi_square_bad_input(samples, pmf, match):
    with pytest.raises(ValueError, match=match):
        evaluate.chi_square_test(samples, pmf)


# --- REVIEW E (issue 11) --------------------------------------------------------------
NAN = float("nan")
TRAIN = torch.randint(0, 5, (20, 1, 2, 2), generator=torch.Generator().manual_seed(0))
TEST = TRAIN[:6]


@pytest.mark.parametrize("call, match", [
    (lambda: evaluate.pixel_marginal_bits_per_dim(TRAIN + 0.5, TEST, 4),
     "train_images must hold integer-valued counts"),      # 1.5 was truncated
    (lambda: evaluate.pixel_marginal_bits_per_dim(TRAIN * NAN, TEST, 4),
     "train_images must hold finite counts"),
    (lambda: evaluate.pixel_marginal_bits_per_dim(TRAIN, TEST + 9, 4),
     "test_images must hold counts <= n_max = 4"),
    (lambda: evaluate.pixel_marginal_bits_per_dim(TRAIN, TEST, 4, alpha=0.0),
     "alpha must be a finite number > 0"),
    (lambda: evaluate.pixel_marginal_bits_per_dim(TRAIN, TEST, 4, alpha=-1.0),
     "alpha must be a finite number > 0"),
    (lambda: evaluate.pixel_marginal_bits_per_dim(TRAIN, TEST, NAN),
     "n_max must be an integer >= 1"),
    (lambda: evaluate.pixel_marginal_bits_per_dim(TRAIN[:0], TEST, 4),
     r"train_images must have shape \[B, ...\] with B >= 1"),
    (lambda: evaluate.pixel_marginal_samples(TRAIN, -1), "n must be an integer >= 1"),
    (lambda: evaluate.pixel_marginal_samples(TRAIN, 1.5), "n must be an integer >= 1"),
    (lambda: evaluate.pixel_marginal_samples(TRAIN[:0], 3),
     r"train_images must have shape \[B, ...\] with B >= 1"),
    (lambda: evaluate.chi_square_test(torch.tensor([0, 1] * 20),
                                      torch.tensor([1.5, -0.5])),
     "pmf must be a probability vector"),
    (lambda: evaluate.chi_square_test(torch.tensor([0, 1] * 20), torch.ones(2)),
     "pmf must be a probability vector"),
    (lambda: evaluate.chi_square_test(torch.tensor([0, 1] * 20), torch.zeros(2)),
     "pmf must be a probability vector"),
    (lambda: evaluate.chi_square_test(torch.tensor([0, 1] * 20),
                                      torch.tensor([[0.5, 0.5]])),
     "pmf must be a non-empty 1-D probability vector"),
    (lambda: evaluate.chi_square_test(torch.tensor([0, 1] * 20),
                                      torch.tensor([0.5, 0.5]), NAN),
     "min_expected must be a finite number > 0"),
    (lambda: evaluate.chi_square_test(torch.tensor([0, 1] * 20),
                                      torch.tensor([0.5, 0.5]), 0),
     "min_expected must be a finite number > 0"),
    (lambda: evaluate.feature_statistics(np.full((3, 2), NAN)),
     "features must be finite"),
    (lambda: evaluate.frechet_distance([NAN], [[1.0]], [0.0], [[1.0]]),
     "mu1, mu2, sigma1 and sigma2 must be finite"),
    (lambda: evaluate.frechet_distance([0.0], [[np.inf]], [0.0], [[1.0]]),
     "mu1, mu2, sigma1 and sigma2 must be finite"),
    (lambda: evaluate.fid_from_features("ab", "cd"),
     "features must be a number or a tensor"),
    (lambda: evaluate.inception_fid(None, backend="cleanfid"),
     "sample_dir must be a folder of PNG images"),
    (lambda: evaluate.inception_fid("/tmp", backend="x"), "backend must be one of"),
])
def test_review_e_evaluate_rejects_bad_input_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_review_e_chi_square_test_takes_a_truncated_pmf():
    _, p_value, _ = evaluate.chi_square_test(torch.tensor([0, 1] * 20),
                                             torch.tensor([0.45, 0.45]))
    assert p_value > 0.5


@pytest.fixture(scope="module")
def classifier():
    labels = torch.arange(20) % 10
    return evaluate.fit_digit_classifier(TRAIN, labels, 4)


@pytest.mark.parametrize("images, kwargs, match", [
    (TRAIN + 100, {}, "images must hold counts <= n_max = 4"),
    (TRAIN * NAN, {}, "images must hold finite counts"),
    (TRAIN[:0], {}, r"images must have shape \[B, ...\] with B >= 1"),
    (TRAIN, {"threshold": NAN}, "threshold must be a finite number"),
    (TRAIN, {"threshold": 2}, r"threshold must be a probability in \[0, 1\]"),
])
def test_review_e_classifier_metrics_check_images_and_threshold(classifier, images,
                                                                kwargs, match):
    with pytest.raises(ValueError, match=match):
        evaluate.classifier_metrics(classifier, images, **kwargs)


@pytest.mark.parametrize("images, n_max, match", [
    (TRAIN + 100, 4, "train_images must hold counts <= n_max = 4"),
    (TRAIN * NAN, 4, "train_images must hold finite counts"),
    (TRAIN, 0, "n_max must be an integer >= 1"),
])
def test_review_e_fit_digit_classifier_checks_its_images(images, n_max, match):
    with pytest.raises(ValueError, match=match):
        evaluate.fit_digit_classifier(images, torch.arange(20) % 10, n_max)


# --- Equal-N reports: real_report, independent_pixels, digit_report's floor ----------
class PixelJudge:
    """A stand-in classifier: features are the pixel values, probabilities a softmax
    of 3 x (pixel 0, 1 - pixel 0) -- enough to check the bookkeeping exactly."""

    def predict(self, images):
        f = torch.as_tensor(images).reshape(len(images), -1).double().numpy() / 4
        logits = 3 * np.stack([f[:, 0], 1 - f[:, 0]], 1)
        p = np.exp(logits - logits.max(1, keepdims=True))
        return p / p.sum(1, keepdims=True), f


def correlated_images(n, seed):
    """Counts 0..4 on 2x2 images whose pixels share a common level (correlated)."""
    gen = torch.Generator().manual_seed(seed)
    level = torch.randint(0, 5, (n, 1, 1, 1), generator=gen)
    flip = torch.randint(0, 2, (n, 1, 2, 2), generator=gen)
    return (level - flip * (level > 0)).to(torch.uint8)


def direct_floor(test, n, draws, seed):
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))
    blocks = order[:2 * draws * n].reshape(-1, n)
    judge = PixelJudge()
    return [evaluate.fid_from_features(judge.predict(test[blocks[2 * i]])[1],
                                       judge.predict(test[blocks[2 * i + 1]])[1])
            for i in range(draws)]


def test_real_report_floor_is_at_the_samples_n():
    test, train = correlated_images(4000, 1), correlated_images(3000, 2)
    for n in (30, 300):
        batches = [correlated_images(n, 10 + s) for s in range(3)]
        out = evaluate.real_report(PixelJudge(), batches, test, train, seed=5)
        floor = direct_floor(test, n, 3, 5)
        assert out["n"] == n and out["draws"] == 3
        assert out["frechet_floor"] == pytest.approx(np.mean(floor), rel=1e-9)
        assert out["frechet_floor_sd"] == pytest.approx(np.std(floor, ddof=1),
                                                        rel=1e-9)
    # The floor is biased upwards at small N (about 2 tr(sigma) / N): at N = 30 it is
    # several times the N = 300 one, so a floor at the wrong N would be caught above.
    assert np.mean(direct_floor(test, 30, 3, 5)) > 3 * np.mean(
        direct_floor(test, 300, 3, 5))


def test_real_report_error_bars_and_baseline():
    test, train = correlated_images(4000, 1), correlated_images(3000, 2)
    batches = [correlated_images(200, 10 + s) for s in range(3)]
    out = evaluate.real_report(PixelJudge(), batches, test, train, seed=0)
    for key in ("frechet_proxy", "frechet_floor", "frechet_proxy_baseline",
                "confident_fraction", "confident_fraction_real"):
        assert out[f"{key}_sd"] > 0, key
    # Samples from the real law sit near the floor; independent pixels lose the
    # correlation, and the Frechet proxy sees it: measured 0.007 vs 0.27.
    assert out["frechet_proxy"] < 3 * out["frechet_floor"] + 0.01
    assert out["frechet_proxy_baseline"] > 5 * out["frechet_proxy"]
    assert sum(out["class_fractions"]) == pytest.approx(1.0)
    assert out["min_class_fraction"] == pytest.approx(min(out["class_fractions"]))
    assert out["confident_ratio"] == pytest.approx(
        out["confident_fraction"] / out["confident_fraction_real"])
    assert "frechet_proxy_baseline" not in evaluate.real_report(
        PixelJudge(), batches, test)


@pytest.mark.parametrize("kwargs, match", [
    ({"sample_batches": []}, "sample_batches"),
    ({"sample_batches": [torch.zeros(5, 1, 2, 2), torch.zeros(6, 1, 2, 2)]},
     "sample_batches"),
    ({"sample_batches": [torch.zeros(500, 1, 2, 2, dtype=torch.uint8)] * 3},
     "test_images"),
    ({"threshold": 1.5}, "threshold"),
    ({"draws": 0}, "draws"),
    ({"seed": -1}, "seed")])
def test_real_report_rejects_bad_arguments_by_name(kwargs, match):
    args = {"sample_batches": [correlated_images(20, 3)] * 2,
            "test_images": correlated_images(1000, 1), **kwargs}
    with pytest.raises(ValueError, match=match):
        evaluate.real_report(PixelJudge(), **args)


def test_independent_pixels_keep_marginals_and_drop_correlations():
    train = correlated_images(20000, 4)
    fake = evaluate.independent_pixels(train, 20000, seed=3)
    assert fake.dtype == train.dtype and fake.shape == train.shape
    flat_t, flat_f = train.reshape(len(train), -1).long(), fake.reshape(
        len(fake), -1).long()
    for j in range(4):     # each pixel's histogram: within 0.015 (sd about 0.003)
        ht = torch.bincount(flat_t[:, j], minlength=5) / len(train)
        hf = torch.bincount(flat_f[:, j], minlength=5) / len(fake)
        assert (ht - hf).abs().max() < 0.015
    corr = np.corrcoef(flat_f.T.double().numpy())
    assert np.abs(corr[np.triu_indices(4, 1)]).max() < 0.05          # independent
    assert np.corrcoef(flat_t.T.double().numpy())[0, 1] > 0.5         # the data: not
    assert torch.equal(fake, evaluate.independent_pixels(train, 20000, seed=3))
    with pytest.raises(ValueError, match="seed"):
        evaluate.independent_pixels(train, 5, seed=-2)


def test_digit_report_floor_is_at_the_samples_n(digits):
    noise = evaluate.pixel_marginal_samples(digits.train, 2000,
                                            torch.Generator().manual_seed(1))
    clf = evaluate.fit_digit_classifier(digits.train, digits.train_labels,
                                        digits.n_max)
    for n in (100, 2000):
        report = evaluate.digit_report(noise[:n], digits)
        m = min(n, len(digits.train))        # 2000 > 1437 training digits: N = 1437
        gen = torch.Generator().manual_seed(0)
        floor = [evaluate.classifier_metrics(clf, digits.train[torch.randperm(
            len(digits.train), generator=gen)[:m]], digits.test)["frechet_distance"]
            for _ in range(3)]
        assert report["n"] == m
        assert report["frechet_distance_real"] == pytest.approx(np.mean(floor),
                                                                rel=1e-6)
        assert report["frechet_distance_real_sd"] > 0
        direct = evaluate.classifier_metrics(clf, noise[:m], digits.test)
        assert report["frechet_distance"] == pytest.approx(
            direct["frechet_distance"], rel=1e-6)


def test_real_report_markdown_lists_floor_samplers_and_baseline():
    r = {"n": 50, "confident_fraction_real": 0.98, "confident_fraction_real_sd": 0.01,
         "frechet_floor": 1.5, "frechet_floor_sd": 0.2, "confident_fraction": 0.4,
         "confident_fraction_sd": 0.02, "confident_ratio": 0.408,
         "min_class_fraction": 0.04, "frechet_proxy": 25.0, "frechet_proxy_sd": None,
         "confident_fraction_baseline": 0.0, "confident_fraction_baseline_sd": 0.0,
         "frechet_proxy_baseline": 240.0, "frechet_proxy_baseline_sd": 1.0}
    table = evaluate.real_report_markdown({"tau_leaping": r})
    lines = table.splitlines()
    assert len(lines) == 5 and "N = 50, floor" in lines[2] and "1.5 ± 0.2" in lines[2]
    assert "| Blackout, tau leaping | 0.4 ± 0.02 | 0.408 | 0.04 | 25 |" == lines[3]
    assert lines[4].startswith("| independent pixels | 0 ± 0 | 0 |")
    with pytest.raises(KeyError):
        evaluate.real_report_markdown({"x": {k: v for k, v in r.items() if k != "n"}})
