"""Where a training step's time goes: wall time of each phase, in the step.

    python bench/step_phases.py [vaeas|vae] [--steps 1000] [--threads 2]

Wraps the step's parts (encoder and decoder forward and backward, the latent and
Bernoulli passes, the classifier MLP, the tree's forward, backward and node update) with
timers and prints each one's median over the steps and its share of the step's median.
The parts nest (``cls_fwd`` holds ``clsmlp_fwd`` and ``tree_fwd``; ``cls_bwd`` holds
``tree_bwd``, ``out_step`` and ``clsmlp_bwd``); what the step spends outside them is Python
glue.  The timers cost ~0.2 us each.  MNIST sizes, batch 128, V = 55,000, random binary
inputs, as bench/step_cost.py.
"""
import argparse
import collections
import time

import numpy as np

from step_cost import B, D, N, build
import vaeas_np.models.vae as vae_module
from vaeas_np import VAE, VAEAS
from vaeas_np._threads import thread_limits


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default="vaeas", choices=["vaeas", "vae"])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    times = collections.defaultdict(list)

    def wrap(obj, name, label):
        f = getattr(obj, name)

        def timed(*args, **kwargs):
            t = time.perf_counter_ns()
            r = f(*args, **kwargs)
            times[label].append(time.perf_counter_ns() - t)
            return r
        setattr(obj, name, timed)

    class Fused:                        # the model module's compiled passes, timed
        pass
    real_fused = vae_module._fused
    fused = Fused()
    for name in dir(real_fused):
        if not name.startswith("_"):
            setattr(fused, name, getattr(real_fused, name))
    rng = np.random.default_rng(0)
    x = (rng.random((B, D)) < 0.13).astype(np.float32)
    idx = [rng.permutation(N)[:B].copy() for _ in range(50)]
    try:
        vae_module._fused = fused
        with thread_limits(a.threads) as nt:
            model = build((VAEAS if a.model == "vaeas" else VAE)(seed=0, verbose=False,
                                                                  n_threads=a.threads))
            model._nt = nt
            for net in model._networks():
                net.n_threads = nt
            wrap(fused, "latent_forward", "latent_fwd")
            wrap(fused, "bernoulli_rows", "bernoulli")
            wrap(fused, "latent_backward", "latent_bwd")
            for net, tag in ((model.encoder_, "enc"), (model.decoder_, "dec")):
                wrap(net, "forward", f"{tag}_fwd")
                wrap(net, "backward", f"{tag}_bwd")
            if a.model == "vaeas":
                wrap(model, "_classifier_forward", "cls_fwd")
                wrap(model, "_classifier_backward", "cls_bwd")
                wrap(model.classifier_, "forward", "clsmlp_fwd")
                wrap(model.classifier_, "backward", "clsmlp_bwd")
                wrap(model.output_, "forward", "tree_fwd")
                wrap(model.output_, "backward", "tree_bwd")
                wrap(model.output_, "step", "out_step")
            wrap(model, "_train_step", "step")
            for i in range(100):                      # warm-up: buffers, caches
                model._train_step(x, idx[i % 50])
            times.clear()
            time.sleep(0.3)
            for i in range(a.steps):
                model._train_step(x, idx[i % 50])
    finally:
        vae_module._fused = real_fused
    total = np.median(times["step"])
    print(f"{a.model}, {a.threads} threads, {a.steps} steps: median us per step and share "
          "of the step's median")
    for name, t in times.items():
        print(f"{name:12s} {np.median(t) / 1e3:8.1f} us  {np.median(t) / total:6.1%}")


if __name__ == "__main__":
    main()
