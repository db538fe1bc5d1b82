"""Argument rules of the package, in one place (private; imports nothing from the
package).

Every check raises ``ValueError`` with a message that names the argument and the rule,
and returns the value in the form the caller computes with (an ``int``, a ``float``, a
float64 tensor). A public function opens with one or two of these lines and then does
its maths. :func:`predict` is the one checked call of a rate model ``model(x_t, t)``.
"""
import math

import torch


def _real_tensor(x, name):
    if not isinstance(x, torch.Tensor):
        # Python floats stay float64 (torch's default float32 would round them).
        x = torch.as_tensor(x, dtype=torch.float64) \
            if torch.as_tensor(x).is_floating_point() else torch.as_tensor(x)
    if x.dtype == torch.bool or x.dtype.is_complex:
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    return x


def one_of(value, choices, name):
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def tensor(x, name):
    """``x`` if it is a ``torch.Tensor`` (inputs that keep their device and dtype)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def positive_int(value, name, minimum=1):
    """``value`` as an ``int``: an integer (not a bool) >= ``minimum``."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) \
        and math.isfinite(value) and int(value) == value and value >= minimum
    if not ok:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def count(value, name, n_max=None):
    """One count as an ``int``: integer-valued, >= 0 (and <= ``n_max`` when given)."""
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        raise ValueError(
            f"{name} must be a single count, got shape {tuple(value.shape)}"
        )
    n = positive_int(value, name, minimum=0)
    if n_max is not None and n > n_max:
        raise ValueError(f"{name} must be <= n_max = {n_max}, got {n}")
    return n


def counts(x, name, n_max=None):
    """``x`` (any dtype) if it holds finite, integer-valued counts >= 0 (<=
    ``n_max``)."""
    x = _real_tensor(x, name)
    if torch.is_floating_point(x):
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} must hold finite counts (got NaN or inf)")
        if not bool((x == torch.round(x)).all()):
            raise ValueError(
                f"{name} must hold integer-valued counts (got non-integer values)"
            )
    if bool((x < 0).any()):
        raise ValueError(f"{name} must hold non-negative counts (got a negative value)")
    if n_max is not None and bool((x > n_max).any()):
        raise ValueError(f"{name} must hold counts <= n_max = {n_max}")
    return x


def count_tensor(x, name, n_max=None):
    """``x`` if it is a ``torch.Tensor`` of counts (see :func:`counts`)."""
    return counts(tensor(x, name), name, n_max)


def number(value, name, minimum=None, strict=False):
    """``value`` as a finite ``float`` (> ``minimum`` if ``strict``, else >=
    ``minimum``)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) \
        and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if strict else value >= minimum
    if not ok:
        rule = "" if minimum is None else f" {'>' if strict else '>='} {minimum}"
        raise ValueError(f"{name} must be a finite number{rule}, got {value!r}")
    return float(value)


def probability(value, name):
    """``value`` as a ``float`` in [0, 1]."""
    p = number(value, name, minimum=0.0)
    if p > 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return p


def finite(x, name, minimum=None):
    """``x`` as a tensor if every value is finite (and >= ``minimum`` when given)."""
    x = _real_tensor(x, name)
    if torch.is_floating_point(x) and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite (got NaN or inf)")
    if minimum is not None and bool((x < minimum).any()):
        raise ValueError(f"{name} must be >= {minimum} elementwise")
    return x


def times(t, name="t", positive=False):
    """``t`` as a float64 tensor if every time is finite and >= 0 (> 0 if
    ``positive``)."""
    device = t.device if isinstance(t, torch.Tensor) else None
    t = finite(t, name).to(dtype=torch.float64, device=device)
    if bool((t <= 0).any()) if positive else bool((t < 0).any()):
        rule = "> 0" if positive else ">= 0 (times run forward from t = 0)"
        raise ValueError(f"{name} must be finite and {rule}")
    return t


def time_grid(grid, name="times"):
    """A grid of times as float64 ``[T]``: 1-D, finite, strictly increasing, grid[0] >
    0."""
    grid = finite(grid, name).to(torch.float64)
    if grid.ndim != 1 or grid.numel() < 1:
        raise ValueError(
            f"{name} must be a non-empty 1-D tensor, got shape {tuple(grid.shape)}"
        )
    if grid[0] <= 0 or bool((torch.diff(grid) <= 0).any()):
        raise ValueError(
            f"{name} must be finite, strictly increasing and start above 0"
        )
    return grid


def probability_vector(p, name, tol=1e-9):
    """``p`` as float64 ``[K]``: finite entries >= 0 summing to 1 (within ``tol``)."""
    p = finite(p, name).to(torch.float64)
    if p.ndim != 1 or p.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D probability vector, "
                         f"got shape {tuple(p.shape)}")
    if bool((p < 0).any()) or abs(float(p.sum()) - 1.0) > tol:
        raise ValueError(
            f"{name} must be a probability vector (entries >= 0 summing to 1 "
            f"within {tol:g})"
        )
    return p


def per_sample(v, x, name="t"):
    """A scalar or ``[B]`` tensor ``v`` shaped to broadcast over a batch ``x`` ``[B,
    ...]``."""
    v = torch.as_tensor(v)
    if v.ndim == 0:
        return v
    if v.ndim != 1 or x.ndim == 0 or v.shape[0] != x.shape[0]:
        raise ValueError(
            f"{name} must be a scalar or have shape [B] matching the batch "
            f"{tuple(x.shape)}, got shape {tuple(v.shape)}"
        )
    return v.reshape(-1, *([1] * (x.ndim - 1)))


def batch_shape(shape, name="shape"):
    """A non-empty shape ``[B, ...]`` of positive ints, as a tuple."""
    shape = tuple(shape)
    if not shape:
        raise ValueError(f"{name} must be a non-empty tuple [B, ...], got {shape!r}")
    return tuple(positive_int(d, f"{name} entry") for d in shape)


def predict(model, x_t, t, step=None):
    """The one checked call of a rate model: ``model(x_t, t)`` with float counts and
    times.

    ``t`` is a scalar or ``[B]`` (expanded to ``[B]``); both go in as the default float
    dtype. The output must have x_t's shape and hold finite values >= 0, else
    ``ValueError`` naming the model output (and ``step`` when the caller passes one):
    a diverged network fails here instead of hanging a sampler.
    """
    dtype = torch.get_default_dtype()
    t = torch.as_tensor(t, device=x_t.device).to(dtype)
    if t.ndim == 0 and x_t.ndim > 0:
        t = t.expand(x_t.shape[0])
    y_hat = model(x_t.to(dtype), t)
    where = "" if step is None else f" at step {step}"
    if not isinstance(y_hat, torch.Tensor) or y_hat.shape != x_t.shape:
        got = (
            tuple(y_hat.shape)
            if isinstance(y_hat, torch.Tensor)
            else type(y_hat).__name__
        )
        raise ValueError(f"model output{where} must have the shape of x_t "
                         f"{tuple(x_t.shape)}, got {got}")
    if not bool((torch.isfinite(y_hat) & (y_hat >= 0)).all()):   # one device sync
        raise ValueError(f"model output{where} must be finite and >= 0 "
                         f"(got NaN, inf or a negative value: a diverged model?)")
    return y_hat
