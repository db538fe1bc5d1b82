"""NCSN++ (blackout_tutorial.ncsnpp): official parameter counts, shapes, one training
step, the near-zero initialisation of residual branches, FIR resampling, config checks.

The full 62.7M network is built once per module (about 1 s on a CPU); everything else
uses small widths.
"""
import math

import pytest
import torch

from blackout_tutorial import ncsnpp
from blackout_tutorial._ncsnpp_layers import (
    ZERO_SCALE,
    Attention,
    FIRDownConv,
    FIRResample,
    ResBlock,
    sinusoidal_embedding,
)


def n_params(net):
    return sum(p.numel() for p in net.parameters())


@pytest.fixture(scope="module")
def cifar_net():
    torch.manual_seed(0)
    return ncsnpp.build(3, 32)


def small(**overrides):
    torch.manual_seed(0)
    settings = dict(nf=16, num_res_blocks=1, ch_mult=(1, 2, 2), attn_resolutions=(8,))
    settings.update(overrides)
    return ncsnpp.build(**settings)


def test_parameter_count_of_the_3_channel_network_is_the_official_one(cifar_net):
    assert n_params(cifar_net) == ncsnpp.OFFICIAL_PARAMETER_COUNTS[3] == 62_693_251


@pytest.mark.parametrize("channels,size", [(3, 64), (1, 32)])
def test_parameter_counts_of_celeba64_and_mnist_networks(channels, size):
    net = ncsnpp.build(channels, size)
    assert n_params(net) == ncsnpp.OFFICIAL_PARAMETER_COUNTS[channels]
    assert abs(n_params(net) / {3: 62_693_251, 1: 62_686_337}[channels] - 1) < 1e-3
    if size == 64:          # attention moves to level 2 (16x16), once in the up path
        assert isinstance(net.down[2].attn[0], Attention)
        assert not isinstance(net.down[1].attn[0], Attention)


def test_output_shape_at_32x32_and_is_finite(cifar_net):
    x = torch.randn(2, 3, 32, 32) * 100          # official inputs reach about +-127
    out = cifar_net.eval()(x, torch.tensor([0.0, 999.0]))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_output_shape_at_64x64():
    net = small(image_size=64, ch_mult=(1, 2, 2, 2), attn_resolutions=(16,))
    x = torch.randn(2, 3, 64, 64)
    assert net(x, torch.tensor([3.0, 7.0])).shape == x.shape


def test_one_training_step_has_finite_gradients_and_changes_the_weights():
    # Every layer type of the full network, at a width that trains fast on a CPU.
    net = small(image_channels=1, num_res_blocks=2, attn_resolutions=(16,)).train()
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    x, k = torch.randn(2, 1, 32, 32), torch.tensor([10.0, 500.0])
    target = torch.rand(2, 1, 32, 32)
    before = net.head.weight.detach().clone()
    loss = (torch.nn.functional.softplus(net(x, k)) - target).pow(2).mean()
    loss.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert net.head.weight.grad.abs().sum() > 0
    opt.step()
    assert not torch.equal(net.head.weight, before)
    assert torch.isfinite(net(x, k)).all()


def test_init_scale_zero_gives_tiny_last_layers_and_near_identity_branches(cifar_net):
    closing = [m.conv1 for m in cifar_net.modules() if isinstance(m, ResBlock)]
    closing += [m.out for m in cifar_net.modules() if isinstance(m, Attention)]
    closing.append(cifar_net.head)
    res_blocks = (4 * 4 + 3) + 2 + (4 * 5 + 3)      # down, middle, up
    attention = 4 + 1 + 1
    assert len(closing) == res_blocks + attention + 1
    for layer in closing:
        w = layer.weight
        fan_avg = 0.5 * (w.shape[0] + w.shape[1]) * w[0, 0].numel()
        assert w.abs().max() <= math.sqrt(3 * ZERO_SCALE / fan_avg)
        assert w.abs().max() > 0 and torch.count_nonzero(layer.bias) == 0
    # So a fresh network's output is ~1e-5 whatever its input ...
    x = torch.randn(2, 3, 32, 32)
    out = cifar_net.eval()(x, torch.tensor([1.0, 2.0]))
    assert out.abs().max() < 1e-3
    # ... and each residual block starts as its (rescaled) shortcut.
    block, attn = cifar_net.down[0].blocks[0], cifar_net.down[1].attn[0]
    h = torch.randn(2, 128, 32, 32)
    temb = torch.randn(2, 512)
    assert torch.allclose(block(h, temb), h / math.sqrt(2), atol=1e-4)
    h = torch.randn(2, 256, 16, 16)
    assert torch.allclose(attn(h), h / math.sqrt(2), atol=1e-4)


def test_init_scale_one_makes_the_output_depend_on_the_input():
    net = small(init_scale=1.0).eval()
    x = torch.randn(2, 3, 32, 32)
    t = torch.tensor([1.0, 1.0])
    assert (net(x, t) - net(x + 1, t)).abs().max() > 1e-2


def test_fir_down_then_up_keeps_a_constant_image_constant_inside():
    down, up = FIRResample((1, 3, 3, 1), "down"), FIRResample((1, 3, 3, 1), "up")
    x = torch.full((1, 2, 16, 16), 3.0)
    small_x = down(x)
    assert small_x.shape == (1, 2, 8, 8)
    assert torch.allclose(small_x[..., 1:-1, 1:-1], torch.tensor(3.0))
    back = up(small_x)
    assert back.shape == x.shape
    assert torch.allclose(back[..., 3:-3, 3:-3], torch.tensor(3.0))
    # Only the zero padding at the border darkens the edge: 7/8 there.
    assert torch.allclose(small_x[0, 0, 0, 4], torch.tensor(3.0 * 7 / 8))


def test_fir_resampling_preserves_the_mean_of_an_image_away_from_the_border():
    torch.manual_seed(1)
    x = torch.zeros(1, 1, 16, 16)
    x[..., 4:12, 4:12] = torch.rand(8, 8)
    down, up = FIRResample((1, 3, 3, 1), "down"), FIRResample((1, 3, 3, 1), "up")
    assert torch.allclose(down(x).mean(), x.mean(), atol=1e-6)
    assert torch.allclose(up(x).mean(), x.mean(), atol=1e-6)
    conv = FIRDownConv(1, 1, (1, 3, 3, 1))
    assert conv(x).shape == (1, 1, 8, 8)


def test_sinusoidal_embedding_uses_frequencies_10000_to_the_minus_i_over_63():
    t = torch.tensor([0.0, 7.0])
    e = sinusoidal_embedding(t, 128)
    assert e.shape == (2, 128)
    i = torch.arange(64)
    assert torch.allclose(e[1, :64], torch.sin(7.0 * 10000.0 ** (-i / 63)), atol=1e-5)
    assert torch.allclose(e[1, 64:], torch.cos(7.0 * 10000.0 ** (-i / 63)), atol=1e-5)
    assert torch.equal(e[0], torch.cat([torch.zeros(64), torch.ones(64)]))


def test_defaults_are_the_official_settings():
    s = ncsnpp.NCSNppConfig().settings()
    assert s["nf"] == 128 and s["ch_mult"] == (1, 2, 2, 2) and s["num_res_blocks"] == 4
    assert s["attn_resolutions"] == (16,) and s["dropout"] == 0.1
    assert s["fir_kernel"] == (1, 3, 3, 1) and s["init_scale"] == 0.0
    assert s["progressive_input"] == "residual" and s["centered"] is True


@pytest.mark.parametrize("field,value", [
    ("nf", 0), ("nf", 6), ("nf", 12.5), ("ch_mult", ()), ("ch_mult", [1, 2]),
    ("ch_mult", (1, 0)), ("num_res_blocks", 0), ("attn_resolutions", 16),
    ("dropout", 1.0), ("dropout", -0.1), ("fir_kernel", (1,)),
    ("fir_kernel", (0, 0)), ("image_size", 30), ("image_channels", 0),
    ("init_scale", -1.0), ("max_positions", 0), ("skip_rescale", 1),
    ("centered", "yes"), ("resblock_type", "ddpm"), ("fir", False),
    ("progressive", "output_skip"), ("scale_by_sigma", True),
])
def test_bad_config_values_raise_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ncsnpp.NCSNppConfig(**{field: value})


def test_group_norm_widths_are_checked():
    with pytest.raises(ValueError, match="nf"):
        ncsnpp.NCSNppConfig(nf=36)


def test_bad_inputs_raise_value_error_naming_them():
    net = small()
    with pytest.raises(ValueError, match="x must"):
        net(torch.zeros(2, 1, 32, 32), torch.zeros(2))
    with pytest.raises(ValueError, match="t must"):
        net(torch.zeros(2, 3, 32, 32), torch.zeros(3))
    with pytest.raises(ValueError, match="t must"):
        net(torch.zeros(2, 3, 32, 32), 1.0)
