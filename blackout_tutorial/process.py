"""The forward process of Blackout Diffusion: pure death at unit rate (Chapters 2-3).

Every pixel holds ``n`` intensity units and each unit dies independently at rate 1, so a
count only ever goes down, one unit at a time, until the image is black. This module holds
the process in every form the book uses:

* the generator matrix and a numerical solution of the master equation (Chapter 2);
* exact simulation: one Gillespie path, and many paths at once (Chapter 2);
* the closed-form binomial marginal and the exact forward sampler (Chapter 3).

Probabilities are float64; samplers run on the device of their inputs.
"""
import math

import torch


def _as_float64(x, device=None):
    return torch.as_tensor(x, dtype=torch.float64, device=device)


def _check_times(t, name="t"):
    """Raise ``ValueError`` unless every time in ``t`` is finite and >= 0."""
    t = torch.as_tensor(t)
    if t.dtype == torch.bool or t.dtype.is_complex:
        raise ValueError(f"{name} must hold real times, got dtype {t.dtype}")
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ValueError(f"{name} must be finite and >= 0 (times run forward from t = 0)")


def _check_counts(n, name):
    """Raise ``ValueError`` unless ``n`` holds non-negative integer values (any dtype)."""
    n = torch.as_tensor(n)
    if n.dtype == torch.bool or n.dtype.is_complex:
        raise ValueError(f"{name} must hold integer counts, got dtype {n.dtype}")
    if torch.is_floating_point(n) and not bool((n == torch.round(n)).all()):
        raise ValueError(f"{name} must hold integer-valued counts (got non-integer values)")
    if bool((n < 0).any()):
        raise ValueError(f"{name} must hold non-negative counts (got a negative value)")


def _check_count_scalar(n0, name="n0"):
    if isinstance(n0, torch.Tensor):
        if n0.numel() != 1:
            raise ValueError(f"{name} must be a single count, got shape {tuple(n0.shape)}")
        n0 = n0.item()
    if isinstance(n0, bool) or float(n0) != int(n0) or int(n0) < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n0!r}")
    return int(n0)


def survival(t):
    """Probability that one unit is still alive at time ``t``: p_t = e^{-t} (Chapter 3, Eq. ch3-survival).

    Returns a float for a Python number and a tensor (same dtype and device) for a tensor.
    """
    _check_times(t)
    if isinstance(t, torch.Tensor):
        return torch.exp(-t)
    return math.exp(-float(t))


def marginal_pmf(n0, t, n_max=None):
    """Closed-form marginal P(n_t = n | n0) = C(n0, n) p^n (1-p)^{n0-n}, p = e^{-t} (Chapter 3, Eq. ch3-binomial).

    ``n0`` and ``t`` broadcast against each other; the result has their broadcast shape plus a
    last dimension over n = 0..n_max (``n_max`` defaults to max(n0); a smaller n_max truncates
    the support, so rows then sum to less than 1). Computed in log space
    with ``lgamma`` and ``log(-expm1(-t))`` so it stays accurate for n0 = 255, t up to 15 and
    tiny t. Returns float64.
    """
    _check_counts(n0, "n0")
    _check_times(t)
    device = n0.device if isinstance(n0, torch.Tensor) else (t.device if isinstance(t, torch.Tensor) else None)
    n0 = _as_float64(n0, device)
    t = _as_float64(t, device)
    if n_max is None:
        n_max = int(n0.max().item()) if n0.numel() else 0
    n_max = _check_count_scalar(n_max, "n_max")
    n0, t = torch.broadcast_tensors(n0, t)
    n0, t = n0.unsqueeze(-1), t.unsqueeze(-1)
    n = torch.arange(n_max + 1, dtype=torch.float64, device=device)
    possible = n <= n0
    k = torch.where(possible, n0 - n, torch.zeros_like(n0 - n))  # units that died
    log_choose = torch.lgamma(n0 + 1) - torch.lgamma(n + 1) - torch.lgamma(k + 1)
    log_p = -t                              # log e^{-t}, exact
    log_q = torch.log(-torch.expm1(-t))     # log(1 - e^{-t}), accurate for tiny t
    # 0 * log 0 = 0: a term with exponent 0 contributes nothing even when its base is 0.
    log_pmf = log_choose + n * log_p + torch.where(k > 0, k * log_q, torch.zeros_like(k))
    return torch.where(possible, torch.exp(log_pmf), torch.zeros_like(log_pmf))


def generator_matrix(n_max):
    """Generator Q of the pure-death process on {0..n_max}: dP/dt = Q @ P (Chapter 2, Eq. ch2-generator).

    Q[n-1, n] = n (a death from n) and Q[n, n] = -n; every column sums to 0. float64.
    """
    n_max = _check_count_scalar(n_max, "n_max")
    rates = torch.arange(n_max + 1, dtype=torch.float64)
    return torch.diag(-rates) + torch.diag(rates[1:], diagonal=1)


def solve_master_equation(p0, times):
    """Solve the master equation dP/dt = Q P numerically: P(t) = exp(Q t) P(0) (Chapter 2, Eq. ch2-matrix-exp).

    ``p0`` is a probability vector over n = 0..n_max; ``times`` a 1-D sequence of times >= 0.
    Uses ``torch.linalg.matrix_exp`` in float64. Returns ``[len(times), n_max + 1]``.
    """
    p0 = _as_float64(p0)
    if p0.ndim != 1 or p0.numel() == 0:
        raise ValueError(f"p0 must be a non-empty 1-D probability vector, got shape {tuple(p0.shape)}")
    if bool((p0 < 0).any()) or abs(p0.sum().item() - 1.0) > 1e-9:
        raise ValueError("p0 must be a probability vector (entries >= 0 summing to 1)")
    times = _as_float64(times, p0.device).reshape(-1)
    _check_times(times, "times")
    q = generator_matrix(p0.numel() - 1).to(p0.device)
    propagators = torch.linalg.matrix_exp(q * times[:, None, None])
    return propagators @ p0


def _death_times(n0, n_paths, method, generator):
    """Sorted death times ``[n_paths, n0]`` of ``n_paths`` independent pure-death paths.

    "gillespie": waiting time from state n is Exp(n) (total rate n), then the jump n -> n-1.
    "lifetimes": each unit lives an independent Exp(1) lifetime; sorted, they are the death times.
    Both give the same law (Renyi's representation of exponential order statistics).
    """
    device = generator.device if generator is not None else None
    draws = torch.empty(n_paths, n0, dtype=torch.float64, device=device).exponential_(generator=generator)
    if method == "gillespie":
        rates = torch.arange(n0, 0, -1, dtype=torch.float64, device=device)  # n0, n0-1, ..., 1
        return torch.cumsum(draws / rates, dim=1)
    if method == "lifetimes":
        return torch.sort(draws, dim=1).values
    raise ValueError(f"method must be 'gillespie' or 'lifetimes', got {method!r}")


def gillespie(n0, t_end, generator=None):
    """One exact path of the pure-death process up to ``t_end`` (Gillespie's SSA, Chapter 2, Eq. ch2-gillespie).

    Returns ``(jump_times [J], states [J+1])``: ``states[0] = n0`` and ``states[j+1] = n0 - (j+1)``
    is the state right after ``jump_times[j]``; only jumps at times <= t_end are kept.
    """
    n0 = _check_count_scalar(n0)
    _check_times(t_end, "t_end")
    death = _death_times(n0, 1, "gillespie", generator)[0]
    jump_times = death[death <= float(t_end)]
    states = n0 - torch.arange(jump_times.numel() + 1, device=death.device)
    return jump_times, states


def state_at_times(n0, times, n_paths, method="lifetimes", generator=None):
    """Counts of ``n_paths`` independent exact paths started at ``n0``, read at ``times`` (Chapter 2).

    ``method`` is "lifetimes" (independent Exp(1) lifetimes, Chapter 3) or "gillespie" (Exp(n)
    waiting times, Chapter 2). Returns a long tensor ``[n_paths, len(times)]``:
    n_t = n0 - #{deaths <= t}.
    """
    n0 = _check_count_scalar(n0)
    n_paths = _check_count_scalar(n_paths, "n_paths")
    if n_paths == 0:
        raise ValueError("n_paths must be >= 1")
    times = _as_float64(times).reshape(-1)
    _check_times(times, "times")
    death = _death_times(n0, n_paths, method, generator)
    queries = times.to(death.device).expand(n_paths, -1).contiguous()
    return n0 - torch.searchsorted(death, queries, right=True)


def sample_forward(x0, t, generator=None):
    """Exact forward sample x_t ~ Binomial(x0, e^{-t}) elementwise (Chapter 3, Eq. ch3-binomial).

    ``x0``: counts ``[B, ...]`` (integer dtype or integer-valued float). ``t``: a float, a
    0-d tensor, or a ``[B]`` tensor broadcast over each sample. Runs on x0's device with
    ``torch.binomial`` (no lookup table) and returns x0's dtype.
    """
    if not isinstance(x0, torch.Tensor):
        raise ValueError(f"x0 must be a torch.Tensor of counts, got {type(x0).__name__}")
    _check_counts(x0, "x0")
    t = torch.as_tensor(t, device=x0.device)
    if t.ndim > 1 or (t.ndim == 1 and (x0.ndim == 0 or t.shape[0] != x0.shape[0])):
        raise ValueError(f"t must be a scalar or have shape [B] = [{x0.shape[0] if x0.ndim else ''}] "
                         f"matching x0's batch, got shape {tuple(t.shape)}")
    _check_times(t)
    work = torch.float64 if x0.dtype == torch.float64 else torch.float32
    p = torch.exp(-t.to(work))
    if p.ndim == 1:
        p = p.reshape(-1, *([1] * (x0.ndim - 1)))
    counts = x0.to(work)
    return torch.binomial(counts, p.expand_as(counts).contiguous(), generator=generator).to(x0.dtype)


def chi_square_test(samples, pmf, min_expected=5.0):
    """Pearson chi-square goodness-of-fit of integer ``samples`` against ``pmf`` over 0..len(pmf)-1 (Chapter 2).

    Neighbouring bins are merged (left to right) until each expects at least ``min_expected``
    samples, the usual validity rule of the chi-square approximation. Returns
    ``(statistic, p_value, n_bins)`` as Python numbers; a tiny p-value rejects the pmf.
    """
    from scipy import stats

    samples = torch.as_tensor(samples).reshape(-1).cpu()
    _check_counts(samples, "samples")
    pmf = _as_float64(pmf).reshape(-1).cpu()
    if bool((samples >= pmf.numel()).any()):
        raise ValueError("samples must lie in 0..len(pmf)-1 (a sample has zero probability under pmf)")
    observed = torch.bincount(samples.long(), minlength=pmf.numel()).double().tolist()
    expected = (pmf / pmf.sum() * len(samples)).tolist()
    obs_bins, exp_bins, o_acc, e_acc = [], [], 0.0, 0.0
    for o, e in zip(observed, expected):
        o_acc, e_acc = o_acc + o, e_acc + e
        if e_acc >= min_expected:
            obs_bins.append(o_acc)
            exp_bins.append(e_acc)
            o_acc, e_acc = 0.0, 0.0
    if not exp_bins:
        raise ValueError(f"too few samples: no bin reaches min_expected = {min_expected}")
    obs_bins[-1] += o_acc  # the left-over tail joins the last full bin
    exp_bins[-1] += e_acc
    if len(exp_bins) == 1:
        return 0.0, 1.0, 1  # one bin: nothing to test (all mass in one place)
    statistic, p_value = stats.chisquare(obs_bins, exp_bins)
    return float(statistic), float(p_value), len(exp_bins)
