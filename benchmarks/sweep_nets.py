"""Training throughput of U-Net widths on real-sized MNIST / CIFAR-10 batches (the sweep
that chose the 16-channel network of the shipped ``*-cpu`` presets, Chapters 8-9).

    python benchmarks/sweep_nets.py [--family mnist|cifar10] [--threads 2]

Times ``train.training_step`` (fused Adam, batch 64, importance-sampled times) for 16,
32 (with and without attention) and 48 base channels on random count images of the
data set's shape, and prints images/s with the ratio to the 32-channel network of the
``mnist`` laptop preset, measured in the same run. Needs no data set.
"""
import argparse
import time
from dataclasses import replace

import torch

from blackout_tutorial import presets, runs, train
from blackout_tutorial.nets import count_parameters, net_config

WIDTHS = (("16 ch", 16, (2,)), ("32 ch (baseline)", 32, (2,)),
          ("32 ch, no attention", 32, ()), ("48 ch", 48, (2,)))


def images_per_second(preset, images, repeats=6):
    model = runs.build_rate_model(preset, 255)
    optimizer = train.make_optimizer(model, 1e-3, "cpu")
    loss = train.blackout_objective(preset, torch.device("cpu"))
    for step in range(2):                             # warm-up
        train.training_step(model, optimizer, loss, images, preset, step)
    start = time.perf_counter()
    for step in range(repeats):
        train.training_step(model, optimizer, loss, images, preset, 2 + step)
    seconds = (time.perf_counter() - start) / repeats
    return preset.train.batch_size / seconds, count_parameters(model)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("mnist", "cifar10"), default="mnist")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = presets.get_preset(f"{args.family}-cpu", "laptop")
    size = 32 if args.family == "cifar10" else 28
    images = torch.randint(0, 256, (512, base.net.image_channels, size, size),
                           dtype=torch.uint8)
    rows = []
    for label, channels, attention in WIDTHS:
        net = net_config("small", image_channels=base.net.image_channels,
                         channels=channels, num_res_blocks=1, dropout=0.0,
                         num_groups=8, attention_levels=attention)
        rows.append((label, *images_per_second(replace(base, net=net), images)))
    baseline = rows[1][1]
    print(f"{args.family}, batch 64, {args.threads} threads "
          f"(load average {__import__('os').getloadavg()[0]:.1f})")
    print(f"{'network':22s} {'parameters':>11s} {'images/s':>9s} {'vs 32 ch':>9s}")
    for label, speed, params in rows:
        print(f"{label:22s} {params:11,d} {speed:9.0f} {speed / baseline:8.2f}x")


if __name__ == "__main__":
    main()
