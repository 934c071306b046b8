"""Reparameterised posterior samples with one random stream per example.

Example ``i`` (its row in the data) has its own generator, seeded from
``SeedSequence(root_entropy, spawn_key=(i,))``; its samples are the rows of
that generator's successive ``standard_normal((chunk, d))`` draws.  So sample j
of example i is the same whatever the example batches and sample chunks are:
chunked and unchunked evaluations see the very same z.
"""
import numpy as np

try:
    from .._ext import noise as _noise
except ImportError:         # built against a NumPy without libnpyrandom (setup.py)
    _noise = None


def root_entropy(rng):
    """128 bits of entropy from ``rng`` (None, int, SeedSequence or Generator)."""
    if isinstance(rng, np.random.SeedSequence):
        rng = np.random.default_rng(rng)
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return [int(v) for v in g.integers(0, 2 ** 32, size=4, dtype=np.uint64)]


def example_streams(entropy, start, stop):
    """Generators for examples start <= i < stop."""
    return [np.random.Generator(np.random.PCG64(
        np.random.SeedSequence(entropy, spawn_key=(i,)))) for i in range(start, stop)]


def draw_noise(streams, n_samples, d, n_threads=1):
    """Next ``n_samples`` standard normal vectors of each stream: float64 (len(streams), n_samples, d).

    With ``n_threads > 1`` the streams are drawn on that many of the compiled core's
    OpenMP threads (``_ext/noise.pyx``, NumPy's own C sampler on each stream's bit
    generator); every stream still gives the same numbers, so the result does not
    depend on ``n_threads``.
    """
    eps = np.empty((len(streams), n_samples, d))
    nt = min(int(n_threads), len(streams))
    if nt <= 1 or eps.size < _PARALLEL_FROM or _noise is None:
        for row, g in zip(eps, streams):
            g.standard_normal(out=row)
        return eps
    _noise.normal_fill(streams, eps, nt)
    return eps


#: below this many values one thread draws them all (a parallel region costs a few us)
_PARALLEL_FROM = 32768


def posterior_samples(streams, mu, logvar, n_samples, n_threads=1, sd=None):
    """Next ``n_samples`` reparameterised samples of each example's posterior, float32
    (len(streams), n_samples, d): ``reparameterise(mu, logvar, draw_noise(streams, ...))``
    bit for bit, drawn and transformed in one compiled pass on ``n_threads`` threads
    (without the float64 noise array).  ``sd``: ``exp(logvar / 2)`` if already computed.
    """
    mu = np.ascontiguousarray(mu, dtype=np.float64)
    if _noise is None:
        return reparameterise(mu, logvar, draw_noise(streams, n_samples, mu.shape[1]),
                              overwrite_eps=True)
    if sd is None:
        sd = np.exp(0.5 * np.asarray(logvar, dtype=np.float64))
    z = np.empty((len(streams), n_samples, mu.shape[1]), np.float32)
    nt = max(1, min(int(n_threads), len(streams))) if z.size >= _PARALLEL_FROM else 1
    _noise.posterior_samples(streams, mu, np.ascontiguousarray(sd, dtype=np.float64), z, nt)
    return z


def reparameterise(mu, logvar, eps, overwrite_eps=False):
    """``z = mu + exp(logvar / 2) * eps`` rounded to float32 (what the decoder sees).

    mu, logvar: (n, d); eps: (n, s, d) -> float32 (n, s, d).  ``overwrite_eps``:
    compute in ``eps`` (float64) instead of a temporary (same values).
    """
    if not overwrite_eps:
        return (mu[:, None, :] + np.exp(0.5 * logvar)[:, None, :] * eps).astype(np.float32)
    eps *= np.exp(0.5 * logvar)[:, None, :]
    eps += mu[:, None, :]
    return eps.astype(np.float32)
