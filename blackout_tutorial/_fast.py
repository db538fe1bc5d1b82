"""One batch of ``runs.generate`` and its optional faster forward (private):
bfloat16 autocast and ``torch.compile`` (``benchmarks/sample_speed.py`` measures both).
"""
import warnings

import torch

from blackout_tutorial import sampling, schedule


class FastForward(torch.nn.Module):
    """``model`` under bfloat16 autocast (``bf16``) and/or through ``torch.compile``
    (``compile``, compiled once on the first call; recompiled only for a new input
    shape); the output is float32. A failed compilation (no C compiler, an unsupported
    operation) warns once and the eager model takes over."""

    def __init__(self, model, device, bf16=False, compile=False):
        super().__init__()
        self.model, self.bf16 = model, bool(bf16)
        self.kind = torch.device(device).type if device is not None else "cpu"
        compiled = None
        if compile:
            try:
                compiled = torch.compile(model)
            except Exception as err:  # any failure: eager instead
                _fallback(err)
        object.__setattr__(self, "compiled", compiled)  # not a second submodule

    def forward(self, *args, **kwargs):
        kind = self.kind if self.bf16 else "cpu"
        with torch.autocast(kind, dtype=torch.bfloat16, enabled=self.bf16):
            if self.compiled is not None:
                try:
                    return self.compiled(*args, **kwargs).float()
                except Exception as err:
                    _fallback(err)
                    object.__setattr__(self, "compiled", None)
            return self.model(*args, **kwargs).float()


def _fallback(err):
    text = " ".join(str(err).split())[:200]
    warnings.warn(f"torch.compile failed ({type(err).__name__}: {text}); sampling "
                  f"with the eager model", RuntimeWarning, stacklevel=3)


def wrap(model, device, bf16=False, compile=False):
    """``model`` itself, or a :class:`FastForward` of it when ``bf16`` or
    ``compile``; a bad flag raises ValueError naming it."""
    for name, value in (("bf16", bf16), ("compile", compile)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")
    if not (bf16 or compile):
        return model
    return FastForward(model, device, bf16, compile)


def sample_batch(model, size, steps, method, preset, n_max, gen, device, progress,
                 rounding):
    """One batch of ``runs.generate``: ``method`` (a name of ``sampling.METHODS`` or a
    sampler function) from black, dropout on if ``preset.sample_dropout``."""
    with sampling.dropout_active(model, preset.sample_dropout):
        if callable(method):
            return method(model, size, steps, n_max, generator=gen, device=device)
        times = schedule.observation_times(steps, preset.t_end)
        return sampling.sample(model, size, times, method=method, n_max=n_max,
                               generator=gen, device=device, progress=progress,
                               rounding=rounding)
