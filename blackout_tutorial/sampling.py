"""Reverse-time samplers: generate count images from black (Chapter 6).

All samplers start from the all-zero image at t_end = times[-1] and walk the increasing grid
``times`` down to t = 0, one rate-model call per step (NFE = T). A step from t = t_k to
s = t_{k-1} (s = 0 after t_0) uses the bridge probability q_k = (p_s - p_t) / (1 - p_t):

* ``tau_leaping``:     n_s = clip(n_t + Poisson(y_hat q), 0, n_max)
* ``binomial_bridge``: n_s = n_t + Binomial(clip(round(y_hat), 0, n_max - n_t), q)

The bridge is the exact step given x0, with the network's guess of x0 - x_t in place of the
truth. Rounding y_hat to the *nearest* integer, as the official code does, biases every step;
*stochastic* rounding (floor or ceil, ceil with the fractional part's probability) keeps the
mean. Everything stays on the device: no CPU round trip inside the loop.

``gillespie_reverse`` is the exact continuous-time sampler of a one-pixel toy, the reference
the discretised samplers converge to.
"""
import os

import torch

from blackout_tutorial.bridge import step_probabilities

METHODS = ("tau_leaping", "binomial_bridge")
ROUNDINGS = ("stochastic", "nearest")


def round_counts(y_hat, rounding="stochastic", generator=None):
    """Round predicted counts: ``nearest`` (biased) or ``stochastic`` (unbiased) (Eq. (6.3), Chapter 6).

    Stochastic rounding returns floor(y) + Bernoulli(y - floor(y)), so its mean is y exactly.
    """
    if rounding == "nearest":
        return torch.round(y_hat)
    if rounding == "stochastic":
        low = torch.floor(y_hat)
        u = torch.rand(y_hat.shape, generator=generator, device=y_hat.device, dtype=y_hat.dtype)
        return low + (u < y_hat - low).to(y_hat.dtype)
    raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")


def tau_leaping_step(x, y_hat, q, n_max, generator=None):
    """One tau-leaping step: clip(x + Poisson(y_hat q), 0, n_max) (Eq. (6.1), Chapter 6).

    ``x``: long counts; ``y_hat``: the rate model's output (negative values count as 0, a
    rate cannot be negative); ``q``: the step's bridge probability. The upper clip is part of
    the algorithm: Poisson births are unbounded.
    """
    births = torch.poisson(y_hat.clamp_min(0) * q, generator=generator)
    return (x + births.long()).clamp_(0, n_max)


def binomial_bridge_step(x, y_hat, q, n_max, rounding="stochastic", generator=None):
    """One bridge step: x + Binomial(clip(round(y_hat), 0, n_max - x), q) (Eq. (6.2), Chapter 6).

    The clip keeps the result in [0, n_max]; it is part of the algorithm.
    """
    room = (n_max - x).to(y_hat.dtype)
    count = torch.minimum(round_counts(y_hat, rounding, generator).clamp_min(0), room)
    prob = torch.as_tensor(q, dtype=y_hat.dtype, device=y_hat.device).expand_as(count).contiguous()
    return x + torch.binomial(count, prob, generator=generator).long()


def _progress(iterable, enabled, total):
    # BLACKOUT_PROGRESS=0 (set under pytest) silences bars even when a caller asks for one.
    if not enabled or os.environ.get("BLACKOUT_PROGRESS", "1") == "0":
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, total=total, desc="sampling", leave=False)


def _resolve_device(model, generator, device):
    if device is not None:
        return torch.device(device)
    params = next(iter(model.parameters()), None) if isinstance(model, torch.nn.Module) else None
    if params is not None:
        return params.device
    return generator.device if generator is not None else torch.device("cpu")


def _check_shape(shape):
    shape = tuple(shape)
    if not shape or any(isinstance(d, bool) or int(d) != d or d < 1 for d in shape):
        raise ValueError(f"shape must be a non-empty tuple of positive integers [B, ...], got {shape!r}")
    return tuple(int(d) for d in shape)


def sample(model, shape, times, method="tau_leaping", n_max=255, generator=None, device=None,
           progress=False, rounding="stochastic"):
    """Generate counts ``[B, ...]`` in [0, n_max] with a rate model (Algorithm 6.1, Chapter 6).

    ``model(x_t, t) -> y_hat`` estimates E[x0 - x_t | x_t] (float counts ``[B, ...]``, float
    times ``[B]``). ``times``: increasing grid, e.g. ``schedule.observation_times(T, t_end)``.
    ``method``: ``tau_leaping`` or ``binomial_bridge`` (``rounding`` applies to the bridge).
    Runs on ``device`` (default: the model's parameters, else the generator's, else cpu);
    ``generator`` must live there. Returns a long tensor.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    if isinstance(n_max, bool) or int(n_max) != n_max or n_max < 1:
        raise ValueError(f"n_max must be an integer >= 1, got {n_max!r}")
    shape = _check_shape(shape)
    device = _resolve_device(model, generator, device)
    # Every q_k and model time is prepared once, so the loop below never syncs with the host.
    q = step_probabilities(times).to(device=device, dtype=torch.float32)
    model_times = torch.as_tensor(times, dtype=torch.get_default_dtype()).to(device)
    x = torch.zeros(shape, dtype=torch.long, device=device)
    with torch.no_grad():
        for k in _progress(range(q.numel() - 1, -1, -1), progress, q.numel()):
            y_hat = model(x.to(torch.get_default_dtype()), model_times[k].expand(shape[0]))
            if y_hat.shape != x.shape:
                raise ValueError(f"model output must have shape {shape}, got {tuple(y_hat.shape)}")
            if method == "tau_leaping":
                x = tau_leaping_step(x, y_hat, q[k], n_max, generator)
            else:
                x = binomial_bridge_step(x, y_hat, q[k], n_max, rounding, generator)
    return x


def gillespie_reverse(rate, n_paths, t_end, n_max, generator=None, t_min=1e-9):
    """Exact reverse-time paths of a one-pixel pure-birth process from 0 at ``t_end`` (Eq. (6.5), Chapter 6).

    ``rate(n, t)``: birth rate n -> n+1 at time t for float tensors ``[P]`` (e.g.
    ``lambda n, t: bridge.marginal_birth_rate(oracle, n, t)``); it must not exceed the
    rate with every unit missing, (n_max - n) / (e^t - 1). Thinning (Lewis-Shedler) in the
    clock v = ln(1 - e^{-t}), where that bound becomes the constant n_max - n: candidates come
    at rate n_max - n in v, a candidate at time t is accepted with probability
    rate(n, t) (e^t - 1) / (n_max - n). Exact except that events below ``t_min`` are dropped
    (their probability is O(t_min) on the data's support).

    Returns ``birth_times`` float64 ``[n_paths, n_max]``: row i holds the times of its births in
    decreasing order, NaN after its last one; the final count is the number of non-NaN entries.
    """
    n_paths, n_max = int(n_paths), int(n_max)
    if n_paths < 1 or n_max < 1 or not 0 < t_min < t_end:
        raise ValueError("n_paths and n_max must be >= 1 and 0 < t_min < t_end")
    device = generator.device if generator is not None else torch.device("cpu")
    f64 = dict(dtype=torch.float64, device=device)
    n = torch.zeros(n_paths, dtype=torch.long, device=device)
    v = torch.full((n_paths,), float(t_end), **f64).neg().expm1().neg().log()   # ln(1 - e^{-t_end})
    births = torch.full((n_paths, n_max), float("nan"), **f64)
    active = torch.ones(n_paths, dtype=torch.bool, device=device)
    while bool(active.any()):
        room = (n_max - n).clamp_min(1).to(torch.float64)
        step = torch.empty(n_paths, **f64).exponential_(generator=generator) / room
        v = torch.where(active, v - step, v)
        t = -torch.log1p(-torch.exp(v))
        active &= t >= t_min
        t = torch.where(active, t, float(t_end))   # finished paths: any valid time, never accepted
        accept_prob = rate(n.to(torch.float64), t) * torch.expm1(t) / room
        if bool((accept_prob[active] > 1 + 1e-9).any()):
            raise ValueError("rate exceeds the blackout bound (n_max - n) / (e^t - 1): not a reverse blackout rate")
        accept = active & (torch.rand(n_paths, generator=generator, **f64) < accept_prob)
        rows = accept.nonzero().squeeze(1)
        births[rows, n[rows]] = t[rows]
        n = n + accept.long()
        active &= n < n_max
    return births
