"""Tests of blackout_tutorial.baselines: the Gaussian DDPM baseline of Chapter 10."""
import functools
import math

import numpy as np
import pytest
import torch
from scipy import stats

from blackout_tutorial import baselines as bl
from blackout_tutorial import data, losses, nets, oracle, presets, schedule

N_MAX = 16


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


class PointMassEps(torch.nn.Module):
    """The exact noise predictor when the data are one image x*:
    eps = (x_u - alpha x*) / sigma."""

    def __init__(self, counts):
        super().__init__()
        self.x = bl.to_signed(counts, N_MAX)
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, log_snr):
        alpha = torch.sigmoid(log_snr).sqrt().reshape(-1, 1, 1, 1)
        sigma = torch.sigmoid(-log_snr).sqrt().reshape(-1, 1, 1, 1)
        return (x - alpha * self.x) / sigma


class ZeroEps(PointMassEps):
    """eps_hat = 0, i.e. x0_hat = x_u / alpha: its bound has a closed form."""

    def forward(self, x, log_snr):
        return torch.zeros_like(x)


def test_cosine_schedule_endpoints_and_cosine_shape():
    u = torch.linspace(0, 1, 11, dtype=torch.float64)
    lam = bl.cosine_log_snr(u, (-10.0, 10.0))
    assert lam[0].item() == pytest.approx(10.0, abs=1e-9)
    assert lam[-1].item() == pytest.approx(-10.0, abs=1e-9)
    assert bool((torch.diff(lam) < 0).all())
    b = math.atan(math.exp(-5.0))
    a = math.atan(math.exp(5.0)) - b
    torch.testing.assert_close(torch.sigmoid(lam), torch.cos(a * u + b) ** 2)


def test_network_time_reads_log_snr():
    lam = torch.linspace(-10, 10, 7)
    torch.testing.assert_close(nets.logit_survival(bl.net_time(lam)), lam, atol=1e-4,
                               rtol=1e-5)


def test_counts_round_trip():
    n = torch.arange(N_MAX + 1)
    assert torch.equal(bl.to_counts(bl.to_signed(n, N_MAX), N_MAX), n)
    assert bl.to_signed(n, N_MAX)[0] == -1 and bl.to_signed(n, N_MAX)[-1] == 1


def test_posterior_matches_ddpm_formulas():
    x_t, x0 = torch.tensor([[0.3]]), torch.tensor([[-0.5]])
    lam_t, lam_s = torch.tensor([-1.0]), torch.tensor([2.0])
    mean, std = bl._posterior(x_t, x0, lam_t, lam_s)
    ab_t, ab_s = torch.sigmoid(lam_t), torch.sigmoid(lam_s)
    a_t = ab_t / ab_s
    beta = 1 - a_t
    ddpm_mean = (ab_s.sqrt() * beta / (1 - ab_t) * x0
                 + a_t.sqrt() * (1 - ab_s) / (1 - ab_t) * x_t)
    torch.testing.assert_close(mean, ddpm_mean)
    torch.testing.assert_close(std ** 2, ((1 - ab_s) / (1 - ab_t) * beta).reshape(1, 1))


def test_discretized_gaussian_matches_scipy_and_normalises():
    n = torch.arange(N_MAX + 1).repeat(3)
    mean = torch.tensor([-0.9] * 17 + [0.3] * 17 + [1.5] * 17)
    log_p = bl.discretized_gaussian_log_prob(n, mean, 0.2, N_MAX)
    x = 2 * n.numpy() / N_MAX - 1
    upper = np.where(n.numpy() == N_MAX, np.inf, x + 1 / N_MAX)
    lower = np.where(n.numpy() == 0, -np.inf, x - 1 / N_MAX)
    m = mean.numpy()
    reference = stats.norm.cdf(upper, m, 0.2) - stats.norm.cdf(lower, m, 0.2)
    assert np.abs(log_p.exp().numpy() - reference).max() < 1e-12
    torch.testing.assert_close(log_p.exp().reshape(3, 17).sum(1),
                               torch.ones(3, dtype=torch.float64))
    # A bin 20 standard deviations away: finite log-probability, not log(1 - 1).
    far = bl.discretized_gaussian_log_prob(torch.tensor([8]), torch.tensor([-1.0]),
                                           0.05, N_MAX)
    assert math.isfinite(far.item())
    exact = np.log(stats.norm.sf(0.9375 / 0.05) - stats.norm.sf(1.0625 / 0.05))
    assert far.item() == pytest.approx(exact, rel=1e-6)


def test_exact_model_has_zero_loss_zero_bound_and_samples_its_image():
    x_star = torch.randint(0, N_MAX + 1, (1, 1, 4, 4), generator=gen(1))
    model = PointMassEps(x_star)
    batch = x_star.repeat(8, 1, 1, 1)
    for weighting in bl.WEIGHTINGS:
        loss = bl.gaussian_loss(model, batch, N_MAX, weighting, generator=gen(2))
        assert loss.item() < 1e-8
    total, prior, diffusion, decoder = bl.negative_elbo_gaussian(
        model, batch.repeat(25, 1, 1, 1), 20, N_MAX, generator=gen(3),
        return_terms=True)
    # -log P(x*) = 0 for a point mass: no diffusion cost, and the decoder's only cost
    # is telling the level from its neighbours 4 std away (~0.17 bits/dim).
    assert diffusion.max().item() < 1e-8 and prior.max().item() < 1e-3
    assert bool((total >= 0).all())
    assert 0.1 < decoder.mean().item() / (16 * math.log(2)) < 0.25
    samples = bl.sample_gaussian(model, (8, 1, 4, 4), 10, N_MAX, generator=gen(4))
    assert torch.equal(samples, batch)


def test_bound_of_zero_predictor_has_closed_form_and_mc_is_unbiased():
    # eps_hat = 0: |x - x_u / alpha|^2 = |eps|^2 / SNR(u), so the diffusion sum has
    # expectation D / 2 sum_k (SNR(u_{k-1}) / SNR(u_k) - 1).
    counts = torch.randint(0, N_MAX + 1, (4000, 1, 2, 2), generator=gen(5))
    model, steps, dim = ZeroEps(counts[:1]), 8, 4
    _, prior, diffusion, _ = bl.negative_elbo_gaussian(
        model, counts, steps, N_MAX, generator=gen(6), return_terms=True)
    lam = bl.cosine_log_snr(torch.linspace(0, 1, steps + 1, dtype=torch.float64))
    expected = 0.5 * dim * (torch.exp(lam[:-1] - lam[1:]) - 1).sum().item()
    assert diffusion.mean().item() == pytest.approx(expected, rel=0.03)
    # The m = 3 random terms are shared by the batch: average over 400 independent
    # draws.
    mc = [bl.negative_elbo_gaussian(model, counts[:50], steps, N_MAX,
                                    generator=gen(100 + i), n_terms=3,
                                    return_terms=True)[2].mean().item()
          for i in range(400)]
    assert np.mean(mc) == pytest.approx(expected, rel=0.08)
    assert bool((prior > 0).all()) and prior.mean().item() < 1e-3


def test_gaussian_noising_keeps_the_signal_fraction_and_leaves_the_lattice():
    counts = torch.full((20000,), 12)
    t = 0.7
    x = bl.gaussian_noising(counts, t, N_MAX, gen(9))
    abar = math.exp(-t)
    signal = math.sqrt(abar) * (2 * 12 / N_MAX - 1)
    # sd of the mean of 20000 draws: sqrt(1 - abar) / 141 = 0.0051; 0.03 is ~6 sd.
    assert x.dtype == torch.float64
    assert x.mean().item() == pytest.approx(signal, abs=0.03)
    assert x.std().item() == pytest.approx(math.sqrt(1 - abar), rel=0.03)
    assert torch.equal(bl.gaussian_noising(counts, 0.0, N_MAX, gen(9)),
                       bl.to_signed(counts.double(), N_MAX))
    with pytest.raises(ValueError, match="counts"):
        bl.gaussian_noising(torch.tensor([-1]), t, N_MAX)


def test_build_eps_model_and_objective_plug_into_the_trainer():
    preset = presets.get_preset("digits", "smoke")
    model = bl.build_eps_model(preset, N_MAX)
    assert isinstance(model, bl.EpsModel) and isinstance(model.net, nets.UNet)
    loss = bl.gaussian_objective(N_MAX, "elbo")
    x0 = data.load_digits().train[:8].float()
    value = loss(model, x0, generator=gen(10))
    expected = bl.gaussian_loss(model, x0, N_MAX, "elbo", generator=gen(10))
    assert value.ndim == 0 and torch.equal(value, expected)
    with pytest.raises(ValueError, match="weighting"):
        bl.gaussian_objective(N_MAX, "vlb")


def _eps0():
    return PointMassEps(torch.zeros(1, 1, 2, 2))


@pytest.mark.parametrize("call, match", [
    (lambda: bl.cosine_log_snr(torch.tensor([1.5])), "u"),
    (lambda: bl.cosine_log_snr(0.5, (5.0, -5.0)), "log_snr_range"),
    (lambda: bl.gaussian_loss(_eps0(), torch.zeros(2, 1, 2, 2), N_MAX, "vlb"),
     "weighting"),
    (lambda: bl.sample_gaussian(_eps0(), (2, 1, 2, 2), 0, N_MAX), "T"),
    (lambda: bl.negative_elbo_gaussian(_eps0(), -torch.ones(2, 1, 2, 2), 4, N_MAX),
     "counts"),
    (lambda: bl.negative_elbo_gaussian(_eps0(), torch.ones(2, 1, 2, 2), 4, N_MAX,
                                       n_terms=0), "n_terms"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- REVIEW E (issue 11) --------------------------------------------------------------
NAN, INF = float("nan"), float("inf")
Z = torch.zeros(2, 1, 4, 4)


def _eps(value=0.0):
    return lambda x, log_snr: torch.full_like(x, value)


@pytest.mark.parametrize("value", [NAN, INF])
@pytest.mark.parametrize("call", [
    lambda m: bl.sample_gaussian(bl.EpsModel(m), (2, 1, 4, 4), 5, 4, device="cpu"),
    lambda m: bl.negative_elbo_gaussian(m, Z, 5, 4),
    lambda m: bl.bits_per_dim_gaussian(m, Z, 5, 4, n_terms=2),
])
def test_review_e_gaussian_sampler_and_bound_name_a_bad_model_output(value, call):
    # NaN eps gave -2^63 pixels from the sampler and a NaN bound.
    with pytest.raises(ValueError, match=r"model output at step \d+ must be finite"):
        call(_eps(value))


@pytest.mark.parametrize("call, match", [
    (lambda: bl.negative_elbo_gaussian(_eps(), Z + 300, 5, 255),   # gave 4.7e5 nats
     "counts must hold counts <= n_max = 255"),
    (lambda: bl.bits_per_dim_gaussian(_eps(), Z + 300, 5, 255),
     "counts must hold counts <= n_max = 255"),
    (lambda: bl.gaussian_loss(_eps(), Z + 300, 255), "counts must hold counts <="),
    (lambda: bl.gaussian_loss(_eps(), Z * NAN, 255), "counts must hold finite counts"),
    (lambda: bl.gaussian_loss(_eps(NAN), Z, 255), "model output must be finite"),
    (lambda: bl.gaussian_loss(_eps(), Z, 0), "n_max must be an integer >= 1"),
    (lambda: bl.gaussian_loss(_eps(), [1.0], 4), "counts must be a torch.Tensor"),
    (lambda: bl.negative_elbo_gaussian(_eps(), Z, 5, 0), "n_max must be an integer"),
    (lambda: bl.negative_elbo_gaussian(_eps(), Z, 5, NAN), "n_max must be an integer"),
    (lambda: bl.negative_elbo_gaussian(_eps(), torch.tensor(1.0), 5, 4),
     r"counts must have shape \[B, ...\] with B >= 1"),
    (lambda: bl.negative_elbo_gaussian(lambda x, snr: x[:1], Z, 5, 4),
     "model output at step 1 must have the shape"),
    (lambda: bl.sample_gaussian(bl.EpsModel(_eps()), (1, 1, 2, 2), 3, 0, device="cpu"),
     "n_max must be an integer >= 1"),
    (lambda: bl.sample_gaussian(bl.EpsModel(_eps()), (0, 1), 3, 4, device="cpu"),
     "shape entry must be an integer >= 1"),
    (lambda: bl.cosine_log_snr(torch.tensor([NAN])), r"u must hold values in \[0, 1\]"),
    (lambda: bl.cosine_log_snr(0.5, "ab"), "log_snr_range must be finite"),
    (lambda: bl.to_signed(torch.ones(1), 0), "n_max must be an integer >= 1"),
    (lambda: bl.to_counts(torch.tensor([NAN]), 4), "x must be finite"),
    (lambda: bl.gaussian_noising(torch.tensor([9.0]), 1.0, 4),
     "counts must hold counts <= n_max = 4"),
    (lambda: bl.discretized_gaussian_log_prob(torch.tensor([9.0]), torch.zeros(1),
                                              0.1, 4), "counts must hold counts <="),
    (lambda: bl.discretized_gaussian_log_prob(torch.ones(1), torch.zeros(1), 0.0, 4),
     "std must be > 0"),
    (lambda: bl.discretized_gaussian_log_prob(torch.ones(1), torch.tensor([NAN]),
                                              0.1, 4), "mean must be finite"),
    (lambda: bl.gaussian_objective(0), "n_max must be an integer >= 1"),
])
def test_review_e_baselines_reject_bad_input_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_review_e_sample_gaussian_runs_a_plain_function_on_the_cpu():
    x = bl.sample_gaussian(_eps(), (1, 1, 2, 2), 3, 4,
                           generator=torch.Generator().manual_seed(0))
    assert x.shape == (1, 1, 2, 2) and x.device.type == "cpu"


# --- REVIEW D.2: the bound's endpoints, checked with exact denoisers on a toy law -----
LEVELS = torch.tensor([0, 3, 8, 16])
LEVEL_PROBS = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)


ToyEps = functools.partial(bl.ExactEps, LEVELS, LEVEL_PROBS, N_MAX)


def _toy_bits(model, T, lambda_max=None, repeats=1000):
    """E_data[bits of the bound] for the toy law (exact mixture weights, MC noise)."""
    x0 = LEVELS.repeat_interleave(repeats).reshape(-1, 1, 1, 1)
    bits = bl.bits_per_dim_gaussian(model, x0, T, N_MAX, generator=gen(11),
                                    lambda_max=lambda_max).double()
    return float((LEVEL_PROBS.repeat_interleave(repeats) / repeats * bits).sum())


def test_review_d2_bound_endpoints_suit_the_bin_width():
    entropy = float(-(LEVEL_PROBS * LEVEL_PROBS.log2()).sum())  # 1.846 bits
    assert bl.LOG_SNR_RANGE[1] == pytest.approx(2 * math.log(32))   # 6.93
    smooth, exact = ToyEps(smooth=True), ToyEps()
    # Old endpoints (lambda_max = 10): the smooth denoiser pays 7.83 / 4.26 bits at
    # T = 100 / 1000 for denoising far below the bin width; new ones: 2.36 / 2.23.
    assert _toy_bits(smooth, 100, 10.0) > 6.5 and _toy_bits(smooth, 1000, 10.0) > 3.5
    assert _toy_bits(smooth, 100) < 2.5 and _toy_bits(smooth, 1000) < 2.4
    # The exact denoiser: above the entropy, 2.15 / 1.99 bits (2.04 / 1.87 with
    # lambda_max = 10: the lattice decoder at std = a quarter bin costs ~0.1 bits).
    for T, high in ((100, 2.3), (1000, 2.1)):
        assert entropy - 0.05 < _toy_bits(exact, T) < high
    # Blackout with its exact oracle on the same law: 2.01 / 1.87 bits.
    orc = oracle.Oracle(LEVELS.reshape(-1, 1, 1, 1), LEVEL_PROBS)
    x0 = LEVELS.repeat_interleave(1000).reshape(-1, 1, 1, 1)
    bits = losses.elbo_bits_per_dim(orc, x0, schedule.observation_times(100, 10.0),
                                    N_MAX, generator=gen(11)).double()
    blackout = float((LEVEL_PROBS.repeat_interleave(1000) / 1000 * bits).sum())
    assert entropy - 0.05 < blackout < 2.15
