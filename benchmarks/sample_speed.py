"""CPU speed of sampling, each option against the plain path (Chapters 7-9).

    python benchmarks/sample_speed.py [--preset mnist-cpu] [--steps 4]

On the network of a preset (default ``mnist-cpu``: the 16-channel U-Net, 28x28) it
times ``runs.generate`` with tau-leaping, in one run, after a warm-up call each:

* the batch size: per-image-step time at batches 64, 256 (the presets' default
  ``sample_batch``) and 1024, as ratios against 256;
* fp32 vs bfloat16 autocast (``sample --bf16``) at batch 256;
* eager vs ``torch.compile`` (``sample --compile``) at batch 256: the one-time
  compilation and the steady state.

A ratio < 1 means the option is faster. Random initial weights (the time does not
depend on them). The 1-minute load average is printed: on a busy machine all numbers
are slower and noisier. A couple of minutes of CPU.
"""
import argparse
import os
import time
import warnings

import torch

from blackout_tutorial import presets, runs


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def per_image_step(model, preset, batch, steps, **options):
    """Seconds per image and sampler step of ``runs.generate`` (after a warm-up)."""
    def run(n_steps):
        return runs.generate(model, batch, n_steps, "tau_leaping", preset=preset,
                             seed=0, batch_size=batch, device="cpu", **options)
    warm = timed(lambda: run(2))
    return timed(lambda: run(steps)) / (batch * steps), warm


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mnist-cpu", choices=presets.PRESETS)
    parser.add_argument("--steps", type=int, default=4, help="sampler steps timed")
    parser.add_argument("--batches", default="64,256,1024")
    args = parser.parse_args()
    preset = presets.get_preset(args.preset)
    torch.manual_seed(0)
    model = runs.build_rate_model(preset, runs.image_spec(preset.dataset)[1]).eval()
    print(f"{presets.describe()} | preset {preset.name} | {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f} | threads "
          f"{torch.get_num_threads()}", flush=True)
    sizes = sorted({256, *(int(b) for b in args.batches.split(","))})
    per_batch = {b: per_image_step(model, preset, b, args.steps)[0] for b in sizes}
    base = per_batch[256]
    for batch, t in per_batch.items():
        print(f"batch {batch:5d}: {t * 1e3:7.3f} ms per image-step, ratio to 256 "
              f"{t / base:.2f}", flush=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bf16, _ = per_image_step(model, preset, 256, args.steps, bf16=True)
        print(f"batch 256, autocast: fp32 {base * 1e3:.3f} ms, bf16 {bf16 * 1e3:.3f} "
              f"ms per image-step, ratio {bf16 / base:.2f}", flush=True)
        compiled, first = per_image_step(model, preset, 256, args.steps, compile=True)
    failed = [str(w.message)[:160] for w in caught
              if "torch.compile failed" in str(w.message)]
    print(f"batch 256, torch.compile: eager {base * 1e3:.3f} ms, compiled "
          f"{compiled * 1e3:.3f} ms per image-step, ratio {compiled / base:.2f} "
          f"(first call incl. compilation {first:.1f} s)"
          + (f"; FELL BACK: {failed[0]}" if failed else ""), flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
