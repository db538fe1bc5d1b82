"""Sample-quality metrics (Chapters 7 and 10).

For the 8x8 digits an Inception network :cite:`szegedy2016inception` makes no sense, so
the metrics use a classifier trained on the real training digits instead:

* **confident fraction**: the share of images the classifier labels with probability
  >= 0.9 -- real held-out digits set the bar a generator should approach;
* **class balance**: the share of each predicted class (mode dropping shows up here);
* **Frechet distance** :cite:`heusel2017fid` between Gaussians fitted to classifier
  features of two image sets, the FID recipe with a small classifier in place of Inception.

For MNIST and CIFAR-10 (Chapters 8-9) the module also computes the real FID with the
standard Inception features through an optional package (torch-fidelity, clean-fid or
pytorch-fid), exports samples (.npz, PNG folders, resumable shards), loads the small
checkpoint shipped with the package (SHA-256 checked) and writes a tiny CIFAR-format
fixture so that the CIFAR-10 pipeline runs on a CPU without the real data.
"""
import importlib
import io
import os
import pickle
import tarfile
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from blackout_tutorial import data


def feature_statistics(features):
    """Mean and covariance ``(mu [d], sigma [d, d])`` of features ``[N, d]`` (Chapter 10)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must have shape [N, d] with N >= 2, got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (Chapter 10):

    ||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^{1/2}).

    The matrix square root comes from ``scipy.linalg.sqrtm``; its tiny imaginary parts
    (round-off) are dropped, and a near-singular product gets 1e-6 added to the diagonals,
    as in the reference FID code.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"mu1, mu2 must be [d] and sigma1, sigma2 [d, d] with d = {d}; got "
                         f"{mu2.shape}, {sigma1.shape}, {sigma2.shape}")
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(d) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _flat(images, n_max):
    x = images.detach().cpu().double() if isinstance(images, torch.Tensor) else torch.as_tensor(images).double()
    if x.ndim < 2:
        raise ValueError(f"images must have shape [N, ...], got {tuple(x.shape)}")
    return (x.reshape(x.shape[0], -1) / n_max).numpy()


@dataclass
class DigitClassifier:
    """A logistic-regression digit classifier on pixel intensities / n_max (Chapter 7)."""
    model: object      # a fitted sklearn LogisticRegression
    n_max: int

    def probabilities(self, images):
        """Class probabilities ``[N, 10]`` of count images ``[N, ...]``."""
        return self.model.predict_proba(_flat(images, self.n_max))

    def features(self, images):
        """The classifier's logits ``[N, 10]``: the feature space of the Frechet distance."""
        return self.model.decision_function(_flat(images, self.n_max))


def fit_digit_classifier(train_images, labels, n_max, C=1.0, seed=0):
    """Fit a :class:`DigitClassifier` on real training images and labels (Chapter 7)."""
    from sklearn.linear_model import LogisticRegression
    x = _flat(train_images, n_max)
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape [N] = [{x.shape[0]}], got {y.shape}")
    model = LogisticRegression(C=C, max_iter=5000, random_state=seed).fit(x, y)
    return DigitClassifier(model, int(n_max))


def classifier_metrics(classifier, images, reference=None, threshold=0.9):
    """Confident fraction, class fractions and (with ``reference``) Frechet distance (Chapter 7).

    Returns a dict: ``confident_fraction`` (share with max probability >= ``threshold``),
    ``class_fractions`` (``[n_classes]`` shares of the predicted labels),
    ``min_class_fraction``, and ``frechet_distance`` to the ``reference`` images.
    """
    probs = classifier.probabilities(images)
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
    x = train_images.reshape(train_images.shape[0], -1)
    picks = torch.randint(0, x.shape[0], (n, x.shape[1]), generator=generator)
    return x.gather(0, picks).reshape(n, *train_images.shape[1:])


def pixel_marginal_bits_per_dim(train_images, test_images, n_max, alpha=1.0):
    """Exact NLL in bits/dim of ``test_images`` under independent per-pixel categoricals
    fitted to ``train_images`` with add-``alpha`` smoothing (a baseline for Chapter 7):

    p_j(v) = (count_j(v) + alpha) / (N + alpha (n_max + 1)), v = 0..n_max.
    Returns a float64 tensor ``[N_test]``.
    """
    train = train_images.reshape(train_images.shape[0], -1).long()
    test = test_images.reshape(test_images.shape[0], -1).long()
    if train.shape[1] != test.shape[1]:
        raise ValueError("train_images and test_images must have the same image shape")
    if bool((train > n_max).any() | (test > n_max).any() | (train < 0).any() | (test < 0).any()):
        raise ValueError(f"images must hold counts in 0..n_max = {n_max}")
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
    clf = fit_digit_classifier(dataset.train, dataset.train_labels, dataset.n_max, seed=seed)
    model = classifier_metrics(clf, samples, dataset.test, threshold)
    real = classifier_metrics(clf, dataset.test, dataset.train, threshold)
    gen = torch.Generator().manual_seed(seed)
    baseline = classifier_metrics(clf, pixel_marginal_samples(dataset.train, len(samples), gen),
                                  dataset.test, threshold)
    return {"confident_fraction": model["confident_fraction"],
            "confident_fraction_real": real["confident_fraction"],
            "confident_ratio": model["confident_fraction"] / real["confident_fraction"],
            "min_class_fraction": model["min_class_fraction"],
            "frechet_distance": model["frechet_distance"],
            "frechet_distance_real": real["frechet_distance"],
            "frechet_distance_baseline": baseline["frechet_distance"],
            "confident_fraction_baseline": baseline["confident_fraction"]}


# ---------------------------------------------------------------------------------------
# Chapters 8-9: FID with the standard Inception features, sample export, the shipped
# MNIST-5k checkpoint, and a CIFAR-format fixture for CPU runs.
# ---------------------------------------------------------------------------------------
PAPER_CIFAR10_FID = 4.58        # Blackout Diffusion on CIFAR-10, 50k samples :cite:`santos2023blackout`
FID_BACKENDS = ("torch_fidelity", "cleanfid", "pytorch_fid")
FID_INSTALL_HINT = (
    "Inception FID needs one of the packages torch-fidelity, clean-fid or pytorch-fid, and "
    "none is installed. Install one, e.g. `pip install torch-fidelity` (or `pip install "
    "clean-fid`, `pip install pytorch-fid`). The Inception-v3 weights (about 100 MB) download "
    "on first use, and so does the CIFAR-10 reference (statistics or images), so the first "
    "call needs a network. To compare with the paper's FID of 4.58, use 50,000 samples "
    "against the CIFAR-10 training set: FID is biased upwards for fewer samples.")


def fid_from_features(features_a, features_b):
    """Frechet distance between Gaussians fitted to two feature sets ``[N, d]`` (Eq. (9.1), Chapter 9).

    FID :cite:`heusel2017fid` is this number with Inception-v3 pool features
    :cite:`szegedy2016inception`; with any other feature extractor it is a Frechet distance
    in that feature space, comparable only with itself.
    """
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


def _import_optional(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def available_fid_backend():
    """The first importable FID package of ``FID_BACKENDS`` (module name), or ``None`` (Chapter 9)."""
    return next((name for name in FID_BACKENDS if _import_optional(name) is not None), None)


def inception_fid(sample_dir, reference="cifar10-train", backend=None, device=None,
                  batch_size=200):
    """FID of the images in ``sample_dir`` against ``reference`` with Inception-v3 features (Chapter 9).

    ``sample_dir``: a folder of PNGs (:func:`export_samples_png`). ``reference``:
    ``"cifar10-train"`` (the 50,000 CIFAR-10 training images, the protocol behind the
    paper's 4.58) or a folder of real images. ``backend``: ``torch_fidelity``, ``cleanfid``
    or ``pytorch_fid`` (default: the first installed). clean-fid runs in its
    ``legacy_tensorflow`` mode, the TensorFlow Inception of the original FID code.
    Raises ``ImportError`` with what to ``pip install`` when no backend is importable.
    """
    if backend is None:
        backend = available_fid_backend()
        if backend is None:
            raise ImportError(FID_INSTALL_HINT)
    if backend not in FID_BACKENDS:
        raise ValueError(f"backend must be one of {FID_BACKENDS}, got {backend!r}")
    sample_dir = Path(sample_dir)
    if not sample_dir.is_dir() or not any(sample_dir.glob("*.png")):
        raise ValueError(f"sample_dir must be a folder of PNG images, got {str(sample_dir)!r}")
    registered = reference == "cifar10-train"
    if not registered and not Path(reference).exists():
        raise ValueError(f"reference must be 'cifar10-train' or an existing folder, got {reference!r}")
    device = torch.device(device) if device is not None else (
        torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    module = _import_optional("cleanfid.fid" if backend == "cleanfid" else
                              "pytorch_fid.fid_score" if backend == "pytorch_fid" else backend)
    if module is None:
        raise ImportError(f"FID backend {backend!r} is not installed. {FID_INSTALL_HINT}")
    if backend == "torch_fidelity":
        metrics = module.calculate_metrics(input1=str(sample_dir), input2=str(reference), fid=True,
                                           cuda=device.type == "cuda", batch_size=batch_size,
                                           verbose=False)
        return float(metrics["frechet_inception_distance"])
    if backend == "cleanfid":
        if registered:
            return float(module.compute_fid(str(sample_dir), dataset_name="cifar10", dataset_res=32,
                                            dataset_split="train", mode="legacy_tensorflow",
                                            device=device, batch_size=batch_size))
        return float(module.compute_fid(str(sample_dir), str(reference), mode="legacy_tensorflow",
                                        device=device, batch_size=batch_size))
    if registered:
        raise ValueError("pytorch_fid has no built-in CIFAR-10 reference: pass a folder of the "
                         "training images, e.g. export_samples_png(load_dataset('cifar10').train, "
                         "folder), as reference")
    return float(module.calculate_fid_given_paths([str(sample_dir), str(reference)], batch_size,
                                                  str(device), 2048))


def _checked_counts(samples, n_max):
    x = torch.as_tensor(samples)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"samples must have shape [N, C, H, W] with C = 1 or 3, got {tuple(x.shape)}")
    if isinstance(n_max, bool) or int(n_max) != n_max or not 1 <= n_max <= 255:
        raise ValueError(f"n_max must be an integer in 1..255, got {n_max!r}")
    if x.is_floating_point() and not bool((x == x.round()).all()):
        raise ValueError("samples must hold integer counts")
    if bool((x < 0).any()) or bool((x > n_max).any()):
        raise ValueError(f"samples must hold counts in [0, n_max] = [0, {n_max}]")
    return x.detach().cpu().to(torch.uint8)


def export_samples_npz(samples, path, n_max=255):
    """Save count images as uint8 ``samples [N, C, H, W]`` (and ``n_max``) in a .npz (Chapter 9).

    The same layout as ``python -m blackout_tutorial sample --out x.npz``; raises
    ``ValueError`` unless the counts are integers in [0, n_max].
    """
    x = _checked_counts(samples, n_max)
    np.savez_compressed(path, samples=x.numpy(), n_max=np.int64(n_max))
    return Path(path)


def load_samples_npz(path):
    """``(samples uint8 [N, C, H, W], n_max)`` from a .npz of :func:`export_samples_npz` or the
    CLI (which stores no ``n_max``: 255 is assumed)."""
    with np.load(path) as f:
        if "samples" not in f:
            raise ValueError(f"{path} holds no array named 'samples'")
        n_max = int(f["n_max"]) if "n_max" in f else 255
        return torch.from_numpy(f["samples"]), n_max


def export_samples_png(samples, folder, n_max=255, start=0):
    """Write one PNG per image (``{index:06d}.png``, 8-bit grey or RGB) into ``folder`` (Chapter 9).

    Counts are scaled to 0..255 (round(255 n / n_max)): the input that Inception-FID tools
    read. ``start`` offsets the file numbers, so a large set can be written in chunks.
    """
    from PIL import Image
    x = _checked_counts(samples, n_max).to(torch.int64)
    x = ((x * 255 + n_max // 2) // n_max).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(x):
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            folder / f"{start + i:06d}.png")
    return folder


def generate_shards(run, out_dir, n, steps=None, method=None, batch_size=500, seed=0,
                    device=None, progress=False):
    """Generate ``n`` samples of a trained run into .npz shards, resumably (Chapter 9).

    Shard i holds images [i * batch_size, (i + 1) * batch_size) and uses its own seed
    (seed, i), so finished shards are skipped on a rerun and an interrupted 50,000-image
    job continues where it stopped. Returns the uint8 samples ``[n, C, H, W]`` (CPU).
    """
    from blackout_tutorial import sampling, schedule, train
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    device = torch.device(device) if device else None
    model, preset = train.load_model(run, device=device)
    device = next(model.parameters()).device
    shape, n_max = data.dataset_info(preset.dataset)
    times = schedule.observation_times(steps or preset.sample_steps, preset.t_end)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chunks = []
    for i, begin in enumerate(range(0, int(n), batch_size)):
        path = out_dir / f"shard_{i:05d}.npz"
        if not path.exists():
            gen = torch.Generator(device).manual_seed(int(seed) * 1_000_003 + i)
            x = sampling.sample(model, (min(batch_size, n - begin), *shape), times,
                                method=method or preset.sample_method, n_max=n_max,
                                generator=gen, device=device, progress=progress)
            tmp = out_dir / f".shard_{i:05d}.tmp.npz"   # atomic: never a half-written shard
            export_samples_npz(x, tmp, n_max)
            os.replace(tmp, path)
        chunks.append(load_samples_npz(path)[0])
    return torch.cat(chunks)[:n]


PRETRAINED_DIR = Path(__file__).resolve().parent / "checkpoints"
# sha256 of each shipped checkpoint: a changed or truncated file fails loudly.
PRETRAINED_SHA256 = {
    "mnist5k_small": "562f2f9a75b25ab9aa1af4d3abe04cffe65c05071dbcc4b4cdcf41a7bdf11cbf",
    # Chapter 7's model: digits preset, laptop scale, 2000 steps (float16 EMA weights).
    "digits_laptop": "70f40e953473b2034f02c7a385a4435b7f706de8b589a46e1c686ea7a9a5e812",
}


def pretrained_path(name="mnist5k_small", check=True):
    """Path of a checkpoint shipped with the package, verified against its SHA-256 (Chapter 8).

    Raises ``CheckpointError`` (a ``ValueError``) on an unknown name, a missing file, or a
    checksum mismatch (the file is corrupt, truncated, or was replaced).
    """
    from blackout_tutorial.train import CheckpointError
    if name not in PRETRAINED_SHA256:
        raise CheckpointError(f"name must be one of {sorted(PRETRAINED_SHA256)}, got {name!r}")
    path = PRETRAINED_DIR / f"{name}.pt"
    if not path.is_file():
        raise CheckpointError(f"the shipped checkpoint {path} is missing: reinstall the package "
                              f"or restore the file from the repository")
    if check:
        actual = data.file_digest(path, "sha256")
        if actual != PRETRAINED_SHA256[name]:
            raise CheckpointError(f"{path} has sha256 {actual}, expected {PRETRAINED_SHA256[name]}: "
                                  f"the file is corrupt or was replaced; restore it from the "
                                  f"repository (git checkout -- {path.name})")
    return path


def load_pretrained(name="mnist5k_small", device=None):
    """The shipped, checksum-verified rate model (EMA weights) and its preset (Chapter 8).

    Returns ``(model, preset, info)``; ``info`` holds the training ``step``, the training
    ``seconds`` and the loss ``history`` (``[steps, 3]``: loss, lr, gradient norm).
    """
    from blackout_tutorial import train
    path = pretrained_path(name)
    model, preset = train.load_model(path, device=device)
    state = torch.load(path, map_location="cpu", weights_only=True)
    info = {"step": int(state["step"]), "seconds": float(state.get("seconds", float("nan"))),
            "history": state["history"].double().numpy() if "history" in state else None}
    return model, preset, info


def export_pretrained(run_dir, path):
    """Export a run as a shippable checkpoint: float16 EMA weights, config, step, training
    seconds and loss history (how ``checkpoints/mnist5k_small.pt`` was made, Chapter 8)."""
    from blackout_tutorial import train
    train.export_model(run_dir, path)
    full = train.read_checkpoint(Path(run_dir) / train.CHECKPOINT)
    small = torch.load(path, map_location="cpu", weights_only=True)
    small.update(seconds=float(full["seconds"]), history=full["history"].float())
    torch.save(small, path)
    return Path(path)


def start_finetune(out_dir, extra_steps, name="mnist5k_small", **train_overrides):
    """Prepare ``out_dir`` to fine-tune a shipped checkpoint with ``train.train`` (Chapter 8).

    Writes a full checkpoint whose raw and EMA weights are the shipped EMA weights, with
    a fresh Adam state, and returns the preset to pass to ``train.train(preset, out_dir)``:
    the shipped one with ``steps`` = shipped steps + ``extra_steps`` (and any
    ``TrainConfig`` overrides, e.g. ``lr``).
    """
    from blackout_tutorial import presets, train
    if isinstance(extra_steps, bool) or int(extra_steps) != extra_steps or extra_steps < 1:
        raise ValueError(f"extra_steps must be a positive integer, got {extra_steps!r}")
    model, preset, info = load_pretrained(name, device="cpu")
    preset = presets.with_overrides(preset, steps=info["step"] + int(extra_steps), **train_overrides)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=preset.train.lr)
    train.save_checkpoint(out_dir / train.CHECKPOINT, preset, info["step"], model, model,
                          optimizer, info["history"], info["seconds"])
    return preset


CIFAR10_FIXTURE_CLASSES = ("disc", "square", "h-bar", "v-bar", "ring", "cross", "diagonal",
                           "two-discs", "frame", "checker")


def fixture_images(n, seed=0):
    """``n`` synthetic 3x32x32 uint8 images in 10 shape classes and their labels (Chapter 9).

    A FIXTURE for CPU runs and tests, NOT CIFAR-10: a coloured shape (disc, square, bars,
    ...) with a random position, size and colour on a random smooth background.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float64)
    labels = rng.integers(0, 10, size=n)
    images = np.empty((n, 3, 32, 32), dtype=np.uint8)
    for i, label in enumerate(labels):
        cy, cx = rng.uniform(10, 22, size=2)
        r = rng.uniform(5, 9)
        dy, dx = yy - cy, xx - cx
        shape = [np.hypot(dy, dx) < r, np.maximum(abs(dy), abs(dx)) < r, abs(dy) < r / 3,
                 abs(dx) < r / 3, abs(np.hypot(dy, dx) - r) < 1.5,
                 (abs(dy) < r / 4) | (abs(dx) < r / 4), abs(dy - dx) < 2.5,
                 (np.hypot(dy, dx - r / 2) < r / 2) | (np.hypot(dy, dx + r / 2) < r / 2),
                 abs(np.maximum(abs(dy), abs(dx)) - r) < 1.5,
                 ((yy // 4 + xx // 4) % 2 == 0) & (np.maximum(abs(dy), abs(dx)) < r)][label]
        top, bottom, colour = rng.uniform(0, 255, size=(3, 3))
        background = top[:, None, None] + (bottom - top)[:, None, None] * yy / 31
        image = np.where(shape, colour[:, None, None], 0.6 * background)
        images[i] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return images, labels


def write_cifar10_fixture(path, n_train=200, n_test=50, seed=0):
    """Write a tiny FIXTURE tarball in the CIFAR-10 python format (Chapter 9; NOT CIFAR-10).

    Same layout as ``cifar-10-python.tar.gz``: ``cifar-10-batches-py/data_batch_1..5``,
    ``test_batch`` and ``batches.meta``, each a pickled dict with byte-string keys;
    ``data`` is uint8 ``[N, 3072]`` (1024 red, 1024 green, 1024 blue values per row),
    ``labels`` a list of ints. Images come from :func:`fixture_images`;
    ``data.read_cifar_tarball`` reads the file.
    """
    if n_train < 5 or n_test < 1:
        raise ValueError(f"n_train must be >= 5 and n_test >= 1, got {n_train}, {n_test}")
    images, labels = fixture_images(n_train + n_test, seed)
    rows = images.reshape(len(images), 3072)
    parts = {f"data_batch_{i + 1}": idx for i, idx in enumerate(np.array_split(np.arange(n_train), 5))}
    parts["test_batch"] = np.arange(n_train, n_train + n_test)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        def add(name, obj):
            payload = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        for name, idx in parts.items():
            add(name, {b"batch_label": f"FIXTURE {name} (not CIFAR-10)".encode(),
                       b"labels": [int(v) for v in labels[idx]], b"data": rows[idx],
                       b"filenames": [f"fixture_{j:05d}.png".encode() for j in idx]})
        add("batches.meta", {b"label_names": [c.encode() for c in CIFAR10_FIXTURE_CLASSES],
                             b"num_cases_per_batch": len(parts["test_batch"]), b"num_vis": 3072})
    return path


def load_cifar10_fixture(path):
    """The FIXTURE tarball of :func:`write_cifar10_fixture` as a ``CountDataset`` named
    ``cifar10-fixture`` (n_max = 255, flips on), read by the real CIFAR-10 parser (Chapter 9)."""
    from blackout_tutorial.data import CountDataset, read_cifar_tarball
    train_x, train_y, test_x, test_y = read_cifar_tarball(path)
    return CountDataset("cifar10-fixture", train_x, test_x, train_y, test_y, n_max=255, flip=True)
