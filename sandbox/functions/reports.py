"""What an invocation writes to its log and costs, in AWS's exact words and prices. Pure: no Docker, no database."""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

# x86, us-east-1 (AWS-FACTS): per request, and per GB-second billed in 1 ms steps.
PRICE_PER_REQUEST = 0.20 / 1_000_000
PRICE_PER_GB_SECOND = 0.0000166667
FREE_REQUESTS = 1_000_000
FREE_GB_SECONDS = 400_000
RUNTIME_VERSION = "python:3.11.sandcloud1"


def iso_ms(epoch_ms: int) -> str:
    moment = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def billed_ms(*, duration_ms: float, init_ms: float | None) -> int:
    """The integer ceiling of the duration, with the init phase included (billed for on-demand zip functions since
    August 2025)."""
    return max(1, math.ceil(duration_ms + (init_ms or 0)))


def start_line(*, request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(*, request_id: str) -> str:
    return f"END RequestId: {request_id}"


def init_start_line(*, region: str) -> str:
    return (f"INIT_START Runtime Version: {RUNTIME_VERSION}\tRuntime Version ARN: "
            f"arn:aws:lambda:{region}::runtime:sandcloud-python311")


def init_report_line(*, init_ms: float, status: str, error_type: str = "") -> str:
    line = f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\tStatus: {status}"
    return line + (f"\tError Type: {error_type}" if error_type else "")


def timeout_line(*, epoch_ms: int, request_id: str, timeout_s: int) -> str:
    return f"{iso_ms(epoch_ms)} {request_id} Task timed out after {timeout_s:.2f} seconds"


@dataclass(frozen=True)
class Report:
    request_id: str
    duration_ms: float
    billed_ms: int
    memory_size: int
    max_memory_used: int
    init_ms: float | None = None
    status: str = ""  # "", "timeout" or "error"
    error_type: str = ""

    def line(self) -> str:
        fields = [f"REPORT RequestId: {self.request_id}", f"Duration: {self.duration_ms:.2f} ms",
                  f"Billed Duration: {self.billed_ms} ms", f"Memory Size: {self.memory_size} MB",
                  f"Max Memory Used: {self.max_memory_used} MB"]
        if self.init_ms is not None:
            fields.append(f"Init Duration: {self.init_ms:.2f} ms")
        if self.status:
            fields.append(f"Status: {self.status}")
        if self.error_type:
            fields.append(f"Error Type: {self.error_type}")
        return "\t".join(fields) + "\t"


def cost_usd(*, requests: int, gb_seconds: float) -> float:
    return requests * PRICE_PER_REQUEST + gb_seconds * PRICE_PER_GB_SECOND


def gb_seconds(*, memory_mb: int, billed: int) -> float:
    return memory_mb / 1024 * billed / 1000


def cpus_for_memory(memory_mb: int, *, host_cpus: float) -> float:
    """CPU grows with memory as on AWS: 1,769 MB is one vCPU; never more than the host has."""
    return round(min(memory_mb / 1769, host_cpus), 3)
