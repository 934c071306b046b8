"""Compiled kernels (built from the top-level ``_ext/*.pyx`` sources).

OpenMP threads of these kernels share the cores with OpenBLAS's own thread
pool.  With OpenMP's default (active, spinning) wait policy, idle OpenMP
workers burn the cores that the next GEMM needs, which made GEMMs up to 10x
slower here; so unless the user chose otherwise, OpenMP workers sleep when
idle.  This must be set before libgomp is loaded (first kernel import).
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
