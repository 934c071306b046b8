"""The timing helper the small bench scripts share."""
import time

import numpy as np


def median_us(f, n=200, warmup=10):
    """Median wall time of ``n`` calls of ``f()`` after ``warmup`` calls, in microseconds."""
    for _ in range(warmup):
        f()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e6
