"""Measures Sandcloud end to end: time to a terminal prompt, keystroke echo, log latency, and memory per idle sandbox."""
from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import re
import secrets
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import requests
import websockets
from websockets.asyncio.client import connect as ws_connect

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections

from . import services
from .engine.docker import EngineError, engine
from .events import redis_client
from .models import Sandbox, WarmContainer
from .policy import container_name
from .states import FINAL, State

PROMPT = b"learner@sandbox"
MARK = re.compile(r"MARK (\d{19})\b")
TARGETS = {
    "warm_ready_ms": ("p50", 150.0),
    "cold_ready_ms": ("p50", 800.0),
    "echo_rtt_ms": ("p95", 30.0),
    "log_latency_ms": ("p95", 100.0),
    "host_memory_per_sandbox_mb": ("value", 25.0),
    "accounted_per_sandbox_mb": ("value", 25.0),
}


class BenchError(Exception):
    """The benchmark could not measure what it set out to; str() says which step failed."""


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


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as bytes per field."""
    fields = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[name.strip()] = int(parts[0]) * (1024 if parts[1:2] == ["kB"] else 1)
    return fields


def mark_latency_ms(line: str, received_ns: int) -> float | None:
    """Latency of a `MARK <ns>` log line received at `received_ns` (both from the same host clock)."""
    found = MARK.search(line)
    if not found:
        return None
    return (received_ns - int(found.group(1))) / 1e6


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


# --- machine facts ---------------------------------------------------------------------------------------------------

def machine_facts() -> dict:
    info = {}
    try:
        raw = engine().client.info()
        info = {"docker_version": raw.get("ServerVersion"), "storage_driver": raw.get("Driver"),
                "cgroup_driver": raw.get("CgroupDriver"), "cgroup_version": raw.get("CgroupVersion")}
    except Exception:  # noqa: BLE001 - facts are a courtesy
        pass
    meminfo = parse_meminfo(Path("/proc/meminfo").read_text())
    return {"cpu_count": os.cpu_count(), "memory_total_mb": round(meminfo.get("MemTotal", 0) / 2**20),
            "kernel": platform.release(), "python": platform.python_version(),
            "database": connections["default"].vendor, **info}


def mem_available() -> int:
    return parse_meminfo(Path("/proc/meminfo").read_text())["MemAvailable"]


# --- the site, driven like a browser ---------------------------------------------------------------------------------

class SiteClient:
    """One learner's browser: a cookie jar, CSRF token, and the two WebSockets of the sandbox page."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()
        self.host = urlsplit(self.base_url).hostname

    def login(self, username: str, password: str) -> None:
        response = self.http.get(f"{self.base_url}/accounts/login/", timeout=10)
        if "csrftoken" not in self.http.cookies:
            # The login page could not be rendered (its template may be missing); any 32-character secret set as
            # the cookie is a valid CSRF token for a form post, exactly what the page would have handed out.
            self.http.cookies.set("csrftoken", secrets.token_hex(16), domain=self.host, path="/")
        response = self.http.post(f"{self.base_url}/accounts/login/", allow_redirects=False, timeout=10,
                                  data={"username": username, "password": password,
                                        "csrfmiddlewaretoken": self.http.cookies["csrftoken"]})
        if response.status_code != 302 or "sessionid" not in self.http.cookies:
            raise BenchError(f"logging in as {username} failed: HTTP {response.status_code}")

    def start_sandbox(self, runtime: str = "runc") -> int:
        response = self.http.post(f"{self.base_url}/sandboxes/start/", allow_redirects=False, timeout=30,
                                  data={"runtime": runtime, "csrfmiddlewaretoken": self.http.cookies["csrftoken"]})
        found = re.fullmatch(r"/sandboxes/(\d+)/", response.headers.get("Location", ""))
        if response.status_code != 302 or not found:
            raise BenchError(f"POST /sandboxes/start/ gave HTTP {response.status_code} "
                             f"to {response.headers.get('Location')!r} (quota or a server error; see var/log/web-*.log)")
        return int(found.group(1))

    def websocket(self, sandbox_id: int, kind: str):
        cookies = "; ".join(f"{name}={value}" for name, value in self.http.cookies.items())
        ws_url = self.base_url.replace("http://", "ws://", 1)
        return ws_connect(f"{ws_url}/ws/sandboxes/{sandbox_id}/{kind}/", origin=self.base_url,
                          additional_headers={"Cookie": cookies}, open_timeout=15, max_queue=None)


class Frames:
    """Reads a WebSocket in the background and timestamps each frame on arrival."""

    def __init__(self, socket):
        self.socket = socket
        self.queue: asyncio.Queue[tuple[float, int, bytes | str]] = asyncio.Queue()
        self.closed: tuple[int | None, str] | None = None
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.socket:
                self.queue.put_nowait((time.perf_counter(), time.time_ns(), frame))
        except websockets.ConnectionClosed:
            pass
        self.closed = (self.socket.close_code, self.socket.close_reason or "")
        self.queue.put_nowait((time.perf_counter(), time.time_ns(), b""))

    async def next(self, deadline: float) -> tuple[float, int, bytes | str]:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise asyncio.TimeoutError
        item = await asyncio.wait_for(self.queue.get(), remaining)
        if item[2] == b"" and self.closed is not None:
            raise BenchError(f"the server closed the socket ({self.closed[0]}) {self.closed[1]}".strip())
        return item

    async def until(self, match: Callable[[bytes | str], bool], timeout: float, what: str) -> tuple[float, int, str]:
        """The arrival times of the first frame that `match`es; text frames that are server notices are reported."""
        deadline = time.perf_counter() + timeout
        notices = []
        while True:
            try:
                at, at_ns, frame = await self.next(deadline)
            except asyncio.TimeoutError:
                raise BenchError(f"no {what} within {timeout:.0f} s; notices: {notices}") from None
            except BenchError as error:
                raise BenchError(f"waiting for {what}: {error}; notices: {notices}") from None
            if isinstance(frame, str) and '"type": "error"' in frame:
                notices.append(frame)
            if match(frame):
                return at, at_ns, frame

    async def quiet(self, gap: float = 0.15, limit: float = 3.0) -> None:
        """Waits until no frame has arrived for `gap` seconds (the terminal stopped redrawing)."""
        deadline = time.perf_counter() + limit
        while time.perf_counter() < deadline:
            try:
                await asyncio.wait_for(self.queue.get(), gap)
            except asyncio.TimeoutError:
                return

    async def close(self) -> None:
        await self.socket.close()
        self.task.cancel()


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
    from .events import events_recent

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


# --- orchestration ---------------------------------------------------------------------------------------------------

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
    """Cold starts (empty pool), then warm starts (pool filled before each), through daphne + a real Celery worker."""
    from config.processes import running_stack

    settings.SANDCLOUD["MAX_PER_LEARNER"] = per_learner
    settings.SANDCLOUD["WARM_POOL_SIZE"] = pool_size
    password = secrets.token_urlsafe(16)
    user = bench_user(1, password)
    if Sandbox.objects.filter(owner=user).exclude(state__in=FINAL).exists():
        raise BenchError(f"{user} still has active sandboxes from another run; stop them first")
    env = {"SANDCLOUD_MAX_PER_LEARNER": str(per_learner), "SANDCLOUD_WARM_POOL_SIZE": str(pool_size)}
    started: list[int] = []
    cold_runs: list[SandboxRun] = []
    warm_runs: list[SandboxRun] = []
    loop = asyncio.new_event_loop()
    try:
        services.warm_pool_drain()
        with running_stack(env=env) as base_url:
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
        "runs": runs,
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


# --- density ---------------------------------------------------------------------------------------------------------

def cgroup_memory(container_id: str) -> dict[str, int] | None:
    """usage_in_bytes and rss+cache from the container's cgroup (v1, cgroupfs driver; v2 as a fallback)."""
    for base in (Path("/sys/fs/cgroup/memory/docker") / container_id, Path("/sys/fs/cgroup/docker") / container_id,
                 Path("/sys/fs/cgroup/system.slice") / f"docker-{container_id}.scope"):
        if (base / "memory.usage_in_bytes").exists():
            stat = parse_meminfo_like((base / "memory.stat").read_text())
            return {"usage": int((base / "memory.usage_in_bytes").read_text()), "rss": stat.get("total_rss", 0),
                    "cache": stat.get("total_cache", 0), "kernel": _read_int(base / "memory.kmem.usage_in_bytes")}
        if (base / "memory.current").exists():
            stat = parse_meminfo_like((base / "memory.stat").read_text())
            return {"usage": int((base / "memory.current").read_text()), "rss": stat.get("anon", 0),
                    "cache": stat.get("file", 0), "kernel": stat.get("kernel", 0)}
    return None


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return 0


def parse_meminfo_like(text: str) -> dict[str, int]:
    """`name value` lines (cgroup memory.stat) as a dict."""
    fields = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            fields[parts[0]] = int(parts[1])
    return fields


def shim_pss(container_ids: set[str]) -> int:
    """Proportional set size of the containerd shims serving these containers (host memory outside their cgroups)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if not argv or b"containerd-shim" not in argv[0]:
                continue
            if "-id" not in (args := [a.decode() for a in argv]) or args[args.index("-id") + 1] not in container_ids:
                continue
            rollup = parse_meminfo((proc / "smaps_rollup").read_text().split("\n", 1)[1])
            total += rollup.get("Pss", 0)
        except (OSError, IndexError, ValueError):
            continue
    return total


def daemons_rss() -> int:
    """Resident memory of dockerd and containerd, which keep state (and log followers) for every container."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() in ("dockerd", "containerd"):
                total += parse_meminfo((proc / "status").read_text()).get("VmRSS", 0)
        except OSError:
            continue
    return total


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
