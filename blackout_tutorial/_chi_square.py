"""The chi-square test of samplers against exact distributions (private; ``evaluate``
re-exports it), Chapters 2-6."""
import scipy.stats
import torch

from blackout_tutorial import _checks


def chi_square_test(samples, pmf, min_expected=5.0):
    """Pearson chi-square goodness-of-fit of integer ``samples`` against ``pmf`` over
    0..len(pmf)-1 (Chapter 2).

    Neighbouring bins are merged (left to right) until each expects at least
    ``min_expected`` samples, the validity rule of the chi-square approximation.
    Returns Python numbers ``(statistic, p_value, n_bins)``; a tiny p-value rejects pmf.
    """
    samples = _checks.counts(torch.as_tensor(samples).reshape(-1).cpu(), "samples")
    pmf = _checks.probability_vector(torch.as_tensor(pmf).cpu(), "pmf", 1e-6, True)
    min_expected = _checks.number(min_expected, "min_expected", minimum=0, strict=True)
    if bool((samples >= pmf.numel()).any()):
        raise ValueError("samples must lie in 0..len(pmf)-1 (a sample has zero "
                         "probability under pmf)")
    observed = torch.bincount(samples.long(), minlength=pmf.numel()).double().tolist()
    expected = (pmf / pmf.sum() * len(samples)).tolist()
    obs_bins, exp_bins, o_acc, e_acc = [], [], 0.0, 0.0
    for o, e in zip(observed, expected):
        o_acc, e_acc = o_acc + o, e_acc + e
        if e_acc >= min_expected:
            obs_bins, exp_bins = obs_bins + [o_acc], exp_bins + [e_acc]
            o_acc, e_acc = 0.0, 0.0
    if not exp_bins:
        raise ValueError(f"too few samples for min_expected = {min_expected}")
    obs_bins[-1] += o_acc  # the left-over tail joins the last full bin
    exp_bins[-1] += e_acc
    if len(exp_bins) == 1:
        return 0.0, 1.0, 1  # one bin: nothing to test (all mass in one place)
    statistic, p_value = scipy.stats.chisquare(obs_bins, exp_bins)
    return float(statistic), float(p_value), len(exp_bins)
