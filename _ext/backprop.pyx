# cython: language_level=3
"""A dense MLP's training backward with Adam in one compiled call (``_ext/backprop.h``).

``BackwardPlan(n)`` holds n layers, top first, each set once with :meth:`set_layer`
(pointers into arrays that the plan keeps alive: the MLP's work buffers, its
parameters, Adam's moments); :meth:`run` then takes the top layer's delta and the
bottom layer's input, which may change from call to call, and runs every layer's
backward and Adam step in one OpenMP region.  ``vaeas_np.nn.layers.MLP.backward``
builds one per batch size and uses it where every layer qualifies; the bits equal
those of its Python path.
"""
from libc.stdlib cimport calloc, free

cdef extern from "adam.h" nogil:
    ctypedef struct vaeas_adam_t:
        float scale
    vaeas_adam_t vaeas_adam_consts(double lr, double beta1, double beta2, double eps,
                                   long step, double scale)

cdef extern from "backprop.h" nogil:
    int VAEAS_BACKPROP_AVAILABLE
    ctypedef struct vaeas_bwd_layer_t:
        Py_ssize_t n_in, n_out
        const float* x
        float* W
        float* mW
        float* vW
        float* b
        float* mb
        float* vb
        float* delta
        float* delta_t
        int delta_t_ready
        float* gb
        float* dx_t
        float* dx
        const float* y_below
        int keep_t
    void vaeas_mlp_backward_adam(const vaeas_bwd_layer_t* layers, int n_layers, Py_ssize_t B,
                                 const vaeas_adam_t* adam, int n_threads)


def available():
    """True when this build has the fused backward (the compiled GEMM, AVX-512F)."""
    return VAEAS_BACKPROP_AVAILABLE != 0


cdef class BackwardPlan:
    cdef vaeas_bwd_layer_t* layers
    cdef int n
    cdef Py_ssize_t B
    cdef list keep                  # the arrays the pointers point into

    def __cinit__(self, int n_layers, Py_ssize_t batch):
        if n_layers < 1 or batch < 1:
            raise ValueError("BackwardPlan: at least one layer and one row")
        self.layers = <vaeas_bwd_layer_t*>calloc(n_layers, sizeof(vaeas_bwd_layer_t))
        if self.layers == NULL:
            raise MemoryError()
        self.n, self.B, self.keep = n_layers, batch, []

    def __dealloc__(self):
        free(self.layers)

    def set_layer(self, int l,
                  const float[:, ::1] x,        # IN  (B, n_in) the layer's input
                  float[:, ::1] W, float[:, ::1] mW, float[:, ::1] vW,   # IN/OUT (n_in, n_out)
                  float[::1] b, float[::1] mb, float[::1] vb,            # IN/OUT (n_out,)
                  float[:, ::1] delta,          # IN  (B, n_out) dL/d(pre-activation)
                  float[:, ::1] delta_t,        # IN/OUT (n_out, B)
                  bint delta_t_ready,           # the layer above left delta^T in delta_t
                  float[::1] gb,                # scratch (n_out,)
                  float[:, ::1] dx_t,           # OUT (n_in, B), or None: no dL/dx
                  float[:, ::1] dx,             # OUT (B, n_in), or None
                  const float[:, ::1] y_below,  # IN  (B, n_in) ReLU outputs below, or None
                  bint keep_t):                 # leave the masked dL/dx in dx_t
        if not 0 <= l < self.n:
            raise IndexError(f"BackwardPlan.set_layer: layer {l} of {self.n}")
        cdef Py_ssize_t B = self.B, n_in = W.shape[0], n_out = W.shape[1]
        if (x.shape[0] != B or x.shape[1] != n_in or mW.shape[0] != n_in
                or mW.shape[1] != n_out or vW.shape[0] != n_in or vW.shape[1] != n_out
                or b.shape[0] != n_out or mb.shape[0] != n_out or vb.shape[0] != n_out
                or delta.shape[0] != B or delta.shape[1] != n_out or delta_t.shape[0] != n_out
                or delta_t.shape[1] != B or gb.shape[0] != n_out):
            raise ValueError(f"BackwardPlan.set_layer: layer {l}'s arrays do not match "
                             f"({B}, {n_in}) x ({n_in}, {n_out})")
        if (dx_t is None) != (dx is None):
            raise ValueError("BackwardPlan.set_layer: dx_t and dx go together")
        if dx_t is not None and (dx_t.shape[0] != n_in or dx_t.shape[1] != B
                                 or dx.shape[0] != B or dx.shape[1] != n_in):
            raise ValueError(f"BackwardPlan.set_layer: dx_t must be ({n_in}, {B}) and dx "
                             f"({B}, {n_in})")
        if y_below is not None and (y_below.shape[0] != B or y_below.shape[1] != n_in):
            raise ValueError(f"BackwardPlan.set_layer: y_below must be ({B}, {n_in})")
        cdef vaeas_bwd_layer_t* L = &self.layers[l]
        L.n_in, L.n_out = n_in, n_out
        L.x = &x[0, 0] if n_in > 0 else NULL
        L.W, L.mW, L.vW = &W[0, 0], &mW[0, 0], &vW[0, 0]
        L.b, L.mb, L.vb = &b[0], &mb[0], &vb[0]
        L.delta, L.delta_t, L.delta_t_ready = &delta[0, 0], &delta_t[0, 0], delta_t_ready
        L.gb = &gb[0]
        L.dx_t = &dx_t[0, 0] if dx_t is not None else NULL
        L.dx = &dx[0, 0] if dx is not None else NULL
        L.y_below = &y_below[0, 0] if y_below is not None else NULL
        L.keep_t = keep_t
        self.keep.append((x, W, mW, vW, b, mb, vb, delta, delta_t, gb, dx_t, dx, y_below))

    def run(self,
            float[:, ::1] top_delta,        # IN  (B, n_out of the top layer), this call's
            const float[:, ::1] bottom_x,   # IN  (B, n_in of the bottom layer), this call's
            double lr, double beta1, double beta2, double eps, long step, double scale,
            int n_threads):
        """Every layer's backward and Adam step (``step`` counts from 1), top down."""
        cdef vaeas_bwd_layer_t* top = &self.layers[0]
        cdef vaeas_bwd_layer_t* bottom = &self.layers[self.n - 1]
        if top_delta.shape[0] != self.B or top_delta.shape[1] != top.n_out:
            raise ValueError(f"BackwardPlan.run: top_delta must be ({self.B}, {top.n_out})")
        if bottom_x.shape[0] != self.B or bottom_x.shape[1] != bottom.n_in:
            raise ValueError(f"BackwardPlan.run: bottom_x must be ({self.B}, {bottom.n_in})")
        if n_threads < 1:
            raise ValueError("BackwardPlan.run: n_threads must be >= 1")
        top.delta = &top_delta[0, 0]
        bottom.x = &bottom_x[0, 0]
        cdef vaeas_adam_t adam = vaeas_adam_consts(lr, beta1, beta2, eps, step, scale)
        with nogil:
            vaeas_mlp_backward_adam(self.layers, self.n, self.B, &adam, n_threads)


include "gemm_switches.pxi"
