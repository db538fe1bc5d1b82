"""Tests of blackout_tutorial._checks: every argument rule and the checked model
call."""
import math

import pytest
import torch

from blackout_tutorial import _checks


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, float("nan"), math.inf, "3", None])
def test_positive_int_rejects_and_names_the_argument(bad):
    with pytest.raises(ValueError, match="batch must be an integer >= 1"):
        _checks.positive_int(bad, "batch")


def test_positive_int_and_count_accept_integer_values():
    assert (
        _checks.positive_int(3.0, "n") == 3
        and _checks.positive_int(torch.tensor(4), "n") == 4
    )
    assert _checks.count(0, "n0") == 0 and _checks.count(torch.tensor([7]), "n0") == 7
    with pytest.raises(ValueError, match="n0 must be a single count"):
        _checks.count(torch.tensor([1, 2]), "n0")
    with pytest.raises(ValueError, match="n0 must be <= n_max = 4"):
        _checks.count(5, "n0", n_max=4)


@pytest.mark.parametrize(
    "bad, rule",
    [
        ([1.5], "integer-valued"),
        ([-1], "non-negative"),
        ([math.inf], "finite"),
        ([math.nan], "finite"),
        ([True], "real numbers"),
        ([9], "<= n_max"),
    ],
)
def test_counts_rules(bad, rule):
    with pytest.raises(ValueError, match=rule):
        _checks.counts(bad, "x0", n_max=8)


def test_counts_keep_dtype_and_tensor_is_required_where_asked():
    x = torch.tensor([0, 3], dtype=torch.uint8)
    assert _checks.counts(x, "x0") is x
    with pytest.raises(ValueError, match="x0 must be a torch.Tensor"):
        _checks.count_tensor([1, 2], "x0")


def test_times_and_time_grids():
    assert _checks.times(0.7).dtype == torch.float64
    assert float(_checks.times(0.7)) == 0.7  # no float32 rounding on the way
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match="t_end must be finite"):
            _checks.times(bad, "t_end")
    with pytest.raises(ValueError, match="> 0"):
        _checks.times([0.0, 1.0], positive=True)
    assert _checks.time_grid([0.1, 0.2]).tolist() == [0.1, 0.2]
    for bad in ([0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [0.1, math.nan], [[0.1]], []):
        with pytest.raises(ValueError, match="times"):
            _checks.time_grid(bad)


def test_numbers_probabilities_and_vectors():
    assert _checks.number(2, "omega", minimum=0, strict=True) == 2.0
    with pytest.raises(ValueError, match="omega must be a finite number > 0"):
        _checks.number(0, "omega", minimum=0, strict=True)
    with pytest.raises(ValueError, match="q must be a probability"):
        _checks.probability(1.5, "q")
    assert _checks.probability_vector([0.25, 0.75], "p0").dtype == torch.float64
    for bad in ([0.5, 0.6], [-0.5, 1.5], [math.nan, 1.0], [[1.0]]):
        with pytest.raises(ValueError, match="p0"):
            _checks.probability_vector(bad, "p0")
    with pytest.raises(ValueError, match="weights must be >= 0"):
        _checks.finite([1.0, -1.0], "weights", minimum=0)
    with pytest.raises(ValueError, match="method must be one of"):
        _checks.one_of("euler", ("tau_leaping",), "method")


def test_per_sample_broadcasting_and_batch_shapes():
    x = torch.zeros(3, 2, 2)
    assert _checks.per_sample(torch.ones(3), x).shape == (3, 1, 1)
    assert _checks.per_sample(torch.tensor(1.0), x).shape == ()
    with pytest.raises(ValueError, match="t must be a scalar or have shape"):
        _checks.per_sample(torch.ones(2), x)
    assert _checks.batch_shape([2, 1, 4]) == (2, 1, 4)
    with pytest.raises(ValueError, match="shape"):
        _checks.batch_shape([2, 0])


def test_predict_calls_with_float_counts_and_per_sample_times():
    seen = {}

    def model(x_t, t):
        seen.update(x=x_t.dtype, t=tuple(t.shape))
        return x_t + 1

    y = _checks.predict(model, torch.zeros(3, 2, dtype=torch.long), 0.5)
    assert seen == {"x": torch.get_default_dtype(), "t": (3,)} and y.shape == (3, 2)


@pytest.mark.parametrize("output, match", [
    (lambda x, t: x[:, :1], "model output at step 7 must have the shape"),
    (lambda x, t: x * math.nan, "model output at step 7 must be finite and >= 0"),
    (lambda x, t: x + math.inf, "finite and >= 0"),
    (lambda x, t: x - 1, "finite and >= 0"),
    (lambda x, t: 1.0, "must have the shape"),
])
def test_predict_rejects_bad_model_outputs(output, match):
    with pytest.raises(ValueError, match=match):
        _checks.predict(output, torch.zeros(2, 3), torch.ones(2), step=7)


# --- rules added for issue 11 ---------------------------------------------------------
@pytest.mark.parametrize("bad", ["abc", None, object(), [1, "a"]])
def test_non_numbers_are_rejected_by_name(bad):
    with pytest.raises(ValueError, match="t must be a number or a tensor of numbers"):
        _checks.times(bad)


def test_finite_and_counts_take_one_rule_each():
    with pytest.raises(ValueError, match="w must be > 0 elementwise"):
        _checks.finite([0.0, 1.0], "w", minimum=0, strict=True)
    assert _checks.finite([0.0, 1.0], "w", minimum=0).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match=r"x0 must have shape \[B, ...\] with B >= 1"):
        _checks.batch(torch.zeros(0, 2), "x0")
    with pytest.raises(ValueError, match="and an image shape"):
        _checks.batch(torch.zeros(3), "images", min_ndim=2)


@pytest.mark.parametrize("bad", [math.nan, -0.1, 1.5, math.inf])
def test_in_range_rejects_nan_and_values_outside(bad):
    with pytest.raises(ValueError, match=r"q must hold probabilities in \[0, 1\]"):
        _checks.in_range(torch.tensor([0.5, bad]), "q")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, 1e19])
def test_poisson_mean_rejects_what_torch_poisson_gets_wrong(bad):
    # torch.poisson(1e19) returns -2^63, torch.poisson(inf) too.
    with pytest.raises(ValueError, match="rate must hold finite Poisson means"):
        _checks.poisson_mean(torch.tensor([1.0, bad]), "rate")
    assert float(torch.poisson(torch.tensor(_checks.POISSON_MAX))) > 0


def test_broadcast_names_both_arguments():
    with pytest.raises(ValueError, match=r"a and b must broadcast, got shapes \(2,\)"):
        _checks.broadcast(torch.ones(2), torch.ones(3), ("a", "b"))


def test_output_and_step_inputs():
    with pytest.raises(ValueError, match="drift output at step 3 must be finite"):
        _checks.output(torch.tensor([math.nan]), (1,), "drift output", step=3)
    with pytest.raises(ValueError, match="model output must be finite and >= 0"):
        _checks.output(torch.tensor([1e30]), (1,), minimum=0)   # above POISSON_MAX
    x = torch.tensor([1, 2])
    assert _checks.step_inputs(x, torch.ones(2), 0.5, 4)[2].item() == 0.5
    for args, match in [((x, torch.ones(2), 0.5, 1), "x must hold counts <= n_max"),
                        ((x, torch.ones(1), 0.5, 4), "y_hat must have the shape"),
                        ((x, torch.ones(2), -0.5, 4), "q must hold probabilities")]:
        with pytest.raises(ValueError, match=match):
            _checks.step_inputs(*args)


def test_weights_and_truncated_probability_vectors():
    t = torch.tensor([0.1, 0.2])
    with pytest.raises(ValueError, match="times and w must be 1-D of the same length"):
        _checks.weights(torch.ones(3), t, "w")
    with pytest.raises(ValueError, match="w must not all be 0"):
        _checks.weights(torch.zeros(2), t, "w")
    assert _checks.probability_vector([0.2, 0.3], "pmf", truncated=True).sum() == 0.5
    for bad in ([0.7, 0.7], [0.0, 0.0]):
        with pytest.raises(ValueError, match=r"summing in \(0, 1\]"):
            _checks.probability_vector(bad, "pmf", truncated=True)


def test_batch_shape_rejects_none():
    with pytest.raises(ValueError, match=r"shape must be a non-empty tuple \[B, ...\]"):
        _checks.batch_shape(None)
