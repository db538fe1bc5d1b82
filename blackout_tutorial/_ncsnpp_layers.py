"""Building blocks of the NCSN++ network (``blackout_tutorial.ncsnpp``, Chapter 9).

Written from the published description of NCSN++ :cite:`song2021scoresde`: BigGAN-type
residual blocks, FIR resampling, DDPM-style self-attention and a sinusoidal embedding
of the conditioning scalar. Everything is plain torch (no custom CUDA ops), so it runs
on cpu, cuda and mps alike.

Initialisation follows the published one (DDPM's): every weight is drawn uniformly
with variance ``scale / fan_avg``, every bias starts at zero. The layers that close a
residual branch (the second convolution of a residual block, the output projection of
attention, the network's last convolution) use ``init_scale``; the official code turns
``init_scale = 0`` into a variance scale of 1e-10, so these weights start tiny but not
exactly zero, and this module does the same.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

#: The variance scale that ``init_scale = 0`` stands for (as in the official code).
ZERO_SCALE = 1e-10


def init_uniform_(weight, scale=1.0):
    """Fill ``weight`` in place, uniform with variance ``scale / fan_avg``.

    fan_avg = (fan_in + fan_out) / 2 with the receptive field counted in both;
    ``scale = 0`` means :data:`ZERO_SCALE`.
    """
    scale = ZERO_SCALE if scale == 0 else scale
    receptive = weight[0, 0].numel() if weight.ndim > 2 else 1
    fan_avg = 0.5 * (weight.shape[0] + weight.shape[1]) * receptive
    limit = math.sqrt(3.0 * scale / fan_avg)
    with torch.no_grad():
        weight.uniform_(-limit, limit)
    return weight


def conv(c_in, c_out, size=3, init_scale=1.0):
    """A size x size convolution (same padding) with the DDPM initialisation."""
    layer = nn.Conv2d(c_in, c_out, size, padding=size // 2)
    init_uniform_(layer.weight, init_scale)
    nn.init.zeros_(layer.bias)
    return layer


def dense(d_in, d_out):
    """A linear layer with the DDPM initialisation."""
    layer = nn.Linear(d_in, d_out)
    init_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def group_norm(channels):
    """GroupNorm with min(32, channels / 4) groups and eps 1e-6, as in NCSN++."""
    groups = min(channels // 4, 32)
    if groups < 1 or channels % groups:
        raise ValueError(f"channels={channels}: GroupNorm needs min(32, channels // 4) "
                         f"groups to divide the channels")
    return nn.GroupNorm(groups, channels, eps=1e-6)


def fir_kernel(taps, gain=1.0):
    """The separable 2-D FIR kernel outer(taps, taps), normalised to sum to ``gain``."""
    k = torch.as_tensor(taps, dtype=torch.float64)
    k = torch.outer(k, k)
    return (k * (gain / k.sum())).float()


def upfirdn(x, kernel, up=1, down=1, pad=(0, 0)):
    """Upsample by zero insertion, pad, filter with ``kernel``, keep every down-th
    pixel.

    The filter is a true convolution (kernel flipped), applied to each channel on its
    own (a depthwise convolution). ``pad`` = (before, after), the same on both axes.
    """
    b, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(b, c, h, 1, w, 1), (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(b, c, h * up, w * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    weight = kernel.flip(0, 1).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    x = F.conv2d(x, weight, groups=c)
    return x[:, :, ::down, ::down]


class FIRResample(nn.Module):
    """Factor-2 FIR up- or down-sampling without a convolution (no parameters).

    Down: filter with the normalised kernel, keep every second pixel. Up: insert zeros,
    filter with 4 x the normalised kernel (so a constant image stays constant).
    """

    def __init__(self, taps, mode):
        super().__init__()
        if mode not in ("up", "down"):
            raise ValueError(f"mode must be 'up' or 'down', got {mode!r}")
        self.mode = mode
        gain = 4.0 if mode == "up" else 1.0
        self.register_buffer("kernel", fir_kernel(taps, gain), persistent=False)

    def forward(self, x):
        p = self.kernel.shape[0] - 2
        if self.mode == "up":
            return upfirdn(x, self.kernel, up=2, pad=((p + 1) // 2 + 1, p // 2))
        return upfirdn(x, self.kernel, down=2, pad=((p + 1) // 2, p // 2))


class FIRDownConv(nn.Module):
    """FIR blur followed by a stride-2 3x3 convolution (``resamp_with_conv``)."""

    def __init__(self, c_in, c_out, taps):
        super().__init__()
        self.weight = nn.Parameter(init_uniform_(torch.empty(c_out, c_in, 3, 3)))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.register_buffer("kernel", fir_kernel(taps), persistent=False)

    def forward(self, x):
        p = self.kernel.shape[0] - 2 + 2      # filter taps - factor + conv size - 1
        x = upfirdn(x, self.kernel, pad=((p + 1) // 2, p // 2))
        return F.conv2d(x, self.weight, self.bias, stride=2)


class ResBlock(nn.Module):
    """BigGAN-type residual block of NCSN++, optionally resampling by 2.

    Branch: GroupNorm, swish, [FIR resample], conv 3x3, + dense(swish(temb)), GroupNorm,
    swish, dropout, conv 3x3 (``init_scale``). Shortcut: [FIR resample], then a 1x1
    convolution when the channels change or the block resamples. The sum is divided by
    sqrt(2) when ``skip_rescale``.
    """

    def __init__(self, c_in, c_out, temb_dim, cfg, resample=None):
        super().__init__()
        self.norm0 = group_norm(c_in)
        self.resample = FIRResample(cfg.fir_kernel, resample) if resample else None
        self.conv0 = conv(c_in, c_out)
        self.temb = dense(temb_dim, c_out)
        self.norm1 = group_norm(c_out)
        self.dropout = nn.Dropout(cfg.dropout)
        self.conv1 = conv(c_out, c_out, init_scale=cfg.init_scale)
        needs_shortcut = c_in != c_out or resample is not None
        self.shortcut = conv(c_in, c_out, size=1) if needs_shortcut else None
        self.out_scale = 1 / math.sqrt(2.0) if cfg.skip_rescale else 1.0

    def forward(self, x, temb):
        h = F.silu(self.norm0(x))
        if self.resample is not None:
            h, x = self.resample(h), self.resample(x)
        h = self.conv0(h) + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv1(self.dropout(F.silu(self.norm1(h))))
        if self.shortcut is not None:
            x = self.shortcut(x)
        return (x + h) * self.out_scale


class Attention(nn.Module):
    """DDPM-style single-head self-attention over all pixels, 1x1 projections.

    GroupNorm, then q, k, v (1x1, init scale 0.1), softmax(q k^T / sqrt(C)) v, an output
    projection (``init_scale``), added to the input and divided by sqrt(2) when
    ``skip_rescale``.
    """

    def __init__(self, channels, cfg):
        super().__init__()
        self.norm = group_norm(channels)
        self.q, self.k, self.v = (conv(channels, channels, 1, init_scale=0.1)
                                  for _ in range(3))
        self.out = conv(channels, channels, 1, init_scale=cfg.init_scale)
        self.out_scale = 1 / math.sqrt(2.0) if cfg.skip_rescale else 1.0

    def forward(self, x):
        b, c, hgt, wid = x.shape
        h = self.norm(x)
        q, k, v = (f(h).reshape(b, c, hgt * wid).transpose(1, 2)
                   for f in (self.q, self.k, self.v))
        a = F.scaled_dot_product_attention(q, k, v)       # [B, HW, C], scale 1/sqrt(C)
        h = self.out(a.transpose(1, 2).reshape(b, c, hgt, wid))
        return (x + h) * self.out_scale


def sinusoidal_embedding(t, dim, max_positions=10000.0):
    """[sin(t w_i), cos(t w_i)], w_i = max_positions^(-i / (dim/2 - 1)), i < dim / 2.

    With dim = 128 the frequencies are 10000^(-i/63), the official embedding of the
    integer step index. ``t`` is any float tensor [B]; the result is [B, dim].
    """
    half = dim // 2
    exponent = torch.arange(half, dtype=torch.float32, device=t.device) / (half - 1)
    angles = t.float()[:, None] * torch.exp(-math.log(max_positions) * exponent)[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
