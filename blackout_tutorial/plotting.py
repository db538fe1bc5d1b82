"""Figures and widgets used by the book (every widget has a static fallback).

Functions take tensors or arrays and return matplotlib figures/axes; they never call
``plt.show()`` themselves, so a notebook decides when to display.
"""
import matplotlib.pyplot as plt
import numpy as np
import torch


def _to_numpy(images):
    return images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)


def image_grid(images, n_max, nrow=8, ax=None, title=None, cmap="gray"):
    """Show a batch of count images ``[B, C, H, W]`` (or ``[B, H, W]``) as one grid.

    Counts are scaled by ``n_max`` (0 = black, n_max = white); RGB when C == 3.
    """
    x = _to_numpy(images).astype(np.float64) / float(n_max)
    if x.ndim == 3:
        x = x[:, None]
    b, c, h, w = x.shape
    ncol = min(nrow, b)
    nrows = -(-b // ncol)
    grid = np.ones((nrows * (h + 1) + 1, ncol * (w + 1) + 1, c))
    for i in range(b):
        r, q = divmod(i, ncol)
        grid[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + q * (w + 1): 1 + q * (w + 1) + w] = x[i].transpose(1, 2, 0)
    if ax is None:
        _, ax = plt.subplots(figsize=(ncol * 0.6 + 0.4, nrows * 0.6 + 0.4))
    ax.imshow(np.clip(grid.squeeze(-1) if c == 1 else grid, 0, 1), cmap=cmap, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def image_row(axes, images, titles=None, vmin=0.0, vmax=1.0, ylabel=None, cmap="gray"):
    """Draw 2-D images one per axis with shared colour limits (Chapters 1 and 3: noising over time)."""
    for i, (ax, image) in enumerate(zip(axes, images)):
        ax.imshow(_to_numpy(image), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if ylabel:
        axes[0].set_ylabel(ylabel, fontsize=9)
    return axes


def pmf_vs_samples(ax, pmf, samples=None, label=None, color="C0"):
    """Exact pmf over n = 0..len(pmf)-1 (line) against normalised sample counts (bars) (Chapters 2-3)."""
    pmf = _to_numpy(pmf)
    n = np.arange(len(pmf))
    if samples is not None:
        counts = np.bincount(_to_numpy(samples).astype(np.int64).ravel(), minlength=len(pmf))
        # One filled step artist instead of hundreds of bar patches (much faster to draw).
        ax.stairs(counts / counts.sum(), np.arange(len(pmf) + 1) - 0.5, fill=True, color=color,
                  alpha=0.35, label="simulated")
    ax.plot(n, pmf, color=color, lw=1.5, label=label if label is not None else "exact")
    ax.set_xlabel("n")
    ax.set_ylabel("P(n)")
    return ax
