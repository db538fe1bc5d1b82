"""Figures and widgets used by the book (every widget has a static fallback).

Functions take tensors or arrays and return matplotlib figures/axes; they never call
``plt.show()`` themselves, so a notebook decides when to display.
"""
import inspect
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch


def _to_numpy(images):
    return (
        images.detach().cpu().numpy()
        if isinstance(images, torch.Tensor)
        else np.asarray(images)
    )


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
        grid[
            1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + q * (w + 1) : 1 + q * (w + 1) + w
        ] = x[i].transpose(1, 2, 0)
    if ax is None:
        _, ax = plt.subplots(figsize=(ncol * 0.6 + 0.4, nrows * 0.6 + 0.4))
    ax.imshow(
        np.clip(grid.squeeze(-1) if c == 1 else grid, 0, 1),
        cmap=cmap,
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def image_row(axes, images, titles=None, vmin=0.0, vmax=1.0, ylabel=None, cmap="gray"):
    """Draw 2-D images one per axis with shared colour limits (Chapters 1 and 3: noising
    over time)."""
    for i, (ax, image) in enumerate(zip(axes, images)):
        ax.imshow(
            _to_numpy(image), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest"
        )
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if ylabel:
        axes[0].set_ylabel(ylabel, fontsize=9)
    return axes


def pmf_vs_samples(ax, pmf, samples=None, label=None, color="C0"):
    """Exact pmf over n = 0..len(pmf)-1 (line) against normalised sample counts (bars)
    (Chapters 2-3)."""
    pmf = _to_numpy(pmf)
    n = np.arange(len(pmf))
    if samples is not None:
        counts = np.bincount(
            _to_numpy(samples).astype(np.int64).ravel(), minlength=len(pmf)
        )
        # One filled step artist instead of hundreds of bar patches (faster to draw).
        ax.stairs(
            counts / counts.sum(),
            np.arange(len(pmf) + 1) - 0.5,
            fill=True,
            color=color,
            alpha=0.35,
            label="simulated",
        )
    ax.plot(n, pmf, color=color, lw=1.5, label=label if label is not None else "exact")
    ax.set_xlabel("n")
    ax.set_ylabel("P(n)")
    return ax


def loss_history(ax, history, window=50, label=None, color="C0"):
    """Plot a training loss history (``[steps]`` or the trainer's ``[steps, 3]``)
    with its running mean over ``window`` steps (Chapters 8-9)."""
    loss = _to_numpy(history).astype(np.float64)
    loss = loss[:, 0] if loss.ndim == 2 else loss
    steps = np.arange(1, len(loss) + 1)
    ax.plot(steps, loss, color=color, alpha=0.25, lw=0.8)
    w = max(1, min(window, len(loss)))
    smooth = np.convolve(loss, np.ones(w) / w, mode="valid")
    ax.plot(
        steps[w - 1 :],
        smooth,
        color=color,
        lw=1.5,
        label=label or f"running mean ({w} steps)",
    )
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    return ax


def masked_view(images, mask, n_max, hidden_color=(0.85, 0.25, 0.25)):
    """RGB images ``[B, H, W, 3]`` of one-channel counts with the hidden pixels
    (``~mask``) in colour (Chapter 11).

    Shows what an inpainting sampler was given: the observed pixels in grey, the rest
    marked.
    """
    x = _to_numpy(images).astype(np.float64)[:, 0] / float(n_max)
    m = _to_numpy(mask)[:, 0].astype(bool)
    rgb = np.repeat(x[..., None], 3, axis=-1)
    rgb[~m] = hidden_color
    return rgb


def inpainting_figure(originals, mask, completions, n_max, title=None):
    """Rows: original, what the sampler sees, then each set of completions ``[S, B, 1,
    H, W]`` (Chapter 11)."""
    completions = _to_numpy(completions)
    rows = [
        np.repeat(
            _to_numpy(originals).astype(np.float64)[:, 0, ..., None] / n_max, 3, -1
        ),
        masked_view(originals, mask, n_max),
    ]
    rows += [
        np.repeat(c.astype(np.float64)[:, 0, ..., None] / n_max, 3, -1)
        for c in completions
    ]
    labels = ["original", "observed"] + [
        f"sample {i + 1}" for i in range(len(completions))
    ]
    n = rows[0].shape[0]
    fig, axes = plt.subplots(
        len(rows), n, figsize=(0.75 * n + 0.9, 0.75 * len(rows) + 0.3), squeeze=False
    )
    for r, (row, label) in enumerate(zip(rows, labels)):
        for c in range(n):
            axes[r, c].imshow(np.clip(row[c], 0, 1), interpolation="nearest")
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def reverse_paths(ax, birth_times, t_end, n_show=30, t_min=1e-3, color="C0"):
    """Draw reverse-time one-pixel paths from ``sampling.gillespie_reverse`` (Chapter
    4).

    ``birth_times`` ``[P, n_max]`` (NaN after the last birth); the count n(t) jumps up
    by one at each birth while time runs from ``t_end`` down to 0 (log time axis,
    inverted, clipped at t_min).
    """
    births = _to_numpy(birth_times)[:n_show]
    for row in births:
        row = row[~np.isnan(row)]
        t = np.concatenate([[t_end], np.clip(row, t_min, None), [t_min]])
        n = np.concatenate([[0], np.arange(1, len(row) + 1), [len(row)]])
        ax.step(t, n, where="post", color=color, alpha=0.4, lw=1)
    ax.set_xscale("log")
    ax.set_xlim(t_end, t_min)
    ax.set_xlabel("t (runs backwards, log scale)")
    ax.set_ylabel("$n_t$")
    return ax


def convergence_curves(
    ax, steps, curves, floor=None, floor_label=None, ylabel="", logy=False
):
    """Error against the number of sampler steps, one line per method (Chapters 6 and
    10).

    ``curves``: {label: values aligned with ``steps``}; ``floor``: a horizontal
    reference (e.g. the sampling noise of exact draws, or the data entropy).
    """
    for i, (label, values) in enumerate(curves.items()):
        ax.plot(steps, _to_numpy(values), "o-", color=f"C{i}", label=label)
    if floor is not None:
        ax.axhline(floor, color="k", ls="--", lw=1, label=floor_label)
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("number of steps $T$")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return ax


def save_image_grid(images, n_max, path, nrow=8, title=None, dpi=120):
    """Write ``image_grid`` of count images to an image file (PNG by suffix), Chapter 7.

    Uses a bare ``matplotlib.figure.Figure``, not pyplot: safe in scripts, in training
    loops and inside notebooks (no backend switch, no figure left open).
    """
    from pathlib import Path

    from matplotlib.figure import Figure
    b = images.shape[0]
    ncol, nrows = min(nrow, b), -(-b // min(nrow, b))
    fig = Figure(figsize=(ncol * 0.6 + 0.4, nrows * 0.6 + 0.4 + (0.3 if title else 0)))
    image_grid(images, n_max, nrow=nrow, ax=fig.subplots(), title=title)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")


def _excerpt_range(source_lines, lines):
    """0-based inclusive (first, last) of ``lines`` = (start, stop) in ``source_lines``:
    1-based line numbers, or strings (the first line containing ``start``, then the
    first line from there on containing ``stop``)."""
    if not isinstance(lines, (tuple, list)) or len(lines) != 2:
        raise ValueError(f"lines must be a pair (start, stop), got {lines!r}")
    found = []
    for bound, since in zip(lines, (0, None)):
        since = found[0] if since is None else since
        if isinstance(bound, str):
            hits = [i for i in range(since, len(source_lines))
                    if bound in source_lines[i]]
            if not hits:
                raise ValueError(f"lines: no source line contains {bound!r}")
            found.append(hits[0])
        elif isinstance(bound, int) and 1 <= bound <= len(source_lines):
            found.append(bound - 1)
        else:
            raise ValueError(f"lines must hold strings or line numbers 1.."
                             f"{len(source_lines)}, got {bound!r}")
    if found[1] < found[0]:
        raise ValueError(f"lines: stop {lines[1]!r} comes before start {lines[0]!r}")
    return found[0], found[1]


def show_source(*objects, lines=None):
    """The source of package functions or classes as one highlighted Python block.

    Returned as Markdown (a fenced ``python`` block), so Jupyter and the built book both
    highlight it with their own styles, and a check printed below it stays a separate
    output. ``lines=(start, stop)`` (one object only) shows an excerpt instead: line
    numbers within the object's source (1 = its first line, both inclusive) or
    strings (from the first line containing ``start`` to the next line containing
    ``stop``), shown below the signature; elided parts are marked ``# ...`` and a
    note names the file and lines of the full source.
    """
    if not objects:
        raise ValueError("show_source needs at least one function or class")
    from IPython.display import Markdown

    if lines is None:
        source = "\n\n".join(inspect.getsource(obj).rstrip() for obj in objects)
        return Markdown(f"```python\n{source}\n```")
    if len(objects) != 1:
        raise ValueError("lines needs exactly one object to take the excerpt from")
    obj = objects[0]
    source_lines, first_line = inspect.getsourcelines(obj)
    a, b = _excerpt_range(source_lines, lines)
    head = 0  # the signature, up to the line that ends with ":"
    while head < a - 1 and not source_lines[head].split("#")[0].rstrip().endswith(":"):
        head += 1
    pad = source_lines[a][:len(source_lines[a]) - len(source_lines[a].lstrip())]
    shown_lines = source_lines[:head + 1] + [f"{pad}# ...\n"] if a > head + 1 else \
        source_lines[:a]
    shown_lines += source_lines[a:b + 1]
    if b < len(source_lines) - 1:
        shown_lines.append(f"{pad}# ...\n")
    body = textwrap.dedent("".join(shown_lines)).rstrip()
    path = Path(inspect.getsourcefile(obj)).resolve()
    root = Path(__file__).resolve().parents[1]
    shown = path.relative_to(root) if path.is_relative_to(root) else path.name
    last_line = first_line + len(source_lines) - 1
    name = f"{obj.__module__.rsplit('.', 1)[-1]}.{obj.__qualname__}"
    note = (f"Excerpt: lines {first_line + a}-{first_line + b} of `{shown}`; the full "
            f"`{obj.__qualname__}` is lines {first_line}-{last_line} "
            f"(`plotting.show_source({name})` shows it).")
    return Markdown(f"```python\n{body}\n```\n\n{note}")
