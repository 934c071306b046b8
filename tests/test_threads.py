"""The shared BLAS/OpenMP pool (``_ext/blas_pool.h``): OpenBLAS's jobs run on our
OpenMP threads inside ``thread_limits(n)``, with results equal to OpenBLAS's own
threads bit for bit, and OpenBLAS gets its threads back after."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from vaeas_np._ext import blas_pool
from vaeas_np._threads import shared_blas_pool, shared_pool_enabled, thread_limits

needs_pool = pytest.mark.skipif(
    not shared_pool_enabled(), reason="no OpenBLAS with the threads callback, or no OpenMP")

# large enough that OpenBLAS splits them over 2 threads
SHAPES = [(128, 784, 500), (500, 128, 500), (300, 300, 300), (64, 2000, 64)]


def _products(rng):
    pairs = [(rng.standard_normal((m, k)).astype(np.float32),
              rng.standard_normal((k, n)).astype(np.float32)) for m, k, n in SHAPES]
    pairs.append((rng.standard_normal((400, 300)), rng.standard_normal((300, 200))))  # float64
    return pairs


@needs_pool
def test_shared_pool_serves_blas_and_matches_openblas_threads():
    pairs = _products(np.random.default_rng(0))
    with thread_limits(2, share_pool=False):
        before = blas_pool.calls()
        own = [a @ b for a, b in pairs]
        assert blas_pool.calls() == before
    with thread_limits(2) as n:
        assert n == 2
        before = blas_pool.calls()
        shared = [a @ b for a, b in pairs]
        served = blas_pool.calls() - before
    assert served >= len(pairs)             # each product went through our callback
    for x, y in zip(own, shared):
        np.testing.assert_array_equal(x, y)
    after = blas_pool.calls()              # hook removed: OpenBLAS's own threads again
    with thread_limits(2, share_pool=False):
        [a @ b for a, b in pairs]
    [a @ b for a, b in pairs]
    assert blas_pool.calls() == after


@needs_pool
def test_shared_pool_concurrent_callers_get_right_results():
    """Callers from several Python threads at once (jobs share static buffers per
    job index, so the callback runs one call at a time)."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((256, 512)).astype(np.float32)
    bs = [rng.standard_normal((512, 384)).astype(np.float32) for _ in range(4)]
    with thread_limits(2, share_pool=False):
        want = [a @ b for b in bs]
    errors = []

    def work(i):
        for _ in range(20):
            got = a @ bs[i]
            if not np.array_equal(got, want[i]):
                errors.append(i)

    with thread_limits(2):
        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


@needs_pool
def test_shared_pool_nests_and_restores_on_error():
    a = np.ones((300, 300), np.float32)
    with pytest.raises(RuntimeError, match="boom"):
        with thread_limits(2):
            with shared_blas_pool() as on:
                assert on is True
            before = blas_pool.calls()
            a @ a                               # still shared after the inner block
            assert blas_pool.calls() > before
            raise RuntimeError("boom")
    before = blas_pool.calls()
    a @ a
    assert blas_pool.calls() == before


def _run(code, **env):
    e = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True,
                          text=True, timeout=120)


@needs_pool
def test_short_openmp_team_falls_back_to_threads():
    """OMP_THREAD_LIMIT=1: OpenMP cannot run both jobs at once; the callback starts
    threads instead of deadlocking, and the result is right."""
    code = ("import numpy as np\n"
            "from vaeas_np._threads import thread_limits\n"
            "from vaeas_np._ext import blas_pool\n"
            "a = np.random.default_rng(0).standard_normal((400, 400)).astype(np.float32)\n"
            "with thread_limits(2, share_pool=False): want = a @ a\n"
            "with thread_limits(2): got = a @ a\n"
            "assert blas_pool.calls() > 0\n"
            "assert np.array_equal(got, want)\n"
            "print('ok')\n")
    r = _run(code, OMP_THREAD_LIMIT="1")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_environment_switch_turns_the_pool_off():
    """...and OpenMP workers then sleep when idle (they would fight OpenBLAS's own)."""
    code = ("import os\n"
            "from vaeas_np._threads import shared_blas_pool, shared_pool_enabled\n"
            "import vaeas_np._ext\n"
            "assert os.environ.get('OMP_WAIT_POLICY') == 'PASSIVE'\n"
            "assert not shared_pool_enabled()\n"
            "with shared_blas_pool() as on: assert on is False\n"
            "print('ok')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, env=dict(env, VAEAS_NP_SHARED_BLAS_POOL="0"))
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_fork_after_parallel_kernels_does_not_hang():
    """GNU OpenMP's threads do not survive fork: a child forked after its parent ran
    parallel kernels trains on one kernel thread (with a warning) instead of hanging."""
    code = '''
import multiprocessing as mp, warnings
import numpy as np
from vaeas_np import VAE
from vaeas_np._threads import get_num_threads

X = (np.random.default_rng(0).random((256, 784)) < 0.2).astype(np.float32)

def job(seed):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        m = VAE(epochs=1, seed=seed, n_threads=2, verbose=False).fit(X)
        s = m.score(X[:8], k=16)
    return get_num_threads(2), float(s), any("forked" in str(x.message) for x in w)

if __name__ == "__main__":
    VAE(epochs=1, seed=0, n_threads=2, verbose=False).fit(X)   # the parent's OpenMP threads start
    with mp.get_context("fork").Pool(1) as pool:
        n, s, warned = pool.apply(job, (1,))
    assert n == 1 and warned and np.isfinite(s), (n, s, warned)
    assert get_num_threads(2) == 2                             # the parent keeps its threads
    print("ok")
'''
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
