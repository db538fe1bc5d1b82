"""The official parameterisation of the rate model, and the builder of every preset's
network (Chapter 9).

Both parameterisations are rate models ``model(x_t, t) -> y_hat >= 0``, so losses and
samplers do not care which one they get; they differ in what the network sees and how
its output becomes y_hat:

============  ==========================================  ==========================
              ours (``nets.RateModel``, Chapter 7)        official (this module)
============  ==========================================  ==========================
input         (x_t - n_max p_t / 2) / (n_max p_t / 2 + 1)  x_t - n_max p_t / 2
time          scaled logit(p_t), continuous               step index k(t)
output        n_max (1 - p_t) softplus(f)                 softplus(f)
============  ==========================================  ==========================

The official code feeds the integer step index k of its training grid. The grid is
uniform in logit(p_t) (Eq. ch3-schedule, Chapter 3), so k is recovered from t exactly
by :func:`step_position`; between grid points (a sampler with another step count) it
is the continuous extension of the same affine map. The U-Net computes its own time
features from t (an affine map of logit(p_t) as well), so "official + U-Net" changes
only the input and the output.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from blackout_tutorial import _checks, ncsnpp, nets
from blackout_tutorial.schedule import logit_survival


def step_position(t, T, t_end):
    """k(t) = (T - 1)/2 (1 - logit(e^{-t}) / L), L = ln(e^{t_end} - 1): the official
    step index of the T-point grid (Eq. ch3-schedule, Chapter 3), continuous between.

    Computed in float64 and snapped to the integer within 1e-3 (float32 times of the
    grid give |k(t_k) - k| < 1e-4), so on the grid it is exactly the official index.
    """
    L = math.log(math.expm1(t_end))
    k = 0.5 * (T - 1) * (1.0 - logit_survival(t.double()) / L)
    r = k.round()
    return torch.where((k - r).abs() < 1e-3, r, k).float()


class ContinuousTime(nn.Module):
    """NCSN++ conditioned on Chapter 7's continuous position logit(p_t) 1000/30
    (Eq. ch7-time-features, Chapter 7) instead of a raw time."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    @property
    def cfg(self):
        """The configuration of the wrapped network."""
        return self.net.cfg

    def forward(self, x, t):
        return self.net(x, logit_survival(t.float()) * (1000.0 / 30.0))


class OfficialRateModel(nets.RateModel):
    """y_hat = softplus(f(x_t - (n_max/2) e^{-t}, k(t))): the official input (centred,
    unscaled: about +-127.5 at k = 0), time input and output (plain softplus).

    ``step_input=False`` passes t itself (for the U-Net, which embeds t on its own).
    """

    def __init__(self, net, n_max, T, t_end, step_input=True):
        super().__init__(net, n_max)
        self.T = _checks.positive_int(T, "T", minimum=2)
        self.t_end = _checks.number(t_end, "t_end", minimum=0.0, strict=True)
        self.step_input = bool(step_input)

    def rate(self, x_t, t):
        """The official output for checked inputs: x_t float counts, t float [B]."""
        x = x_t - 0.5 * self.n_max * torch.exp(-t)[:, None, None, None]
        time = step_position(t, self.T, self.t_end) if self.step_input else t
        return F.softplus(self.net(x, time).float())


def build_model(preset, n_max):
    """A freshly initialised rate model for ``preset``: its network (``net_type``) in
    its parameterisation (Chapters 7, 9)."""
    if preset.net_type == "ncsnpp":
        net = ncsnpp.NCSNpp(preset.net)
    else:
        net = nets.UNet(preset.net)
    if preset.parameterisation == "official":
        return OfficialRateModel(net, n_max, preset.T, preset.t_end,
                                 step_input=preset.net_type == "ncsnpp")
    return nets.RateModel(ContinuousTime(net) if preset.net_type == "ncsnpp" else net,
                          n_max)
