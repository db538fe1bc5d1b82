"""Tests of blackout_tutorial.immigration: birth-death with immigration, forward and
reverse."""
import numpy as np
import pytest
import torch
from scipy import stats

from blackout_tutorial import bridge, process, schedule
from blackout_tutorial import immigration as im
from blackout_tutorial.evaluate import chi_square_test

P_MIN = 1e-3


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_generator_matrix_structure():
    q = im.generator_matrix(5, 2.0)
    assert torch.allclose(q.sum(0), torch.zeros(6, dtype=torch.float64))
    assert q[3, 2] == 2.0 and q[1, 2] == 2.0 and q[2, 2] == -4.0
    assert q[5, 5] == -5.0          # no arrivals out of the truncated top state
    torch.testing.assert_close(im.generator_matrix(4, 0.0), process.generator_matrix(4))


@pytest.mark.parametrize("n0, lam, t", [(10, 3.0, 0.4), (0, 5.0, 1.0), (7, 0.5, 3.0)])
def test_closed_form_matches_master_equation_and_scipy(n0, lam, t):
    n_max = 60
    p0 = torch.zeros(n_max + 1, dtype=torch.float64)
    p0[n0] = 1
    numeric = im.solve_master_equation(p0, [t], lam)[0]
    closed = im.marginal_pmf(n0, t, lam, n_max)
    assert (numeric - closed).abs().max().item() < 1e-10
    p = np.exp(-t)
    reference = np.convolve(
        stats.binom.pmf(range(n0 + 1), n0, p),
        stats.poisson.pmf(range(n_max + 1), lam * (1 - p)),
    )[: n_max + 1]
    assert np.abs(closed.numpy() - reference).max() < 1e-12


def test_stationary_law_is_poisson():
    p0 = torch.zeros(41, dtype=torch.float64)
    p0[12] = 1
    late = im.solve_master_equation(p0, [30.0], 4.0)[0]
    assert (late - im.stationary_pmf(4.0, 40)).abs().max().item() < 1e-10
    assert (
        im.stationary_pmf(4.0, 40) - torch.from_numpy(stats.poisson.pmf(range(41), 4.0))
    ).abs().max() < 1e-14


def test_no_immigration_is_blackout():
    torch.testing.assert_close(
        im.marginal_pmf(6, 0.8, 0.0, 6), process.marginal_pmf(6, 0.8)
    )


def test_sample_forward_matches_marginal():
    x0 = torch.full((20000,), 8)
    x, survivors = im.sample_forward(x0, 0.6, 3.0, gen(1))
    assert bool((survivors <= x0).all()) and bool((survivors <= x).all())
    _, p_value, _ = chi_square_test(x, im.marginal_pmf(8, 0.6, 3.0, int(x.max())))
    assert p_value > P_MIN
    _, p_value, _ = chi_square_test(survivors, process.marginal_pmf(8, 0.6))
    assert p_value > P_MIN


def test_reverse_rates_equal_pmf_ratios():
    x0, t, lam = 6, 0.7, 2.5
    n = torch.arange(0, 15)
    dead, immigrants = im.latent_posterior_means(n, x0, t, lam)
    up, down = im.reverse_rates(dead, immigrants, t, lam)
    pmf = im.marginal_pmf(x0, t, lam, 16)
    torch.testing.assert_close(up, (n + 1) * pmf[n + 1] / pmf[n], rtol=1e-10, atol=0)
    torch.testing.assert_close(
        down[1:], lam * pmf[n[1:] - 1] / pmf[n[1:]], rtol=1e-10, atol=0
    )
    assert down[0].item() == 0.0


def test_reverse_rates_without_immigration_are_blackout_rates():
    n = torch.arange(0, 6)
    dead, immigrants = im.latent_posterior_means(n, 5, 0.9, 0.0)
    up, down = im.reverse_rates(dead, immigrants, 0.9, 0.0)
    torch.testing.assert_close(
        up, bridge.conditional_birth_rate(n, torch.full_like(n, 5), 0.9)
    )
    assert bool((down == 0).all())


def test_reverse_sampler_recovers_data_law():
    probs = torch.tensor([0.3, 0, 0, 0, 0.2, 0, 0, 0, 0.5], dtype=torch.float64)
    out = im.sample_reverse(
        probs, 2.0, schedule.observation_times(100, 8.0), 4000, gen(2)
    )
    freq = torch.bincount(out, minlength=40)[:9].double() / len(out)
    assert 0.5 * ((freq - probs).abs().sum() + (1 - freq.sum())).item() < 0.03


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: im.generator_matrix(3, -1.0), "lam"),
        (lambda: im.marginal_pmf(-1, 1.0, 1.0, 5), "n0"),
        (lambda: im.marginal_pmf(2, -1.0, 1.0, 5), "t"),
        (lambda: im.latent_posterior_means(torch.tensor([3]), 2, 0.0, 1.0), "t"),
        (
            lambda: im.latent_posterior_means(torch.tensor([3]), 2, 1.0, 0.0),
            "reachable",
        ),
        (
            lambda: im.sample_reverse(torch.tensor([0.5, 0.6]), 1.0, [0.1, 1.0], 10),
            "data_probs",
        ),
        (
            lambda: im.sample_reverse(torch.tensor([0.5, 0.5]), 1.0, [1.0, 0.1], 10),
            "times",
        ),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- REVIEW E (issue 11) --------------------------------------------------------------
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("call, match", [
    (lambda: im.solve_master_equation(torch.tensor([NAN, 1.0]), [1.0], 1.0),
     "p0 must be finite"),                                   # any p0 was accepted
    (lambda: im.solve_master_equation(torch.tensor([1.0, 1.0]), [1.0], 1.0),
     "p0 must be a probability vector"),
    (lambda: im.solve_master_equation(torch.tensor([1.5, -0.5]), [1.0], 1.0),
     "p0 must be a probability vector"),
    (lambda: im.solve_master_equation(torch.tensor([1.0, 0.0]), [1.0], NAN),
     "lam .* must be a finite number >= 0"),
    (lambda: im.generator_matrix(NAN, 1.0), "n_max must be an integer >= 0"),
    (lambda: im.poisson_pmf(NAN, 3), "mean must be finite"),
    (lambda: im.poisson_pmf(-1.0, 3), "mean must be >= 0"),
    (lambda: im.poisson_pmf(1.0, 1.5), "n_max must be an integer >= 0"),
    (lambda: im.stationary_pmf(1.0, -1), "n_max must be an integer >= 0"),
    (lambda: im.marginal_pmf(2, NAN, 1.0, 4), "t must be finite"),
    (lambda: im.marginal_pmf(2, 1.0, INF, 4), "lam .* must be a finite number"),
    (lambda: im.sample_forward(torch.tensor([3, 1]), 1.0, 1e300),   # was -2^63
     "immigrants' Poisson mean.* must hold finite Poisson means"),
    (lambda: im.sample_forward(torch.tensor([NAN]), 1.0, 1.0), "x0 must hold finite"),
    (lambda: im.sample_forward(torch.tensor([3]), INF, 1.0), "t must be finite"),
    (lambda: im.latent_posterior_means(torch.tensor([NAN]), 2, 1.0, 1.0),
     "n must hold finite counts"),
    (lambda: im.reverse_rates(torch.tensor([NAN]), torch.ones(1), 1.0, 1.0),
     "dead_mean must be finite"),
    (lambda: im.reverse_rates(torch.tensor([-1.0]), torch.ones(1), 1.0, 1.0),
     "dead_mean must be >= 0"),
    (lambda: im.reverse_rates(torch.ones(2), torch.ones(3), 1.0, 1.0),
     "dead_mean and immigrant_mean must broadcast"),
    (lambda: im.sample_reverse(torch.tensor([0.5, 0.6]), 1.0,
                               schedule.observation_times(10, 5.0), 3),
     "data_probs must be a probability vector"),
    (lambda: im.sample_reverse(torch.tensor([0.5, 0.5]), 1e12,
                               schedule.observation_times(10, 5.0), 3),
     "lam = 1e\\+12 and times need .* more than MAX_TABLE"),
])
def test_review_e_immigration_rejects_bad_input_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()
