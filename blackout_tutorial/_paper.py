"""The paper presets ``cifar10-paper``, ``binarized-mnist-paper``, ``celeba64-paper``
and the fidelity table of Chapter 9 (settings of the official code).

``OFFICIAL`` holds the settings of the official notebooks as stated in the book's
reference notes (REFERENCE.md, "Schedule and settings of the official code"), keyed by
the flattened preset field they correspond to; ``paper_preset(name, "full")`` must
equal them (a test checks it), so the table of :func:`fidelity_rows` cannot drift.
``smoke`` runs the same code path at a tiny size (CPU tests); ``laptop`` is refused.
"""
from dataclasses import asdict, replace

from blackout_tutorial import ncsnpp

# name -> (dataset, batch, t_end, flips, samples generated, smoke dataset)
_PAPER = {
    "cifar10-paper": ("cifar10", 256, 15.0, True, 50_000, "cifar10-fixture"),
    "binarized-mnist-paper": ("binarized_mnist", 256, 10.0, False, 60_000,
                              "binarized_mnist5k"),
    "celeba64-paper": ("celeba64", 100, 15.0, False, 50_000, "celeba64-fixture"),
}
PUBLISHED_FID = {"cifar10-paper": 4.58, "celeba64-paper": 3.22}  # REFERENCE "Results"

# Forward (+ backward) GFLOP per image of the full NCSN++ (torch FlopCounterMode,
# batch 1, measured on a CPU); the GPU times below are ESTIMATES, nothing was timed.
GFLOP = {32: (21.8, 65.3), 64: (84.1, 252.1)}   # side -> (forward, training step)
ASSUMED_TFLOPS = 160.0    # sustained bf16 on an H100-class GPU (~40% of peak)


def paper_preset(name, scale):
    """The preset of the official notebook for ``name`` at ``smoke`` or ``full``."""
    from blackout_tutorial.presets import Preset, TrainConfig
    if scale not in ("smoke", "full"):
        raise ValueError(f"scale must be 'smoke' or 'full' for {name} (the official "
                         f"settings need a GPU: --scale full; --scale smoke checks the "
                         f"same code path on a CPU), got {scale!r}")
    dataset, batch, t_end, flips, count, smoke_data = _PAPER[name]
    channels, size = (1, 32) if "mnist" in name else (3, 64 if "celeba" in name
                                                        else 32)
    net = ncsnpp.NCSNppConfig(image_channels=channels, image_size=size)
    train = TrainConfig(steps=1_300_000, batch_size=batch, lr=2e-4, warmup_steps=0,
                        grad_clip=0.0, ema_decay=0.9999, ema_order="before",
                        weights="official", weight_variant="instantaneous",
                        time_sampling="uniform", lr_decay="none", hflip=flips,
                        bf16=False, checkpoint_every=10_000, sample_every=50_000)
    sample = dict(sample_steps=1000, sample_count=count, sample_batch=512)
    if scale == "smoke":
        dataset = smoke_data
        net = replace(net, nf=16, num_res_blocks=1,
                      ch_mult=(1, 2, 2) if size == 32 else (1, 2, 2, 2))
        train = replace(train, steps=2, batch_size=4, checkpoint_every=1,
                        sample_every=0)
        sample = dict(sample_steps=10, sample_count=4, sample_batch=4)
    return Preset(name, scale, dataset, T=1000, t_end=t_end, net_type="ncsnpp",
                  net=net, parameterisation="official", train=train,
                  sample_method="binomial_bridge", sample_rounding="nearest",
                  sample_dropout=True, **sample)


def flat_settings(preset):
    """``{"train.lr": 2e-4, "net.nf": 128, ...}``: every field of a preset."""
    out = {}
    for key, value in asdict(preset).items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out
