"""The exact noise predictor of a finite one-pixel law for Gaussian diffusion (Chapter
10): the Gaussian counterpart of ``oracle.Oracle``, used to check how tight the Gaussian
bound can be (Eq. ch10-gauss-elbo, Chapter 10); re-exported as ``baselines.ExactEps``.
"""
import math

import torch


class ExactEps(torch.nn.Module):
    """eps(x_u) = (x_u - alpha E[x0 | x_u]) / sigma for x0 on ``levels`` (counts in
    0..n_max) with probabilities ``probs``. ``smooth=True``: the exact denoiser of
    the dequantised law (x0 uniform over each level's bin of half-width 1/n_max),
    which ignores that the data sit on a lattice, as a network trained on L_simple
    need not know it."""

    def __init__(self, levels, probs, n_max, smooth=False):
        super().__init__()
        from blackout_tutorial import baselines
        self.x = baselines.to_signed(torch.as_tensor(levels), n_max).double()
        self.log_p = torch.as_tensor(probs, dtype=torch.float64).log()
        self.half_bin, self.smooth = 1.0 / n_max, smooth

    def forward(self, x, log_snr):
        from blackout_tutorial.baselines import _log_diff_exp
        lam = log_snr.double().reshape(-1, 1, 1, 1, 1)
        alpha, s = torch.sigmoid(lam).sqrt(), torch.exp(-lam / 2)  # s = sigma / alpha
        y = x.double()[..., None] / alpha
        if self.smooth:  # truncated-normal means of the bins, weighted by their mass
            lo, hi = (self.x - self.half_bin - y) / s, (self.x + self.half_bin - y) / s
            ln = torch.special.log_ndtr
            log_mass = torch.where(y > self.x, _log_diff_exp(ln(hi), ln(lo)),
                                   _log_diff_exp(ln(-lo), ln(-hi)))
            pdf = (torch.exp(-0.5 * lo**2 - log_mass)
                   - torch.exp(-0.5 * hi**2 - log_mass))
            means = y + s * pdf / math.sqrt(2 * math.pi)
        else:
            log_mass, means = -0.5 * ((y - self.x) / s) ** 2, self.x
        post = torch.softmax(self.log_p + log_mass, -1)
        return ((y[..., 0] - (post * means).sum(-1)) / s[..., 0]).to(x.dtype)
