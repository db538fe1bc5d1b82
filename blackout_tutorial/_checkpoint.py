"""The checkpoint file format (private; ``runs`` re-exports the public names).

A checkpoint is a ``torch.save`` dict of tensors, numbers and strings (``weights_only``
loads it): ``format``, ``config`` (the preset as JSON), ``image_shape`` and ``n_max`` of
its data set, the weights and, in format v2, ``sha256``: a SHA-256 over every other
entry (names, dtypes, shapes and bytes of the tensors). torch does not check the CRCs
of the zip archive, so this digest is what catches flipped bytes. Format v1 files (the
shipped checkpoints, verified by a whole-file SHA-256 table in ``runs``) have none.
"""
import hashlib
import json
import os
from pathlib import Path

import torch

from blackout_tutorial import data, presets
from blackout_tutorial._files import atomic_write

CHECKPOINT = "checkpoint.pt"
FORMAT = "blackout-tutorial-checkpoint-v2"
LEGACY_FORMATS = ("blackout-tutorial-checkpoint-v1",)   # no payload digest
DEFAULT_BUILDER = "blackout_tutorial.runs.build_rate_model"


class CheckpointError(ValueError):
    """A checkpoint is unreadable, not ours, or belongs to a different configuration."""


def payload_digest(state):
    """SHA-256 (hex) of every entry of ``state`` except ``sha256`` and ``preset``."""
    digest = hashlib.sha256()

    def walk(obj, key):
        if isinstance(obj, dict):
            digest.update(f"{key}:dict{len(obj)};".encode())
            for k in sorted(obj, key=repr):
                walk(obj[k], f"{key}/{k!r}")
        elif isinstance(obj, (list, tuple)):
            digest.update(f"{key}:{type(obj).__name__}{len(obj)};".encode())
            for i, v in enumerate(obj):
                walk(v, f"{key}[{i}]")
        elif isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{key}:{t.dtype}{tuple(obj.shape)};".encode())
            digest.update(t.view(torch.uint8).numpy())
        else:
            digest.update(f"{key}={obj!r};".encode())

    walk({k: v for k, v in state.items() if k not in ("sha256", "preset")}, "")
    return digest.hexdigest()


def write_checkpoint(path, state):
    """Save ``state`` atomically in format v2: with the image shape and ``n_max`` of
    the data set its ``config`` names, and the payload SHA-256."""
    spec = data.dataset_spec(presets.from_dict(json.loads(state["config"])).dataset)
    state = {**state, "format": FORMAT, "image_shape": list(spec.shape),
             "n_max": int(spec.n_max)}
    state["sha256"] = payload_digest(state)
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    return Path(path)


def read_checkpoint(path, map_location="cpu"):
    """Load and verify a checkpoint file (full or exported) or a run folder's
    ``checkpoint.pt``. ``CheckpointError`` naming the file if it is missing, unreadable,
    altered (payload SHA-256), not ours, or holds a config that fails validation or
    does not match the data it was trained on."""
    if not isinstance(path, (str, os.PathLike)):
        raise CheckpointError(f"path must be a file or run folder, got {path!r}")
    path = Path(path) / CHECKPOINT if Path(path).is_dir() else Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, random bytes, pickled code, ...
        why = f"{type(err).__name__}: {str(err).strip()[:80]}"
        raise CheckpointError(f"{path} is corrupted or not a checkpoint ({why}); "
                              f"delete it to start the run from scratch") from None
    formats = (FORMAT, *LEGACY_FORMATS)
    if not isinstance(state, dict) or state.get("format") not in formats \
            or "ema" not in state:
        raise CheckpointError(f"{path} is not a blackout_tutorial checkpoint")
    if state["format"] == FORMAT and state.get("sha256") != payload_digest(state):
        raise CheckpointError(f"{path} is corrupted: its contents do not match the "
                              f"SHA-256 stored in it (flipped bytes or an edited "
                              f"file); delete it or restore a copy")
    try:
        state["preset"] = presets.from_dict(json.loads(state["config"]))
    except (ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path} holds an invalid config: {err}") from None
    spec = data.dataset_spec(state["preset"].dataset)
    saved = (list(state.get("image_shape", spec.shape)),
             int(state.get("n_max", spec.n_max)))
    if saved != (list(spec.shape), spec.n_max):
        raise CheckpointError(f"{path} holds weights for images {saved[0]} with n_max "
                              f"{saved[1]}, but its config names dataset "
                              f"{spec.name!r} ({list(spec.shape)}, n_max {spec.n_max})")
    state.setdefault("builder", DEFAULT_BUILDER)
    return state


def shipped_file(folder, name, registry, suffix, what, check=True):
    """``folder / (name + suffix)`` of a file shipped with the package, verified against
    its recorded SHA-256 in ``registry``; ``CheckpointError`` on an unknown name, a
    missing or a changed file (shipped checkpoints and classifiers, Chapters 7-9)."""
    if not isinstance(name, str) or name not in registry:
        raise CheckpointError(f"name must be one of {sorted(registry)}, got {name!r}")
    path = Path(folder) / f"{name}{suffix}"
    if not path.is_file():
        raise CheckpointError(f"the shipped {what} {path} is missing; reinstall")
    actual = data.file_digest(path, "sha256") if check else registry[name]
    if actual != registry[name]:
        raise CheckpointError(f"{path} has sha256 {actual}, not the recorded one: "
                              f"corrupt or replaced; git checkout -- {path.name}")
    return path
