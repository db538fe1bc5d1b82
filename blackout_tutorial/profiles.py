"""Run profiles for the training chapters: ``smoke`` | ``laptop`` | ``full``.

A notebook asks :func:`current_profile` which scale to run at. The reader chooses with the
environment variable ``BLACKOUT_PROFILE``; the default is ``full`` on a CUDA machine and
``laptop`` elsewhere. The test suite (``conftest.py``) sets ``smoke`` before any kernel starts,
so ``pytest --nbval`` runs every cell in seconds.
"""
import os

import torch

PROFILES = ("smoke", "laptop", "full")


def default_device():
    """The best available device: ``cuda``, then ``mps``, then ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def current_profile(env=None):
    """The profile named by ``BLACKOUT_PROFILE`` (or the hardware default).

    Raises ``ValueError`` naming ``BLACKOUT_PROFILE`` when the variable holds an unknown name.
    """
    env = os.environ if env is None else env
    name = env.get("BLACKOUT_PROFILE", "").strip().lower()
    if not name:
        return "full" if torch.cuda.is_available() else "laptop"
    if name not in PROFILES:
        raise ValueError(f"BLACKOUT_PROFILE must be one of {PROFILES}, got {name!r}")
    return name


def describe():
    """One line for a notebook's first cell: package version, torch version, device, profile."""
    from blackout_tutorial import __version__
    return (f"blackout_tutorial {__version__} | torch {torch.__version__.split('+')[0]} | "
            f"device {default_device().type} | profile {current_profile()}")
