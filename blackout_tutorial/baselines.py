"""A Gaussian diffusion baseline: Blackout's U-Net, data and budget (Chapter 10).

A compact variance-preserving DDPM (Ho et al. 2020; Kingma et al. 2021) on counts
mapped to [-1, 1] (x = 2n / n_max - 1), in continuous time u in [0, 1]: x_u = alpha_u x
+ sigma_u eps, alpha_u^2 = sigmoid(lambda_u), sigma_u^2 = sigmoid(-lambda_u), with the
cosine schedule in log-SNR, lambda_u = -2 log tan(a u + b), truncated to
``log_snr_range(n_max)`` (Nichol and Dhariwal 2021). The network is the *same*
``nets.UNet`` the Blackout rate model wraps, used raw (no softplus): it predicts eps,
fed the time t = -log alpha_u^2, so its time features see logit(e^{-t}) = lambda_u.
Sampling is ancestral; the likelihood is the discrete-time bound on the *integer*
pixels with a lattice decoder (a bound on -log P(counts), as Blackout's ELBO)."""
import functools
import math

import torch
import torch.nn.functional as F

from blackout_tutorial import _checks, nets
from blackout_tutorial._gaussian_oracle import ExactEps  # noqa: F401 (re-exported)

LOG_SNR_MIN = -10.0  # sigma_1 / alpha_1 = e^5: x_1 is pure noise for |x| <= 1


def _check_range(log_snr_range):
    try:
        low, high = (float(v) for v in log_snr_range)
    except (TypeError, ValueError):
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"log_snr_range must be finite (min, max) with min < max, "
                         f"got {log_snr_range!r}")
    return low, high


def log_snr_range(n_max, lambda_max=None):
    """The log-SNR range (lambda_min, lambda_max) for counts 0..n_max
    (Eq. ch10-cosine, Chapter 10). A bin of x = 2n / n_max - 1 is 2 / n_max wide; the
    default sets the decoder's std sigma_0 / alpha_0 = e^{-lambda_max / 2} to half the
    half-bin: lambda_max = 2 ln(2 n_max), 6.93 for 17 levels (12.5 for 256). The old 10
    (e^-5 = 0.0067 against a half-bin of 0.0625) made the bound pay for denoising far
    below the bin width."""
    n_max = _checks.positive_int(n_max, "n_max")
    high = 2.0 * math.log(2.0 * n_max) if lambda_max is None else lambda_max
    return _check_range((LOG_SNR_MIN, high))


LOG_SNR_RANGE = log_snr_range(16)  # the 17-level digits: (-10, 6.93)


def cosine_log_snr(u, log_snr_range=LOG_SNR_RANGE):
    """Cosine schedule in log-SNR, lambda_u = -2 log tan(a u + b) (Eq. ch10-cosine,
    Chapter 10): a and b put lambda_0 = max and lambda_1 = min of ``log_snr_range``.
    Untruncated (a = pi/2, b = 0) this is alpha_u^2 = cos^2(pi u / 2), Nichol and
    Dhariwal's cosine without their offset. ``u`` in [0, 1]; float tensors like ``u``.
    """
    low, high = _check_range(log_snr_range)
    dtype = None if torch.is_tensor(u) else torch.get_default_dtype()
    u = _checks.in_range(torch.as_tensor(u, dtype=dtype), "u", what="values")
    b = math.atan(math.exp(-high / 2))
    a = math.atan(math.exp(-low / 2)) - b
    return -2 * torch.log(torch.tan(a * u + b))


def net_time(log_snr):
    """The time t = -log alpha^2 = softplus(-lambda) at which ``nets.UNet`` reads
    log-SNR lambda (Chapter 10)."""
    return F.softplus(-log_snr)


def to_signed(counts, n_max):
    """Counts 0..n_max -> x = 2 n / n_max - 1 in [-1, 1], the DDPM data scale
    (Chapter 10); float32, or float64 for float64 counts."""
    dtype = torch.promote_types(counts.dtype, torch.float32)
    return 2.0 * counts.to(dtype) / _checks.positive_int(n_max, "n_max") - 1.0


def gaussian_noising(counts, t, n_max, generator=None):
    """DDPM-style noising of counts at the blackout survival e^{-t} (Chapter 1),
    float64: x_t = sqrt(abar) x + sqrt(1 - abar) eps with x = ``to_signed(counts)``,
    abar = e^{-t}, eps ~ N(0, I): the blackout image's signal fraction, off the lattice.
    """
    x0 = to_signed(_checks.counts(counts, "counts", n_max).double(), n_max)
    alpha_bar = math.exp(-_checks.number(t, "t", minimum=0.0))
    eps = torch.randn(x0.shape, dtype=torch.float64, generator=generator)
    return math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * eps


def to_counts(x, n_max):
    """Nearest count of x in [-1, 1] (inverse of ``to_signed``, clipped), long."""
    x, n_max = _checks.finite(x, "x"), _checks.positive_int(n_max, "n_max")
    return torch.round((x + 1.0) * n_max / 2.0).clamp(0, n_max).long()


class EpsModel(torch.nn.Module):
    """``nets.UNet`` as a Gaussian noise predictor eps_hat(x_u, lambda_u) (Chapter 10):
    the raw U-Net output, no softplus (the only change from the ``RateModel``)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, log_snr):
        """eps_hat for noisy images ``x`` ``[B, C, H, W]`` at ``log_snr`` ``[B]``."""
        return self.net(x, net_time(log_snr))


def _alpha_sigma(log_snr, ndim):
    shape = (-1,) + (1,) * (ndim - 1)
    return tuple(torch.sigmoid(v).sqrt().reshape(shape) for v in (log_snr, -log_snr))


def predict_x0(model, x, log_snr, step=None):
    """x0_hat = (x_u - sigma_u eps_hat) / alpha_u (Chapter 10); eps_hat must be
    finite and of x's shape (``ValueError`` naming the model output and ``step``)."""
    alpha, sigma = _alpha_sigma(log_snr, x.ndim)
    eps = _checks.output(model(x, log_snr), x.shape, step=step)
    return (x - sigma * eps) / alpha


def build_eps_model(preset, n_max):
    """``EpsModel(nets.UNet(preset.net))``, train.train's build_model (Chapter 10)."""
    return EpsModel(nets.UNet(preset.net))


WEIGHTINGS = ("simple", "elbo")


def gaussian_loss(model, counts, n_max, weighting="simple", generator=None):
    """Noise-prediction loss, the mean over pixels and batch of
    (eps - eps_hat(x_u, lambda))^2 (Eq. ch10-eps-loss, Chapter 10).
    ``weighting="simple"``: u ~ U(0, 1) on the cosine schedule, DDPM's L_simple.
    ``weighting="elbo"``: lambda ~ U(``log_snr_range(n_max)``). The continuous-time
    ELBO is E_u[-lambda'(u) / 2 * sum_pixels (eps - eps_hat)^2] (Kingma et al. 2021);
    uniform lambda absorbs -lambda'(u) into the sampling density, so the plain mean
    estimates it up to the factor D (lambda_max - lambda_min) / 2.
    """
    _checks.one_of(weighting, WEIGHTINGS, "weighting")
    x = to_signed(_checks.batch(counts, "counts", _checks.positive_int(n_max, "n_max")),
                  n_max)
    u = torch.rand(x.shape[0], device=x.device, generator=generator)
    if weighting == "simple":
        log_snr = cosine_log_snr(u, log_snr_range(n_max))
    else:
        low, high = log_snr_range(n_max)
        log_snr = low + (high - low) * u
    alpha, sigma = _alpha_sigma(log_snr, x.ndim)
    eps = torch.randn(x.shape, device=x.device, generator=generator)
    eps_hat = _checks.output(model(alpha * x + sigma * eps, log_snr), x.shape)
    return F.mse_loss(eps_hat, eps)


def _posterior(x_t, x0_hat, log_snr_t, log_snr_s):
    """Mean and std of q(x_s | x_t, x0 = x0_hat), s earlier than t (higher log-SNR)."""
    alpha_t, sigma_t = _alpha_sigma(log_snr_t, x_t.ndim)
    alpha_s, sigma_s = _alpha_sigma(log_snr_s, x_t.ndim)
    alpha_ts = alpha_t / alpha_s
    # sigma_{t|s}^2 / sigma_t^2 = 1 - SNR(t) / SNR(s), written with expm1 for accuracy.
    ratio = -torch.expm1(log_snr_t - log_snr_s).reshape(alpha_t.shape)
    mean = alpha_ts * (sigma_s / sigma_t) ** 2 * x_t + alpha_s * ratio * x0_hat
    return mean, sigma_s * ratio.sqrt()


def _grid(T, device, n_max, lambda_max=None):
    """log-SNR on u_k = k / T, k = 0..T (T network calls between them)."""
    T = _checks.positive_int(T, "T")
    return cosine_log_snr(torch.linspace(0, 1, T + 1, device=device),
                          log_snr_range(n_max, lambda_max))


def decode(x, log_snr_0, n_max):
    """Counts nearest to x_{u_0} / alpha_0, long (Eq. ch10-gauss-elbo, Chapter 10)."""
    return to_counts(x / torch.sigmoid(log_snr_0).sqrt(), n_max)


def sample_gaussian(model, shape, T, n_max, generator=None, device=None, clip=True):
    """Ancestral DDPM sampling on the grid u_k = k / T, then decoding to counts
    (Chapter 10): from x ~ N(0, I) at u = 1, T posterior steps q(x_s | x_t, x0_hat)
    down to u = 0 (T network calls, like a Blackout sampler on T times), x0_hat
    clipped to [-1, 1] (``clip``), the last step noise-free (as in DDPM); the counts
    nearest to x_0 / alpha_0 are the sample. Returns long ``shape``.
    """
    if device is None:
        params = list(model.parameters()) if hasattr(model, "parameters") else []
        device = params[0].device if params else "cpu"
    device, n_max = torch.device(device), _checks.positive_int(n_max, "n_max")
    log_snr = _grid(T, device, n_max)
    x = torch.randn(_checks.batch_shape(shape), device=device, generator=generator)
    with torch.no_grad():
        for k in range(len(log_snr) - 1, 0, -1):
            lam = log_snr[k].expand(x.shape[0])
            x0_hat = predict_x0(model, x, lam, step=k)
            if clip:
                x0_hat = x0_hat.clamp(-1, 1)
            mean, std = _posterior(x, x0_hat, lam, log_snr[k - 1].expand(x.shape[0]))
            x = mean if k == 1 else mean + std * torch.randn(
                x.shape, device=device, generator=generator)
    return decode(x, log_snr[0], n_max)


def discretized_gaussian_log_prob(counts, mean, std, n_max):
    """log P(n) of a Gaussian N(mean, std^2) on [-1, 1] binned at the counts
    (Eq. ch10-gauss-elbo, Chapter 10): bin n covers 2n/n_max - 1 +- 1/n_max, the outer
    bins extend to +-infinity (DDPM's decoder). Elementwise, float64.
    """
    x = to_signed(_checks.counts(counts, "counts", n_max), n_max).double()
    mean = _checks.finite(mean, "mean").double()
    std = _checks.finite(std, "std", minimum=0, strict=True)
    half = 1.0 / n_max
    upper = torch.where(counts >= n_max, torch.full_like(x, math.inf), x + half)
    lower = torch.where(counts <= 0, torch.full_like(x, -math.inf), x - half)
    # Phi(b) - Phi(a) in the tail away from the mean (a far bin is not 1 - 1).
    hi, lo, log_cdf = (upper - mean) / std, (lower - mean) / std, torch.special.log_ndtr
    below = _log_diff_exp(log_cdf(hi), log_cdf(lo))
    above = _log_diff_exp(log_cdf(-lo), log_cdf(-hi))
    return torch.where(mean < x, above, below)


def lattice_log_prob(counts, y, std, n_max):
    """log P(n | y) = log softmax_n(-(y - x_n)^2 / (2 std^2)) over the levels x_n =
    2n / n_max - 1 (Eq. ch10-gauss-elbo, Chapter 10): the bound's decoder (Kingma et al.
    2021), the level's posterior given y = x + std eps, equal priors; float64."""
    n = _checks.counts(counts, "counts", n_max).long()
    levels = to_signed(torch.arange(n_max + 1, device=n.device).double(), n_max)
    logits = -0.5 * ((_checks.finite(y, "y").double()[..., None] - levels) / std) ** 2
    return logits.log_softmax(-1).gather(-1, n[..., None]).squeeze(-1)


def _log_diff_exp(log_a, log_b):
    """log(e^{log_a} - e^{log_b}) for log_a >= log_b, elementwise."""
    return log_a + torch.log(-torch.expm1((log_b - log_a).clamp_max(-1e-300)))


def negative_elbo_gaussian(model, counts, T, n_max, generator=None, n_terms=None,
                           return_terms=False, lambda_max=None):
    """Discrete-time variational bound on -ln P(counts), in nats per image ``[B]``
    (Eq. ch10-gauss-elbo, Chapter 10). On the sampler's grid u_k = k / T, the sum of::

        prior:      KL(q(x_1 | x) || N(0, I))
        diffusion:  sum_{k=1..T} (SNR(u_{k-1}) - SNR(u_k)) / 2
                        * sum_pixels (x - x0_hat(x_{u_k}))^2
        decoder:    -ln P(counts | x_{u_0})

    The diffusion terms are KLs between Gaussian posteriors of equal variance (one
    forward draw per image and step; no clipping of x0_hat); the decoder is
    ``lattice_log_prob`` of x_{u_0} / alpha_0 with std sigma_0 / alpha_0 (no
    network). ``n_terms=m`` replaces the sum over k by m indices
    drawn uniformly (shared by the batch) times T / m: unbiased, m network calls
    instead of T. ``return_terms=True`` returns ``(total, prior, diffusion, decoder)``;
    ``lambda_max`` overrides the grid's top log-SNR (``log_snr_range``).
    """
    x = to_signed(_checks.batch(counts, "counts", _checks.positive_int(n_max, "n_max")),
                  n_max)
    batch = x.shape[0]
    log_snr = _grid(T, x.device, n_max, lambda_max)
    T = len(log_snr) - 1
    snr = torch.exp(log_snr.double())
    a2 = torch.sigmoid(log_snr[-1].double())
    prior = 0.5 * (a2 * x.double() ** 2 + (1 - a2) - 1 - torch.log1p(-a2))
    diffusion = torch.zeros(batch, dtype=torch.float64, device=x.device)
    ks, weight = range(1, T + 1), 1.0
    if n_terms is not None:
        n_terms = _checks.positive_int(n_terms, "n_terms")
        dev = generator.device if generator is not None else "cpu"
        ks = torch.randint(1, T + 1, (n_terms,), generator=generator, device=dev)
        ks = ks.tolist()
        weight = T / n_terms
    noise = functools.partial(torch.randn, x.shape, device=x.device,
                              generator=generator)
    with torch.no_grad():
        for k in ks:
            lam = log_snr[k].expand(batch)
            alpha, sigma = _alpha_sigma(lam, x.ndim)
            x_u = alpha * x + sigma * noise()
            x0_hat = predict_x0(model, x_u, lam, step=k)
            term = 0.5 * weight * (snr[k - 1] - snr[k]) * (x - x0_hat).double() ** 2
            diffusion = diffusion + term.flatten(1).sum(1)
    alpha0, sigma0 = _alpha_sigma(log_snr[0].expand(batch), x.ndim)
    x_0 = alpha0 * x + sigma0 * noise()
    std = float(torch.exp(-log_snr[0].double() / 2))  # sigma_0 / alpha_0
    log_p = lattice_log_prob(counts, x_0 / alpha0, std, n_max)
    decoder, prior = -log_p.flatten(1).sum(1), prior.flatten(1).sum(1)
    total = prior + diffusion + decoder
    return (total, prior, diffusion, decoder) if return_terms else total


def bits_per_dim_gaussian(model, counts, T, n_max, generator=None, n_terms=None,
                          lambda_max=None):
    """``negative_elbo_gaussian`` in bits per dimension, nats / (D ln 2), ``[B]``
    (Eq. ch10-gauss-elbo, Chapter 10)."""
    nats = negative_elbo_gaussian(model, counts, T, n_max, generator, n_terms,
                                  lambda_max=lambda_max)
    return nats / (counts[0].numel() * math.log(2))


def gaussian_objective(n_max, weighting="simple"):
    """The Gaussian loss as ``train.train(..., loss=)`` calls it, ``f(model, x0,
    generator=)``: :func:`gaussian_loss` with ``n_max`` and ``weighting``."""
    _checks.one_of(weighting, WEIGHTINGS, "weighting")
    n_max = _checks.positive_int(n_max, "n_max")
    return functools.partial(gaussian_loss, n_max=n_max, weighting=weighting)
