"""Chapter 10's experiments: a fair race of Blackout and Gaussian diffusion on digits.

Trains six models with one U-Net config, one data set and one optimiser budget (four
Blackout rate models: official/ELBO weights x instantaneous/finite; two Gaussian DDPMs:
L_simple and ELBO weighting), then measures bits/dim, sample quality against the number
of sampling steps, and training/sampling times, and writes everything to one small JSON
file that book/10_evaluation.ipynb displays.

  # ~45 min on 1 core:
  python scripts/ch10_experiments.py --scale laptop --out book/results/ch10_laptop.json
  # seconds:
  python scripts/ch10_experiments.py --scale smoke --out /tmp/ch10_smoke.json

Trained weights go to --runs (git-ignored); ``--stage evaluate`` reuses them.
"""
import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from blackout_tutorial import (
    baselines,
    data,
    evaluate,
    losses,
    nets,
    presets,
    runs,
    schedule,
    train,
)
from blackout_tutorial.nets import count_parameters


@dataclass(frozen=True)
class Scale:
    steps: int  # optimiser steps of every model
    batch_size: int
    n_samples: int  # generated images per (model, sampler, steps) cell
    sample_steps: tuple  # sampler step counts of the quality-vs-steps curve
    ablation_steps: int  # sampler steps for the weight ablation
    bpd_grids: tuple  # ELBO grid sizes T (all terms summed)
    n_test: int  # held-out images for bits/dim
    mc_steps: int  # m of the importance-sampled ELBO estimator (variance study)
    mc_repeats: int


SCALES = {
    "smoke": Scale(steps=12, batch_size=16, n_samples=32, sample_steps=(4, 8),
                   ablation_steps=8, bpd_grids=(4, 8), n_test=16, mc_steps=4,
                   mc_repeats=3),
    "laptop": Scale(steps=600, batch_size=64, n_samples=400,
                    sample_steps=(10, 20, 50, 100, 200), ablation_steps=100,
                    bpd_grids=(10, 25, 50, 100, 250), n_test=360, mc_steps=25,
                    mc_repeats=8),
}
BLACKOUT = {  # name -> (loss weights kind, variant)
    "blackout_official_inst": ("official", "instantaneous"),
    "blackout_elbo_inst": ("elbo", "instantaneous"),
    "blackout_official_finite": ("official", "finite"),
    "blackout_elbo_finite": ("elbo", "finite"),
}
GAUSSIAN = {"gaussian_simple": "simple", "gaussian_elbo": "elbo"}
MAIN_BLACKOUT, MAIN_GAUSSIAN = "blackout_official_inst", "gaussian_simple"


def base_preset(scale):
    """The digits preset with this experiment's budget, pinned: the settings the stored
    results used (Adam lr 1e-3, constant after warmup, uniform time indices, EMA
    0.999), whatever the preset's defaults become. The Gaussian runs share everything
    but the Blackout-only time_sampling, through the same train.train loop."""
    cfg = SCALES[scale]
    digits = presets.get_preset("digits", "laptop" if scale != "smoke" else "smoke")
    return presets.with_overrides(digits, steps=cfg.steps, batch_size=cfg.batch_size,
                                  lr=1e-3, sample_every=0, checkpoint_every=cfg.steps,
                                  ema_decay=0.999 if scale != "smoke" else 0.99,
                                  time_sampling="uniform", lr_decay="none")


def train_all(scale, run_dir, dataset):
    """Train the six models (or reuse finished runs); returns {name: seconds}."""
    seconds = {}
    base = base_preset(scale)
    jobs = {name: (presets.with_overrides(base, weights=w, weight_variant=v), {})
            for name, (w, v) in BLACKOUT.items()}
    for name, weighting in GAUSSIAN.items():
        loss = baselines.gaussian_objective(dataset.n_max, weighting)
        jobs[name] = (base, {"loss": loss, "build_model": baselines.build_eps_model})
    for name, (preset, objective) in jobs.items():
        result = train.train(preset, run_dir / name, dataset=dataset, device="cpu",
                             progress=False, **objective)
        seconds[name] = result.seconds
        print(f"{name}: {result.seconds:.0f} s, final loss "
              f"{result.history[-20:, 0].mean():.4f}", flush=True)
    return seconds


def load_models(run_dir):
    return {name: runs.load_model(run_dir / name, device="cpu")[0]
            for name in (*BLACKOUT, *GAUSSIAN)}


def quality(clf, samples, dataset):
    m = evaluate.classifier_metrics(clf, samples, dataset.test)
    keys = ("confident_fraction", "frechet_distance", "min_class_fraction")
    return {k: m[k] for k in keys}


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def generate(model, name, n, steps, preset, seed, method="tau_leaping"):
    """n samples with `steps` network calls (one batch): Blackout on
    observation_times(steps), Gaussian ancestral sampling on u_k = k / steps."""
    sampler = baselines.sample_gaussian if name.startswith("gaussian") else method
    return runs.generate(model, n, steps, sampler, preset=preset, seed=seed,
                         batch_size=n)


def bits_per_dim(model, name, x0, grid, t_end, n_max, seed, n_terms=None):
    """Per-image bits/dim bound on a grid of `grid` steps (all terms, or n_terms
    random ones), numpy [B]."""
    gen = torch.Generator().manual_seed(seed)
    if name.startswith("gaussian"):
        bpd = baselines.bits_per_dim_gaussian(model, x0, grid, n_max, generator=gen,
                                              n_terms=n_terms)
    else:
        times = schedule.observation_times(grid, t_end)
        bpd = losses.elbo_bits_per_dim(model, x0, times, n_max, n_terms=n_terms,
                                       generator=gen)
    return bpd.double().numpy()


def summary(values):
    values = np.asarray(values, dtype=np.float64)
    std = float(values.std(ddof=1))
    return {"mean": float(values.mean()), "sem": std / math.sqrt(len(values)),
            "std": std}


def evaluate_all(scale, run_dir, dataset):
    """Every number of the chapter from the trained runs, as one dict (the JSON)."""
    cfg, base = SCALES[scale], base_preset(scale)
    ctx = SimpleNamespace(cfg=cfg, base=base, data=dataset, models=load_models(run_dir),
                          t_end=base.t_end, n_max=dataset.n_max,
                          x_test=dataset.test[: cfg.n_test].long())
    ctx.clf = evaluate.fit_digit_classifier(dataset.train, dataset.train_labels,
                                            ctx.n_max)
    out = {"reference": reference_metrics(ctx)}
    out["quality_vs_steps"], out["samples"] = quality_vs_steps(ctx)
    out["ablation"] = weight_ablation(ctx)
    out["bpd_vs_grid"] = bpd_vs_grid(ctx)
    out["gaussian_elbo_terms"] = gaussian_elbo_terms(ctx)
    out["bpd_monte_carlo"] = monte_carlo(ctx)
    return out


def reference_metrics(ctx):
    """Real held-out digits (the bar) and independent pixels (the trivial baseline)."""
    d = ctx.data
    real = evaluate.classifier_metrics(ctx.clf, d.test, d.train)
    gen = torch.Generator().manual_seed(0)
    fake = evaluate.pixel_marginal_samples(d.train, ctx.cfg.n_samples, gen)
    trivial = evaluate.classifier_metrics(ctx.clf, fake, d.test)
    return {"confident_fraction_real": real["confident_fraction"],
            "frechet_distance_real": real["frechet_distance"],
            "confident_fraction_pixel_marginals": trivial["confident_fraction"],
            "frechet_distance_pixel_marginals": trivial["frechet_distance"]}


def quality_vs_steps(ctx):
    """1. Sample quality and sampling time against the number of steps (= network
    calls); returns (curves, sample grids)."""
    samplers = {"blackout_tau_leaping": (MAIN_BLACKOUT, "tau_leaping"),
                "blackout_binomial_bridge": (MAIN_BLACKOUT, "binomial_bridge"),
                "gaussian_ancestral": (MAIN_GAUSSIAN, None)}
    curves, grids = {}, {}
    for label, (name, method) in samplers.items():
        curves[label] = {}
        for steps in ctx.cfg.sample_steps:
            x, secs = timed(generate, ctx.models[name], name, ctx.cfg.n_samples, steps,
                            ctx.base, 1, method)
            cell = {**quality(ctx.clf, x, ctx.data), "seconds": secs}
            curves[label][str(steps)] = cell
            grids[label] = x[:40].reshape(len(x[:40]), -1).tolist()
            print(f"{label} steps={steps}: {cell}", flush=True)
    return curves, grids


def weight_ablation(ctx):
    """2. Quality (tau-leaping / ancestral) and bits/dim at one step count."""
    cfg, ablation = ctx.cfg, {}
    for name, model in ctx.models.items():
        x, secs = timed(generate, model, name, cfg.n_samples, cfg.ablation_steps,
                        ctx.base, 2)
        bpd = bits_per_dim(model, name, ctx.x_test, cfg.ablation_steps, ctx.t_end,
                           ctx.n_max, 3)
        ablation[name] = {**quality(ctx.clf, x, ctx.data), "sample_seconds": secs,
                          "bits_per_dim": summary(bpd)}
        print(f"ablation {name}: {ablation[name]}", flush=True)
    return ablation


def bpd_vs_grid(ctx):
    """3. Bits/dim against the ELBO's grid size T (every term summed, one forward
    draw per term)."""
    out = {}
    for name in (MAIN_BLACKOUT, "blackout_elbo_inst", MAIN_GAUSSIAN, "gaussian_elbo"):
        out[name] = {str(T): _bpd_summary(ctx, name, T) for T in ctx.cfg.bpd_grids}
        # The T = 1000 grid: cfg.mc_steps * 4 random terms, importance-weighted
        # (unbiased).
        out[name]["1000"] = _bpd_summary(ctx, name, 1000, 4 * ctx.cfg.mc_steps)
        print(f"bpd_vs_grid {name}: {out[name]}", flush=True)
    return out


def _bpd_summary(ctx, name, T, n_terms=None):
    return summary(bits_per_dim(ctx.models[name], name, ctx.x_test, T, ctx.t_end,
                                ctx.n_max, 4, n_terms=n_terms))


def gaussian_elbo_terms(ctx):
    """The Gaussian ELBO's prior, diffusion and decoder terms in bits/dim."""
    gen = torch.Generator().manual_seed(5)
    terms = baselines.negative_elbo_gaussian(
        ctx.models["gaussian_elbo"], ctx.x_test, ctx.cfg.ablation_steps, ctx.n_max,
        generator=gen, return_terms=True)
    scale_bits = 64 * math.log(2)
    names = ("total", "prior", "diffusion", "decoder")
    return {k: float(v.mean() / scale_bits) for k, v in zip(names, terms)}


def monte_carlo(ctx):
    """4. The importance-sampled estimator on the T = 1000 grid: m random terms
    instead of 1000."""
    times = schedule.observation_times(1000, ctx.t_end)
    repeats = []
    for r in range(ctx.cfg.mc_repeats):
        gen = torch.Generator().manual_seed(100 + r)
        bpd = losses.elbo_bits_per_dim(ctx.models["blackout_elbo_inst"], ctx.x_test,
                                       times, ctx.n_max, n_terms=ctx.cfg.mc_steps,
                                       generator=gen)
        repeats.append(bpd.double().numpy())
    repeats = np.stack(repeats)  # [repeats, images]
    return {"model": "blackout_elbo_inst", "T": 1000, "m": ctx.cfg.mc_steps,
            "dataset_means": repeats.mean(1).tolist(),
            "per_image_std_over_repeats": float(repeats.std(0, ddof=1).mean()),
            "std_across_images": float(repeats.mean(0).std(ddof=1))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="laptop")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--runs", type=Path, default=None)
    parser.add_argument("--stage", choices=("train", "evaluate", "all"), default="all")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run_dir = args.runs or Path("runs") / f"ch10_{args.scale}"
    run_dir.mkdir(parents=True, exist_ok=True)
    dataset = data.load_digits()
    if args.stage in ("train", "all"):
        seconds = train_all(args.scale, run_dir, dataset)
        (run_dir / "train_seconds.json").write_text(json.dumps(seconds))
    if args.stage in ("evaluate", "all"):
        start = time.perf_counter()
        results = evaluate_all(args.scale, run_dir, dataset)
        cfg, base = SCALES[args.scale], base_preset(args.scale)
        config = {k: list(v) if isinstance(v, tuple) else v
                  for k, v in vars(cfg).items()}
        train_seconds = json.loads((run_dir / "train_seconds.json").read_text())
        results.update(
            scale=args.scale, config=config, t_end=base.t_end,
            train_seconds=train_seconds,
            n_parameters=count_parameters(nets.UNet(base.net)),
            evaluate_seconds=time.perf_counter() - start, threads=args.threads)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
        print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
