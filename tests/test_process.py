"""Tests of blackout_tutorial.process: closed form vs scipy, vs the master equation, vs
simulation."""
import math

import pytest
import torch
from scipy import stats

from blackout_tutorial import process, schedule
from blackout_tutorial.evaluate import chi_square_test

# reject a statistical test only when its p-value falls below this (fixed seeds)
P_MIN = 1e-3


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_survival_float_and_tensor():
    assert process.survival(0.0) == 1.0
    assert process.survival(2.0) == pytest.approx(math.exp(-2.0), rel=1e-15)
    t = torch.tensor([0.0, 1.0, 15.0], dtype=torch.float64)
    torch.testing.assert_close(process.survival(t), torch.exp(-t), rtol=0, atol=0)


@pytest.mark.parametrize("n0", [0, 1, 16, 255])
def test_marginal_pmf_matches_scipy_and_sums_to_one(n0):
    times = torch.tensor(
        [0.0, 1e-12, 1e-6, 0.3, 1.0, 5.0, 15.0, 40.0], dtype=torch.float64
    )
    pmf = process.marginal_pmf(n0, times)
    assert pmf.shape == (len(times), n0 + 1) and pmf.dtype == torch.float64
    reference = stats.binom.pmf(range(n0 + 1), n0, torch.exp(-times)[:, None].numpy())
    assert (pmf - torch.from_numpy(reference)).abs().max().item() < 1e-12
    assert (pmf.sum(-1) - 1).abs().max().item() < 1e-12


def test_marginal_pmf_tiny_time_relative_accuracy():
    # P(no death among 255 units by t) = e^{-255 t}; 1 - p must not cancel for tiny t.
    t = 1e-12
    pmf = process.marginal_pmf(255, t)
    assert pmf[255].item() == pytest.approx(math.exp(-255 * t), rel=1e-14)
    assert pmf[254].item() == pytest.approx(
        255 * math.exp(-254 * t) * -math.expm1(-t), rel=1e-10
    )


def test_marginal_pmf_broadcast_and_n_max():
    n0 = torch.tensor([[3], [7], [0]])
    t = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    pmf = process.marginal_pmf(n0, t, n_max=10)
    assert pmf.shape == (3, 4, 11)
    assert pmf[0, :, 4:].abs().max().item() == 0.0          # n > n0 is impossible
    torch.testing.assert_close(pmf[1, 2], process.marginal_pmf(7, 2.0, n_max=10))


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(n0=-1, t=1.0), "n0"),
        (dict(n0=2.5, t=1.0), "n0"),
        (dict(n0=3, t=-0.1), "t"),
        (dict(n0=3, t=float("nan")), "t"),
    ],
)
def test_marginal_pmf_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        process.marginal_pmf(**bad)


def test_generator_matrix_structure():
    q = process.generator_matrix(4)
    expected = torch.tensor([[0, 1, 0, 0, 0], [0, -1, 2, 0, 0], [0, 0, -2, 3, 0],
                             [0, 0, 0, -3, 4], [0, 0, 0, 0, -4]], dtype=torch.float64)
    torch.testing.assert_close(q, expected, rtol=0, atol=0)
    assert q.sum(0).abs().max().item() == 0.0
    with pytest.raises(ValueError, match="n_max"):
        process.generator_matrix(-1)


@pytest.mark.parametrize("n0", [1, 16, 255])
def test_master_equation_matches_closed_form(n0):
    times = torch.logspace(-6, math.log10(15.0), 20, dtype=torch.float64)
    p0 = torch.zeros(n0 + 1, dtype=torch.float64)
    p0[n0] = 1.0
    numeric = process.solve_master_equation(p0, times)
    assert numeric.shape == (20, n0 + 1)
    assert (numeric - process.marginal_pmf(n0, times)).abs().max().item() < 1e-10


def test_master_equation_rhs_by_finite_difference():
    # dP/dt = (n+1) P(n+1) - n P(n), checked with a central difference on the closed
    # form.
    n0, t, h = 20, 0.7, 1e-5
    dp = (process.marginal_pmf(n0, t + h) - process.marginal_pmf(n0, t - h)) / (2 * h)
    p = process.marginal_pmf(n0, t)
    n = torch.arange(n0 + 1, dtype=torch.float64)
    rhs = torch.cat([(n[1:] * p[1:]), torch.zeros(1, dtype=torch.float64)]) - n * p
    assert (dp - rhs).abs().max().item() < 1e-8


def test_master_equation_rejects_bad_input():
    with pytest.raises(ValueError, match="p0"):
        process.solve_master_equation(torch.tensor([0.5, 0.6]), [1.0])
    with pytest.raises(ValueError, match="times"):
        process.solve_master_equation(torch.tensor([0.0, 1.0]), [-1.0])


def test_gillespie_path_structure():
    jump_times, states = process.gillespie(30, 1.0, generator=gen(1))
    assert states[0].item() == 30 and len(states) == len(jump_times) + 1
    assert bool((torch.diff(states) == -1).all())
    assert bool((torch.diff(jump_times) > 0).all()) and jump_times.max().item() <= 1.0
    assert len(process.gillespie(30, 0.0, generator=gen(1))[0]) == 0
    _, states = process.gillespie(30, 1e3, generator=gen(1))
    assert states[-1].item() == 0
    with pytest.raises(ValueError, match="n0"):
        process.gillespie(-2, 1.0)
    with pytest.raises(ValueError, match="t_end"):
        process.gillespie(3, -1.0)


def test_gillespie_final_state_is_binomial():
    n0, t_end = 12, 0.8
    g = gen(2)
    finals = torch.stack(
        [process.gillespie(n0, t_end, generator=g)[1][-1] for _ in range(3000)]
    )
    _, p_value, _ = chi_square_test(finals, process.marginal_pmf(n0, t_end))
    assert p_value > P_MIN


@pytest.mark.parametrize("method", ["lifetimes", "gillespie"])
@pytest.mark.parametrize("n0", [16, 255])
def test_simulated_paths_match_closed_form(method, n0):
    times = [0.05, 0.5, 1.5, 4.0]
    states = process.state_at_times(n0, times, 10_000, method=method, generator=gen(3))
    assert states.shape == (10_000, 4) and states.dtype == torch.long
    assert bool((torch.diff(states, dim=1) <= 0).all())  # pure death: paths never go up
    for j, t in enumerate(times):
        _, p_value, n_bins = chi_square_test(states[:, j], process.marginal_pmf(n0, t))
        assert n_bins >= 2 and p_value > P_MIN, (method, n0, t, p_value)


def test_death_times_are_sorted_and_both_methods_agree_in_law():
    for method in process.DEATH_TIME_METHODS:
        d = process.death_times(50, 4000, method, generator=gen(6))
        assert d.shape == (4000, 50) and bool((torch.diff(d, dim=1) >= 0).all())
        # The first of 50 Exp(1) lifetimes is Exp(50): mean 1/50, sd 1/50/sqrt(4000).
        assert abs(float(d[:, 0].mean()) - 0.02) < 5 * 0.02 / math.sqrt(4000)
    with pytest.raises(ValueError, match="method"):
        process.death_times(3, 2, "euler")
    with pytest.raises(ValueError, match="n_paths"):
        process.death_times(3, 0)

def test_state_at_times_rejects_bad_input():
    with pytest.raises(ValueError, match="method"):
        process.state_at_times(5, [1.0], 10, method="euler")
    with pytest.raises(ValueError, match="times"):
        process.state_at_times(5, [-1.0], 10)
    with pytest.raises(ValueError, match="n_paths"):
        process.state_at_times(5, [1.0], 0)


def test_sample_forward_mean_variance_and_law():
    n0, t, n = 200, 0.9, 20_000
    x0 = torch.full((n, 1), n0, dtype=torch.long)
    xt = process.sample_forward(x0, t, generator=gen(5)).double().reshape(-1)
    p = math.exp(-t)
    mean, var = n0 * p, n0 * p * (1 - p)
    assert abs(xt.mean().item() - mean) < 4 * math.sqrt(var / n)
    se_var = ((xt - xt.mean()) ** 2).std().item() / math.sqrt(
        n
    )  # standard error of the variance
    assert abs(xt.var().item() - var) < 4 * se_var
    assert chi_square_test(xt.long(), process.marginal_pmf(n0, t))[1] > P_MIN


def test_sample_forward_per_sample_times_and_dtypes():
    x0 = torch.randint(0, 256, (4, 3, 8, 8), generator=gen(6)).to(torch.uint8)
    t = torch.tensor([0.0, 0.5, 3.0, 60.0])
    xt = process.sample_forward(x0, t, generator=gen(7))
    assert xt.dtype == torch.uint8 and xt.shape == x0.shape
    assert (
        torch.equal(xt[0], x0[0]) and int(xt[3].max()) == 0 and bool((xt <= x0).all())
    )
    # Each image's mean survival is close to its own e^{-t} (768 pixels, ~127 units
    # each).
    frac = xt[1].double().sum() / x0[1].double().sum()
    assert abs(frac.item() - math.exp(-0.5)) < 0.01
    for dtype in (torch.long, torch.float32, torch.float64):
        out = process.sample_forward(x0.to(dtype), 1.0, generator=gen(8))
        assert out.dtype == dtype
    same = [process.sample_forward(x0, t, generator=gen(9)) for _ in range(2)]
    assert torch.equal(*same)


def _old_float32_sample_forward(x0, t, generator):
    """The sampler before REVIEW C.3 (negative control): survival e^{-t} in float32."""
    counts = x0.to(torch.float32)
    p = torch.exp(-torch.as_tensor(t, dtype=torch.float32))
    return torch.binomial(counts, p.expand_as(counts).contiguous(), generator=generator)


def _death_z(sampler, x0, t, seed):
    """z-score of the total number of deaths against Binomial(sum x0, 1 - e^{-t})."""
    deaths = (x0.double() - sampler(x0, t, generator=gen(seed)).double()).sum().item()
    n, q = x0.double().sum().item(), -math.expm1(-t)
    return (deaths - n * q) / math.sqrt(n * q * (1 - q))


@pytest.mark.parametrize("k", [0, 1])
@pytest.mark.parametrize("dtype", [torch.int64, torch.float32])
def test_sample_forward_death_rate_at_the_first_grid_times(k, dtype):
    # t_0 = 3.06e-7 and t_1 = 3.15e-7 of the T = 1000, t_end = 15 grid. 2e5 pixels of
    # 2^24 units (exact in float32) give about 1e6 expected deaths, so the z-test
    # resolves 1 - p to 0.1%; the float32 survival is 2.5% (t_0) and 5.4% (t_1) off.
    t = schedule.observation_times(1000, 15.0)[k].item()
    x0 = torch.full((200_000,), 2**24, dtype=dtype)
    z_max = stats.norm.isf(P_MIN / 2)  # two-sided test at level P_MIN: |z| < 3.29
    assert abs(_death_z(process.sample_forward, x0, t, seed=10 + k)) < z_max
    # Negative control: the same test rejects the old float32 sampler (|z| > 20).
    assert abs(_death_z(_old_float32_sample_forward, x0, t, seed=10 + k)) > z_max


@pytest.mark.parametrize("x0, t, match", [
    (torch.tensor([[1, -1]]), 0.5, "x0"),
    (torch.tensor([[1.5, 2.0]]), 0.5, "x0"),
    (torch.tensor([[1, 2]]), -0.5, "t"),
    (torch.tensor([[1, 2], [3, 4]]), torch.tensor([0.1, 0.2, 0.3]), "t"),
    (torch.tensor([[1, 2], [3, 4]]), torch.ones(2, 2), "t"),
    ([[1, 2]], 0.5, "x0"),
])
def test_sample_forward_rejects_bad_input(x0, t, match):
    with pytest.raises(ValueError, match=match):
        process.sample_forward(x0, t)


# --- REVIEW E (issue 11) --------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda: process.sample_forward(torch.tensor([3, 2]), math.inf),   # was silent
     "t must be finite"),
    (lambda: process.sample_forward(torch.tensor([3]), math.nan), "t must be finite"),
    (lambda: process.sample_forward(torch.tensor([math.nan]), 1.0),
     "x0 must hold finite counts"),
    (lambda: process.sample_forward(torch.tensor([1.5]), 1.0),
     "x0 must hold integer-valued counts"),
    (lambda: process.sample_forward(torch.tensor([-1]), 1.0),
     "x0 must hold non-negative counts"),
    (lambda: process.sample_forward(torch.tensor([True]), 1.0),
     "x0 must hold real numbers"),
    (lambda: process.sample_forward(torch.tensor([3, 2]), torch.ones(3)),
     r"t must be a scalar or have shape \[B\]"),
    (lambda: process.solve_master_equation(torch.tensor([math.nan, 1.0]), [1.0]),
     "p0 must be finite"),                                            # was accepted
    (lambda: process.solve_master_equation(torch.tensor([1.0, 1.0]), [1.0]),
     "p0 must be a probability vector"),
    (lambda: process.solve_master_equation(torch.tensor([1.5, -0.5]), [1.0]),
     "p0 must be a probability vector"),
    (lambda: process.solve_master_equation(torch.tensor([[1.0, 0.0]]), [1.0]),
     "p0 must be a non-empty 1-D probability vector"),
    (lambda: process.solve_master_equation(torch.tensor([1.0, 0.0]), "a"),
     "times must be a number or a tensor"),
    (lambda: process.marginal_pmf(math.inf, 1.0), "n0 must hold finite counts"),
    (lambda: process.marginal_pmf(3, math.inf), "t must be finite"),
    (lambda: process.marginal_pmf(torch.tensor([1, 2, 3]), torch.tensor([1.0, 2.0])),
     r"n0 and t must broadcast, got shapes \(3,\) and \(2,\)"),
    (lambda: process.marginal_pmf("3", 1.0), "n0 must be a number or a tensor"),
    (lambda: process.marginal_pmf(None, 1.0), "n0 must be a number or a tensor"),
    (lambda: process.marginal_pmf(3, 1.0, math.nan), "n_max must be an integer >= 0"),
    (lambda: process.generator_matrix(math.nan), "n_max must be an integer >= 0"),
    (lambda: process.generator_matrix(math.inf), "n_max must be an integer >= 0"),
    (lambda: process.generator_matrix(-1), "n_max must be an integer >= 0"),
    (lambda: process.survival("a"), "t must be a number or a tensor"),
    (lambda: process.survival(None), "t must be a number or a tensor"),
    (lambda: process.gillespie(3, math.inf), "t_end must be a finite number"),
    (lambda: process.state_at_times(3, [math.nan], 2), "times must be finite"),
])
def test_review_e_process_rejects_bad_input_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()
