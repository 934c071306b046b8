"""Cost of one training step: plain VAE vs VAE-AS (hierarchical and full softmax).

MNIST sizes (784-500-500-40 encoder, 40-500x5-784 decoder, classifier 40-500-500),
batch 128, V = 55,000, float32, random binary inputs (the cost does not depend on
the pixel values).  Prints the median and spread of several timed blocks per model,
the ratio VAE-AS / VAE, and the classifier's share (VAE-AS step - VAE step) for the
hierarchical and the full softmax.

    python bench/step_cost.py [--threads 2] [--repeats 5] [--steps 40] [--full-steps 5]
                              [--dense-first-layer]

``--dense-first-layer`` adds the VAE and VAE-AS with the encoder's first layer as a dense
GEMM (``MLP(sparse_input=False)``) to the interleaved blocks: an A/B of the sparse input.

Quiet blocks.  This machine has slow spells of several seconds in which everything
slows down, a cached 128x500x500 GEMM by about 30 % and the memory-bound Adam passes
by 3-5x (measured: the VAE step goes from about 10.5 to 16 ms; bench/RESULTS.md,
"What the slow spells are").  They slow the VAE
step more than the classifier's share, so they pull the VAE-AS / VAE ratio down.
After every block a reference GEMM (the step's 128x500x500 shape) is timed; a block
counts as quiet when that probe is within 8 % of its fastest value in the run.  The
ratio is printed over all block pairs and over the pairs whose two blocks were quiet.
"""
import argparse
import time

import numpy as np

from timing import median_us
from vaeas_np import VAE, VAEAS
from vaeas_np._threads import thread_limits

N, D, B = 55_000, 784, 128


def build(model):
    model._validate_params()
    model._make_rngs()
    model._build(D, pixel_mean=np.full(D, 0.13))
    model._setup_fit(np.zeros((N, 1), np.float32)) if isinstance(model, VAEAS) else None
    return model


QUIET_SLACK = 1.08


def gemm_probe(a, w, out, calls=10):
    """Median seconds of a 128x500x500 float32 GEMM (the step's most common shape)."""
    return median_us(lambda: np.matmul(a, w, out=out), n=calls, warmup=0) / 1e6


def time_steps(models, repeats, threads, rng, probes=None):
    """Seconds per step, (repeats,) per model: blocks of steps, the models' blocks
    interleaved (this machine's slow spells then hit every model alike).  When
    ``probes`` is a dict, ``probes[name]`` gets the reference GEMM's time after each
    of that model's blocks (see "Quiet blocks" above)."""
    x = (rng.random((B, D)) < 0.13).astype(np.float32)
    times = {name: [] for name in models}
    if probes is not None:
        probes.update({name: [] for name in models})
        pa = rng.random((B, 500), dtype=np.float32)
        pw = rng.random((500, 500), dtype=np.float32)
        pout = np.empty((B, 500), np.float32)
    with thread_limits(threads) as nt:
        for model, _ in models.values():
            model._nt = nt
            for net in model._networks():
                net.n_threads = nt
            for _ in range(3):                              # warm-up: buffers, caches
                model._train_step(x, rng.permutation(N)[:B])
        time.sleep(0.3)         # OpenBLAS's own workers stop spinning (vaeas_np._threads)
        for _ in range(repeats):
            for name, (model, steps) in models.items():
                idx = [rng.permutation(N)[:B].copy() for _ in range(steps)]   # as in an epoch
                t = time.perf_counter()
                for i in range(steps):
                    model._train_step(x, idx[i])
                times[name].append((time.perf_counter() - t) / steps)
                if probes is not None:
                    probes[name].append(gemm_probe(pa, pw, pout))
    return {name: np.array(t) for name, t in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--full-steps", type=int, default=4)
    p.add_argument("--dense-first-layer", action="store_true",
                   help="also time both models with a dense first layer (A/B)")
    a = p.parse_args(argv)
    rng = np.random.default_rng(0)
    kw = dict(seed=0, verbose=False, n_threads=a.threads)
    models = {
        "VAE": (build(VAE(**kw)), a.steps),
        "VAE-AS hierarchical": (build(VAEAS(**kw)), a.steps),
        "VAE-AS full softmax": (build(VAEAS(softmax="full", **kw)), a.full_steps),
    }
    if a.dense_first_layer:
        for name, model in (("VAE", VAE(**kw)), ("VAE-AS hierarchical", VAEAS(**kw))):
            model = build(model)
            model.encoder_.sparse_input = False
            models[name + ", dense x"] = (model, a.steps)
    print(f"threads={a.threads}  batch={B}  V={N}  (ms per step: median [min, max] of "
          f"{a.repeats} blocks, the models' blocks interleaved)")
    probes = {}
    times = time_steps(models, a.repeats, a.threads, rng, probes)
    res = {}
    for name, t in times.items():
        t = t * 1e3
        res[name] = np.median(t)
        print(f"{name:22s} {np.median(t):9.2f} ms  [{t.min():.2f}, {t.max():.2f}]  "
              f"epoch ~{np.median(t) * N / B / 1e3:6.1f} s (extrapolated from "
              f"{models[name][1]} steps)")
    vae, hs, full = res["VAE"], res["VAE-AS hierarchical"], res["VAE-AS full softmax"]
    pair = times["VAE-AS hierarchical"] / times["VAE"]       # blocks taken side by side
    print(f"VAE-AS (hierarchical) / VAE step: {hs / vae:.3f} (ratio of medians); "
          f"{np.median(pair):.3f} [{pair.min():.3f}, {pair.max():.3f}] (median of the "
          f"{a.repeats} side-by-side block ratios)")
    best = min(min(p) for p in probes.values())
    quiet = {name: np.array(p) <= QUIET_SLACK * best for name, p in probes.items()}
    both = quiet["VAE"] & quiet["VAE-AS hierarchical"]
    print(f"reference GEMM 128x500x500 after each block: fastest {best * 1e3:.3f} ms; quiet "
          f"blocks (within {QUIET_SLACK - 1:.0%} of it): " + ", ".join(
              f"{name} {int(q.sum())}/{len(q)}" for name, q in quiet.items()))
    if both.any():
        qv, qh = times["VAE"][both] * 1e3, times["VAE-AS hierarchical"][both] * 1e3
        print(f"quiet pairs only ({int(both.sum())}): VAE {np.median(qv):.2f} ms, VAE-AS "
              f"{np.median(qh):.2f} ms, ratio {np.median(qh) / np.median(qv):.3f} (ratio of "
              f"medians); {np.median(pair[both]):.3f} (median of the block ratios); share "
              f"{np.median(qh) - np.median(qv):.2f} ms")
    else:
        print("quiet pairs only: none (every pair had a slow block); run again")
    print(f"classifier share: hierarchical {hs - vae:.2f} ms, full {full - vae:.2f} ms, "
          f"full / hierarchical = {(full - vae) / max(hs - vae, 1e-9):.1f}x")
    if a.dense_first_layer:
        dv, dh = res["VAE, dense x"], res["VAE-AS hierarchical, dense x"]
        print(f"dense first layer: VAE-AS / VAE {dh / dv:.3f}; the sparse input saves "
              f"{dv - vae:.2f} ms (VAE) and {dh - hs:.2f} ms (VAE-AS) per step")


if __name__ == "__main__":
    main()
