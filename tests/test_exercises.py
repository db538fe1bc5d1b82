"""Every checker passes the package's own function and fails a deliberately wrong one
with a message that says what differs."""
import math

import pytest
import torch

from blackout_tutorial import bridge, exercises, losses, nets, process, sampling
from blackout_tutorial.schedule import logit_survival


def fails_with(checker, fn, *fragments):
    with pytest.raises(AssertionError) as info:
        checker(fn)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_master_rhs(capsys):
    def rhs(P):
        return process.generator_matrix(P.numel() - 1) @ P

    assert exercises.check_master_rhs(rhs) == 7
    assert capsys.readouterr().out == "All 7 checks passed\n"

    def wrong_sign(P):  # probability flowing up instead of down
        return -rhs(P)

    fails_with(exercises.check_master_rhs, wrong_sign,
               "for n_max=4 and all mass on n=4", "your dP/dt", "expected 4")

    def off_by_one(P):  # rate n+1 out of state n
        n = torch.arange(P.numel(), dtype=P.dtype)
        out = -(n + 1) * P
        out[:-1] += (n[1:] + 1) * P[1:]
        return out

    fails_with(exercises.check_master_rhs, off_by_one,
               "for n_max=0 and all mass on n=0", "expected 0")


def test_forward_sampler():
    def sampler(x0, t, generator=None):
        return process.sample_forward(x0, t, generator=generator)

    assert exercises.check_forward_sampler(sampler) > 10

    def swapped(x0, t, generator=None):  # survival 1 - e^{-t} instead of e^{-t}
        p = torch.full(x0.shape, -math.expm1(-t))
        return torch.binomial(x0.double(), p.double(), generator=generator).long()

    fails_with(exercises.check_forward_sampler, swapped, "for n0=5, t=0.1",
               "your sampler's mean is 0.4", "the exact mean is 4.524 +-")

    def rounded(x0, t, generator=None):  # the mean, no noise
        return torch.round(x0 * math.exp(-t)).long()

    fails_with(exercises.check_forward_sampler, rounded, "for n0=1, t=0.5",
               "exact mean is 0.6065")


def test_bridge_probability():
    assert exercises.check_bridge_probability(bridge.bridge_probability) == 9

    def wrong(s, t):  # forgot the normalisation by 1 - e^{-t}
        return torch.exp(-s) - torch.exp(-t)

    fails_with(exercises.check_bridge_probability, wrong, "for s=0, t=1:",
               "your q is 0.6321, expected 1")


def test_bridge_step():
    assert exercises.check_bridge_step(bridge.sample_bridge) > 10

    def complement(x_t, x0, s, t, generator=None):  # 1 - q instead of q
        q = 1 - float(bridge.bridge_probability(s, t))
        gap = (x0 - x_t).double()
        return x_t + torch.binomial(gap, torch.full_like(gap, q),
                                    generator=generator).long()

    fails_with(exercises.check_bridge_step, complement,
               "for x_t=0, x0=10, s=0, t=1: your mean of x_s is 0, "
               "the exact mean is 10")


def test_poisson_loss():
    assert exercises.check_poisson_loss(losses.poisson_loss) == 5

    def wrong_sign(y_hat, y):
        return y * torch.log(y_hat) - y_hat

    fails_with(exercises.check_poisson_loss, wrong_sign,
               "for y=0, y_hat=3: your loss is -3, expected 3")

    def nan_at_zero(y_hat, y):
        return y_hat - y * torch.log(y_hat) * (y_hat > -1)

    fails_with(exercises.check_poisson_loss, nan_at_zero,
               "for y=0, y_hat=0: your loss contains NaN")


def test_kl_term():
    def kl(y, q, y_hat):
        return losses.kl_binomial_poisson(y, q, y_hat, max(int(y.max()), 1))

    assert exercises.check_kl_term(kl) == 12

    def without_constant(y, q, y_hat):  # only the loss part q * (y_hat - y ln y_hat)
        return q * losses.poisson_loss(y_hat, y.double())

    fails_with(exercises.check_kl_term, without_constant, "for y=4, y_hat=4, q=0.3",
               "your KL is")


def test_tau_leaping_step():
    assert exercises.check_tau_leaping_step(sampling.tau_leaping_step) > 10

    def unclipped(x, y_hat, q, n_max, generator=None):
        return x + torch.poisson(y_hat.clamp_min(0) * q, generator=generator).long()

    fails_with(exercises.check_tau_leaping_step, unclipped,
               "for x=255, y_hat=40, q=0.5, n_max=255: your new state has the value",
               "outside the allowed range 255..255")

    def q_twice(x, y_hat, q, n_max, generator=None):  # rate y_hat q^2
        births = torch.poisson(y_hat.clamp_min(0) * q * q, generator=generator)
        return (x + births.long()).clamp(0, n_max)

    fails_with(exercises.check_tau_leaping_step, q_twice,
               "for x=3, y_hat=10, q=0.3, n_max=255: "
               "your mean of the new state is 3.898, "
               "the exact mean is 6 +- 0.012")


def test_time_features():
    assert exercises.check_time_features(nets.time_features) == 3

    def sin_cos_swapped(t, dim):
        angles = nets.time_features(t, dim)
        return torch.cat([angles[:, dim // 2:], angles[:, :dim // 2]], dim=1)

    fails_with(exercises.check_time_features, sin_cos_swapped, "for dim=8, t=[3.06e-07",
               "your embedding (element 0)")

    def raw_time(t, dim):  # t instead of logit(e^{-t}) as the position
        return nets.time_features(t * 0 + 1.0, dim) * 0 + torch.sin(t)[:, None]

    fails_with(exercises.check_time_features, raw_time, "your embedding")
    assert logit_survival(torch.tensor(15.0)) < 0


def test_stub_and_crashing_function():
    def stub(P):
        raise NotImplementedError("your code here")

    with pytest.raises(NotImplementedError):
        exercises.check_master_rhs(stub)

    def crashes(s, t):
        raise TypeError("bad argument")

    fails_with(exercises.check_bridge_probability, crashes,
               "for s=0, t=1: your function raised TypeError: bad argument")
