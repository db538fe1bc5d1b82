"""Reverse-time quantities of Blackout Diffusion (Chapter 4).

Run backwards, the pure-death process becomes a pure-birth process. Given the clean count
x0, the units that died by time t (x0 - x_t of them) are born back one by one, each at rate
p_t / (1 - p_t) with p_t = e^{-t}; over a finite step from t down to s < t each of them is
back with probability q = (p_s - p_t) / (1 - p_t), the *binomial bridge*. Without x0, the
reverse rate is the posterior mean of the conditional one, which is why a network only has
to predict E[x0 - x_t | x_t] (a *rate model*, see ``oracle.py`` and ``nets.py``).

Time factors use ``expm1`` so they stay accurate for tiny t (t_0 is about 3e-7 at t_end = 15).
"""
import torch

from blackout_tutorial.process import _check_counts, _check_times


def _as_time(t, device=None):
    t = torch.as_tensor(t, dtype=torch.float64, device=device)
    _check_times(t, "t")
    return t


def _per_sample(v, x):
    """Broadcast a per-sample tensor ``v`` ([B] or scalar) over a batch ``x`` of shape [B, ...]."""
    if v.ndim == 0:
        return v
    if v.ndim != 1 or x.ndim == 0 or v.shape[0] != x.shape[0]:
        raise ValueError(f"t must be a scalar or have shape [B] matching the batch of x_t "
                         f"(shape {tuple(x.shape)}), got shape {tuple(v.shape)}")
    return v.reshape(-1, *([1] * (x.ndim - 1)))


def _check_pair(x_t, x0):
    """x_t and x0 must be count tensors of one shape with x_t <= x0 (units only die)."""
    for name, x in (("x_t", x_t), ("x0", x0)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of counts, got {type(x).__name__}")
        _check_counts(x, name)
    if x_t.shape != x0.shape:
        raise ValueError(f"x_t and x0 must have the same shape, got {tuple(x_t.shape)} and {tuple(x0.shape)}")
    if bool((x_t > x0).any()):
        raise ValueError("x_t must be <= x0 elementwise (the forward process only removes units)")


def birth_factor(t):
    """The per-unit reverse birth rate p_t / (1 - p_t) = 1 / (e^t - 1) (Eq. (4.6), Chapter 4).

    ``t`` > 0 (the factor diverges at t = 0). Returns float64.
    """
    t = _as_time(t)
    if bool((t <= 0).any()):
        raise ValueError("t must be > 0 (the reverse birth rate diverges at t = 0)")
    return 1.0 / torch.expm1(t)


def bridge_probability(s, t):
    """q = (e^{-s} - e^{-t}) / (1 - e^{-t}) for 0 <= s < t (Eq. (4.9), Chapter 4).

    The probability that a unit dead at time t was still alive at time s, given that it was
    alive at time 0. q = 1 at s = 0. Computed as e^{-s} (1 - e^{-(t-s)}) / (1 - e^{-t}) with
    ``expm1``, accurate for tiny steps and tiny t. ``s`` and ``t`` broadcast; returns float64.
    """
    s, t = torch.broadcast_tensors(_as_time(s), _as_time(t))
    if bool((s >= t).any()):
        raise ValueError("s must be < t elementwise (the bridge goes backwards, from t down to s)")
    return torch.exp(-s) * torch.expm1(-(t - s)) / torch.expm1(-t)


def conditional_birth_rate(x_t, x0, t):
    """Reverse birth rate given x0: (x0 - x_t) e^{-t} / (1 - e^{-t}) (Eq. (4.6), Chapter 4).

    ``x_t``, ``x0``: count tensors ``[B, ...]`` with x_t <= x0; ``t`` > 0, a scalar or ``[B]``.
    Returns float64 rates of the jump x_t -> x_t + 1 in each pixel.
    """
    _check_pair(x_t, x0)
    factor = _per_sample(birth_factor(t).to(x0.device), x0)
    return (x0 - x_t).to(torch.float64) * factor


def marginal_birth_rate(model, x_t, t):
    """Reverse birth rate without x0: p_t/(1-p_t) E[x0 - x_t | x_t] (Eq. (4.7), Chapter 4).

    The conditional rate is linear in x0, so its posterior mean is the same formula with
    x0 - x_t replaced by its posterior mean, which a rate model ``model(x_t, t)`` (an exact
    ``oracle.Oracle`` or a trained network) supplies. ``t`` > 0, a scalar or ``[B]``.
    Returns float64 rates, the shape of ``x_t``.
    """
    if not isinstance(x_t, torch.Tensor):
        raise ValueError(f"x_t must be a torch.Tensor of counts, got {type(x_t).__name__}")
    _check_counts(x_t, "x_t")
    factor = birth_factor(t).to(x_t.device)
    t_batch = torch.as_tensor(t, dtype=torch.float64, device=x_t.device)
    if t_batch.ndim == 0 and x_t.ndim > 0:
        t_batch = t_batch.expand(x_t.shape[0])
    y_hat = model(x_t.to(torch.get_default_dtype()), t_batch.to(torch.get_default_dtype()))
    if y_hat.shape != x_t.shape:
        raise ValueError(f"model output must have the shape of x_t {tuple(x_t.shape)}, got {tuple(y_hat.shape)}")
    return y_hat.to(torch.float64) * _per_sample(factor, x_t)


def sample_bridge(x_t, x0, s, t, generator=None):
    """Exact reverse step given x0: x_s = x_t + Binomial(x0 - x_t, q(s, t)) (Eq. (4.10), Chapter 4).

    Each of the x0 - x_t dead units is independently alive again at time s < t with
    probability ``bridge_probability(s, t)``. ``s``, ``t``: scalars or ``[B]``. Runs on
    x0's device and returns x0's dtype.
    """
    _check_pair(x_t, x0)
    q = _per_sample(bridge_probability(s, t).to(x0.device), x0)
    work = torch.float64 if x0.dtype == torch.float64 else torch.float32
    gap = (x0 - x_t).to(work)
    births = torch.binomial(gap, q.to(work).expand_as(gap).contiguous(), generator=generator)
    return (x_t.to(work) + births).to(x0.dtype)


def check_time_grid(times):
    """Validate an observation grid: 1-D, finite, strictly increasing, times[0] > 0. Returns float64.

    The reverse samplers and the ELBO walk this grid from times[-1] down to times[0] and then
    take one last step to t = 0 (Chapters 5-6).
    """
    times = torch.as_tensor(times, dtype=torch.float64)
    if times.ndim != 1 or times.numel() < 1:
        raise ValueError(f"times must be a non-empty 1-D tensor, got shape {tuple(times.shape)}")
    if not bool(torch.isfinite(times).all()) or times[0] <= 0 or bool((torch.diff(times) <= 0).any()):
        raise ValueError("times must be finite, strictly increasing and start above 0")
    return times


def step_probabilities(times):
    """Bridge probabilities q_k = (p_{k-1} - p_k) / (1 - p_k) of the steps t_k -> t_{k-1}, t_{-1} = 0 (Eq. (4.9), Chapter 4).

    ``times``: an increasing grid (see ``check_time_grid``). q_0 = 1: the last step, down to
    t = 0, brings back every unit still missing. Returns float64 ``[T]`` on the grid's device.
    """
    times = check_time_grid(times)
    previous = torch.cat([times.new_zeros(1), times[:-1]])
    return bridge_probability(previous, times)
