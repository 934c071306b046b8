"""MI and MD estimates side by side for a trained VAEAS on MNIST: the classifier's
(Barber-Agakov, entropy, Fano), Monte Carlo (Hoffman & Johnson) with S samples, and
the exact aggregate posterior (all N = 55,000 posteriors as the mixture).

    python bench/mi_estimators.py MODEL.h5 [--entropy-examples 2000] [--data-dir DIR]
"""
import argparse
import math
import os
import time

import vaeas_np
from vaeas_np.metrics import exact_aggregate_mi_md, monte_carlo_mi_md


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--entropy-examples", type=int, default=2000)
    p.add_argument("--points", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "shared", "data", "mnist"))
    a = p.parse_args(argv)
    X = vaeas_np.load_dataset("mnist", data_dir=a.data_dir).train
    m = vaeas_np.load_model(a.model).set_params(n_threads=a.threads)
    nan = float("nan")
    t = time.time()
    est = m.estimates(X, entropy=True, entropy_examples=a.entropy_examples, rng=0)
    rows = [("classifier, Barber-Agakov (training form)", est["MI"], est["MD"], time.time() - t),
            (f"classifier, entropy form (first {a.entropy_examples} examples)",
             est["MI_entropy"], nan, nan),
            ("classifier, Fano form", est["MI_fano"], nan, nan),
            ("  Fano bound P_e log V", est["fano_bound"], nan, nan)]
    mu, logvar = m.encode(X)
    for S in (100, 500, 1000, 5000, 10000):
        t = time.time()
        r = monte_carlo_mi_md(mu, logvar, n_samples=S, rng=0)
        rows.append((f"Monte Carlo S = {S}", r["MI"], r["MD"], time.time() - t))
    t = time.time()
    r = exact_aggregate_mi_md(mu, logvar, n_points=a.points, rng=0, n_threads=a.threads)
    rows.append((f"exact aggregate (N = {len(mu)} components, M = {a.points} points)",
                 r["MI"], r["MD"], time.time() - t))
    print(f"model {a.model}: epoch {m.epoch_}, V = {m.n_labels_}, "
          f"log V = {math.log(m.n_labels_):.3f}, mean KL = {est['KL']:.3f}")
    print("| estimator | MI (nats) | MD (nats) | seconds |\n|---|---|---|---|")
    for name, mi, md, sec in rows:
        print(f"| {name} | {mi:.3f} | {md:.3f} | {sec:.1f} |")


if __name__ == "__main__":
    main()
