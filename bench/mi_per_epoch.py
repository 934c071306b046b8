"""Classifier MI estimate per epoch on MNIST (V = N = 55,000) for one VAEAS setting.

    python bench/mi_per_epoch.py NAME EPOCHS 'JSON of VAEAS parameters' [--data-dir DIR]

e.g. ``python bench/mi_per_epoch.py literal 30 '{"leaf_order": "random"}'`` (the
paper's literal setting) or ``... default 30 '{}'``.  Prints one JSON record per epoch
(recon, kl, mi, md, sc, seconds including tree rebuilds) and saves the model after
every epoch to ``runs/NAME.h5`` (for ``bench/mi_estimators.py``).  Threads: 1.
"""
import argparse
import json
import os

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
    a = p.parse_args(argv)
    ds = vaeas_np.load_dataset("mnist", data_dir=a.data_dir)
    model = vaeas_np.VAEAS(epochs=a.epochs, seed=a.seed, n_threads=a.threads, verbose=False,
                           **json.loads(a.params))
    os.makedirs("runs", exist_ok=True)

    def report(m, record):
        print(json.dumps(record), flush=True)
        m.save(os.path.join("runs", f"{a.name}.h5"))

    model.fit(ds.train, callbacks=[report])


if __name__ == "__main__":
    main()
