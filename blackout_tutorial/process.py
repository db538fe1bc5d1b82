"""The forward process of Blackout Diffusion: pure death at unit rate (Chapters 2-3).

Every pixel holds ``n`` intensity units and each unit dies independently at rate 1, so a
count only ever goes down, one unit at a time, until the image is black. This module
holds the process in every form the book uses:

* the generator matrix and a numerical solution of the master equation (Chapter 2);
* exact simulation: one Gillespie path, and many paths at once (Chapter 2);
* the closed-form binomial marginal and the exact forward sampler (Chapter 3).

Probabilities are float64; samplers run on the device of their inputs.
"""
import math

import torch

from blackout_tutorial import _checks


def survival(t):
    """Probability that one unit is still alive at time ``t``: p_t = e^{-t} (Eq.
    ch3-survival, Chapter 3).

    Returns a float for a Python number and a tensor (same dtype and device) for a
    tensor.
    """
    _checks.times(t)
    if isinstance(t, torch.Tensor):
        return torch.exp(-t)
    return math.exp(-float(t))


def marginal_pmf(n0, t, n_max=None):
    """Closed-form marginal P(n_t = n | n0) = C(n0, n) p^n (1-p)^{n0-n}, p = e^{-t} (Eq.
    ch3-binomial, Chapter 3).

    ``n0`` and ``t`` broadcast against each other; the result has their broadcast shape
    plus a last dimension over n = 0..n_max (``n_max`` defaults to max(n0); a smaller
    n_max truncates the support, so rows then sum to less than 1). Computed in log space
    with ``lgamma`` and ``log(-expm1(-t))`` so it stays accurate for n0 = 255, t up to
    15 and tiny t. Returns float64.
    """
    device = n0.device if isinstance(n0, torch.Tensor) else getattr(t, "device", None)
    n0 = _checks.counts(n0, "n0").to(device=device, dtype=torch.float64)
    t = _checks.times(t).to(device)
    if n_max is None:
        n_max = int(n0.max()) if n0.numel() else 0
    n_max = _checks.count(n_max, "n_max")
    n0, t = _checks.broadcast(n0, t, ("n0", "t"))
    n0, t = n0.unsqueeze(-1), t.unsqueeze(-1)
    n = torch.arange(n_max + 1, dtype=torch.float64, device=n0.device)
    possible = n <= n0
    dead = torch.where(possible, n0 - n, torch.zeros_like(n0 - n))  # units that died
    log_choose = torch.lgamma(n0 + 1) - torch.lgamma(n + 1) - torch.lgamma(dead + 1)
    log_p = -t                                    # log e^{-t}, exact
    log_one_minus_p = torch.log(-torch.expm1(-t))  # log(1 - e^{-t}), for tiny t too
    # 0 * log 0 = 0: a term with exponent 0 contributes nothing even when its base is 0.
    log_pmf = log_choose + n * log_p + torch.where(
        dead > 0, dead * log_one_minus_p, torch.zeros_like(dead)
    )
    return torch.where(possible, torch.exp(log_pmf), torch.zeros_like(log_pmf))


def generator_matrix(n_max):
    """Generator Q of the pure-death process on {0..n_max}: dP/dt = Q @ P (Eq.
    ch2-generator, Chapter 2).

    Q[n-1, n] = n (a death from n) and Q[n, n] = -n; every column sums to 0. float64.
    """
    n_max = _checks.count(n_max, "n_max")
    rates = torch.arange(n_max + 1, dtype=torch.float64)
    return torch.diag(-rates) + torch.diag(rates[1:], diagonal=1)


def solve_master_equation(p0, times):
    """Solve the master equation dP/dt = Q P numerically: P(t) = exp(Q t) P(0) (Eq.
    ch2-matrix-exp, Chapter 2).

    ``p0`` is a probability vector over n = 0..n_max; ``times`` a 1-D sequence of times
    >= 0. Uses ``torch.linalg.matrix_exp`` in float64. Returns ``[len(times), n_max +
    1]``.
    """
    p0 = _checks.probability_vector(p0, "p0")
    times = _checks.times(times, "times").to(p0.device).reshape(-1)
    Q = generator_matrix(p0.numel() - 1).to(p0.device)
    propagators = torch.linalg.matrix_exp(Q * times[:, None, None])
    return propagators @ p0


DEATH_TIME_METHODS = ("gillespie", "lifetimes")


def death_times(n0, n_paths=1, method="lifetimes", generator=None):
    """Sorted death times ``[n_paths, n0]`` of ``n_paths`` independent pure-death paths
    (Chapter 2).

    "gillespie": waiting time from state n is Exp(n) (total rate n), then the jump n ->
    n-1. "lifetimes": each unit lives an independent Exp(1) lifetime; sorted, they are
    the death times. Both give the same law (Renyi's representation of exponential order
    statistics).
    """
    n0, n_paths = _checks.count(n0, "n0"), _checks.positive_int(n_paths, "n_paths")
    _checks.one_of(method, DEATH_TIME_METHODS, "method")
    device = generator.device if generator is not None else None
    draws = torch.empty(n_paths, n0, dtype=torch.float64, device=device).exponential_(
        generator=generator
    )
    if method == "gillespie":
        rates = torch.arange(
            n0, 0, -1, dtype=torch.float64, device=device
        )  # n0, n0-1, ..., 1
        return torch.cumsum(draws / rates, dim=1)
    return torch.sort(draws, dim=1).values


def gillespie(n0, t_end, generator=None):
    """One exact path of the pure-death process up to ``t_end`` (Gillespie's SSA, Eq.
    ch2-gillespie, Chapter 2).

    Returns ``(jump_times [J], states [J+1])``: ``states[0] = n0`` and ``states[j+1] =
    n0 - (j+1)`` is the state right after ``jump_times[j]``; only jumps at times <=
    t_end are kept.
    """
    n0, t_end = _checks.count(n0, "n0"), _checks.number(t_end, "t_end", minimum=0)
    death = death_times(n0, 1, "gillespie", generator)[0]
    jump_times = death[death <= float(t_end)]
    states = n0 - torch.arange(jump_times.numel() + 1, device=death.device)
    return jump_times, states


def state_at_times(n0, times, n_paths, method="lifetimes", generator=None):
    """Counts of ``n_paths`` independent exact paths started at ``n0``, read at
    ``times`` (Chapter 2).

    ``method`` is "lifetimes" (independent Exp(1) lifetimes, Chapter 3) or "gillespie"
    (Exp(n) waiting times, Chapter 2). Returns a long tensor ``[n_paths, len(times)]``:
    n_t = n0 - #{deaths <= t}.
    """
    times = _checks.times(times, "times").reshape(-1)
    death = death_times(n0, n_paths, method, generator)
    queries = times.to(death.device).expand(n_paths, -1).contiguous()
    return n0 - torch.searchsorted(death, queries, right=True)


def sample_forward(x0, t, generator=None):
    """Exact forward sample x_t ~ Binomial(x0, e^{-t}) elementwise (Eq. ch3-binomial,
    Chapter 3).

    ``x0``: counts ``[B, ...]`` (integer dtype or integer-valued float). ``t``: a float,
    a 0-d tensor, or a ``[B]`` tensor broadcast over each sample. Runs on x0's device
    with ``torch.binomial`` (no lookup table) and returns x0's dtype.

    The deaths are drawn, x_t = x0 - Binomial(x0, 1 - e^{-t}), with the death
    probability ``-expm1(-t)`` in float64: at the first time of the T = 1000, t_end = 15
    grid, t_0 = 3.06e-7, e^{-t} rounded to float32 makes 1 - p 2.6% too small (and
    below t = 2.98e-8 nothing would ever die).
    """
    _checks.count_tensor(x0, "x0")
    t = _checks.per_sample(_checks.times(t).to(x0.device), x0)
    death = -torch.expm1(-t.to(torch.float64))  # 1 - e^{-t}, accurate for tiny t
    counts = x0.to(torch.float64)
    deaths = torch.binomial(
        counts, death.expand_as(counts).contiguous(), generator=generator
    )
    return (counts - deaths).to(x0.dtype)
