"""Where a trained VAEAS's hierarchical classifier loses its nats: the cross-entropy
-log s(e_i | z_i) split by tree level, over the MNIST training set.

    python bench/mi_by_depth.py MODEL.h5 [--seed 0] [--data-dir DIR]

The classifier's estimate is log V - sum over levels of the mean per-level loss
-log sigmoid(sign_j score_j) (one z ~ q(z | x_i) per example).  A level whose loss is
near log 2 = 0.69 is guessing; the bottom levels separate a handful of neighbouring
examples and are updated only a few times per epoch.
"""
import argparse
import math
import os

import numpy as np

import vaeas_np
from vaeas_np.softmax import HierarchicalSoftmax
from vaeas_np.softmax.tree import log_sigmoid


def per_level_loss(model, X, rng, batch=1024):
    """(depth,) mean over examples of -log sigmoid(sign_j score_j) at level j (0 = root),
    and (depth,) the fraction of examples whose path reaches level j."""
    out, t = model.output_, model.output_.tree
    D = t.depth
    loss, count = np.zeros(D), np.zeros(D)
    n = X.shape[0]
    for s in range(0, n, batch):
        mu, logvar = model.encode(X[s:s + batch])
        z = (mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape)).astype(mu.dtype)
        H = model._hidden(z).astype(np.float64)
        e = model.labels_[s:s + batch]
        paths, codes, L = t.paths[e], t.codes[e], t.lengths[e]
        W = out.Wb[paths].astype(np.float64)                   # (b, D, h+1)
        score = np.einsum("bdh,bh->bd", W[:, :, :-1], H) + W[:, :, -1]
        sign = 2.0 * codes - 1.0
        on = np.arange(D)[None, :] < L[:, None]
        nll = -log_sigmoid(sign * score) * on
        loss += nll.sum(0)
        count += on.sum(0)
    return loss / n, count / n


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "shared", "data", "mnist"))
    a = p.parse_args(argv)
    X = vaeas_np.load_dataset("mnist", data_dir=a.data_dir).train
    m = vaeas_np.load_model(a.model)
    if not isinstance(m.output_, HierarchicalSoftmax):
        raise SystemExit("mi_by_depth: the model's classifier is not hierarchical")
    loss, reach = per_level_loss(m, X, np.random.default_rng(a.seed))
    logV = math.log(m.n_labels_)
    print(f"{a.model}: epoch {m.epoch_}, V = {m.n_labels_}, log V = {logV:.3f}")
    print("| level | reached by | mean loss (nats per example) | cumulative |")
    print("|---|---|---|---|")
    for d in range(len(loss)):
        print(f"| {d} | {reach[d]:.3f} | {loss[d]:.3f} | {loss[:d + 1].sum():.3f} |")
    print(f"classifier MI estimate log V - total loss = {logV - loss.sum():.3f} nats")


if __name__ == "__main__":
    main()
