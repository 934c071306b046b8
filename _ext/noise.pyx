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
from libc.stdlib cimport free, malloc
from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport (random_standard_normal_fill,
                                          random_standard_normal_fill_f)

import numpy as np


cdef object _bit_generator_pointers(generators, Py_ssize_t G, int n_threads, str name):
    """The generators' bitgen_t pointers as an intp array (checked: one per row, distinct)."""
    if len(generators) != G:
        raise ValueError(f"{name}: {len(generators)} generators for {G} rows of out")
    if n_threads < 1:
        raise ValueError(f"{name}: n_threads must be >= 1, got {n_threads}")
    if len(set(map(id, generators))) != G:
        raise ValueError(f"{name}: a generator appears twice (each row needs its own)")
    states = np.empty(G, dtype=np.intp)
    cdef intptr_t[::1] st = states
    cdef Py_ssize_t i
    for i in range(G):
        st[i] = <intptr_t>PyCapsule_GetPointer(generators[i].bit_generator.capsule,
                                               "BitGenerator")
    return states


def normal_fill(generators, double[:, :, ::1] out, int n_threads=1):
    """out[i] (n, d) = generators[i].standard_normal((n, d)), float64, i < len(generators).

    ``generators``: numpy.random.Generator objects (distinct: each is drawn from by one
    thread; their locks are not taken, so no other thread may use them meanwhile);
    ``out``: C-contiguous float64 (len(generators), n, d).
    """
    cdef Py_ssize_t G = out.shape[0], per = out.shape[1] * out.shape[2], i
    states = _bit_generator_pointers(generators, G, n_threads, "normal_fill")
    if G == 0 or per == 0:
        return
    cdef intptr_t[::1] st = states
    cdef double* o = &out[0, 0, 0]
    with nogil:
        for i in prange(G, num_threads=n_threads, schedule="static"):
            random_standard_normal_fill(<bitgen_t*>st[i], per, o + i * per)


def posterior_samples(generators, const double[:, ::1] mu, const double[:, ::1] sd,
                      float[:, :, ::1] out, int n_threads=1):
    """out[i, s] = float32(mu[i] + sd[i] * eps[i, s]) with eps[i] (n, d) the next standard
    normals of generators[i] (float64, as ``normal_fill``); out (len(generators), n, d).

    ``sd = exp(logvar / 2)``, computed by the caller (NumPy's exp) so that the samples are
    those of ``reparameterise(mu, logvar, eps)``.
    """
    cdef Py_ssize_t G = out.shape[0], n = out.shape[1], d = out.shape[2], i, s, j
    if mu.shape[0] != G or sd.shape[0] != G or mu.shape[1] != d or sd.shape[1] != d:
        raise ValueError(f"posterior_samples: mu and sd must be ({G}, {d}) like out's "
                         f"first and last axes, got ({mu.shape[0]}, {mu.shape[1]}) and "
                         f"({sd.shape[0]}, {sd.shape[1]})")
    states = _bit_generator_pointers(generators, G, n_threads, "posterior_samples")
    if G == 0 or n == 0 or d == 0:
        return
    cdef intptr_t[::1] st = states
    cdef double* row
    cdef double t
    cdef int failed = 0
    with nogil:
        for i in prange(G, num_threads=n_threads, schedule="static"):
            row = <double*>malloc(d * sizeof(double))
            if row == NULL:
                failed += 1
                continue
            for s in range(n):
                random_standard_normal_fill(<bitgen_t*>st[i], d, row)
                for j in range(d):
                    t = sd[i, j] * row[j]
                    out[i, s, j] = <float>(mu[i, j] + t)
            free(row)
    if failed:
        raise MemoryError("posterior_samples: no memory for a row of noise")


cdef struct _fill_job:
    bitgen_t* bitgen
    Py_ssize_t n
    float* out32
    double* out64


cdef void _run_fill_job(void* p) noexcept nogil:
    """The side job of :class:`NormalFill` (``sparse_input.load_rows_cols`` runs it)."""
    cdef _fill_job* job = <_fill_job*>p
    if job.out32 != NULL:
        random_standard_normal_fill_f(job.bitgen, job.n, job.out32)
    else:
        random_standard_normal_fill(job.bitgen, job.n, job.out64)


cdef class NormalFill:
    """``generator.standard_normal(out=out, dtype=out.dtype)`` as a C job that a compiled
    kernel runs on one of its threads (``sparse_input.load_rows_cols(..., side=f.fn,
    side_ctx=f.ctx)``), with exactly the numbers and the generator state afterwards of
    that call: both use NumPy's ``random_standard_normal_fill(_f)``.

    ``out``: C-contiguous, writable float32 or float64.  While the job may run, hold
    :attr:`lock` (the bit generator's lock, as the Generator's own methods do).
    """
    cdef _fill_job job
    cdef readonly object generator, out, lock
    cdef readonly intptr_t fn, ctx

    def __init__(self, generator, out):
        if not isinstance(out, np.ndarray) or out.dtype not in (np.float32, np.float64):
            raise TypeError("NormalFill: out must be a float32 or float64 numpy array")
        if not (out.flags.c_contiguous and out.flags.writeable):
            raise ValueError("NormalFill: out must be C-contiguous and writable")
        ptr = int(_bit_generator_pointers([generator], 1, 1, "NormalFill")[0])
        self.generator, self.out = generator, out
        self.lock = generator.bit_generator.lock
        self.job.bitgen = <bitgen_t*><intptr_t>ptr
        self.job.n = out.size
        cdef float[::1] o32
        cdef double[::1] o64
        self.job.out32 = NULL
        self.job.out64 = NULL
        if out.size:
            if out.dtype == np.float32:
                o32 = out.reshape(-1)
                self.job.out32 = &o32[0]
            else:
                o64 = out.reshape(-1)
                self.job.out64 = &o64[0]
        self.fn = <intptr_t>&_run_fill_job
        self.ctx = <intptr_t>&self.job

    def __call__(self):
        """Run the job here (holding the lock): the same as the generator call."""
        with self.lock:
            with nogil:
                _run_fill_job(&self.job)
        return self.out
