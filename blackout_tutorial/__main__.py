"""Command line: ``python -m blackout_tutorial {train,sample,evaluate}`` (Chapters 7-10).

    python -m blackout_tutorial train --preset digits --out runs/digits [--scale laptop]
    python -m blackout_tutorial sample --run runs/digits --n 64 --steps 250 --out samples.png
    python -m blackout_tutorial evaluate --run runs/digits

``train`` resumes when ``--out`` already holds a checkpoint. Multi-GPU:
``torchrun --nproc_per_node 4 -m blackout_tutorial train ...``.
"""
import argparse
import json
import os
import sys
from pathlib import Path


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _image_path(text):
    if not text.endswith((".png", ".npz")):
        raise argparse.ArgumentTypeError(f"must end in .png or .npz, got {text!r}")
    return Path(text)


def build_parser():
    """The argparse parser of the CLI (every option documented in ``--help``)."""
    from blackout_tutorial.presets import PRESETS, SCALES
    from blackout_tutorial.sampling import METHODS, ROUNDINGS

    parser = argparse.ArgumentParser(
        prog="python -m blackout_tutorial",
        description="Train, sample and evaluate Blackout Diffusion models (Santos et al., 2023).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,sample,evaluate}")

    def common(p, data_dir=True):
        p.add_argument("--device", default=None,
                       help="torch device (cuda, cuda:1, mps, cpu); default: the best available")
        if data_dir:
            p.add_argument("--data-dir", default=None,
                           help="folder for downloaded datasets (default: $BLACKOUT_DATA_DIR or "
                                "~/.cache/blackout_tutorial)")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")

    t = sub.add_parser("train", help="train a preset (resumes from a checkpoint in --out)",
                       description="Train a preset into a run folder; resume if it holds a checkpoint.")
    t.add_argument("--preset", required=True, choices=PRESETS, help="what to train")
    t.add_argument("--out", required=True, help="run folder (checkpoint, history, sample grids)")
    t.add_argument("--scale", default="laptop", choices=SCALES,
                   help="smoke: seconds; laptop: minutes on a CPU; full: the paper on a GPU "
                        "(default: laptop)")
    t.add_argument("--steps", type=_positive_int, help="override the number of training steps")
    t.add_argument("--batch-size", type=_positive_int, help="override the global batch size")
    t.add_argument("--lr", type=_positive_float, help="override the Adam learning rate")
    t.add_argument("--seed", type=int, help="override the random seed")
    common(t)

    s = sub.add_parser("sample", help="generate images with a trained run",
                       description="Generate images from the EMA weights of a run.")
    s.add_argument("--run", required=True, help="run folder or checkpoint file")
    s.add_argument("--n", type=_positive_int, default=64, help="number of images (default 64)")
    s.add_argument("--steps", type=_positive_int,
                   help="sampler steps (any number: time is continuous; default: the preset's)")
    s.add_argument("--method", choices=METHODS, help="reverse sampler (default: the preset's)")
    s.add_argument("--rounding", choices=ROUNDINGS, default="stochastic",
                   help="rounding of the binomial bridge (default: stochastic)")
    s.add_argument("--batch-size", type=_positive_int, default=256,
                   help="images generated at once (default 256)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--out", required=True, type=_image_path,
                   help="output file: .png (a grid) or .npz (uint8 counts 'samples' [N,C,H,W])")
    common(s, data_dir=False)

    e = sub.add_parser("evaluate", help="ELBO bits/dim on held-out data (+ digit metrics)",
                       description="Negative ELBO in bits/dim on held-out images; for digits also "
                                   "classifier metrics of generated samples.")
    e.add_argument("--run", required=True, help="run folder or checkpoint file")
    e.add_argument("--n-test", type=_positive_int, default=256,
                   help="held-out images for the ELBO (default 256)")
    e.add_argument("--elbo-steps", type=_positive_int,
                   help="time points drawn per image for the ELBO estimate (default: all T)")
    e.add_argument("--n-samples", type=_positive_int, default=500,
                   help="generated images for the digit metrics (default 500)")
    e.add_argument("--steps", type=_positive_int, help="sampler steps (default: the preset's)")
    e.add_argument("--method", choices=METHODS, help="reverse sampler (default: the preset's)")
    e.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    e.add_argument("--json", help="also write the numbers to this JSON file")
    common(e)
    return parser


def _cmd_train(args):
    from blackout_tutorial import presets, train
    preset = presets.with_overrides(presets.get_preset(args.preset, args.scale), steps=args.steps,
                                    batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    result = train.train(preset, args.out, device=args.device, data_dir=args.data_dir,
                         progress=False if args.no_progress else None)
    if result.step and os.environ.get("RANK", "0") == "0":      # torchrun: rank 0 reports
        print(f"{result.summary()}; checkpoint in {args.out}")


def _generate(model, preset, n, steps, method, seed, device, batch_size=256, progress=False,
              rounding="stochastic"):
    import torch

    from blackout_tutorial import data, sampling, schedule
    shape, n_max = data.dataset_info(preset.dataset)
    times = schedule.observation_times(steps or preset.sample_steps, preset.t_end)
    gen = torch.Generator(device).manual_seed(seed)
    chunks = [sampling.sample(model, (min(batch_size, n - i), *shape), times,
                              method=method or preset.sample_method, n_max=n_max, generator=gen,
                              device=device, progress=progress, rounding=rounding)
              for i in range(0, n, batch_size)]
    return torch.cat(chunks).to(torch.uint8).cpu(), n_max


def _cmd_sample(args):
    import numpy as np

    from blackout_tutorial import plotting, profiles, train
    out = args.out
    device = args.device or profiles.default_device()
    model, preset = train.load_model(args.run, device=device)
    x, n_max = _generate(model, preset, args.n, args.steps, args.method, args.seed, device,
                         args.batch_size, progress=not args.no_progress, rounding=args.rounding)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        np.savez_compressed(out, samples=x.numpy())
    else:
        plotting.save_image_grid(x, n_max, out, nrow=int(np.ceil(np.sqrt(args.n))), dpi=150)
    print(f"wrote {args.n} samples to {out}")


def _cmd_evaluate(args):
    import torch

    from blackout_tutorial import data, evaluate, losses, profiles, schedule, train
    device = args.device or profiles.default_device()
    model, preset = train.load_model(args.run, device=device)
    dataset = data.load_dataset(preset.dataset, args.data_dir)
    gen = torch.Generator(device).manual_seed(args.seed)
    x0 = dataset.test[:args.n_test].to(device).long()
    times = schedule.observation_times(preset.T, preset.t_end)
    bpd = losses.elbo_bits_per_dim(model, x0, times, dataset.n_max, n_steps=args.elbo_steps,
                                   generator=gen)
    results = {"run": str(args.run), "preset": preset.name, "scale": preset.scale,
               "elbo_bits_per_dim": float(bpd.mean()),
               "elbo_bits_per_dim_stderr": float(bpd.std() / len(bpd) ** 0.5)}
    print(f"negative ELBO on {len(x0)} held-out images: {results['elbo_bits_per_dim']:.4f} "
          f"+- {results['elbo_bits_per_dim_stderr']:.4f} bits/dim")
    if preset.dataset == "digits":
        samples, _ = _generate(model, preset, args.n_samples, args.steps, args.method, args.seed,
                               device, progress=not args.no_progress)
        metrics = evaluate.digit_report(samples, dataset)
        results.update(metrics)
        for key, value in metrics.items():
            print(f"{key}: {value:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def main(argv=None):
    """Entry point of ``python -m blackout_tutorial`` and ``blackout-tutorial``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.no_progress:
        os.environ["BLACKOUT_PROGRESS"] = "0"
    from blackout_tutorial.data import DownloadError
    from blackout_tutorial.train import CheckpointError
    try:
        {"train": _cmd_train, "sample": _cmd_sample, "evaluate": _cmd_evaluate}[args.command](args)
    except (CheckpointError, DownloadError, FloatingPointError) as err:
        parser.exit(1, f"error: {err}\n")
    except ValueError as err:  # bad values that argparse cannot see (e.g. batch vs world size)
        parser.exit(2, f"{parser.prog} {args.command}: error: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
