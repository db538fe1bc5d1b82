"""Reverse-time quantities of Blackout Diffusion (Chapter 4).

Run backwards, the pure-death process becomes a pure-birth process. Given the clean
count x0, the units that died by time t (x0 - x_t of them) are born back one by one,
each at rate p_t / (1 - p_t) with p_t = e^{-t}; over a finite step from t down to s < t
each of them is back with probability q = (p_s - p_t) / (1 - p_t), the *binomial
bridge*. Without x0, the reverse rate is the posterior mean of the conditional one,
which is why a network only has to predict E[x0 - x_t | x_t] (a *rate model*, see
``oracle.py`` and ``nets.py``).

Time factors use ``expm1`` so they stay accurate for tiny t (t_0 is about 3e-7 at t_end
= 15).
"""
import torch

from blackout_tutorial import _checks


def _check_pair(x_t, x0):
    """x_t and x0 must be count tensors of one shape with x_t <= x0 (units only die)."""
    _checks.count_tensor(x_t, "x_t"), _checks.count_tensor(x0, "x0")
    if x_t.shape != x0.shape:
        raise ValueError(f"x_t and x0 must have the same shape, got {tuple(x_t.shape)} "
                         f"and {tuple(x0.shape)}")
    if bool((x_t > x0).any()):
        raise ValueError(
            "x_t must be <= x0 elementwise (the forward process only removes units)"
        )


def birth_factor(t):
    """The per-unit reverse birth rate p_t / (1 - p_t) = 1 / (e^t - 1) (Eq.
    ch4-conditional-rate, Chapter 4).

    ``t`` > 0 (the factor diverges at t = 0). Returns float64.
    """
    t = _checks.times(t, positive=True)
    return 1.0 / torch.expm1(t)


def bridge_probability(s, t):
    """q = (e^{-s} - e^{-t}) / (1 - e^{-t}) for 0 <= s < t (Eq. ch4-bridge-prob, Chapter
    4).

    The probability that a unit dead at time t was still alive at time s, given that it
    was alive at time 0. q = 1 at s = 0. Computed as e^{-s} (1 - e^{-(t-s)}) / (1 -
    e^{-t}) with ``expm1``, accurate for tiny steps and tiny t. ``s`` and ``t``
    broadcast; returns float64.
    """
    s, t = _checks.times(s, "s"), _checks.times(t)
    s, t = _checks.broadcast(s, t.to(s.device), ("s", "t"))
    if bool((s >= t).any()):
        raise ValueError(
            "s must be < t elementwise (the bridge goes backwards, from t down to s)"
        )
    return torch.exp(-s) * torch.expm1(-(t - s)) / torch.expm1(-t)


def conditional_birth_rate(x_t, x0, t):
    """Reverse birth rate given x0: (x0 - x_t) e^{-t} / (1 - e^{-t}) (Eq.
    ch4-conditional-rate, Chapter 4).

    ``x_t``, ``x0``: count tensors ``[B, ...]`` with x_t <= x0; ``t`` > 0, a scalar or
    ``[B]``. Returns float64 rates of the jump x_t -> x_t + 1 in each pixel.
    """
    _check_pair(x_t, x0)
    factor = _checks.per_sample(birth_factor(t).to(x0.device), x0)
    return (x0 - x_t).to(torch.float64) * factor


def marginal_birth_rate(model, x_t, t):
    """Reverse birth rate without x0: p_t/(1-p_t) E[x0 - x_t | x_t] (Eq.
    ch4-marginal-rate, Chapter 4).

    The conditional rate is linear in x0, so its posterior mean is the same formula with
    x0 - x_t replaced by its posterior mean, which a rate model ``model(x_t, t)`` (an
    exact ``oracle.Oracle`` or a trained network) supplies. ``t`` > 0, a scalar or
    ``[B]``. Returns float64 rates, the shape of ``x_t``.
    """
    _checks.count_tensor(x_t, "x_t")
    factor = _checks.per_sample(birth_factor(t).to(x_t.device), x_t)
    return _checks.predict(model, x_t, t).to(torch.float64) * factor


def sample_bridge(x_t, x0, s, t, generator=None):
    """Exact reverse step given x0: x_s = x_t + Binomial(x0 - x_t, q(s, t)) (Eq.
    ch4-bridge, Chapter 4).

    Each of the x0 - x_t dead units is independently alive again at time s < t with
    probability ``bridge_probability(s, t)``. ``s``, ``t``: scalars or ``[B]``. Runs on
    x0's device and returns x0's dtype.
    """
    _check_pair(x_t, x0)
    q = _checks.per_sample(bridge_probability(s, t).to(x0.device), x0)
    work = torch.float64 if x0.dtype == torch.float64 else torch.float32
    gap = (x0 - x_t).to(work)
    births = torch.binomial(
        gap, q.to(work).expand_as(gap).contiguous(), generator=generator
    )
    return (x_t.to(work) + births).to(x0.dtype)


def step_probabilities(times):
    """Bridge probabilities q_k = (p_{k-1} - p_k) / (1 - p_k) of the steps t_k ->
    t_{k-1}, t_{-1} = 0 (Eq. ch4-bridge-prob, Chapter 4).

    ``times``: an increasing grid: 1-D, finite, strictly increasing, times[0] > 0. q_0 =
    1: the last step, down to t = 0, brings back every unit still missing. Returns
    float64 ``[T]`` on the grid's device.
    """
    times = _checks.time_grid(times)
    previous = torch.cat([times.new_zeros(1), times[:-1]])
    return bridge_probability(previous, times)
