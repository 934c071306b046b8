"""Compiled kernels (built from the top-level ``_ext/*.pyx`` sources).

Inside the library's work (``vaeas_np._threads.thread_limits``) numpy's OpenBLAS
runs its jobs on these kernels' OpenMP threads (``_ext/blas_pool.h``), so one
pool serves GEMMs and kernels; its workers then wait a few milliseconds
spinning between calls (libgomp's default), which is what keeps back-to-back
GEMMs and kernels fast.  Where that sharing is unavailable or switched off
(``VAEAS_NP_SHARED_BLAS_POOL=0``), OpenBLAS keeps its own spinning threads, and
spinning OpenMP workers would take the cores its next GEMM needs (up to 10x
slower GEMMs measured here): OpenMP workers then sleep when idle
(``OMP_WAIT_POLICY=PASSIVE``).  A wait policy the user set is kept.  This must
be decided before libgomp is loaded (the first kernel import).
"""
import os

import numpy  # noqa: F401  (loads numpy's OpenBLAS, which the check below looks for)

from .._threads import shared_pool_possible

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ \
        and not shared_pool_possible():
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
