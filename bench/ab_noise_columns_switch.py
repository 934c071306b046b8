"""A/B switch for bench/ab_toggle.py: 1 = the noise drawn during the input loading and x's columns built there (fifteenth round), 0 = the old path (Python draw, to_rows, columns built in t_matmul).

    cd bench && python ab_toggle.py ab_noise_columns_switch.switch --pairs 40
"""
import vaeas_np.models.vae as V
from vaeas_np.nn import sparse_input as S
from vaeas_np._ext import noise, sparse_input as _sp
_new_load = S.SparseRows.load
def _old_load(self, x, n_threads=1, side=None):
    if side is not None:
        side()
    self.nnz = _sp.to_rows(x, self.idx, self.val, self.cnt, n_threads)
    self.columns_ready = False
    return self.nnz / max(x.size, 1)
def switch(on):
    V._noise = noise if on else None
    S.SparseRows.load = _new_load if on else _old_load
