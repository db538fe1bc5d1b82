"""Sample-quality metrics (Chapters 7-10), always compared at equal N.

A classifier trained on real training images judges the samples:

* **confident fraction**: the share of images labelled with probability >= 0.9 --
  real held-out images set the bar (the *real rate*) a generator should approach;
* **class balance**: the share of each predicted class (mode dropping shows up here);
* **Frechet distance** :cite:`heusel2017fid` between Gaussians fitted to classifier
  features of two image sets. With the package's classifiers (a logistic regression
  for the 8x8 digits, the small CNNs of :mod:`blackout_tutorial.classifiers` for MNIST
  and CIFAR-10) it is a *Frechet proxy in classifier features*, not an FID. It is
  biased upwards at small N, so it is only compared at equal N: every report gives the
  real-vs-real floor at the samples' N, and :func:`real_report` the spread over sample
  seeds and real draws and the independent-pixel baseline.

Also here: the Inception FID through an optional package (Chapters 8-9), exact
pixel-marginal baselines (Chapters 7 and 10) and the chi-square test of samplers
against exact distributions (Chapters 2-6). Sample files: :mod:`blackout_tutorial.runs`.
"""
import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from blackout_tutorial import _checks
from blackout_tutorial._chi_square import chi_square_test  # noqa: F401  (re-exported)
from blackout_tutorial._inception import (  # noqa: F401  (re-exported)
    FID_BACKENDS,
    FID_INSTALL_HINT,
    PAPER_CIFAR10_FID,
    _import_optional,
    available_fid_backend,
    fid_from_features,
    inception_fid,
)
from blackout_tutorial._report_table import (  # noqa: F401  (re-exported)
    real_report_markdown,
)

__all__ = ["feature_statistics", "frechet_distance", "DigitClassifier",
           "fit_digit_classifier", "classifier_metrics", "pixel_marginal_samples",
           "independent_pixels", "pixel_marginal_bits_per_dim", "digit_report",
           "real_report", "real_report_markdown", "fid_from_features",
           "available_fid_backend",
           "inception_fid", "chi_square_test", "FID_BACKENDS", "FID_INSTALL_HINT",
           "PAPER_CIFAR10_FID"]


def feature_statistics(features):
    """Mean and covariance ``(mu, sigma)`` of features ``[N, d]`` (Chapter 10)."""
    f = _checks.finite(np.asarray(features), "features").double().numpy()
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must have shape [N, d] with N >= 2, got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (Chapter 10):

    ||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^{1/2}).

    The square root is ``scipy.linalg.sqrtm``; a near-singular product gets 1e-6 added
    to the diagonals, as in the reference FID code. Imaginary parts of the root are
    round-off when tiny (dropped), a broken covariance when not: above 1e-3 of the
    largest variance they raise ``ValueError``, above 1e-6 they warn.
    """
    mu1, mu2 = (np.atleast_1d(np.asarray(m, float)) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(np.asarray(s, float)) for s in (sigma1, sigma2))
    _checks.finite(np.concatenate([mu1.ravel(), mu2.ravel(), sigma1.ravel(),
                                   sigma2.ravel()]), "mu1, mu2, sigma1 and sigma2")
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"mu1, mu2 must be [d] and sigma1, sigma2 [d, d] with "
                         f"d = {d}; got {mu2.shape}, {sigma1.shape}, {sigma2.shape}")
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(d) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = _real_part(covmean, sigma1, sigma2)
    diff, tr = mu1 - mu2, np.trace
    return float(diff @ diff + tr(sigma1) + tr(sigma2) - 2 * tr(covmean))


def _real_part(root, sigma1, sigma2):
    if not np.iscomplexobj(root):
        return root
    scale = max(1.0, *(float(np.abs(np.diag(s)).max()) for s in (sigma1, sigma2)))
    imag = float(np.abs(root.imag).max()) / scale
    if imag > 1e-3:
        raise ValueError(f"the square root of sigma1 sigma2 has imaginary parts of "
                         f"relative size {imag:.2g}: sigma1 and sigma2 must be "
                         f"covariance matrices of more samples than features")
    if imag > 1e-6:
        warnings.warn(f"frechet_distance: dropped imaginary parts of relative size "
                      f"{imag:.2g} from the matrix square root", RuntimeWarning, 3)
    return root.real


def _flat(images, n_max=None, name="images", scaled=False):
    x = _checks.batch(torch.as_tensor(images).detach().cpu(), name, n_max, 2)
    x = x.reshape(x.shape[0], -1)
    return (x.double() / n_max).numpy() if scaled else x


@dataclass
class DigitClassifier:
    """A logistic-regression digit classifier on pixel values / n_max (Chapter 7)."""
    model: object  # a fitted sklearn LogisticRegression
    n_max: int

    def probabilities(self, images):
        """Class probabilities ``[N, 10]`` of count images ``[N, ...]``."""
        return self.model.predict_proba(_flat(images, self.n_max, scaled=True))

    def features(self, images):
        """The classifier's logits ``[N, 10]``: the Frechet distance's feature space."""
        return self.model.decision_function(_flat(images, self.n_max, scaled=True))


def fit_digit_classifier(train_images, labels, n_max, C=1.0, seed=0):
    """Fit a :class:`DigitClassifier` on real training images and labels (Chapter 7)."""
    from sklearn.linear_model import LogisticRegression
    x = _flat(train_images, _checks.positive_int(n_max, "n_max"), "train_images", True)
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape [N] = [{x.shape[0]}], got {y.shape}")
    model = LogisticRegression(C=C, max_iter=5000, random_state=seed).fit(x, y)
    return DigitClassifier(model, int(n_max))


def classifier_metrics(classifier, images, reference=None, threshold=0.9):
    """Confident fraction, class fractions and Frechet distance (Chapter 7).

    Returns a dict: ``confident_fraction`` (share with max probability >= threshold),
    ``class_fractions`` (``[n_classes]`` shares of the predicted labels),
    ``min_class_fraction``, and ``frechet_distance`` to the ``reference`` images.
    """
    threshold = _checks.probability(threshold, "threshold")
    probs = classifier.probabilities(images)   # checks counts in 0..n_max
    predicted = probs.argmax(axis=1)
    fractions = np.bincount(predicted, minlength=probs.shape[1]) / len(predicted)
    out = {"confident_fraction": float((probs.max(axis=1) >= threshold).mean()),
           "class_fractions": fractions, "min_class_fraction": float(fractions.min())}
    if reference is not None:
        out["frechet_distance"] = frechet_distance(
            *feature_statistics(classifier.features(images)),
            *feature_statistics(classifier.features(reference)))
    return out


def pixel_marginal_samples(train_images, n, generator=None):
    """A trivial baseline generator: every pixel drawn independently from its marginal
    over the training images (right pixel statistics, no shapes), Chapter 7."""
    x, n = _flat(train_images, name="train_images"), _checks.positive_int(n, "n")
    picks = torch.randint(0, x.shape[0], (n, x.shape[1]), generator=generator)
    return x.gather(0, picks).reshape(n, *train_images.shape[1:])


def pixel_marginal_bits_per_dim(train_images, test_images, n_max, alpha=1.0):
    """Exact NLL in bits/dim of ``test_images`` under independent per-pixel categoricals
    fitted to ``train_images`` with add-``alpha`` smoothing (a baseline for Chapter 7):

    p_j(v) = (count_j(v) + alpha) / (N + alpha (n_max + 1)), v = 0..n_max.
    Returns a float64 tensor ``[N_test]``.
    """
    n_max = _checks.positive_int(n_max, "n_max")
    alpha = _checks.number(alpha, "alpha", minimum=0, strict=True)
    train = _flat(train_images, n_max, "train_images").long()
    test = _flat(test_images, n_max, "test_images").long()
    if train.shape[1] != test.shape[1]:
        raise ValueError("train_images and test_images must have the same image shape")
    counts = torch.zeros(train.shape[1], n_max + 1, dtype=torch.float64)
    counts.scatter_add_(1, train.T, torch.ones(train.T.shape, dtype=torch.float64))
    log_p = torch.log((counts + alpha) / (train.shape[0] + alpha * (n_max + 1)))
    nll = -log_p.gather(1, test.T).T.sum(1)
    return nll / (test.shape[1] * math.log(2))


def digit_report(samples, dataset, threshold=0.9, seed=0, draws=3):
    """The Chapter 7 quality numbers of ``samples`` against a digits ``CountDataset``.

    A logistic regression fitted to the training digits scores the samples, the
    held-out digits (the real rate) and pixel-marginal samples (the trivial baseline).
    Every Frechet distance is taken against the whole held-out set at one N,
    ``n`` = min(len(samples), len(dataset.train)): the samples (their first ``n``), the
    real floor (``draws`` random subsets of ``n`` *training* digits, mean and sd) and
    the baseline (``n`` pixel-marginal images). Training digits are real but seen by
    the classifier, so the floor is, if anything, a little high. Returns floats.
    """
    data, draws = dataset, _checks.positive_int(draws, "draws")
    clf = fit_digit_classifier(data.train, data.train_labels, data.n_max, seed=seed)
    n = min(len(samples), len(data.train))
    model = classifier_metrics(clf, samples, threshold=threshold)
    model_fd = classifier_metrics(clf, samples[:n], data.test, threshold)
    real = classifier_metrics(clf, data.test, threshold=threshold)
    gen = torch.Generator().manual_seed(seed)
    floor = [classifier_metrics(clf, data.train[torch.randperm(
        len(data.train), generator=gen)[:n]], data.test, threshold)["frechet_distance"]
        for _ in range(draws)]
    fake = pixel_marginal_samples(data.train, n, gen)
    baseline = classifier_metrics(clf, fake, data.test, threshold)
    return {"n": n, "confident_fraction": model["confident_fraction"],
            "confident_fraction_real": real["confident_fraction"],
            "confident_ratio": model["confident_fraction"] / real["confident_fraction"],
            "min_class_fraction": model["min_class_fraction"],
            "frechet_distance": model_fd["frechet_distance"],
            "frechet_distance_real": float(np.mean(floor)),
            "frechet_distance_real_sd": _sd(floor),
            "frechet_distance_baseline": baseline["frechet_distance"],
            "confident_fraction_baseline": baseline["confident_fraction"]}


def _sd(values):
    """Sample standard deviation (ddof 1) of a list; ``nan`` for fewer than two."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def independent_pixels(real, n, seed=0):
    """``n`` images whose pixels (and channels) are drawn independently, each from its
    empirical marginal over ``real`` (the training images): the right pixel statistics
    and no shapes, the scale of :func:`real_report`. Seeded; uint8 like ``real``."""
    gen = torch.Generator().manual_seed(_checks.positive_int(seed, "seed", 0))
    return pixel_marginal_samples(real, n, gen)


def _scores(classifier, images):
    if hasattr(classifier, "predict"):
        return classifier.predict(images)
    return classifier.probabilities(images), classifier.features(images)


def _judge(classifier, images, reference_stats, threshold):
    probs, feats = _scores(classifier, images)
    fd = frechet_distance(*feature_statistics(feats), *reference_stats)
    hist = np.bincount(probs.argmax(1), minlength=probs.shape[1]) / len(probs)
    return float((probs.max(1) >= threshold).mean()), hist, fd


def real_report(classifier, sample_batches, test_images, train_images=None,
                threshold=0.9, draws=None, seed=0):
    """Sample quality at equal N against real test images, with error bars (Ch. 8-9).

    ``sample_batches``: a list of sample batches of one size N (one per sampling seed).
    The real floor uses ``draws`` (default: the number of batches, at least 2) pairs of
    disjoint random subsets (A_i, B_i) of N ``test_images``, all 2 ``draws`` subsets
    disjoint: ``frechet_floor`` is FD(A_i, B_i); batch j is compared with B_(j mod
    draws); the real rate is the confident fraction of the A_i. With ``train_images``,
    the baseline :func:`independent_pixels` (N images, seeds ``seed + i``) is judged
    like a batch. FD is the Frechet distance in the classifier's features (a *Frechet
    proxy*, not FID). Values are means with ``*_sd`` the standard deviation over
    batches / draws; ``class_fractions`` is the mean predicted-class histogram of the
    batches and ``min_class_fraction`` its smallest entry.
    """
    if not isinstance(sample_batches, (list, tuple)) or not sample_batches:
        raise ValueError("sample_batches must be a non-empty list of sample batches")
    n = len(sample_batches[0])
    if any(len(b) != n for b in sample_batches) or n < 2:
        raise ValueError(f"sample_batches must all hold the same N >= 2 images, got "
                         f"{[len(b) for b in sample_batches]}")
    threshold = _checks.probability(threshold, "threshold")
    draws = _checks.positive_int(
        max(2, len(sample_batches)) if draws is None else draws, "draws")
    if 2 * draws * n > len(test_images):
        raise ValueError(f"test_images must hold 2 draws N = {2 * draws * n} images "
                         f"for disjoint floors, got {len(test_images)}")
    order = torch.randperm(len(test_images), generator=torch.Generator().manual_seed(
        _checks.positive_int(seed, "seed", 0)))[:2 * draws * n].reshape(-1, n)
    refs = [feature_statistics(_scores(classifier, test_images[order[2 * i + 1]])[1])
            for i in range(draws)]
    real = [_judge(classifier, test_images[order[2 * i]], refs[i], threshold)
            for i in range(draws)]
    model = [_judge(classifier, b, refs[j % draws], threshold)
             for j, b in enumerate(sample_batches)]
    out = {"n": n, "batches": len(sample_batches), "draws": draws,
           "floor": "two disjoint random subsets of N test images per draw"}
    out.update(_summary("", model), **_summary("_real", real))
    hist = np.mean([m[1] for m in model], axis=0)
    real_rate = out["confident_fraction_real"]
    ratio = out["confident_fraction"] / real_rate if real_rate > 0 else float("nan")
    out.update(class_fractions=hist.tolist(), min_class_fraction=float(hist.min()),
               confident_ratio=ratio)
    out["frechet_floor"], out["frechet_floor_sd"] = (
        out.pop("frechet_proxy_real"), out.pop("frechet_proxy_real_sd"))
    if train_images is not None:
        fake = [_judge(classifier, independent_pixels(train_images, n, seed + i),
                       refs[i], threshold) for i in range(draws)]
        out.update(_summary("_baseline", fake))
    return out


def _summary(suffix, judged):
    conf, fd = [j[0] for j in judged], [j[2] for j in judged]
    return {f"confident_fraction{suffix}": float(np.mean(conf)),
            f"confident_fraction{suffix}_sd": _sd(conf),
            f"frechet_proxy{suffix}": float(np.mean(fd)),
            f"frechet_proxy{suffix}_sd": _sd(fd)}
