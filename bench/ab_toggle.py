"""Paired in-process A/B of a runtime switch over the training step.

    python bench/ab_toggle.py vaeas_np._ext.gemm._set_balanced [--models vae vaeas]
                              [--threads 2] [--pairs 40] [--steps 20]

The switch is a function of one argument (1: on, the default; 0: off), such as
``vaeas_np._ext.gemm._set_balanced``.  For each model (MNIST sizes, batch 128,
V = 55,000, random binary inputs) blocks of ``--steps`` training steps alternate between
off and on (the order flips every pair), and the ratio on / off of each pair is taken
side by side: this machine's slow spells then hit both arms of a pair alike, which
separate processes do not (they differ by up to 30 %).  Prints the median step time of
each arm and the median and quartiles of the pair ratios (< 1: on is faster).
"""
import argparse
import importlib
import time

import numpy as np

from step_cost import B, D, N, build
from vaeas_np import VAE, VAEAS
from vaeas_np._threads import thread_limits


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("switch", help="module.function taking 1 (on) or 0 (off)")
    p.add_argument("--models", nargs="+", default=["vae", "vaeas"], choices=["vae", "vaeas"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pairs", type=int, default=40)
    p.add_argument("--steps", type=int, default=20)
    a = p.parse_args(argv)
    mod, fn = a.switch.rsplit(".", 1)
    switch = getattr(importlib.import_module(mod), fn)
    rng = np.random.default_rng(0)
    x = (rng.random((B, D)) < 0.13).astype(np.float32)
    print(f"{a.switch}: threads={a.threads}, {a.pairs} pairs of {a.steps}-step blocks")
    with thread_limits(a.threads) as nt:
        for kind in a.models:
            model = build((VAEAS if kind == "vaeas" else VAE)(seed=0, verbose=False,
                                                               n_threads=a.threads))
            model._nt = nt
            for net in model._networks():
                net.n_threads = nt
            for _ in range(5):                                  # warm-up: buffers, caches
                model._train_step(x, rng.permutation(N)[:B])
            idx = [rng.permutation(N)[:B].copy() for _ in range(a.steps)]
            arms = {0: [], 1: []}
            try:
                for i in range(a.pairs):
                    for arm in ((0, 1) if i % 2 else (1, 0)):
                        switch(arm)
                        t = time.perf_counter()
                        for j in range(a.steps):
                            model._train_step(x, idx[j])
                        arms[arm].append((time.perf_counter() - t) / a.steps)
            finally:
                switch(1)
            off, on = np.array(arms[0]), np.array(arms[1])
            r = on / off
            print(f"{kind:6s} off {np.median(off) * 1e3:7.3f} ms  on {np.median(on) * 1e3:7.3f} ms"
                  f"  on/off {np.median(r):.4f} [quartiles {np.quantile(r, 0.25):.4f}, "
                  f"{np.quantile(r, 0.75):.4f}]")


if __name__ == "__main__":
    main()
