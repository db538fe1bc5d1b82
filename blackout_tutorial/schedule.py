"""Observation times and loss weights of Blackout Diffusion (Chapters 3 and 5).

The official code observes the forward process at T times t_0 < ... < t_{T-1} = t_end
that are equally spaced in the logit of the survival probability p_t = e^{-t}, i.e. in
log-SNR (for a unit count, SNR = p/(1-p)). Training draws a time index k uniformly
(each with probability 1/T) and multiplies the per-time loss by a weight w_k, so the
average over k estimates the integral (or sum) over time that the objective asks for.
"""
import math

import torch

from blackout_tutorial import _checks

KINDS = ("official", "elbo")
TIME_SAMPLINGS = ("uniform", "importance")
VARIANTS = ("instantaneous", "finite")


def logit_survival(t):
    """logit(e^{-t}) = -log(e^t - 1), the time coordinate of the schedule (Chapter 3).

    Computed as -(t + log(1 - e^{-t})) so that large t does not overflow. t is clamped
    to >= 1e-12 here only, because logit(1) = +inf at t = 0 exactly.
    """
    t = torch.as_tensor(t, dtype=torch.float64) if not torch.is_tensor(t) else t
    t = t.clamp_min(1e-12)
    return -(t + torch.log(-torch.expm1(-t)))


def observation_times(T=1000, t_end=15.0):
    """Times with logit(e^{-t_k}) = L (1 - 2k/(T-1)), L = ln(e^{t_end} - 1), k = 0..T-1
    (Eq. ch3-schedule, Chapter 3).

    t_k = ln(1 + e^{-L(1 - 2k/(T-1))}): t_0 is about e^{-t_end}, and the last time is
    set to exactly ``t_end`` (the formula gives it up to rounding). The grid is
    symmetric in the logit, so it increases only for t_end > ln 2, and it must start
    above 0 in float64 (t_end up to about 700). Returns float64 ``[T]``.
    """
    T = _checks.positive_int(T, "T", minimum=2)
    if _checks.number(t_end, "t_end", minimum=0, strict=True) <= math.log(2):
        raise ValueError(f"t_end must be > ln 2 = 0.693 (the grid is symmetric in "
                         f"logit(e^-t), so below it t_0 > t_end), got {t_end!r}")
    L = _log_expm1(t_end)
    k = torch.arange(T, dtype=torch.float64)
    logit_p = L * (1 - 2 * k / (T - 1))
    times = torch.logaddexp(
        torch.zeros_like(logit_p), -logit_p
    )  # -log sigmoid(logit_p)
    times[-1] = t_end
    if times[0] <= 0 or bool((torch.diff(times) <= 0).any()):
        raise ValueError(f"t_end = {t_end!r} gives no strictly increasing float64 grid "
                         f"of T = {T} times above 0: take t_end in (ln 2, about 745)")
    return times


def _log_expm1(x):
    """ln(e^x - 1) for x > 0 without overflow: x + ln(1 - e^{-x}) for large x."""
    return math.log(math.expm1(x)) if x < 700 else x + math.log1p(-math.exp(-x))


def loss_weights(times, kind="official", variant="instantaneous"):
    """Weights w_k for a time index k drawn uniformly from 0..T-1 (Eq. ch3-weights,
    Chapter 3; Eq. ch5-official-weights, Chapter 5).

    With p_k = e^{-t_k}, t_{-1} = 0 (so p_{-1} = 1):

    * official, instantaneous: w_k = T p_k (t_k - t_{k-1})
    * official, finite:        w_k = p_{k-1} - p_k            (no factor T)
    * elbo, instantaneous:     w_k = T p_k / (1 - p_k) (t_k - t_{k-1})   (derived)
    * elbo, finite:            w_k = T (p_{k-1} - p_k) / (1 - p_k) = T q_k   (derived)

    The ELBO weights come from the path KL between pure-birth processes, rate p/(1-p)
    dt; q_k is the bridge probability of ``bridge.step_probabilities``. The factor T
    undoes the probability 1/T of each index, so E_k[w_k f(t_k)] is the Riemann sum /
    finite-step sum. The official code has it in its instantaneous weights only: its
    finite-time notebook sets its index weights to 1, so those weights sum to
    1 - p_{T-1} (official instantaneous = (1 - p_k) x ELBO instantaneous; official
    finite = (1 - p_k) x ELBO finite / T: the same minimiser, 1/T the loss scale).
    Both down-weight small times. ``times`` must be 1-D, strictly increasing, with
    times[0] > 0. Returns float64 ``[T]``.
    """
    _checks.one_of(kind, KINDS, "kind"), _checks.one_of(variant, VARIANTS, "variant")
    times = _checks.time_grid(times)
    T = times.numel()
    steps = torch.diff(times, prepend=times.new_zeros(1))      # t_k - t_{k-1}
    p = torch.exp(-times)
    one_minus_p = -torch.expm1(-times)
    if variant == "instantaneous":
        w = p * steps
    else:
        w = p * torch.expm1(steps)  # p_{k-1} - p_k, without cancellation
        if kind == "official":
            return w  # the official finite-time weights carry no factor T
    if kind == "elbo":
        w = w / one_minus_p
    return T * w


def sample_time_indices(batch, T, generator=None, device=None):
    """Draw ``batch`` time indices uniformly from 0..T-1 (probability 1/T each,
    Chapter 5). Returns long ``[batch]``."""
    batch, T = _checks.positive_int(batch, "batch"), _checks.positive_int(T, "T")
    if device is None and generator is not None:
        device = generator.device
    return torch.randint(0, T, (batch,), generator=generator, device=device)


def training_grid(times, weights, time_sampling="uniform", resolution=16):
    """The (times, weights) pair handed to ``losses.blackout_loss``, which draws an
    index uniformly (Chapters 5, 7).

    ``uniform`` returns them unchanged: k ~ Uniform{0..T-1}, loss times w_k (the paper).
    ``importance`` returns a grid of ``resolution * T`` times on which a uniform draw
    hits t_k with probability pi_k = w_k / sum(w), all with the constant weight sum(w) /
    T: the same expected loss (up to rounding pi_k to multiples of 1 / (resolution T))
    with far less variance. With the official weights w_k is ~ p (1 - p) per logit step,
    so a uniform draw spends most of a batch on times whose weight is nearly 0.
    """
    _checks.one_of(time_sampling, TIME_SAMPLINGS, "time_sampling")
    _checks.weights(weights, _checks.times(times, "times"))
    if time_sampling == "uniform":
        return times, weights
    size = _checks.positive_int(resolution, "resolution") * len(times)
    cdf = torch.cumsum(weights / weights.sum(), 0)
    quantiles = (torch.arange(size, dtype=cdf.dtype, device=cdf.device) + 0.5) / size
    idx = torch.searchsorted(cdf, quantiles).clamp(max=len(times) - 1)
    return times[idx], torch.full((size,), float(weights.sum()) / len(times),
                                  dtype=weights.dtype, device=weights.device)
