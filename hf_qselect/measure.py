"""Measuring: interleaved timing loops and mean ± std summaries, for the library's latency tables and the benchmarks.

Timing several things in interleaved rounds (each round runs every one in turn) makes a change in machine load hit
them all alike; the median over rounds is what is reported.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np


def interleaved_seconds(runners: dict[str, Callable[[], object]], rounds: int = 5, repeats: int = 1,
                        warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of every call of each runner: ``warmup`` untimed calls each, then ``rounds`` rounds in which each runner
    is called ``repeats`` times in turn. Runs under ``torch.inference_mode`` when torch is loaded."""
    import contextlib
    import sys

    context = sys.modules["torch"].inference_mode() if "torch" in sys.modules else contextlib.nullcontext()
    times: dict[str, list[float]] = {name: [] for name in runners}
    with context:
        for run in runners.values():
            for _ in range(warmup):
                run()
        for _ in range(rounds):
            for name, run in runners.items():
                for _ in range(repeats):
                    start = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - start)
    return times


def median_ms(fn: Callable[[], object], repeats: int = 9, warmup: int = 2) -> float:
    """Median milliseconds of ``fn`` over ``repeats`` calls after ``warmup`` untimed ones."""
    return 1000.0 * float(np.median(interleaved_seconds({"fn": fn}, rounds=repeats, warmup=warmup)["fn"]))


def mean_std(values: list[float], digits: int = 4, scale: float = 1.0, sign: bool = False) -> str:
    """``"mean ± std"`` of ``values`` times ``scale`` (the mean alone for one value); ``sign`` writes ``+`` too."""
    text = f"{scale * statistics.mean(values):{'+' if sign else ''}.{digits}f}"
    return text + (f" ± {scale * statistics.stdev(values):.{digits}f}" if len(values) > 1 else "")
