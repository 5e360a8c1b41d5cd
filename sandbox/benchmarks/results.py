"""Percentile summaries of a benchmark's samples and the targets they are held to."""
from __future__ import annotations

import math

TARGETS = {
    "warm_ready_ms": ("p50", 150.0),
    "cold_ready_ms": ("p50", 800.0),
    "echo_rtt_ms": ("p95", 30.0),
    "log_latency_ms": ("p95", 100.0),
    "host_memory_per_sandbox_mb": ("value", 25.0),
    "accounted_per_sandbox_mb": ("value", 25.0),
}


# --- pure helpers (unit-tested) --------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks, as numpy's default does."""
    if not values:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0-100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: list[float], *, keys: tuple[str, ...] = ("p50", "p95")) -> dict:
    """{"p50": .., "p95": .., "n": ..} rounded to 0.1 ms; empty samples give None values so a failed probe shows."""
    summary: dict = {key: (round(percentile(values, float(key[1:])), 1) if values else None) for key in keys}
    summary["n"] = len(values)
    return summary


def verdicts(result: dict) -> dict[str, dict]:
    """For each target the measured value, the limit and whether it was met."""
    out = {}
    for name, (key, limit) in TARGETS.items():
        measured = result.get(name)
        value = measured.get(key) if isinstance(measured, dict) else measured
        if value is None:
            continue
        out[name] = {"stat": key, "measured": value, "target": limit, "met": value <= limit}
    return out
