"""Observation times and loss weights of Blackout Diffusion (Chapters 3 and 5).

The official code observes the forward process at T times t_0 < ... < t_{T-1} = t_end
that are equally spaced in the logit of the survival probability p_t = e^{-t}, i.e. in
log-SNR (for a unit count, SNR = p/(1-p)). Training draws a time index k uniformly (pi_k
= 1/T) and multiplies the per-time loss by a weight w_k, so the average over k estimates
the integral (or sum) over time that the objective asks for.
"""
import math

import torch

KINDS = ("official", "elbo")
TIME_SAMPLINGS = ("uniform", "importance")
VARIANTS = ("instantaneous", "finite")


def logit_survival(t):
    """logit(e^{-t}) = -log(e^t - 1), the time coordinate of the schedule (Chapter 3).

    Computed as -(t + log(1 - e^{-t})) so that large t does not overflow. t is clamped
    to >= 1e-12 here only, because logit(1) = +inf at t = 0 exactly.
    """
    t = t.clamp_min(1e-12)
    return -(t + torch.log(-torch.expm1(-t)))


def observation_times(T=1000, t_end=15.0):
    """Times with logit(e^{-t_k}) = L (1 - 2k/(T-1)), L = ln(e^{t_end} - 1), k = 0..T-1
    (Eq. ch3-schedule, Chapter 3).

    t_k = ln(1 + e^{-L(1 - 2k/(T-1))}): t_0 is about e^{-t_end}, and the last time is
    set to exactly ``t_end`` (the formula gives it up to rounding). Returns float64
    ``[T]``.
    """
    if isinstance(T, bool) or int(T) != T or T < 2:
        raise ValueError(f"T must be an integer >= 2, got {T!r}")
    if not math.isfinite(t_end) or t_end <= 0:
        raise ValueError(f"t_end must be finite and > 0, got {t_end!r}")
    T = int(T)
    L = math.log(math.expm1(t_end))
    k = torch.arange(T, dtype=torch.float64)
    logit_p = L * (1 - 2 * k / (T - 1))
    times = torch.logaddexp(
        torch.zeros_like(logit_p), -logit_p
    )  # -log sigmoid(logit_p)
    times[-1] = t_end
    return times


def loss_weights(times, kind="official", variant="instantaneous"):
    """Weights w_k for a time index k drawn uniformly from 0..T-1 (Eq. ch3-weights,
    Chapter 3; Chapter 5).

    With p_k = e^{-t_k}, t_{-1} = 0 (so p_{-1} = 1):

    * official, instantaneous: w_k = T p_k (t_k - t_{k-1})
    * official, finite:        w_k = T (p_{k-1} - p_k)
    * elbo, instantaneous:     w_k = T p_k / (1 - p_k) (t_k - t_{k-1})   (derived)
    * elbo, finite:            w_k = T (p_{k-1} - p_k) / (1 - p_k)        (derived)

    The ELBO weights come from the path KL between pure-birth processes, rate p/(1-p)
    dt; the official weights are the ELBO ones times (1 - p_k), which down-weights small
    times. The factor T undoes pi_k = 1/T, so E_k[w_k f(t_k)] is the Riemann sum /
    finite-step sum. ``times`` must be 1-D, strictly increasing, with times[0] > 0.
    Returns float64 ``[T]``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    times = torch.as_tensor(times, dtype=torch.float64)
    if times.ndim != 1 or times.numel() < 1:
        raise ValueError(
            f"times must be a non-empty 1-D tensor, got shape {tuple(times.shape)}"
        )
    if (
        not bool(torch.isfinite(times).all())
        or times[0] <= 0
        or bool((torch.diff(times) <= 0).any())
    ):
        raise ValueError("times must be finite, strictly increasing and start above 0")
    T = times.numel()
    steps = torch.diff(times, prepend=times.new_zeros(1))      # t_k - t_{k-1}
    p = torch.exp(-times)
    one_minus_p = -torch.expm1(-times)
    if variant == "instantaneous":
        w = p * steps
    else:
        w = p * torch.expm1(steps)  # p_{k-1} - p_k, without cancellation
    if kind == "elbo":
        w = w / one_minus_p
    return T * w


def sample_time_indices(batch, T, generator=None, device=None):
    """Draw ``batch`` time indices uniformly from 0..T-1 (pi_k = 1/T, Chapter 5).
    Returns long ``[batch]``."""
    if isinstance(batch, bool) or int(batch) != batch or batch < 1:
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    if isinstance(T, bool) or int(T) != T or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T!r}")
    if device is None and generator is not None:
        device = generator.device
    return torch.randint(0, int(T), (int(batch),), generator=generator, device=device)


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
    if time_sampling == "uniform":
        return times, weights
    if time_sampling != "importance":
        raise ValueError(f"time_sampling must be one of {TIME_SAMPLINGS}, "
                         f"got {time_sampling!r}")
    size = resolution * len(times)
    cdf = torch.cumsum(weights / weights.sum(), 0)
    quantiles = (torch.arange(size, dtype=cdf.dtype, device=cdf.device) + 0.5) / size
    idx = torch.searchsorted(cdf, quantiles).clamp(max=len(times) - 1)
    return times[idx], torch.full((size,), float(weights.sum()) / len(times),
                                  dtype=weights.dtype, device=weights.device)
