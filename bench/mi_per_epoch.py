"""Classifier MI estimate per epoch on MNIST (V = N = 55,000) for one VAEAS setting.

    python bench/mi_per_epoch.py NAME EPOCHS 'JSON of VAEAS parameters' [--data-dir DIR]

e.g. ``python bench/mi_per_epoch.py literal 30 '{"leaf_order": "random"}'`` (the
paper's literal setting) or ``... default 30 '{}'``.  Prints one JSON record per epoch
(recon, kl, mi, md, sc, seconds including tree rebuilds) and saves the model after
every epoch to ``runs/NAME.h5`` (for ``bench/mi_estimators.py``).  Threads: 1.

``--nudge K`` moves weight K (flat index) of the encoder's first layer up by one float32
ulp after initialisation: a control for how far rounding alone moves a run (training
is chaotic: Adam turns the sign of near-zero gradients into steps of the full learning
rate, so a change in the last bit of one weight shifts the whole trajectory).
"""
import argparse
import json
import os

import numpy as np

import vaeas_np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name")
    p.add_argument("epochs", type=int)
    p.add_argument("params", nargs="?", default="{}")
    p.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "shared", "data", "mnist"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nudge", type=int, default=None, metavar="K",
                   help="move the encoder's first-layer weight K up by one ulp")
    a = p.parse_args(argv)
    ds = vaeas_np.load_dataset("mnist", data_dir=a.data_dir)
    model = vaeas_np.VAEAS(epochs=a.epochs, seed=a.seed, n_threads=a.threads, verbose=False,
                           **json.loads(a.params))
    if a.nudge is not None:
        build = model._build

        def nudged_build(*args, **kwargs):
            build(*args, **kwargs)
            w = model.encoder_.layers[0].W.reshape(-1)
            if not 0 <= a.nudge < w.size:
                raise SystemExit(f"--nudge {a.nudge}: the first layer has {w.size} weights")
            w[a.nudge] = np.nextafter(w[a.nudge], np.inf)

        model._build = nudged_build
    os.makedirs("runs", exist_ok=True)

    def report(m, record):
        print(json.dumps(record), flush=True)
        m.save(os.path.join("runs", f"{a.name}.h5"))

    model.fit(ds.train, callbacks=[report])


if __name__ == "__main__":
    main()
