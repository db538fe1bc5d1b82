"""Command line ``python -m blackout_tutorial {train,sample,evaluate,info}`` (Ch. 7-10).

    python -m blackout_tutorial train --preset digits --out runs/digits [--scale laptop]
    python -m blackout_tutorial sample --run runs/digits --n 64 --steps 250 --out s.png
    python -m blackout_tutorial evaluate --run runs/digits --elbo-terms 100
    python -m blackout_tutorial info --preset cifar10-paper --scale full

``train`` resumes when ``--out`` already holds a checkpoint. Multi-GPU:
``torchrun --nproc_per_node 4 -m blackout_tutorial train ...``.
"""
import json
import math
import os
import sys
from pathlib import Path

from blackout_tutorial import _cli_info
from blackout_tutorial._cli_args import (
    Parser,
    UsageError,
    device,
    existing,
    integer,
    output_file,
    output_folder,
    positive_float,
    sample_output,
)


def build_parser():
    """The argparse parser of the CLI (every option documented in ``--help``)."""
    parser = Parser(
        prog="python -m blackout_tutorial",
        description="Train, sample and evaluate Blackout Diffusion models (Santos "
                    "et al., 2023).")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{train,sample,evaluate,info}")
    _train_parser(sub)
    _sample_parser(sub)
    _evaluate_parser(sub)
    _cli_info.add_parser(sub)
    return parser


def _common(p, data_dir=True):
    from blackout_tutorial.data import DATASETS
    p.add_argument("--device", default=None, type=device,
                   help="torch device (cuda, cuda:1, mps, cpu); default: the best "
                        "available")
    if data_dir:
        p.add_argument("--data-dir", default=None, type=output_folder,
                       help="folder for downloaded datasets (default: "
                            "$BLACKOUT_DATA, else ~/.cache/blackout_tutorial)")
        p.add_argument("--dataset", choices=list(DATASETS),
                       help="train/evaluate on this data set instead of the preset's "
                            "(same image shape), e.g. cifar10-fixture")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _train_parser(sub):
    from blackout_tutorial.presets import PRESETS, SCALES
    t = sub.add_parser(
        "train", help="train a preset (resumes from a checkpoint in --out)",
        description="Train a preset into a run folder; resume if it holds a "
                    "checkpoint.")
    t.add_argument("--preset", required=True, choices=PRESETS, help="what to train")
    t.add_argument("--out", required=True, type=output_folder,
                   help="run folder (checkpoint, history, grids)")
    t.add_argument("--scale", default="laptop", choices=SCALES,
                   help="smoke: seconds; laptop: minutes on a CPU; full: the paper on "
                        "a GPU (default: laptop; *-paper presets: smoke or full)")
    t.add_argument("--steps", type=integer(1),
                   help="override the number of training steps")
    t.add_argument("--batch-size", type=integer(1),
                   help="override the global batch size")
    t.add_argument("--lr", type=positive_float, help="override the Adam learning rate")
    t.add_argument("--seed", type=integer(0), help="override the random seed")
    _common(t)


def _sample_parser(sub):
    from blackout_tutorial.sampling import METHODS, ROUNDINGS
    s = sub.add_parser("sample", help="generate images with a trained run",
                       description="Generate images from the EMA weights of a run.")
    s.add_argument("--run", required=True, type=existing("path"),
                   help="run folder or checkpoint file")
    s.add_argument("--n", type=integer(1), default=64,
                   help="number of images (default 64)")
    s.add_argument("--steps", type=integer(1),
                   help="sampler steps (any number: time is continuous; default: the "
                        "preset's)")
    s.add_argument("--method", choices=METHODS,
                   help="reverse sampler (default: the preset's)")
    s.add_argument("--rounding", choices=ROUNDINGS,
                   help="rounding of the binomial bridge (default: the preset's)")
    s.add_argument("--batch-size", type=integer(1),
                   help="images generated at once (default: the preset's)")
    s.add_argument("--seed", type=integer(0), default=0,
                   help="random seed (default 0)")
    s.add_argument("--shards", type=output_folder,
                   help="keep each batch in this folder and reuse it on a rerun "
                        "(resumable)")
    s.add_argument("--out", required=True, type=sample_output, action="append",
                   help="output, repeatable: .png (a grid), .npz (uint8 'samples' "
                        "[N,C,H,W] and 'n_max'), a folder ending in / (one PNG per "
                        "image)")
    s.add_argument("--fid-npz", type=output_file,
                   help="also write uint8 NHWC RGB images 'arr_0' (0..255) for FID "
                        "tools")
    _common(s, data_dir=False)


def _evaluate_parser(sub):
    from blackout_tutorial.sampling import METHODS
    e = sub.add_parser(
        "evaluate", help="ELBO bits/dim on held-out data (+ sample metrics)",
        description="Negative ELBO in bits/dim on held-out images; digit classifier "
                    "metrics (digits, MNIST); Inception FID.")
    e.add_argument("--run", required=True, type=existing("path"),
                   help="run folder or checkpoint file")
    e.add_argument("--n-test", type=integer(1), default=256,
                   help="held-out images for the ELBO (default 256)")
    e.add_argument("--elbo-terms", type=integer(1),
                   help="Monte Carlo terms (time steps) drawn per image for the ELBO "
                        "estimate (default: all T)")
    e.add_argument("--samples", type=existing("file"),
                   help="score these samples (.npz of `sample`) instead of generating")
    e.add_argument("--n-samples", type=integer(1), default=500,
                   help="generated images for the digit metrics (default 500)")
    e.add_argument("--steps", type=integer(1),
                   help="sampler steps (default: the preset's)")
    e.add_argument("--method", choices=METHODS,
                   help="reverse sampler (default: the preset's)")
    e.add_argument("--seed", type=integer(0), default=0,
                   help="random seed (default 0)")
    e.add_argument("--fid", type=existing("folder"),
                   help="Inception FID of this PNG folder against the CIFAR-10 "
                        "training set")
    e.add_argument("--json", type=output_file,
                   help="also write the numbers to this JSON file")
    _common(e)


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
    result = train.train(preset, args.out, dataset=dataset, device=args.device,
                         progress=False if args.no_progress else None)
    if result.step and rank0:
        print(f"{result.summary()}; checkpoint in {args.out}")


def _load(args):
    from blackout_tutorial import runs
    return runs.load_model(args.run, device=args.device)


def _cmd_sample(args):
    from blackout_tutorial import plotting, runs
    model, preset = _load(args)
    x = runs.generate(model, args.n, args.steps, args.method, preset=preset,
                      seed=args.seed, batch_size=args.batch_size,
                      rounding=args.rounding, shard_dir=args.shards,
                      progress=not args.no_progress)
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
    results = {"run": str(args.run), "preset": preset.name, "scale": preset.scale,
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
                "info": _cli_info.run}
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
