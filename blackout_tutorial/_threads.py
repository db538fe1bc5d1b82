"""The CPU thread count of the command line (private): the cores that are free.

On a loaded machine more threads than free cores made a training step 3-15x slower
(measured on a 2-core CPU, ``benchmarks/train_speed.py``), so ``train`` and ``sample``
use the cores this process may run on minus the busy ones, unless the user chose.
"""
import math
import os

import torch

USER_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
TORCH_DEFAULT = torch.get_num_threads()  # before anyone could call set_num_threads


def available_cores():
    """The cores this process may run on (``os.sched_getaffinity``, else all)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def load_average():
    """The 1-minute load average, or 0.0 where the system has none."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def free_cores(cores=None, load=None):
    """``cores`` minus the busy ones (the 1-minute load average, rounded), >= 1."""
    cores = available_cores() if cores is None else int(cores)
    load = load_average() if load is None else float(load)
    busy = int(math.floor(load + 0.5)) if math.isfinite(load) and load > 0 else 0
    return max(1, min(cores, cores - busy))


def choose(env=None, cores=None, load=None, current=None):
    """``(threads, reason)``: the user's count if env ``OMP_NUM_THREADS`` (or
    ``MKL_NUM_THREADS``) is set or ``torch.set_num_threads`` changed torch's default
    since this module was imported (``current`` vs ``TORCH_DEFAULT``), else
    :func:`free_cores`."""
    env = os.environ if env is None else env
    cores = available_cores() if cores is None else int(cores)
    current = torch.get_num_threads() if current is None else int(current)
    for name in USER_VARIABLES:
        if str(env.get(name, "")).strip():
            return current, f"{name}={env[name]}"
    if current != TORCH_DEFAULT:
        return current, "torch.set_num_threads"
    load = load_average() if load is None else float(load)
    return free_cores(cores, load), f"load {load:.1f}"


def apply(device, env=None, cores=None, load=None):
    """Set torch's thread count for a CPU ``device`` (see :func:`choose`) and return
    one line to print, e.g. ``cpu threads: 1 of 2 cores (load 1.0)``; None elsewhere.
    """
    if torch.device(device).type != "cpu":
        return None
    cores = available_cores() if cores is None else int(cores)
    threads, reason = choose(env, cores, load)
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return f"cpu threads: {threads} of {cores} cores ({reason})"
