"""Inception FID through an optional package (private; ``evaluate`` re-exports it).

FID :cite:`heusel2017fid` with the standard Inception-v3 features
:cite:`szegedy2016inception`, computed by torch-fidelity, clean-fid or pytorch-fid where
one is installed (Chapters 8-9).
"""
import importlib
from pathlib import Path

import torch

from blackout_tutorial import _checks

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
    from blackout_tutorial.evaluate import feature_statistics, frechet_distance
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
