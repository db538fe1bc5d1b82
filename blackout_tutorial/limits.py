"""The large-count limit of blackout: a square-root (Feller) diffusion (Chapter 11).

Write a pixel's count as x = n / Omega, a fraction of a large "system size" Omega. Each
of the n = Omega x units dies at rate 1, so x jumps down by 1/Omega at total rate Omega
x. The Kramers-Moyal expansion keeps the first two jump moments,

    drift      A(x) = (Omega x)(-1/Omega)    = -x,
    diffusion  B(x) = (Omega x)(1/Omega)^2   = x / Omega,

and gives the Ito SDE dx = -x dt + sqrt(x / Omega) dW: a Feller square-root diffusion
(the Cox-Ingersoll-Ross process with zero mean level). Its noise vanishes with the
signal, unlike the Ornstein-Uhlenbeck process dx = -x dt + sqrt(2) dW behind Gaussian
diffusion, whose noise is the same everywhere. This module simulates both with
Euler-Maruyama and samples the Feller diffusion exactly (a Poisson mixture of Gamma
laws) to show the binomial marginals of blackout approach it as Omega grows.
"""
import math

import torch

from blackout_tutorial import _checks


def _check_start(x0, nonnegative=False):
    _checks.tensor(x0, "x0")
    return _checks.finite(x0, "x0", minimum=0 if nonnegative else None)


def _positive(value, name):
    return _checks.number(value, name, minimum=0, strict=True)


def feller_moments(x0, t, omega):
    """Mean x0 e^{-t} and variance x0 e^{-t} (1 - e^{-t}) / Omega of the Feller limit
    (Eq. ch11-moments, Chapter 11).

    They equal the mean and variance of n_t / Omega with n_t ~ Binomial(Omega x0,
    e^{-t}) exactly, for every Omega: the first two moments of blackout are already
    "diffusive". ``x0`` and ``t`` broadcast; returns ``(mean, variance)`` as float64
    tensors.
    """
    omega, t = _positive(omega, "omega"), _checks.times(t)
    x0 = _checks.finite(x0, "x0", minimum=0).to(torch.float64)
    x0, t = _checks.broadcast(x0, t.to(x0.device), ("x0", "t"))
    p = torch.exp(-t)
    return x0 * p, x0 * p * (1 - p) / omega


def ou_moments(x0, t):
    """Mean x0 e^{-t} and variance 1 - e^{-2t} of the OU process dx = -x dt + sqrt(2) dW
    (Eq. ch11-ou, Chapter 11).

    The variance-preserving process of Gaussian diffusion: the same mean as blackout,
    but a variance that does not depend on x0 and tends to 1 (white noise), not to 0
    (black).
    """
    t, x0 = _checks.times(t), _checks.finite(x0, "x0").to(torch.float64)
    x0, t = _checks.broadcast(x0, t.to(x0.device), ("x0", "t"))
    p = torch.exp(-t)
    variance = -torch.expm1(-2 * t)
    return x0 * p, torch.broadcast_to(
        variance, torch.broadcast_shapes(variance.shape, x0.shape)
    )


def euler_maruyama(x0, drift, diffusion, t_end, n_steps, generator=None):
    """Euler-Maruyama paths of dx = drift(x) dt + diffusion(x) dW (Eq.
    ch11-euler-maruyama, Chapter 11).

    ``x0``: starting values ``[...]`` (one path per element); ``drift`` and
    ``diffusion`` map a tensor of states to a tensor of the same shape. Returns ``(times
    [n_steps + 1], paths [n_steps + 1, ...])`` in x0's dtype (at least float32) on x0's
    device.
    """
    _check_start(x0)
    t_end, n_steps = _positive(t_end, "t_end"), _checks.positive_int(n_steps, "n_steps")
    dtype = x0.dtype if torch.is_floating_point(x0) else torch.get_default_dtype()
    dt = t_end / int(n_steps)
    x = x0.to(dtype)
    path = [x]
    for k in range(int(n_steps)):
        noise = torch.randn(x.shape, dtype=dtype, device=x.device, generator=generator)
        a = _checks.output(drift(x), x.shape, "drift output", step=k)
        b = _checks.output(diffusion(x), x.shape, "diffusion output", step=k)
        x = x + a * dt + b * math.sqrt(dt) * noise
        path.append(x)
    times = torch.linspace(0.0, t_end, int(n_steps) + 1, dtype=torch.float64)
    return times, torch.stack(path)


def simulate_feller(x0, omega, t_end, n_steps, generator=None):
    """Euler-Maruyama for the blackout limit dx = -x dt + sqrt(x / Omega) dW (Eq.
    ch11-feller-sde, Chapter 11).

    Full-truncation scheme: drift and noise use max(x, 0), so a step that overshoots
    below 0 (Euler's error, not the process's: the exact path stops at 0) cannot take a
    square root of a negative number; the returned paths are clipped at 0 for the same
    reason. Returns ``(times [n_steps + 1], paths [n_steps + 1, ...])``.
    """
    omega, x0 = _positive(omega, "omega"), _check_start(x0, nonnegative=True)
    times, paths = euler_maruyama(x0, lambda x: -x.clamp_min(0),
                                  lambda x: torch.sqrt(x.clamp_min(0) / omega),
                                  t_end, n_steps, generator)
    return times, paths.clamp_min(0)


def simulate_ou(x0, t_end, n_steps, generator=None):
    """Euler-Maruyama for the Ornstein-Uhlenbeck process dx = -x dt + sqrt(2) dW (Eq.
    ch11-ou, Chapter 11).

    The forward SDE of variance-preserving Gaussian diffusion (beta = 2): additive noise
    whose size ignores the state. Returns ``(times [n_steps + 1], paths [n_steps + 1,
    ...])``.
    """
    return euler_maruyama(
        x0,
        lambda x: -x,
        lambda x: torch.full_like(x, math.sqrt(2.0)),
        t_end,
        n_steps,
        generator,
    )


def sample_feller(x0, t, omega, generator=None):
    """Exact draw of the Feller diffusion at time ``t``: Gamma(N, 1/c) with N ~
    Poisson(c x0 e^{-t}) (Eq. ch11-feller-exact, Chapter 11).

    c = 2 Omega / (1 - e^{-t}). This is the noncentral chi-square transition of the CIR
    process with zero degrees of freedom: with probability exp(-c x0 e^{-t}) the path
    has been absorbed at 0 (N = 0). ``t`` > 0 is a float; returns float64 of x0's shape.
    """
    omega, t = _positive(omega, "omega"), _positive(t, "t")
    x0 = _check_start(x0, nonnegative=True).to(torch.float64)
    c = 2 * omega / -math.expm1(-t)
    mean = _checks.poisson_mean(c * x0 * math.exp(-t), "2 omega x0 / (e^t - 1)")
    n = torch.poisson(mean, generator=generator)
    # N = 0 is the atom at 0; the Gamma sampler needs shape >= 1, so those get a
    # dummy 1.
    gamma = standard_gamma(n.clamp_min(1.0), generator)
    return torch.where(n > 0, gamma / c, torch.zeros_like(gamma))


def standard_gamma(shape, generator=None):
    """Gamma(shape, 1) draws for every ``shape`` >= 1, elementwise (Chapter 11).

    Marsaglia and Tsang's squeeze method, vectorised: propose d v with v = (1 + z /
    sqrt(9d))^3, d = shape - 1/3, z normal, and redraw the rejected elements (about 1-5%
    per round). Unlike ``torch.distributions.Gamma`` it takes a ``generator``.
    """
    # NaN would never be accepted (an endless loop): finite is part of the rule.
    shape = _checks.finite(shape, "shape", minimum=1)
    shape = shape if shape.is_floating_point() else shape.to(torch.float64)
    d = shape - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.zeros_like(shape)
    todo = torch.ones_like(shape, dtype=torch.bool)
    while bool(todo.any()):
        z = torch.randn(
            shape.shape, dtype=shape.dtype, device=shape.device, generator=generator
        )
        u = torch.rand(
            shape.shape, dtype=shape.dtype, device=shape.device, generator=generator
        )
        v = (1 + c * z) ** 3
        accept = (v > 0) & (
            torch.log(u) < 0.5 * z**2 + d - d * v + d * torch.log(v.clamp_min(1e-300))
        )
        take = todo & accept
        out = torch.where(take, d * v, out)
        todo = todo & ~accept
    return out


def extinction_probability(x0, t, omega):
    """P(x_t = 0) in the Feller limit, exp(-2 Omega x0 e^{-t} / (1 - e^{-t})) (Eq.
    ch11-extinction, Chapter 11).

    Blackout itself has P(n_t = 0) = (1 - e^{-t})^{Omega x0}; for small e^{-t} the two
    differ by a factor 2 in the exponent: the diffusion limit gets the means and
    variances right but not the probability of the last unit dying (a large deviation).
    """
    omega, t = _positive(omega, "omega"), _positive(t, "t")
    x0 = _checks.finite(x0, "x0", minimum=0).to(torch.float64)
    rate = 2 * omega * math.exp(-t) / -math.expm1(-t)   # inf for t -> 0: P = 0 ...
    # ... unless x0 = 0, which is extinct already (P = 1, not exp(-0 inf) = NaN).
    return torch.where(x0 > 0, torch.exp(-rate * x0), 1.0)
