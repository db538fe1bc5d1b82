"""Tests of blackout_tutorial.schedule: observation times and loss weights."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from blackout_tutorial import schedule


@pytest.mark.parametrize("T, t_end", [(1000, 15.0), (2, 10.0), (37, 3.0)])
def test_observation_times_uniform_in_logit(T, t_end):
    t = schedule.observation_times(T, t_end)
    assert t.shape == (T,) and t.dtype == torch.float64
    assert t[-1].item() == t_end
    assert bool((torch.diff(t) > 0).all())
    p = torch.exp(-t)
    logit = torch.log(p) - torch.log(-torch.expm1(-t))
    L = math.log(math.expm1(t_end))
    expected = L * (1 - 2 * torch.arange(T, dtype=torch.float64) / (T - 1))
    assert (logit - expected).abs().max().item() < 1e-9
    assert t[0].item() == pytest.approx(math.log1p(1 / math.expm1(t_end)), rel=1e-12)


def test_observation_times_paper_values():
    t = schedule.observation_times()
    assert t[0].item() == pytest.approx(math.exp(-15.0), rel=1e-6)
    assert math.exp(-t[-1].item()) == pytest.approx(3.059e-7, rel=1e-3)


@pytest.mark.parametrize(
    "bad",
    [
        dict(T=1),
        dict(T=2.5),
        dict(t_end=0.0),
        dict(t_end=-1.0),
        dict(t_end=float("inf")),
    ],
)
def test_observation_times_rejects_bad_input(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        schedule.observation_times(**bad)


def test_official_finite_weights_telescope():
    t = schedule.observation_times(1000, 15.0)
    w = schedule.loss_weights(t, "official", "finite")
    # E_k[w_k] = sum_k (p_{k-1} - p_k) = 1 - p_{T-1}.
    assert w.mean().item() == pytest.approx(1 - math.exp(-15.0), rel=1e-12)


def test_instantaneous_weights_are_riemann_sums():
    # Official: E_k[w_k] ~ int_0^t_end e^{-t} dt; ELBO (k >= 1): ~ int_{t_0}^{t_end} dt
    # / (e^t - 1).
    errors = []
    for T in (1000, 8000):
        t = schedule.observation_times(T, 15.0)
        official = schedule.loss_weights(t, "official", "instantaneous").mean().item()
        errors.append(abs(official - (1 - math.exp(-15.0))))
        elbo = schedule.loss_weights(t, "elbo", "instantaneous")[1:].sum().item() / T
        exact = math.log(-math.expm1(-15.0)) - math.log(-math.expm1(-t[0].item()))
        assert elbo == pytest.approx(exact, rel=2e-2)
    assert errors[0] < 1e-2 and errors[1] < errors[0] / 4  # first-order convergence


def test_official_weights_are_elbo_weights_times_one_minus_p():
    t = schedule.observation_times(200, 10.0)
    one_minus_p = -torch.expm1(-t)
    for variant in schedule.VARIANTS:
        official = schedule.loss_weights(t, "official", variant)
        elbo = schedule.loss_weights(t, "elbo", variant)
        torch.testing.assert_close(official, elbo * one_minus_p, rtol=1e-12, atol=0)


def test_finite_weights_explicit_values():
    t = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    p = torch.exp(-t)
    p_prev = torch.cat([torch.ones(1, dtype=torch.float64), p[:-1]])
    torch.testing.assert_close(
        schedule.loss_weights(t, "elbo", "finite"), 3 * (p_prev - p) / (1 - p)
    )
    torch.testing.assert_close(
        schedule.loss_weights(t, "official", "instantaneous"),
        3 * p * torch.tensor([0.5, 0.5, 1.0], dtype=torch.float64),
    )


@pytest.mark.parametrize(
    "times, kwargs, match",
    [
        ([0.1, 0.3, 0.2], {}, "times"),
        ([0.0, 0.3], {}, "times"),
        ([[0.1, 0.2]], {}, "times"),
        ([0.1, 0.2], dict(kind="dsm"), "kind"),
        ([0.1, 0.2], dict(variant="midpoint"), "variant"),
    ],
)
def test_loss_weights_rejects_bad_input(times, kwargs, match):
    with pytest.raises(ValueError, match=match):
        schedule.loss_weights(torch.tensor(times, dtype=torch.float64), **kwargs)


def test_sample_time_indices_uniform():
    k = schedule.sample_time_indices(
        50_000, 10, generator=torch.Generator().manual_seed(0)
    )
    assert k.dtype == torch.long and k.min().item() >= 0 and k.max().item() <= 9
    assert stats.chisquare(torch.bincount(k, minlength=10).numpy()).pvalue > 1e-3
    with pytest.raises(ValueError, match="batch"):
        schedule.sample_time_indices(0, 10)
    with pytest.raises(ValueError, match="T"):
        schedule.sample_time_indices(4, 0)


def test_logit_survival_matches_closed_form_and_is_stable():
    t = torch.tensor([1e-6, 0.1, 1.0, 10.0, 50.0], dtype=torch.float64)
    expected = -np.log(np.expm1(t.numpy()[:4]))
    np.testing.assert_allclose(
        schedule.logit_survival(t)[:4].numpy(), expected, rtol=1e-10
    )
    assert schedule.logit_survival(t)[4].item() == pytest.approx(-50.0, abs=1e-12)


def test_importance_grid_keeps_the_expected_loss():
    times = schedule.observation_times(1000, 10.0)
    weights = schedule.loss_weights(times)
    grid_t, grid_w = schedule.training_grid(times, weights, "importance")
    f = torch.sin(times) + times ** 2 / 10                        # any per-time loss
    g = torch.sin(grid_t) + grid_t ** 2 / 10
    # E_uniform[w f] on both grids agree up to the 1/(16 T) rounding of the
    # probabilities.
    assert (grid_w * g).mean().item() == pytest.approx(
        (weights * f).mean().item(), rel=1e-4
    )
    assert torch.all(grid_w == grid_w[0]) and bool((torch.diff(grid_t) >= 0).all())
    assert schedule.training_grid(times, weights, "uniform")[0] is times
    with pytest.raises(ValueError, match="time_sampling"):
        schedule.training_grid(times, weights, "stratified")
