"""Inpainting with an unconditional Blackout model: clamp the observed pixels
(Chapter 11).

Some pixels of an image are known (``mask`` True), the rest are to be generated. The
reverse sampler runs as usual (Chapter 6), but after every step the observed pixels are
overwritten with a sample of the *forward* process started at their known values, at the
step's time. The network then always sees the observed pixels at the noise level it was
trained on, and its guesses for the missing pixels condition on them.

Two ways to draw the observed pixels' noisy values:

* ``"bridge"`` (default): one exact forward path, drawn backwards: x_{t_end} ~
  Binomial(x_obs, e^{-t_end}), then x_s = x_t + Binomial(x_obs - x_t, q(s, t)) (the
  binomial bridge of Chapter 4). Counts only grow, as on a real reverse path, and
  every x_t ~ Binomial(x_obs, e^{-t}).
* ``"independent"``: a fresh x_t ~ Binomial(x_obs, e^{-t}) at each step
  (``process.sample_forward``), the replacement trick of score-based inpainting; the
  same marginals, but a path that can lose units between steps.

Either way the observed pixels equal ``x_obs`` at t = 0 exactly.
"""
import torch

from blackout_tutorial import _checks, process
from blackout_tutorial.bridge import sample_bridge
from blackout_tutorial.sampling import METHODS, reverse_steps

OBSERVED_PATHS = ("bridge", "independent")


def inpaint(
    model,
    x_obs,
    mask,
    times,
    method="tau_leaping",
    n_max=255,
    observed_path="bridge",
    generator=None,
    rounding="stochastic",
):
    """Generate the unobserved pixels of ``x_obs`` (where ``mask`` is False) (Chapter
    11).

    ``model``: a rate model; ``x_obs``: counts ``[B, ...]`` (values under ``~mask`` are
    ignored); ``mask``: bool, True where observed; ``times``: increasing grid as in
    ``sampling.sample``; ``method``: ``tau_leaping`` or ``binomial_bridge``;
    ``observed_path``: ``bridge`` or ``independent`` (module docstring). Runs
    ``sampling.reverse_steps`` on x_obs's device, clamping the observed pixels after
    every step; returns long counts with ``result[mask] == x_obs[mask]``.
    """
    _checks.one_of(method, METHODS, "method")
    _checks.one_of(observed_path, OBSERVED_PATHS, "observed_path")
    x_obs = _check_inputs(x_obs, mask, _checks.positive_int(n_max, "n_max"))
    observed = process.sample_forward(
        x_obs, _checks.time_grid(times)[-1], generator=generator
    )

    def clamp_observed(k, x, t, s):
        nonlocal observed
        if observed_path == "bridge":
            observed = sample_bridge(observed, x_obs, s, t, generator=generator)
        else:
            observed = process.sample_forward(x_obs, s, generator=generator)
        return torch.where(mask, observed, x)

    x = torch.where(mask, observed, torch.zeros_like(x_obs))
    return reverse_steps(
        model, x, times, method, n_max, rounding, generator, clamp_observed
    )


def _check_inputs(x_obs, mask, n_max):
    _checks.count_tensor(x_obs, "x_obs", n_max=n_max)
    _checks.tensor(mask, "mask")
    if mask.shape != x_obs.shape or mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool tensor of x_obs's shape {tuple(x_obs.shape)}, "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    return x_obs.long()


def box_mask(shape, top, left, height, width, observed=True):
    """A bool mask ``shape`` [B, C, H, W] that is ``observed`` inside a box and the
    opposite outside (Chapter 11).

    ``observed=False`` hides the box (inpaint a hole); ``observed=True`` shows only the
    box (outpaint around it).
    """
    shape = _checks.batch_shape(shape)
    if len(shape) != 4:
        raise ValueError(f"shape must be [B, C, H, W], got {shape}")
    top, left = _checks.count(top, "top"), _checks.count(left, "left")
    height, width = (_checks.positive_int(v, n) for v, n in ((height, "height"),
                                                             (width, "width")))
    h, w = shape[-2:]
    if not (0 <= top < top + height <= h and 0 <= left < left + width <= w):
        raise ValueError(
            f"the box (top={top}, left={left}, height={height}, width={width}) must "
            f"lie inside the {h}x{w} image"
        )
    mask = torch.full(tuple(shape), not observed, dtype=torch.bool)
    mask[..., top:top + height, left:left + width] = observed
    return mask
