"""Reverse-time samplers: generate count images from black (Chapter 6).

All samplers start from the all-zero image at t_end = times[-1] and walk the increasing
grid ``times`` down to t = 0, one rate-model call per step (NFE = T). A step from
t = t_k to s = t_{k-1} (s = 0 after t_0) uses the bridge probability
q_k = (p_s - p_t) / (1 - p_t):

* ``tau_leaping``:     n_s = clip(n_t + Poisson(y_hat q), 0, n_max)
* ``binomial_bridge``: n_s = n_t + Binomial(clip(round(y_hat), 0, n_max - n_t), q)

The bridge is the exact step given x0, with the network's guess of x0 - x_t in place of
the truth. Rounding y_hat to the *nearest* integer, as the official code does, biases
every step; *stochastic* rounding (floor or ceil, ceil with the fractional part's
probability) keeps the mean. Everything stays on the device: no CPU round trip inside
the loop.

``gillespie_reverse`` is the exact continuous-time sampler of a one-pixel toy, the
reference the discretised samplers converge to.
"""
import contextlib
import os

import torch

from blackout_tutorial import _checks
from blackout_tutorial.bridge import step_probabilities

METHODS = ("tau_leaping", "binomial_bridge")
ROUNDINGS = ("stochastic", "nearest")


def round_counts(y_hat, rounding="stochastic", generator=None):
    """Round predicted counts: ``nearest`` (biased) or ``stochastic`` (unbiased) (Eq.
    ch6-stochastic-rounding, Chapter 6).

    Stochastic rounding returns floor(y) + Bernoulli(y - floor(y)), so its mean is y
    exactly. ``y_hat`` must be finite (``torch.binomial`` of a NaN count never returns).
    """
    y_hat = _checks.finite(y_hat, "y_hat")
    y_hat = y_hat if y_hat.is_floating_point() else y_hat.to(torch.get_default_dtype())
    if rounding == "nearest":
        return torch.round(y_hat)
    if rounding == "stochastic":
        low = torch.floor(y_hat)
        u = torch.rand(
            y_hat.shape, generator=generator, device=y_hat.device, dtype=y_hat.dtype
        )
        return low + (u < y_hat - low).to(y_hat.dtype)
    raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")


def tau_leaping_step(x, y_hat, q, n_max, generator=None):
    """One tau-leaping step: clip(x + Poisson(y_hat q), 0, n_max) (Eq. ch6-tau, Chapter
    6).

    ``x``: long counts; ``y_hat``: the rate model's output (negative values count as 0,
    a rate cannot be negative); ``q``: the step's bridge probability. The upper clip is
    part of the algorithm: Poisson births are unbounded.
    """
    x, y_hat, q = _checks.step_inputs(x, y_hat, q, n_max, poisson=True)
    births = torch.poisson(y_hat.clamp_min(0) * q, generator=generator)
    return (x + births.long()).clamp_(0, n_max)


def binomial_bridge_step(x, y_hat, q, n_max, rounding="stochastic", generator=None):
    """One bridge step: x + Binomial(clip(round(y_hat), 0, n_max - x), q) (Eq.
    ch6-bridge, Chapter 6).

    The clip keeps the result in [0, n_max]; it is part of the algorithm.
    """
    x, y_hat, q = _checks.step_inputs(x, y_hat, q, n_max)
    room = (n_max - x).to(y_hat.dtype)
    count = torch.minimum(round_counts(y_hat, rounding, generator).clamp_min(0), room)
    prob = (
        torch.as_tensor(q, dtype=y_hat.dtype, device=y_hat.device)
        .expand_as(count)
        .contiguous()
    )
    return x + torch.binomial(count, prob, generator=generator).long()


@contextlib.contextmanager
def dropout_active(model, enabled=True):
    """Dropout layers of ``model`` in training mode for the duration, every other
    layer as it was (the official generation samples with dropout on, Chapter 9)."""
    modules = model.modules() if enabled and hasattr(model, "modules") else ()
    layers = [m for m in modules if isinstance(m, torch.nn.Dropout)]
    modes = [m.training for m in layers]
    for m in layers:
        m.train()
    try:
        yield model
    finally:
        for m, mode in zip(layers, modes):
            m.train(mode)


def _progress(iterable, enabled, total):
    # BLACKOUT_PROGRESS=0 (set under pytest) silences bars even when a caller asks.
    if not enabled or os.environ.get("BLACKOUT_PROGRESS", "1") == "0":
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, total=total, desc="sampling", leave=False)


def _resolve_device(model, generator, device):
    if device is not None:
        return torch.device(device)
    params = (
        next(iter(model.parameters()), None)
        if isinstance(model, torch.nn.Module)
        else None
    )
    if params is not None:
        return params.device
    return generator.device if generator is not None else torch.device("cpu")


def reverse_steps(model, x, times, method="tau_leaping", n_max=255,
                  rounding="stochastic", generator=None, after_step=None,
                  progress=False):
    """The reverse-time loop: walk counts ``x`` from t_end = times[-1] down to t = 0
    (Chapter 6).

    Step k goes from t = t_k to s = t_{k-1} (s = 0 after t_0) with one checked call of
    the rate model (``_checks.predict``) and the bridge probability q_k
    (``bridge.step_probabilities``): a ``tau_leaping_step`` or a
    ``binomial_bridge_step``. After each step, ``after_step(k, x, t, s)`` (if given; t
    and s are float64 0-d tensors on x's device) may look at the new state at time s or
    return a replacement for it (``None`` keeps x): inpainting clamps observed pixels
    there and ``reverse_frames`` records frames. ``x``: long counts ``[B, ...]`` on the
    device the loop runs on. Returns the counts at t = 0.
    """
    _checks.one_of(method, METHODS, "method")
    _checks.one_of(rounding, ROUNDINGS, "rounding")
    n_max, times = _checks.positive_int(n_max, "n_max"), _checks.time_grid(times)
    _checks.count_tensor(x, "x", n_max)
    # Every q_k and model time is prepared once: the loop never copies data to the host.
    q = step_probabilities(times).to(device=x.device, dtype=torch.float32)
    grid = torch.cat([times.new_zeros(1), times]).to(x.device)     # 0, t_0, ..., t_end
    with torch.no_grad():
        for k in _progress(range(q.numel() - 1, -1, -1), progress, q.numel()):
            y_hat = _checks.predict(model, x, grid[k + 1], step=k)
            if method == "tau_leaping":
                x = tau_leaping_step(x, y_hat, q[k], n_max, generator)
            else:
                x = binomial_bridge_step(x, y_hat, q[k], n_max, rounding, generator)
            if after_step is not None:
                replaced = after_step(k, x, grid[k + 1], grid[k])
                x = x if replaced is None else replaced
    return x


def sample(model, shape, times, method="tau_leaping", n_max=255, generator=None,
           device=None, progress=False, rounding="stochastic"):
    """Generate counts ``[B, ...]`` in [0, n_max] with a rate model (Chapter 6).

    ``model(x_t, t) -> y_hat`` estimates E[x0 - x_t | x_t] (float counts ``[B, ...]``,
    float times ``[B]``). ``times``: increasing grid, e.g.
    ``schedule.observation_times(T, t_end)``. ``method``: ``tau_leaping`` or
    ``binomial_bridge`` (``rounding`` applies to the bridge). Runs on ``device``
    (default: the model's parameters, else the generator's, else cpu); ``generator``
    must live there. Starts from black and runs ``reverse_steps``. Returns a long
    tensor.
    """
    x = torch.zeros(_checks.batch_shape(shape), dtype=torch.long,
                    device=_resolve_device(model, generator, device))
    return reverse_steps(model, x, times, method, n_max, rounding, generator,
                         progress=progress)


def reverse_frames(model, shape, times, frame_times, method="tau_leaping", n_max=255,
                   generator=None, device=None, rounding="stochastic"):
    """``sample`` that also keeps the states it passes near ``frame_times`` (Chapters
    8-9).

    For each requested time, the frame is the state at the largest grid time t_k at or
    below it, recorded by an ``after_step`` hook of ``reverse_steps`` (the package's one
    reverse loop, not a copy). Returns ``(t_k [F], frames [F, ...], final sample)``; the
    last frame is the final sample at t = 0.
    """
    times = _checks.time_grid(times)
    frame_times = _checks.times(frame_times, "frame_times").reshape(-1)
    x = torch.zeros(_checks.batch_shape(shape), dtype=torch.long,
                    device=_resolve_device(model, generator, device))
    wanted = sorted({int(torch.searchsorted(times, float(t), right=True)) - 1
                     for t in frame_times if float(t) >= float(times[0])}, reverse=True)
    kept = {len(times) - 1: x.clone()} if len(times) - 1 in wanted else {}

    def record(k, x, t, s):    # the state after step k is the state at t_{k-1}
        if k - 1 in wanted:
            kept[k - 1] = x.clone()

    final = reverse_steps(model, x, times, method, n_max, rounding, generator, record)
    t_k = torch.tensor([float(times[k]) for k in wanted] + [0.0])
    return t_k, torch.stack([kept[k] for k in wanted] + [final]), final


def gillespie_reverse(rate, n_paths, t_end, n_max, generator=None, t_min=1e-9):
    """Exact reverse-time paths of a one-pixel pure-birth process from 0 at ``t_end``
    (Eq. ch6-thinning, Chapter 6).

    ``rate(n, t)``: birth rate n -> n+1 at time t for float tensors ``[P]`` (e.g.
    ``lambda n, t: bridge.marginal_birth_rate(oracle, n, t)``); it must not exceed the
    rate with every unit missing, (n_max - n) / (e^t - 1). Thinning (Lewis-Shedler) in
    the clock v = ln(1 - e^{-t}), where that bound becomes the constant n_max - n:
    candidates come at rate n_max - n in v, a candidate at time t is accepted with
    probability rate(n, t) (e^t - 1) / (n_max - n). Exact except that events below
    ``t_min`` are dropped (their probability is O(t_min) on the data's support).

    Returns ``birth_times`` float64 ``[n_paths, n_max]``: row i holds the times of its
    births in decreasing order, NaN after its last one; the final count is the number of
    non-NaN entries.
    """
    n_paths, n_max = (
        _checks.positive_int(n_paths, "n_paths"),
        _checks.positive_int(n_max, "n_max"),
    )
    t_end = _checks.number(t_end, "t_end", minimum=0, strict=True)
    if not 0 < _checks.number(t_min, "t_min") < t_end:
        raise ValueError(f"t_min must lie in (0, t_end = {t_end}), got {t_min!r}")
    device = generator.device if generator is not None else torch.device("cpu")
    f64 = dict(dtype=torch.float64, device=device)
    n = torch.zeros(n_paths, dtype=torch.long, device=device)
    v = (
        torch.full((n_paths,), float(t_end), **f64).neg().expm1().neg().log()
    )  # ln(1 - e^{-t_end})
    births = torch.full((n_paths, n_max), float("nan"), **f64)
    active = torch.ones(n_paths, dtype=torch.bool, device=device)
    while bool(active.any()):
        room = (n_max - n).clamp_min(1).to(torch.float64)
        step = torch.empty(n_paths, **f64).exponential_(generator=generator) / room
        v = torch.where(active, v - step, v)
        t = -torch.log1p(-torch.exp(v))
        active &= t >= t_min
        t = torch.where(
            active, t, float(t_end)
        )  # finished paths: any valid time, never accepted
        y = _checks.output(rate(n.to(torch.float64), t), n.shape, "rate output",
                           minimum=0)
        accept_prob = y * torch.expm1(t) / room
        if bool((accept_prob[active] > 1 + 1e-9).any()):
            raise ValueError(
                "rate exceeds the blackout bound (n_max - n) / (e^t - 1): "
                "not a reverse blackout rate"
            )
        accept = active & (
            torch.rand(n_paths, generator=generator, **f64) < accept_prob
        )
        rows = accept.nonzero().squeeze(1)
        births[rows, n[rows]] = t[rows]
        n = n + accept.long()
        active &= n < n_max
    return births
