# cython: language_level=3
"""Products with a mostly-zero input: the encoder's first layer on binarised images.

A batch ``x`` (B, D) is stored as padded sparse rows ``(idx, val, cnt)``: row i
has ``cnt[i]`` nonzeros at columns ``idx[i, :cnt[i]]`` (ascending) with values
``val[i, :cnt[i]]``.  Then

- ``rows_matmul``:   ``out = x @ W``      (B, H), reading only the rows of W that x uses;
- ``rows_t_matmul``: ``dW = x.T @ delta`` (D, H), the weight gradient.

Binarised MNIST is about 87 % zeros, so both do about an eighth of the dense
GEMM's multiply-adds.  The arithmetic is the same products, summed in a fixed
order (ascending column, resp. ascending row), so results do not depend on the
thread count; they differ from a BLAS GEMM by rounding only.  The parallel loops
run over blocks of 128 output columns (disjoint outputs: no races); each thread
reads only its columns of W or delta.  NumPy references:
``vaeas_np.nn.sparse_input.rows_matmul_reference`` and ``rows_t_matmul_reference``.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int32_t, intptr_t

cdef extern from "sparse_rows.h" nogil:
    int VAEAS_SPARSE_CH
    void vaeas_rowcomb_f32(const int32_t* r, const float* v, int32_t n, const float* M,
                           Py_ssize_t ldm, Py_ssize_t w, float* o)
    void vaeas_rowcomb_f64(const int32_t* r, const double* v, int32_t n, const double* M,
                           Py_ssize_t ldm, Py_ssize_t w, double* o)
    int VAEAS_NONZEROS_SIMD
    int32_t vaeas_nonzeros_f32(const float* x, Py_ssize_t D, int32_t* idx, float* val)
    ctypedef void (*vaeas_side_fn)(void* ctx) noexcept nogil
    void vaeas_rows_to_columns_f32(const int32_t* idx, const float* val, const int32_t* cnt,
                                   Py_ssize_t B, Py_ssize_t D, int32_t* cptr, int32_t* crow,
                                   float* cval, Py_ssize_t cap, int* cols_built)
    void vaeas_rows_to_columns_f64(const int32_t* idx, const double* val, const int32_t* cnt,
                                   Py_ssize_t B, Py_ssize_t D, int32_t* cptr, int32_t* crow,
                                   double* cval, Py_ssize_t cap, int* cols_built)
    Py_ssize_t vaeas_load_rows_cols_f32(const float* x, Py_ssize_t B, Py_ssize_t D,
                                        int32_t* idx, float* val, int32_t* cnt, int32_t* cptr,
                                        int32_t* crow, float* cval, Py_ssize_t cap,
                                        int* cols_built, vaeas_side_fn side, void* ctx,
                                        int n_threads)

cdef Py_ssize_t _SERIAL_BELOW = 1 << 16   # multiply-adds below which one thread is faster
cdef bint _simd_rows = True                # to_rows in float32: SIMD compression


def _set_simd_rows(int on):
    """to_rows' float32 SIMD compression on (1) or the scalar loop (0), for A/B runs."""
    global _simd_rows
    _simd_rows = on != 0


cdef inline void _rowcomb(const int32_t* r, const floating* v, int32_t n, const floating* M,
                          Py_ssize_t ldm, Py_ssize_t w, floating* o) noexcept nogil:
    """o[0:w] = sum_p v[p] M[r[p], 0:w] (``sparse_rows.h``, float or double)."""
    if floating is float:
        vaeas_rowcomb_f32(r, v, n, M, ldm, w, o)
    else:
        vaeas_rowcomb_f64(r, v, n, M, ldm, w, o)


cdef Py_ssize_t _nonzeros(const int32_t[::1] cnt, Py_ssize_t D, str name) except -1:
    """sum(cnt), each count checked to lie in [0, D]."""
    cdef Py_ssize_t i, nnz = 0
    for i in range(cnt.shape[0]):
        if not 0 <= cnt[i] <= D:
            raise ValueError(f"{name}: cnt[{i}] = {cnt[i]} is not in [0, {D}]")
        nnz += cnt[i]
    return nnz


def to_rows(const floating[:, ::1] x,      # IN  (B, D)
            int32_t[:, ::1] idx,           # OUT (B, D) column of each nonzero (padded)
            floating[:, ::1] val,          # OUT (B, D) its value (padded)
            int32_t[::1] cnt,              # OUT (B,) nonzeros per row
            int n_threads=1):
    """Padded sparse rows of ``x``; returns the number of nonzeros."""
    cdef Py_ssize_t B = x.shape[0], D = x.shape[1], i, j, nnz = 0
    cdef int32_t c
    cdef floating t
    if (idx.shape[0] != B or idx.shape[1] != D or val.shape[0] != B or val.shape[1] != D
            or cnt.shape[0] != B):
        raise ValueError("to_rows: idx and val must have x's shape, cnt x.shape[0] entries")
    if D == 0:
        cnt[:] = 0
        return 0
    cdef int nt = n_threads if B * D >= _SERIAL_BELOW else 1
    cdef bint simd = False
    with nogil:
        if floating is float:
            if VAEAS_NONZEROS_SIMD and _simd_rows:  # 16 columns at a time (sparse_rows.h)
                simd = True
                for i in prange(B, num_threads=nt, schedule="static"):
                    cnt[i] = vaeas_nonzeros_f32(&x[i, 0], D, &idx[i, 0], &val[i, 0])
        for i in prange(0 if simd else B, num_threads=nt, schedule="static"):
            c = 0
            for j in range(D):              # branch-free: every element is written at the
                t = x[i, j]                 # cursor, which moves on nonzeros only (a branch
                idx[i, c] = <int32_t>j      # mispredicts on most nonzeros of an image)
                val[i, c] = t
                c = c + (t != 0)
            cnt[i] = c
        for i in range(B):
            nnz += cnt[i]
    return nnz


def load_rows_cols(const float[:, ::1] x,    # IN  (B, D)
                   int32_t[:, ::1] idx,         # OUT (B, D) as to_rows
                   float[:, ::1] val,           # OUT (B, D) as to_rows
                   int32_t[::1] cnt,            # OUT (B,) as to_rows
                   int32_t[::1] cptr,           # OUT (D + 1,) x's columns, as rows_t_matmul
                   int32_t[::1] crow,           # OUT (cap,)   builds them (when they fit:
                   float[::1] cval,             # OUT (cap,)   nnz <= cap)
                   int n_threads=1,
                   intptr_t side=0,             # IN  void (*)(void*) or 0: a serial job
                   intptr_t side_ctx=0):        # IN  its argument
    """``to_rows`` and x's columns in one parallel region (float32), with an optional
    serial job of the caller's (``side(side_ctx)``, a C function that needs no GIL, such
    as :class:`vaeas_np._ext.noise.NormalFill`) run by one thread meanwhile.

    Returns ``(nnz, columns_built)``: the number of nonzeros, and whether cptr, crow,
    cval hold x's columns (they do when nnz <= len(crow)), which ``rows_t_matmul(...,
    columns_ready=True)`` then uses as they are.
    """
    cdef Py_ssize_t B = x.shape[0], D = x.shape[1], cap = min(crow.shape[0], cval.shape[0])
    if (idx.shape[0] != B or idx.shape[1] != D or val.shape[0] != B or val.shape[1] != D
            or cnt.shape[0] != B or cptr.shape[0] != D + 1):
        raise ValueError("load_rows_cols: idx and val must have x's shape (B, D), cnt B and "
                         "cptr D + 1 entries")
    if (side == 0) != (side_ctx == 0):
        raise ValueError("load_rows_cols: side and side_ctx go together")
    if B == 0 or D == 0:
        if side:
            (<vaeas_side_fn>side)(<void*>side_ctx)
        cnt[:] = 0
        cptr[:] = 0
        return 0, True
    cdef int nt = n_threads if (side or B * D >= _SERIAL_BELOW) else 1
    cdef int built = 0
    cdef Py_ssize_t nnz
    with nogil:
        nnz = vaeas_load_rows_cols_f32(&x[0, 0], B, D, &idx[0, 0], &val[0, 0], &cnt[0],
                                       &cptr[0], &crow[0] if cap > 0 else NULL,
                                       &cval[0] if cap > 0 else NULL, cap, &built,
                                       <vaeas_side_fn>side, <void*>side_ctx, max(nt, 1))
    return nnz, built != 0


def rows_matmul(const int32_t[:, ::1] idx, const floating[:, ::1] val,
                const int32_t[::1] cnt,      # IN  x as padded rows (B, D)
                const floating[:, ::1] W,    # IN  (D, H)
                floating[:, ::1] out,        # OUT (B, H) = x @ W
                int n_threads=1):
    """out = x @ W for x given as padded sparse rows."""
    cdef Py_ssize_t B = idx.shape[0], D = W.shape[0], H = W.shape[1], q, c0, w, i
    cdef Py_ssize_t nq = (H + VAEAS_SPARSE_CH - 1) // VAEAS_SPARSE_CH
    if (val.shape[0] != B or val.shape[1] != idx.shape[1] or cnt.shape[0] != B
            or idx.shape[1] != D or out.shape[0] != B or out.shape[1] != H):
        raise ValueError("rows_matmul: shapes do not match (x (B, D) rows, W (D, H), "
                         "out (B, H))")
    cdef Py_ssize_t nnz = _nonzeros(cnt, D, "rows_matmul")
    if B == 0 or H == 0:
        return
    if D == 0:
        out[:, :] = 0
        return
    cdef int nt = n_threads if nnz * H >= _SERIAL_BELOW else 1
    with nogil:
        for q in prange(nq, num_threads=nt, schedule="static"):
            c0 = q * VAEAS_SPARSE_CH
            w = min(<Py_ssize_t>VAEAS_SPARSE_CH, H - c0)
            for i in range(B):      # row i of out combines the rows of W that x[i] uses
                _rowcomb(&idx[i, 0], &val[i, 0], cnt[i], &W[0, c0], H, w, &out[i, c0])


def rows_t_matmul(const int32_t[:, ::1] idx, const floating[:, ::1] val,
                  const int32_t[::1] cnt,     # IN  x as padded rows (B, D)
                  const floating[:, ::1] delta,  # IN  (B, H)
                  floating[:, ::1] dW,        # OUT (D, H) = x.T @ delta
                  int32_t[::1] cptr,          # SCRATCH (D + 1,)
                  int32_t[::1] crow,          # SCRATCH (>= nnz,)
                  floating[::1] cval,         # SCRATCH (>= nnz,)
                  int n_threads=1,
                  bint columns_ready=False):  # IN  cptr, crow, cval hold x's columns
    """dW = x.T @ delta for x given as padded sparse rows (x's columns built on the way,
    unless ``columns_ready``: ``load_rows_cols`` built them)."""
    cdef Py_ssize_t B = idx.shape[0], D = idx.shape[1], H = delta.shape[1]
    cdef Py_ssize_t q, c0, w, j
    cdef int built = 0
    cdef Py_ssize_t nq = (H + VAEAS_SPARSE_CH - 1) // VAEAS_SPARSE_CH
    if (val.shape[0] != B or val.shape[1] != D or cnt.shape[0] != B or delta.shape[0] != B
            or dW.shape[0] != D or dW.shape[1] != H or cptr.shape[0] != D + 1):
        raise ValueError("rows_t_matmul: shapes do not match (x (B, D) rows, delta (B, H), "
                         "dW (D, H), cptr (D + 1,))")
    cdef Py_ssize_t nnz = _nonzeros(cnt, D, "rows_t_matmul")
    if crow.shape[0] < max(nnz, 1) or cval.shape[0] < max(nnz, 1):
        raise ValueError(f"rows_t_matmul: crow and cval need >= {max(nnz, 1)} entries")
    if D == 0 or H == 0:
        return
    if B == 0:
        dW[:, :] = 0
        return
    cdef int nt = n_threads if nnz * H >= _SERIAL_BELOW else 1
    if columns_ready and cptr[D] != nnz:
        raise ValueError(f"rows_t_matmul: the columns hold {cptr[D]} nonzeros, the rows "
                         f"{nnz}: load the batch again")
    with nogil:
        if not columns_ready:       # x's columns (CSC), rows ascending (sparse_rows.h)
            if floating is float:
                vaeas_rows_to_columns_f32(&idx[0, 0], &val[0, 0], &cnt[0], B, D, &cptr[0],
                                          &crow[0], &cval[0], nnz, &built)
            else:
                vaeas_rows_to_columns_f64(&idx[0, 0], &val[0, 0], &cnt[0], B, D, &cptr[0],
                                          &crow[0], &cval[0], nnz, &built)
        for q in prange(nq, num_threads=nt, schedule="static"):
            c0 = q * VAEAS_SPARSE_CH
            w = min(<Py_ssize_t>VAEAS_SPARSE_CH, H - c0)
            for j in range(D):      # row j of dW combines the rows of delta where x[:, j] != 0
                _rowcomb(&crow[cptr[j]], &cval[cptr[j]], cptr[j + 1] - cptr[j], &delta[0, c0],
                         H, w, &dW[j, c0])
