"""The training loss and the ELBO of Blackout Diffusion (Chapters 5 and 10).

Training: draw a time index k uniformly, fade x0 to x_t ~ Binomial(x0, e^{-t_k}), and
score the rate model's guess y_hat of the dead units y = x0 - x_t with the Poisson-type
loss y_hat - y log y_hat. Its minimiser is E[y | x_t] (it is the Bregman divergence of u
log u up to terms free of y_hat), so the network learns exactly what the reverse rate
needs.

Likelihood (derived in Chapter 5, not in the paper): with the exact binomial bridge as
the forward posterior and the model kernel x_{k-1} = x_k + Poisson(y_hat q_k), every
step of the discrete-time ELBO is KL(Binomial(y, q_k) || Poisson(y_hat q_k)) = c_k(y) +
q_k * loss, an exact finite sum because y <= n_max.
"""
import math
from typing import NamedTuple

import torch

from blackout_tutorial import _checks, process, schedule
from blackout_tutorial.bridge import step_probabilities

# Smallest rate the log sees: keeps y log y_hat finite when a model outputs exactly 0.
EPS = 1e-12


def poisson_loss(y_hat, y):
    """Elementwise y_hat - y log y_hat (Eq. ch5-loss, Chapter 5).

    The Poisson negative log-likelihood of y under mean y_hat, up to log y!. Its
    expectation over y is minimised by y_hat = E[y]. y = 0 is safe; y_hat is clamped at
    ``EPS`` inside the log only. ``y_hat`` and ``y`` must have the same shape.
    """
    y_hat, y = _checks.finite(y_hat, "y_hat", minimum=0), _checks.counts(y, "y")
    if y_hat.shape != y.shape:
        raise ValueError(f"y_hat and y must have the same shape, got "
                         f"{tuple(y_hat.shape)} and {tuple(y.shape)}")
    return y_hat - y * torch.log(y_hat.clamp_min(EPS))


def blackout_loss_terms(model, x0, times, weights, generator=None):
    """Per-sample training losses w_k * mean_pixels(y_hat - y log y_hat), ``[B]`` (Eq.
    ch5-loss, Chapter 5).

    For each image: k ~ Uniform{0..T-1}, t = times[k], x_t ~ Binomial(x0, e^{-t}), y =
    x0 - x_t, y_hat = model(x_t, t). ``weights`` (from ``schedule.loss_weights``) carry
    the factor T of the uniform draw, so the mean over the batch is an unbiased estimate
    of the weighted sum over time. ``generator`` must live on x0's device.
    """
    _checks.batch(x0, "x0")
    times = _checks.times(times, "times").to(x0.device)
    weights = _checks.weights(weights, times).to(x0.device)
    k = schedule.sample_time_indices(x0.shape[0], times.numel(), generator=generator,
                                     device=x0.device)
    t = times[k]
    x_t = process.sample_forward(x0, t, generator=generator)
    y_hat = _checks.predict(model, x_t, t).float()
    per_pixel = poisson_loss(y_hat, (x0 - x_t).float())
    return weights[k].float() * per_pixel.reshape(x0.shape[0], -1).mean(1)


def blackout_loss(model, x0, times, weights, generator=None):
    """Scalar training loss: the batch mean of ``blackout_loss_terms`` (Eq. ch5-loss,
    Chapter 5)."""
    return blackout_loss_terms(model, x0, times, weights, generator).mean()


def _step_constants(q, n_max):
    """c(y) = ln y! - E_{m~Bin(y,1-q)}[ln m!] + y (1-q) ln(1-q) for y = 0..n_max (Eq.
    ch5-kl-split, Chapter 5).

    With it, KL(Binomial(y, q) || Poisson(y_hat q)) = c(y) + q (y_hat - y ln y_hat); m
    counts the units that stay dead. ``q`` in (0, 1], a float or a 1-D tensor of them;
    float64 ``[n_max + 1]`` (or ``[len(q), n_max + 1]``) on the CPU, computed in chunks
    so that 255-unit pixels need no more than a few MB.
    """
    qs = torch.as_tensor(q, dtype=torch.float64).cpu()
    if qs.ndim == 0:
        return _step_constants(qs[None], n_max)[0]
    y = torch.arange(n_max + 1, dtype=torch.float64)
    m = y[None, None]
    yy = y[None, :, None]
    reborn = (yy - m).clamp_min(0)
    log_choose = torch.lgamma(yy + 1) - torch.lgamma(m + 1) - torch.lgamma(reborn + 1)
    chunk = max(1, 2 ** 22 // (n_max + 1) ** 2)
    rows = []
    for part in qs.split(chunk):
        r = (1 - part)[:, None, None]
        # xlogy keeps 0 log 0 = 0, so q = 1 (the last step, every unit back) needs no
        # special case.
        log_pmf = log_choose + torch.xlogy(m, r) + torch.xlogy(reborn, 1 - r)
        pmf = torch.where(m <= yy, torch.exp(log_pmf), 0.0)
        expected_log_m = (pmf * torch.lgamma(m + 1)).sum(-1)
        rows.append(torch.lgamma(y + 1) - expected_log_m
                    + torch.xlogy(y * r[:, :, 0], r[:, :, 0]))
    return torch.cat(rows)


def kl_binomial_poisson(y, q, y_hat, n_max):
    """Exact KL(Binomial(y, q) || Poisson(y_hat q)) elementwise, in nats (Eq.
    ch5-kl-split, Chapter 5).

    ``y``: counts in 0..n_max; ``q`` in (0, 1] (a float); ``y_hat`` >= 0, clamped at
    ``EPS`` (the model kernel then uses the clamped rate too, so the value is still a
    true KL). Returns float64.
    """
    if _checks.probability(q, "q") == 0:
        raise ValueError(f"q must lie in (0, 1], got {q!r}")
    y = _checks.counts(y, "y", n_max=_checks.positive_int(n_max, "n_max"))
    y_hat = _checks.finite(y_hat, "y_hat", minimum=0)
    c = _step_constants(float(q), n_max).to(y.device)[y.long()]
    return c + q * poisson_loss(y_hat.to(torch.float64).clamp_min(EPS),
                                y.to(torch.float64))


def negative_elbo(model, x0, times, n_max, n_terms=None, step_probs=None,
                  prior_count=None, generator=None):
    """Negative ELBO in nats per image, ``[B]``: an upper bound on -ln p_model(x0) (Eq.
    ch5-elbo, Chapter 5).

    Generative model: x_{T-1} ~ Poisson(prior_count * p_end) per pixel at t_end =
    times[-1], then x_{k-1} = x_k + Poisson(y_hat(x_k, t_k) q_k) down the grid, the
    last step (q_0 = 1) landing at t = 0. Forward posterior: the binomial bridge. Hence

        -ELBO = KL(Bin(x0, p_end) || Poisson(prior_count p_end))
                + sum_k E_{x_{t_k}} KL(Bin(x0 - x_{t_k}, q_k) || Poisson(y_hat q_k)),

    each KL an exact finite sum (``kl_binomial_poisson``); the k = 0 term is the
    reconstruction -ln Poisson(x0 - x_{t_0}; y_hat). The prior is the model kernel of a
    step from t = infinity with a constant guess ``prior_count`` (default n_max / 2, a
    mid-grey pixel): full support, and about (n_max / 2) e^{-t_end} nats per pixel away
    from the data. Each term's expectation over x_{t_k} uses one forward draw per image.

    ``n_terms=None`` sums all T terms. ``n_terms=m`` draws m step indices *per image*,
    stratified: the proposal ``step_probs`` rho (uniform by default) is cut along its
    CDF into m strata of mass 1/m, and image b gets k_{b,j} = CDF^{-1}((j + U_{b,j}) /
    m), U uniform, j = 0..m-1. The estimate sum_j term_{k_{b,j}} / (m rho_{k_{b,j}}) is
    unbiased, costs m model calls, and the images' values are independent draws (given
    x0), so their spread is an honest error bar (``elbo_estimate``).
    """
    n_max = _checks.positive_int(n_max, "n_max")
    _checks.batch(x0, "x0", n_max)
    q = step_probabilities(times)
    ks, scale = _choose_terms(q.numel(), x0.shape[0], n_terms, step_probs, generator)
    prior_count = n_max / 2 if prior_count is None else \
        _checks.number(prior_count, "prior_count", minimum=0, strict=True)
    times = _checks.time_grid(times)
    p_end = math.exp(-float(times[-1]))
    nats = kl_binomial_poisson(x0, p_end, torch.full(x0.shape, prior_count,
                                                     device=x0.device), n_max)
    nats = nats.reshape(x0.shape[0], -1).sum(1)
    used, rows = torch.unique(ks, return_inverse=True)
    consts = _step_constants(q[used].cpu(), n_max).to(x0.device)
    q_dev, times_dev = q.to(x0.device), times.to(x0.device)
    with torch.no_grad():
        for k, row, w in zip(ks.to(x0.device), rows.to(x0.device),
                             scale.to(x0.device)):
            t = times_dev[k]
            x_t = process.sample_forward(x0, t, generator=generator)
            lo, hi = int(k.min()), int(k.max())
            y_hat = _checks.predict(model, x_t, t, step=lo if lo == hi else
                                    f"{lo}..{hi}")
            nats = nats + w * _term(x0 - x_t, q_dev[k], consts[row], y_hat)
    return nats


def _term(y, q, consts, y_hat):
    """Per-image sum over pixels of KL(Bin(y, q_b) || Poisson(y_hat q_b)), ``[B]``.

    ``q``: ``[B]``; ``consts``: the rows c_b(.) of ``_step_constants``, ``[B, V]``."""
    flat = y.reshape(y.shape[0], -1).long()
    c = torch.gather(consts, 1, flat)
    loss = poisson_loss(y_hat.to(torch.float64).clamp_min(EPS).reshape(flat.shape),
                        flat.to(torch.float64))
    return (c + q[:, None] * loss).sum(1)


def _choose_terms(T, B, n_terms, step_probs, generator):
    """Step indices and weights, ``[m, B]`` each: all T steps with weight 1, or one
    draw per image in each of m strata of equal mass under rho, weight 1/(m rho_k)."""
    if n_terms is None:
        if step_probs is not None:
            raise ValueError("step_probs needs n_terms "
                             "(the full sum uses every term once)")
        return (torch.arange(T)[:, None].expand(T, B),
                torch.ones(T, B, dtype=torch.float64))
    m = _checks.positive_int(n_terms, "n_terms")
    rho = torch.full((T,), 1.0 / T, dtype=torch.float64) if step_probs is None else \
        _checks.probability_vector(step_probs, "step_probs").cpu().to(torch.float64)
    if rho.shape != (T,) or bool((rho <= 0).any()):
        raise ValueError(f"step_probs must be [T] = [{T}], positive, summing to 1")
    rho = rho / rho.sum()
    device = generator.device if generator is not None else rho.device
    u = torch.rand(m, B, generator=generator, device=device,
                   dtype=torch.float64).cpu()
    u = (torch.arange(m, dtype=torch.float64)[:, None] + u) / m
    ks = torch.searchsorted(torch.cumsum(rho, 0), u, right=True).clamp(max=T - 1)
    return ks, 1.0 / (m * rho[ks])


def elbo_bits_per_dim(model, x0, times, n_max, n_terms=None, step_probs=None,
                      prior_count=None,
                      generator=None):
    """Negative ELBO in bits per dimension, ``[B]``: nats / (D ln 2), D = pixels x
    channels (Eq. ch10-bpd, Chapter 10).

    Same arguments as ``negative_elbo``. Nobody has reported this number for Blackout
    Diffusion: Chapter 10 compares it with Gaussian and discrete diffusion models.
    """
    nats = negative_elbo(model, x0, times, n_max, n_terms, step_probs, prior_count,
                         generator)
    return nats / (x0[0].numel() * math.log(2))


def elbo_estimate(model, x0, times, n_max, n_terms=None, step_probs=None,
                  prior_count=None, generator=None, repeats=1, batch_size=None):
    """The data-set mean of ``elbo_bits_per_dim`` with its honest standard error:
    ``(mean, stderr)`` in bits/dim, floats (Eq. ch10-bpd, Chapter 10).

    Each image gets ``repeats`` independent estimates (fresh forward noise and, with
    ``n_terms``, fresh stratified step indices per image); v_b is their mean and
    ``mean`` = mean_b v_b. The v_b are independent given the images, so ``stderr`` =
    sd_b(v_b) / sqrt(B) includes all the randomness of the estimator (forward noise and
    step indices) and the spread of the images themselves: it is the standard error of
    ``mean`` as an estimate of the model's expected bound under the data law the images
    are drawn from (for this fixed set of images it is conservative). ``batch_size``
    splits x0 into chunks for the model calls (all of x0 at once by default). Needs B
    >= 2.
    """
    _checks.batch(x0, "x0")
    if x0.shape[0] < 2:
        raise ValueError(f"x0 must hold at least 2 images for a standard error, got "
                         f"{x0.shape[0]}")
    repeats = _checks.positive_int(repeats, "repeats")
    size = x0.shape[0] if batch_size is None else \
        _checks.positive_int(batch_size, "batch_size")
    per_image = torch.zeros(x0.shape[0], dtype=torch.float64)
    for _ in range(repeats):
        parts = [elbo_bits_per_dim(model, chunk, times, n_max, n_terms, step_probs,
                                   prior_count, generator).double().cpu()
                 for chunk in x0.split(size)]
        per_image += torch.cat(parts) / repeats
    return ElboEstimate(float(per_image.mean()),
                        float(per_image.std()) / math.sqrt(x0.shape[0]))


class ElboEstimate(NamedTuple):
    """``elbo_estimate``'s result: ``mean`` and ``stderr``, bits/dim."""

    mean: float
    stderr: float
