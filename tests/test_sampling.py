"""Tests of blackout_tutorial.sampling: reverse samplers against the exact oracle
(Chapter 6)."""
import pytest
import torch

from blackout_tutorial import bridge, oracle, sampling, schedule
from blackout_tutorial.evaluate import chi_square_test

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def toy():
    return oracle.Oracle(*oracle.toy_distribution())


@pytest.mark.parametrize("method", ["tau_leaping", "binomial_bridge"])
def test_samplers_reproduce_the_toy_distribution(toy, method):
    # 1000 logit-uniform steps, t_end = 10 (a unit survives with prob 4.5e-5: starting
    # from
    # black costs < 2e-3 in TV). Sampling noise of the TV with 4000 draws is about
    # 0.012.
    times = schedule.observation_times(1000, 10.0)
    x = sampling.sample(toy, (4000, 1, 3, 3), times, method=method, n_max=4,
                        generator=torch.Generator().manual_seed(0))
    assert x.dtype == torch.long and x.shape == (4000, 1, 3, 3)
    assert toy.total_variation(x) < 0.05


def test_nearest_rounding_is_biased_and_stochastic_rounding_is_not():
    # One pixel, x0 in {0, 1} with prob 1/2: the oracle predicts y_hat < 1/2 from a
    # black pixel at
    # every t, which rounds to 0, so "nearest" never paints anything. Stochastic
    # rounding is exact here.
    orc = oracle.Oracle(torch.tensor([0, 1]))
    times = schedule.observation_times(200, 10.0)
    near = sampling.sample(orc, (4000,), times, "binomial_bridge", n_max=1,
                           rounding="nearest",
                           generator=torch.Generator().manual_seed(0))
    stoch = sampling.sample(orc, (4000,), times, "binomial_bridge", n_max=1,
                            rounding="stochastic",
                            generator=torch.Generator().manual_seed(0))
    assert orc.total_variation(near) == pytest.approx(0.5)
    # 4 standard errors of 4000 fair coin flips
    assert orc.total_variation(stoch) < 0.03


def test_round_counts_means():
    y = torch.full((200000,), 2.3)
    stoch = sampling.round_counts(y, "stochastic",
                                  generator=torch.Generator().manual_seed(0))
    assert set(stoch.unique().tolist()) == {2.0, 3.0}
    # sd of the mean is 0.001
    assert stoch.mean().item() == pytest.approx(2.3, abs=0.005)
    assert sampling.round_counts(torch.tensor([2.3, 2.7]),
                                 "nearest").tolist() == [2.0, 3.0]


@pytest.mark.parametrize("method", ["tau_leaping", "binomial_bridge"])
@pytest.mark.parametrize("shape", [(7,), (3, 2, 4, 5)])
def test_output_type_range_shape_and_reproducibility(method, shape):
    # asks for far more units than fit
    def greedy(x_t, t):                    # asks for far more units than fit
        return torch.full_like(x_t, 50.0)
    times = schedule.observation_times(30, 8.0)
    a = sampling.sample(greedy, shape, times, method, n_max=9,
                        generator=torch.Generator().manual_seed(5))
    b = sampling.sample(greedy, shape, times, method, n_max=9,
                        generator=torch.Generator().manual_seed(5))
    assert a.shape == shape and a.dtype == torch.long
    assert int(a.min()) >= 0 and int(a.max()) <= 9 and torch.equal(a, b)


def test_gillespie_reverse_reproduces_a_one_pixel_distribution():
    values, probs = torch.tensor([0, 1, 3, 4]), torch.tensor([0.1, 0.4, 0.2, 0.3])
    orc = oracle.Oracle(values, probs)
    def rate(n, t):
        return bridge.marginal_birth_rate(orc, n, t)

    births = sampling.gillespie_reverse(rate, 4000, 10.0, 4,
                                        generator=torch.Generator().manual_seed(0))
    final = (~births.isnan()).sum(1)
    _, p_value, _ = chi_square_test(final, [0.1, 0.4, 0.0, 0.2, 0.3])
    assert p_value > 1e-3
    # Births happen while time runs backwards: each row decreases.
    assert bool((torch.nan_to_num(births.diff(dim=1), nan=-1.0) < 0).all())


@pytest.mark.parametrize("kwargs, word", [
    (dict(method="euler"), "method"),
    (dict(rounding="up"), "rounding"),
    (dict(shape=()), "shape"),
    (dict(shape=(2, 0)), "shape"),
    (dict(times=torch.tensor([0.5, 0.2])), "times"),
    (dict(n_max=0), "n_max"),
    (dict(model=lambda x_t, t: x_t[:1]), "model output"),
])
def test_bad_inputs_raise_value_error_naming_the_argument(kwargs, word):
    args = dict(model=lambda x_t, t: torch.ones_like(x_t), shape=(2, 3),
                times=torch.tensor([0.1, 1.0]))
    args.update(kwargs)
    with pytest.raises(ValueError, match=word):
        sampling.sample(**args)


def test_gillespie_reverse_rejects_a_rate_above_the_blackout_bound():
    with pytest.raises(ValueError, match="rate"):
        sampling.gillespie_reverse(lambda n, t: 10 * (2 - n) / torch.expm1(t), 5, 5.0,
                                   2)


@pytest.mark.parametrize("method", sampling.METHODS)
def test_a_diverged_model_fails_at_once_instead_of_hanging(method):
    # torch.binomial(nan, p) never returns: the checked model call must stop it first.
    def nan_model(x, t):
        return torch.full_like(x, float("nan"))

    times = schedule.observation_times(10, 5.0)
    with pytest.raises(ValueError, match="model output at step 9 must be finite"):
        sampling.sample(nan_model, (2, 3), times, method=method, n_max=4)


def test_reverse_steps_calls_after_step_with_each_step_and_uses_its_result():
    times = schedule.observation_times(6, 5.0)
    orc = oracle.Oracle(*oracle.toy_distribution())
    calls = []

    def hook(k, x, t, s):
        calls.append((k, float(t), float(s)))
        return torch.zeros_like(x) if k == 0 else None     # replace the final state

    x = torch.zeros(4, 1, 3, 3, dtype=torch.long)
    out = sampling.reverse_steps(orc, x, times, n_max=4, after_step=hook,
                                 generator=torch.Generator().manual_seed(0))
    assert [c[0] for c in calls] == [5, 4, 3, 2, 1, 0] and calls[-1][2] == 0.0
    assert [c[1] for c in calls] == pytest.approx(times.flip(0).tolist())
    assert [c[2] for c in calls[:-1]] == pytest.approx(times.flip(0)[1:].tolist())
    assert int(out.abs().sum()) == 0


def test_reverse_frames_come_from_the_sampler_itself():
    times = schedule.observation_times(50, 8.0)
    orc = oracle.Oracle(*oracle.toy_distribution())
    t_k, frames, final = sampling.reverse_frames(orc, (8, 1, 3, 3), times,
                                                 [8.0, 1.0, 0.1],
                                                 n_max=4,
                                                 generator=torch.Generator().manual_seed(1))
    reference = sampling.sample(orc, (8, 1, 3, 3), times, n_max=4,
                                generator=torch.Generator().manual_seed(1))
    assert torch.equal(final, reference) and torch.equal(frames[-1], final)
    assert t_k[0] == pytest.approx(8.0) and t_k[-1] == 0.0
    assert bool((torch.diff(t_k) < 0).all())
    assert int(frames[0].sum()) == 0                          # black at t_end
    # Units are only ever added on the way down.
    assert bool((torch.diff(frames.flatten(1).sum(1)) >= 0).all())


# --- REVIEW E (issue 11): a diverged model, bad step inputs, bad arguments ----------
NAN, INF = float("nan"), float("inf")


def _in_subprocess(code, timeout=120):
    """Run ``code`` in a fresh interpreter under a timeout: a hang fails the test."""
    import subprocess
    import sys
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for {timeout} s: {code}")
    return done.stdout + done.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "1e30"])
@pytest.mark.parametrize("method, rounding", [("tau_leaping", "stochastic"),
                                              ("binomial_bridge", "stochastic"),
                                              ("binomial_bridge", "nearest")])
def test_review_e_bad_model_output_stops_every_sampler_under_a_timeout(value, method,
                                                                        rounding):
    # binomial_bridge with NaN hung forever (torch.binomial(nan, p)); tau-leaping with
    # inf or 1e30 gave black images (torch.poisson(inf) = -2^63, then clipped to 0).
    code = (
        "import torch\nfrom blackout_tutorial import sampling, schedule\n"
        f"m = lambda x, t: torch.full(x.shape, float('{value}'))\n"
        "try:\n"
        f"    sampling.sample(m, (2, 3), schedule.observation_times(10, 5.0), "
        f"'{method}', 4, rounding='{rounding}')\n"
        "except ValueError as e:\n    print('ValueError:', e)\n")
    out = _in_subprocess(code)
    assert "ValueError: model output at step 9 must be finite and >= 0" in out, out


@pytest.mark.parametrize("value", [NAN, INF])
def test_review_e_reverse_frames_and_inpainting_name_the_model_output(value):
    def model(x, t):
        return torch.full(x.shape, value)

    times = schedule.observation_times(10, 5.0)
    from blackout_tutorial import inpainting
    with pytest.raises(ValueError, match="model output at step 9 must be finite"):
        sampling.reverse_frames(model, (2, 3), times, [1.0], n_max=4)
    x_obs = torch.tensor([[1, 2, 3]])
    with pytest.raises(ValueError, match="model output at step 9 must be finite"):
        inpainting.inpaint(model, x_obs, x_obs > 1, times, n_max=4)


def test_review_e_bridge_step_with_a_nan_rate_raises_instead_of_hanging():
    code = (
        "import torch\nfrom blackout_tutorial import sampling\n"
        "x, y = torch.tensor([1, 2]), torch.tensor([float('nan'), 1.0])\n"
        "try:\n"
        "    sampling.binomial_bridge_step(x, y, 0.5, 4)\n"
        "except ValueError as e:\n    print('ValueError:', e)\n")
    assert "ValueError: y_hat must be finite" in _in_subprocess(code)


@pytest.mark.parametrize("call, match", [
    (lambda x: sampling.tau_leaping_step(x, torch.tensor([NAN, 1.]), 0.5, 4),
     "y_hat must be finite"),
    (lambda x: sampling.tau_leaping_step(x, torch.tensor([INF, 1.]), 0.5, 4),
     "y_hat must be finite"),
    (lambda x: sampling.tau_leaping_step(x, torch.tensor([1e30, 1.]), 0.5, 4),
     r"y_hat \* q \(the Poisson mean of the births\) must hold finite Poisson means"),
    (lambda x: sampling.tau_leaping_step(x, torch.ones(2), NAN, 4), "q must hold"),
    (lambda x: sampling.binomial_bridge_step(x, torch.ones(2), NAN, 4), "q must hold"),
    (lambda x: sampling.binomial_bridge_step(x, torch.ones(2), 1.5, 4), "q must hold"),
    (lambda x: sampling.binomial_bridge_step(x + 5, torch.ones(2), 0.5, 4),
     "x must hold counts <= n_max = 4"),
    (lambda x: sampling.binomial_bridge_step(x, torch.ones(3), 0.5, 4),
     "y_hat must have the shape"),
    (lambda x: sampling.tau_leaping_step(x, torch.ones(2), torch.ones(3) / 2, 4),
     r"q (and x )?must broadcast"),
    (lambda x: sampling.round_counts(torch.tensor([NAN])), "y_hat must be finite"),
])
def test_review_e_step_functions_check_their_inputs_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.tensor([1, 2]))


def test_review_e_round_counts_takes_integer_tensors():
    assert sampling.round_counts(torch.tensor([1, 2]), "nearest").tolist() == [1, 2]


@pytest.mark.parametrize("kwargs, match", [
    (dict(frame_times=[NAN]), "frame_times must be finite"),
    (dict(frame_times=None), "frame_times must be a number or a tensor"),
    (dict(frame_times=["a"]), "frame_times must be a number or a tensor"),
])
def test_review_e_reverse_frames_checks_frame_times(kwargs, match):
    times = schedule.observation_times(10, 5.0)
    with pytest.raises(ValueError, match=match):
        sampling.reverse_frames(lambda x, t: torch.ones(x.shape), (2, 3), times,
                                n_max=4, **kwargs)


def test_review_e_reverse_steps_checks_the_start_state():
    times = schedule.observation_times(10, 5.0)
    with pytest.raises(ValueError, match="x must hold counts <= n_max = 4"):
        sampling.reverse_steps(lambda x, t: torch.ones(x.shape), torch.full((2,), 9),
                               times, n_max=4)


@pytest.mark.parametrize("rate, match", [
    (lambda n, t: torch.full_like(n, NAN), "rate output must be finite and >= 0"),
    (lambda n, t: n * 0 - 1, "rate output must be finite and >= 0"),
    (lambda n, t: torch.tensor(0.1), "rate output must have the shape"),
])
def test_review_e_gillespie_reverse_checks_the_rate_output(rate, match):
    # NaN or negative rates were silently never accepted (no births at all).
    with pytest.raises(ValueError, match=match):
        sampling.gillespie_reverse(rate, 3, 2.0, 4)


def test_dropout_active_turns_on_dropout_only_and_restores_the_modes():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5),
                                torch.nn.BatchNorm1d(2)).eval()
    with sampling.dropout_active(model) as same:
        assert same is model
        assert [m.training for m in model] == [False, True, False]
    assert not any(m.training for m in model)
    with sampling.dropout_active(model, enabled=False):
        assert not any(m.training for m in model)
    with sampling.dropout_active(lambda x, t: x):   # a plain function: nothing to do
        pass
