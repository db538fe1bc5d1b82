"""The subcommand parsers and argument types of the command line (private): each type
parses one flag's text or raises ``argparse.ArgumentTypeError``, which argparse reports
as one line naming the flag (exit status 2). Output paths are checked here, so before
any work starts."""
import argparse
import math
import tempfile
from pathlib import Path


class UsageError(ValueError):
    """A bad command-line value found after parsing (exit code 2, one line)."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def integer(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, got {text!r}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"expected a finite number > 0, got {text!r}")
    return value


def device(text):
    from blackout_tutorial.presets import resolve_device
    try:
        return resolve_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def existing(kind):
    def parse(text):
        path = Path(text)
        ok = {"file": path.is_file, "folder": path.is_dir, "path": path.exists}[kind]
        if not ok():
            raise argparse.ArgumentTypeError(f"no {kind} at {text}")
        return path
    parse.__name__ = f"existing {kind}"
    return parse


def _writable(folder, text):
    """The nearest existing folder above (or at) ``folder`` must accept a file."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{existing} is a file, so {text} cannot be "
                                         f"created")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as err:
        raise argparse.ArgumentTypeError(
            f"cannot write in {existing} ({err.strerror or err})") from None


def output_folder(text):
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    _writable(Path(text), text)
    return text


def output_file(text):
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    _writable(Path(text).parent, text)
    return text


def sample_output(text):
    if not text.endswith((".png", ".npz", "/")):
        raise argparse.ArgumentTypeError(f"must end in .png, .npz or / (a folder), "
                                         f"got {text!r}")
    return output_folder(text) if text.endswith("/") else output_file(text)


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


def train_parser(sub):
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
    t.add_argument("--max-seconds", type=positive_float,
                   help="end this session after S seconds of training, with a "
                        "checkpoint (rerun to continue)")
    t.add_argument("--bf16-cpu", action="store_true",
                   help="bfloat16 autocast on a CPU too (faster per step, other "
                        "numerics; CUDA uses the preset's train.bf16)")
    _common(t)



def _model_source(parser):
    """--run PATH or --pretrained NAME (a checkpoint shipped with the package)."""
    from blackout_tutorial.runs import PRETRAINED_SHA256
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=existing("path"),
                        help="run folder or checkpoint file")
    source.add_argument("--pretrained", choices=sorted(PRETRAINED_SHA256),
                        help="a checkpoint shipped with the package, by name")

def sample_parser(sub):
    from blackout_tutorial.sampling import METHODS, ROUNDINGS
    s = sub.add_parser("sample", help="generate images with a trained run",
                       description="Generate images from the EMA weights of a run.")
    _model_source(s)
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
                   help="images generated at once (default: the preset's, 256; on a "
                        "2-core CPU 64-256 were equally fast per image and 1024 "
                        "slower; a GPU gains from larger batches)")
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
    s.add_argument("--bf16", action="store_true",
                   help="network under bfloat16 autocast (faster, other samples)")
    s.add_argument("--compile", action="store_true",
                   help="torch.compile the network once (eager with a warning if "
                        "compilation fails)")
    s.add_argument("--json", type=output_file,
                   help="also write the sampling throughput (images/s, seconds, "
                        "peak memory) to this JSON file")
    _common(s, data_dir=False)


def evaluate_parser(sub):
    from blackout_tutorial.sampling import METHODS
    e = sub.add_parser(
        "evaluate", help="ELBO bits/dim on held-out data (+ sample metrics)",
        description="Negative ELBO in bits/dim on held-out images; digit classifier "
                    "metrics (digits, MNIST); Inception FID.")
    _model_source(e)
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


def export_parser(sub):
    e = sub.add_parser(
        "export", help="save a run's EMA weights as a small file (float16)",
        description="Save the EMA weights, configuration and history of a run in "
                    "the format of the shipped checkpoints (loads with sample --run).")
    e.add_argument("--run", required=True, type=existing("path"),
                   help="run folder or checkpoint file")
    e.add_argument("--out", required=True, type=output_file,
                   help="the exported checkpoint (.pt)")
    e.add_argument("--dtype", default="float16", choices=("float16", "bfloat16",
                                                          "float32"),
                   help="weight dtype (default float16)")
    e.set_defaults(no_progress=True)
