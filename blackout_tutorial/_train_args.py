"""The argument checks, result and session report of ``train.train`` (private)."""
import json
import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from blackout_tutorial import _checks, nets, presets, runs

THROUGHPUT = "throughput.json"  # written by every training session, in the run folder


@dataclass
class TrainResult:
    """What ``train.train`` returns: the trained model, its EMA and the loss history."""
    model: nets.RateModel
    ema: nets.RateModel
    preset: presets.Preset
    step: int
    history: np.ndarray  # [step, 3]: loss, learning rate, gradient norm per step
    seconds: float  # training time summed over all sessions of the run
    out_dir: Path

    def summary(self):
        """One log line: steps, final loss, time, throughput, (CUDA) peak memory."""
        cfg, p = self.preset.train, self.preset
        line = f"{p.name} ({p.scale}): {self.step} steps of {cfg.steps}"
        if self.step:
            rate = self.step * cfg.batch_size / max(self.seconds, 1e-9)
            line += (f", final loss {self.history[-1, 0]:.4f}, {self.seconds:.0f} s "
                     f"of training, {rate:.0f} images/s")
        if torch.cuda.is_available():
            gib = torch.cuda.max_memory_allocated() / 2**30
            line += f", peak GPU memory {gib:.2f} GiB"
        return line


def check(preset, out_dir, loss, build_model, dataset, stop_at, max_seconds=None):
    """ValueError naming the argument; runs before anything is created."""
    if not isinstance(preset, presets.Preset):
        raise ValueError(f"preset must be a Preset, got {type(preset).__name__}")
    if not isinstance(out_dir, (str, os.PathLike)) or Path(out_dir).is_file():
        raise ValueError(f"out_dir must be a run folder, not a file, got {out_dir!r}")
    for name, f in (("loss", loss), ("build_model", build_model)):
        if f is not None and not callable(f):
            raise ValueError(f"{name} must be callable or None, got {f!r}")
    if stop_at is not None:
        _checks.positive_int(stop_at, "stop_at", minimum=0)
    if max_seconds is not None:
        _checks.number(max_seconds, "max_seconds", minimum=0.0, strict=True)
    shape, n_max = runs.image_spec(preset.dataset)
    if dataset is not None and (getattr(dataset, "shape", None), getattr(
            dataset, "n_max", None)) != (shape, n_max):
        raise ValueError(f"dataset must hold images {shape} with n_max {n_max} (those "
                         f"of preset.dataset {preset.dataset!r}), got {dataset!r:.80}")


def check_batch(preset, n_images, world):
    """The global batch must split over ``world`` processes and fit the data."""
    batch = preset.train.batch_size
    if batch % world:
        raise ValueError(f"batch_size={batch} must be divisible by the {world} "
                         f"processes")
    if batch > n_images:
        raise ValueError(f"batch_size={batch} exceeds the {n_images} training images")


def peak_memory(device):
    """``{peak_gpu_memory_bytes (CUDA) or None, peak_rss_bytes of this process}``."""
    gpu = None
    if torch.device(device).type == "cuda":
        gpu = int(torch.cuda.max_memory_allocated(device))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss *= 1 if sys.platform == "darwin" else 1024   # bytes on macOS, KiB on Linux
    return {"peak_gpu_memory_bytes": gpu, "peak_rss_bytes": int(rss)}


def write_throughput(out_dir, preset, steps, seconds, total_steps, device, bf16):
    """``throughput.json`` of one session: its steps, seconds and images/s (the first
    steps include warm-up), the run's total steps, device, threads, bf16, peak memory.
    """
    rate = steps * preset.train.batch_size / seconds if steps and seconds else None
    report = {"preset": preset.name, "scale": preset.scale,
              "batch_size": preset.train.batch_size, "session_steps": int(steps),
              "session_seconds": round(float(seconds), 3),
              "train_images_per_s": None if rate is None else round(rate, 2),
              "total_steps": int(total_steps), "target_steps": preset.train.steps,
              "device": str(device), "threads": torch.get_num_threads(),
              "bf16_autocast": bool(bf16), **peak_memory(device)}
    text = json.dumps(report, indent=2)
    runs.atomic_write(Path(out_dir) / THROUGHPUT, lambda tmp: tmp.write_text(text))
    return report


def uses_bf16(preset, device, bf16_cpu):
    """bfloat16 autocast: ``preset.train.bf16`` on CUDA, ``bf16_cpu`` on a CPU."""
    kind = torch.device(device).type
    return bool((preset.train.bf16 and kind == "cuda") or (bf16_cpu and kind == "cpu"))


def out_of_time(started_at, now, max_seconds):
    """True once a session with a ``max_seconds`` budget has used it."""
    return max_seconds is not None and now - started_at >= max_seconds


def progress_bar(enabled, initial, total, name):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, disable=not enabled,
                desc=f"train {name}", dynamic_ncols=True)
