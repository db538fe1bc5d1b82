"""Tests of blackout_tutorial.limits: the Feller (square-root) diffusion limit of
blackout."""
import math

import pytest
import torch
from scipy import stats

from blackout_tutorial import limits, process

P_MIN = 1e-3  # reject a statistical test only below this p-value (fixed seeds)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "omega, x0, t", [(10, 0.7, 0.3), (200, 0.25, 1.5), (3, 1.0, 4.0)]
)
def test_feller_moments_equal_scaled_binomial_moments(omega, x0, t):
    n0 = round(omega * x0)
    mean, var = limits.feller_moments(n0 / omega, t, omega)
    p = math.exp(-t)
    assert mean.item() == pytest.approx(stats.binom.mean(n0, p) / omega, rel=1e-12)
    assert var.item() == pytest.approx(stats.binom.var(n0, p) / omega ** 2, rel=1e-12)


def test_ou_moments():
    mean, var = limits.ou_moments(torch.tensor([0.5, -1.0]), 0.7)
    torch.testing.assert_close(
        mean, torch.tensor([0.5, -1.0], dtype=torch.float64) * math.exp(-0.7)
    )
    torch.testing.assert_close(
        var, torch.full((2,), 1 - math.exp(-1.4), dtype=torch.float64)
    )


@pytest.mark.parametrize("shape", [1.0, 3.5, 50.0])
def test_standard_gamma_matches_scipy(shape):
    x = limits.standard_gamma(torch.full((20000,), shape, dtype=torch.float64), gen(1))
    assert stats.kstest(x.numpy(), stats.gamma(shape).cdf).pvalue > P_MIN


def test_sample_feller_moments_and_atom_at_zero():
    omega, x0, t = 5.0, 0.4, 1.2
    x = limits.sample_feller(
        torch.full((100000,), x0, dtype=torch.float64), t, omega, gen(2)
    )
    mean, var = limits.feller_moments(x0, t, omega)
    assert abs(x.mean().item() - mean.item()) < 4 * math.sqrt(var.item() / len(x))
    assert x.var().item() == pytest.approx(var.item(), rel=0.03)
    atom = limits.extinction_probability(x0, t, omega).item()
    zeros = int((x == 0).sum())
    assert stats.binomtest(zeros, len(x), atom).pvalue > P_MIN


def test_euler_maruyama_matches_feller_and_ou_moments():
    x0 = torch.full((40000,), 0.8, dtype=torch.float64)
    _, feller = limits.simulate_feller(x0, 20.0, 1.0, 200, gen(3))
    mean, var = limits.feller_moments(0.8, 1.0, 20.0)
    # Tolerances: Monte Carlo error plus the O(dt) = O(0.005) Euler bias.
    assert feller[-1].mean().item() == pytest.approx(mean.item(), rel=0.01)
    assert feller[-1].var().item() == pytest.approx(var.item(), rel=0.05)
    assert bool((feller >= 0).all())
    _, ou = limits.simulate_ou(x0, 1.0, 200, gen(4))
    mean, var = limits.ou_moments(0.8, 1.0)
    assert (
        abs(ou[-1].mean().item() - mean.item())
        < 4 * math.sqrt(var.item() / len(x0)) + 0.002
    )
    assert ou[-1].var().item() == pytest.approx(var.item(), rel=0.03)


def test_scaled_binomial_approaches_feller_as_omega_grows():
    x0, t, distances = 0.5, 0.7, []
    for i, omega in enumerate([4, 40, 400]):
        n = process.sample_forward(
            torch.full((50000,), round(omega * x0), dtype=torch.float64), t, gen(10 + i)
        )
        exact = limits.sample_feller(
            torch.full((50000,), x0, dtype=torch.float64), t, omega, gen(20 + i)
        )
        distances.append(stats.ks_2samp((n / omega).numpy(), exact.numpy()).statistic)
    assert distances[0] > distances[1] > distances[2]
    assert distances[2] < 0.05


def test_extinction_differs_from_blackout_by_factor_two_in_exponent():
    omega, x0, t = 50.0, 0.2, 6.0
    blackout = (1 - math.exp(-t)) ** (omega * x0)
    feller = limits.extinction_probability(x0, t, omega).item()
    assert math.log(feller) / math.log(blackout) == pytest.approx(2.0, rel=0.01)


@pytest.mark.parametrize("call, match", [
    (lambda: limits.feller_moments(0.5, 1.0, 0.0), "omega"),
    (lambda: limits.feller_moments(-0.5, 1.0, 2.0), "x0"),
    (lambda: limits.feller_moments(0.5, -1.0, 2.0), "t"),
    (lambda: limits.simulate_feller(torch.tensor([-0.1]), 2.0, 1.0, 10), "x0"),
    (lambda: limits.simulate_ou(torch.tensor([0.1]), 1.0, 0), "n_steps"),
    (lambda: limits.simulate_ou([0.1], 1.0, 10), "x0"),
    (lambda: limits.sample_feller(torch.tensor([0.1]), 0.0, 2.0), "t"),
    (lambda: limits.standard_gamma(torch.tensor([0.5])), "shape"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- REVIEW E (issue 11) --------------------------------------------------------------
def test_review_e_standard_gamma_of_nan_raises_instead_of_hanging():
    import subprocess
    import sys
    code = ("import torch\nfrom blackout_tutorial import limits\n"
            "try:\n    limits.standard_gamma(torch.tensor([float('nan'), 2.0]))\n"
            "except ValueError as e:\n    print('ValueError:', e)\n")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                              text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("limits.standard_gamma(nan) hung")
    assert "ValueError: shape must be finite" in done.stdout, done.stderr


@pytest.mark.parametrize("call, match", [
    (lambda: limits.extinction_probability(-1, 1, 10), "x0 must be >= 0"),  # 113497
    (lambda: limits.extinction_probability(math.inf, 1, 10), "x0 must be finite"),
    (lambda: limits.extinction_probability(1, 1, math.inf), "omega must be a finite"),
    (lambda: limits.extinction_probability(1, 0, 10), "t must be a finite number > 0"),
    (lambda: limits.standard_gamma(torch.tensor([math.inf])), "shape must be finite"),
    (lambda: limits.standard_gamma(torch.tensor([0.5])), "shape must be >= 1"),
    (lambda: limits.sample_feller(torch.tensor([1e10]), 1.0, 1e300),  # was 0, silently
     "must hold finite Poisson means"),
    (lambda: limits.sample_feller(torch.tensor([1.0]), 1e-320, 10),
     "must hold finite Poisson means"),
    (lambda: limits.sample_feller(torch.tensor([math.nan]), 1.0, 10),
     "x0 must be finite"),
    (lambda: limits.sample_feller(torch.tensor([-1.0]), 1.0, 10), "x0 must be >= 0"),
    (lambda: limits.sample_feller(torch.tensor([1.0]), 1.0, math.nan),
     "omega must be a finite number > 0"),
    (lambda: limits.sample_feller(torch.tensor([1.0]), torch.ones(2), 10),
     "t must be a finite number > 0"),
    (lambda: limits.feller_moments(1.0, 1.0, 0), "omega must be a finite number > 0"),
    (lambda: limits.feller_moments(-1.0, 1.0, 2), "x0 must be >= 0"),
    (lambda: limits.feller_moments(1.0, math.nan, 2), "t must be finite"),
    (lambda: limits.feller_moments(torch.ones(2), torch.ones(3), 2),
     "x0 and t must broadcast"),
    (lambda: limits.ou_moments(torch.ones(2), torch.ones(3)),
     "x0 and t must broadcast"),
    (lambda: limits.ou_moments(torch.tensor([math.nan]), 1.0), "x0 must be finite"),
    (lambda: limits.euler_maruyama(torch.ones(1), lambda x: -x, lambda x: x, 1.0, 0),
     "n_steps must be an integer >= 1"),
    (lambda: limits.euler_maruyama(torch.ones(2), lambda x: torch.ones(3),
                                   lambda x: x, 1.0, 3),
     "drift output at step 0 must have the shape"),
    (lambda: limits.euler_maruyama(torch.ones(1), lambda x: x * math.nan,
                                   lambda x: x, 1.0, 3),
     "drift output at step 0 must be finite"),
    (lambda: limits.simulate_feller(torch.ones(1), math.nan, 1.0, 3),
     "omega must be a finite number > 0"),
    (lambda: limits.simulate_feller([1.0], 1, 1.0, 3), "x0 must be a torch.Tensor"),
    (lambda: limits.simulate_ou(torch.ones(1), math.inf, 3),
     "t_end must be a finite number > 0"),
])
def test_review_e_limits_reject_bad_input_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_review_e_extinction_is_one_for_an_empty_pixel_even_at_tiny_t():
    p = limits.extinction_probability(torch.tensor([0.0, 1.0]), 1e-320, 10)
    assert p.tolist() == [1.0, 0.0]
