"""Argument rules of the package, in one place (private; imports nothing from it).

Every check raises ``ValueError`` naming the argument and the rule, and returns the
value as the caller computes with it (``int``, ``float``, tensor); a public function
opens with one or two of them, then its maths. :func:`predict` checks a model call.
"""
import math

import torch


def _real_tensor(x, name):
    if not isinstance(x, torch.Tensor):
        try:
            t = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{name} must be a number or a tensor of numbers, "
                             f"got {type(x).__name__}") from None
        # Python floats stay float64 (torch's default float32 would round them).
        x = torch.as_tensor(x, dtype=torch.float64) if t.is_floating_point() else t
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


def _count_flags(x, n_max):
    ok = x >= 0
    if torch.is_floating_point(x):
        ok = ok & torch.isfinite(x) & (x == torch.round(x))
    return ok if n_max is None else ok & (x <= n_max)


def counts(x, name, n_max=None):
    """``x`` (any dtype) if it holds finite, integer-valued counts >= 0 (<=
    ``n_max``); one device sync when they do."""
    x = _real_tensor(x, name)
    if bool(_count_flags(x, n_max).all()):
        return x
    if torch.is_floating_point(x):
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} must hold finite counts (got NaN or inf)")
        if not bool((x == torch.round(x)).all()):
            raise ValueError(
                f"{name} must hold integer-valued counts (got non-integer values)"
            )
    if bool((x < 0).any()):
        raise ValueError(f"{name} must hold non-negative counts (got a negative value)")
    raise ValueError(f"{name} must hold counts <= n_max = {n_max}")


def count_tensor(x, name, n_max=None):
    """``x`` if it is a ``torch.Tensor`` of counts (see :func:`counts`)."""
    return counts(tensor(x, name), name, n_max)


def batch(x, name, n_max=None, min_ndim=1):
    """``x`` if it is a tensor of counts (see :func:`counts`) ``[B, ...]`` with B >= 1
    and at least ``min_ndim`` dimensions."""
    x = count_tensor(x, name, n_max)
    if x.ndim < min_ndim or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape [B, ...] with B >= 1"
                         f"{'' if min_ndim < 2 else ' and an image shape'}, "
                         f"got {tuple(x.shape)}")
    return x


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


def finite(x, name, minimum=None, strict=False):
    """``x`` as a tensor if every value is finite (and >= ``minimum``, > if ``strict``,
    when given); one device sync when it is."""
    x = _real_tensor(x, name)
    ok = torch.isfinite(x)
    if minimum is not None:
        ok = ok & ((x > minimum) if strict else (x >= minimum))
    if bool(ok.all()):
        return x
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite (got NaN or inf)")
    raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum} elementwise")


#: Largest mean ``torch.poisson`` draws from correctly: above about 2^63 it returns
#: -2^63 (an int64 overflow), which a sampler would then clip to a black pixel.
POISSON_MAX = 2.0 ** 62


def in_range(x, name, high=1.0, what="probabilities"):
    """``x`` as a tensor if every value lies in [0, ``high``] (NaN does not); with
    ``high=POISSON_MAX``, a valid Poisson mean."""
    x = _real_tensor(x, name)
    if not bool(((x >= 0) & (x <= high)).all()):
        raise ValueError(f"{name} must hold {what} in [0, {high:.3g}] (got NaN, inf "
                         f"or a value outside)")
    return x


def poisson_mean(rate, name):
    """``rate`` as a tensor if it is a valid Poisson mean, in [0, ``POISSON_MAX``]."""
    return in_range(rate, name, POISSON_MAX, "finite Poisson means")


def broadcast(a, b, names):
    """``torch.broadcast_tensors(a, b)``, or ``ValueError`` naming both arguments."""
    try:
        return torch.broadcast_tensors(a, b)
    except RuntimeError:
        raise ValueError(f"{names[0]} and {names[1]} must broadcast, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}") from None


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
        raise ValueError(f"{name} must be a non-empty 1-D tensor, "
                         f"got shape {tuple(grid.shape)}")
    if grid[0] <= 0 or bool((torch.diff(grid) <= 0).any()):
        raise ValueError(f"{name} must be finite, strictly increasing and start "
                         f"above 0")
    return grid


def weights(w, times, name="weights"):
    """Loss weights for ``times``: 1-D of their length, finite, >= 0, not all 0."""
    w = finite(w, name, minimum=0)
    if times.ndim != 1 or w.shape != times.shape:
        raise ValueError(f"times and {name} must be 1-D of the same length, got "
                         f"{tuple(times.shape)} and {tuple(w.shape)}")
    if not bool((w > 0).any()):
        raise ValueError(f"{name} must not all be 0")
    return w


def probability_vector(p, name, tol=1e-9, truncated=False):
    """``p`` as float64 ``[K]``: finite entries >= 0 summing to 1 (within ``tol``);
    ``truncated``: a pmf cut short, summing to more than 0 and at most 1."""
    p = finite(p, name).to(torch.float64)
    if p.ndim != 1 or p.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D probability vector, "
                         f"got shape {tuple(p.shape)}")
    total = float(p.sum())
    bad_sum = not 0 < total <= 1 + tol if truncated else abs(total - 1.0) > tol
    if bool((p < 0).any()) or bad_sum:
        rule = "in (0, 1]" if truncated else "to 1"
        raise ValueError(f"{name} must be a probability vector (entries >= 0 summing "
                         f"{rule} within {tol:g}), got sum {total:.6g}")
    return p


def per_sample(v, x, name="t"):
    """A scalar or ``[B]`` tensor ``v`` shaped to broadcast over a batch ``x`` ``[B,
    ...]``."""
    v = torch.as_tensor(v)
    if v.ndim == 0:
        return v
    if v.ndim != 1 or x.ndim == 0 or v.shape[0] != x.shape[0]:
        raise ValueError(f"{name} must be a scalar or have shape [B] matching the "
                         f"batch {tuple(x.shape)}, got shape {tuple(v.shape)}")
    return v.reshape(-1, *([1] * (x.ndim - 1)))


def batch_shape(shape, name="shape"):
    """A non-empty shape ``[B, ...]`` of positive ints, as a tuple."""
    try:
        shape = tuple(shape) or None
    except TypeError:
        shape = None
    if shape is None:
        raise ValueError(f"{name} must be a non-empty tuple [B, ...]")
    return tuple(positive_int(d, f"{name} entry") for d in shape)


def _shaped(y, shape, name, where):
    if not isinstance(y, torch.Tensor) or y.shape != tuple(shape):
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"{name}{where} must have the shape {tuple(shape)} of its "
                         f"input, got {got}")


def output(y, shape, name="model output", step=None, minimum=None):
    """``y`` if it is a tensor of ``shape`` with finite values (in [``minimum``,
    ``POISSON_MAX``] when given): the check of what a network or a user function
    returned, naming ``step`` when given. One device sync."""
    where = "" if step is None else f" at step {step}"
    _shaped(y, shape, name, where)
    ok = torch.isfinite(y) if minimum is None else \
        (y >= minimum) & (y <= POISSON_MAX)      # NaN fails, and so does inf
    if not bool(ok.all()):
        rule = "finite" if minimum is None else f"finite and >= {minimum:g}"
        raise ValueError(f"{name}{where} must be {rule} (got NaN, inf or a value "
                         f"out of range: a diverged model?)")
    return y


def step_inputs(x, y_hat, q, n_max, poisson=False):
    """One reverse step's ``(x, y_hat, q)``, one device sync: counts ``x`` in [0,
    ``n_max``], a finite ``y_hat`` of x's shape, ``q`` in [0, 1] broadcasting over x
    (and y_hat q a valid Poisson mean if ``poisson``)."""
    x, n_max = tensor(x, "x"), positive_int(n_max, "n_max")
    _shaped(y_hat, x.shape, "y_hat", "")
    q = _real_tensor(q, "q").to(y_hat.device)
    if q.ndim > x.ndim or broadcast(q, y_hat, ("q", "x"))[0].shape != x.shape:
        raise ValueError(f"q must broadcast over x {tuple(x.shape)}, "
                         f"got shape {tuple(q.shape)}")
    mean = y_hat.clamp_min(0) * q
    flags = [_count_flags(x, n_max).all(), torch.isfinite(y_hat).all(),
             ((q >= 0) & (q <= 1)).all()]
    if poisson:
        flags.append((mean <= POISSON_MAX).all())
    if not bool(torch.stack(flags).all()):
        counts(x, "x", n_max), finite(y_hat, "y_hat"), in_range(q, "q")
        poisson_mean(mean, "y_hat * q (the Poisson mean of the births)")
    return x, y_hat, q


def predict(model, x_t, t, step=None):
    """The one checked call of a rate model: ``model(x_t, t)`` with float counts and
    times.

    ``t`` is a scalar or ``[B]`` (expanded to ``[B]``); both go in as the default float
    dtype. The output must have x_t's shape and hold finite values in [0,
    ``POISSON_MAX``], else ``ValueError`` naming the model output (and ``step`` when
    the caller passes one): a diverged network fails here instead of hanging a sampler.
    """
    dtype = torch.get_default_dtype()
    t = torch.as_tensor(t, device=x_t.device).to(dtype)
    if t.ndim == 0 and x_t.ndim > 0:
        t = t.expand(x_t.shape[0])
    return output(model(x_t.to(dtype), t), x_t.shape, step=step, minimum=0)
