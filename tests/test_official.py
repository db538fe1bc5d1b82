"""Tests of the official parameterisation and the model builder
(blackout_tutorial._official, Chapter 9)."""
from dataclasses import replace

import pytest
import torch

from blackout_tutorial import _official, losses, nets, presets, schedule


def test_step_position_recovers_the_integer_step_index_on_the_grid():
    for T, t_end in ((1000, 15.0), (1000, 10.0), (50, 3.0)):
        times = schedule.observation_times(T, t_end)
        for dtype in (torch.float64, torch.float32):
            k = _official.step_position(times.to(dtype), T, t_end)
            assert torch.equal(k, torch.arange(T, dtype=torch.float32))
    # Off the grid: continuous and monotone between the integers.
    mid = schedule.observation_times(1999, 15.0)[1::2]
    k = _official.step_position(mid, 1000, 15.0)
    assert torch.allclose(k, torch.arange(999) + 0.5, atol=1e-3)


class _Recorder(torch.nn.Module):
    """A stand-in network that records its inputs and returns a constant."""

    def __init__(self, channels=1):
        super().__init__()
        self.cfg = nets.UNetConfig(image_channels=channels)
        self.bias = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, x, t):
        self.seen = (x.clone(), t.clone())
        return torch.zeros_like(x) + self.bias


def test_official_model_feeds_unscaled_centred_counts_and_the_step_index():
    net, times = _Recorder(), schedule.observation_times(1000, 15.0)
    model = _official.OfficialRateModel(net, 255, 1000, 15.0)
    x_t = torch.tensor([0.0, 200.0]).reshape(2, 1, 1, 1).expand(2, 1, 2, 2)
    t = times[[0, 7]].float()
    y = model(x_t, t)
    x_in, k = net.seen
    half = 127.5 * torch.exp(-t)
    assert torch.allclose(x_in[:, 0, 0, 0], torch.tensor([0.0, 200.0]) - half)
    assert torch.equal(k, torch.tensor([0.0, 7.0]))
    assert torch.allclose(y, torch.nn.functional.softplus(torch.tensor(0.5)))
    with pytest.raises(ValueError, match="x_t"):     # RateModel's checks still apply
        model(x_t + 300, t)


def _preset(net_type, parameterisation):
    base = presets.get_preset("cifar10-paper", "smoke")
    if net_type == "unet":
        base = replace(base, net_type="unet",
                       net=nets.net_config("tiny", image_channels=3))
    return replace(base, parameterisation=parameterisation)


@pytest.mark.parametrize("net_type", ["unet", "ncsnpp"])
@pytest.mark.parametrize("parameterisation", ["ours", "official"])
def test_both_parameterisations_work_with_both_networks(net_type, parameterisation,
                                                        one_thread):
    preset = _preset(net_type, parameterisation)
    torch.manual_seed(0)
    model = _official.build_model(preset, 255)
    kind = (_official.OfficialRateModel if parameterisation == "official"
            else nets.RateModel)
    assert type(model) is kind
    x0 = torch.randint(0, 256, (2, 3, 32, 32)).float()
    times = schedule.observation_times(preset.T, preset.t_end)
    weights = schedule.loss_weights(times, "official", "instantaneous")
    value = losses.blackout_loss(model, x0, times, weights,
                                 generator=torch.Generator().manual_seed(0))
    value.backward()
    assert torch.isfinite(value)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    y = model(x0, times[[3, 900]])
    assert y.shape == x0.shape and (y >= 0).all()
