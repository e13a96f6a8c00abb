"""The clock of the PyTorch reference scripts in this folder."""

import statistics
import time


def median_ms(f, warmup=3, runs=10):
    """Median wall time of `f()` in milliseconds over `runs` calls after `warmup` calls."""
    for _ in range(warmup):
        f()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)
