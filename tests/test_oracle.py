"""Tests of blackout_tutorial.oracle: the exact rate model of a finite data distribution
(Chapters 4-6)."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from blackout_tutorial import oracle


@pytest.fixture(scope="module")
def toy():
    support, probs = oracle.toy_distribution()
    return oracle.Oracle(support, probs)


def test_log_likelihood_matches_scipy(toy):
    x = torch.tensor(
        [[[[0, 1, 0], [2, 3, 1], [0, 2, 0]]], [[[1, 0, 0], [0, 2, 0], [0, 0, 1]]]]
    )
    t = torch.tensor([0.7, 1.9])
    got = toy.log_likelihood(x, t)
    for b in range(2):
        for k in range(5):
            ref = stats.binom.logpmf(
                x[b].numpy().ravel(), toy.support[k].numpy().ravel(), math.exp(-t[b])
            ).sum()
            assert (
                got[b, k].item() == pytest.approx(ref, rel=1e-10)
                if np.isfinite(ref)
                else got[b, k].item() == -math.inf
            )


def test_prediction_is_the_brute_force_posterior_mean(toy):
    x = torch.tensor([[[[0, 1, 0], [1, 2, 1], [0, 1, 0]]]]).float()
    t = 1.1
    lik = torch.tensor(
        [
            stats.binom.pmf(
                x[0].numpy().ravel(), s.numpy().ravel(), math.exp(-t)
            ).prod()
            for s in toy.support
        ],
        dtype=torch.float64,
    )
    post = lik * toy.probs / (lik * toy.probs).sum()
    assert torch.allclose(toy.posterior(x, t)[0], post, atol=1e-12)
    expected = (
        post[:, None] * (toy.support.reshape(5, -1).double() - x.reshape(1, -1))
    ).sum(0)
    assert torch.allclose(
        toy(x, torch.tensor([t]))[0].reshape(-1).double(), expected, atol=1e-5
    )


def test_limits_in_time_and_off_support(toy):
    x0 = toy.support.float()
    # Right after t = 0 nothing has died yet: the oracle predicts (almost) no dead
    # units.
    assert toy(x0, torch.full((5,), 1e-8)).abs().max().item() < 1e-6
    # At large t everything is dead: the prediction is the data mean.
    black = torch.zeros(1, 1, 3, 3)
    mean = (toy.probs[:, None] * toy.support.reshape(5, -1).double()).sum(0)
    assert torch.allclose(
        toy(black, torch.tensor([20.0])).reshape(-1).double(), mean, atol=1e-5
    )
    # No support image can fade to this one (a 4 where every image has at most 3): no
    # births.
    impossible = torch.zeros(1, 1, 3, 3)
    impossible[0, 0, 0, 2] = 4
    assert toy(impossible, torch.tensor([1.0])).abs().max().item() == 0.0


def test_entropy_sampling_and_total_variation(toy):
    assert toy.entropy() == pytest.approx(stats.entropy(toy.probs.numpy()), rel=1e-12)
    assert toy.entropy_bits_per_dim() == pytest.approx(
        toy.entropy() / (9 * math.log(2))
    )
    g = torch.Generator().manual_seed(0)
    draws = toy.sample(20000, generator=g)
    freq, outside = toy.empirical_probs(draws)
    assert outside == 0.0
    assert toy.total_variation(draws) < 0.02  # sampling noise is about 0.006 here
    assert toy.total_variation(torch.zeros(10, 1, 3, 3)) == pytest.approx(
        1.0
    )  # all outside
    assert toy.total_variation(toy.support[:1].repeat(10, 1, 1, 1)) == pytest.approx(
        0.7
    )


@pytest.mark.parametrize("call, word", [
    (lambda: oracle.Oracle(torch.tensor([[1, 2], [1, 2]])), "support"),
    (lambda: oracle.Oracle(torch.tensor([1, 2]), torch.tensor([0.5, 0.6])), "probs"),
    (lambda: oracle.Oracle(torch.tensor([1, 2]), torch.tensor([1.0])), "probs"),
    (lambda: oracle.Oracle(torch.tensor([-1, 2])), "support"),
    (lambda: oracle.Oracle(torch.tensor([[1, 2]]))(torch.zeros(3, 3), 1.0), "x_t"),
    (lambda: oracle.Oracle(torch.tensor([[1, 2]]))(torch.zeros(3, 2), -1.0), "t"),
])
def test_bad_inputs_raise_value_error_naming_the_argument(call, word):
    with pytest.raises(ValueError, match=word):
        call()


# --- REVIEW E (issue 11) --------------------------------------------------------------
def _toy():
    return oracle.Oracle(*oracle.toy_distribution())


@pytest.mark.parametrize("call, match", [
    (lambda o: o(torch.zeros(1, 1, 3, 3), math.nan), "t must be finite"),  # was zeros
    (lambda o: o(torch.zeros(1, 1, 3, 3), math.inf), "t must be finite"),
    (lambda o: o(torch.zeros(2, 1, 3, 3), torch.ones(3)), r"t must be a scalar or"),
    (lambda o: o(torch.full((1, 1, 3, 3), math.nan), 1.0), "x_t must hold finite"),
    (lambda o: o(torch.full((1, 1, 3, 3), -1.0), 1.0), "x_t must hold non-negative"),
    (lambda o: o(torch.full((1, 1, 3, 3), 1.5), 1.0), "x_t must hold integer-valued"),
    (lambda o: o(torch.zeros(1, 3, 3), 1.0), r"x_t must have shape \[B, \*\(1, 3, 3\)"),
    (lambda o: o.sample(-1), "n must be an integer >= 1"),
    (lambda o: o.sample(1.5), "n must be an integer >= 1"),
    (lambda o: o.sample("a"), "n must be an integer >= 1"),
    (lambda o: o.total_variation(torch.full((2, 1, 3, 3), math.nan)),
     "samples must hold finite counts"),
    (lambda o: o.total_variation(torch.zeros(0, 1, 3, 3)),
     "samples must hold at least one image"),
])
def test_review_e_oracle_rejects_bad_input_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call(_toy())


@pytest.mark.parametrize("probs, match", [
    (torch.full((5,), math.nan), "probs must be finite"),
    (torch.full((5,), 0.4), "probs must be a probability vector"),
    (torch.tensor([1.2, -0.2, 0.0, 0.0, 0.0]), "probs must be a probability vector"),
    (torch.tensor([1.0]), r"probs must have shape \[K\] = \[5\]"),
])
def test_review_e_oracle_checks_its_probabilities(probs, match):
    with pytest.raises(ValueError, match=match):
        oracle.Oracle(oracle.toy_distribution()[0], probs.double())


# --- exact one-pixel ELBO and likelihood (issue 13) -----------------------------------
def test_model_nll_exact_matches_simulated_model_chains():
    from blackout_tutorial import schedule
    from blackout_tutorial.bridge import step_probabilities
    orc = oracle.Oracle(torch.tensor([[0], [3], [6]]), torch.tensor([0.3, 0.5, 0.2]))
    times = schedule.observation_times(30, 5.0)
    law = torch.exp(-oracle.model_nll_exact(orc, torch.arange(7), times, 6))
    # The model's own chain, simulated: Poisson prior, then Poisson(y_hat q_k) births.
    gen, q = torch.Generator().manual_seed(0), step_probabilities(times)
    n = 40000
    x = torch.poisson(torch.full((n, 1), 3 * math.exp(-5.0)), generator=gen)
    for k in reversed(range(30)):
        x = x + torch.poisson(orc(x, times[k]).double().clamp_min(1e-12) * q[k],
                              generator=gen).float()
    freq = torch.stack([(x[:, 0] == v).double().mean() for v in range(7)])
    se = torch.sqrt(law * (1 - law) / n)
    assert (torch.abs(freq - law) < 4 * se + 2e-4).all()
    assert float((x > 6).double().mean()) == pytest.approx(1 - float(law.sum()),
                                                          abs=4 * math.sqrt(0.05 / n))


@pytest.mark.parametrize("call, match", [
    (lambda o, g: oracle.exact_negative_elbo(o, [9], g, 8), "x0_values must hold"),
    (lambda o, g: oracle.model_nll_exact(o, [1], g, 0), "n_max must be an integer"),
    (lambda o, g: oracle.model_nll_exact(oracle.Oracle(torch.ones(2, 2).long()
                                                       .cumsum(0)), [1], g, 8),
     "one-pixel model"),
    (lambda o, g: oracle.exact_negative_elbo(o, [1], g, 8, prior_count=0),
     "prior_count must be a finite number > 0"),
])
def test_exact_one_pixel_functions_reject_bad_input_by_name(call, match):
    from blackout_tutorial import schedule
    orc = oracle.Oracle(torch.tensor([[0], [3]]))
    with pytest.raises(ValueError, match=match):
        call(orc, schedule.observation_times(5, 3.0))
