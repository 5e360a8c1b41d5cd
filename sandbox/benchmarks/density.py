"""`manage.py bench density`: start N idle sandboxes and measure the host memory each one costs."""
from __future__ import annotations

import math
import secrets
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from typing import Callable, Iterator

from django.conf import settings
from django.db import connections

from .. import services
from ..engine.docker import EngineError
from ..models import Sandbox
from ..states import FINAL, State
from . import BenchError
from .host import cgroup_memory, daemons_rss, machine_facts, mem_available, shim_pss
from .results import verdicts
from .sandbox import bench_user, stop_all


@contextmanager
def _interrupts_raise() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C so the finally blocks clean up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def bench_density(*, count: int, learners: int = 4, concurrency: int = 4, settle_seconds: float = 10,
                  progress: Callable[[str], None] = lambda line: None) -> dict:
    """Starts `count` idle sandboxes through sandbox_request (provisioned inline), measures memory, removes them."""
    from config.celery import app as celery_app

    per_learner = math.ceil(count / learners)
    settings.SANDCLOUD["MAX_PER_LEARNER"] = per_learner
    settings.SANDCLOUD["WARM_POOL_SIZE"] = 0
    # Idle sandboxes are what this measures: admission by committed memory (limits × count) would stop it near 280 on
    # this machine, so the bench commits what `count` needs. The parent cgroup's hard limit still holds.
    settings.SANDCLOUD["MAX_PER_HOST"] = max(settings.SANDCLOUD["MAX_PER_HOST"], count)
    settings.SANDCLOUD["MEMORY_OVERCOMMIT"] = max(settings.SANDCLOUD["MEMORY_OVERCOMMIT"], count)
    # No worker listens to this instance's queue: run the provisioning task inline, the same code a worker runs.
    celery_app.conf.task_always_eager = True
    users = [bench_user(100 + n, secrets.token_urlsafe(16)) for n in range(learners)]
    busy = Sandbox.objects.filter(owner__in=users).exclude(state__in=FINAL).count()
    if busy:
        raise BenchError(f"the density bench users still have {busy} active sandboxes; stop them first")
    started: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()

    def start_one(n: int) -> None:
        try:
            sandbox = services.sandbox_request(owner=users[n % learners])
            with lock:
                started.append(sandbox.pk)
            sandbox.refresh_from_db()
            if sandbox.state != State.RUNNING:
                raise BenchError(f"sandbox {sandbox.pk} is {sandbox.state}: {sandbox.failure_reason}")
        finally:
            connections.close_all()

    result: dict = {"requested": count, "learners": learners, "concurrency": concurrency}
    with _interrupts_raise():
        try:
            time.sleep(1)
            before = [mem_available() for _ in range(3)]
            daemons_before = daemons_rss()
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                futures = [pool.submit(start_one, n) for n in range(count)]
                try:
                    for done, future in enumerate(as_completed(futures), 1):
                        try:
                            future.result()
                        except (services.SandboxError, EngineError, BenchError) as error:
                            failures.append(str(error))
                            if len(failures) >= 3:
                                break  # the host is full or refusing: measure what we reached
                        if done % 25 == 0:
                            progress(f"{done}/{count} started ({time.perf_counter() - t0:.1f} s)")
                finally:
                    for future in futures:
                        future.cancel()
            total_s = time.perf_counter() - t0
            running = list(Sandbox.objects.filter(pk__in=started, state=State.RUNNING))
            progress(f"{len(running)} running after {total_s:.1f} s; letting them settle {settle_seconds:.0f} s")
            time.sleep(settle_seconds)
            after = [mem_available() for _ in range(3)]
            daemons_growth = daemons_rss() - daemons_before
            reached = len(running)
            cgroups = [m for m in (cgroup_memory(s.container_id) for s in running) if m is not None]
            shims = shim_pss({s.container_id for s in running})
            mb = 2**20
            host_delta = (sum(before) / len(before) - sum(after) / len(after))
            result.update({
                "reached": reached,
                "total_start_s": round(total_s, 2),
                "start_per_sandbox_ms": round(total_s * 1000 / reached, 1) if reached else None,
                "host_memory_per_sandbox_mb": round(host_delta / reached / mb, 2) if reached else None,
                "cgroup_usage_per_sandbox_mb": round(sum(m["usage"] for m in cgroups) / len(cgroups) / mb, 2)
                if cgroups else None,
                "cgroup_rss_per_sandbox_mb": round(sum(m["rss"] for m in cgroups) / len(cgroups) / mb, 2)
                if cgroups else None,
                "cgroup_cache_per_sandbox_mb": round(sum(m["cache"] for m in cgroups) / len(cgroups) / mb, 2)
                if cgroups else None,
                "cgroup_kernel_per_sandbox_mb": round(sum(m["kernel"] for m in cgroups) / len(cgroups) / mb, 2)
                if cgroups else None,
                "shim_pss_per_sandbox_mb": round(shims / reached / mb, 2) if reached else None,
                "daemons_rss_growth_per_sandbox_mb": round(daemons_growth / reached / mb, 2) if reached else None,
                # What the parts add up to; unlike MemAvailable it is not moved by other work on the host.
                "accounted_per_sandbox_mb": round((sum(m["usage"] for m in cgroups) + shims + daemons_growth)
                                                  / reached / mb, 2) if reached and cgroups else None,
                "mem_available_before_mb": round(sum(before) / len(before) / mb),
                "mem_available_after_mb": round(sum(after) / len(after) / mb),
                "failures": failures[:3],
            })
            # Less than the containers' own cgroups is impossible unless other work on the host freed memory meanwhile.
            result["host_delta_disturbed"] = bool(
                reached and cgroups and result["host_memory_per_sandbox_mb"] < result["cgroup_usage_per_sandbox_mb"])
        finally:
            progress(f"removing {len(started)} sandboxes")
            cleanup_t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                chunks = [started[n::concurrency] for n in range(concurrency)]
                list(pool.map(lambda ids: (stop_all(ids), connections.close_all()), chunks))
            result["cleanup_s"] = round(time.perf_counter() - cleanup_t0, 2)
    result["machine"] = machine_facts()
    result["targets"] = verdicts(result)
    return result
