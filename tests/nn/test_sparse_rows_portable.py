"""The sparse first layer's row kernel as built for CPUs without AVX-512.

The compiled core is built for the CPU that builds it, so on an AVX-512 machine the
suite only runs the AVX-512 path of ``_ext/sparse_rows.h``.  This test compiles the
header's portable path (GCC/Clang vector extensions, ``-mno-avx512f``) into a small
library and compares it with NumPy, so both paths are checked wherever the tests run.
"""
import ctypes
import os
import platform
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

HEADER_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "_ext")
SOURCE = """
#include "sparse_rows.h"
void rowcomb_f32(const int32_t* r, const float* v, int32_t n, const float* M,
                 ptrdiff_t ldm, ptrdiff_t w, float* o)
{ vaeas_rowcomb_f32(r, v, n, M, ldm, w, o); }
void rowcomb_f64(const int32_t* r, const double* v, int32_t n, const double* M,
                 ptrdiff_t ldm, ptrdiff_t w, double* o)
{ vaeas_rowcomb_f64(r, v, n, M, ldm, w, o); }
ptrdiff_t load_f32(const float* x, ptrdiff_t B, ptrdiff_t D, int32_t* idx, float* val,
                   int32_t* cnt, int32_t* cptr, int32_t* crow, float* cval, ptrdiff_t cap,
                   int* built)
{ return vaeas_load_rows_cols_f32(x, B, D, idx, val, cnt, cptr, crow, cval, cap, built,
                                  NULL, NULL, 1); }
"""


@pytest.fixture(scope="module")
def portable(tmp_path_factory):
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler to build the portable kernel")
    d = tmp_path_factory.mktemp("rowcomb")
    src, lib = d / "rowcomb.c", d / "rowcomb.so"
    src.write_text(SOURCE)
    flags = ["-O2", "-shared", "-fPIC", "-I", HEADER_DIR]
    if platform.machine().lower() in ("x86_64", "amd64"):
        flags += ["-march=x86-64-v3", "-mno-avx512f"]       # AVX2: the vector-extension path
    subprocess.run([cc, *flags, str(src), "-o", str(lib)], check=True, capture_output=True)
    return ctypes.CDLL(str(lib))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), rows=st.integers(1, 50), w=st.integers(1, 300),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_portable_rowcomb_matches_numpy(portable, n, rows, w, dtype, seed):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((rows, w + 3)).astype(dtype)     # ldm > w: a strided block
    r = rng.integers(0, rows, n).astype(np.int32)
    v = rng.random(n).astype(dtype)
    o = np.full(w, np.nan, dtype)
    fn = portable.rowcomb_f32 if dtype == np.float32 else portable.rowcomb_f64
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)
    fn.restype = None
    fn(ptr(r), ptr(v), ctypes.c_int32(n), ptr(M), ctypes.c_ssize_t(w + 3), ctypes.c_ssize_t(w),
       ptr(o))
    expected = (v.astype(np.float64) @ M[r, :w].astype(np.float64)) if n else np.zeros(w)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(o, expected, rtol=tol, atol=tol * max(1, n))


@settings(max_examples=40, deadline=None)
@given(B=st.integers(0, 40), D=st.integers(0, 100), density=st.floats(0, 0.5),
       seed=st.integers(0, 2**32 - 1))
def test_portable_load_rows_and_columns(portable, B, D, density, seed):
    """vaeas_load_rows_cols_f32 without AVX-512 (the scalar row loop): x's nonzeros
    (x != 0: NaN counts, -0.0 does not) as rows and as columns."""
    rng = np.random.default_rng(seed)
    x = ((rng.random((B, D)) < density) * rng.standard_normal((B, D))).astype(np.float32)
    if x.size:
        x.flat[rng.integers(0, x.size, 2)] = [np.nan, -0.0]
    idx, val = np.zeros((B, D), np.int32), np.zeros((B, D), np.float32)
    cnt, cptr = np.zeros(B, np.int32), np.zeros(D + 1, np.int32)
    cap = B * D
    crow, cval = np.zeros(max(cap, 1), np.int32), np.zeros(max(cap, 1), np.float32)
    built = ctypes.c_int(-1)
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)
    portable.load_f32.restype = ctypes.c_ssize_t
    nnz = portable.load_f32(ptr(x), ctypes.c_ssize_t(B), ctypes.c_ssize_t(D), ptr(idx),
                            ptr(val), ptr(cnt), ptr(cptr), ptr(crow), ptr(cval),
                            ctypes.c_ssize_t(cap), ctypes.byref(built))
    nz = (x != 0) | np.isnan(x)
    assert nnz == nz.sum() and built.value == 1
    for i in range(B):
        np.testing.assert_array_equal(idx[i, :cnt[i]], np.flatnonzero(nz[i]))
        np.testing.assert_array_equal(val[i, :cnt[i]], x[i, nz[i]])
    np.testing.assert_array_equal(np.diff(cptr), nz.sum(0))
    for j in range(D):
        np.testing.assert_array_equal(crow[cptr[j]:cptr[j + 1]], np.flatnonzero(nz[:, j]))
        np.testing.assert_array_equal(cval[cptr[j]:cptr[j + 1]], x[nz[:, j], j])
