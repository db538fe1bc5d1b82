"""Benchmark: exact forward sampler vs the official binomial-CDF lookup (Chapter 3).

The official Blackout Diffusion code precomputes, for every observation time t_k and
every starting count n0 in 0..255, the CDF of Binomial(n0, e^{-t_k}) over n = 0..255: a
[T+1, 256, 256] float table kept on the GPU. A sample is then an inverse-CDF lookup:
draw u ~ U(0, 1) per pixel and count how many CDF entries lie below u. This script
rebuilds that baseline and times it against ``process.sample_forward`` (one
``torch.binomial`` call, no table) on a 128x3x32x32 uint8 batch with one random step
index per image.

    python benchmarks/forward_sampler.py          # T = 1000, the official setting
    python benchmarks/forward_sampler.py --T 100  # smaller table; memory extrapolated

Prints a table of time per call, the ratio, and the table's memory.
"""
import argparse
import statistics
import time

import torch

from blackout_tutorial import process, schedule

N_LEVELS = 256


def build_cdf_table(times, chunk=25):
    """The official lookup table: cdf[k, n0, n] = P(n_t <= n | n0) at t = times[k]
    (k = 0 is t = 0).

    Built from the exact log-space pmf in float64, stored in float32 like the official
    code. Chunked over time so the float64 intermediates stay small.
    """
    all_times = torch.cat([torch.zeros(1, dtype=torch.float64), times])
    n0 = torch.arange(N_LEVELS, device=times.device)[None, :]
    table = torch.empty(len(all_times), N_LEVELS, N_LEVELS, dtype=torch.float32,
                        device=times.device)
    for start in range(0, len(all_times), chunk):
        t = all_times[start:start + chunk, None]
        pmf = process.marginal_pmf(n0, t, n_max=N_LEVELS - 1)
        table[start:start + chunk] = pmf.cumsum(-1).float()
    return table


def sample_with_table(table, x0, k, generator=None, images_per_chunk=16):
    """Inverse-CDF lookup: x_t = #{n : cdf[k, x0, n] < u}, u ~ U(0, 1) per pixel
    (searchsorted).

    Gathering the CDF rows costs 256 floats per pixel, so images are processed in
    chunks (the official code gathers the whole batch at once, which needs ~400 MB for
    this batch).
    """
    out = torch.empty_like(x0)
    for start in range(0, x0.shape[0], images_per_chunk):
        part = slice(start, start + images_per_chunk)
        xs, ks = x0[part].long(), k[part]
        rows = table[ks.view(-1, *([1] * (xs.ndim - 1))), xs]  # [b, C, H, W, 256]
        u = torch.rand(xs.shape, generator=generator, device=xs.device).unsqueeze(-1)
        # searchsorted finds the first n with cdf >= u, i.e. #{n : cdf < u}; binary
        # search is ~10x faster here than comparing all 256 entries, so the baseline
        # is the fast variant.
        out[part] = torch.searchsorted(rows, u).squeeze(-1).to(x0.dtype)
    return out


def time_calls(fn, repeats, device):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fn()  # warm-up
    durations = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", type=int, default=1000,
                        help="number of observation times (official: 1000)")
    parser.add_argument("--t-end", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    g = torch.Generator(device=device).manual_seed(0)

    times = schedule.observation_times(args.T, args.t_end).to(device)
    x0 = torch.randint(0, N_LEVELS, (128, 3, 32, 32), generator=g, device=device)
    x0 = x0.to(torch.uint8)
    k = schedule.sample_time_indices(128, args.T, generator=g) + 1  # row 0 is t = 0

    start = time.perf_counter()
    table = build_cdf_table(times)
    if device.type == "cuda":
        torch.cuda.synchronize()
    build_s = time.perf_counter() - start
    table_mib = table.numel() * table.element_size() / 2**20
    official_mib = (1000 + 1) * N_LEVELS * N_LEVELS * 4 / 2**20

    # Both samplers must draw the same law: the overall survival fraction vs e^{-t}.
    t_batch = times[k - 1]
    expected = (x0.double().flatten(1).sum(1) * torch.exp(-t_batch)).sum().item()
    for name, draw in [("table", sample_with_table(table, x0, k, g)),
                       ("binomial", process.sample_forward(x0, t_batch, generator=g))]:
        got = draw.double().sum().item()
        assert abs(got - expected) < 6 * expected**0.5, (name, got, expected)

    table_s = time_calls(lambda: sample_with_table(table, x0, k, g), args.repeats,
                         device)
    binom_s = time_calls(lambda: process.sample_forward(x0, t_batch, generator=g),
                         args.repeats, device)

    print(f"forward sampler, batch 128x3x32x32 uint8, T = {args.T}, {device.type}, "
          f"{args.threads} threads, median of {args.repeats} calls "
          f"(torch {torch.__version__})")
    print(f"{'method':40s} {'ms/call':>10s} {'ratio':>8s} {'memory MiB':>11s}")
    print(f"{'CDF table lookup (official approach)':40s} {1e3 * table_s:10.1f} "
          f"{table_s / binom_s:8.2f} {table_mib:11.1f}")
    print(f"{'process.sample_forward (torch.binomial)':40s} {1e3 * binom_s:10.1f} "
          f"{1.0:8.2f} {0.0:11.1f}")
    print(f"table build time: {build_s:.1f} s; float32 table at T = 1000: "
          f"{official_mib:.1f} MiB (float64: {2 * official_mib:.1f} MiB)")


if __name__ == "__main__":
    main()
