"""Chapter 10's race: Blackout vs Gaussian diffusion on digits, recipe ``ch10-race-v2``.

Each model is trained with its best recipe at an equal budget: the same U-Net (the
digits preset's tiny net), data, optimiser settings, steps and batch, and three
training seeds each. Blackout uses chapter 7's recipe (official instantaneous
weights, importance-sampled times); the Gaussian DDPM its standard L_simple (u
uniform on the cosine schedule). Every setting is pinned in :func:`recipe`, so a
rerun reproduces the stored file whatever the preset defaults become.

Measured per (model, seed), all at equal N: the Frechet distance of N samples to the
held-out digits and the confident fraction, at equal network calls per sample; the
bits/dim bound on the held-out digits, every term of a T-step grid summed (per-image
values are independent, so their standard error is honest). The real-vs-real floor
is N training digits against the same held-out digits, over several draws. The
weighting ablation of earlier versions (official vs ELBO weights, the Gaussian ELBO
weighting) is not run: it did not fit the CPU budget.

  # ~25 min on one shared core (2 models x 3 seeds x 800 steps + evaluation):
  python scripts/ch10_experiments.py --scale laptop \\
      --out book/results/ch10_race_laptop.json
  # seconds:
  python scripts/ch10_experiments.py --scale smoke --out /tmp/ch10_smoke.json

Trained weights go to --runs (git-ignored) and are reused on a rerun.
"""
import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from blackout_tutorial import (
    baselines,
    data,
    evaluate,
    losses,
    presets,
    runs,
    schedule,
    train,
)
from blackout_tutorial.nets import count_parameters

RECIPE = "ch10-race-v2"
MODELS = ("blackout", "gaussian")


@dataclass(frozen=True)
class Scale:
    steps: int  # optimiser steps of every model
    batch_size: int
    seeds: tuple  # training seeds of every model
    n_samples: int  # N: generated (and real floor) images per cell
    sample_steps: tuple  # network calls per sample
    bpd_T: int  # ELBO grid size (all T terms summed)
    n_test: int  # held-out images for bits/dim
    floor_draws: int  # draws of N real training digits for the floor


SCALES = {
    "smoke": Scale(steps=12, batch_size=16, seeds=(0, 1, 2), n_samples=32,
                   sample_steps=(4, 8), bpd_T=8, n_test=16, floor_draws=3),
    "laptop": Scale(steps=800, batch_size=128, seeds=(0, 1, 2), n_samples=400,
                    sample_steps=(20, 100), bpd_T=100, n_test=360, floor_draws=20),
}


def recipe(scale, seed):
    """The pinned preset of both models: chapter 7's digits laptop recipe (Adam lr
    2e-3, 100 warmup steps, cosine decay, clip 1, EMA 0.99, importance-sampled
    times with official instantaneous weights) at this scale's steps and batch.
    The Gaussian runs use the same preset; its Blackout-only fields are unused."""
    cfg = SCALES[scale]
    digits = presets.get_preset("digits", "smoke" if scale == "smoke" else "laptop")
    return presets.with_overrides(
        digits, steps=cfg.steps, batch_size=cfg.batch_size, lr=2e-3, warmup_steps=100,
        lr_decay="cosine", grad_clip=1.0, ema_decay=0.99, weights="official",
        weight_variant="instantaneous", time_sampling="importance", seed=seed,
        sample_every=0, checkpoint_every=cfg.steps, bf16=False, hflip=False)


def train_one(model, preset, folder, dataset):
    """Train (or reuse) one run; returns (network, seconds)."""
    extra = {}
    if model == "gaussian":
        extra = {"loss": baselines.gaussian_objective(dataset.n_max, "simple"),
                 "build_model": baselines.build_eps_model}
    result = train.train(preset, folder, dataset=dataset, device="cpu",
                         progress=False, **extra)
    return result.ema.eval(), float(result.seconds)


def sample(net, model, preset, n, steps, seed):
    """n samples with `steps` network calls each (one batch): Blackout tau-leaping on
    observation_times(steps), Gaussian ancestral sampling on u_k = k / steps."""
    method = baselines.sample_gaussian if model == "gaussian" else "tau_leaping"
    return runs.generate(net, n, steps, method, preset=preset, seed=seed, batch_size=n)


def bits_per_dim(net, model, preset, x_test, T, n_max, seed):
    """Per-image bits/dim bound on a T-step grid, every term summed, numpy [B]."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if model == "gaussian":
            bpd = baselines.bits_per_dim_gaussian(net, x_test, T, n_max, generator=gen)
        else:
            times = schedule.observation_times(T, preset.t_end)
            bpd = losses.elbo_bits_per_dim(net, x_test, times, n_max, generator=gen)
    return bpd.double().numpy()


def evaluate_one(net, model, preset, ctx, seed):
    cfg, out = ctx["cfg"], {"quality": {}}
    for steps in cfg.sample_steps:
        start = time.perf_counter()
        x = sample(net, model, preset, cfg.n_samples, steps, 1000 + seed)
        secs = time.perf_counter() - start
        m = evaluate.classifier_metrics(ctx["clf"], x, ctx["data"].test)
        out["quality"][str(steps)] = {
            "frechet_distance": m["frechet_distance"],
            "confident_fraction": m["confident_fraction"],
            "min_class_fraction": m["min_class_fraction"], "seconds": secs}
        if seed == cfg.seeds[0] and steps == cfg.sample_steps[-1]:
            out["samples"] = x[:40].reshape(len(x[:40]), -1).tolist()
    bpd = bits_per_dim(net, model, preset, ctx["x_test"], cfg.bpd_T,
                       ctx["data"].n_max, 2000 + seed)
    out["bits_per_dim"] = {"mean": float(bpd.mean()),
                           "sem": float(bpd.std(ddof=1) / math.sqrt(len(bpd))),
                           "n_test": len(bpd), "T": cfg.bpd_T}
    return out


def floors(ctx):
    """Real training digits vs the held-out digits at N (several draws), and
    independent pixel marginals at N: the bars every model is read against."""
    d, n, draws = ctx["data"], ctx["cfg"].n_samples, ctx["cfg"].floor_draws
    real, marg = [], []
    for i in range(draws):
        gen = torch.Generator().manual_seed(i)
        pick = torch.randperm(len(d.train), generator=gen)[:n]
        real.append(evaluate.classifier_metrics(ctx["clf"], d.train[pick], d.test))
        fake = evaluate.pixel_marginal_samples(d.train, n, gen)
        marg.append(evaluate.classifier_metrics(ctx["clf"], fake, d.test))
    return {name: {key: spread([r[key] for r in rows])
                   for key in ("frechet_distance", "confident_fraction")}
            for name, rows in (("real", real), ("pixel_marginals", marg))}


def spread(values):
    """Mean and sample standard deviation of a list (over seeds or draws)."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1
            else 0.0, "n": len(v)}


def write(path, results):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="laptop")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--runs", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg, started = SCALES[args.scale], time.perf_counter()
    run_dir = args.runs or Path("runs") / f"ch10_race_{args.scale}"
    dataset = data.load_digits()
    ctx = {"cfg": cfg, "data": dataset, "x_test": dataset.test[: cfg.n_test].long(),
           "clf": evaluate.fit_digit_classifier(dataset.train, dataset.train_labels,
                                                dataset.n_max)}
    base = recipe(args.scale, 0)
    results = {"recipe": RECIPE, "scale": args.scale, "complete": False,
               "config": {k: list(v) if isinstance(v, tuple) else v
                          for k, v in asdict(cfg).items()},
               "train": {k: v for k, v in asdict(base.train).items() if k != "seed"},
               "t_end": base.t_end, "threads": args.threads,
               "n_parameters": count_parameters(runs.build_rate_model(base, 16)),
               "floors": floors(ctx), "runs": {m: {} for m in MODELS}}
    for seed in cfg.seeds:
        for model in MODELS:
            preset = recipe(args.scale, seed)
            net, secs = train_one(model, preset, run_dir / f"{model}_seed{seed}",
                                  dataset)
            cell = {"train_seconds": secs,
                    **evaluate_one(net, model, preset, ctx, seed)}
            results["runs"][model][str(seed)] = cell
            print(f"{model} seed {seed}: {secs:.0f} s, bpd "
                  f"{cell['bits_per_dim']['mean']:.3f}, quality {cell['quality']}",
                  flush=True)
            write(args.out, results)
    results.update(complete=True, total_seconds=time.perf_counter() - started)
    write(args.out, results)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
