"""Training and sampling throughput of the U-Net size presets (Chapter 7).

    python benchmarks/train_throughput.py [--device cpu] [--steps 3]

For each size (tiny at 8x8, small at 28x28, paper at 32x32 RGB) it times a few
training steps (loss + backward + Adam, bf16 autocast on CUDA, as in ``train.train``)
and a few sampler steps (one network call + one tau-leaping update), after one warm-up
step each. Columns: images/s for training, image-steps/s for sampling, the implied
seconds to sample one image with 1000 steps, the cost ratio of a training image to a
sampling image-step (measured in the same run), and peak GPU memory on CUDA. A couple
of minutes on a CPU.
"""
import argparse
import time

import torch

from blackout_tutorial import losses, nets, presets, sampling, schedule

CASES = [  # size, image shape, n_max, batch on CPU, batch on GPU
    ("tiny", (1, 8, 8), 16, 128, 256),
    ("small", (1, 28, 28), 255, 16, 256),
    ("paper", (3, 32, 32), 255, 4, 128),
]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, repeats):
    fn()  # warm-up (allocations, kernel selection)
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats


def measure(size, shape, n_max, batch, device, repeats):
    """Seconds per training step and per sampler step of one size preset."""
    torch.manual_seed(0)
    config = nets.net_config(size, image_channels=shape[0])
    model = nets.build_rate_model(config, n_max).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    times = schedule.observation_times(1000, 15.0).to(device)
    weights = schedule.loss_weights(times).to(device)
    x0 = torch.randint(0, n_max + 1, (batch, *shape), device=device).float()
    gen = torch.Generator(device).manual_seed(0)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16,
                              enabled=device.type == "cuda")

    def train_step():
        with autocast:
            loss = losses.blackout_loss(model, x0, times, weights, generator=gen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train()
    t_train = _timed(train_step, device, repeats)
    model.eval()
    x = torch.zeros((batch, *shape), dtype=torch.long, device=device)
    t = torch.full((batch,), 1.0, device=device)

    @torch.no_grad()
    def sample_step():
        with autocast:
            y_hat = model(x.float(), t)
        sampling.tau_leaping_step(x, y_hat.float(), 0.01, n_max, gen)

    t_sample = _timed(sample_step, device, repeats)
    return nets.count_parameters(model), t_train, t_sample


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None,
                        help="torch device (default: best available)")
    parser.add_argument("--steps", type=int, default=3,
                        help="timed repeats per measurement")
    args = parser.parse_args()
    device = torch.device(args.device) if args.device else presets.default_device()
    print(presets.describe(), f"| threads {torch.get_num_threads()}")
    header = (f"{'size':6} {'image':>9} {'params':>7} {'batch':>5} "
              f"{'train img/s':>11} {'sample img-step/s':>17} "
              f"{'s/img @1000 steps':>17} {'train/sample cost':>17}")
    if device.type == "cuda":
        header += f" {'peak GPU MiB':>12}"
    print(header)
    for size, shape, n_max, cpu_batch, gpu_batch in CASES:
        batch = gpu_batch if device.type == "cuda" else cpu_batch
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        params, t_train, t_sample = measure(size, shape, n_max, batch, device,
                                            args.steps)
        train_rate, sample_rate = batch / t_train, batch / t_sample
        image = "x".join(map(str, shape))
        row = (f"{size:6} {image:>9} {params / 1e6:6.2f}M {batch:5d} "
               f"{train_rate:11.1f} {sample_rate:17.1f} {1000 / sample_rate:17.3f} "
               f"{sample_rate / train_rate:17.2f}")
        if device.type == "cuda":
            row += f" {torch.cuda.max_memory_allocated(device) / 2**20:12.0f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
