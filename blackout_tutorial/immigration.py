"""Birth-death with immigration: a blackout variant whose noise is Poisson, not black
(Chapter 11).

Every unit still dies at rate 1, and new units now arrive at a constant rate lambda
(immigration). The master equation is

    dP(n)/dt = lambda P(n-1) + (n+1) P(n+1) - (lambda + n) P(n),

and its solution from n0 is the sum of two independent parts: the survivors of the n0
original units, Binomial(n0, e^{-t}), and the immigrants still alive,
Poisson(lambda (1 - e^{-t})). As t grows the survivors vanish and the law tends to
Poisson(lambda), the stationary distribution: generation starts from Poisson noise
instead of the black image.

Run backwards, the chain jumps both ways. Splitting the state into survivors s and
immigrants i = n - s makes the reverse rates linear again (derived in Chapter 11):

    up   (n -> n+1): p/(1-p) E[x0 - s | n] + lambda (1 - p)
    down (n -> n-1): E[i | n] / (1 - p),

with p = e^{-t}: a network would regress two scalars per pixel, E[x0 - s | n] and E[i |
n].
"""
import torch

from blackout_tutorial import _checks, process

#: Most values ``sample_reverse`` puts in its tables (one [n_max+1]^2 per grid time).
MAX_TABLE = 10 ** 8


def _check_rate(lam):
    return _checks.number(lam, "lam (the immigration rate)", minimum=0)


def generator_matrix(n_max, lam):
    """Generator Q of birth-death with immigration on {0..n_max}: dP/dt = Q @ P (Eq.
    ch11-immigration-master, Chapter 11).

    Q[n+1, n] = lambda (an arrival), Q[n-1, n] = n (a death), columns sum to 0. The
    state space is truncated at n_max: arrivals from n_max are dropped, which changes
    the law by about P(n_max) and is negligible once n_max is several sqrt(lambda) above
    lambda + n0. float64.
    """
    n_max, lam = _checks.count(n_max, "n_max"), _check_rate(lam)
    deaths = torch.arange(n_max + 1, dtype=torch.float64)
    births = torch.full((n_max + 1,), lam, dtype=torch.float64)
    births[-1] = 0.0
    return (
        torch.diag(-(deaths + births))
        + torch.diag(deaths[1:], 1)
        + torch.diag(births[:-1], -1)
    )


def solve_master_equation(p0, times, lam):
    """P(t) = exp(Q t) P(0) on the truncated space {0..len(p0)-1} (Eq.
    ch11-immigration-master, Chapter 11).

    Returns ``[len(times), len(p0)]`` float64.
    """
    p0 = _checks.probability_vector(p0, "p0")
    times = _checks.times(times, "times").reshape(-1)
    Q = generator_matrix(p0.numel() - 1, lam)
    return torch.linalg.matrix_exp(Q * times[:, None, None]) @ p0


def poisson_pmf(mean, n_max):
    """Poisson(mean) probabilities of n = 0..n_max, last dim; ``mean`` broadcasts
    (Chapter 11). float64."""
    mean = _checks.finite(mean, "mean", minimum=0).to(torch.float64).unsqueeze(-1)
    n = torch.arange(_checks.count(n_max, "n_max") + 1, dtype=torch.float64,
                     device=mean.device)
    return torch.exp(torch.xlogy(n, mean) - mean - torch.lgamma(n + 1))


def stationary_pmf(lam, n_max):
    """The stationary law Poisson(lambda) on 0..n_max (Eq. ch11-immigration-stationary,
    Chapter 11)."""
    return poisson_pmf(_check_rate(lam), n_max)


def marginal_pmf(n0, t, lam, n_max):
    """P(n_t = n | n0) = (Binomial(n0, e^{-t}) * Poisson(lambda (1 - e^{-t})))(n), n =
    0..n_max (Eq. ch11-immigration-marginal, Chapter 11).

    The convolution of the survivors' and the immigrants' laws; ``n0`` is one count,
    ``t`` a scalar or a tensor of times. Returns float64 ``[*t.shape, n_max + 1]``.
    """
    n0, n_max, lam = (
        _checks.count(n0, "n0"),
        _checks.count(n_max, "n_max"),
        _check_rate(lam),
    )
    t = _checks.times(t)
    survivors = process.marginal_pmf(n0, t, n_max=max(n0, n_max))[..., : n_max + 1]
    immigrants = poisson_pmf(lam * -torch.expm1(-t), n_max)
    # (a * b)(n) = sum_s a(s) b(n - s): a lower-triangular Toeplitz product.
    idx = torch.arange(n_max + 1)
    gap = idx[:, None] - idx[None, :]
    toeplitz = torch.where(gap >= 0, immigrants[..., gap.clamp_min(0)], 0.0)
    return (toeplitz @ survivors.unsqueeze(-1)).squeeze(-1)


def sample_forward(x0, t, lam, generator=None):
    """Exact x_t = Binomial(x0, e^{-t}) + Poisson(lambda (1 - e^{-t})), elementwise (Eq.
    ch11-immigration-marginal, Chapter 11).

    Returns ``(x_t, survivors)``: the survivors s_t are the latent part a network's
    training target needs (x0 - s_t and i_t = x_t - s_t). ``t`` as in
    ``process.sample_forward``.
    """
    lam = _check_rate(lam)
    survivors = process.sample_forward(x0, t, generator=generator)
    mean = lam * -torch.expm1(-_checks.per_sample(_checks.times(t).to(x0.device), x0))
    rates = mean.expand(x0.shape).to(torch.float64).contiguous()
    _checks.poisson_mean(rates, "lam (1 - e^{-t}) (the immigrants' Poisson mean)")
    immigrants = torch.poisson(rates, generator=generator).to(x0.dtype)
    return survivors + immigrants, survivors


def latent_posterior_means(n, x0, t, lam):
    """E[x0 - s | n_t = n, x0] and E[i | n_t = n, x0] for one clean count ``x0``
    (Chapter 11).

    s ~ Binomial(x0, p) survivors and i ~ Poisson(lambda (1 - p)) immigrants,
    conditioned on s + i = n. ``n``: counts (any shape); ``x0`` a count, ``t`` > 0 a
    scalar. Returns float64 ``(dead_mean, immigrant_mean)`` of ``n``'s shape.
    """
    x0, lam, n = _checks.count(x0, "x0"), _check_rate(lam), _checks.counts(n, "n")
    t = torch.tensor(
        _checks.number(t, "t", minimum=0, strict=True), dtype=torch.float64
    )
    n_max = int(n.max()) if n.numel() else 0
    s = torch.arange(x0 + 1, dtype=torch.float64)
    survivors = process.marginal_pmf(x0, t)                                # [x0 + 1]
    n_f = n.to(torch.float64).reshape(-1, 1)
    immigrants = poisson_pmf(lam * -torch.expm1(-t), n_max)  # [n_max + 1]
    gap = (n_f - s).long()
    joint = torch.where(gap >= 0, survivors * immigrants[gap.clamp(0, n_max)], 0.0)
    weights = joint / joint.sum(1, keepdim=True)
    if not bool(torch.isfinite(weights).all()):
        raise ValueError("every n must be reachable from x0 (lam = 0 needs n <= x0)")
    dead = (weights * (x0 - s)).sum(1).reshape(n.shape)
    immigrant = (weights * (n_f - s)).sum(1).reshape(n.shape)
    return dead, immigrant


def reverse_rates(dead_mean, immigrant_mean, t, lam):
    """Reverse-time jump rates from posterior means (Eq. ch11-immigration-reverse,
    Chapter 11).

    up (n -> n+1) = p/(1-p) dead_mean + lambda (1 - p), down (n -> n-1) = immigrant_mean
    / (1 - p), p = e^{-t}, t > 0 a scalar. With lambda = 0 and no immigrants this is the
    blackout rate of Chapter 4. Returns float64 ``(up, down)``.
    """
    lam = _check_rate(lam)
    t = torch.tensor(
        _checks.number(t, "t", minimum=0, strict=True), dtype=torch.float64
    )
    p, one_minus_p = torch.exp(-t), -torch.expm1(-t)
    dead_mean, immigrant_mean = (_checks.finite(v, name, minimum=0).to(torch.float64)
                                 for v, name in ((dead_mean, "dead_mean"),
                                                 (immigrant_mean, "immigrant_mean")))
    dead_mean, immigrant_mean = _checks.broadcast(dead_mean, immigrant_mean,
                                                  ("dead_mean", "immigrant_mean"))
    return p / one_minus_p * dead_mean + lam * one_minus_p, immigrant_mean / one_minus_p


def sample_reverse(data_probs, lam, times, n_paths, generator=None):
    """Generate one-pixel counts by running the chain backwards from Poisson(lambda)
    noise (Chapter 11).

    ``data_probs``: the data law over x0 = 0..K (float ``[K + 1]``); ``times``:
    increasing grid, the chain starts at ``times[-1]`` from the stationary
    Poisson(lambda) and steps down to ``times[0]``, then to t = 0 with one last step.
    Each step from t to s < t draws up ~ Poisson(rate_up dt) and down ~
    Poisson(rate_down dt) with the exact marginal reverse rates, rate(n -> m) = W(m ->
    n) P_t(m) / P_t(n) (tau-leaping, Chapter 6); counts are clipped at 0. Returns long
    ``[n_paths]``.
    """
    lam, data_probs = (
        _check_rate(lam),
        _checks.probability_vector(data_probs, "data_probs"),
    )
    times, n_paths = _checks.time_grid(times), _checks.positive_int(n_paths, "n_paths")
    n_max = int(data_probs.numel() - 1 + lam + 12 * (lam ** 0.5 + 1))
    if (len(times) + 1) * (n_max + 1) ** 2 > MAX_TABLE:
        raise ValueError(f"lam = {lam:g} and times need {len(times) + 1} tables of "
                         f"{n_max + 1}^2 values, more than MAX_TABLE = {MAX_TABLE:g}")
    grid = torch.cat([times.new_zeros(1), times]).flip(0)  # t_end, ..., t_0, 0
    # P_t(n) = sum_x0 pi(x0) P(n | x0) at every grid time at once:
    # [len(grid), n_max + 1].
    pmfs = sum(float(w) * marginal_pmf(k, grid[:-1], lam, n_max)
               for k, w in enumerate(data_probs) if w > 0).clamp_min(1e-300)
    n = torch.poisson(
        torch.full((n_paths,), lam, dtype=torch.float64), generator=generator
    ).long()
    for p_t, t, s in zip(pmfs, grid[:-1], grid[1:]):
        m = n.clamp(0, n_max - 1)
        up = (m + 1) * p_t[m + 1] / p_t[m]  # reverse of a death from m + 1
        down = torch.where(m > 0, lam * p_t[(m - 1).clamp_min(0)] / p_t[m], 0.0)
        dt = float(t - s)
        n = n + torch.poisson(up * dt, generator=generator).long() \
              - torch.poisson(down * dt, generator=generator).long()
        n = n.clamp_min(0)
    return n
