# cython: language_level=3
"""Standard normal draws from many NumPy generators at once, on the OpenMP threads.

``normal_fill(generators, out, n_threads)``::

    out[i] = generators[i].standard_normal(out[i].shape)      for every i

with exactly the numbers (and the generator states afterwards) of
``generators[i].standard_normal(out=out[i])``: both call NumPy's C function
``random_standard_normal_fill`` (``numpy/random/c_distributions.pxd``, linked from
NumPy's ``libnpyrandom``) on the generator's own bit generator.  Each generator is
drawn from by one thread, so the values do not depend on ``n_threads``.

Why compiled: the importance-weighted NLL draws about 3.3 million normals per 20
images at k = 4,096.  Drawn from Python threads, the OpenMP workers of the GEMMs
that run between the draws spin on the cores those threads need (libgomp's
active wait); drawn here, the draws run on those workers.  NumPy reference:
``Generator.standard_normal`` (``vaeas_np.metrics._sampling.draw_noise`` with one
thread).
"""
from cpython.pycapsule cimport PyCapsule_GetPointer
from cython.parallel cimport prange
from libc.stdint cimport intptr_t
from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport random_standard_normal_fill

import numpy as np


def normal_fill(generators, double[:, :, ::1] out, int n_threads=1):
    """out[i] (n, d) = generators[i].standard_normal((n, d)), float64, i < len(generators).

    ``generators``: numpy.random.Generator objects (distinct: each is drawn from by one
    thread); ``out``: C-contiguous float64 (len(generators), n, d).
    """
    cdef Py_ssize_t G = out.shape[0], per = out.shape[1] * out.shape[2], i
    if len(generators) != G:
        raise ValueError(f"normal_fill: {len(generators)} generators for {G} rows of out")
    if n_threads < 1:
        raise ValueError(f"normal_fill: n_threads must be >= 1, got {n_threads}")
    if len(set(map(id, generators))) != G:
        raise ValueError("normal_fill: a generator appears twice (each row needs its own)")
    if G == 0 or per == 0:
        return
    states = np.empty(G, dtype=np.intp)
    cdef intptr_t[::1] st = states
    bit_generators = [g.bit_generator for g in generators]   # keeps the capsules alive
    for i in range(G):
        st[i] = <intptr_t>PyCapsule_GetPointer(bit_generators[i].capsule, "BitGenerator")
    cdef double* o = &out[0, 0, 0]
    with nogil:
        for i in prange(G, num_threads=n_threads, schedule="static"):
            random_standard_normal_fill(<bitgen_t*>st[i], per, o + i * per)
