"""NCSN++, the network of the official Blackout Diffusion code (Chapter 9).

NCSN++ :cite:`song2021scoresde` is a U-Net with BigGAN-type residual blocks that
resample inside the residual path, FIR up/down-sampling with the kernel [1, 3, 3, 1],
skips rescaled by 1/sqrt(2), DDPM-style self-attention at 16x16, and a "residual"
progressive input: a FIR-downsampled copy of the input image is added to the features
after every downsampling. The official Blackout notebooks use it with the settings of
score_sde's ``cifar10_ncsnpp_continuous`` configuration for all three data sets;
:class:`NCSNppConfig`'s defaults are those settings, and :func:`build` instantiates
them with the official parameter counts (62,693,251 for 3 channels at 32x32 or 64x64,
62,686,337 for 1 channel).

The network is conditioned on one float per image, ``t`` [B], through the sinusoidal
embedding of ``t`` itself (128 dims, frequencies 10000^(-i/63)) followed by two dense
layers. The official code feeds the integer step index k = 0..T-1; whoever calls the
network decides what ``t`` is (the step index, or a continuous position such as
Chapter 7's scaled logit of the survival probability). The layers live in
``blackout_tutorial._ncsnpp_layers``; everything is plain torch.
"""
import math
from dataclasses import dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from blackout_tutorial import _checks
from blackout_tutorial._ncsnpp_layers import (
    Attention,
    FIRDownConv,
    ResBlock,
    conv,
    dense,
    group_norm,
    sinusoidal_embedding,
)

# Settings of the official configuration that this implementation supports in one
# form only; they are fields so that a configuration states every choice it makes.
_FIXED = {
    "resblock_type": "biggan", "fir": True, "resamp_with_conv": True,
    "progressive": "none", "progressive_input": "residual",
    "progressive_combine": "sum", "embedding_type": "positional",
    "scale_by_sigma": False, "conditional": True,
}


@dataclass(frozen=True)
class NCSNppConfig:
    """Every setting of NCSN++; the defaults are the official Blackout ones (Chapter 9).

    ``image_size`` is the side of the square input (a multiple of 2^(levels - 1)); it
    decides where ``attn_resolutions`` fall. ``nf`` is the width of level 0 and also the
    size of the sinusoidal embedding; the time MLP is 4 ``nf`` wide. ``init_scale`` is
    the variance scale of the last layer of every residual branch and of the output
    convolution (0 = 1e-10, as in the official code). ``centered=False`` maps inputs
    x -> 2x - 1 first. The fields after ``centered`` name the official options that are
    implemented in one form only; any other value raises ``ValueError``.
    """
    image_channels: int = 3
    image_size: int = 32
    nf: int = 128
    ch_mult: tuple = (1, 2, 2, 2)
    num_res_blocks: int = 4
    attn_resolutions: tuple = (16,)
    dropout: float = 0.1
    fir_kernel: tuple = (1, 3, 3, 1)
    skip_rescale: bool = True
    init_scale: float = 0.0
    max_positions: float = 10000.0
    centered: bool = True
    resblock_type: str = "biggan"
    fir: bool = True
    resamp_with_conv: bool = True
    progressive: str = "none"
    progressive_input: str = "residual"
    progressive_combine: str = "sum"
    embedding_type: str = "positional"
    scale_by_sigma: bool = False
    conditional: bool = True

    def __post_init__(self):
        for name in ("image_channels", "image_size", "num_res_blocks"):
            _checks.positive_int(getattr(self, name), name)
        if _checks.positive_int(self.nf, "nf") % 4:
            raise ValueError(f"nf must be a multiple of 4, got {self.nf}")
        _check_int_tuple(self.ch_mult, "ch_mult")
        _check_int_tuple(self.attn_resolutions, "attn_resolutions", empty=True)
        _check_int_tuple(self.fir_kernel, "fir_kernel", minimum=0)
        if len(self.fir_kernel) < 2 or sum(self.fir_kernel) <= 0:
            raise ValueError(f"fir_kernel must have >= 2 taps and a positive sum, "
                             f"got {self.fir_kernel!r}")
        if self.image_size % 2 ** (len(self.ch_mult) - 1):
            raise ValueError(f"image_size must be a multiple of 2^(len(ch_mult) - 1) "
                             f"= {2 ** (len(self.ch_mult) - 1)}, got {self.image_size}")
        _checks.number(self.init_scale, "init_scale", minimum=0)
        _checks.number(self.max_positions, "max_positions", minimum=0, strict=True)
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be a number in [0, 1), "
                             f"got {self.dropout!r}")
        for name in ("skip_rescale", "centered"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, "
                                 f"got {getattr(self, name)!r}")
        for name, value in _FIXED.items():
            if getattr(self, name) != value or type(getattr(self, name)) is not \
                    type(value):
                raise ValueError(f"{name}: only {value!r} is implemented, "
                                 f"got {getattr(self, name)!r}")
        self._check_group_norms()

    def _check_group_norms(self):
        widths = [self.nf * m for m in self.ch_mult]
        for width in {a + b for a in widths for b in widths} | set(widths):
            groups = min(width // 4, 32)
            if width % groups:
                raise ValueError(f"nf={self.nf}, ch_mult={self.ch_mult}: width {width} "
                                 f"is not divisible by its {groups} GroupNorm groups")

    def settings(self):
        """Every field as a plain ``{name: value}`` dict (for tables and printing)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _check_int_tuple(value, name, minimum=1, empty=False):
    ok = isinstance(value, tuple) and (empty or len(value) > 0) and all(
        not isinstance(v, bool) and isinstance(v, int) and v >= minimum for v in value)
    if not ok:
        raise ValueError(f"{name} must be a {'' if empty else 'non-empty '}tuple of "
                         f"integers >= {minimum}, got {value!r}")


class NCSNpp(nn.Module):
    """NCSN++ f(x, t): x [B, C, S, S], t [B] floats -> [B, C, S, S] (Chapter 9).

    Down path: a 3x3 stem, then per level ``num_res_blocks`` residual blocks (each
    followed by attention at ``attn_resolutions``) and, except on the last level, a
    downsampling residual block; the input pyramid (FIR blur + stride-2 conv of the
    previous pyramid) is added to its output, divided by sqrt(2), and becomes the next
    pyramid. Every block's output is kept as a skip. Middle: block, attention, block.
    Up path: per level ``num_res_blocks + 1`` blocks, each consuming one skip by
    concatenation, attention once at ``attn_resolutions``, then an upsampling block.
    Head: GroupNorm, swish, 3x3 conv to C channels.
    """

    def __init__(self, cfg: NCSNppConfig):
        super().__init__()
        self.cfg = cfg
        nf, temb_dim = cfg.nf, 4 * cfg.nf
        self.temb = nn.Sequential(dense(nf, temb_dim), nn.SiLU(),
                                  dense(temb_dim, temb_dim))
        self.stem = conv(cfg.image_channels, nf)
        self.down, skips, c = self._build_down(temb_dim)
        self.mid = nn.ModuleList([ResBlock(c, c, temb_dim, cfg), Attention(c, cfg),
                                  ResBlock(c, c, temb_dim, cfg)])
        self.up, c = self._build_up(temb_dim, skips, c)
        self.head_norm = group_norm(c)
        self.head = conv(c, cfg.image_channels, init_scale=cfg.init_scale)

    def _attends(self, level):
        return self.cfg.image_size // 2 ** level in self.cfg.attn_resolutions

    def _build_down(self, temb_dim):
        cfg, levels = self.cfg, nn.ModuleList()
        c, pyramid_c, skips = cfg.nf, cfg.image_channels, [cfg.nf]
        for level, mult in enumerate(cfg.ch_mult):
            stage = nn.Module()
            stage.blocks, stage.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(cfg.num_res_blocks):
                stage.blocks.append(ResBlock(c, cfg.nf * mult, temb_dim, cfg))
                c = cfg.nf * mult
                stage.attn.append(Attention(c, cfg) if self._attends(level)
                                  else nn.Identity())
                skips.append(c)
            if level < len(cfg.ch_mult) - 1:
                stage.downsample = ResBlock(c, c, temb_dim, cfg, resample="down")
                stage.pyramid = FIRDownConv(pyramid_c, c, cfg.fir_kernel)
                pyramid_c = c
                skips.append(c)
            levels.append(stage)
        return levels, skips, c

    def _build_up(self, temb_dim, skips, c):
        cfg, levels = self.cfg, nn.ModuleList()
        for level in reversed(range(len(cfg.ch_mult))):
            stage = nn.Module()
            stage.blocks = nn.ModuleList()
            for _ in range(cfg.num_res_blocks + 1):
                width = cfg.nf * cfg.ch_mult[level]
                stage.blocks.append(ResBlock(c + skips.pop(), width, temb_dim, cfg))
                c = width
            stage.attn = Attention(c, cfg) if self._attends(level) else nn.Identity()
            if level > 0:
                stage.upsample = ResBlock(c, c, temb_dim, cfg, resample="up")
            levels.append(stage)
        assert not skips
        return levels, c

    def _check_inputs(self, x, t):
        cfg = self.cfg
        shape = (cfg.image_channels, cfg.image_size, cfg.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"x must have shape [B, {', '.join(map(str, shape))}], "
                             f"got {tuple(x.shape)}")
        if not isinstance(t, torch.Tensor) or t.shape != (x.shape[0],):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else repr(t)
            raise ValueError(f"t must be a float tensor of shape [B] = "
                             f"[{x.shape[0]}], got {got}")

    def forward(self, x, t):
        self._check_inputs(x, t)
        temb = self.temb(sinusoidal_embedding(t, self.cfg.nf, self.cfg.max_positions))
        if not self.cfg.centered:
            x = 2 * x - 1
        skips, pyramid = [self.stem(x)], x
        for stage in self.down:
            for block, attn in zip(stage.blocks, stage.attn, strict=True):
                skips.append(attn(block(skips[-1], temb)))
            if hasattr(stage, "downsample"):
                h = stage.downsample(skips[-1], temb)
                pyramid = (stage.pyramid(pyramid) + h) * self._combine_scale
                skips.append(pyramid)
        block0, attn, block1 = self.mid
        h = block1(attn(block0(skips[-1], temb)), temb)
        for stage in self.up:
            for block in stage.blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), temb)
            h = stage.attn(h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h, temb)
        return self.head(F.silu(self.head_norm(h)))

    @property
    def _combine_scale(self):
        return 1 / math.sqrt(2.0) if self.cfg.skip_rescale else 1.0


def build(image_channels=3, image_size=32, **overrides):
    """A freshly initialised NCSN++ with the official settings (Chapter 9).

    ``build(3, 32)`` is the CIFAR-10 network, ``build(3, 64)`` CelebA-64's and
    ``build(1, 32)`` binarized MNIST's; keyword overrides replace other
    :class:`NCSNppConfig` fields (e.g. ``nf=16`` for a smoke test).
    """
    return NCSNpp(NCSNppConfig(image_channels=image_channels, image_size=image_size,
                               **overrides))


#: Parameter counts of the official instantiation (score_sde's NCSN++ as configured
#: by the Blackout notebooks), by number of image channels.
OFFICIAL_PARAMETER_COUNTS = {3: 62_693_251, 1: 62_686_337}
