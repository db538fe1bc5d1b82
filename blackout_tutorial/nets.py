"""A U-Net rate model with continuous-time conditioning (Chapter 7).

The network estimates y_hat = E[x0 - x_t | x_t], the expected number of units that died
between time 0 and t in each pixel (Chapter 4). It is a DDPM-style U-Net
:cite:`ronneberger2015unet,ho2020ddpm`: residual blocks with GroupNorm, SiLU and
dropout, self-attention at low resolution, and a time embedding added to every residual
block. Three design choices differ from the official code, each for a reason given where
it is made: time enters as a *continuous* value (any sampler step count works), counts
are normalised with a time-dependent scale, and the output is scaled by ``n_max (1 -
e^{-t})``.

``RateModel`` wraps the U-Net into the book's rate-model signature ``model(x_t, t)``.
No custom CUDA ops: everything runs on cuda, mps and cpu.
"""
import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from blackout_tutorial import _checks
from blackout_tutorial.schedule import logit_survival


@dataclass(frozen=True)
class UNetConfig:
    """Every architectural hyperparameter of the U-Net (Chapter 7).

    Level i works at resolution H / 2^i; ``attention_levels`` lists the levels that get
    self-attention (level 1 of a 32x32 image is the paper's "attention at 16x16").
    """
    image_channels: int = 1
    channels: int = 32                   # width of level 0
    channel_mults: tuple = (1, 2, 2)     # width multiplier per level
    num_res_blocks: int = 1              # residual blocks per level on the way down
    attention_levels: tuple = (1,)
    dropout: float = 0.0
    num_groups: int = 8                  # GroupNorm groups (must divide every width)

    def __post_init__(self):  # ValueError naming the field; lists become tuples
        for name in ("image_channels", "channels", "num_res_blocks", "num_groups"):
            object.__setattr__(self, name, _checks.positive_int(getattr(self, name),
                                                                name))
        for name, minimum in (("channel_mults", 1), ("attention_levels", 0)):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise ValueError(f"{name} must be a tuple of integers, got {value!r}")
            object.__setattr__(self, name, tuple(
                _checks.positive_int(v, f"{name} entry", minimum) for v in value))
        n_levels, widths = len(self.channel_mults), [
            self.channels * m for m in self.channel_mults]
        if not n_levels:
            raise ValueError("channel_mults must be a non-empty tuple of integers "
                             ">= 1, got ()")
        if any(not i < n_levels for i in self.attention_levels):
            raise ValueError(f"attention_levels must lie in 0..{n_levels - 1}, "
                             f"got {self.attention_levels}")
        if any(w % self.num_groups for w in widths):
            raise ValueError(f"num_groups={self.num_groups} must divide every level "
                             f"width {widths}")
        if _checks.number(self.dropout, "dropout", minimum=0.0) >= 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


NET_SIZES = {
    # 8x8 digits: levels 8 -> 4 -> 2, attention at 4x4.
    "tiny": UNetConfig(channels=32, channel_mults=(1, 1, 2), num_res_blocks=1,
                       attention_levels=(1,), dropout=0.0, num_groups=8),
    # 28/32 px MNIST: 32 -> 16 -> 8, attention at 8x8.
    "small": UNetConfig(channels=64, channel_mults=(1, 2, 2), num_res_blocks=2,
                        attention_levels=(2,), dropout=0.1, num_groups=16),
    # CIFAR-10: the DDPM CIFAR-10 network :cite:`ho2020ddpm` (35.7M parameters).
    "paper": UNetConfig(image_channels=3, channels=128, channel_mults=(1, 2, 2, 2),
                        num_res_blocks=2, attention_levels=(1,), dropout=0.1,
                        num_groups=32),
}


def net_config(size, **overrides):
    """The ``UNetConfig`` of a named size (``tiny``, ``small``, ``paper``), Chapter 7.

    Keyword overrides replace fields, e.g. ``net_config("small", image_channels=3)``.
    """
    if not isinstance(size, str) or size not in NET_SIZES:
        raise ValueError(f"size must be one of {sorted(NET_SIZES)}, got {size!r}")
    unknown = sorted(set(overrides) - set(UNetConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown UNetConfig fields: {unknown}")
    return replace(NET_SIZES[size], **overrides)


def time_features(t, dim):
    """Sinusoidal features of the continuous time t (Eq. ch7-time-features, Chapter 7).

    The observation times are uniform in logit(e^{-t}) (Chapter 3), which runs from
    about +15 to -15; scaled by 1000/30 it spans a range like DDPM's integer step index,
    so the usual frequencies 10000^{-i/(dim/2)} :cite:`ho2020ddpm` cover it from coarse
    to fine. Any real t >= 0 gets its own embedding: the sampler may use any step count.
    """
    position = logit_survival(t.float()) * (1000.0 / 30.0)
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = position[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, plus a per-channel time shift, twice, with a skip."""

    def __init__(self, c_in, c_out, time_dim, dropout, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(time_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(temb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over all pixels of a (low-resolution) feature map."""

    def __init__(self, channels, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c,
                                                 h * w).transpose(-1, -2).unbind(1)
        a = F.scaled_dot_product_attention(q, k, v)            # [B, HW, C]
        return x + self.out(a.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """DDPM-style U-Net f(x, t), x [B, C, H, W] (normalised counts), t [B] (Chapter 7).

    As in DDPM, the down path keeps a skip after the stem, after every residual block
    and after every downsampling; the up path has ``num_res_blocks + 1`` blocks per
    level, each consuming one skip. Sizes that are not a multiple of 2^(levels - 1)
    (28x28 MNIST) are zero-padded on the bottom/right and the output is cropped back.
    """

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        if not isinstance(cfg, UNetConfig):
            raise ValueError(f"cfg must be a UNetConfig, got {type(cfg).__name__}")
        ch, groups, n_levels = cfg.channels, cfg.num_groups, len(cfg.channel_mults)
        widths = [ch * m for m in cfg.channel_mults]   # checked by UNetConfig
        time_dim = 4 * ch
        self.time_mlp = nn.Sequential(nn.Linear(ch, time_dim), nn.SiLU(),
                                      nn.Linear(time_dim, time_dim))

        def block(c_in, c_out, level):
            res = ResBlock(c_in, c_out, time_dim, cfg.dropout, groups)
            attn = SelfAttention(c_out, groups) if level in cfg.attention_levels \
                else nn.Identity()
            return nn.ModuleList([res, attn])

        self.stem = nn.Conv2d(cfg.image_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        skip_widths, c = [ch], ch
        for level, w in enumerate(widths):
            for _ in range(cfg.num_res_blocks):
                self.down.append(block(c, w, level))
                c = w
                skip_widths.append(c)
            if level < n_levels - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skip_widths.append(c)
        self.mid = nn.ModuleList([ResBlock(c, c, time_dim, cfg.dropout, groups),
                                  SelfAttention(c, groups),
                                  ResBlock(c, c, time_dim, cfg.dropout, groups)])
        self.up = nn.ModuleList()
        for level, w in reversed(list(enumerate(widths))):
            for _ in range(cfg.num_res_blocks + 1):
                self.up.append(block(c + skip_widths.pop(), w, level))
                c = w
            if level > 0:
                self.up.append(nn.Conv2d(c, c, 3,
                                         padding=1))   # after 2x nearest upsampling
        self.head = nn.Sequential(nn.GroupNorm(groups, c), nn.SiLU(),
                                  nn.Conv2d(c, cfg.image_channels, 3, padding=1))
        # Start at f = 0 everywhere: a calm, input-independent first loss.
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x, t):
        size = x.shape[-2:]
        multiple = 2 ** (len(self.cfg.channel_mults) - 1)
        x = F.pad(x, (0, (-size[1]) % multiple, 0, (-size[0]) % multiple))
        temb = self.time_mlp(time_features(t, self.cfg.channels))
        h = self.stem(x)
        skips = [h]
        for layer in self.down:
            h = layer(h) if isinstance(layer,
                                       nn.Conv2d) else layer[1](layer[0](h, temb))
            skips.append(h)
        res1, attn, res2 = self.mid
        h = res2(attn(res1(h, temb)), temb)
        for layer in self.up:
            if isinstance(layer, nn.Conv2d):
                h = layer(F.interpolate(h, scale_factor=2, mode="nearest"))
            else:
                h = layer[1](layer[0](torch.cat([h, skips.pop()], dim=1), temb))
        return self.head(h)[..., :size[0], :size[1]]


def normalise_counts(x_t, t, n_max):
    """Network input (x_t - n_max p_t / 2) / (n_max p_t / 2 + 1), p_t = e^{-t} (Eq.
    ch7-input, Chapter 7).

    The official code feeds x_t - (n_max / 2) p_t: centred, but unscaled, so inputs
    reach +-127 on 8-bit images. Dividing by n_max p_t / 2 + 1 keeps both ends of the
    process in a range a network likes: near t = 0 the image lies in about [-1, 1] like
    a normalised picture, and late in the process (n_max p_t << 1, a few surviving units
    on black) each unit counts as about 1 instead of being blown up by 1 / p_t.
    """
    half = 0.5 * n_max * torch.exp(-t)[:, None, None, None]
    return (x_t - half) / (half + 1.0)


def rate_output(f, t, n_max):
    """The rate-model output y_hat = n_max (1 - e^{-t}) softplus(f) >= 0 (Eq.
    ch7-output, Chapter 7).

    ``f``: raw network output ``[B, ...]``; ``t``: times ``[B]`` (broadcast per sample).
    (1 - e^{-t}) is the fraction of units dead by time t, so f stays O(1) at every t
    although y_hat itself shrinks to ~ n_max t near t = 0. Any network becomes a rate
    model by ending with this (``RateModel`` does; so does Chapter 5's one-pixel
    ``TinyRate``).
    """
    dead_fraction = -torch.expm1(-t).reshape(-1, *([1] * (f.ndim - 1)))
    return n_max * dead_fraction * F.softplus(f)


class RateModel(nn.Module):
    """A U-Net wrapped as a rate model: ``model(x_t, t) -> y_hat >= 0`` (Chapters 4, 7).

    y_hat estimates E[x0 - x_t | x_t], the units that died by time t. The output is
    ``rate_output(f(x, t), t, n_max)`` = n_max (1 - e^{-t}) softplus(f(x, t)): without
    the factor (1 - e^{-t}) the softplus would need outputs near -20 close to t = 0. The
    implied birth rate p_t/(1 - p_t) * y_hat = n_max p_t softplus(f) is smooth in t.
    """

    def __init__(self, net: UNet, n_max: int):
        super().__init__()
        self.net = net
        self.n_max = _checks.positive_int(n_max, "n_max")

    def forward(self, x_t, t):
        channels = self.net.cfg.image_channels
        if x_t.ndim != 4 or x_t.shape[1] != channels:
            raise ValueError(f"x_t must have shape [B, {channels}, H, W], "
                             f"got {tuple(x_t.shape)}")
        t = torch.as_tensor(t, dtype=torch.float32, device=x_t.device)
        t = t.expand(x_t.shape[0]) if t.ndim == 0 else t
        if t.shape != (x_t.shape[0],):
            raise ValueError(f"t must be a scalar or have shape [B] = "
                             f"[{x_t.shape[0]}], got {tuple(t.shape)}")
        x_t = x_t.float()
        # One device sync for all checks (this runs once per sampler step).
        if not bool((t >= 0).all() & torch.isfinite(t).all() & (x_t >= 0).all()
                    & (x_t <= self.n_max).all()):
            raise ValueError(f"t must be finite and >= 0, and x_t must hold counts in "
                             f"0..n_max = {self.n_max}")
        return self.rate(x_t, t)

    def rate(self, x_t, t):
        """The output for checked inputs: x_t float counts, t float [B]."""
        f = self.net(normalise_counts(x_t, t, self.n_max), t).float()
        return rate_output(f, t, self.n_max)


def build_rate_model(cfg: UNetConfig, n_max: int):
    """A freshly initialised ``RateModel`` with the U-Net of ``cfg`` (Chapter 7)."""
    return RateModel(UNet(cfg), n_max)


def count_parameters(module):
    """Number of trainable parameters of a module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
