"""Tests of blackout_tutorial.inpainting on the exact oracle of the 3x3 toy data."""
import pytest
import torch

from blackout_tutorial import inpainting, oracle, schedule

TIMES = schedule.observation_times(60, 10.0)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("method", ["tau_leaping", "binomial_bridge"])
@pytest.mark.parametrize("path", ["bridge", "independent"])
def test_observed_pixels_are_kept(method, path):
    support, probs = oracle.toy_distribution()
    x_obs = support[[0, 2, 4]].repeat(20, 1, 1, 1)
    mask = inpainting.box_mask(x_obs.shape, 0, 0, 2, 3)
    x = inpainting.inpaint(
        oracle.Oracle(support, probs),
        x_obs,
        mask,
        TIMES,
        method,
        n_max=4,
        observed_path=path,
        generator=gen(1),
    )
    assert x.dtype == torch.long and x.shape == x_obs.shape
    assert torch.equal(x[mask], x_obs[mask])
    assert bool((x >= 0).all()) and bool((x <= 4).all())


def test_fully_observed_image_is_returned():
    support, probs = oracle.toy_distribution()
    mask = torch.ones((3, 1, 3, 3), dtype=torch.bool)
    x = inpainting.inpaint(
        oracle.Oracle(support, probs),
        support[:3],
        mask,
        TIMES,
        n_max=4,
        generator=gen(2),
    )
    assert torch.equal(x, support[:3])


def test_nothing_observed_samples_the_data_law():
    support, probs = oracle.toy_distribution()
    model = oracle.Oracle(support, probs)
    x_obs = torch.zeros((1500, 1, 3, 3), dtype=torch.long)
    x = inpainting.inpaint(
        model,
        x_obs,
        torch.zeros_like(x_obs, dtype=torch.bool),
        schedule.observation_times(200, 10.0),
        "binomial_bridge",
        n_max=4,
        generator=gen(3),
    )
    # Tolerance: sampling error of 1500 draws (~0.03) plus the 200-step discretisation.
    assert model.total_variation(x) < 0.08


def test_conditional_oracle_completes_exactly():
    # The exact conditional model (the oracle restricted to images that agree with the
    # observed pixels) always completes the plus; plain replacement need not.
    support, probs = oracle.toy_distribution()
    x_obs = support[[0]].repeat(200, 1, 1, 1)
    mask = inpainting.box_mask(x_obs.shape, 0, 0, 1, 3)
    conditional = oracle.Oracle(support[:1], torch.ones(1, dtype=torch.float64))
    x = inpainting.inpaint(
        conditional, x_obs, mask, TIMES, "binomial_bridge", n_max=4, generator=gen(4)
    )
    assert bool((x == support[0]).all())


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="euler"), "method"),
    (dict(observed_path="fresh"), "observed_path"),
    (dict(mask=torch.ones((2, 1, 3, 3), dtype=torch.long)), "mask"),
    (dict(mask=torch.ones((1, 1, 3, 3), dtype=torch.bool)), "mask"),
    (dict(x_obs=torch.full((2, 1, 3, 3), 9)), "n_max"),
    (dict(x_obs=-torch.ones((2, 1, 3, 3), dtype=torch.long)), "x_obs"),
])
def test_bad_input_raises(kwargs, match):
    support, probs = oracle.toy_distribution()
    args = dict(
        model=oracle.Oracle(support, probs),
        x_obs=support[:2],
        mask=torch.ones((2, 1, 3, 3), dtype=torch.bool),
        times=TIMES,
        n_max=4,
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        inpainting.inpaint(**args)


def test_box_mask():
    mask = inpainting.box_mask((2, 1, 8, 8), 2, 3, 4, 2, observed=False)
    assert mask.dtype == torch.bool and int((~mask).sum()) == 2 * 4 * 2
    assert not mask[0, 0, 2, 3] and mask[0, 0, 0, 0]
    with pytest.raises(ValueError, match="box"):
        inpainting.box_mask((2, 1, 8, 8), 6, 0, 4, 2)


def test_inpaint_checks_the_model_output_like_the_sampler():
    x_obs = torch.zeros(2, 1, 3, 3, dtype=torch.long)
    mask = torch.zeros(2, 1, 3, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="model output at step 4 must be finite"):
        inpainting.inpaint(
            lambda x, t: x - 1, x_obs, mask, torch.linspace(0.5, 3.0, 5), n_max=4
        )


# --- REVIEW E (issue 11) --------------------------------------------------------------
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_review_e_inpainting_names_a_bad_model_output_and_the_step(value):
    times = schedule.observation_times(10, 5.0)
    x_obs = torch.tensor([[1, 2, 3]])
    for method in ("tau_leaping", "binomial_bridge"):
        with pytest.raises(ValueError, match="model output at step 9 must be finite"):
            inpainting.inpaint(lambda x, t: torch.full(x.shape, value), x_obs,
                               x_obs > 1, times, method=method, n_max=4)


@pytest.mark.parametrize("args, match", [
    (((1, 1, 4, 4), 0.5, 0, 2, 2), "top must be an integer >= 0"),
    (((1, 1, 4, 4), "a", 0, 2, 2), "top must be an integer >= 0"),
    (((1, 1, 4, 4), 0, 0, 0, 2), "height must be an integer >= 1"),
    (((0, 1, 4, 4), 0, 0, 2, 2), "shape entry must be an integer >= 1"),
    (((-1, 1, 4, 4), 0, 0, 2, 2), "shape entry must be an integer >= 1"),
    ((None, 0, 0, 2, 2), r"shape must be a non-empty tuple \[B, ...\]"),
    (((1, 4, 4), 0, 0, 2, 2), r"shape must be \[B, C, H, W\]"),
    (((1, 1, 4, 4), 3, 0, 2, 2), "the box .* must lie inside the 4x4 image"),
])
def test_review_e_box_mask_checks_its_arguments_by_name(args, match):
    with pytest.raises(ValueError, match=match):
        inpainting.box_mask(*args)
