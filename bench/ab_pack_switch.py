"""A/B switch for bench/ab_toggle.py: 1 = the GEMM packs a transposed A's row panels (the
weight gradients, sixteenth round), 0 = reads x^T in place; in both copies of the GEMM (the
layer calls' and the one-call backward's).

    cd bench && python ab_toggle.py ab_pack_switch.switch --pairs 40
"""
from vaeas_np._ext import backprop, gemm


def switch(on):
    gemm._set_pack(on)
    backprop._set_pack(on)
