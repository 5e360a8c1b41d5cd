"""`manage.py bench files`: how long the editor waits to list a folder, open a file and save it, through Django's
request handling into a real running sandbox, beside a bare `docker exec true` (the floor every operation pays)."""
from __future__ import annotations

import json
import time
from typing import Callable

from django.conf import settings
from django.test import Client
from django.urls import reverse

from config.celery import app as celery_app

from .. import services as sandbox_services
from ..benchmarks import BenchError
from ..benchmarks.host import machine_facts
from ..benchmarks.results import summarize
from ..benchmarks.sandbox import bench_user, stop_all
from ..engine.docker import engine
from ..engine.images import LEARNER_GID
from ..models import Sandbox
from ..states import FINAL, State

# Our own targets (the issue names none): opening and saving an ordinary file should feel immediate.
TARGETS = {"open_ms": ("p50", 150.0), "save_ms": ("p50", 150.0), "list_ms": ("p50", 150.0)}


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def _ok(response, what: str):
    if response.status_code >= 300:
        raise BenchError(f"{what} answered {response.status_code}: {response.content[:200]!r}")
    return response


def bench_files(*, runs: int, progress: Callable[[str], None] = lambda line: None) -> dict:
    user = bench_user(80, "bench-files")
    if Sandbox.objects.filter(owner=user).exclude(state__in=FINAL).exists():
        raise BenchError(f"{user} still has active sandboxes from another run; stop them first")
    celery_app.conf.task_always_eager = True  # the sandbox starts in this process; the editor's path is what is timed
    sandbox = sandbox_services.sandbox_request(owner=user)
    sandbox.refresh_from_db()
    if sandbox.state != State.RUNNING:
        raise BenchError(f"the sandbox did not start: {sandbox.failure_reason}")
    try:
        client = Client(SERVER_NAME=settings.ALLOWED_HOSTS[0])
        client.force_login(user)
        url = {name: reverse(f"files-{name}", args=[sandbox.pk]) for name in ("list", "read", "write")}
        text = "".join(f"line {n}: print('hello, editor')\n" for n in range(100))  # a 3 KB source file
        big = "x" * (1024 * 1024 - 1)

        def save(path: str, content: str, mtime) -> float:
            response = _ok(client.post(url["write"], json.dumps({"path": path, "content": content, "mtime": mtime}),
                                       content_type="application/json"), "save")
            return response.json()["mtime"]

        mtime = save("bench/app.py", text, None)
        big_mtime = save("bench/big.txt", big, None)
        samples: dict[str, list[float]] = {name: [] for name in ("exec_true_ms", "list_ms", "open_ms", "save_ms",
                                                                 "open_1mb_ms", "save_1mb_ms")}
        progress(f"sandbox {sandbox.pk} running; {runs} runs of each operation")
        for _ in range(runs):
            samples["exec_true_ms"].append(_timed(lambda: engine().exec(
                sandbox.container_id, ["true"], user=f"{sandbox.uid}:{LEARNER_GID}")))
            samples["list_ms"].append(_timed(lambda: _ok(client.get(url["list"], {"path": "bench"}), "list")))
            samples["open_ms"].append(_timed(lambda: _ok(client.get(url["read"], {"path": "bench/app.py"}), "open")))
            started = time.perf_counter()
            mtime = save("bench/app.py", text, mtime)
            samples["save_ms"].append((time.perf_counter() - started) * 1000)
            samples["open_1mb_ms"].append(_timed(lambda: _ok(client.get(url["read"], {"path": "bench/big.txt"}),
                                                             "open 1 MB")))
            started = time.perf_counter()
            big_mtime = save("bench/big.txt", big, big_mtime)
            samples["save_1mb_ms"].append((time.perf_counter() - started) * 1000)
    finally:
        stop_all([sandbox.pk])
    result: dict = {name: summarize(values) for name, values in samples.items()}
    result["targets"] = {
        name: {"stat": key, "measured": result[name][key], "target": limit, "met": result[name][key] <= limit}
        for name, (key, limit) in TARGETS.items()}
    result["machine"] = machine_facts()
    return result
