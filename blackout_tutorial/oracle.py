"""An exact rate model for a finite data distribution (Chapters 4-6).

When the data are K known images x0^(1..K) with probabilities pi_k, Bayes' rule gives
the posterior over them exactly: pixels are independent given x0 and each is
Binomial(x0, p_t), so

    log P(x_t | x0^(k)) = sum_pixels log Binomial(x_t; x0^(k), e^{-t}),

which is -inf as soon as one pixel has x_t > x0^(k) (units never come back in the
forward process). The posterior mean E[x0 - x_t | x_t] is then the *optimal* rate model,
the target a network trained with the blackout loss tries to reach. Every sampler in the
book is checked against it. Work is done in float64 and log space (``logsumexp``) so
tiny e^{-t} and 255-unit pixels do not underflow.
"""
import math

import torch

from blackout_tutorial import _checks, losses
from blackout_tutorial.bridge import step_probabilities


def toy_distribution():
    """Five 3x3 count patterns (counts 0..4) and their probabilities: the toy data of
    Chapters 5-6.

    Returns ``(support [5, 1, 3, 3] long, probs [5] float64)``.
    """
    support = torch.tensor([
        [[0, 4, 0], [4, 4, 4], [0, 4, 0]],   # plus
        [[4, 0, 0], [0, 3, 0], [0, 0, 2]],   # fading diagonal
        [[2, 2, 2], [2, 0, 2], [2, 2, 2]],   # ring
        [[0, 0, 0], [0, 1, 0], [0, 0, 0]],   # a dim dot
        [[1, 2, 3], [1, 2, 3], [1, 2, 3]],   # ramp
    ], dtype=torch.long).unsqueeze(1)
    probs = torch.tensor([0.3, 0.25, 0.2, 0.15, 0.1], dtype=torch.float64)
    return support, probs


class Oracle:
    """Exact rate model ``(x_t, t) -> E[x0 - x_t | x_t]`` for data ``support`` with
    ``probs`` (Eq. ch4-loglik, Chapter 4).

    ``support``: K distinct count images ``[K, ...]``; ``probs``: ``[K]``, non-negative,
    summing to 1 (uniform when omitted). Called like a network: ``x_t`` counts ``[B,
    ...]`` (any float or integer dtype), ``t`` a scalar or ``[B]``; returns ``x_t``'s
    float dtype. For an x_t that no support image can produce (possible off-grid with
    tau-leaping), the posterior is empty and the oracle predicts 0: no further births.
    """

    def __init__(self, support, probs=None):
        support = _checks.counts(support, "support")
        if support.ndim < 1 or support.shape[0] < 1:
            raise ValueError(f"support must have shape [K, ...] with K >= 1, "
                             f"got {tuple(support.shape)}")
        flat = support.reshape(support.shape[0], -1).long()
        if torch.unique(flat, dim=0).shape[0] != flat.shape[0]:
            raise ValueError(
                "support must hold K distinct images "
                "(merge duplicates and add their probs)"
            )
        k = support.shape[0]
        probs = torch.full((k,), 1.0 / k, dtype=torch.float64) if probs is None else \
            _checks.probability_vector(probs, "probs", tol=1e-6)
        if probs.shape != (k,):
            raise ValueError(
                f"probs must have shape [K] = [{k}], got {tuple(probs.shape)}"
            )
        self.support = support.long()
        self.probs = (probs / probs.sum()).to(
            support.device
        )  # removes float32 rounding of the input
        self.image_shape = tuple(support.shape[1:])
        self.n_max = int(flat.max())
        self._cache = None

    def _flatten(self, x_t, name="x_t"):
        _checks.count_tensor(x_t, name)
        if x_t.ndim == 0 or tuple(x_t.shape[1:]) != self.image_shape:
            raise ValueError(
                f"{name} must have shape [B, *{self.image_shape}], "
                f"got {tuple(x_t.shape)}"
            )
        d = math.prod(self.image_shape)
        return x_t.reshape(x_t.shape[0], d).to(torch.float64)

    def _tables(self, device):
        """Per (pixel, value) tables over the support, ``[D (n_max+2), 2K]``, and the
        flat support ``[K, D]``.

        Columns 0..K-1 hold ln C(x0_kd, v), columns K..2K-1 flag v > x0_kd (impossible);
        value n_max + 1 stands for every count above the support's maximum. With x_t
        one-hot encoded, one matrix product sums both over pixels: the binomial
        coefficients are the only part of the likelihood that mixes x_t and x0 pixel by
        pixel.
        """
        if self._cache is None or self._cache[0].device != device:
            flat = self.support.reshape(self.support.shape[0], -1).to(
                device=device, dtype=torch.float64
            )
            v = torch.arange(self.n_max + 2, dtype=torch.float64, device=device)
            x0, v = flat.T[:, None, :], v[None, :, None]  # [D, 1, K], [1, V, 1]
            impossible = v > x0
            log_choose = (
                torch.lgamma(x0 + 1)
                - torch.lgamma(v + 1)
                - torch.lgamma((x0 - v).clamp_min(0) + 1)
            )
            log_choose = torch.where(impossible, 0.0, log_choose)
            tables = torch.cat([log_choose, impossible.to(torch.float64)], dim=-1)
            self._cache = (tables.reshape(-1, 2 * flat.shape[0]), flat)
        return self._cache

    def log_likelihood(self, x_t, t):
        """log P(x_t | x0^(k)) for every image k: a sum of log binomial pmfs, ``[B, K]``
        (Eq. ch4-loglik, Chapter 4).

        sum_d ln C(x0_kd, x_d) + S ln p + (S_k - S) ln(1 - p), S = sum_d x_d, S_k =
        sum_d x0_kd; -inf where some pixel has x_d > x0_kd. Costs O(B D (n_max + 2) K):
        meant for toys.
        """
        x = self._flatten(x_t)
        t = _checks.per_sample(_checks.times(t).to(x.device), x)
        t = t.expand(x.shape[0], 1)
        tables, support_flat = self._tables(x.device)
        k = support_flat.shape[0]
        values = self.n_max + 2
        columns = x.long().clamp(max=values - 1) + values * torch.arange(
            x.shape[1], device=x.device
        )
        onehot = torch.zeros(
            x.shape[0], x.shape[1] * values, dtype=torch.float64, device=x.device
        )
        summed = onehot.scatter_(1, columns, 1.0) @ tables                 # [B, 2K]
        s = x.sum(1, keepdim=True)
        # xlogy: no dead units contribute nothing even at t = 0, where ln(1 - p) = -inf.
        log_lik = (
            summed[:, :k]
            - s * t
            + torch.xlogy((support_flat.sum(1) - s).clamp_min(0), -torch.expm1(-t))
        )
        return torch.where(summed[:, k:] > 0, -math.inf, log_lik)

    def posterior(self, x_t, t):
        """P(x0 = x0^(k) | x_t) by Bayes' rule, ``[B, K]``; an all-zero row where x_t is
        impossible (Chapter 4)."""
        log_joint = self.log_likelihood(x_t, t) + torch.log(self.probs.to(x_t.device))
        log_evidence = torch.logsumexp(log_joint, dim=1, keepdim=True)
        possible = torch.isfinite(log_evidence)
        return torch.where(
            possible,
            torch.exp(log_joint - torch.where(possible, log_evidence, 0.0)),
            0.0,
        )

    def __call__(self, x_t, t):
        w = self.posterior(x_t, t)
        x = self._flatten(x_t)
        x0 = self._tables(x.device)[1]
        # sum_k w_k (x0_k - x_t); the clamp only removes float rounding below 0.
        gap = (w @ x0 - x * w.sum(1, keepdim=True)).clamp_min(0)
        dtype = x_t.dtype if torch.is_floating_point(x_t) else torch.get_default_dtype()
        return gap.reshape(x_t.shape).to(dtype)

    def entropy(self):
        """Exact entropy of the data distribution, H = -sum_k pi_k ln pi_k, in nats
        (Chapter 6)."""
        return float(-torch.xlogy(self.probs, self.probs).sum())

    def entropy_bits_per_dim(self):
        """The entropy in bits per pixel, H / (D ln 2): the floor of any bits/dim
        (Chapter 6)."""
        return self.entropy() / (math.prod(self.image_shape) * math.log(2))

    def sample(self, n, generator=None):
        """``n`` exact draws from the data distribution, long ``[n, ...]`` (Chapter
        6)."""
        idx = torch.multinomial(self.probs, _checks.positive_int(n, "n"),
                                replacement=True, generator=generator)
        return self.support[idx.to(self.support.device)]

    def empirical_probs(self, samples):
        """Frequencies of the support images among ``samples`` ``[N, ...]``: ``(freq
        [K], outside)`` (Chapter 6).

        ``outside`` is the fraction of samples that match no support image.
        """
        x = self._flatten(samples, "samples").long()
        if x.shape[0] == 0:
            raise ValueError("samples must hold at least one image, got 0")
        x0 = self.support.reshape(self.support.shape[0], -1).to(x.device)
        match = (x[:, None, :] == x0[None]).all(-1).to(torch.float64)   # [N, K]
        freq = match.mean(0)
        return freq, float(1.0 - freq.sum())

    def total_variation(self, samples):
        """Total variation distance between the empirical law of ``samples`` and the
        data (Chapter 6).

        ``TV = (sum_k abs(freq_k - pi_k) + outside) / 2``, in [0, 1].
        """
        freq, outside = self.empirical_probs(samples)
        return float(0.5 * ((freq - self.probs.to(freq.device)).abs().sum() + outside))


def _one_pixel_setup(model, x0_values, times, n_max, prior_count):
    """Checked arguments of the exact one-pixel computations below."""
    n_max = _checks.positive_int(n_max, "n_max")
    values = _checks.counts(torch.as_tensor(x0_values), "x0_values", n_max=n_max)
    times = _checks.time_grid(times).cpu()
    prior_count = n_max / 2 if prior_count is None else \
        _checks.number(prior_count, "prior_count", minimum=0, strict=True)
    shape = tuple(getattr(model, "image_shape", (1,)))
    if math.prod(shape) != 1:
        raise ValueError(f"model must be a one-pixel model, got image shape {shape}")
    return values.reshape(-1).long().cpu(), times, prior_count, shape


def _rates(model, times, k, n_max, shape):
    """y_hat(x, t_k) for every count x = 0..n_max of one pixel, float64 ``[V]``,
    clamped at ``losses.EPS`` as the ELBO's model kernel is."""
    x = torch.arange(n_max + 1, dtype=torch.get_default_dtype()).reshape(-1, *shape)
    y_hat = _checks.predict(model, x, times[k], step=k)
    return y_hat.reshape(-1).to(torch.float64).clamp_min(losses.EPS)


def exact_negative_elbo(model, x0_values, times, n_max, prior_count=None):
    """The negative ELBO of ``losses.negative_elbo`` with every expectation done
    exactly, for a one-pixel model: nats ``[len(x0_values)]`` (Eq. ch5-elbo, Chapter
    5).

    Term k sums KL(Bin(x0 - x, q_k) || Poisson(y_hat(x, t_k) q_k)) over x = 0..x0 with
    the weights Binomial(x; x0, e^{-t_k}) instead of drawing x_{t_k}; the prior term is
    the same as there. ``model`` sees ``[n_max + 1, *image_shape]``
    (``model.image_shape`` when it has one, else ``(1,)``); ``x0_values``: counts in
    0..n_max. One model call per step: meant for toys and checks.
    """
    values, times, prior_count, shape = _one_pixel_setup(model, x0_values, times,
                                                         n_max, prior_count)
    q = step_probabilities(times)
    p_end = math.exp(-float(times[-1]))
    nats = losses.kl_binomial_poisson(values, p_end,
                                      torch.full(values.shape, prior_count), n_max)
    consts = losses._step_constants(q, n_max)                        # [T, V]
    v = values.to(torch.float64)[:, None]
    x = torch.arange(n_max + 1, dtype=torch.float64)[None]
    possible = x <= v
    dead = (v - x).clamp_min(0)
    log_choose = torch.lgamma(v + 1) - torch.lgamma(x + 1) - torch.lgamma(dead + 1)
    for k in range(times.numel()):
        t = times[k].to(torch.float64)
        log_pmf = log_choose - x * t + torch.xlogy(dead, -torch.expm1(-t))
        pmf = torch.where(possible, torch.exp(log_pmf), 0.0)          # [N, V]
        y_hat = _rates(model, times, k, n_max, shape)[None].expand_as(pmf)
        kl = consts[k][dead.long()] + q[k] * losses.poisson_loss(y_hat, dead)
        nats = nats + (pmf * torch.where(possible, kl, 0.0)).sum(1)
    return nats


def model_nll_exact(model, x0_values, times, n_max, prior_count=None):
    """-ln p_model(x0) in nats, exactly, for a one-pixel model: ``[len(x0_values)]``
    (Eq. ch5-elbo, Chapter 5).

    The generative chain of ``losses.negative_elbo``: x_{T-1} ~ Poisson(prior_count
    e^{-t_end}), then x_{k-1} = x_k + Poisson(y_hat(x_k, t_k) q_k) for k = T-1..0. A
    forward dynamic programme carries the law of the count over 0..n_max down the grid
    (counts only grow, so mass above n_max never returns and is dropped exactly). Every
    negative ELBO of that model is >= this value. Same arguments as
    ``exact_negative_elbo``.
    """
    values, times, prior_count, shape = _one_pixel_setup(model, x0_values, times,
                                                         n_max, prior_count)
    q = step_probabilities(times)
    x = torch.arange(n_max + 1, dtype=torch.float64)
    mean = prior_count * math.exp(-float(times[-1]))
    law = torch.exp(torch.xlogy(x, torch.tensor(mean, dtype=torch.float64)) - mean
                    - torch.lgamma(x + 1))
    jump = x[None] - x[:, None]                                     # [from, to]
    for k in reversed(range(times.numel())):
        rate = _rates(model, times, k, n_max, shape)[:, None] * q[k]
        log_kernel = torch.xlogy(jump.clamp_min(0), rate) - rate \
            - torch.lgamma(jump.clamp_min(0) + 1)
        law = law @ torch.where(jump >= 0, torch.exp(log_kernel), 0.0)
    return -torch.log(law[values])
