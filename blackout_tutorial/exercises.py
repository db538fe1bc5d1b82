"""Checkers for the book's "build it yourself" exercises (Chapters 2-7).

Each ``check_<thing>(fn)`` runs the reader's function ``fn`` against the package's own
on seeded inputs, edge cases included (zero counts, full pixels, tiny and large times),
and either prints "All N checks passed" or raises ``AssertionError`` that says in plain
words which input differs, and the expected against the obtained value. A stub that
raises ``NotImplementedError`` passes it through unchanged.

Deterministic functions are compared with stated tolerances. Random ones (samplers) are
run with a seeded generator, passed as ``generator=`` and also used to seed torch's
global RNG, and judged by z-tests of the mean (reject at abs(z) > 5, false alarm 5.7e-7
per check) and chi-square tests of the histogram (reject at p < 1e-6): a correct
sampler fails with probability below 1e-5 over a whole checker, and being seeded, a
given function always gets the same verdict.
"""
import math

import torch

from blackout_tutorial import bridge, losses, nets, process
from blackout_tutorial._exercise_cases import Verdict, call, seeded

N_DRAWS = 20_000


def _binomial_pmf(n, p):
    k = torch.arange(n + 1, dtype=torch.float64)
    dist = torch.distributions.Binomial(total_count=float(n), probs=torch.tensor(p))
    return dist.log_prob(k).exp()


def check_master_rhs(fn):
    """Check ``fn(P) -> dP/dt``, the right-hand side of the pure-death master equation
    (Eq. ch2-master, Chapter 2): dP(n)/dt = (n+1) P(n+1) - n P(n).

    ``P``: float64 probability vector over n = 0..n_max. Compared with
    ``process.generator_matrix(n_max) @ P`` to 1e-9 (relative) + 1e-12.
    """
    v = Verdict("the master-equation right-hand side")
    g = torch.Generator().manual_seed(0)
    cases = []
    for n_max, at in [(0, 0), (4, 4), (4, 0), (255, 255)]:
        P = torch.zeros(n_max + 1, dtype=torch.float64)
        P[at] = 1.0
        cases.append((f"for n_max={n_max} and all mass on n={at}", P))
    for n_max in (1, 10, 255):
        P = torch.rand(n_max + 1, generator=g, dtype=torch.float64)
        cases.append((f"for n_max={n_max} and a random P", P / P.sum()))
    for case, P in cases:
        expected = process.generator_matrix(P.numel() - 1) @ P
        got = call(v, fn, case, P.clone())
        if got is not None:
            v.close(case, got, expected, rtol=1e-9, atol=1e-12, name="dP/dt")
    return v.finish()


def check_forward_sampler(fn):
    """Check ``fn(x0, t, generator) -> x_t``, a forward sampler of Binomial(x0, e^{-t})
    (Eq. ch3-binomial, Chapter 3).

    ``x0``: long tensor of counts, ``t``: a float. Each case draws 20,000 samples;
    range, integer values and shape are exact checks, the mean a z-test, and two cases
    a chi-square test against ``process.marginal_pmf``.
    """
    v = Verdict("the forward sampler")
    cases = [(0, 1.0), (1, 0.5), (5, 0.1), (5, 2.0), (255, 1e-3), (255, 1.0),
             (255, 15.0)]
    with torch.random.fork_rng():
        for i, (n0, t) in enumerate(cases):
            case = f"for n0={n0}, t={t:g}"
            x0 = torch.full((N_DRAWS,), n0, dtype=torch.long)
            x_t = call(v, fn, case, x0.clone(), t, generator=seeded(i))
            if x_t is None or not v.require(
                    tuple(x_t.shape) == (N_DRAWS,),
                    f"{case}: your sample has shape {tuple(x_t.shape)}, expected "
                    f"{(N_DRAWS,)} (one draw per entry of x0)"):
                continue
            if not v.integers_in(case, x_t, 0, n0, name="sample"):
                continue
            p = math.exp(-t)
            v.mean(case, x_t, n0 * p, n0 * p * (1 - p))
            if (n0, t) in ((5, 0.1), (255, 1.0)):
                v.histogram(case, x_t, process.marginal_pmf(n0, t))
        case = "for x0 of shape [4, 3, 2] with mixed counts, t=0.7"
        x0 = torch.randint(0, 256, (4, 3, 2), generator=seeded(99))
        x_t = call(v, fn, case, x0.clone(), 0.7, generator=seeded(100))
        if x_t is not None and v.require(
                tuple(x_t.shape) == (4, 3, 2),
                f"{case}: your sample has shape {tuple(x_t.shape)}, expected "
                "(4, 3, 2)"):
            v.integers_in(case, x_t, 0, x0, name="sample (it must lie in 0..x0)")
    return v.finish()


def check_bridge_probability(fn):
    """Check ``fn(s, t) -> q``, the bridge probability (e^{-s} - e^{-t}) / (1 - e^{-t})
    for s < t (Eq. ch4-bridge-prob, Chapter 4).

    ``s``, ``t``: float64 tensors of one shape. Compared with
    ``bridge.bridge_probability`` to 1e-6 (relative) + 1e-12.
    """
    v = Verdict("the bridge probability")
    pairs = [(0.0, 1.0), (0.5, 1.0), (0.99, 1.0), (1e-6, 2e-6), (0.0, 1e-5),
             (10.0, 20.0), (14.0, 15.0), (2.0, 3.0)]
    for s, t in pairs:
        case = f"for s={s:g}, t={t:g}"
        s_, t_ = torch.tensor([s], dtype=torch.float64), torch.tensor([t],
                                                                       dtype=torch.float64)
        got = call(v, fn, case, s_, t_)
        if got is not None:
            v.close(case, got, bridge.bridge_probability(s_, t_), rtol=1e-6,
                    atol=1e-12, name="q")
    g = torch.Generator().manual_seed(1)
    t = torch.rand(50, generator=g, dtype=torch.float64) * 10 + 1e-3
    s = t * torch.rand(50, generator=g, dtype=torch.float64)
    got = call(v, fn, "for 50 random pairs 0 <= s < t", s.clone(), t.clone())
    if got is not None:
        v.close("for 50 random pairs 0 <= s < t (a vector)", got,
                bridge.bridge_probability(s, t), rtol=1e-6, atol=1e-12, name="q")
    return v.finish()


def check_bridge_step(fn):
    """Check ``fn(x_t, x0, s, t, generator) -> x_s``, the bridge step x_s = x_t +
    Binomial(x0 - x_t, q(s, t)) (Eq. ch4-bridge, Chapter 4).

    Long count tensors ``x_t <= x0``, floats ``s < t``. 20,000 draws per case: range
    x_t..x0 exact, the mean a z-test, one case a chi-square test.
    """
    v = Verdict("the bridge step")
    cases = [(7, 7, 0.5, 1.0), (0, 10, 0.0, 1.0), (3, 10, 0.5, 1.0),
             (0, 255, 5.0, 6.0), (100, 200, 1e-4, 2e-4), (1, 2, 0.3, 15.0)]
    with torch.random.fork_rng():
        for i, (xt, n0, s, t) in enumerate(cases):
            case = f"for x_t={xt}, x0={n0}, s={s:g}, t={t:g}"
            x_t = torch.full((N_DRAWS,), xt, dtype=torch.long)
            x0 = torch.full((N_DRAWS,), n0, dtype=torch.long)
            x_s = call(v, fn, case, x_t.clone(), x0.clone(), s, t, generator=seeded(i))
            if x_s is None or not v.integers_in(case, x_s, xt, n0, name="x_s"):
                continue
            q = float(bridge.bridge_probability(s, t))
            gap = n0 - xt
            v.mean(case, x_s, xt + gap * q, gap * q * (1 - q), name="mean of x_s")
            if (xt, n0) == (3, 10):
                v.histogram(case, x_s - xt, _binomial_pmf(gap, q),
                            name="births x_s - x_t")
    return v.finish()


def check_poisson_loss(fn):
    """Check ``fn(y_hat, y) -> y_hat - y log y_hat`` elementwise (Eq. ch5-loss, Chapter
    5), against ``losses.poisson_loss`` to 1e-6 (relative) + 1e-9.

    ``y_hat``: float64 rates >= 0, ``y``: float64 counts. y = 0 with y_hat = 0 must give
    0 (no NaN from 0 log 0).
    """
    v = Verdict("the Poisson loss")
    g = torch.Generator().manual_seed(2)
    y = torch.randint(0, 256, (200,), generator=g).double()
    cases = [
        ("for y=0, y_hat=3", torch.tensor([3.0]), torch.tensor([0.0])),
        ("for y=5, y_hat=5 (the minimiser)", torch.tensor([5.0]), torch.tensor([5.0])),
        ("for y=255, y_hat=0.5", torch.tensor([0.5]), torch.tensor([255.0])),
        ("for y=0, y_hat=0", torch.tensor([0.0]), torch.tensor([0.0])),
        ("for 200 random pairs", torch.rand(200, generator=g).double() * 300 + 1e-3, y),
    ]
    for case, y_hat, y in cases:
        y_hat, y = y_hat.double(), y.double()
        got = call(v, fn, case, y_hat.clone(), y.clone())
        if got is not None:
            v.close(case, got, losses.poisson_loss(y_hat, y), rtol=1e-6, atol=1e-9,
                    name="loss")
    return v.finish()


def check_kl_term(fn):
    """Check ``fn(y, q, y_hat) -> KL(Binomial(y, q) || Poisson(y_hat q))`` in nats,
    elementwise: one term of the ELBO (Eq. ch5-kl-split, Chapter 5).

    ``y``: long counts, ``q`` in (0, 1] a float, ``y_hat`` float64 rates > 0. Compared
    with ``losses.kl_binomial_poisson`` to 1e-7 (relative) + 1e-9.
    """
    v = Verdict("the ELBO term KL(Binomial || Poisson)")
    g = torch.Generator().manual_seed(3)
    for q in (0.3, 1.0, 1e-3, 0.9):
        for case, y, y_hat in [
            (f"for y=0, y_hat=2, q={q:g}", torch.tensor([0]), torch.tensor([2.0])),
            (f"for y=4, y_hat=4, q={q:g}", torch.tensor([4]), torch.tensor([4.0])),
            (f"for 30 random (y, y_hat), q={q:g}",
             torch.randint(0, 40, (30,), generator=g),
             torch.rand(30, generator=g) * 40 + 0.05),
        ]:
            y_hat = y_hat.double()
            got = call(v, fn, case, y.clone(), q, y_hat.clone())
            if got is not None:
                expected = losses.kl_binomial_poisson(y, q, y_hat, max(int(y.max()), 1))
                v.close(case, got, expected, rtol=1e-7, atol=1e-9, name="KL")
    return v.finish()


def check_tau_leaping_step(fn):
    """Check ``fn(x, y_hat, q, n_max, generator) -> x'``, one tau-leaping step
    min(x + Poisson(max(y_hat, 0) q), n_max) (Eq. ch6-tau, Chapter 6).

    ``x``: long counts, ``y_hat``: float32 rates, ``q``: a float. 20,000 draws per case:
    the range x..n_max exact, the mean a z-test (exact clipped mean), one histogram.
    """
    v = Verdict("the tau-leaping step")
    cases = [(3, 0.0, 0.5, 255), (255, 40.0, 0.5, 255), (3, -5.0, 0.5, 255),
             (3, 10.0, 0.3, 255), (250, 40.0, 0.5, 255), (0, 8.0, 0.5, 255),
             (0, 1.0, 1.0, 1)]
    with torch.random.fork_rng():
        for i, (x, y_hat, q, n_max) in enumerate(cases):
            case = f"for x={x}, y_hat={y_hat:g}, q={q:g}, n_max={n_max}"
            xs = torch.full((N_DRAWS,), x, dtype=torch.long)
            rates = torch.full((N_DRAWS,), y_hat)
            new = call(v, fn, case, xs.clone(), rates.clone(), q, n_max,
                       generator=seeded(i))
            if new is None or not v.integers_in(case, new, x, n_max, name="new state"):
                continue
            lam = max(y_hat, 0.0) * q
            k = torch.arange(n_max - x + 1, dtype=torch.float64)
            pmf = torch.distributions.Poisson(torch.tensor(lam)).log_prob(k).exp() \
                if lam > 0 else (k == 0).double()
            pmf[-1] += 1 - pmf.sum()  # clipped at n_max: the tail lands on the top
            mean = float((k * pmf).sum()) + x
            var = float((k ** 2 * pmf).sum()) - (mean - x) ** 2
            v.mean(case, new, mean, var, name="mean of the new state")
            if x == 0 and n_max == 255:
                v.histogram(case, new, pmf, name="births")
    return v.finish()


def check_time_features(fn):
    """Check ``fn(t, dim) -> [B, dim]``, the sinusoidal time embedding (Eq.
    ch7-time-features, Chapter 7), against ``nets.time_features`` to 2e-3 (absolute;
    float32 angles reach about 500 rad).

    ``t``: float32 tensor ``[B]`` of times > 0, ``dim``: an even integer.
    """
    v = Verdict("the time embedding")
    g = torch.Generator().manual_seed(4)
    cases = [(torch.tensor([3.06e-7, 0.01, 1.0, 5.0, 15.0]), 8),
             (torch.rand(16, generator=g) * 15 + 1e-4, 128), (torch.tensor([2.0]), 2)]
    for t, dim in cases:
        shown = ", ".join(f"{x:.3g}" for x in t[:5].tolist())
        case = f"for dim={dim}, t=[{shown}{', ...' if t.numel() > 5 else ''}]"
        got = call(v, fn, case, t.clone(), dim)
        if got is not None:
            v.close(case, got, nets.time_features(t, dim), rtol=0.0, atol=2e-3,
                    name="embedding")
    return v.finish()
