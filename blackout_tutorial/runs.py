"""A run folder on disk: checkpoints, shipped weights, sample batches, sample files.

``train.train`` writes ``config.json``, ``checkpoint.pt`` (model, EMA, optimiser, step,
seconds, loss history; tensors only), ``history.csv`` and ``samples/*.png``, atomically.
:func:`export` writes the format of the shipped checkpoints (Chapters 7-8);
:func:`generate` is the one generator of sample batches; sample files are ``.npz``
(``samples`` uint8 ``[N, C, H, W]`` + ``n_max``), NHWC ``arr_0`` for FID tools, PNG
folders (Chapter 9).
"""
import csv
import importlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from blackout_tutorial import _checkpoint, _checks, _fast, data, presets
from blackout_tutorial._checkpoint import (  # noqa: F401  (re-exported)
    CHECKPOINT,
    FORMAT,
    CheckpointError,
    payload_digest,
    read_checkpoint,
    write_checkpoint,
)
from blackout_tutorial._files import (  # noqa: F401  (re-exported)
    atomic_write,
    remove_stale_temporaries,
)


def build_rate_model(preset, n_max):
    """The default model builder: ``preset.net`` in its parameterisation (Ch. 7, 9)."""
    from blackout_tutorial import _official
    return _official.build_model(preset, n_max)


def builder_name(build_model):
    """The importable name a checkpoint records for its model builder."""
    return f"{build_model.__module__}.{build_model.__qualname__}"


def _builder(name):     # builders of this package only: a checkpoint names no code
    module, _, attr = name.rpartition(".")
    if not module.startswith("blackout_tutorial"):
        raise CheckpointError(f"the checkpoint names an unknown model builder {name!r}")
    return getattr(importlib.import_module(module), attr)


def image_spec(name):
    """``(shape, n_max)`` of the images of data set ``name``, without loading it."""
    return tuple(data.dataset_spec(name).shape), int(data.dataset_spec(name).n_max)


def save_checkpoint(path, preset, step, model, ema, optimizer, history, seconds,
                    build_model=build_rate_model):
    """Write a full checkpoint atomically, with its payload SHA-256
    (``torch.load(weights_only=True)`` reads it; ``read_checkpoint`` verifies)."""
    write_checkpoint(path, {
        "config": json.dumps(presets.to_dict(preset)), "step": step,
        "seconds": seconds, "model": model.state_dict(), "ema": ema.state_dict(),
        "optimizer": optimizer.state_dict(), "builder": builder_name(build_model),
        "history": torch.as_tensor(np.asarray(history, np.float64).reshape(-1, 3))})


def write_history(path, history):
    """Write ``history.csv`` (step, loss, lr, grad_norm) of a run folder atomically."""
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["step", "loss", "lr", "grad_norm"])
            for i, (loss, lr, norm) in enumerate(history):
                out.writerow([i + 1, f"{loss:.6g}", f"{lr:.6g}", f"{norm:.6g}"])
    atomic_write(path, write)


def check_same_run(state, preset, build_model, path):
    """Raise ``CheckpointError`` unless ``state`` continues ``preset`` with
    ``build_model`` (other steps continue a run; anything else would mix two runs)."""
    saved = presets.with_overrides(state["preset"], steps=preset.train.steps)
    from blackout_tutorial._paper import flat_settings
    a, b = flat_settings(saved), flat_settings(preset)
    diff = [f"{k}: {a[k]!r} vs {b.get(k)!r}" for k in a if a[k] != b.get(k)]
    if state["builder"] != builder_name(build_model):
        diff.append(f"model builder: {state['builder']} vs {builder_name(build_model)}")
    if diff:
        raise CheckpointError(f"{path} was trained with a different configuration "
                              f"({', '.join(diff)}); use another folder or delete it")


def load_model(path, ema=True, device=None):
    """``(model, preset)`` of a run folder or checkpoint file, in eval mode (Chapter 7).

    ``ema=False``: the raw weights of a full checkpoint (exports keep the EMA only). The
    network is rebuilt by the builder the run was trained with (default: a rate model).
    """
    state = read_checkpoint(path)
    key = "ema" if ema else "model"
    if key not in state:
        raise CheckpointError(f"{path} holds no '{key}' weights (exports keep the EMA)")
    preset = state["preset"]
    model = _builder(state["builder"])(preset, image_spec(preset.dataset)[1])
    try:
        model.load_state_dict({k: v.float() for k, v in state[key].items()})
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the configured network: "
                              f"{err}") from None
    return model.to(presets.resolve_device(device)).eval(), preset


def export(run_dir, path, dtype=torch.float16):
    """Save a run as a small shareable file: EMA weights in ``dtype``, configuration,
    step, training seconds, loss history (the shipped files' format, Chapter 8)."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype!r}")
    state = read_checkpoint(run_dir)
    small = {"config": state["config"], "step": state["step"],
             "ema": {k: v.to(dtype) for k, v in state["ema"].items()},
             "seconds": float(state["seconds"]), "history": state["history"].float(),
             "builder": state["builder"]}
    return write_checkpoint(path, small)


PRETRAINED_DIR = Path(__file__).resolve().parent / "checkpoints"
PRETRAINED_SHA256 = {  # float16 EMA exports: Chapter 8's and Chapter 7's models
    "mnist5k_small": "562f2f9a75b25ab9aa1af4d3abe04cffe65c05071dbcc4b4cdcf41a7bdf11cbf",
    "digits_laptop": "06899457f07bf1a65b01aa7b990dbe75a7b1ddea3d353a17e133bc940e1415bd",
    # Real data, Chapters 8-9: python scripts/train_shipped.py NAME --data-dir DIR
    "mnist": "207cbd44aecfbad296a2dfbe625e2ab81da9d401e0f47e33c6171b08a43bfe3c",
    "binarized-mnist":
        "8704359480433ecc92a3dc7ac1c44eae3dfbac8e674a1444153997b68627ab23",
    "cifar10": "a3cb72573fec94aee2eac18453cb402e5c8ff885e8ee64f21705ee60e7619fd6",
}


def pretrained_path(name="mnist5k_small", check=True):
    """Path of a checkpoint shipped with the package, verified against its SHA-256;
    ``CheckpointError`` on an unknown name, a missing or a changed file (Chapter 8)."""
    return _checkpoint.shipped_file(PRETRAINED_DIR, name, PRETRAINED_SHA256, ".pt",
                                    "checkpoint", check)


def load_pretrained(name="mnist5k_small", device=None):
    """``(model, preset, info)``: a shipped, checksum-verified rate model (EMA), its
    preset, and ``info`` with the training ``step``, ``seconds`` and loss ``history``
    (``[steps, 3]``: loss, lr, gradient norm), Chapter 8. ``name`` may also be the
    ``Path`` of an export (``runs.export``; not checksum-verified)."""
    path = Path(name) if isinstance(name, os.PathLike) else pretrained_path(name)
    model, preset = load_model(path, device=device)
    state = read_checkpoint(path)
    info = {"step": int(state["step"]), "seconds": float(state["seconds"]),
            "history": state["history"].double().numpy()}
    return model, preset, info


def start_finetune(out_dir, extra_steps, name="mnist5k_small", **train_overrides):
    """Prepare ``out_dir`` to fine-tune a shipped checkpoint (``name`` as in
    :func:`load_pretrained`) with ``train.train``: a
    full checkpoint with the shipped EMA as raw and EMA weights, a fresh Adam state.
    Returns the preset for ``train.train(preset, out_dir)``: steps = shipped steps +
    ``extra_steps``, and any ``TrainConfig`` overrides (e.g. ``lr``). Chapter 8."""
    _checks.positive_int(extra_steps, "extra_steps")
    model, preset, info = load_pretrained(name, device="cpu")
    preset = presets.with_overrides(preset, steps=info["step"] + int(extra_steps),
                                    **train_overrides)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    from blackout_tutorial.train import make_optimizer  # train imports runs
    optimizer = make_optimizer(model, preset.train.lr, "cpu")
    save_checkpoint(Path(out_dir) / CHECKPOINT, preset, info["step"], model, model,
                    optimizer, info["history"], info["seconds"])
    return preset


def generate(run_or_model, n, steps=None, method=None, *, preset=None, seed=0,
             batch_size=None, device=None, rounding=None, shard_dir=None,
             progress=False, bf16=False, compile=False):
    """``n`` samples of a run (folder or checkpoint file) or model, uint8 [n, C, H, W].

    Batch i has its own generator, seeded ``seed + 1000003 i``: one batch is exactly
    ``sampling.sample`` with ``torch.Generator(device).manual_seed(seed)``. ``steps``,
    ``method``, ``batch_size``, ``rounding`` default to the preset's; ``method`` may be
    a sampler ``f(model, shape, steps, n_max, generator=, device=)`` (the Gaussian
    one); a model needs ``preset``. ``preset.sample_dropout``: dropout on, seeded per
    batch (``torch.manual_seed``). With ``shard_dir`` batch i is kept as
    ``shard_{i:05d}.npz``, reused on a rerun. ``bf16``: the network under bfloat16
    autocast (other samples); ``compile``: through ``torch.compile`` (eager, with a
    warning, if that fails).
    """
    n, seed = _checks.positive_int(n, "n"), _checks.positive_int(seed, "seed", 0)
    model = run_or_model
    if isinstance(model, (str, os.PathLike)):
        model, preset = load_model(model, device=device)
    if not isinstance(preset, presets.Preset):
        raise ValueError(f"preset must be a presets.Preset (required when run_or_model "
                         f"is a model), got {type(preset).__name__}")
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    device = presets.resolve_device(device) if device is not None else (
        params[0].device if params else None)
    model = _fast.wrap(model, device, bf16, compile)
    if shard_dir is not None:
        remove_stale_temporaries(shard_dir)
    shape, n_max = image_spec(preset.dataset)
    steps = _checks.positive_int(steps or preset.sample_steps, "steps")
    batch_size = _checks.positive_int(
        preset.sample_batch if batch_size is None else batch_size, "batch_size")
    method = method or preset.sample_method
    rounding = rounding or preset.sample_rounding
    chunks = []
    for i, begin in enumerate(range(0, n, batch_size)):
        path = Path(shard_dir) / f"shard_{i:05d}.npz" if shard_dir else None
        if path is not None and path.exists():
            chunks.append(load_samples_npz(path)[0])
            continue
        gen = torch.Generator(device).manual_seed(int(seed) + 1_000_003 * i)
        size = (min(batch_size, n - begin), *shape)
        if preset.sample_dropout:
            torch.manual_seed(int(seed) + 1_000_003 * i)
        x = _fast.sample_batch(model, size, steps, method, preset, n_max, gen, device,
                               progress, rounding)
        chunks.append(x.to(torch.uint8).cpu())
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_samples_npz(chunks[-1], path, n_max)
    return torch.cat(chunks)


def checked_counts(samples, n_max):
    """``samples`` as uint8 ``[N, C, H, W]`` (C = 1 or 3), checked: counts 0..n_max."""
    x = torch.as_tensor(samples).detach().cpu()
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"samples must have shape [N, C, H, W] with C = 1 or 3, got "
                         f"{tuple(x.shape)}")
    if _checks.positive_int(n_max, "n_max") > 255:
        raise ValueError(f"n_max must be an integer in 1..255, got {n_max!r}")
    return _checks.counts(x, "samples", n_max).to(torch.uint8)


def save_samples_npz(samples, path, n_max):
    """Save counts as ``samples`` (uint8 ``[N, C, H, W]``) and ``n_max`` in a .npz (the
    layout of ``python -m blackout_tutorial sample --out x.npz``, Chapter 9)."""
    x = checked_counts(samples, n_max)
    _write_npz(path, np.savez_compressed, samples=x.numpy(), n_max=np.int64(n_max))
    return Path(path)


def _write_npz(path, save, *arrays, **named):
    def write(tmp):
        with open(tmp, "wb") as f:      # a file object: numpy adds no second suffix
            save(f, *arrays, **named)
    atomic_write(path, write)


def load_samples_npz(path):
    """``(samples uint8 [N, C, H, W], n_max)`` from a file of :func:`save_samples_npz`;
    a file without ``n_max`` (older versions) raises ``ValueError``: scale unknown."""
    try:
        with np.load(path) as f:
            files = sorted(f.files)
            if "samples" in f and "n_max" in f:
                samples, n_max = torch.from_numpy(f["samples"]), int(f["n_max"])
    except (OSError, EOFError, ValueError, TypeError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable .npz file ({type(err).__name__}: "
                         f"{str(err)[:80]})") from None
    if "samples" not in files or "n_max" not in files:
        raise ValueError(f"{path} must hold the arrays 'samples' and 'n_max' (a "
                         f"blackout_tutorial sample file), not {files}")
    return checked_counts(samples, n_max), n_max


def to_8bit(samples, n_max):
    """Counts scaled to 0..255, round(255 n / n_max), uint8 ``[N, C, H, W]``."""
    x = checked_counts(samples, n_max).to(torch.int64)
    return ((x * 255 + n_max // 2) // n_max).to(torch.uint8)


def save_fid_npz(samples, path, n_max):
    """Save images for npz-reading FID tools: ``arr_0``, uint8 NHWC RGB, 0..255 (counts
    scaled as by :func:`to_8bit`, grey repeated into RGB), Chapter 9."""
    x = to_8bit(samples, n_max).permute(0, 2, 3, 1)
    x = x.expand(-1, -1, -1, 3) if x.shape[-1] == 1 else x
    _write_npz(path, np.savez, x.contiguous().numpy())
    return Path(path)


def save_samples_png(samples, folder, n_max, start=0):
    """One PNG per image (``{start + i:06d}.png``, 8-bit grey or RGB, scaled as by
    :func:`to_8bit`) in ``folder``: the input of Inception-FID tools (Chapter 9)."""
    from PIL import Image
    x, start = to_8bit(samples, n_max), _checks.positive_int(start, "start", 0)
    x = x.permute(0, 2, 3, 1).numpy()
    (folder := Path(folder)).mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(x):
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            folder / f"{start + i:06d}.png")
    return folder
