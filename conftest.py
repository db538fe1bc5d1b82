"""Test-wide settings, applied before any notebook kernel starts (kernels inherit the env)."""
import os

# Notebooks run their tiny CI scale under pytest unless the caller chose a profile.
os.environ.setdefault("BLACKOUT_PROFILE", "smoke")
# Two-core CI machines: keep BLAS/torch from oversubscribing and make runs repeatable.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
os.environ.setdefault("PYTHONHASHSEED", "0")
# Progress bars write carriage-return noise to stderr, which nbval would compare.
os.environ.setdefault("BLACKOUT_PROGRESS", "0")
