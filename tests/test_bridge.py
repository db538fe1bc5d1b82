"""Tests of blackout_tutorial.bridge: reverse rates and the binomial bridge (Chapter
4)."""
import math

import pytest
import torch

from blackout_tutorial import bridge, oracle, process, schedule
from blackout_tutorial.evaluate import chi_square_test


def test_bridge_probability_closed_form_and_limits():
    s = torch.tensor([0.0, 0.1, 1.0, 2.0], dtype=torch.float64)
    t = torch.tensor([0.5, 0.3, 1.5, 9.0], dtype=torch.float64)
    expected = (torch.exp(-s) - torch.exp(-t)) / (1 - torch.exp(-t))
    assert torch.allclose(bridge.bridge_probability(s, t), expected, rtol=1e-12)
    assert bridge.bridge_probability(0.0, 2.0).item() == pytest.approx(1.0, abs=1e-15)
    # Tiny t: the naive formula cancels; q(t/2, t) -> 1/2 as t -> 0.
    assert bridge.bridge_probability(5e-9, 1e-8).item() == pytest.approx(0.5, rel=1e-6)


def test_step_probabilities_compose_to_the_survival_of_a_dead_unit():
    times = schedule.observation_times(50, 8.0)
    q = bridge.step_probabilities(times)
    assert q.shape == (50,) and q[0].item() == pytest.approx(1.0)
    assert bool(((q > 0) & (q <= 1)).all())
    # A unit dead at t_end stays dead down to t_j with prob prod (1 - q_k) = (1 -
    # p_j)/(1 - p_end).
    j = 10
    stays_dead = torch.prod(1 - q[j + 1:])
    p = torch.exp(-times)
    assert stays_dead.item() == pytest.approx(
        ((1 - p[j]) / (1 - p[-1])).item(), rel=1e-10
    )


def test_conditional_birth_rate_values():
    x0 = torch.tensor([[5, 3], [2, 0]])
    x_t = torch.tensor([[2, 3], [0, 0]])
    t = torch.tensor([0.5, 2.0])
    rate = bridge.conditional_birth_rate(x_t, x0, t)
    expected = torch.tensor(
        [[3 / math.expm1(0.5), 0.0], [2 / math.expm1(2.0), 0.0]], dtype=torch.float64
    )
    assert torch.allclose(rate, expected, rtol=1e-12)


def test_sample_bridge_marginalised_over_x_t_gives_the_forward_marginal():
    # x_t ~ Bin(x0, p_t), then x_s ~ bridge  =>  x_s ~ Bin(x0, p_s). Chi-square, p >
    # 1e-3.
    g = torch.Generator().manual_seed(1)
    x0 = torch.full((20000,), 12)
    s, t = 0.4, 1.3
    x_t = process.sample_forward(x0, t, generator=g)
    x_s = bridge.sample_bridge(x_t, x0, s, t, generator=g)
    assert bool((x_s >= x_t).all()) and bool((x_s <= x0).all())
    _, p_value, _ = chi_square_test(x_s, process.marginal_pmf(12, s))
    assert p_value > 1e-3


def test_marginal_birth_rate_equals_the_bayes_reverse_rate():
    # W_rev(n -> n+1) = W(n+1 -> n) P(n+1, t) / P(n, t) = (n+1) P(n+1,t)/P(n,t), data
    # mixture.
    values, probs = (
        torch.tensor([0, 2, 3, 6]),
        torch.tensor([0.1, 0.3, 0.2, 0.4], dtype=torch.float64),
    )
    orc = oracle.Oracle(values, probs)
    t = 0.8
    pmf = (probs[:, None] * process.marginal_pmf(values, t, n_max=6)).sum(0)
    n = torch.arange(6)
    bayes = (n + 1) * pmf[1:] / pmf[:-1]
    rate = bridge.marginal_birth_rate(orc, n, t)
    assert torch.allclose(rate, bayes, rtol=1e-5)


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: bridge.bridge_probability(1.0, 1.0), "s"),
        (lambda: bridge.bridge_probability(-0.1, 1.0), "t"),
        (lambda: bridge.birth_factor(0.0), "t"),
        (
            lambda: bridge.conditional_birth_rate(
                torch.tensor([3]), torch.tensor([2]), 1.0
            ),
            "x_t",
        ),
        (
            lambda: bridge.conditional_birth_rate(
                torch.tensor([-1]), torch.tensor([2]), 1.0
            ),
            "x_t",
        ),
        (
            lambda: bridge.conditional_birth_rate(
                torch.tensor([1, 1]), torch.tensor([2]), 1.0
            ),
            "shape",
        ),
        (
            lambda: bridge.conditional_birth_rate(
                torch.ones(2, 3), torch.ones(2, 3), torch.ones(3)
            ),
            "t",
        ),
        (
            lambda: bridge.sample_bridge(
                torch.tensor([1.5]), torch.tensor([2.0]), 0.1, 1.0
            ),
            "x_t",
        ),
        (lambda: bridge.step_probabilities(torch.tensor([0.5, 0.2])), "times"),
        (lambda: bridge.step_probabilities(torch.tensor([0.0, 0.2])), "times"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(call, word):
    with pytest.raises(ValueError, match=word):
        call()


# --- REVIEW E (issue 11) --------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda: bridge.bridge_probability(torch.tensor([0.0, 0.1, 0.2]),
                                       torch.tensor([1.0, 2.0])),     # was a raw crash
     r"s and t must broadcast, got shapes \(3,\) and \(2,\)"),
    (lambda: bridge.bridge_probability(math.nan, 1.0), "s must be finite"),
    (lambda: bridge.bridge_probability(0.5, math.inf), "t must be finite"),
    (lambda: bridge.bridge_probability(2.0, 1.0), "s must be < t elementwise"),
    (lambda: bridge.sample_bridge(torch.tensor([2]), torch.tensor([1]), 0.5, 1.0),
     "x_t must be <= x0"),
    (lambda: bridge.sample_bridge(torch.tensor([1.5]), torch.tensor([2]), 0.5, 1.0),
     "x_t must hold integer-valued counts"),
    (lambda: bridge.sample_bridge(torch.tensor([1]), torch.tensor([2, 2]), 0.5, 1.0),
     "x_t and x0 must have the same shape"),
    (lambda: bridge.step_probabilities("a"), "times must be a number or a tensor"),
    (lambda: bridge.step_probabilities(torch.tensor([2.0, 1.0])),
     "times must be finite, strictly increasing"),
    (lambda: bridge.birth_factor(0.0), "t must be finite and > 0"),
])
def test_review_e_bridge_rejects_bad_input_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_review_e_marginal_birth_rate_names_a_bad_model_output(value):
    with pytest.raises(ValueError, match="model output must be finite and >= 0"):
        bridge.marginal_birth_rate(lambda x, t: torch.full(x.shape, value),
                                   torch.tensor([1, 2]), 1.0)


def test_marginal_rate_of_a_two_pixel_law_is_the_discrete_score():
    # Eq. ch4-marginal-rate for an image: pixel 1's reverse birth rate from the joint
    # posterior (the oracle) equals the discrete score (n1 + 1) P(n1 + 1, n2) / P(n1,
    # n2) of the joint marginal; the rate of pixel 1 alone (its own marginal law,
    # ignoring pixel 2, with which it is correlated) does not.
    support = torch.tensor([[0, 3], [2, 1], [3, 3], [1, 0]])
    probs = torch.tensor([0.1, 0.4, 0.3, 0.2], dtype=torch.float64)
    joint_oracle = oracle.Oracle(support, probs)
    pixel1 = oracle.Oracle(torch.tensor([0, 1, 2, 3]),
                           torch.tensor([0.1, 0.2, 0.4, 0.3], dtype=torch.float64))
    n1, n2 = torch.meshgrid(torch.arange(3), torch.arange(4), indexing="ij")
    x_t = torch.stack([n1.reshape(-1), n2.reshape(-1)], -1)
    for t in (0.05, 0.3, 1.0, 3.0):
        pmf = process.marginal_pmf(support, t, n_max=3)  # [K, 2, 4]
        joint = torch.einsum("k,ka,kb->ab", probs, pmf[:, 0], pmf[:, 1])
        score = ((n1 + 1) * joint[1:] / joint[:-1]).reshape(-1)
        rate = bridge.marginal_birth_rate(joint_oracle, x_t, t)[:, 0]
        torch.testing.assert_close(rate, score, rtol=1e-6, atol=1e-12)
        alone = bridge.marginal_birth_rate(pixel1, x_t[:, 0], t)
        assert (alone - score).abs().max() > 0.1 * score.abs().max()
