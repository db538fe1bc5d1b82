"""Named training presets: every hyperparameter of a run (Chapters 7-9).

``get_preset(name, scale)`` returns a :class:`Preset` for ``digits``, ``mnist``,
``binarized-mnist`` or ``cifar10`` (our settings) at one of three scales:

* ``smoke``: seconds on a CPU; checks that the pipeline runs (CI, ``pytest --nbval``);
* ``laptop``: a real model on a 2-core CPU (digits: at most about 5 minutes);
* ``full``: the paper's process and optimiser on a GPU (T = 1000, t_end = 15, or 10
  for binarized MNIST; Adam lr 2e-4, EMA 0.9999, batch 256; flips on CIFAR-10)
  :cite:`santos2023blackout`, with our network, parameterisation and sampler.

The ``*-paper`` presets (``PAPER``) reproduce the official notebooks (Chapter 9).

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

from blackout_tutorial import _checks, data, ncsnpp, sampling, schedule
from blackout_tutorial.nets import UNetConfig

SCALES = ("smoke", "laptop", "full")
DEFAULT_SCALE = "laptop"
FAMILIES = ("digits", "mnist", "binarized-mnist", "cifar10")  # one per scale each
# The official notebooks' settings (blackout_tutorial._paper): scales smoke and full.
PAPER = ("cifar10-paper", "binarized-mnist-paper", "celeba64-paper")
# The exact presets of the checkpoints in the package (laptop scale only).
SHIPPED = ("mnist5k_small", "mnist-cpu", "binarized-mnist-cpu", "cifar10-cpu")
PRESETS = FAMILIES + PAPER + SHIPPED
NET_TYPES = {"unet": UNetConfig, "ncsnpp": ncsnpp.NCSNppConfig}
PARAMETERISATIONS = ("ours", "official")  # nets.RateModel / _official.OfficialRateModel


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation hyperparameters (Chapter 7)."""
    steps: int = 1000               # optimiser steps in total
    batch_size: int = 128           # global batch (split over processes under torchrun)
    lr: float = 2e-4                # Adam :cite:`kingma2015adam`
    warmup_steps: int = 100         # linear learning-rate warmup
    grad_clip: float = 1.0          # max global gradient norm (0: no clipping)
    ema_decay: float = 0.9999       # weight EMA, ramped: min(decay, (1+s)/(10+s))
    ema_order: str = "after"        # EMA update after optimizer.step() or "before"
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
        _checks.number(self.lr, "lr", minimum=0.0, strict=True)
        _checks.number(self.grad_clip, "grad_clip", minimum=0.0)
        if _checks.number(self.ema_decay, "ema_decay", minimum=0.0) >= 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        for name, choices in (("weights", schedule.KINDS),
                              ("weight_variant", schedule.VARIANTS),
                              ("time_sampling", schedule.TIME_SAMPLINGS),
                              ("lr_decay", ("none", "cosine")),
                              ("ema_order", ("after", "before")),
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
    net_type: str = "unet"          # a key of NET_TYPES: the class of ``net``
    net: object = field(default_factory=UNetConfig)
    parameterisation: str = "ours"  # "ours" (Chapter 7) or "official" (Chapter 9)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample_steps: int = 250         # default step count of the CLI sampler
    sample_method: str = "tau_leaping"
    sample_rounding: str = "stochastic"  # of the binomial bridge (sampling.ROUNDINGS)
    sample_dropout: bool = False    # keep dropout on while sampling (official: on)
    sample_count: int = 50_000      # images generated for an FID evaluation
    sample_batch: int = 256         # images per sampler batch

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
        _check_net(self, spec)
        for name in ("sample_steps", "sample_count", "sample_batch"):
            object.__setattr__(self, name, _checks.positive_int(getattr(self, name),
                                                                name))
        _checks.one_of(self.sample_method, sampling.METHODS, "sample_method")
        _checks.one_of(self.sample_rounding, sampling.ROUNDINGS, "sample_rounding")
        if not isinstance(self.sample_dropout, bool):
            raise ValueError(f"sample_dropout must be True or False, got "
                             f"{self.sample_dropout!r}")


def _check_net(preset, spec):
    _checks.one_of(preset.net_type, tuple(NET_TYPES), "net_type")
    _checks.one_of(preset.parameterisation, PARAMETERISATIONS, "parameterisation")
    for name, cls in (("net", NET_TYPES[preset.net_type]), ("train", TrainConfig)):
        if not isinstance(getattr(preset, name), cls):
            raise ValueError(f"{name} must be a {cls.__name__}, got "
                             f"{type(getattr(preset, name)).__name__}")
    if preset.net.image_channels != spec.shape[0]:
        raise ValueError(f"net.image_channels must be {spec.shape[0]} for dataset "
                         f"{preset.dataset!r}, got {preset.net.image_channels}")
    size = getattr(preset.net, "image_size", spec.shape[-1])
    if size != spec.shape[-1]:
        raise ValueError(f"net.image_size must be {spec.shape[-1]} for dataset "
                         f"{preset.dataset!r}, got {size}")


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
        net_cls = NET_TYPES.get(d.get("net_type", "unet"), UNetConfig)  # then checked
        d = {**d, "net": build(net_cls, d.get("net", {}), "net"),
             "train": build(TrainConfig, d.get("train", {}), "train")}
    return build(Preset, d, "preset")


def get_preset(name, scale="laptop"):
    """The preset ``name`` at ``scale`` (``smoke``, ``laptop``, ``full``), Chapters 7-9.

    Families: ``digits``, ``mnist``, ``binarized-mnist`` (``binarized_mnist`` is
    accepted), ``cifar10``. Paper: ``cifar10-paper``, ``binarized-mnist-paper``,
    ``celeba64-paper``, the official notebooks' settings (NCSN++, the official
    parameterisation and optimiser; scales ``smoke`` and ``full`` only, Chapter 9).
    Shipped (laptop scale only): ``mnist5k_small``, the preset of the checkpoint of
    that name (its ``name`` field stays ``mnist``, as stored in the checkpoint), and
    ``mnist-cpu``, ``binarized-mnist-cpu``, ``cifar10-cpu``, the presets of the
    checkpoints ``mnist``, ``binarized-mnist`` and ``cifar10`` (real data, Ch. 8-9).
    """
    key = name if name in SHIPPED else str(name).replace("_", "-")
    _checks.one_of(key, PRESETS, "preset name")
    _checks.one_of(scale, SCALES, "scale")
    if key in PAPER:
        from blackout_tutorial import _paper
        return _paper.paper_preset(key, scale)
    from blackout_tutorial import _families
    if key == "mnist5k_small":
        return _families.mnist5k_small(scale)
    if key in SHIPPED:
        return _families.cpu_shipped(key, scale)
    if key == "digits":
        return _families.digits(scale)
    if key == "cifar10":
        return _families.cifar10(scale)
    return _families.mnist(scale, binarized=key == "binarized-mnist")


def with_overrides(preset, **train_overrides):
    """A copy of ``preset`` with some ``TrainConfig`` fields replaced (``None`` =
    keep)."""
    changes = {k: v for k, v in train_overrides.items() if v is not None}
    unknown = sorted(set(changes) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise ValueError(f"unknown TrainConfig fields: {unknown}")
    return replace(preset, train=replace(preset.train, **changes))


def fidelity_table():
    """Chapter 9's fidelity table (Markdown): each setting of the official CIFAR-10
    notebook, the ``cifar10-paper`` and our ``cifar10`` full presets, and why ours
    differs; generated from the presets (``_paper.OFFICIAL`` holds the official
    values, and a test ties ``cifar10-paper`` to them)."""
    from blackout_tutorial import _paper
    return _paper.fidelity_markdown()


def paper_runs_table():
    """Chapter 9's table of the full ``*-paper`` runs (Markdown): FLOP-estimated cost
    (assumed throughput; nothing timed), published FID, and the commands."""
    from blackout_tutorial import _paper
    commands = "\n".join(c for name in PAPER for c in _paper.commands(name))
    return f"{_paper.runs_markdown()}\n\n```bash\n{commands}\n```"


def still_different():
    """What the ``*-paper`` presets still do differently from the official code, and
    why (Markdown bullets, Chapter 9)."""
    from blackout_tutorial import _paper
    return "\n".join(f"* {line}" for line in _paper.STILL_DIFFERENT)


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
