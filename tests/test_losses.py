"""Tests of blackout_tutorial.losses: the Poisson-type loss and the ELBO (Chapter 5)."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from blackout_tutorial import losses, oracle, process, schedule
from blackout_tutorial.bridge import step_probabilities

pytestmark = pytest.mark.usefixtures("one_thread")


def test_poisson_loss_values_and_zero_counts():
    y_hat = torch.tensor([2.0, 0.5, 0.0, 0.0])
    y = torch.tensor([3.0, 0.0, 0.0, 2.0])
    got = losses.poisson_loss(y_hat, y)
    assert got[0].item() == pytest.approx(2 - 3 * math.log(2), rel=1e-6)
    assert got[1].item() == pytest.approx(0.5) and got[2].item() == 0.0
    assert (
        math.isfinite(got[3].item()) and got[3].item() > 50
    )  # y > 0 with y_hat = 0: huge, not inf


def test_poisson_loss_is_minimised_by_the_mean_with_the_bregman_gap():
    # E_y[loss(c)] - E_y[loss(m)] = c - m - m ln(c/m) >= 0, zero only at c = m = E[y].
    y = torch.arange(7.0)
    pmf = torch.tensor(stats.binom.pmf(np.arange(7), 6, 0.35), dtype=torch.float32)
    m = float((pmf * y).sum())
    grid = torch.linspace(0.5, 4.0, 701)
    risk = torch.stack(
        [(pmf * losses.poisson_loss(torch.full_like(y, c), y)).sum() for c in grid]
    )
    assert grid[risk.argmin()].item() == pytest.approx(m, abs=0.006)
    c = 3.0
    gap = (
        pmf
        * (
            losses.poisson_loss(torch.full_like(y, c), y)
            - losses.poisson_loss(torch.full_like(y, m), y)
        )
    ).sum()
    assert gap.item() == pytest.approx(c - m - m * math.log(c / m), rel=1e-4)


@pytest.mark.parametrize(
    "y, q, y_hat",
    [(0, 1.0, 0.5), (3, 1.0, 2.0), (5, 0.3, 4.2), (9, 1e-4, 9.5), (2, 0.9, 0.1)],
)
def test_kl_binomial_poisson_matches_a_direct_sum(y, q, y_hat):
    j = np.arange(y + 1)
    b = stats.binom.pmf(j, y, q)
    ref = float(
        np.sum(
            np.where(
                b > 0,
                b
                * (np.log(np.where(b > 0, b, 1)) - stats.poisson.logpmf(j, y_hat * q)),
                0,
            )
        )
    )
    got = losses.kl_binomial_poisson(
        torch.tensor([float(y)]),
        q,
        torch.tensor([y_hat], dtype=torch.float64),
        n_max=10,
    ).item()
    assert got == pytest.approx(ref, rel=1e-7, abs=1e-12)


def test_blackout_loss_is_an_unbiased_weighted_sum_over_time():
    # Constant model c: E[loss] = mean_k w_k (c - x0 (1 - p_k) ln c), with y ~ Bin(x0, 1
    # - p_k).
    times = schedule.observation_times(20, 6.0)
    weights = schedule.loss_weights(times, "elbo", "finite")
    c, n0 = 1.7, 4

    def model(x_t, t):
        return torch.full_like(x_t, c)

    x0 = torch.full((40000, 1, 2), n0)
    terms = losses.blackout_loss_terms(
        model, x0, times, weights, generator=torch.Generator().manual_seed(0)
    )
    assert terms.shape == (40000,)
    expected = float(
        (weights * (c - n0 * (1 - torch.exp(-times)) * math.log(c))).mean()
    )
    se = float(terms.std()) / math.sqrt(len(terms))
    assert abs(float(terms.mean()) - expected) < 4 * se
    scalar = losses.blackout_loss(
        model, x0[:8], times, weights, generator=torch.Generator().manual_seed(3)
    )
    again = losses.blackout_loss(
        model, x0[:8], times, weights, generator=torch.Generator().manual_seed(3)
    )
    assert scalar.ndim == 0 and scalar.item() == again.item()


@pytest.fixture(scope="module")
def toy_batch():
    support, probs = oracle.toy_distribution()
    reps = 150
    return (
        oracle.Oracle(support, probs),
        support.repeat_interleave(reps, 0),
        probs.repeat_interleave(reps) / reps,
    )


def test_oracle_elbo_never_below_the_entropy_and_approaches_it(toy_batch):
    orc, x0, w = toy_batch
    entropy = orc.entropy()
    gaps = []
    for T in (20, 60, 200):
        times = schedule.observation_times(T, 10.0)
        nats = losses.negative_elbo(
            orc, x0, times, n_max=4, generator=torch.Generator().manual_seed(T)
        )
        gaps.append(float((w * nats).sum()) - entropy)
    # Monte-Carlo standard error of each average is below 0.03 nats; the gaps are far
    # larger.
    assert all(g > 0 for g in gaps) and gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 0.35


def test_subsampled_elbo_is_unbiased_and_bits_per_dim_scale(toy_batch):
    orc, x0, w = toy_batch
    times = schedule.observation_times(100, 10.0)
    full = losses.negative_elbo(
        orc, x0, times, n_max=4, generator=torch.Generator().manual_seed(0)
    )
    estimates = [float((w * losses.negative_elbo(orc, x0, times, n_max=4, n_terms=10,
                                                   generator=torch.Generator().manual_seed(s))).sum())
                 for s in range(1, 13)]
    spread = np.std(estimates) / math.sqrt(len(estimates))
    assert abs(np.mean(estimates) - float((w * full).sum())) < 4 * spread + 0.05
    bpd = losses.elbo_bits_per_dim(
        orc, x0[:3], times, n_max=4, generator=torch.Generator().manual_seed(0)
    )
    nats = losses.negative_elbo(
        orc, x0[:3], times, n_max=4, generator=torch.Generator().manual_seed(0)
    )
    assert torch.allclose(bpd, nats / (9 * math.log(2)))


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: losses.poisson_loss(torch.ones(2), torch.ones(3)), "shape"),
        (
            lambda: losses.blackout_loss(
                lambda x, t: x, torch.ones(2, 3), torch.ones(4), torch.ones(3)
            ),
            "weights",
        ),
        (
            lambda: losses.blackout_loss(
                lambda x, t: x[:, :1], torch.ones(2, 3), torch.ones(4), torch.ones(4)
            ),
            "model output",
        ),
        (
            lambda: losses.blackout_loss(
                lambda x, t: x, torch.full((2, 3), -1.0), torch.ones(4), torch.ones(4)
            ),
            "x0",
        ),
        (
            lambda: losses.negative_elbo(
                lambda x, t: x, torch.full((2, 3), 9), torch.tensor([1.0, 2.0]), 4
            ),
            "n_max",
        ),
        (
            lambda: losses.negative_elbo(
                lambda x, t: x, torch.ones(2, 3), torch.tensor([2.0, 1.0]), 4
            ),
            "times",
        ),
        (
            lambda: losses.negative_elbo(
                lambda x, t: x, torch.ones(2, 3), torch.tensor([1.0, 2.0]), 4, n_terms=0
            ),
            "n_terms",
        ),
        (
            lambda: losses.negative_elbo(
                lambda x, t: x,
                torch.ones(2, 3),
                torch.tensor([1.0, 2.0]),
                4,
                step_probs=torch.tensor([0.5, 0.5]),
            ),
            "step_probs",
        ),
        (lambda: losses.kl_binomial_poisson(torch.ones(2), 1.5, torch.ones(2), 4), "q"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(call, word):
    with pytest.raises(ValueError, match=word):
        call()


# --- REVIEW E (issue 11) --------------------------------------------------------------
NAN, INF = float("nan"), float("inf")
X0 = torch.tensor([[3, 2], [1, 0]]).reshape(2, 1, 2)
GRID = schedule.observation_times(10, 5.0)


def _const(v):
    return lambda x, t: torch.full(x.shape, v)


@pytest.mark.parametrize("value", [NAN, INF, -1.0])
@pytest.mark.parametrize("bound", [
    lambda m: losses.negative_elbo(m, X0, GRID, 4),
    lambda m: losses.elbo_bits_per_dim(m, X0, GRID, 4),
    lambda m: losses.elbo_bits_per_dim(m, X0, GRID, 4, n_terms=3,
                                       generator=torch.Generator().manual_seed(0)),
])
def test_review_e_elbo_names_the_model_output_and_the_step(value, bound):
    # One step, or the range of one stratum's per-image steps ("step 3..5").
    with pytest.raises(ValueError,
                       match=r"model output at step \d+(\.\.\d+)? must be finite"):
        bound(_const(value))


@pytest.mark.parametrize("call, match", [
    (lambda: losses.blackout_loss(_const(1.0), X0, GRID, -schedule.loss_weights(GRID)),
     "weights must be >= 0"),                          # negative weights were accepted
    (lambda: losses.blackout_loss(_const(1.0), X0, GRID,
                                  schedule.loss_weights(GRID) * NAN),
     "weights must be finite"),
    (lambda: losses.blackout_loss(_const(-1.0), X0, GRID, schedule.loss_weights(GRID)),
     "model output must be finite and >= 0"),            # negative rates were accepted
    (lambda: losses.blackout_loss(_const(NAN), X0, GRID, schedule.loss_weights(GRID)),
     "model output must be finite and >= 0"),
    (lambda: losses.poisson_loss(torch.tensor([-1.0]), torch.tensor([1.0])),
     "y_hat must be >= 0"),                            # gave 26.6 silently
    (lambda: losses.poisson_loss(torch.tensor([NAN]), torch.tensor([1.0])),
     "y_hat must be finite"),
    (lambda: losses.poisson_loss(torch.tensor([1.0]), torch.tensor([-1.0])),
     "y must hold non-negative counts"),
    (lambda: losses.kl_binomial_poisson(torch.tensor([1.5]), 0.5, torch.ones(1), 4),
     "y must hold integer-valued counts"),             # kl(1.5, ...) truncated to 1
    (lambda: losses.kl_binomial_poisson(torch.tensor([1]), 1.5, torch.ones(1), 4),
     r"q must be a probability in \[0, 1\]"),
    (lambda: losses.kl_binomial_poisson(torch.tensor([1]), 0.0, torch.ones(1), 4),
     r"q must lie in \(0, 1\]"),
    (lambda: losses.kl_binomial_poisson(torch.tensor([5]), 0.5, torch.ones(1), 4),
     "y must hold counts <= n_max = 4"),
    (lambda: losses.kl_binomial_poisson(torch.tensor([1]), 0.5, torch.tensor([-1.]), 4),
     "y_hat must be >= 0"),
    (lambda: losses.kl_binomial_poisson(torch.tensor([1, 2]), 0.5, torch.ones(3), 4),
     "y_hat and y must have the same shape"),
    (lambda: losses.negative_elbo(_const(1.0), X0 + 10, GRID, 4),
     "x0 must hold counts <= n_max = 4"),
    (lambda: losses.negative_elbo(_const(1.0), X0 * NAN, GRID, 4),
     "x0 must hold finite counts"),
    (lambda: losses.negative_elbo(_const(1.0), X0, GRID, 4, prior_count=NAN),
     "prior_count must be a finite number > 0"),
    (lambda: losses.negative_elbo(_const(1.0), X0, GRID, 4, n_terms=0),
     "n_terms must be an integer >= 1"),
    (lambda: losses.negative_elbo(_const(1.0), X0, torch.tensor([2.0, 1.0]), 4),
     "times must be finite, strictly increasing"),
    (lambda: losses.blackout_loss(_const(1.0), torch.tensor(3), GRID,
                                  schedule.loss_weights(GRID)),
     r"x0 must have shape \[B, ...\] with B >= 1"),
])
def test_review_e_losses_reject_bad_input_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- the ELBO estimator against exact answers (issue 13, REVIEW D.1) ------------------
# A one-pixel law with the exact oracle: every expectation of the bound can be summed
# exactly (oracle.exact_negative_elbo) and the model's own likelihood computed by
# dynamic programming over its Poisson-kernel chain (oracle.model_nll_exact).
PIXEL_VALUES = torch.tensor([0, 2, 5, 8])
PIXEL_GRID = schedule.observation_times(50, 6.0)


@pytest.fixture(scope="module")
def pixel_law():
    probs = torch.tensor([0.2, 0.3, 0.3, 0.2], dtype=torch.float64)
    orc = oracle.Oracle(PIXEL_VALUES[:, None], probs)
    exact = oracle.exact_negative_elbo(orc, PIXEL_VALUES, PIXEL_GRID, 8)
    return orc, probs, exact


def _old_negative_elbo(model, x0, times, n_max, n_terms, generator):
    """The estimator before issue 13: one set of step indices shared by the batch."""
    q = step_probabilities(times)
    ks = torch.randint(0, times.numel(), (n_terms,), generator=generator)
    prior = torch.full(x0.shape, n_max / 2)
    nats = losses.kl_binomial_poisson(x0, math.exp(-float(times[-1])), prior, n_max)
    nats = nats.reshape(x0.shape[0], -1).sum(1)
    for k in ks.tolist():
        x_t = process.sample_forward(x0, times[k], generator=generator)
        kl = losses.kl_binomial_poisson(x0 - x_t, float(q[k]), model(x_t, times[k]),
                                        n_max)
        nats = nats + times.numel() / n_terms * kl.reshape(x0.shape[0], -1).sum(1)
    return nats


def test_exact_elbo_terms_match_the_monte_carlo_bound(pixel_law):
    orc, _, exact = pixel_law
    x0 = PIXEL_VALUES.repeat_interleave(1500)[:, None]
    for n_terms, step_probs in [(None, None), (7, None),
                                (7, torch.linspace(1, 3, 50, dtype=torch.float64))]:
        probs = None if step_probs is None else step_probs / step_probs.sum()
        mc = losses.negative_elbo(orc, x0, PIXEL_GRID, 8, n_terms=n_terms,
                                  step_probs=probs,
                                  generator=torch.Generator().manual_seed(5))
        mc = mc.reshape(4, -1)
        se = mc.std(1) / math.sqrt(mc.shape[1])
        assert (torch.abs(mc.mean(1) - exact) <= 4 * se + 1e-9).all(), n_terms


def test_bound_stays_above_the_exact_model_nll_and_a_wrong_one_does_not(pixel_law):
    orc, probs, exact = pixel_law
    nll = oracle.model_nll_exact(orc, torch.arange(9), PIXEL_GRID, 8)
    # The dynamic programme's law over 0..8 (tau-leaping's Poisson kernels overshoot 8
    # with a few % of the mass) is close to the data law: KL(data || model) is small
    # but positive. oracle's tests check it against simulated chains.
    assert 0.9 < float(torch.exp(-nll).sum()) <= 1 + 1e-9
    kl_data_model = float((probs * (torch.log(probs) + nll[PIXEL_VALUES])).sum())
    assert 0 < kl_data_model < 0.1
    assert (exact >= nll[PIXEL_VALUES] - 1e-9).all()
    # x0 = 0: every path is x_t = 0 and the bound is tight, so it can fail: drop the
    # prior term and it falls below the exact NLL.
    assert float(exact[0]) == pytest.approx(float(nll[0]), abs=1e-9)
    prior = losses.kl_binomial_poisson(PIXEL_VALUES, math.exp(-6.0),
                                       torch.full((4,), 4.0), 8)
    assert float(exact[0] - prior[0]) < float(nll[0]) - 5e-3


def _repeat(estimate, repeats):
    pairs = np.array([estimate(s) for s in range(repeats)])
    return pairs[:, 0], pairs[:, 1]


@pytest.mark.parametrize("fixed", [True, False])
def test_reported_stderr_matches_the_spread_of_repeats(pixel_law, fixed):
    orc, probs, exact = pixel_law
    to_bits = 1 / math.log(2)

    def estimate(seed):
        gen = torch.Generator().manual_seed(1000 + seed)
        x0 = torch.full((100, 1), 5) if fixed else orc.sample(100, generator=gen)
        return losses.elbo_estimate(orc, x0, PIXEL_GRID, 8, n_terms=5, generator=gen)

    means, stderrs = _repeat(estimate, 40)
    ratio = float(np.mean(stderrs)) / float(np.std(means, ddof=1))
    assert 1 / 1.5 < ratio < 1.5
    truth = float(exact[2] if fixed else (probs * exact).sum()) * to_bits
    assert abs(means.mean() - truth) < 4 * np.std(means, ddof=1) / math.sqrt(40)


def test_old_shared_index_stderr_does_not_match_the_spread_of_repeats(pixel_law):
    orc = pixel_law[0]

    def estimate(seed):
        gen = torch.Generator().manual_seed(2000 + seed)
        nats = _old_negative_elbo(orc, torch.full((100, 1), 5), PIXEL_GRID, 8, 5, gen)
        return float(nats.mean()), float(nats.std()) / math.sqrt(len(nats))

    means, stderrs = _repeat(estimate, 40)
    assert float(np.std(means, ddof=1)) / float(np.mean(stderrs)) > 1.5


def test_stratified_indices_cover_the_strata_and_repeats_average():
    ks, w = losses._choose_terms(10, 3, 10, None, torch.Generator().manual_seed(0))
    assert (ks == torch.arange(10)[:, None]).all()
    assert torch.allclose(w, torch.ones(10, 3, dtype=w.dtype))
    pi = torch.tensor([0.5, 0.25, 0.125, 0.125], dtype=torch.float64)
    ks, w = losses._choose_terms(4, 1000, 2, pi, torch.Generator().manual_seed(0))
    assert (ks[0] == 0).all() and (ks[1] >= 1).all()   # strata of mass 1/2 each
    orc = oracle.Oracle(PIXEL_VALUES[:, None])
    x0 = torch.full((400, 1), 5)
    one = losses.elbo_estimate(orc, x0, PIXEL_GRID, 8, n_terms=3,
                               generator=torch.Generator().manual_seed(0))
    four = losses.elbo_estimate(orc, x0, PIXEL_GRID, 8, n_terms=3, repeats=4,
                                batch_size=64,
                                generator=torch.Generator().manual_seed(0))
    assert 0.35 < four.stderr / one.stderr < 0.7      # about 1/2: four draws per image
    with pytest.raises(ValueError, match="at least 2 images"):
        losses.elbo_estimate(orc, x0[:1], PIXEL_GRID, 8)
