"""Inpainting with an unconditional Blackout model: clamp the observed pixels (Chapter 11).

Some pixels of an image are known (``mask`` True), the rest are to be generated. The
reverse sampler runs as usual (Chapter 6), but after every step the observed pixels are
overwritten with a sample of the *forward* process started at their known values, at the
step's time. The network then always sees the observed pixels at the noise level it was
trained on, and its guesses for the missing pixels condition on them.

Two ways to draw the observed pixels' noisy values:

* ``"bridge"`` (default): one exact forward path, drawn backwards: x_{t_end} ~ Binomial(x_obs,
  e^{-t_end}), then x_s = x_t + Binomial(x_obs - x_t, q(s, t)) (the binomial bridge of
  Chapter 4). Counts only grow, as on a real reverse path, and every x_t ~ Binomial(x_obs, e^{-t}).
* ``"independent"``: a fresh x_t ~ Binomial(x_obs, e^{-t}) at each step (``process.sample_forward``),
  the replacement trick of score-based inpainting; the same marginals, but a path that can
  lose units between steps.

Either way the observed pixels equal ``x_obs`` at t = 0 exactly.
"""
import torch

from blackout_tutorial import process
from blackout_tutorial.bridge import check_time_grid, sample_bridge, step_probabilities
from blackout_tutorial.sampling import METHODS, binomial_bridge_step, tau_leaping_step

OBSERVED_PATHS = ("bridge", "independent")


def _check_inputs(x_obs, mask, n_max):
    if not isinstance(x_obs, torch.Tensor) or not isinstance(mask, torch.Tensor):
        raise ValueError("x_obs and mask must be torch tensors")
    process._check_counts(x_obs, "x_obs")
    if mask.shape != x_obs.shape or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor of x_obs's shape {tuple(x_obs.shape)}, "
                         f"got {mask.dtype} {tuple(mask.shape)}")
    if bool((x_obs > n_max).any()):
        raise ValueError(f"x_obs must hold counts <= n_max = {n_max}")


def inpaint(model, x_obs, mask, times, method="tau_leaping", n_max=255, observed_path="bridge",
            generator=None, rounding="stochastic"):
    """Generate the unobserved pixels of ``x_obs`` (where ``mask`` is False) (Algorithm 11.1, Chapter 11).

    ``model``: a rate model; ``x_obs``: counts ``[B, ...]`` (values under ``~mask`` are
    ignored); ``mask``: bool, True where observed; ``times``: increasing grid as in
    ``sampling.sample``; ``method``: ``tau_leaping`` or ``binomial_bridge``;
    ``observed_path``: ``bridge`` or ``independent`` (module docstring). Runs on x_obs's
    device; returns long counts with ``result[mask] == x_obs[mask]``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if observed_path not in OBSERVED_PATHS:
        raise ValueError(f"observed_path must be one of {OBSERVED_PATHS}, got {observed_path!r}")
    _check_inputs(x_obs, mask, n_max)
    times = check_time_grid(times).to(x_obs.device)
    q = step_probabilities(times).to(torch.float32)
    x_obs = x_obs.long()
    batch = x_obs.shape[0]
    observed = process.sample_forward(x_obs, times[-1], generator=generator)
    x = torch.where(mask, observed, torch.zeros_like(x_obs))
    with torch.no_grad():
        for k in range(times.numel() - 1, -1, -1):
            t = times[k]
            s = times[k - 1] if k > 0 else torch.zeros((), dtype=times.dtype, device=times.device)
            y_hat = model(x.to(torch.get_default_dtype()), t.to(torch.get_default_dtype()).expand(batch))
            if method == "tau_leaping":
                x = tau_leaping_step(x, y_hat, q[k], n_max, generator)
            else:
                x = binomial_bridge_step(x, y_hat, q[k], n_max, rounding, generator)
            if observed_path == "bridge":
                observed = sample_bridge(observed, x_obs, s, t, generator=generator)
            else:
                observed = process.sample_forward(x_obs, s, generator=generator)
            x = torch.where(mask, observed, x)
    return x


def box_mask(shape, top, left, height, width, observed=True):
    """A bool mask ``shape`` [B, C, H, W] that is ``observed`` inside a box and the opposite outside (Chapter 11).

    ``observed=False`` hides the box (inpaint a hole); ``observed=True`` shows only the box
    (outpaint around it).
    """
    if len(shape) != 4:
        raise ValueError(f"shape must be [B, C, H, W], got {tuple(shape)}")
    h, w = shape[-2:]
    if not (0 <= top < top + height <= h and 0 <= left < left + width <= w):
        raise ValueError(f"the box (top={top}, left={left}, height={height}, width={width}) must "
                         f"lie inside the {h}x{w} image")
    mask = torch.full(tuple(shape), not observed, dtype=torch.bool)
    mask[..., top:top + height, left:left + width] = observed
    return mask
