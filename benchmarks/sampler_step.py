"""One reverse sampling step outside the network: on-device torch vs the CPU round trip.

The official code moves the network output to the CPU every step, samples there with
numpy/scipy and moves the counts back. Ours samples with ``torch.poisson`` /
``torch.binomial`` where the tensors live. Both are timed here on the same inputs (a
batch of 512 x 3 x 32 x 32 counts, n_max = 255), for tau-leaping and the binomial
bridge.

    python benchmarks/sampler_step.py [--batch 512] [--repeats 5] [--device cuda]
"""
import argparse
import statistics
import time

import numpy as np
import torch

from blackout_tutorial import sampling
from blackout_tutorial.presets import default_device


def official_tau_leaping(x, y_hat, q, n_max, rng):
    y = y_hat.cpu().numpy()
    births = rng.poisson(np.clip(y, 0, None) * q)
    return torch.from_numpy(np.clip(x.cpu().numpy() + births, 0, n_max)).to(x.device)


def official_bridge(x, y_hat, q, n_max, rng):
    n_t = x.cpu().numpy()
    count = np.clip(np.round(y_hat.cpu().numpy()), 0, n_max - n_t).astype(np.int64)
    n_s = np.clip(n_t + rng.binomial(count, q), 0, n_max)
    return torch.from_numpy(n_s).to(x.device)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_seconds(fn, device, repeats):
    fn()  # warm-up (allocations, kernels)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = torch.device(args.device) if args.device else default_device()
    n_max, q = 255, 0.01
    g = torch.Generator(device=device).manual_seed(0)
    shape = (args.batch, 3, 32, 32)
    x = torch.randint(0, 128, shape, device=device, generator=g)
    y_hat = torch.rand(shape, device=device, generator=g) * (n_max - x)
    q_t = torch.tensor(q, device=device)
    rng = np.random.default_rng(0)
    rows = [
        ("tau_leaping",
         lambda: sampling.tau_leaping_step(x, y_hat, q_t, n_max, g),
         lambda: official_tau_leaping(x, y_hat, q, n_max, rng)),
        ("bridge, nearest",  # same rounding as the official code
         lambda: sampling.binomial_bridge_step(x, y_hat, q_t, n_max, "nearest", g),
         lambda: official_bridge(x, y_hat, q, n_max, rng)),
        ("bridge, stochastic",  # ours by default: one extra uniform draw per pixel
         lambda: sampling.binomial_bridge_step(x, y_hat, q_t, n_max, "stochastic",
                                               g),
         lambda: official_bridge(x, y_hat, q, n_max, rng)),
    ]
    version = torch.__version__.split("+")[0]
    print(f"one reverse step, batch {shape}, device {device.type}, torch {version}, "
          f"median of {args.repeats}")
    print(f"{'method':<20} {'ours (ms)':>10} {'official (ms)':>14} "
          f"{'official/ours':>14}")
    for name, ours, official in rows:
        t_ours = median_seconds(ours, device, args.repeats)
        t_off = median_seconds(official, device, args.repeats)
        print(f"{name:<20} {1e3 * t_ours:>10.1f} {1e3 * t_off:>14.1f} "
              f"{t_off / t_ours:>14.2f}")


if __name__ == "__main__":
    main()
