"""Tests of blackout_tutorial.schedule: observation times and loss weights."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from blackout_tutorial import bridge, schedule


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
    # No factor T (REVIEW C.2): sum_k w_k = sum_k (p_{k-1} - p_k) = 1 - p_{T-1}.
    assert w.sum().item() == pytest.approx(1 - math.exp(-15.0), rel=1e-12)
    p = torch.exp(-t)
    p_prev = torch.cat([torch.ones(1, dtype=torch.float64), p[:-1]])
    torch.testing.assert_close(w, p_prev - p, rtol=1e-12, atol=1e-15)
    # The old weights (T times these) fail the same check.
    assert not torch.allclose(1000 * w, p_prev - p, rtol=1e-3)


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
        scale = 1 / t.numel() if variant == "finite" else 1.0  # official finite: no T
        torch.testing.assert_close(official, elbo * one_minus_p * scale, rtol=1e-12,
                                   atol=0)


def test_elbo_finite_weights_are_T_times_the_bridge_probabilities():
    # An identity that does not follow from the code of loss_weights: q_k comes from
    # bridge.step_probabilities, (p_{k-1} - p_k) / (1 - p_k), computed there.
    for T, t_end in ((1000, 15.0), (200, 10.0), (7, 3.0)):
        t = schedule.observation_times(T, t_end)
        w = schedule.loss_weights(t, "elbo", "finite")
        q = bridge.step_probabilities(t)
        torch.testing.assert_close(w, T * q, rtol=1e-13, atol=1e-15)
        # It fails for a wrong weight: the official finite weights times T.
        official = T * schedule.loss_weights(t, "official", "finite")
        assert not torch.allclose(official, T * q, rtol=1e-3)


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


# --- REVIEW E (issue 11) --------------------------------------------------------------
@pytest.mark.parametrize("t_end", [0.70, 1.0, 15.0, 699.0, 700.0, 710.0, 745.0])
def test_review_e_observation_times_increase_for_every_valid_t_end(t_end):
    # t_end >= ~710 overflowed math.expm1; the grid now uses ln(e^x - 1) = x +
    # ln(1 - e^-x) there and stays increasing, above 0 and ending at t_end exactly.
    t = schedule.observation_times(10, t_end)
    assert t.dtype == torch.float64 and t[-1].item() == t_end and t[0].item() > 0
    assert bool((torch.diff(t) > 0).all())


def test_review_e_observation_times_keep_the_official_values():
    t_end, T = 15.0, 1000
    L = math.log(math.expm1(t_end))
    k = np.arange(T)
    official = np.log1p(np.exp(-L * (1 - 2 * k / (T - 1))))
    np.testing.assert_allclose(schedule.observation_times(T, t_end).numpy()[:-1],
                               official[:-1], rtol=1e-14)


@pytest.mark.parametrize("T, t_end, match", [
    (10, 0.5, r"t_end must be > ln 2"),          # was a decreasing grid
    (10, 1e-300, r"t_end must be > ln 2"),       # was 690 -> 1e-300
    (10, math.log(2), r"t_end must be > ln 2"),  # was a constant grid
    (10, 800.0, r"t_end = 800.0 gives no strictly increasing float64 grid"),
    (10, 1e6, r"t_end = 1000000.0 gives no strictly increasing"),
    (10, "abc", "t_end must be a finite number > 0"),
    (10, None, "t_end must be a finite number > 0"),
    (10, True, "t_end must be a finite number > 0"),
    (10, math.nan, "t_end must be a finite number > 0"),
    (10, math.inf, "t_end must be a finite number > 0"),
    ("abc", 5.0, "T must be an integer >= 2"),
    (None, 5.0, "T must be an integer >= 2"),
    (True, 5.0, "T must be an integer >= 2"),
    (math.nan, 5.0, "T must be an integer >= 2"),
    (2.5, 5.0, "T must be an integer >= 2"),
    (1, 5.0, "T must be an integer >= 2"),
])
def test_review_e_observation_times_rejects_by_name(T, t_end, match):
    with pytest.raises(ValueError, match=match):
        schedule.observation_times(T, t_end)


def test_review_e_schedule_helpers_name_their_arguments():
    t = schedule.observation_times(10, 5.0)
    w = schedule.loss_weights(t)
    cases = [
        (lambda: schedule.loss_weights("abc"), "times must be a number or a tensor"),
        (lambda: schedule.sample_time_indices("a", 3), "batch must be an integer"),
        (lambda: schedule.sample_time_indices(None, 3), "batch must be an integer"),
        (lambda: schedule.training_grid(t, w, "importance", 0),
         "resolution must be an integer >= 1"),
        (lambda: schedule.training_grid(t, -w, "importance"), "weights must be >= 0"),
        (lambda: schedule.training_grid(t, w * math.nan, "importance"),
         "weights must be finite"),
        (lambda: schedule.training_grid(t, w[:3], "importance"),
         "times and weights must be 1-D of the same length"),
        (lambda: schedule.training_grid(t, w * 0, "importance"),
         "weights must not all be 0"),
        (lambda: schedule.training_grid(t, w, "nope"), "time_sampling must be one of"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
    assert schedule.logit_survival(1.0).item() == pytest.approx(-math.log(math.e - 1))


def test_elbo_weight_is_the_path_kl_rate_of_two_birth_processes():
    # Eq. ch5-path-kl, checked without the package's weights: over a short step h down
    # from t the true births (one pixel, y missing units) are Binomial(y, q); a model
    # birth process at the frozen rate y_hat p/(1-p) gives Poisson(-y_hat log(1 - q)).
    # Their KL per unit time tends to p_t/(1-p_t) times the Bregman divergence (h =
    # 1e-4 t: the rate varies on the scale t, so the error is about h / (2 t)).
    y, y_hat = 3, 1.7
    bregman = y_hat - y + y * math.log(y / y_hat)
    grid = schedule.observation_times(1000, 15.0)
    for k in (100, 300, 500):  # t = 3e-5, 2.5e-3, 0.70: where 1 - p_t < 1/2
        t = grid[k].item()
        h = 1e-4 * t
        q = (math.exp(-(t - h)) - math.exp(-t)) / -math.expm1(-t)
        j = np.arange(y + 1)
        kl = float(np.sum(stats.binom.pmf(j, y, q) * (
            stats.binom.logpmf(j, y, q)
            - stats.poisson.logpmf(j, -y_hat * math.log1p(-q)))))
        rate = kl / h / bregman
        per_time = {kind: (schedule.loss_weights(grid, kind)[k]
                           / (1000 * (grid[k] - grid[k - 1]))).item()
                    for kind in schedule.KINDS}
        assert rate == pytest.approx(per_time["elbo"], rel=1e-3)
        # The official weight density p_t (a factor 1 - p_t smaller) fails it.
        assert per_time["official"] != pytest.approx(rate, rel=1e-2)
