"""Sample quality of a shipped checkpoint on real data, at equal N (pinned recipe).

    OMP_NUM_THREADS=1 python scripts/real_metrics.py mnist --data-dir ../shared/data \\
        --n 1000 --seeds 3 --steps 250 --method tau_leaping --method bridge --elbo

loads the shipped checkpoint NAME (``mnist``, ``binarized-mnist``, ``cifar10``; or any
run or exported file with ``--checkpoint PATH``), draws ``--seeds`` batches of ``--n``
samples per sampler with ``runs.generate`` (seeds 0, 1, ...), and judges them with the
shipped classifier of the data set (``classifiers.load_classifier``) against the real
test images with ``evaluate.real_report``: confident fraction vs the real rate, class
histogram, and the Frechet proxy in classifier features (not FID) with the real-vs-real
floor at the same N (disjoint test subsets) and the independent-pixel baseline, each
with its standard deviation over seeds / draws. ``--elbo``: the negative ELBO in
bits/dim on the whole test set (``losses.elbo_estimate``, with its standard error;
``--elbo-terms`` step indices per image, default chosen from the measured sampling cost
to take 5-7 minutes; refused on a lossy JPEG-derived data set). Writes
``--out`` (default ``book/results/NAME_metrics.json``), 64 samples per sampler next to
it (``NAME_samples.npz`` for tau-leaping, ``NAME_samples_bridge.npz``), the ELBO in
``NAME_elbo.json``, and prints a Markdown table and the generation cost (seconds per
1000 samples). Every sample batch is kept in ``--cache`` (default ``runs/
metrics_samples``): judging again, e.g. after retraining a classifier, reuses them.
"""
import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import torch

from blackout_tutorial import classifiers, data, evaluate, losses, runs, schedule

ROOT = Path(__file__).resolve().parents[1]
NAMES = {"mnist": "mnist", "binarized-mnist": "binarized_mnist", "cifar10": "cifar10"}
JUDGE = {"mnist5k": "mnist", "binarized_mnist5k": "binarized_mnist",
         "cifar10-fixture": "cifar10", **{v: v for v in NAMES.values()}}
METHODS = {"tau_leaping": "tau_leaping", "bridge": "binomial_bridge",
           "binomial_bridge": "binomial_bridge"}
ELBO_SECONDS = 300.0   # target of the automatic --elbo-terms
ELBO_FORWARD_SECONDS = 5e-3  # per image and step, when every batch came from --cache


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", choices=sorted(NAMES))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=250)
    p.add_argument("--method", action="append", choices=sorted(METHODS))
    p.add_argument("--batch-size", type=int, default=None, help="sampling batch")
    p.add_argument("--checkpoint", default=None, help="a run folder or exported file")
    p.add_argument("--classifier", default=None, help="a classifier file (tests)")
    p.add_argument("--elbo", action="store_true")
    p.add_argument("--elbo-terms", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu", help="for the diffusion model")
    p.add_argument("--out", default=None)
    p.add_argument("--cache", default=str(ROOT / "runs" / "metrics_samples"),
                   help="folder that keeps the sample batches (default runs/...)")
    args = p.parse_args(argv)
    for key in ("n", "seeds", "steps", "batch_size", "elbo_terms", "threads"):
        value = getattr(args, key)
        if value is not None and value < (2 if key == "n" else 1):
            p.error(f"--{key.replace('_', '-')} must be a positive integer "
                    f"(--n >= 2), got {value}")
    chosen = args.method or ["tau_leaping"]
    args.method = list(dict.fromkeys(METHODS[m] for m in chosen))
    args.out = Path(args.out or ROOT / "book/results" / f"{args.name}_metrics.json")
    return p, args


def sig(x, digits=4):
    """``x`` with floats rounded to ``digits`` significant digits (recursively)."""
    if isinstance(x, dict):
        return {k: sig(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [sig(v, digits) for v in x]
    if isinstance(x, float):
        if not math.isfinite(x):
            return None
        return float(f"{x:.{digits}g}")
    return x


def generate(model, preset, args, method):
    # Each batch is kept in --cache (keyed by the weights, sampler, seed, N and steps),
    # with the seconds it took beside it, so judging again (e.g. with a retrained
    # classifier) neither samples again nor reports the cache's speed as the sampler's.
    batches, seconds = [], 0.0
    key = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes()
                                  for p in model.parameters())).hexdigest()[:12]
    for seed in range(args.seeds):
        path = Path(args.cache) / f"{args.name}_{key}_{method}_s{seed}_n{args.n}_" \
                                  f"k{args.steps}.npz"
        cost = path.with_suffix(".seconds")
        if path.is_file() and cost.is_file():
            batches.append(runs.load_samples_npz(path)[0])
            seconds += float(cost.read_text())
            continue
        start = time.perf_counter()
        batches.append(runs.generate(model, args.n, args.steps, method, preset=preset,
                                     seed=seed, batch_size=args.batch_size))
        seconds += time.perf_counter() - start
        path.parent.mkdir(parents=True, exist_ok=True)
        runs.save_samples_npz(batches[-1], path, model.n_max)
        cost.write_text(f"{time.perf_counter() - start:.2f}\n")
    per_1000 = seconds / (args.seeds * args.n) * 1000
    print(f"{method}: {args.seeds} x {args.n} samples, {args.steps} steps in "
          f"{seconds:.1f} s = {per_1000:.1f} s per 1000 samples "
          f"({per_1000 * 250 / args.steps:.1f} s per 1000 at 250 steps)", flush=True)
    return batches, {"seconds": seconds, "seconds_per_1000": per_1000}


def elbo(model, preset, dataset, args, forward_seconds):
    times = schedule.observation_times(preset.T, preset.t_end)
    terms = args.elbo_terms or int(max(1, min(preset.T, ELBO_SECONDS / max(
        1e-9, forward_seconds * len(dataset.test)))))
    device = next(model.parameters()).device
    start = time.perf_counter()
    est = losses.elbo_estimate(model, dataset.test.to(device).long(), times,
                               dataset.n_max, n_terms=terms, batch_size=250,
                               generator=torch.Generator(device).manual_seed(0))
    seconds = time.perf_counter() - start
    print(f"negative ELBO on {len(dataset.test)} test images, {terms} stratified step "
          f"indices per image: {est.mean:.4f} +- {est.stderr:.4f} bits/dim "
          f"(standard error), {seconds:.0f} s", flush=True)
    # For scale: the exact NLL of independent per-pixel categoricals fitted to the
    # training set (no model can be called good that does not beat it).
    base = evaluate.pixel_marginal_bits_per_dim(dataset.train, dataset.test,
                                                dataset.n_max)
    print(f"independent-pixel baseline: {float(base.mean()):.4f} bits/dim", flush=True)
    return {"bits_per_dim": est.mean, "stderr": est.stderr, "n_terms": terms,
            "baseline_independent_pixels": float(base.mean()),
            "baseline_stderr": float(base.std() / len(base) ** 0.5),
            "n_images": len(dataset.test), "T": preset.T, "seconds": seconds}


def load(args):
    if args.checkpoint:
        model, preset = runs.load_model(args.checkpoint, device=args.device)
    else:
        model, preset, _ = runs.load_pretrained(args.name, device=args.device)
    judge = JUDGE.get(preset.dataset)
    if judge is None:
        raise ValueError(f"no classifier judges data set {preset.dataset!r}")
    clf = (classifiers.read_classifier(args.classifier) if args.classifier
           else classifiers.load_classifier(judge))
    return model, preset, clf, data.load_dataset(judge, args.data_dir, download=False)


def main(argv=None):
    parser, args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    wall = time.perf_counter()
    try:
        model, preset, clf, dataset = load(args)
    except (ValueError, OSError, data.DownloadError) as err:
        parser.error(str(err).splitlines()[0])
    if args.elbo and dataset.lossy:
        parser.error("--elbo on a lossy (JPEG-derived) data set is no CIFAR-10 number")
    print(f"{args.name}: {preset.name} ({preset.dataset}), judged by the "
          f"{clf.name} classifier (test accuracy {clf.info.get('test_accuracy')}) on "
          f"{dataset.source}; {torch.get_num_threads()} threads", flush=True)
    report, cost = {}, {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for method in args.method:
        batches, cost[method] = generate(model, preset, args, method)
        batches = [b.cpu() for b in batches]
        short = "" if method == "tau_leaping" else "_bridge"
        runs.save_samples_npz(batches[0][:64], args.out.parent /
                              f"{args.name}_samples{short}.npz", dataset.n_max)
        report[method] = evaluate.real_report(clf, batches, dataset.test,
                                              dataset.train, seed=0)
    result = {"name": args.name,
              "checkpoint": args.checkpoint or f"shipped {args.name}",
              "preset": preset.name, "dataset": dataset.source, "lossy": dataset.lossy,
              "n": args.n, "seeds": list(range(args.seeds)), "steps": args.steps,
              "metric": "Frechet proxy in classifier features (not FID)",
              "classifier": clf.info, "samplers": report, "generation": cost}
    words = sys.argv[1:] if argv is None else argv
    recipe = dict(command="python scripts/real_metrics.py " + " ".join(words),
                  device=str(next(model.parameters()).device), torch=torch.__version__,
                  threads=torch.get_num_threads())
    if args.elbo:   # its own file: judging again does not recompute it
        forward = ELBO_FORWARD_SECONDS if not cost[args.method[0]]["seconds"] else \
            cost[args.method[0]]["seconds"] / (args.seeds * args.n * args.steps)
        bound = {"name": args.name, "dataset": dataset.source,
                 "elbo": elbo(model, preset, dataset, args, forward), **recipe}
        path = args.out.with_name(f"{args.name}_elbo.json")
        path.write_text(json.dumps(sig(bound), indent=1) + "\n")
        print(f"wrote {path}")
    result.update(recipe, wall_seconds=time.perf_counter() - wall)
    args.out.write_text(json.dumps(sig(result), indent=1) + "\n")
    print(evaluate.real_report_markdown(report))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
