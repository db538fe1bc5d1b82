"""blackout_tutorial: the companion package of the Blackout Diffusion book.

One module per idea, in the order the book teaches them (see the book's chapter map):
``process`` (forward pure-death process), ``schedule`` (observation times, loss weights,
the importance-sampling grid), ``bridge`` (reverse-time quantities), ``oracle`` (the
exact rate model of a finite data set), ``losses`` (training loss, ELBO), ``sampling``
(the one reverse loop and the samplers on it), ``nets`` (U-Net), ``ncsnpp`` (NCSN++, the
official code's network), ``data`` (the dataset registry), ``presets`` (run settings and
profiles), ``train`` (the training loop), ``runs`` (run folders, checkpoints,
generation), ``evaluate`` (metrics), ``baselines`` (Gaussian diffusion), ``limits``
(large-count limit), ``inpainting`` (conditional generation), ``immigration`` (birth-
death with immigration), ``plotting`` (figures and widgets), ``classifiers`` (the small
CNN judges of Chapters 8-9), ``exercises`` (checkers for the build-it-yourself
exercises). Private: ``_checks``
(argument rules), ``_files`` (file formats and downloads).

Submodules are imported on first use, so ``import blackout_tutorial`` stays fast and
``blackout_tutorial.process`` works without a separate import.
"""
import importlib

__version__ = "0.1.0"

__all__ = ["__version__", "process", "schedule", "bridge", "losses", "sampling",
           "oracle", "nets", "ncsnpp", "data", "presets", "train", "runs", "evaluate",
           "baselines", "limits", "inpainting", "immigration", "plotting",
           "classifiers", "exercises"]
_SUBMODULES = frozenset(__all__[1:])


def __getattr__(name):
    # Lazy submodule import (PEP 562): keeps the top-level import light.
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

