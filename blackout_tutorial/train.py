"""A plain-PyTorch trainer for Blackout Diffusion rate models (Chapter 7).

One function, :func:`train`, runs a :class:`~blackout_tutorial.presets.Preset` into a run
folder::

    run/config.json       the preset (JSON)
    run/checkpoint.pt     model, EMA, optimiser, step, loss history (atomic, tensors only)
    run/history.csv       step, loss, learning rate, gradient norm
    run/samples/*.png     periodic sample grids from the EMA model

Each step draws a batch, a time index k uniformly from the T observation times and the
forward sample x_t ~ Binomial(x0, e^{-t_k}), and minimises the weighted Poisson loss of
Chapter 5 (``losses.blackout_loss``) with Adam, linear warmup, gradient clipping and an EMA
of the weights; bfloat16 autocast on CUDA.

Exact resume: all randomness of step s (data order, time indices, forward noise, flips,
dropout) comes from generators seeded by (seed, s, rank), so a run interrupted after a
checkpoint and resumed reproduces the uninterrupted loss curve bit for bit (on the same
device, with the same number of CPU threads) without saving RNG states. Multi-GPU: launch with ``torchrun --nproc_per_node N``;
each process takes 1/N of every global batch and DistributedDataParallel averages the
gradients (NCCL on CUDA, gloo on CPU).
"""
import copy
import csv
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from blackout_tutorial import losses, nets, presets, schedule
from blackout_tutorial.data import dataset_info, load_dataset, random_hflip
from blackout_tutorial.profiles import default_device

CHECKPOINT = "checkpoint.pt"
FORMAT = "blackout-tutorial-checkpoint-v1"


class CheckpointError(ValueError):
    """A checkpoint is unreadable, not ours, or belongs to a different configuration."""


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained model, its EMA and the loss history."""
    model: nets.RateModel
    ema: nets.RateModel
    preset: presets.Preset
    step: int
    history: np.ndarray          # [step, 3]: loss, learning rate, gradient norm per step
    seconds: float               # training time summed over all sessions of the run
    out_dir: Path

    def summary(self):
        """One line for logs: steps, final loss, time, throughput and (on CUDA) peak memory."""
        line = f"{self.preset.name} ({self.preset.scale}): {self.step} steps of {self.preset.train.steps}"
        if self.step:
            line += (f", final loss {self.history[-1, 0]:.4f}, {self.seconds:.0f} s of training, "
                     f"{self.step * self.preset.train.batch_size / max(self.seconds, 1e-9):.0f} images/s")
        if torch.cuda.is_available():
            line += f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
        return line


def step_seed(seed, step, rank=0, stream=0):
    """A 63-bit seed that depends only on (seed, step, rank, stream): exact resume."""
    state = np.random.SeedSequence([seed, step, rank, stream]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def batch_indices(n_items, batch_size, step, seed):
    """Indices of the global batch of ``step``: consecutive slices of a per-epoch permutation.

    Epoch e = step // (n_items // batch_size) uses ``randperm`` seeded by (seed, e); the
    last partial batch of each epoch is dropped, so every batch is full.
    """
    per_epoch = n_items // batch_size
    if per_epoch < 1:
        raise ValueError(f"batch_size={batch_size} exceeds the {n_items} training images")
    epoch, pos = divmod(step, per_epoch)
    gen = torch.Generator().manual_seed(step_seed(seed, epoch, stream=1))
    return torch.randperm(n_items, generator=gen)[pos * batch_size:(pos + 1) * batch_size]


def learning_rate(cfg, step):
    """Linear warmup to ``cfg.lr`` over ``cfg.warmup_steps``, then constant (the paper) or,
    with ``lr_decay="cosine"``, a cosine decay to 0 at step ``cfg.steps`` (short runs).

    The cosine schedule depends on ``cfg.steps``: extending a finished run restarts it high.
    """
    lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    if cfg.lr_decay == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))
    if cfg.lr_decay != "none":
        raise ValueError(f"lr_decay must be 'none' or 'cosine', got {cfg.lr_decay!r}")
    return lr


def training_grid(times, weights, time_sampling="uniform", resolution=16):
    """The (times, weights) pair handed to ``losses.blackout_loss``, which draws an index
    uniformly (Chapters 5, 7).

    ``uniform`` returns them unchanged: k ~ Uniform{0..T-1}, loss times w_k (the paper).
    ``importance`` returns a grid of ``resolution * T`` times on which a uniform draw hits
    t_k with probability pi_k = w_k / sum(w), all with the constant weight sum(w) / T: the
    same expected loss (up to rounding pi_k to multiples of 1 / (resolution T)) with far
    less variance. With the official weights w_k is ~ p (1 - p) per logit step, so a uniform
    draw spends most of a batch on times whose weight is nearly 0.
    """
    if time_sampling == "uniform":
        return times, weights
    if time_sampling != "importance":
        raise ValueError(f"time_sampling must be 'uniform' or 'importance', got {time_sampling!r}")
    size = resolution * len(times)
    cdf = torch.cumsum(weights / weights.sum(), 0)
    quantiles = (torch.arange(size, dtype=cdf.dtype, device=cdf.device) + 0.5) / size
    idx = torch.searchsorted(cdf, quantiles).clamp(max=len(times) - 1)
    return times[idx], torch.full((size,), float(weights.sum()) / len(times),
                                  dtype=weights.dtype, device=weights.device)


@torch.no_grad()
def update_ema(ema, model, decay, step):
    """ema <- d ema + (1 - d) model with d = min(decay, (1 + step) / (10 + step)).

    The ramp lets a short run's EMA forget the random initialisation.
    """
    d = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - d)


def _atomic_write(path, write):
    # Write to a temporary file in the same folder, then rename: a crash never leaves a
    # half-written checkpoint (os.replace is atomic on POSIX and Windows).
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(path, preset, step, model, ema, optimizer, history, seconds):
    """Write a checkpoint atomically; it holds only tensors, numbers and strings, so
    ``torch.load(path, weights_only=True)`` reads it."""
    state = {"format": FORMAT, "config": json.dumps(presets.to_dict(preset)), "step": step,
             "seconds": seconds, "model": model.state_dict(), "ema": ema.state_dict(),
             "optimizer": optimizer.state_dict(),
             "history": torch.as_tensor(np.asarray(history, dtype=np.float64).reshape(-1, 3))}
    _atomic_write(path, lambda tmp: torch.save(state, tmp))


def read_checkpoint(path, map_location="cpu"):
    """Load and validate a checkpoint (full or exported); ``CheckpointError`` if broken."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, random bytes, pickled code, ...
        raise CheckpointError(f"{path} is corrupted or not a checkpoint ({type(err).__name__}: "
                              f"{err}); delete it to start the run from scratch") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "ema" not in state:
        raise CheckpointError(f"{path} is not a blackout_tutorial checkpoint ({FORMAT})")
    try:
        state["preset"] = presets.from_dict(json.loads(state["config"]))
    except (ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path} holds an unreadable configuration: {err}") from None
    return state


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out


def _check_same_run(saved, preset, path):
    # Changing the number of steps continues a run; anything else would silently mix runs.
    a = _flatten(presets.to_dict(presets.with_overrides(saved, steps=preset.train.steps)))
    b = _flatten(presets.to_dict(preset))
    diff = [k for k in a if a[k] != b.get(k)]
    if diff:
        raise CheckpointError(f"{path} was trained with a different configuration "
                              f"({', '.join(f'{k}: {a[k]!r} vs {b.get(k)!r}' for k in diff)}); "
                              f"use another output folder or delete the checkpoint")


def load_model(path, ema=True, device=None):
    """The rate model stored in a run folder or checkpoint file, in eval mode (Chapter 7).

    ``ema=False`` gives the raw (non-averaged) weights of a full checkpoint. Returns
    ``(model, preset)``. Exported files (:func:`export_model`) hold the EMA weights only.
    """
    path = Path(path)
    state = read_checkpoint(path / CHECKPOINT if path.is_dir() else path)
    preset = state["preset"]
    key = "ema" if ema else "model"
    if key not in state:
        raise CheckpointError(f"{path} holds no '{key}' weights (exported files keep the EMA)")
    model = nets.build_rate_model(preset.net, dataset_info(preset.dataset)[1])
    weights = {k: v.float() for k, v in state[key].items()}
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the configured network: {err}") from None
    return model.to(device or default_device()).eval(), preset


def export_model(run_dir, path, dtype=torch.float16):
    """Save the EMA weights of a run (in ``dtype``) with its configuration: a small file
    for sharing, readable by :func:`load_model` (float16 halves the size)."""
    state = read_checkpoint(Path(run_dir) / CHECKPOINT)
    small = {"format": FORMAT, "config": state["config"], "step": state["step"],
             "ema": {k: v.to(dtype) for k, v in state["ema"].items()}}
    _atomic_write(path, lambda tmp: torch.save(small, tmp))


def _distributed(device):
    """(rank, world_size, device, started) for a torchrun launch, else (0, 1, device, False)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device, False
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    started = not dist.is_initialized()
    if started:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world, device, started


def _write_history(path, history):
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["step", "loss", "lr", "grad_norm"])
            for i, (loss, lr, norm) in enumerate(history):
                out.writerow([i + 1, f"{loss:.6g}", f"{lr:.6g}", f"{norm:.6g}"])
    _atomic_write(path, write)


def save_sample_grid(model, preset, n_max, path, step, device):
    """Sample ``preset.train.sample_grid`` images with tau-leaping (100 steps) and save a PNG."""
    from blackout_tutorial import plotting, sampling
    gen = torch.Generator(device).manual_seed(step_seed(preset.train.seed, step, stream=2))
    shape = (preset.train.sample_grid, *dataset_info(preset.dataset)[0])
    x = sampling.sample(model, shape, schedule.observation_times(100, preset.t_end),
                        method="tau_leaping", n_max=n_max, generator=gen, device=device)
    plotting.save_image_grid(x.cpu(), n_max, path, title=f"{preset.name}, step {step}")


def train(preset, out_dir, *, dataset=None, device=None, progress=None, stop_at=None,
          data_dir=None):
    """Train (or resume) ``preset`` in ``out_dir``; returns a :class:`TrainResult` (Chapter 7).

    Loss: the weighted Poisson loss of Chapter 5 (Eq. ch7-loss), time indices drawn as
    ``preset.train.time_sampling`` says (see :func:`training_grid`).
    If ``out_dir`` holds a checkpoint of the same configuration, training continues from
    it (a different ``steps`` extends the run; other differences raise CheckpointError).
    ``stop_at`` ends the session after that step (with a checkpoint), as an interruption
    would; ``progress`` defaults to on unless env ``BLACKOUT_PROGRESS=0``. A non-finite
    loss or gradient stops training with ``FloatingPointError``.
    """
    cfg = preset.train
    out_dir = Path(out_dir)
    rank, world, device, started = _distributed(torch.device(device) if device else default_device())
    if cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the {world} processes")
    if progress is None:
        progress = os.environ.get("BLACKOUT_PROGRESS", "1") != "0"
    try:
        data = dataset if dataset is not None else load_dataset(preset.dataset, data_dir)
        return _train(preset, out_dir, data, device, rank, world, progress and rank == 0, stop_at)
    finally:
        if started:
            dist.destroy_process_group()


def _train(preset, out_dir, data, device, rank, world, progress, stop_at):
    cfg = preset.train
    ckpt_path = out_dir / CHECKPOINT
    torch.manual_seed(cfg.seed)             # the same initial weights on every process
    model = nets.build_rate_model(preset.net, data.n_max).to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step, seconds, history = 0, 0.0, []
    if ckpt_path.exists():
        state = read_checkpoint(ckpt_path, map_location=device)
        _check_same_run(state["preset"], preset, ckpt_path)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        step, seconds = int(state["step"]), float(state["seconds"])
        history = state["history"].tolist()
    elif rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(out_dir / "config.json",
                      lambda tmp: tmp.write_text(json.dumps(presets.to_dict(preset), indent=2)))
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    times = schedule.observation_times(preset.T, preset.t_end).to(device)
    weights = schedule.loss_weights(times, cfg.weights, cfg.weight_variant).to(device)
    times, weights = training_grid(times, weights, cfg.time_sampling)
    train_images = data.train.to(device)
    end = cfg.steps if stop_at is None else min(cfg.steps, int(stop_at))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.bf16 and device.type == "cuda")
    gen = torch.Generator(device)
    bar = _progress_bar(progress, step, cfg.steps, preset.name)
    started_at = time.perf_counter()

    def checkpoint():
        if rank == 0:
            elapsed = seconds + time.perf_counter() - started_at
            save_checkpoint(ckpt_path, preset, step, model, ema, optimizer, history, elapsed)
            _write_history(out_dir / "history.csv", history)

    model.train()
    while step < end:
        # Everything random in this step is seeded by (seed, step, rank): exact resume.
        seed = step_seed(cfg.seed, step, rank)
        gen.manual_seed(seed)
        torch.manual_seed(seed)                                   # dropout
        idx = batch_indices(len(train_images), cfg.batch_size, step, cfg.seed)
        x0 = train_images[idx[rank::world].to(device)]
        if cfg.hflip:
            x0 = random_hflip(x0, generator=gen)
        lr = learning_rate(cfg, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast:
            loss = losses.blackout_loss(net, x0.float(), times, weights, generator=gen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        stats = torch.stack([loss.detach().float(), grad_norm.float()])
        if world > 1:
            dist.all_reduce(stats)
            stats /= world
        loss_value, norm_value = stats.tolist()
        if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
            raise FloatingPointError(
                f"training diverged at step {step + 1}: loss {loss_value}, gradient norm "
                f"{norm_value} (lr {lr:.3g}). The last checkpoint in {out_dir} is intact; lower "
                f"train.lr or train.grad_clip, or delete the checkpoint to restart.")
        optimizer.step()
        update_ema(ema, model, cfg.ema_decay, step)
        step += 1
        history.append((loss_value, lr, norm_value))
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.4g}", refresh=False)
        if cfg.sample_every and (step % cfg.sample_every == 0 or step == cfg.steps) and rank == 0:
            save_sample_grid(ema, preset, data.n_max, out_dir / "samples" / f"step_{step:07d}.png",
                             step, device)
        if step % cfg.checkpoint_every == 0 or step == end:
            checkpoint()
    bar.close()
    seconds += time.perf_counter() - started_at
    return TrainResult(model.eval(), ema, preset, step,
                       np.asarray(history, dtype=np.float64).reshape(-1, 3), seconds, out_dir)


def _progress_bar(enabled, initial, total, name):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, disable=not enabled, desc=f"train {name}",
                dynamic_ncols=True)
