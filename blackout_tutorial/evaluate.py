"""Sample-quality metrics (Chapters 7 and 10).

For the 8x8 digits an Inception network :cite:`szegedy2016inception` makes no sense,
so the metrics use a classifier trained on the real training digits instead:

* **confident fraction**: the share of images labelled with probability >= 0.9 --
  real held-out digits set the bar a generator should approach;
* **class balance**: the share of each predicted class (mode dropping shows up here);
* **Frechet distance** :cite:`heusel2017fid` between Gaussians fitted to classifier
  features of two image sets: the FID recipe with a small classifier for Inception.

MNIST and CIFAR-10 (Chapters 8-9): the real FID with the standard Inception features
through an optional package (torch-fidelity, clean-fid or pytorch-fid). Also here:
exact pixel-marginal baselines (Chapters 7 and 10) and the chi-square test of samplers
against exact distributions (Chapters 2-6). Sample files: :mod:`blackout_tutorial.runs`.
"""
import importlib
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.stats
import torch

from blackout_tutorial import _checks


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
                         f"covariance matrices")
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


def digit_report(samples, dataset, threshold=0.9, seed=0):
    """The Chapter 7 quality numbers of ``samples`` against a digits ``CountDataset``.

    A classifier fitted to the training digits scores the samples, the held-out digits
    (the bar), the training digits (real-vs-real Frechet distance) and pixel-marginal
    samples (the trivial baseline). Returns a flat dict of floats.
    """
    data = dataset
    clf = fit_digit_classifier(data.train, data.train_labels, data.n_max, seed=seed)
    model = classifier_metrics(clf, samples, data.test, threshold)
    real = classifier_metrics(clf, data.test, data.train, threshold)
    gen = torch.Generator().manual_seed(seed)
    fake = pixel_marginal_samples(data.train, len(samples), gen)
    baseline = classifier_metrics(clf, fake, data.test, threshold)
    return {"confident_fraction": model["confident_fraction"],
            "confident_fraction_real": real["confident_fraction"],
            "confident_ratio": model["confident_fraction"] / real["confident_fraction"],
            "min_class_fraction": model["min_class_fraction"],
            "frechet_distance": model["frechet_distance"],
            "frechet_distance_real": real["frechet_distance"],
            "frechet_distance_baseline": baseline["frechet_distance"],
            "confident_fraction_baseline": baseline["confident_fraction"]}


# --- Chapters 8-9: FID with the standard Inception features ---------------------------
PAPER_CIFAR10_FID = 4.58  # CIFAR-10, 50k samples :cite:`santos2023blackout`
FID_BACKENDS = ("torch_fidelity", "cleanfid", "pytorch_fid")
FID_INSTALL_HINT = (
    "Inception FID needs one of the packages torch-fidelity, clean-fid or pytorch-fid, "
    "and none is installed. Install one, e.g. `pip install torch-fidelity` (or `pip "
    "install clean-fid`, `pip install pytorch-fid`). The Inception-v3 weights (about "
    "100 MB) download on first use, and so does the CIFAR-10 reference (statistics or "
    "images), so the first call needs a network. To compare with the paper's FID of "
    "4.58, use 50,000 samples against the CIFAR-10 training set: FID is biased upwards "
    "for fewer samples.")


def fid_from_features(features_a, features_b):
    """Frechet distance between Gaussians fitted to two feature sets ``[N, d]``
    (Eq. ch9-fid, Chapter 9).

    FID :cite:`heusel2017fid` is this number with Inception-v3 pool features
    :cite:`szegedy2016inception`; with any other feature extractor it is a Frechet
    distance in that feature space, comparable only with itself.
    """
    stats = feature_statistics(features_a) + feature_statistics(features_b)
    return frechet_distance(*stats)


def _import_optional(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def available_fid_backend():
    """The first importable package of ``FID_BACKENDS``, or ``None`` (Chapter 9)."""
    return next((n for n in FID_BACKENDS if _import_optional(n) is not None), None)


def inception_fid(sample_dir, reference="cifar10-train", backend=None, device=None,
                  batch_size=200):
    """FID of the PNGs in ``sample_dir`` against ``reference`` (Inception, Chapter 9).

    ``sample_dir``: a folder of PNGs (``runs.save_samples_png``). ``reference``:
    ``"cifar10-train"`` (the 50,000 CIFAR-10 training images, the protocol behind the
    paper's 4.58) or a folder of real images. ``backend``: ``torch_fidelity``,
    ``cleanfid`` or ``pytorch_fid`` (default: the first installed); clean-fid runs in
    ``legacy_tensorflow`` mode, the TensorFlow Inception of the original FID code.
    Raises ``ImportError`` with what to ``pip install`` when no backend is importable.
    """
    backend = available_fid_backend() if backend is None else backend
    if backend is None:
        raise ImportError(FID_INSTALL_HINT)
    _checks.one_of(backend, FID_BACKENDS, "backend")
    if not isinstance(sample_dir, (str, Path)) or not any(
            Path(sample_dir).glob("*.png")):
        raise ValueError(f"sample_dir must be a folder of PNG images, got "
                         f"{sample_dir!r}")
    registered = reference == "cifar10-train"
    if not registered and not Path(reference).exists():
        raise ValueError(f"reference must be 'cifar10-train' or an existing folder, "
                         f"got {reference!r}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    names = {"cleanfid": "cleanfid.fid", "pytorch_fid": "pytorch_fid.fid_score"}
    module = _import_optional(names.get(backend, backend))
    if module is None:
        raise ImportError(f"FID backend {backend!r} is not installed. "
                          f"{FID_INSTALL_HINT}")
    a, b, kw = str(sample_dir), str(reference), {"batch_size": batch_size}
    if backend == "torch_fidelity":
        metrics = module.calculate_metrics(input1=a, input2=b, fid=True, verbose=False,
                                           cuda=device.type == "cuda", **kw)
        return float(metrics["frechet_inception_distance"])
    if backend == "cleanfid":
        kw.update(mode="legacy_tensorflow", device=device)
        if registered:
            return float(module.compute_fid(a, dataset_name="cifar10", dataset_res=32,
                                            dataset_split="train", **kw))
        return float(module.compute_fid(a, b, **kw))
    if registered:
        raise ValueError("pytorch_fid has no built-in CIFAR-10 reference: pass a "
                         "folder of the training images, e.g. runs.save_samples_png("
                         "load_dataset('cifar10').train, folder, 255), as reference")
    fid = module.calculate_fid_given_paths
    return float(fid([a, b], batch_size, str(device), 2048))


def chi_square_test(samples, pmf, min_expected=5.0):
    """Pearson chi-square goodness-of-fit of integer ``samples`` against ``pmf`` over
    0..len(pmf)-1 (Chapter 2).

    Neighbouring bins are merged (left to right) until each expects at least
    ``min_expected`` samples, the validity rule of the chi-square approximation.
    Returns Python numbers ``(statistic, p_value, n_bins)``; a tiny p-value rejects pmf.
    """
    samples = _checks.counts(torch.as_tensor(samples).reshape(-1).cpu(), "samples")
    pmf = _checks.probability_vector(torch.as_tensor(pmf).cpu(), "pmf", 1e-6, True)
    min_expected = _checks.number(min_expected, "min_expected", minimum=0, strict=True)
    if bool((samples >= pmf.numel()).any()):
        raise ValueError("samples must lie in 0..len(pmf)-1 (a sample has zero "
                         "probability under pmf)")
    observed = torch.bincount(samples.long(), minlength=pmf.numel()).double().tolist()
    expected = (pmf / pmf.sum() * len(samples)).tolist()
    obs_bins, exp_bins, o_acc, e_acc = [], [], 0.0, 0.0
    for o, e in zip(observed, expected):
        o_acc, e_acc = o_acc + o, e_acc + e
        if e_acc >= min_expected:
            obs_bins, exp_bins = obs_bins + [o_acc], exp_bins + [e_acc]
            o_acc, e_acc = 0.0, 0.0
    if not exp_bins:
        raise ValueError(f"too few samples for min_expected = {min_expected}")
    obs_bins[-1] += o_acc  # the left-over tail joins the last full bin
    exp_bins[-1] += e_acc
    if len(exp_bins) == 1:
        return 0.0, 1.0, 1  # one bin: nothing to test (all mass in one place)
    statistic, p_value = scipy.stats.chisquare(obs_bins, exp_bins)
    return float(statistic), float(p_value), len(exp_bins)
