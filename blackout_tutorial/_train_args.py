"""The argument checks of ``train.train`` (ValueError naming the argument)."""
import os
from pathlib import Path

from blackout_tutorial import _checks, presets, runs


def check(preset, out_dir, loss, build_model, dataset, stop_at):
    """ValueError naming the argument; runs before anything is created."""
    if not isinstance(preset, presets.Preset):
        raise ValueError(f"preset must be a Preset, got {type(preset).__name__}")
    if not isinstance(out_dir, (str, os.PathLike)) or Path(out_dir).is_file():
        raise ValueError(f"out_dir must be a run folder, not a file, got {out_dir!r}")
    for name, f in (("loss", loss), ("build_model", build_model)):
        if f is not None and not callable(f):
            raise ValueError(f"{name} must be callable or None, got {f!r}")
    if stop_at is not None:
        _checks.positive_int(stop_at, "stop_at", minimum=0)
    shape, n_max = runs.image_spec(preset.dataset)
    if dataset is not None and (getattr(dataset, "shape", None), getattr(
            dataset, "n_max", None)) != (shape, n_max):
        raise ValueError(f"dataset must hold images {shape} with n_max {n_max} (those "
                         f"of preset.dataset {preset.dataset!r}), got {dataset!r:.80}")
