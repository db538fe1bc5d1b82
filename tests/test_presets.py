import json
from pathlib import Path

import pytest
import torch

import blackout_tutorial
from blackout_tutorial import nets, presets


def test_version_is_exposed():
    version = blackout_tutorial.__version__
    assert isinstance(version, str) and version.count(".") == 2


def test_profile_from_environment():
    assert presets.current_profile({"BLACKOUT_PROFILE": "smoke"}) == "smoke"
    assert presets.current_profile({"BLACKOUT_PROFILE": " Laptop "}) == "laptop"


def test_default_profile_is_laptop_on_any_hardware():
    # REVIEW D.6: a GPU must not start a paper-scale run unless asked for.
    assert presets.current_profile({}) == "laptop"


def test_unknown_profile_names_the_variable():
    with pytest.raises(ValueError, match="BLACKOUT_PROFILE"):
        presets.current_profile({"BLACKOUT_PROFILE": "huge"})


def test_describe_names_profile_and_device():
    line = presets.describe()
    assert (
        "profile" in line and "device" in line and blackout_tutorial.__version__ in line
    )


def test_unknown_submodule_is_an_attribute_error():
    for name in ("not_a_module", "profiles"):
        with pytest.raises(AttributeError):
            getattr(blackout_tutorial, name)


def test_presets_name_the_paper_settings_and_round_trip_through_json():
    for name in presets.FAMILIES:
        for scale in presets.SCALES:
            p = presets.get_preset(name, scale)
            assert presets.from_dict(json.loads(json.dumps(presets.to_dict(p)))) == p
    cifar = presets.get_preset("cifar10", "full")
    assert (cifar.T, cifar.t_end, cifar.train.lr, cifar.train.ema_decay,
            cifar.train.batch_size, cifar.train.hflip, cifar.net) == \
        (1000, 15.0, 2e-4, 0.9999, 256, True, nets.net_config("paper"))
    assert (cifar.train.time_sampling, cifar.train.lr_decay) == ("uniform", "none")
    assert presets.get_preset("binarized_mnist", "full").t_end == 10.0
    assert presets.get_preset("binarized-mnist", "full").dataset == "binarized_mnist"
    with pytest.raises(ValueError, match="preset name must be one of"):
        presets.get_preset("celeba")
    with pytest.raises(ValueError, match="scale must be one of"):
        presets.get_preset("digits", "huge")
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        presets.from_dict({**presets.to_dict(cifar), "train": {"learning_rate": 1}})


def _shipped_config(name):
    path = Path(blackout_tutorial.__file__).parent / "checkpoints" / f"{name}.pt"
    stored = torch.load(path, map_location="cpu", weights_only=True)["config"]
    return json.loads(stored) if isinstance(stored, str) else stored


@pytest.mark.parametrize(
    "checkpoint, name, scale",
    [
        ("mnist5k_small", "mnist5k_small", "laptop"),
        ("digits_laptop", "digits", "laptop"),
    ],
)
def test_shipped_checkpoints_come_from_named_presets(checkpoint, name, scale):
    # The command that made each shipped model is `train --preset <name> --scale
    # <scale>`.
    preset = presets.get_preset(name, scale)
    assert presets.from_dict(_shipped_config(checkpoint)) == preset
    assert nets.count_parameters(nets.build_rate_model(preset.net, 255)) < 300_000 \
        or name == "digits"
    with pytest.raises(ValueError, match="scale must be 'laptop'"):
        presets.get_preset("mnist5k_small", "full")


# REVIEW E: with_overrides(steps=-5 | batch_size=0 | lr=nan | checkpoint_every=0) and
# from_dict(T='abc', dataset='nope') were accepted; batch_size=0 and cosine decay with
# steps=0 crashed later. Every field is now checked on construction.
@pytest.mark.parametrize("field, value", [
    ("steps", -5), ("steps", 0), ("batch_size", 0), ("lr", float("nan")),
    ("lr", float("inf")), ("lr", 0.0), ("checkpoint_every", 0), ("warmup_steps", -1),
    ("grad_clip", -1.0), ("ema_decay", 1.0), ("ema_decay", -0.1), ("seed", -1),
    ("seed", 2**64), ("sample_every", -1), ("sample_grid", 0), ("steps", True),
    ("steps", 2.5), ("weights", "nope"), ("weight_variant", "x"),
    ("time_sampling", "x"), ("lr_decay", "step"), ("hflip", 1), ("bf16", "yes"),
    ("ema_order", "during"), ("grad_clip", float("nan")),
])
def test_train_config_fields_are_checked(field, value):
    with pytest.raises(ValueError, match=field):
        presets.with_overrides(presets.get_preset("digits", "smoke"), **{field: value})


@pytest.mark.parametrize("changes, field", [
    ({"T": "abc"}, "T"), ({"T": 1}, "T"), ({"dataset": "nope"}, "dataset"),
    ({"dataset": ["digits"]}, "dataset"), ({"t_end": -1.0}, "t_end"),
    ({"t_end": float("nan")}, "t_end"), ({"t_end": 0.5}, "t_end"),
    ({"t_end": 1e-300}, "t_end"), ({"t_end": 800.0}, "t_end"),
    ({"scale": "huge"}, "scale"),
    ({"name": ""}, "name"), ({"sample_steps": 0}, "sample_steps"),
    ({"sample_method": "euler"}, "sample_method"), ({"net": 5}, "net"),
    ({"net": {"image_channels": 3}}, "image_channels"), ({"train": {"lr": -1}}, "lr"),
    ({"train": {"bogus": 1}}, "bogus"), ({"extra": 1}, "extra"),
    ({"net_type": "resnet"}, "net_type"),
    ({"parameterisation": "x"}, "parameterisation"),
    ({"net_type": "ncsnpp"}, "unknown NCSNppConfig fields"),
    ({"sample_rounding": "up"}, "sample_rounding"),
    ({"sample_dropout": 1}, "sample_dropout"), ({"sample_count": 0}, "sample_count"),
    ({"sample_batch": -1}, "sample_batch"),
])
def test_preset_fields_are_checked_by_from_dict(changes, field):
    d = {**presets.to_dict(presets.get_preset("digits", "smoke")), **changes}
    with pytest.raises(ValueError, match=field):
        presets.from_dict(d)


def test_missing_fields_and_unknown_overrides_are_named():
    d = presets.to_dict(presets.get_preset("digits", "smoke"))
    del d["name"]
    with pytest.raises(ValueError, match="name"):
        presets.from_dict(d)
    with pytest.raises(ValueError, match="preset must be a dict"):
        presets.from_dict(5)
    with pytest.raises(ValueError, match="unknown TrainConfig fields.*stepz"):
        presets.with_overrides(presets.get_preset("digits"), stepz=3)


@pytest.mark.parametrize("device", ["bogus", "", 5, True, "cuda:99", "meta"])
def test_resolve_device_names_a_bad_or_missing_device(device):
    with pytest.raises(ValueError, match="device"):
        presets.resolve_device(device)
    assert presets.resolve_device("cpu").type == "cpu"
    assert presets.resolve_device(None) == presets.default_device()


def test_a_config_stored_before_the_paper_fields_still_loads():
    # Checkpoints written before issue 15 have no net_type, parameterisation or
    # sample_* fields: they are a U-Net with our parameterisation and sampler.
    d = presets.to_dict(presets.get_preset("digits", "smoke"))
    for key in ("net_type", "parameterisation", "sample_rounding", "sample_dropout",
                "sample_count", "sample_batch"):
        del d[key]
    del d["train"]["ema_order"]
    assert presets.from_dict(d) == presets.get_preset("digits", "smoke")


def test_an_ncsnpp_net_must_match_the_images():
    from dataclasses import replace
    paper = presets.get_preset("cifar10-paper", "smoke")
    with pytest.raises(ValueError, match="net.image_size must be 32"):
        replace(paper, net=replace(paper.net, image_size=64))
    with pytest.raises(ValueError, match="net must be a NCSNppConfig"):
        replace(paper, net=nets.net_config("tiny", image_channels=3))
    tiny = nets.net_config("tiny", image_channels=3)
    unet = replace(paper, net_type="unet", net=tiny)
    assert unet.parameterisation == "official"
