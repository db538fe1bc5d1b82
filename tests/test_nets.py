"""Tests of the U-Net rate model (blackout_tutorial.nets, Chapter 7)."""
import math

import pytest
import torch

from blackout_tutorial import nets


def _model(size="tiny", n_max=16, **overrides):
    torch.manual_seed(0)
    return nets.build_rate_model(nets.net_config(size, **overrides), n_max)


def _perturb_head(model):
    # The head starts at zero (f = 0 everywhere); give it weights so outputs depend on
    # x, t.
    with torch.no_grad():
        for p in model.net.head[-1].parameters():
            p.normal_(0, 0.1)
    return model


@pytest.mark.parametrize(
    "size,shape",
    [
        ("tiny", (3, 1, 8, 8)),
        ("tiny", (2, 1, 28, 28)),
        ("small", (2, 1, 28, 28)),
        ("small", (2, 1, 32, 32)),
        ("tiny", (2, 3, 32, 32)),
    ],
)
def test_output_shape_and_sign(size, shape):
    model = _perturb_head(_model(size, image_channels=shape[1]).eval())
    x = torch.randint(0, 17, shape).float()
    y = model(x, torch.rand(shape[0]) * 5)
    assert y.shape == x.shape
    assert torch.isfinite(y).all() and (y >= 0).all()


def test_parameter_counts_of_size_presets():
    counts = {
        size: nets.count_parameters(nets.UNet(nets.net_config(size)))
        for size in nets.NET_SIZES
    }
    assert counts["tiny"] < 1_000_000
    assert 2_000_000 < counts["small"] < 10_000_000
    # The DDPM CIFAR-10 network has 35.7M parameters (Ho et al. 2020).
    assert counts["paper"] == pytest.approx(35.7e6, rel=0.01)
    paper = nets.net_config("paper")
    assert (
        paper.channels,
        paper.channel_mults,
        paper.attention_levels,
        paper.dropout,
    ) == (128, (1, 2, 2, 2), (1,), 0.1)


def test_initial_output_is_the_dead_fraction_times_n_max_ln2():
    # Zero-initialised head: f = 0, so y_hat = n_max (1 - e^{-t}) softplus(0) exactly.
    model = _model().eval()
    t = torch.tensor([0.01, 1.0, 5.0])
    y = model(torch.zeros(3, 1, 8, 8), t)
    expected = 16 * (1 - torch.exp(-t)) * math.log(2)
    torch.testing.assert_close(y[:, 0, 0, 0], expected, rtol=1e-5, atol=0)


def test_output_depends_on_time_between_grid_points():
    # Continuous time: t values that no training grid holds give distinct, smooth
    # outputs.
    model = _perturb_head(_model()).eval()
    x = torch.randint(0, 17, (1, 1, 8, 8)).float().repeat(3, 1, 1, 1)
    y = model(x, torch.tensor([0.5, 0.5 + 1e-3, 0.9]))
    assert not torch.allclose(y[0], y[2])
    assert (y[0] - y[1]).abs().max() < 0.05 * (y[0] - y[2]).abs().max()


def test_time_features_are_distinct_and_bounded():
    feats = nets.time_features(torch.tensor([1e-3, 1.0, 10.0]), 32)
    assert feats.shape == (3, 32) and feats.abs().max() <= 1
    assert torch.cdist(feats, feats)[~torch.eye(3, dtype=bool)].min() > 0.5


def test_normalise_counts_endpoints():
    x = torch.tensor([0.0, 16.0, 1.0]).reshape(3, 1, 1, 1)
    t = torch.tensor([0.0, 0.0, 30.0])
    z = nets.normalise_counts(x, t, 16).flatten()
    torch.testing.assert_close(
        z, torch.tensor([-8 / 9, 8 / 9, 1.0]), rtol=1e-6, atol=1e-6
    )


def test_odd_sizes_are_padded_and_cropped_back():
    # 28x28 is padded to 32x32 inside and cropped back: the corner next to the padding
    # still sees its own input.
    model = _perturb_head(_model("tiny")).eval()
    x = torch.zeros(1, 1, 28, 28)
    y0 = model(x, torch.tensor([1.0]))
    x[0, 0, 27, 27] = 5
    y1 = model(x, torch.tensor([1.0]))
    assert y1.shape == (1, 1, 28, 28)
    assert (y1 - y0)[0, 0, 27, 27].abs() > 0


def test_eval_mode_is_deterministic_with_dropout():
    model = _perturb_head(_model("small", n_max=255, channels=16, num_groups=8)).eval()
    x, t = torch.randint(0, 256, (2, 1, 28, 28)).float(), torch.tensor([0.3, 4.0])
    torch.testing.assert_close(model(x, t), model(x, t))
    assert model.net.cfg.dropout == 0.1


@pytest.mark.parametrize("x,t,match", [
    (torch.zeros(2, 8, 8), torch.ones(2), "x_t must have shape"),
    (torch.zeros(2, 3, 8, 8), torch.ones(2), "x_t must have shape"),
    (torch.zeros(2, 1, 8, 8), torch.ones(3), "t must be a scalar or have shape"),
    (torch.zeros(2, 1, 8, 8), torch.tensor([1.0, -0.1]), "t must be finite and >= 0"),
    (torch.zeros(2, 1, 8, 8), torch.tensor([1.0, float("nan")]), "t must be finite"),
    (-torch.ones(2, 1, 8, 8), torch.ones(2), "counts in 0..n_max"),
])
def test_rate_model_rejects_bad_input(x, t, match):
    with pytest.raises(ValueError, match=match):
        _model()(x, t)


def test_scalar_time_is_broadcast():
    model = _model().eval()
    x = torch.zeros(2, 1, 8, 8)
    torch.testing.assert_close(model(x, 1.5), model(x, torch.tensor([1.5, 1.5])))


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="size must be one of"):
        nets.net_config("huge")
    with pytest.raises(ValueError, match="num_groups"):
        nets.UNet(nets.net_config("tiny", num_groups=7))
    with pytest.raises(ValueError, match="attention_levels"):
        nets.UNet(nets.net_config("tiny", attention_levels=(5,)))
    with pytest.raises(ValueError, match="n_max"):
        nets.RateModel(nets.UNet(nets.net_config("tiny")), 0)


def test_rate_output_is_the_scaled_softplus_and_rejects_nothing_silently():
    f = torch.tensor([[-3.0, 0.0, 2.0], [1.0, 1.0, 1.0]])
    t = torch.tensor([0.5, 4.0])
    expected = 16 * (1 - torch.exp(-t))[:, None] * torch.nn.functional.softplus(f)
    torch.testing.assert_close(nets.rate_output(f, t, 16), expected)
    model = _model()
    with pytest.raises(ValueError, match="n_max"):
        model(torch.full((1, 1, 8, 8), 17.0), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="channels"):
        nets.UNet(nets.net_config("tiny", channels=0))
    with pytest.raises(ValueError, match="channel_mults"):
        nets.UNet(nets.net_config("tiny", channel_mults=()))


# REVIEW E: UNet(channels=0) and channel_mults=() built silently broken networks.
@pytest.mark.parametrize("field, value", [
    ("channels", 0), ("channels", -8), ("channels", 2.5), ("image_channels", 0),
    ("num_res_blocks", 0), ("num_groups", 0), ("num_groups", 7), ("channel_mults", ()),
    ("channel_mults", (0, 1)), ("channel_mults", (1.5,)), ("channel_mults", "12"),
    ("channel_mults", None), ("attention_levels", (-1,)), ("attention_levels", (5,)),
    ("attention_levels", None), ("dropout", 1.0), ("dropout", -0.1),
    ("dropout", float("nan")), ("bogus", 1),
])
def test_unet_config_fields_are_checked_on_construction(field, value):
    with pytest.raises(ValueError, match=field):
        nets.net_config("tiny", **{field: value})


def test_unet_config_keeps_tuples_and_unet_needs_a_config():
    cfg = nets.UNetConfig(channel_mults=[1, 2], attention_levels=[1])
    assert cfg.channel_mults == (1, 2) and cfg.attention_levels == (1,)
    with pytest.raises(ValueError, match="cfg must be a UNetConfig"):
        nets.UNet({"channels": 8})
