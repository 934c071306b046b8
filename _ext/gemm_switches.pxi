# Included by gemm.pyx and backprop.pyx: the switches and counters of gemm.h, for A/B runs
# and tests (the bits never depend on them).  gemm.h's state is static, so each module that
# includes the header has its own copy: these functions set and read the including
# module's (gemm: the layers' calls; backprop: the one-call backward's).

cdef extern from "gemm.h" nogil:
    int vaeas_gemm_steal
    int vaeas_gemm_pack_on
    long vaeas_gemm_packed
    int vaeas_gemm_pack_b_on
    long vaeas_gemm_packed_b


def _set_balanced(int on):
    """With ``on`` false each thread does only its own equal share of a product's units
    and never takes what another has left (the split before the twelfth round); for
    A/B measurements and the tests: the bits are the same either way."""
    global vaeas_gemm_steal
    vaeas_gemm_steal = on


def _set_pack(int on):
    """With ``on`` false the GEMM reads a transposed A in place instead of packing a row
    panel's rows first (gemm.h, vaeas_gemm_pack_on; for A/B runs and tests: the same
    bits)."""
    global vaeas_gemm_pack_on
    vaeas_gemm_pack_on = on


def _packed_panels():
    """How many row panels of a transposed A this module's GEMM has packed (tests)."""
    return vaeas_gemm_packed


def _set_pack_b(int on):
    """With ``on`` false the GEMM reads B in place where its rows are a multiple of 4 KB
    apart instead of packing each strip first (for A/B runs and tests: the same bits)."""
    global vaeas_gemm_pack_b_on
    vaeas_gemm_pack_b_on = on


def _packed_b_strips():
    """How many strips of B this module's GEMM has packed (tests)."""
    return vaeas_gemm_packed_b
