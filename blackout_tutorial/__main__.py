"""Command line ``python -m blackout_tutorial {train,sample,evaluate,export,info}``.

    python -m blackout_tutorial train --preset digits --out runs/digits [--scale laptop]
    python -m blackout_tutorial sample --run runs/digits --n 64 --steps 250 --out s.png
    python -m blackout_tutorial evaluate --run runs/digits --elbo-terms 100
    python -m blackout_tutorial export --run runs/digits --out digits.pt
    python -m blackout_tutorial info --preset cifar10-paper --scale full

``train`` resumes when ``--out`` already holds a checkpoint. Multi-GPU:
``torchrun --nproc_per_node 4 -m blackout_tutorial train ...``.
"""
import json
import math
import os
import sys
import time
from pathlib import Path

from blackout_tutorial import _cli_info
from blackout_tutorial._cli_args import (
    Parser,
    UsageError,
    evaluate_parser,
    export_parser,
    sample_parser,
    train_parser,
)


def build_parser():
    """The argparse parser of the CLI (every option documented in ``--help``)."""
    parser = Parser(
        prog="python -m blackout_tutorial",
        description="Train, sample and evaluate Blackout Diffusion models (Santos "
                    "et al., 2023).")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{train,sample,evaluate,export,info}")
    train_parser(sub)
    sample_parser(sub)
    evaluate_parser(sub)
    export_parser(sub)
    _cli_info.add_parser(sub)
    return parser


def _dataset(args, preset):
    from blackout_tutorial import data
    name = args.dataset or preset.dataset
    spec, own = data.dataset_spec(name), data.dataset_spec(preset.dataset)
    if (spec.shape, spec.n_max) != (own.shape, own.n_max):
        raise UsageError(f"--dataset {name}: images {spec.shape} with n_max "
                          f"{spec.n_max}, the run needs {own.shape}, n_max {own.n_max}")
    dataset = data.load_dataset(name, args.data_dir)
    if getattr(args, "batch_size", None) and args.batch_size > len(dataset.train):
        raise UsageError(f"--batch-size {args.batch_size} exceeds the "
                          f"{len(dataset.train)} training images of {name}")
    return dataset


def _set_threads(device):
    from blackout_tutorial import _threads, presets
    line = _threads.apply(presets.resolve_device(device))
    if line and os.environ.get("RANK", "0") == "0":
        print(line)


def _cmd_train(args):
    from blackout_tutorial import presets, train
    try:
        preset = presets.get_preset(args.preset, args.scale)
    except ValueError as err:
        raise UsageError(f"--preset/--scale: {err}") from None
    preset = presets.with_overrides(preset, steps=args.steps, lr=args.lr,
                                    batch_size=args.batch_size, seed=args.seed)
    rank0 = os.environ.get("RANK", "0") == "0"  # torchrun: rank 0 reports
    dataset = _dataset(args, preset)
    if rank0:
        print(presets.describe())
    _set_threads(args.device)
    result = train.train(preset, args.out, dataset=dataset, device=args.device,
                         progress=False if args.no_progress else None,
                         bf16_cpu=args.bf16_cpu, max_seconds=args.max_seconds)
    if result.step and rank0:
        print(f"{result.summary()}; checkpoint in {args.out}")


def _load(args):
    from blackout_tutorial import runs
    if args.pretrained:       # verified against its recorded SHA-256
        model, preset, _ = runs.load_pretrained(args.pretrained, device=args.device)
        return model, preset
    return runs.load_model(args.run, device=args.device)


def _cmd_sample(args):
    from blackout_tutorial import plotting, runs
    model, preset = _load(args)
    device = next(model.parameters()).device
    _set_threads(device)
    started = time.perf_counter()
    x = runs.generate(model, args.n, args.steps, args.method, preset=preset,
                      seed=args.seed, batch_size=args.batch_size,
                      rounding=args.rounding, shard_dir=args.shards,
                      progress=not args.no_progress, bf16=args.bf16,
                      compile=args.compile)
    seconds = time.perf_counter() - started
    n_max = runs.image_spec(preset.dataset)[1]
    for out in args.out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        if out.endswith("/"):
            runs.save_samples_png(x, path, n_max)
        elif out.endswith(".npz"):
            runs.save_samples_npz(x, path, n_max)
        else:
            plotting.save_image_grid(x[:256], n_max, path, dpi=150,
                                     nrow=math.ceil(math.sqrt(min(args.n, 256))))
        print(f"wrote {args.n} samples to {path}")
    if args.fid_npz:
        print(f"wrote FID input {runs.save_fid_npz(x, args.fid_npz, n_max)}")
    print(f"sampled {args.n} images in {seconds:.1f} s ({args.n / seconds:.1f} "
          f"images/s; shards reused on a rerun are counted as free)")
    if args.json:
        _sample_json(args, preset, device, seconds)


def _sample_json(args, preset, device, seconds):
    from blackout_tutorial import _train_args
    steps = args.steps or preset.sample_steps
    report = {"n": args.n, "steps": steps, "method": args.method or
              preset.sample_method, "batch_size": args.batch_size or
              preset.sample_batch, "seconds": round(seconds, 3),
              "sample_images_per_s": round(args.n / seconds, 3),
              "image_steps_per_s": round(args.n * steps / seconds, 1),
              "device": str(device), "bf16": args.bf16, "compile": args.compile,
              **_train_args.peak_memory(device)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))


def _elbo(args, model, preset, dataset):
    import torch

    from blackout_tutorial import losses, schedule
    if args.elbo_terms and args.elbo_terms > preset.T:
        raise UsageError(f"--elbo-terms {args.elbo_terms} exceeds the T = "
                          f"{preset.T} observation times of the run")
    device = next(model.parameters()).device
    gen = torch.Generator(device).manual_seed(args.seed)
    x0 = dataset.test[:args.n_test].to(device).long()
    times = schedule.observation_times(preset.T, preset.t_end)
    if len(x0) < 2:
        raise UsageError(f"--n-test {len(x0)}: the standard error needs >= 2 images")
    est = losses.elbo_estimate(model, x0, times, dataset.n_max,
                               n_terms=args.elbo_terms, generator=gen, batch_size=256)
    terms = args.elbo_terms or preset.T
    print(f"negative ELBO on {len(x0)} held-out images ({terms} step indices per "
          f"image): {est.mean:.4f} +- {est.stderr:.4f} bits/dim (standard error over "
          f"images)")
    return {"n_test": len(x0), "elbo_terms": terms, "elbo_bits_per_dim": est.mean,
            "elbo_bits_per_dim_stderr": est.stderr}


def _cmd_evaluate(args):
    from blackout_tutorial import evaluate, runs
    model, preset = _load(args)
    dataset = _dataset(args, preset)
    samples = runs.load_samples_npz(args.samples)[0] if args.samples else None
    results = {"run": str(args.run or args.pretrained), "preset": preset.name,
               "scale": preset.scale,
               **_elbo(args, model, preset, dataset)}
    if dataset.name in DIGIT_DATASETS:
        if samples is None:
            samples = runs.generate(model, args.n_samples, args.steps, args.method,
                                    preset=preset, seed=args.seed,
                                    progress=not args.no_progress)
        results.update(evaluate.digit_report(samples, dataset))
    if args.fid:
        try:
            results["fid"] = evaluate.inception_fid(args.fid, "cifar10-train")
        except ImportError as err:
            print(f"FID skipped: {err}")
    for key, value in results.items():
        if isinstance(value, float):
            print(f"{key}: {value:.4f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))


def _cmd_export(args):
    import torch

    from blackout_tutorial import runs
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    path = runs.export(args.run, args.out, dtype=getattr(torch, args.dtype))
    print(f"exported {args.run} to {path} ({path.stat().st_size / 2**20:.1f} MiB)")


DIGIT_DATASETS = ("digits", "mnist5k", "mnist", "binarized_mnist5k", "binarized_mnist")


def main(argv=None):
    """Entry point of ``python -m blackout_tutorial`` and ``blackout-tutorial``.

    A user mistake (bad value, path, checkpoint) ends with one line ``error: ...`` on
    stderr and exit status 2; a failed download or a diverged run with status 1.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.no_progress:
        os.environ["BLACKOUT_PROGRESS"] = "0"
    from blackout_tutorial.data import DownloadError
    commands = {"train": _cmd_train, "sample": _cmd_sample, "evaluate": _cmd_evaluate,
                "export": _cmd_export, "info": _cli_info.run}
    try:
        commands[args.command](args)
    except (DownloadError, FloatingPointError, ValueError, OSError) as err:
        status = 1 if isinstance(err, (DownloadError, FloatingPointError)) else 2
        message = " ".join(str(err).split())   # one line, whatever the error holds
        parser.exit(status, f"{parser.prog} {args.command}: error: {message}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog} {args.command}: interrupted\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
