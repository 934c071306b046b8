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
