"""CPU speed of one training step, each option against the plain path (Chapter 7).

    python benchmarks/train_speed.py [--preset mnist-cpu] [--repeats 5]

On the network and batch of a preset (default ``mnist-cpu``: the 0.28M-parameter
16-channel U-Net, batch 64, 28x28) it times, in one run, the median of a few repeats
after a warm-up:

* plain Adam (the per-parameter loop) vs fused Adam (``train.make_optimizer``): the
  optimiser step alone and the whole training step;
* the EMA update as a Python loop of ``lerp_`` vs one ``torch._foreach_lerp_``
  (``train.update_ema``);
* gradient clipping with ``foreach=False`` vs ``foreach=True`` (the default);
* the whole step with 1 thread vs 2 threads: only meaningful on an idle machine, so the
  1-minute load average is printed with it;
* the whole step in fp32 vs bfloat16 autocast (``train --bf16-cpu``).

The whole-step variants are timed in turn (A, B, C, A, B, C, ...) so that a change of
load hits all alike; on a busy machine differences of a few percent are noise. A ratio
< 1 means the option is faster than the plain path. Images are random counts: the
timing does not depend on what they show. About a minute of CPU.
"""
import argparse
import os
import statistics
import time

import torch

from blackout_tutorial import presets, runs, train


def timed(fn, repeats):
    """Median seconds of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def interleaved(fns, repeats):
    """Median seconds of each of ``fns``, called in turn (A, B, A, B, ...) after one
    warm-up call each, so that a change of the machine's load hits all alike."""
    for fn in fns:
        fn()
    seconds = [[] for _ in fns]
    for _ in range(repeats):
        for fn, times in zip(fns, seconds):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return [statistics.median(times) for times in seconds]


def setup(preset, n_images=256):
    torch.manual_seed(0)
    n_max = runs.image_spec(preset.dataset)[1]
    model = runs.build_rate_model(preset, n_max)
    shape = runs.image_spec(preset.dataset)[0]
    images = torch.randint(0, n_max + 1, (n_images, *shape), dtype=torch.uint8)
    return model, images, train.blackout_objective(preset, "cpu")


def step_fn(preset, model, images, loss, optimizer, bf16_cpu=False):
    state = {"step": 0}

    def run():
        train.training_step(model, optimizer, loss, images, preset, state["step"],
                            bf16_cpu=bf16_cpu)
        state["step"] += 1
    return run


def row(label, plain, option, names=("plain", "option")):
    print(f"{label:34s} {names[0]} {plain * 1e3:9.2f} ms  {names[1]} "
          f"{option * 1e3:9.2f} ms  ratio {option / plain:5.2f}", flush=True)


def parts(model, repeats):
    """The optimiser step, EMA and clipping alone, on the model's parameters."""
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    plain = torch.optim.Adam(params, lr=1e-4, foreach=False)
    fused = train.make_optimizer(model, 1e-4, "cpu")
    row("Adam step alone", timed(plain.step, repeats * 20),
        timed(fused.step, repeats * 20), ("loop ", "fused"))
    ema = [p.detach().clone() for p in params]

    def loop_ema():
        with torch.no_grad():
            for e, p in zip(ema, params):
                e.lerp_(p, 1e-3)

    def foreach_ema():
        with torch.no_grad():
            torch._foreach_lerp_(ema, params, 1e-3)
    row("EMA update", timed(loop_ema, repeats * 20), timed(foreach_ema, repeats * 20),
        ("loop ", "foreach"))
    clip = torch.nn.utils.clip_grad_norm_
    row("gradient clipping", timed(lambda: clip(params, 1e9, foreach=False),
                                   repeats * 20),
        timed(lambda: clip(params, 1e9, foreach=True), repeats * 20),
        ("loop ", "foreach"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mnist-cpu", choices=presets.PRESETS)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    preset = presets.get_preset(args.preset)
    model, images, loss = setup(preset)
    print(f"{presets.describe()} | preset {preset.name}, batch "
          f"{preset.train.batch_size}, {sum(p.numel() for p in model.parameters())} "
          f"parameters | {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f} | threads {torch.get_num_threads()}", flush=True)
    parts(model, args.repeats)
    plain = torch.optim.Adam(model.parameters(), lr=1e-4, foreach=False)
    fused = train.make_optimizer(model, 1e-4, "cpu")
    t_plain, t_fused, t_bf16 = interleaved(
        [step_fn(preset, model, images, loss, plain),
         step_fn(preset, model, images, loss, fused),
         step_fn(preset, model, images, loss, fused, bf16_cpu=True)], args.repeats)
    row("training step, Adam", t_plain, t_fused, ("loop ", "fused"))
    row("training step, autocast", t_fused, t_bf16, ("fp32 ", "bf16 "))
    opt = fused
    threads = torch.get_num_threads()
    per_thread = {}
    for n in (1, 2):
        torch.set_num_threads(n)
        per_thread[n] = timed(step_fn(preset, model, images, loss, opt), args.repeats)
    torch.set_num_threads(threads)
    row(f"training step, threads (load {os.getloadavg()[0]:.2f})", per_thread[1],
        per_thread[2], ("1 thr", "2 thr"))


if __name__ == "__main__":
    main()
