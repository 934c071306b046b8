# cython: language_level=3
"""Hierarchical-softmax kernels (binary tree, fastText-style flat paths).

Notation: ``H`` (B, h) inputs; ``Wb`` (R, h+1) node matrix, row n = (w_n, b_n);
label e has path ``paths[e, :lengths[e]]`` with ``codes`` (1 = left) and

    score_j = w_n . h + b_n,   n = paths[e, j]
    log s(e | h) = sum_j log_sigmoid(sign_j * score_j),   sign_j = 2 codes[e, j] - 1

with the exact stable ``log_sigmoid(x) = min(x, 0) - log1p(exp(-|x|))``
(no tables, no skipped nodes).  For an upstream gradient ``dlogp`` of logp:

    g_j = dlogp * (codes[e, j] - sigmoid(score_j))
    dH[b] = sum_j g_j w_n ,   d(w_n, b_n) = sum over occurrences (b, j) of n of g_j (H[b], 1)

Node gradients are race-free: the occurrences (b, j) are grouped by node in
a CSR built serially (O(B depth)), then each distinct node sums its own
occurrences (in increasing b) into its own row, in parallel over nodes.
Results do not depend on the number of threads.  In training the rows are not
stored: ``node_rows_adam`` forms each one in a per-thread scratch row and applies
the lazy Adam update to its node at once (``node_rows`` forms them on request).
NumPy references: ``vaeas_np.softmax.reference.hs_forward`` / ``hs_backward`` /
``sparse_adam``.
"""
from libc.float cimport DBL_MIN, FLT_MIN
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport exp, log1p, fabs, fabsf, sqrt, sqrtf, pow
from libc.stdint cimport int64_t


cdef extern from "vmath.h" nogil:
    double vaeas_dot_f32(const float* a, const float* b, Py_ssize_t n)
    double vaeas_dot_f64(const double* a, const double* b, Py_ssize_t n)
    double vaeas_path_logsig_f32(float* s, const signed char* code, Py_ssize_t L)
    void vaeas_prefetch_span(const void* p, Py_ssize_t nbytes, int write)


# How many node rows ahead the forward prefetches along a path, and whether the
# fused node-row Adam prefetches the next node's parameter and moment rows
# (0: neither; a switch for paired A/B runs, bench/ab_toggle.py).
cdef int _prefetch_rows = 2


def _set_prefetch(int rows_ahead):
    """Node rows prefetched ahead in the kernels (0 turns prefetching off)."""
    global _prefetch_rows
    _prefetch_rows = max(rows_ahead, 0)


cdef inline double _dot(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    """sum_i a[i] b[i] (vectorised C: _ext/vmath.h)."""
    if floating is float:
        return vaeas_dot_f32(a, b, n)
    else:
        return vaeas_dot_f64(a, b, n)


cdef inline void _axpy(floating a, const floating* x, floating* y, Py_ssize_t n) noexcept nogil:
    """y += a x"""
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = y[i] + a * x[i]


cdef inline void _zero(floating* y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = 0


cdef void _forward_row(const floating* x, const floating* Wb, Py_ssize_t h,
                       const int64_t* path, const signed char* code, Py_ssize_t L,
                       floating* logp, floating* sig, int pf) noexcept nogil:
    cdef Py_ssize_t j
    cdef const floating* w
    cdef double s, e, t, acc = 0.0
    if floating is float:
        # the scores into sig, then the path's log-sigmoids and sigmoids as one SIMD loop
        # (row j + pf is fetched while row j's dot product runs)
        for j in range(1, min(pf, L)):
            vaeas_prefetch_span(Wb + path[j] * (h + 1), (h + 1) * sizeof(floating), 0)
        for j in range(L):
            if j + pf < L:
                vaeas_prefetch_span(Wb + path[j + pf] * (h + 1), (h + 1) * sizeof(floating), 0)
            w = Wb + path[j] * (h + 1)
            sig[j] = <float>(_dot(x, w, h) + w[h])
        logp[0] = <float>vaeas_path_logsig_f32(sig, code, L)
        return
    for j in range(L):
        w = Wb + path[j] * (h + 1)
        s = _dot(x, w, h) + w[h]
        # one exp for both: e = exp(-|s|), log sigmoid(+-s) = min(+-s, 0) - log1p(e),
        # sigmoid(s) = 1 / (1 + e) for s >= 0 and e / (1 + e) otherwise
        e = exp(-fabs(s))
        t = s if code[j] else -s
        acc = acc + (t if t < 0.0 else 0.0) - log1p(e)
        sig[j] = <floating>((1.0 if s >= 0.0 else e) / (1.0 + e))
    logp[0] = <floating>acc


def _check_common(Py_ssize_t B, Py_ssize_t h, Py_ssize_t R, Py_ssize_t V,
                  Py_ssize_t D, labels, paths, codes, lengths, Wb_cols):
    if Wb_cols != h + 1:
        raise ValueError(f"hsoftmax: Wb must have h + 1 = {h + 1} columns, got {Wb_cols}")
    if labels.shape[0] != B:
        raise ValueError("hsoftmax: labels must have shape (B,)")
    if codes.shape[0] != V or codes.shape[1] != D or lengths.shape[0] != V:
        raise ValueError("hsoftmax: paths (V, D), codes (V, D), lengths (V,) disagree")


cdef Py_ssize_t _group(const int64_t* labels, Py_ssize_t B, const int64_t* paths,
                       Py_ssize_t D, const int64_t* lengths, int64_t* node_slot,
                       int64_t* touched, int64_t* offsets, int64_t* cursor,
                       int64_t* occ) noexcept nogil:
    """The occurrences (b, j) of the batch's path nodes grouped by node, as a CSR: the
    distinct nodes ``touched[:k]`` in first-seen order, node i's occurrences
    ``occ[offsets[i]:offsets[i + 1]]`` (as b * D + j, b increasing).  Serial, O(B D);
    ``node_slot`` is all -1 on entry and on exit.  Returns k."""
    cdef Py_ssize_t b, e, j, n, s, i, k = 0
    for b in range(B):
        e = labels[b]
        for j in range(lengths[e]):
            n = paths[e * D + j]
            if node_slot[n] < 0:
                node_slot[n] = k
                touched[k] = n
                offsets[k + 1] = 0
                k = k + 1
            offsets[node_slot[n] + 1] += 1
    offsets[0] = 0
    for i in range(k):
        offsets[i + 1] += offsets[i]
        cursor[i] = offsets[i]
    for b in range(B):
        e = labels[b]
        for j in range(lengths[e]):
            s = node_slot[paths[e * D + j]]
            occ[cursor[s]] = b * D + j
            cursor[s] += 1
    for i in range(k):
        node_slot[touched[i]] = -1
    return k


def forward(const floating[:, ::1] H,        # IN  (B, h)
            const floating[:, ::1] Wb,       # IN  (R, h+1) node rows (w_n, b_n)
            const int64_t[::1] labels,       # IN  (B,) in [0, V)
            const int64_t[:, ::1] paths,     # IN  (V, D) node ids
            const signed char[:, ::1] codes, # IN  (V, D) 1 = left
            const int64_t[::1] lengths,      # IN  (V,)
            floating[::1] logp,              # OUT (B,) log s(label | h)
            floating[:, ::1] sig,            # OUT (B, D) sigmoid(score) along the path
            int n_threads=1,
            floating[:, ::1] g=None,         # OUT (B, D) code - sig, when given
            floating[:, ::1] dH=None,        # OUT (B, h) d logp / dH, with g
            int64_t[::1] node_slot=None,     # IN/OUT (R,) all -1 on entry and on exit
            int64_t[::1] touched=None,       # OUT as backward's, when k_out is given
            int64_t[::1] offsets=None,       # OUT
            int64_t[::1] cursor=None,        # scratch
            int64_t[::1] occ=None,           # OUT
            int64_t[::1] k_out=None):        # OUT (1,) k, the number of touched nodes
    """log s(labels[b] | H[b]) for every row b; stores the path sigmoids for backward.

    With ``g`` and ``dH`` it also computes the per-example part of ``backward``
    for ``dlogp = 1`` (g = code - sig, dH[b] = sum_j g_j w_n) right after each
    example's forward, while its path rows are still in L1/L2 (a separate pass
    reads them again from L3); ``backward(..., have_g_dH=True)`` then does only
    the node rows.  With ``k_out`` (and backward's grouping buffers) one thread also
    groups the occurrences by node, as backward does, while the others start on the
    examples (it then joins them: the examples are shared out dynamically); backward's
    ``grouped_k=k_out[0]`` then skips the grouping.  The same numbers either way.
    """
    cdef Py_ssize_t B = H.shape[0], h = H.shape[1], V = paths.shape[0], D = paths.shape[1]
    cdef Py_ssize_t b, e
    _check_common(B, h, Wb.shape[0], V, D, labels, paths, codes, lengths, Wb.shape[1])
    if logp.shape[0] != B or sig.shape[0] != B or sig.shape[1] != D:
        raise ValueError("hsoftmax.forward: logp must be (B,) and sig (B, D)")
    cdef bint grad = g is not None
    if grad and (dH is None or g.shape[0] != B or g.shape[1] != D or dH.shape[0] != B
                 or dH.shape[1] != h):
        raise ValueError("hsoftmax.forward: g must be (B, D) and dH (B, h), both or neither")
    for b in range(B):
        if labels[b] < 0 or labels[b] >= V:
            raise IndexError(f"hsoftmax.forward: label {labels[b]} outside [0, {V})")
    cdef int pf = _prefetch_rows
    cdef bint group = k_out is not None
    if group:
        if not grad:
            raise ValueError("hsoftmax.forward: grouping (k_out) needs g and dH")
        _check_grouping(B, Wb.shape[0], D, labels, lengths, node_slot, touched, offsets,
                        cursor, occ, k_out)
    if not group:
        with nogil:
            for b in prange(B, num_threads=n_threads, schedule="static"):
                e = labels[b]
                _forward_row(&H[b, 0], &Wb[0, 0], h, &paths[e, 0], &codes[e, 0], lengths[e],
                             &logp[b], &sig[b, 0], pf)
                if grad:
                    _backward_row(&Wb[0, 0], h, &paths[e, 0], &codes[e, 0], lengths[e], 1,
                                  &sig[b, 0], &g[b, 0], &dH[b, 0], True)
        return
    with nogil, parallel(num_threads=n_threads):
        if threadid() == 0:
            k_out[0] = _group(&labels[0], B, &paths[0, 0], D, &lengths[0], &node_slot[0],
                              &touched[0], &offsets[0], &cursor[0], &occ[0])
        for b in prange(B, schedule="dynamic", chunksize=4):
            e = labels[b]
            _forward_row(&H[b, 0], &Wb[0, 0], h, &paths[e, 0], &codes[e, 0], lengths[e],
                         &logp[b], &sig[b, 0], pf)
            _backward_row(&Wb[0, 0], h, &paths[e, 0], &codes[e, 0], lengths[e], 1,
                          &sig[b, 0], &g[b, 0], &dH[b, 0], True)


cdef int _check_grouping(Py_ssize_t B, Py_ssize_t R, Py_ssize_t D,
                         const int64_t[::1] labels, const int64_t[::1] lengths,
                         node_slot, touched, offsets, cursor, occ, k_out) except -1:
    """The grouping buffers exist and are large enough for this batch (labels checked)."""
    cdef Py_ssize_t b, total = 0
    if any(a is None for a in (node_slot, touched, offsets, cursor, occ)):
        raise ValueError("hsoftmax: grouping needs node_slot, touched, offsets, cursor, occ")
    if node_slot.shape[0] != R or occ.shape[0] < B * D or k_out.shape[0] < 1:
        raise ValueError("hsoftmax: node_slot (R,), occ (>= B*D,) and k_out (1,) expected")
    for b in range(B):
        total += lengths[labels[b]]
    kmax = min(touched.shape[0], cursor.shape[0], offsets.shape[0] - 1)
    if kmax < min(total, R):
        raise ValueError(f"hsoftmax: buffers hold {kmax} rows, need up to {min(total, R)}")
    return 0


cdef void _backward_row(const floating* Wb, Py_ssize_t h, const int64_t* path,
                        const signed char* code, Py_ssize_t L, floating dl,
                        const floating* sig, floating* g, floating* dh,
                        bint need_dH) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(L):
        g[j] = dl * (code[j] - sig[j])
    if need_dH:
        _zero(dh, h)
        for j in range(L):
            _axpy(g[j], Wb + path[j] * (h + 1), dh, h)


cdef void _node_row(const floating* H, Py_ssize_t h, const floating* g, Py_ssize_t D,
                    const int64_t* occ, Py_ssize_t start, Py_ssize_t stop,
                    floating* row) noexcept nogil:
    cdef Py_ssize_t o, b, j
    cdef floating gg
    cdef double gb = 0.0
    _zero(row, h)
    for o in range(start, stop):
        b = occ[o] // D
        j = occ[o] - b * D
        gg = g[b * D + j]
        _axpy(gg, H + b * h, row, h)
        gb = gb + gg
    row[h] = <floating>gb


def backward(const floating[:, ::1] H,        # IN  (B, h) the forward's input
             const floating[:, ::1] Wb,       # IN  (R, h+1)
             const int64_t[::1] labels,       # IN  (B,)
             const int64_t[:, ::1] paths,     # IN  (V, D)
             const signed char[:, ::1] codes, # IN  (V, D)
             const int64_t[::1] lengths,      # IN  (V,)
             const floating[:, ::1] sig,      # IN  (B, D) from forward
             const floating[::1] dlogp,       # IN  (B,) upstream gradient of logp
             floating[:, ::1] g,              # OUT (B, D) dlogp * (code - sig) (scratch)
             floating[:, ::1] dH,             # OUT (B, h) (left untouched if not need_dH)
             int64_t[::1] node_slot,          # IN/OUT (R,) all -1 on entry and on exit
             int64_t[::1] touched,            # OUT (>= k,) distinct node ids, first-seen order
             int64_t[::1] offsets,            # OUT (>= k+1,) CSR offsets into occ
             int64_t[::1] cursor,             # scratch (>= k,)
             int64_t[::1] occ,                # OUT (>= B*D,) occurrences b*D + j grouped by node
             floating[:, ::1] grad_rows,      # OUT (>= k, h+1) row i = gradient of node touched[i]
             bint need_dH=True,
             int n_threads=1,
             bint have_g_dH=False,
             bint form_rows=True,
             Py_ssize_t grouped_k=-1):
    """Gradients of sum_b dlogp[b] logp[b]; returns k, the number of touched nodes.

    ``have_g_dH``: ``g`` and ``dH`` already hold forward's values for dlogp = 1
    (``dlogp`` must then be all ones, and is not read); only the node rows are formed.
    ``form_rows=False``: stop after ``g``, ``dH`` and the grouping (``touched``,
    ``offsets``, ``occ``); :func:`node_rows` or :func:`node_rows_adam` form the rows later.
    ``grouped_k >= 0``: the grouping buffers already hold this batch's grouping of
    ``grouped_k`` nodes (:func:`forward` with ``k_out``).
    """
    cdef Py_ssize_t B = H.shape[0], h = H.shape[1], V = paths.shape[0], D = paths.shape[1]
    cdef Py_ssize_t R = Wb.shape[0], b, e, j, n, s, i, k = 0, total = 0
    _check_common(B, h, R, V, D, labels, paths, codes, lengths, Wb.shape[1])
    if sig.shape[0] != B or sig.shape[1] != D or g.shape[0] != B or g.shape[1] != D \
            or dlogp.shape[0] != B:
        raise ValueError("hsoftmax.backward: sig, g must be (B, D) and dlogp (B,)")
    if need_dH and (dH.shape[0] != B or dH.shape[1] != h):
        raise ValueError("hsoftmax.backward: dH must be (B, h)")
    if node_slot.shape[0] != R or grad_rows.shape[1] != h + 1 or occ.shape[0] < B * D:
        raise ValueError("hsoftmax.backward: node_slot (R,), grad_rows (k, h+1), occ (B*D,)")
    cdef Py_ssize_t kmax = min(grad_rows.shape[0], touched.shape[0], cursor.shape[0],
                               offsets.shape[0] - 1)
    for b in range(B):
        if labels[b] < 0 or labels[b] >= V:
            raise IndexError(f"hsoftmax.backward: label {labels[b]} outside [0, {V})")
        total += lengths[labels[b]]
    if kmax < min(total, R):
        raise ValueError(f"hsoftmax.backward: buffers hold {kmax} rows, need up to {min(total, R)}")
    with nogil:
        for b in prange(B if not have_g_dH else 0, num_threads=n_threads, schedule="static"):
            e = labels[b]
            _backward_row(&Wb[0, 0], h, &paths[e, 0], &codes[e, 0], lengths[e], dlogp[b],
                          &sig[b, 0], &g[b, 0], &dH[b, 0] if need_dH else NULL, need_dH)
        if grouped_k < 0:
            k = _group(&labels[0], B, &paths[0, 0], D, &lengths[0], &node_slot[0],
                       &touched[0], &offsets[0], &cursor[0], &occ[0])
        else:
            k = grouped_k
        if form_rows:
            for i in prange(k, num_threads=n_threads, schedule="guided"):
                _node_row(&H[0, 0], h, &g[0, 0], D, &occ[0], offsets[i], offsets[i + 1],
                          &grad_rows[i, 0])
    return k


cdef int _check_rows(Py_ssize_t B, Py_ssize_t gB, Py_ssize_t D, Py_ssize_t k,
                     const int64_t[::1] occ, const int64_t[::1] offsets) except -1:
    """Checks the grouping that ``backward(..., form_rows=False)`` left (O(B D), C loops)."""
    cdef Py_ssize_t i
    if gB != B:
        raise ValueError("hsoftmax: g must be (B, D) with H (B, h)")
    if k < 0 or offsets.shape[0] < k + 1:
        raise ValueError(f"hsoftmax: offsets must hold k + 1 = {k + 1} entries")
    if k and (offsets[0] != 0 or offsets[k] > occ.shape[0] or offsets[k] > B * D):
        raise ValueError("hsoftmax: offsets do not describe occurrences within (B, D)")
    for i in range(k):
        if offsets[i + 1] < offsets[i]:
            raise ValueError("hsoftmax: offsets must be non-decreasing")
    for i in range(offsets[k] if k else 0):
        if occ[i] < 0 or occ[i] >= B * D:
            raise ValueError(f"hsoftmax: occurrence {occ[i]} outside [0, {B * D})")
    return 0


cdef int _check_adam_rows(str name, const int64_t[::1] rows, Py_ssize_t R,
                          Py_ssize_t n_rates) except -1:
    """Row ids in [0, R); per-row rates (n_rates >= 0: their count) one per row of R."""
    cdef Py_ssize_t j
    for j in range(rows.shape[0]):
        if rows[j] < 0 or rows[j] >= R:
            raise IndexError(f"{name}: row id {rows[j]} outside [0, {R})")
    if n_rates >= 0 and n_rates != R:
        raise ValueError(f"{name}: row_lr must have shape ({R},)")
    return 0


def node_rows(const floating[:, ::1] H,       # IN  (B, h) the forward's input
              const floating[:, ::1] g,       # IN  (B, D) from backward
              const int64_t[::1] occ,         # IN  occurrences grouped by node (backward)
              const int64_t[::1] offsets,     # IN  (>= k+1,) CSR offsets (backward)
              Py_ssize_t k,                   # IN  number of touched nodes
              floating[:, ::1] grad_rows,     # OUT (>= k, h+1)
              int n_threads=1):
    """The node gradient rows that ``backward(..., form_rows=False)`` left out."""
    cdef Py_ssize_t B = H.shape[0], h = H.shape[1], D = g.shape[1], i
    _check_rows(B, g.shape[0], D, k, occ, offsets)
    if grad_rows.shape[0] < k or grad_rows.shape[1] != h + 1:
        raise ValueError(f"hsoftmax.node_rows: grad_rows must be (>= {k}, {h + 1})")
    if k == 0:
        return
    with nogil:
        for i in prange(k, num_threads=n_threads, schedule="guided"):
            _node_row(&H[0, 0], h, &g[0, 0], D, &occ[0], offsets[i], offsets[i + 1],
                      &grad_rows[i, 0])


def node_rows_adam(const floating[:, ::1] H,      # IN  (B, h) the forward's input
                   const floating[:, ::1] g,      # IN  (B, D) from backward
                   const int64_t[::1] occ,        # IN  occurrences grouped by node
                   const int64_t[::1] offsets,    # IN  (>= k+1,) CSR offsets
                   const int64_t[::1] rows,       # IN  (k,) the touched node ids (distinct)
                   floating[:, ::1] param,        # IN/OUT (R, h+1) node matrix Wb
                   floating[:, ::1] m,            # IN/OUT (R, h+1)
                   floating[:, ::1] v,            # IN/OUT (R, h+1)
                   floating[:, ::1] scratch,      # scratch (>= n_threads, h+1)
                   double scale, double lr, double beta1, double beta2, double eps,
                   long step, int n_threads=1,
                   const floating[::1] row_lr=None):  # IN (R,) per-row lr factor, optional
    """``node_rows`` and ``sparse_adam_scaled`` in one pass over the touched nodes.

    Each thread forms a node's gradient row in its own ``scratch`` row (it stays in
    L1) and applies the lazy Adam update to that node at once, so the k gradient rows
    are never written to memory and read back.  The same numbers as ``node_rows``
    followed by ``sparse_adam_scaled`` (the same row sums and the same update loop).
    """
    cdef Py_ssize_t B = H.shape[0], h = H.shape[1], D = g.shape[1], R = param.shape[0]
    cdef Py_ssize_t k = rows.shape[0], i, r
    cdef int tid
    _check_rows(B, g.shape[0], D, k, occ, offsets)
    if param.shape[1] != h + 1 or m.shape[0] != R or v.shape[0] != R \
            or m.shape[1] != h + 1 or v.shape[1] != h + 1:
        raise ValueError(f"hsoftmax.node_rows_adam: param, m and v must be (R, {h + 1})")
    if scratch.shape[0] < max(n_threads, 1) or scratch.shape[1] != h + 1:
        raise ValueError(f"hsoftmax.node_rows_adam: scratch must be (>= {n_threads}, {h + 1})")
    _check_adam_rows("hsoftmax.node_rows_adam", rows, R,
                     -1 if row_lr is None else row_lr.shape[0])
    cdef bint per_row = row_lr is not None
    if k == 0:
        return
    cdef const floating* lr_r = &row_lr[0] if per_row else NULL
    cdef floating step_size = <floating>(lr / (1.0 - pow(beta1, step)))
    cdef floating c2 = <floating>(1.0 / (1.0 - pow(beta2, step)))
    cdef floating* buf
    cdef int pf = _prefetch_rows
    cdef Py_ssize_t row_bytes = (h + 1) * sizeof(floating)
    with nogil:
        for i in prange(k, num_threads=n_threads, schedule="guided"):
            tid = threadid()
            buf = &scratch[tid, 0]
            if pf and i + 1 < k:            # the next node's rows (guided chunks run in order)
                r = rows[i + 1]
                vaeas_prefetch_span(&param[r, 0], row_bytes, 1)
                vaeas_prefetch_span(&m[r, 0], row_bytes, 1)
                vaeas_prefetch_span(&v[r, 0], row_bytes, 1)
            _node_row(&H[0, 0], h, &g[0, 0], D, &occ[0], offsets[i], offsets[i + 1], buf)
            r = rows[i]
            adam_span(&param[r, 0], buf, &m[r, 0], &v[r, 0], h + 1, <floating>scale,
                      <floating>beta1, <floating>beta2,
                      step_size * lr_r[r] if per_row else step_size, c2, <floating>eps)


include "adam_span.pxi"


def sparse_adam_scaled(floating[:, ::1] param,      # IN/OUT (R, n)
                       const int64_t[::1] rows,      # IN (k,) distinct row ids
                       const floating[:, ::1] grad,  # IN (>= k, n) unscaled gradient rows
                       double scale,
                       floating[:, ::1] m,          # IN/OUT (R, n)
                       floating[:, ::1] v,          # IN/OUT (R, n)
                       double lr, double beta1, double beta2, double eps, long step,
                       int n_threads=1,
                       const floating[::1] row_lr=None):  # IN (R,) per-row lr factor, optional
    """Lazy Adam on rows ``rows`` with gradient ``scale * grad`` (fused, in the array dtype).

    Same update as ``vaeas_np._ext.optim.sparse_adam_rows`` on ``scale * grad``
    (``p -= lr/(1-b1^t) * m / (sqrt(v/(1-b2^t)) + eps)``), but computed in the
    parameters' precision so that the row loop vectorises, and without a
    separate scaling pass.  With ``row_lr``, row r uses the learning rate
    ``lr * row_lr[r]``.
    """
    cdef Py_ssize_t k = rows.shape[0], n = param.shape[1], R = param.shape[0], j, r
    if grad.shape[0] < k or grad.shape[1] != n or m.shape[0] != R or v.shape[0] != R \
            or m.shape[1] != n or v.shape[1] != n:
        raise ValueError("sparse_adam_scaled: grad (>= k, n), m and v (R, n) expected")
    _check_adam_rows("sparse_adam_scaled", rows, R, -1 if row_lr is None else row_lr.shape[0])
    cdef bint per_row = row_lr is not None
    cdef const floating* lr_r = &row_lr[0] if per_row else NULL
    cdef floating step_size = <floating>(lr / (1.0 - pow(beta1, step)))
    cdef floating c2 = <floating>(1.0 / (1.0 - pow(beta2, step)))
    with nogil:
        for j in prange(k, num_threads=n_threads, schedule="static"):
            r = rows[j]
            adam_span(&param[r, 0], &grad[j, 0], &m[r, 0], &v[r, 0], n, <floating>scale,
                      <floating>beta1, <floating>beta2,
                      step_size * lr_r[r] if per_row else step_size, c2, <floating>eps)
