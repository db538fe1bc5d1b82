"""The one plain-PyTorch training loop of the package (Chapters 7 and 10).

:func:`train` runs a :class:`~blackout_tutorial.presets.Preset` into a run folder
(layout in :mod:`blackout_tutorial.runs`). Each step draws a batch; the loss draws its
own noise: by default the weighted Poisson loss of Chapter 5 (``losses.blackout_loss``,
Eq. ch7-loss, Chapter 7) on the grid of ``schedule.training_grid``. Adam, linear
warmup, gradient clipping, an EMA of the weights (updated after the optimiser step, or
before it as in the official code), bfloat16 autocast on CUDA (on a CPU if asked:
``bf16_cpu``). Loss and model builder are arguments, so the Gaussian baseline of
Chapter 10 uses the same loop. Each session writes ``throughput.json`` (images/s, peak
memory) into the run folder.

Exact resume: all randomness of step s (data order, time indices, forward noise,
flips, dropout) comes from generators seeded by (seed, s, rank), so a run resumed from
a checkpoint reproduces the uninterrupted loss curve bit for bit (same CPU and thread
count; cuDNN kernels may vary) without saving RNG states. Multi-GPU: ``torchrun
--nproc_per_node N``; each process takes 1/N of every global batch and
DistributedDataParallel averages the gradients.
"""
import copy
import functools
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from blackout_tutorial import (
    _checks,
    _ddp,
    _train_args,
    losses,
    presets,
    runs,
    schedule,
)
from blackout_tutorial._train_args import TrainResult  # noqa: F401  (re-exported)
from blackout_tutorial.data import load_dataset, random_hflip


def step_seed(seed, step, rank=0, stream=0):
    """A 63-bit seed that depends only on (seed, step, rank, stream): exact resume."""
    seq = np.random.SeedSequence([seed, step, rank, stream])
    state = seq.generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def batch_indices(n_items, batch_size, step, seed):
    """Indices of the global batch of ``step``: slices of a per-epoch permutation.

    Epoch e = step // (n_items // batch_size) uses ``randperm`` seeded by (seed, e); the
    last partial batch of each epoch is dropped, so every batch is full.
    """
    per_epoch = n_items // _checks.positive_int(batch_size, "batch_size")
    if per_epoch < 1:
        raise ValueError(
            f"batch_size={batch_size} exceeds the {n_items} training images")
    epoch, pos = divmod(step, per_epoch)
    gen = torch.Generator().manual_seed(step_seed(seed, epoch, stream=1))
    perm = torch.randperm(n_items, generator=gen)
    return perm[pos * batch_size:(pos + 1) * batch_size]


def learning_rate(cfg, step):
    """Linear warmup to ``cfg.lr`` over ``cfg.warmup_steps``, then constant (the
    paper) or, with ``lr_decay="cosine"``, a cosine decay to 0 at step ``cfg.steps``.

    The cosine schedule depends on ``cfg.steps``: extending a finished run restarts it
    high.
    """
    lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    if cfg.lr_decay == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))
    if cfg.lr_decay != "none":
        raise ValueError(
            f"lr_decay must be 'none' or 'cosine', got {cfg.lr_decay!r}")
    return lr


@torch.no_grad()
def update_ema(ema, model, decay, step):
    """ema <- d ema + (1 - d) model with d = min(decay, (1 + step) / (10 + step)).

    The ramp lets a short run's EMA forget the random initialisation.
    """
    d = min(decay, (1 + step) / (10 + step))
    # One foreach kernel over all tensors: a Python loop costs ~1 ms per step on a CPU.
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - d)


def make_optimizer(model, lr, device):
    """Adam, fused into one kernel per step where PyTorch has one for ``device``
    (CPU and CUDA; benchmarks/train_speed.py measures the gain)."""
    fused = torch.device(device).type in ("cpu", "cuda")
    return torch.optim.Adam(model.parameters(), lr=lr, fused=fused or None)


def blackout_objective(preset, device):
    """The default loss ``f(model, x0, generator=)``: ``losses.blackout_loss`` on the
    (times, weights) grid of ``preset`` (``schedule.training_grid``, Chapters 5, 7)."""
    cfg = preset.train
    times = schedule.observation_times(preset.T, preset.t_end).to(device)
    weights = schedule.loss_weights(times, cfg.weights, cfg.weight_variant).to(device)
    times, weights = schedule.training_grid(times, weights, cfg.time_sampling)
    return functools.partial(losses.blackout_loss, times=times, weights=weights)


def train(preset, out_dir, *, loss=None, build_model=None, dataset=None,
          device=None, progress=None, stop_at=None, data_dir=None, bf16_cpu=False,
          max_seconds=None):
    """Train (or resume) ``preset`` in ``out_dir``; returns a ``TrainResult``.

    ``loss(model, x0, generator=)`` -> scalar (default :func:`blackout_objective`,
    the weighted Poisson loss, Eq. ch7-loss, Chapter 7); ``build_model(preset,
    n_max)`` -> the network, built under ``torch.manual_seed(preset.train.seed)``
    (default ``runs.build_rate_model``). A checkpoint of the same configuration in
    ``out_dir`` is resumed (a different ``steps`` extends the run; other differences
    raise ``runs.CheckpointError``). ``stop_at`` ends the session after that step and
    ``max_seconds`` after that much training time (with a checkpoint), as an
    interruption would; ``bf16_cpu`` turns on bfloat16 autocast on a CPU (numerics
    change; not stored in the run); ``progress`` is on unless env
    ``BLACKOUT_PROGRESS=0``. A non-finite loss or gradient raises FloatingPointError.
    """
    _train_args.check(preset, out_dir, loss, build_model, dataset, stop_at,
                      max_seconds)
    rank, world, device, started = _ddp.setup(presets.resolve_device(device))
    if progress is None:
        progress = os.environ.get("BLACKOUT_PROGRESS", "1") != "0"
    try:
        data = load_dataset(preset.dataset, data_dir) if dataset is None else dataset
        _train_args.check_batch(preset, len(data.train), world)
        loss = loss or blackout_objective(preset, device)
        run = _Run(preset, Path(out_dir), data, device, rank, world,
                   build_model or runs.build_rate_model)
        run.bf16_cpu = bool(bf16_cpu)
        return run.loop(loss, progress and rank == 0, stop_at, max_seconds)
    finally:
        if started:
            dist.destroy_process_group()


class _Run:
    """The state of one training session: model, EMA, optimiser, step, history."""

    def __init__(self, preset, out_dir, data, device, rank, world, build_model):
        self.preset, self.out_dir, self.data = preset, out_dir, data
        self.device, self.rank, self.world = device, rank, world
        self.build_model, self.bf16_cpu = build_model, False
        torch.manual_seed(preset.train.seed)  # the same initial weights everywhere
        self.model = build_model(preset, data.n_max).to(device)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.optimizer = make_optimizer(self.model, preset.train.lr, device)
        self.step, self.seconds, self.history = 0, 0.0, []
        path = out_dir / runs.CHECKPOINT
        if rank == 0:   # what a killed checkpoint write left behind
            runs.remove_stale_temporaries(out_dir)
        if path.exists():
            self._resume(path)
        elif rank == 0:
            out_dir.mkdir(parents=True, exist_ok=True)
            text = json.dumps(presets.to_dict(preset), indent=2)
            runs.atomic_write(out_dir / "config.json", lambda tmp: tmp.write_text(text))

    def _resume(self, path):
        state = runs.read_checkpoint(path, map_location=self.device)
        if "optimizer" not in state or "model" not in state:
            raise runs.CheckpointError(
                f"{path} is an export (EMA weights only, no optimiser state) and "
                f"cannot be resumed: train into another folder")
        runs.check_same_run(state, self.preset, self.build_model, path)
        try:
            self.model.load_state_dict(state["model"])
            self.ema.load_state_dict(state["ema"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise runs.CheckpointError(f"{path}: the saved weights do not fit the "
                                       f"network ({err})") from None
        self.step, self.seconds = int(state["step"]), float(state["seconds"])
        self.history = state["history"].tolist()

    def checkpoint(self, elapsed):
        if self.rank == 0:
            runs.save_checkpoint(
                self.out_dir / runs.CHECKPOINT, self.preset, self.step, self.model,
                self.ema, self.optimizer, self.history, self.seconds + elapsed,
                self.build_model)
            runs.write_history(self.out_dir / "history.csv", self.history)

    def loop(self, loss, progress, stop_at, max_seconds=None):
        cfg, started_at, first = self.preset.train, time.perf_counter(), self.step
        net = _ddp.wrap(self.model, self.device, self.world)
        images = self.data.train.to(self.device)
        end = cfg.steps if stop_at is None else min(cfg.steps, int(stop_at))
        bar = _train_args.progress_bar(progress, self.step, cfg.steps,
                                       self.preset.name)
        self.model.train()
        while self.step < end:
            ema = functools.partial(update_ema, self.ema, self.model, cfg.ema_decay,
                                    self.step)
            before = ema if cfg.ema_order == "before" else None
            values = training_step(net, self.optimizer, loss, images, self.preset,
                                   self.step, self.rank, self.world, before,
                                   bf16_cpu=self.bf16_cpu)
            if cfg.ema_order == "after":
                ema()
            self.step += 1
            self.history.append(values)
            bar.update(1)
            bar.set_postfix(loss=f"{values[0]:.4g}", refresh=False)
            if cfg.sample_every and self.rank == 0 and (
                    self.step % cfg.sample_every == 0 or self.step == cfg.steps):
                self.sample_grid()
            late = _train_args.out_of_time(started_at, time.perf_counter(),
                                           max_seconds)
            if self.step % cfg.checkpoint_every == 0 or self.step == end or late:
                self.checkpoint(time.perf_counter() - started_at)
            if late:
                break
        bar.close()
        elapsed = time.perf_counter() - started_at
        self.seconds += elapsed
        if self.rank == 0 and self.step > first:
            _train_args.write_throughput(
                self.out_dir, self.preset, self.step - first, elapsed, self.step,
                self.device, _train_args.uses_bf16(self.preset, self.device,
                                                   self.bf16_cpu))
        history = np.asarray(self.history, dtype=np.float64).reshape(-1, 3)
        return TrainResult(self.model.eval(), self.ema, self.preset, self.step,
                           history, self.seconds, self.out_dir)

    def sample_grid(self):
        """``preset.train.sample_grid`` EMA samples (tau-leaping, 100 steps), a PNG."""
        from blackout_tutorial import plotting
        p, step = self.preset, self.step
        seed = step_seed(p.train.seed, step, stream=2)
        x = runs.generate(self.ema, p.train.sample_grid, 100, "tau_leaping",
                          preset=p, seed=seed, device=self.device)
        path = self.out_dir / "samples" / f"step_{step:07d}.png"
        plotting.save_image_grid(x, self.data.n_max, path,
                                 title=f"{p.name}, step {step}")


def training_step(net, optimizer, loss, images, preset, step, rank=0, world=1,
                  before_step=None, bf16_cpu=False):
    """One optimiser step of :func:`train`; returns (loss, learning rate, grad norm).

    Everything random in the step is seeded by (seed, step, rank): exact resume.
    ``before_step()`` runs just before ``optimizer.step()`` (the official EMA order,
    ``ema_order="before"``); ``grad_clip = 0`` measures the norm without clipping.
    bfloat16 autocast: ``preset.train.bf16`` on CUDA, ``bf16_cpu`` on a CPU.
    """
    cfg = preset.train
    seed = step_seed(cfg.seed, step, rank)
    gen = torch.Generator(images.device).manual_seed(seed)
    torch.manual_seed(seed)  # dropout
    idx = batch_indices(len(images), cfg.batch_size, step, cfg.seed)
    x0 = images[idx[rank::world].to(images.device)]
    if cfg.hflip:
        x0 = random_hflip(x0, generator=gen)
    lr = learning_rate(cfg, step)
    for group in optimizer.param_groups:
        group["lr"] = lr
    bf16 = _train_args.uses_bf16(preset, images.device, bf16_cpu)
    kind = images.device.type if bf16 else "cpu"
    with torch.autocast(kind, dtype=torch.bfloat16, enabled=bf16):
        value = loss(net, x0.float(), generator=gen)
    optimizer.zero_grad(set_to_none=True)
    value.backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip or math.inf)
    stats = torch.stack([value.detach().float(), grad_norm.float()])
    if world > 1:
        dist.all_reduce(stats)
        stats /= world
    loss_value, norm_value = stats.tolist()
    if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
        raise FloatingPointError(
            f"training diverged at step {step + 1}: loss {loss_value}, gradient "
            f"norm {norm_value} (lr {lr:.3g}). The last checkpoint is intact; lower "
            f"train.lr or train.grad_clip, or delete the checkpoint to restart.")
    if before_step is not None:
        before_step()
    optimizer.step()
    return loss_value, lr, norm_value

