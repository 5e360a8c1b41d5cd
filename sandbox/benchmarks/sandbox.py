"""`manage.py bench sandbox`: warm and cold start to a terminal prompt, keystroke echo and log line latency."""
from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

from django.conf import settings
from django.contrib.auth import get_user_model

from .. import services
from ..engine.docker import engine
from ..events import redis_client
from ..models import Sandbox, WarmContainer
from ..policy import container_name
from ..states import FINAL, State
from . import BenchError
from .host import machine_facts
from .results import percentile, summarize, verdicts
from .site import Frames, SiteClient

PROMPT = b"learner@sandbox"
MARK = re.compile(r"MARK (\d{19})\b")


def mark_latency_ms(line: str, received_ns: int) -> float | None:
    """Latency of a `MARK <ns>` log line received at `received_ns` (both from the same host clock)."""
    found = MARK.search(line)
    if not found:
        return None
    return (received_ns - int(found.group(1))) / 1e6


class PromptBuffer:
    """The terminal's byte stream so far, to find the prompt even when it is split across frames."""

    def __init__(self):
        self.data = b""

    def feed(self, frame) -> bool:
        if isinstance(frame, bytes):
            self.data = (self.data + frame)[-4096:]
        return PROMPT in self.data


def _is_running_message(frame) -> bool:
    if not isinstance(frame, str):
        return False
    message = json.loads(frame)
    if message.get("state") == State.FAILED:
        raise BenchError(f"the sandbox failed: {message.get('reason') or message.get('message')}")
    return message.get("type") in ("event", "state") and message.get("state") == State.RUNNING


@dataclass
class SandboxRun:
    """What one start-to-prompt measurement found."""

    sandbox_id: int
    cold: bool
    ready_ms: float
    phases_ms: dict[str, float] = field(default_factory=dict)
    echo_ms: list[float] = field(default_factory=list)
    log_ms: list[float] = field(default_factory=list)
    from_warm_pool: bool | None = None


async def measure_sandbox(site: SiteClient, *, cold: bool, echo_samples: int, log_samples: int) -> SandboxRun:
    """POST /sandboxes/start/ → prompt on the terminal socket; then keystroke echo and log line latency."""
    t0, t0_wall = time.perf_counter(), time.time()
    sandbox_id = await asyncio.to_thread(site.start_sandbox)
    phases = {"http_start": (time.perf_counter() - t0) * 1000}
    stream = None
    terminal = None
    try:
        if cold:
            stream = Frames(await site.websocket(sandbox_id, "stream"))
            phases["stream_open"] = (time.perf_counter() - t0) * 1000
            at, _, _ = await stream.until(_is_running_message, 60, "running state on the stream socket")
            phases["running_seen"] = (at - t0) * 1000
        terminal = Frames(await site.websocket(sandbox_id, "terminal"))
        phases["terminal_open"] = (time.perf_counter() - t0) * 1000
        screen = PromptBuffer()
        at, _, _ = await terminal.until(screen.feed, 30, "prompt on the terminal socket")
        run = SandboxRun(sandbox_id=sandbox_id, cold=cold, ready_ms=(at - t0) * 1000, phases_ms=phases)
        if cold:
            run.phases_ms.update(await asyncio.to_thread(_server_phases, sandbox_id, t0_wall))
        run.echo_ms = await _echo_rtts(terminal, echo_samples)
        if log_samples:
            if stream is None:
                stream = Frames(await site.websocket(sandbox_id, "stream"))
            run.log_ms = await _log_latencies(terminal, stream, log_samples)
        return run
    finally:
        for socket in (terminal, stream):
            if socket is not None:
                await socket.close()


def _server_phases(sandbox_id: int, t0_wall: float) -> dict[str, float]:
    """When the server published each provisioning event, in ms after the request started (same host clock)."""
    from ..events import events_recent

    names = {"Request accepted": "ev_requested", "A worker picked up": "ev_worker_pickup",
             "Preparing your private network": "ev_network", "Starting a container": "ev_container_create",
             "Your sandbox is ready": "ev_running"}
    phases = {}
    for event in events_recent(sandbox_id=sandbox_id):
        for prefix, name in names.items():
            if event["message"].startswith(prefix) and name not in phases:
                phases[name] = (event["at"] - t0_wall) * 1000
    return phases


async def _echo_rtts(terminal: Frames, samples: int) -> list[float]:
    rtts = []
    await terminal.quiet()
    for index in range(samples):
        key = "qzjxkvwy"[index % 8].encode()
        sent = time.perf_counter()
        await terminal.socket.send(key)
        at, _, _ = await terminal.until(lambda frame: isinstance(frame, bytes) and key in frame, 10, "keystroke echo")
        rtts.append((at - sent) * 1000)
        await terminal.quiet(gap=0.05)
    await terminal.socket.send(b"\x15")  # Ctrl-U: clear the typed keys off the command line
    await terminal.quiet(gap=0.05)
    return rtts


async def _log_latencies(terminal: Frames, stream: Frames, samples: int) -> list[float]:
    # The first log message is the tail replay ("sandbox ready: ..."): from then on the follower is live.
    try:
        await stream.until(lambda frame: isinstance(frame, str) and '"type": "log"' in frame, 5, "the log tail")
    except BenchError:
        pass  # an empty log has no tail to replay; the MARK lines below still show whether the follower works
    latencies = []
    for _ in range(samples):
        await terminal.socket.send(b'echo "MARK $(date +%s%N)" > /proc/1/fd/1\r')

        def has_mark(frame) -> bool:
            if not isinstance(frame, str):
                return False
            message = json.loads(frame)
            return message.get("type") == "log" and any(MARK.search(line) for line in message.get("lines", []))

        _, at_ns, frame = await stream.until(has_mark, 15, "the MARK line on the stream socket")
        line = next(line for line in json.loads(frame)["lines"] if MARK.search(line))
        latencies.append(mark_latency_ms(line, at_ns))
        await terminal.quiet(gap=0.05)
    return latencies

def bench_user(n: int, password: str):
    user, _ = get_user_model().objects.get_or_create(username=f"bench-{n}")
    user.set_password(password)
    user.save()
    return user


def _instance() -> str:
    return settings.SANDCLOUD["INSTANCE"]


def warm_pool_wait_full(size: int, timeout: float = 60) -> None:
    """Fills the pool in-process (or lets the worker's refill finish) until it holds `size` idle containers."""
    lock_key = f"sandcloud:{_instance()}:warm-pool-fill"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if WarmContainer.objects.count() >= size and not redis_client().exists(lock_key):
            return
        services.warm_pool_fill()
        time.sleep(0.05)
    raise BenchError(f"the warm pool did not reach {size} containers within {timeout:.0f} s")


def _wait_attached(sandbox: Sandbox, timeout: float = 10) -> None:
    """A claimed warm container is renamed by sandbox_attach_task; stopping before that makes the task fail."""
    wanted = container_name(_instance(), sandbox.pk)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = engine().state(sandbox.container_id)
        if state is None or state.name == wanted:
            return
        time.sleep(0.05)


def stop_all(sandbox_ids: list[int]) -> None:
    for sandbox_id in sandbox_ids:
        try:
            if Sandbox.objects.filter(pk=sandbox_id).exclude(state__in=FINAL).exists():
                services.sandbox_stop(sandbox_id=sandbox_id)
        except Exception:  # noqa: BLE001 - keep cleaning up the rest
            sandbox = Sandbox.objects.filter(pk=sandbox_id).first()
            if sandbox is not None:
                engine().remove(sandbox.container_id or container_name(_instance(), sandbox_id))


def docker_run_baseline(runs: int) -> list[float]:
    """`docker run --rm IMAGE true` via the Docker SDK, the yardstick for what one fresh container costs here."""
    client = engine().client
    image = settings.SANDCLOUD["WORKSTATION_IMAGE"]
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        client.containers.run(image, ["true"], remove=True, labels={"sandcloud.instance": _instance(),
                                                                     "sandcloud.bench": "baseline"})
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def bench_sandbox(*, runs: int, warmup: int = 1, echo_samples: int = 5, log_samples: int = 2, pool_size: int = 2,
                  per_learner: int = 50, progress: Callable[[str], None] = lambda line: None) -> dict:
    """Cold starts (empty pool), then warm starts (pool filled before each), through `make run`'s web server
    (config/webserver.py, as many daphne processes) + a real Celery worker."""
    from config.processes import running_stack
    from config.webserver import default_processes

    web_processes = default_processes()
    settings.SANDCLOUD["MAX_PER_LEARNER"] = per_learner
    settings.SANDCLOUD["WARM_POOL_SIZE"] = pool_size
    # The pool holds exactly pool_size: demand sizing (sandbox/pools) would grow it after the cold runs.
    settings.SANDCLOUD["WARM_POOL_MAX"] = pool_size
    password = secrets.token_urlsafe(16)
    user = bench_user(1, password)
    if Sandbox.objects.filter(owner=user).exclude(state__in=FINAL).exists():
        raise BenchError(f"{user} still has active sandboxes from another run; stop them first")
    env = {"SANDCLOUD_MAX_PER_LEARNER": str(per_learner), "SANDCLOUD_WARM_POOL_SIZE": str(pool_size),
           "SANDCLOUD_WARM_POOL_MAX": str(pool_size)}
    started: list[int] = []
    cold_runs: list[SandboxRun] = []
    warm_runs: list[SandboxRun] = []
    loop = asyncio.new_event_loop()
    try:
        services.warm_pool_drain()
        with running_stack(env=env, web_processes=web_processes) as base_url:
            site = SiteClient(base_url)
            site.login(user.get_username(), password)
            progress(f"stack up at {base_url}; docker run baseline x{runs}")
            baseline = docker_run_baseline(runs)
            for phase, count, runs_out in (("cold", runs, cold_runs), ("warm", runs, warm_runs)):
                for index in range(warmup + count):
                    if phase == "warm":
                        warm_pool_wait_full(pool_size)
                    elif WarmContainer.objects.exists():
                        services.warm_pool_drain()
                    run = loop.run_until_complete(measure_sandbox(
                        site, cold=phase == "cold", echo_samples=echo_samples, log_samples=log_samples))
                    started.append(run.sandbox_id)
                    sandbox = Sandbox.objects.get(pk=run.sandbox_id)
                    run.from_warm_pool = sandbox.from_warm_pool
                    if run.from_warm_pool != (phase == "warm"):
                        raise BenchError(f"{phase} run {index} got sandbox {sandbox.pk} with "
                                         f"from_warm_pool={sandbox.from_warm_pool}")
                    if sandbox.from_warm_pool:
                        _wait_attached(sandbox)
                    services.sandbox_stop(sandbox_id=sandbox.pk)
                    if index >= warmup:
                        runs_out.append(run)
                    progress(f"{phase} {index - warmup + 1 if index >= warmup else 'warm-up'}: "
                             f"ready {run.ready_ms:.0f} ms, echo {min(run.echo_ms or [0]):.1f} ms, "
                             f"log {min(run.log_ms or [0]):.1f} ms")
            warm_pool_wait_full(pool_size)  # let the last refill finish before draining
    finally:
        loop.close()
        stop_all(started)
        services.warm_pool_drain()
        if not WarmContainer.objects.exists():
            engine().remove_network(f"sandcloud-{_instance()}-pool")  # ensure_network makes it again when needed
    every = cold_runs + warm_runs
    result = {
        "runs": runs, "web_processes": web_processes,
        "warm_ready_ms": summarize([r.ready_ms for r in warm_runs]),
        "cold_ready_ms": summarize([r.ready_ms for r in cold_runs]),
        "echo_rtt_ms": summarize([s for r in every for s in r.echo_ms]),
        "log_latency_ms": summarize([s for r in every for s in r.log_ms]),
        "docker_run_baseline_ms": summarize(baseline, keys=("p50", "p95")),
        "breakdown_p50_ms": {
            "warm": _phase_medians(warm_runs),
            "cold": _phase_medians(cold_runs),
        },
        "machine": machine_facts(),
    }
    result["targets"] = verdicts(result)
    return result


def _phase_medians(runs: list[SandboxRun]) -> dict[str, float]:
    names = sorted({name for run in runs for name in run.phases_ms}, key=lambda n: percentile(
        [r.phases_ms[n] for r in runs if n in r.phases_ms], 50))
    medians = {name: round(percentile([r.phases_ms[name] for r in runs if name in r.phases_ms], 50), 1)
               for name in names}
    medians["prompt"] = round(percentile([r.ready_ms for r in runs], 50), 1) if runs else None
    return medians
