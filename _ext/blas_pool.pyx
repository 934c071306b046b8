# cython: language_level=3
"""One thread pool for BLAS and the compiled kernels (see ``blas_pool.h``).

``install(setter, on)`` calls OpenBLAS's ``openblas_set_threads_callback_function``
(its address, found by :mod:`vaeas_np._threads`) with our OpenMP callback, or with
NULL to give OpenBLAS its own threads back.
"""
from libc.stdint cimport uintptr_t

cdef extern from "blas_pool.h" nogil:
    ctypedef void (*blas_set_callback_t)(void *)
    void blas_pool_callback(int sync, void *dojob, int numjobs, size_t elsize,
                            void *jobdata, int data)
    int blas_pool_has_openmp()
    long blas_pool_get_calls()


def has_openmp():
    """True when the core was built with OpenMP (the callback is then worth installing)."""
    return bool(blas_pool_has_openmp())


def calls():
    """How many parallel BLAS calls the callback has served (for tests)."""
    return blas_pool_get_calls()


def install(uintptr_t setter, bint on):
    """Point OpenBLAS at our OpenMP callback (``on``) or back at its own threads."""
    if setter == 0:
        raise ValueError("install: null address for openblas_set_threads_callback_function")
    (<blas_set_callback_t> setter)(<void *> blas_pool_callback if on else NULL)
