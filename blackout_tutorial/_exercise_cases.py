"""The verdict machinery of :mod:`blackout_tutorial.exercises` (private).

A :class:`Verdict` collects named checks of a reader's function and ends with one line,
"All N checks passed", or an ``AssertionError`` that lists what differs in plain words.
Statistical checks are seeded z-tests of a mean and chi-square tests of a histogram.
"""
import math

import torch

# Seeded statistical checks reject at abs(z) > Z_LIMIT (two-sided false alarm 5.7e-7 per
# check) or at a chi-square p-value below P_LIMIT (1e-6 per check).
Z_LIMIT = 5.0
P_LIMIT = 1e-6
SHOWN_FAILURES = 3


def fmt(x, digits=4):
    """A number in a short, readable form (4 significant digits by default)."""
    return f"{float(x):.{digits}g}"


def fmt_pair(a, b):
    """``a`` and ``b`` with as few digits (4 to 12) as make them look different."""
    for digits in range(4, 13):
        if fmt(a, digits) != fmt(b, digits):
            break
    return fmt(a, digits), fmt(b, digits)


class Verdict:
    """Checks of one reader function; :meth:`finish` prints or raises."""

    def __init__(self, what):
        self.what, self.n, self.failures = what, 0, []

    def require(self, ok, message):
        self.n += 1
        if not ok:
            self.failures.append(message)
        return ok

    def close(self, case, got, expected, rtol=1e-6, atol=1e-9, name="output"):
        """Elementwise |got - expected| <= atol + rtol |expected|; names the worst
        element."""
        got = torch.as_tensor(got, dtype=torch.float64).cpu()
        expected = torch.as_tensor(expected, dtype=torch.float64).cpu()
        if got.shape != expected.shape:
            return self.require(False, f"{case}: your {name} has shape "
                                f"{tuple(got.shape)}, expected {tuple(expected.shape)}")
        if not bool(torch.isfinite(got).all()):
            return self.require(False, f"{case}: your {name} contains NaN or inf")
        excess = (got - expected).abs() - (atol + rtol * expected.abs())
        if got.numel() == 0 or float(excess.max()) <= 0:
            return self.require(True, "")
        i = int(excess.reshape(-1).argmax())
        where = "" if got.numel() == 1 else f" (element {i})"
        a, b = fmt_pair(got.reshape(-1)[i], expected.reshape(-1)[i])
        return self.require(False, f"{case}: your {name}{where} is {a}, expected {b}")

    def mean(self, case, samples, mean, var, name="sampler's mean"):
        """Seeded z-test of the sample mean against the exact mean and variance."""
        samples = torch.as_tensor(samples, dtype=torch.float64).reshape(-1)
        se = math.sqrt(max(float(var), 0.0) / samples.numel())
        got = float(samples.mean())
        ok = abs(got - mean) <= Z_LIMIT * se + 1e-12
        a, b = fmt_pair(got, mean)
        return self.require(ok, f"{case}: your {name} is {a}, the exact mean is {b} "
                            f"+- {fmt(se, 2)} (one standard error)")

    def histogram(self, case, samples, pmf, name="sampler"):
        """Chi-square goodness of fit of integer samples against ``pmf``."""
        from blackout_tutorial import evaluate

        samples = torch.as_tensor(samples).reshape(-1).long()
        if bool((samples < 0).any()) or bool((samples >= pmf.numel()).any()):
            return self.require(False, f"{case}: your {name} returned "
                                f"{int(samples.min())}..{int(samples.max())}, outside "
                                f"the support 0..{pmf.numel() - 1}")
        _, p_value, _ = evaluate.chi_square_test(samples, pmf)
        return self.require(p_value >= P_LIMIT, f"{case}: the histogram of your "
                            f"{name} does not match the exact law (chi-square p = "
                            f"{p_value:.1e} < {P_LIMIT:g})")

    def integers_in(self, case, x, low, high, name="output"):
        """``x`` holds integer values in [low, high] elementwise."""
        x = torch.as_tensor(x)
        xf = x.to(torch.float64)
        if not bool((xf == xf.round()).all()):
            return self.require(False, f"{case}: your {name} is not integer-valued")
        low = torch.as_tensor(low, dtype=torch.float64).expand_as(xf)
        high = torch.as_tensor(high, dtype=torch.float64).expand_as(xf)
        bad = (xf < low) | (xf > high)
        if not bool(bad.any()):
            return self.require(True, "")
        i = int(bad.reshape(-1).nonzero()[0])
        return self.require(False, f"{case}: your {name} has the value "
                            f"{fmt(xf.reshape(-1)[i])}, outside the allowed range "
                            f"{fmt(low.reshape(-1)[i])}..{fmt(high.reshape(-1)[i])}")

    def finish(self):
        if not self.failures:
            print(f"All {self.n} checks passed")
            return self.n
        shown = "\n".join(f"- {m}" for m in self.failures[:SHOWN_FAILURES])
        more = len(self.failures) - SHOWN_FAILURES
        tail = f"\n(and {more} more)" if more > 0 else ""
        raise AssertionError(f"{len(self.failures)} of {self.n} checks of "
                             f"{self.what} failed:\n{shown}{tail}")


def call(verdict, fn, case, *args, **kwargs):
    """``fn(*args, **kwargs)``; an exception (other than NotImplementedError, which a
    stub raises on purpose) becomes a failed check, reported as ``None``."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as error:  # the reader's code: report, do not crash the checker
        verdict.require(False, f"{case}: your function raised "
                        f"{type(error).__name__}: {error}")
        return None


def seeded(seed):
    """A CPU generator with a fixed seed (also seeds the global RNG inside a
    ``torch.random.fork_rng`` block, for functions that ignore the generator)."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
