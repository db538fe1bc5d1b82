"""Small CNN classifiers trained by the package: the judges of Chapters 8-9's samples.

An Inception network :cite:`szegedy2016inception` is trained on ImageNet photographs,
needs a download and is slow on a CPU; for MNIST, binarized MNIST and CIFAR-10 the
package trains its own small classifier on the training split instead. It gives

* class probabilities, for the confident fraction and the class histogram, and
* features (the global-average-pooled activations before the last linear layer), the
  space of the Frechet distance of :mod:`blackout_tutorial.evaluate`: a *Frechet proxy
  in classifier features*, comparable only with itself, never an FID.

Inputs are count images ``[N, C, H, W]`` in 0..n_max, scaled to [0, 1] inside. Shipped
weights (float16, under 2 MB each) are verified by SHA-256 like the shipped diffusion
models (``runs.pretrained_path``); ``scripts/train_classifiers.py`` made them.
"""
import json
import time
from pathlib import Path

import torch
from torch import nn

from blackout_tutorial import _checkpoint, _checks, data
from blackout_tutorial._checkpoint import CheckpointError
from blackout_tutorial._files import atomic_write

FORMAT = "blackout-tutorial-classifier-v1"
CLASSIFIER_DIR = Path(__file__).resolve().parent / "checkpoints"
CLASSIFIER_SHA256 = {  # float16 weights of scripts/train_classifiers.py
    "mnist": "3ff1c8f6310c4bc03de1866394872716050e4fb150cc0b329db4cbe73c38d236",
    "binarized_mnist":
        "ddd60ef0e9b74e2196faf459e79cd5d24071e19611d8bb0546e3abc58e580acb",
    "cifar10": "8a76d2e7a8b07e8925d04102cde9ac9dec067a0b76da9718fb7e781d362acb5e",
}
WIDTHS = (32, 64, 128, 256)


class ConvClassifier(nn.Module):
    """Stages of a 3x3 convolution (batch norm, ReLU), 2x2 max pooling between the
    stages, global average pooling to ``widths[-1]`` features, a linear layer to the
    class logits (small on purpose: a CPU trains it in minutes)."""

    def __init__(self, channels, widths=WIDTHS, n_classes=10):
        super().__init__()
        layers, c_in = [], _checks.positive_int(channels, "channels")
        for i, width in enumerate(widths):
            layers += [nn.Conv2d(c_in, width, 3, padding=1, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            c_in = width
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c_in, n_classes)

    def forward(self, x):
        return self.head(self.body(x))


class Classifier:
    """A trained :class:`ConvClassifier` with its data set's ``name``, ``n_max``, image
    ``shape``, and the ``info`` of its training (test accuracy, seconds, seed)."""

    def __init__(self, net, name, n_max, shape, info=None):
        self.net, self.name, self.n_max = net.eval(), name, int(n_max)
        self.shape, self.info = tuple(shape), dict(info or {})

    def _inputs(self, images):
        x = _checks.batch(torch.as_tensor(images).detach().cpu(), "images",
                          self.n_max, 4)
        if tuple(x.shape[1:]) != self.shape:
            shape = str(list(self.shape))[1:-1]
            raise ValueError(f"images must have shape [N, {shape}] "
                             f"for the {self.name} classifier, got {tuple(x.shape)}")
        return x

    @torch.no_grad()
    def predict(self, images, batch_size=500):
        """``(probabilities [N, 10], features [N, d])``, float64 numpy arrays, of count
        images ``[N, C, H, W]`` (scaled by ``n_max`` inside)."""
        x = self._inputs(images)
        probs, feats = [], []
        for chunk in x.split(_checks.positive_int(batch_size, "batch_size")):
            f = self.net.body(chunk.float() / self.n_max)
            probs.append(torch.softmax(self.net.head(f).double(), 1))
            feats.append(f.double())
        return torch.cat(probs).numpy(), torch.cat(feats).numpy()

    def probabilities(self, images):
        """Class probabilities ``[N, 10]`` (the interface of ``evaluate``)."""
        return self.predict(images)[0]

    def features(self, images):
        """Features ``[N, d]``: the space of the Frechet proxy."""
        return self.predict(images)[1]

    def accuracy(self, images, labels):
        """Share of ``images`` whose most probable class is ``labels``."""
        predicted = torch.from_numpy(self.probabilities(images).argmax(1))
        return float((predicted == torch.as_tensor(labels).long()).double().mean())


def _augment(x, flip, generator):
    """Random shifts by up to 2 pixels (zero padding) and, if ``flip``, mirroring."""
    n, _, h, w = x.shape
    pad = nn.functional.pad(x, (2, 2, 2, 2))
    dy, dx = torch.randint(0, 5, (2, n, 1), generator=generator)
    rows, cols = dy + torch.arange(h), dx + torch.arange(w)
    x = pad[torch.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    x = x.permute(0, 3, 1, 2)
    if flip:
        x = data.random_hflip(x, generator)
    return x


def _schedule(optimizer, total):
    """One-cycle learning rate: linear warm-up over 15% of the steps, linear decay."""
    warm = max(1, int(0.15 * total))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
        (s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))


def _outliers(flat, k, n_max, shape, generator):
    """``k`` images without shapes, scaled to [0, 1]: half with every pixel drawn from
    its marginal over ``flat`` (the training images ``[N, D]``), half uniform counts."""
    half = k // 2
    picks = torch.randint(0, flat.shape[0], (half, flat.shape[1]), generator=generator)
    marginal = flat.gather(0, picks)
    uniform = torch.randint(0, n_max + 1, (k - half, flat.shape[1]),
                            generator=generator)
    return torch.cat([marginal.long(), uniform]).float().reshape(k, *shape) / n_max


def _loss(logits, labels, weight):
    """Cross-entropy of the first ``len(labels)`` rows, plus ``weight`` times the
    cross-entropy to the uniform law of the rest (the outliers)."""
    loss = nn.functional.cross_entropy(logits[:len(labels)], labels)
    if len(logits) > len(labels):
        loss = loss - weight * torch.log_softmax(logits[len(labels):], 1).mean()
    return loss


def train_classifier(dataset, epochs=3, seed=0, batch_size=128, lr=2e-3,
                     widths=None, max_train=None, outlier_weight=0.5, progress=False):
    """Train a :class:`Classifier` on ``dataset.train`` (a ``data.CountDataset``),
    seeded: deterministic on one machine. AdamW, one-cycle learning rate, random
    shifts (and flips where ``dataset.flip``). Outlier exposure: each batch also holds
    ``batch_size // 8`` images without shapes (``_outliers``) whose cross-entropy
    to the uniform distribution, times ``outlier_weight``, joins the loss -- without
    it a CNN labels pixel noise as a digit with probability ~1, and the confident
    fraction would judge nothing. ``max_train``: train on a seeded random subset of
    that size (tests). ``info``: test accuracy, seconds (wall and CPU), seed, epochs.
    """
    epochs, seed = _checks.positive_int(epochs, "epochs"), _checks.positive_int(
        seed, "seed", 0)
    batch_size = _checks.positive_int(batch_size, "batch_size")
    lr = _checks.number(lr, "lr", minimum=0, strict=True)
    weight = _checks.number(outlier_weight, "outlier_weight", minimum=0)
    if not isinstance(dataset, data.CountDataset):
        raise ValueError(f"dataset must be a data.CountDataset, got "
                         f"{type(dataset).__name__}")
    x, y = dataset.train, dataset.train_labels.long()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    if max_train is not None:
        pick = torch.randperm(len(x), generator=gen)[
            :_checks.positive_int(max_train, "max_train")]
        x, y = x[pick], y[pick]
    widths = tuple(widths or WIDTHS)
    net = ConvClassifier(x.shape[1], widths, int(dataset.train_labels.max()) + 1)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-4)
    per_epoch = (len(x) + batch_size - 1) // batch_size
    sched, start = _schedule(opt, epochs * per_epoch), time.perf_counter()
    cpu, flat, k = time.process_time(), x.reshape(len(x), -1), batch_size // 8
    for epoch in range(epochs):
        net.train()
        order, total = torch.randperm(len(x), generator=gen), 0.0
        for i in range(per_epoch):
            pick = order[i * batch_size:(i + 1) * batch_size]
            xb = _augment(x[pick].float() / dataset.n_max, dataset.flip, gen)
            if weight > 0 and k > 0:
                xb = torch.cat([xb, _outliers(flat, k, dataset.n_max, x.shape[1:],
                                              gen)])
            loss = _loss(net(xb), y[pick], weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        if progress:
            print(f"{dataset.name} epoch {epoch + 1}/{epochs}: loss "
                  f"{total / per_epoch:.4f}, {time.perf_counter() - start:.0f} s",
                  flush=True)
    seconds = time.perf_counter() - start
    clf = Classifier(net, dataset.name, dataset.n_max, dataset.shape)
    clf.info = {"test_accuracy": clf.accuracy(dataset.test, dataset.test_labels),
                "train_seconds": seconds, "seed": seed, "epochs": epochs,
                "cpu_seconds": time.process_time() - cpu, "outlier_weight": weight,
                "widths": list(widths), "train_images": len(x)}
    return clf


def save_classifier(classifier, path, dtype=torch.float16):
    """Write ``classifier`` to ``path`` atomically: weights in ``dtype`` and a JSON
    header (data set, ``n_max``, shape, widths, training info)."""
    header = {"name": classifier.name, "n_max": classifier.n_max,
              "shape": list(classifier.shape), "info": classifier.info,
              "widths": [m.out_channels for m in classifier.net.body
                         if isinstance(m, nn.Conv2d)]}
    state = {"format": FORMAT, "header": json.dumps(header, sort_keys=True),
             "weights": {k: v.to(dtype) if v.is_floating_point() else v
                         for k, v in classifier.net.state_dict().items()}}
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    return Path(path)


def read_classifier(path):
    """A :class:`Classifier` from a file of :func:`save_classifier` (no checksum:
    shipped files go through :func:`load_classifier`)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        header = json.loads(state["header"])
        ok = state["format"] == FORMAT
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable classifier file "
                              f"({type(err).__name__})") from None
    if not ok:
        raise CheckpointError(f"{path} is not a blackout_tutorial classifier file")
    net = ConvClassifier(header["shape"][0], tuple(header["widths"]))
    net.load_state_dict({k: v.float() if v.is_floating_point() else v
                         for k, v in state["weights"].items()})
    return Classifier(net, header["name"], header["n_max"], header["shape"],
                      header["info"])


def classifier_path(name, check=True):
    """Path of a shipped classifier ``<name>_classifier.pt`` verified against its
    SHA-256; ``CheckpointError`` on an unknown name, a missing or a changed file."""
    return _checkpoint.shipped_file(CLASSIFIER_DIR, name, CLASSIFIER_SHA256,
                                    "_classifier.pt", "classifier", check)


def load_classifier(name):
    """The shipped, checksum-verified classifier of data set ``name`` (``mnist``,
    ``binarized_mnist`` or ``cifar10``; ``binarized-mnist`` is accepted too)."""
    return read_classifier(classifier_path(str(name).replace("-", "_")))
