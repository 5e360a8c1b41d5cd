"""`manage.py bench herd`: a class presses "Start the lab" at the same second, without and then with a class session."""
from __future__ import annotations

import asyncio
import os
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Callable
from urllib.parse import urljoin

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from cohorts.services import class_session_cancel, class_session_schedule, cohort_create, cohort_join
from labs.models import Lab
from labs.services import lab_environment, labs_load

from ..benchmarks import BenchError
from ..benchmarks.host import ProcessCpu, machine_cpu_seconds, machine_facts, processes_cpu
from ..benchmarks.results import summarize
from ..benchmarks.sandbox import (PromptBuffer, _is_running_message, _phase_medians, _server_phases, _wait_attached,
                                  bench_user, stop_all)
from ..benchmarks.site import Frames, SiteClient
from ..engine.docker import engine
from ..models import Sandbox, WarmContainer
from ..services import host_memory_budget_mb, memory_committed_mb
from ..states import FINAL
from .services import pool_levels, pools_drain, pools_tend

# The targets for a herd with a class session scheduled ahead, on the 2-core machine.
CLASS_READY_P95_MS = 1000.0
CLASS_READY_MAX_MS = 2000.0
# A class scheduled ahead presses Start minutes after its pool filled, not the instant the last container started.
SETTLE_SECONDS = 3.0
COLD_RUNNING_TIMEOUT = 180.0  # a cold herd's last learner waits for every start before theirs
SANDBOX_ON_PAGE = re.compile(r'data-sandbox-id="(\d+)" data-state="(\w+)"')
MESSAGE_ON_PAGE = re.compile(r'role="alert">\s*(.*?)\s*<button', re.S)


@dataclass
class Press:
    """One learner's "Start the lab": what they got and how long they waited for its prompt."""

    sandbox_id: int | None = None
    ready_ms: float | None = None
    phases_ms: dict[str, float] = field(default_factory=dict)
    from_warm_pool: bool | None = None
    error: str = ""


class PoolTender:
    """Beat's warm pool pass (pools_tend, which warm_pool_fill_task runs) in a thread of this process: every `interval`
    seconds as beat would, or back to back while a class's pool is prepared, so a lead time compressed from minutes to
    a minute is not throttled by beat's 10 s beat."""

    def __init__(self, *, interval: float):
        self.interval = interval
        self.eager = threading.Event()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.passes = self.started = 0
        self.busy_seconds = 0.0
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, name="pool-tender", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.wake.wait(self.interval)  # beat's first tick comes at any moment, not as the bench begins
            self.wake.clear()
            while not self.stopping.is_set():
                began = time.perf_counter()
                try:
                    self.started += pools_tend().started_total
                except Exception as error:  # noqa: BLE001 - beat would run the next pass too; the report says so
                    if len(self.errors) < 5:
                        self.errors.append(f"{type(error).__name__}: {error}")
                self.passes += 1
                self.busy_seconds += time.perf_counter() - began
                self.wake.wait(0.05 if self.eager.is_set() else self.interval)
                self.wake.clear()
        finally:
            connection.close()

    def hurry(self, on: bool) -> None:
        (self.eager.set if on else self.eager.clear)()
        self.wake.set()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout=180)


def _lab_start_pressed(site: SiteClient, slug: str, barrier: threading.Barrier) -> tuple[float, float, dict, int, str]:
    """What the browser does on "Start the lab": the form's POST, then the lab page it is sent to. Returns the press's
    perf_counter and wall clock, the phases, and the sandbox id and state the page shows."""
    barrier.wait(timeout=120)
    t0, t0_wall = time.perf_counter(), time.time()
    response = site.http.post(f"{site.base_url}/labs/{slug}/start/", allow_redirects=False, timeout=120,
                              data={"csrfmiddlewaretoken": site.http.cookies["csrftoken"]})
    phases = {"http_post": (time.perf_counter() - t0) * 1000}
    if response.status_code != 302:
        raise BenchError(f"POST /labs/{slug}/start/ gave HTTP {response.status_code} (see var/log/web-*.log)")
    page = site.http.get(urljoin(site.base_url, response.headers["Location"]), timeout=120)
    phases["page"] = (time.perf_counter() - t0) * 1000
    found = SANDBOX_ON_PAGE.search(page.text)
    if page.status_code != 200 or not found:
        message = MESSAGE_ON_PAGE.search(page.text)
        raise BenchError(f"the lab page (HTTP {page.status_code}) shows no sandbox"
                         + (f": {message.group(1)}" if message else ""))
    return t0, t0_wall, phases, int(found.group(1)), found.group(2)


async def _socket_open(site: SiteClient, press: Press, kind: str, t0: float) -> Frames:
    socket = await site.websocket(press.sandbox_id, kind)
    press.phases_ms[f"{kind}_open"] = (time.perf_counter() - t0) * 1000
    return Frames(socket)


async def _learner(site: SiteClient, slug: str, barrier: threading.Barrier, executor: ThreadPoolExecutor) -> Press:
    """Press Start, then open the page's sockets as sandbox.js does: a running sandbox's terminal at once (beside the
    event stream), a starting one's once the stream says it runs. Ready is the prompt on the terminal."""
    press = Press()
    sockets: list[Frames] = []
    try:
        t0, t0_wall, press.phases_ms, press.sandbox_id, state = await asyncio.get_running_loop().run_in_executor(
            executor, _lab_start_pressed, site, slug, barrier)
        press.phases_ms["t0_wall"] = t0_wall
        if state == "running":
            opened = await asyncio.gather(_socket_open(site, press, "terminal", t0),
                                          _socket_open(site, press, "stream", t0), return_exceptions=True)
            sockets += [socket for socket in opened if isinstance(socket, Frames)]
            if len(sockets) < len(opened):
                raise next(socket for socket in opened if isinstance(socket, BaseException))
            terminal = sockets[0]
        else:
            sockets.append(stream := await _socket_open(site, press, "stream", t0))
            at, _, _ = await stream.until(_is_running_message, COLD_RUNNING_TIMEOUT, "running state on the stream")
            press.phases_ms["running_seen"] = (at - t0) * 1000
            sockets.append(terminal := await _socket_open(site, press, "terminal", t0))
        at, _, _ = await terminal.until(PromptBuffer().feed, 60, "prompt on the terminal socket")
        press.ready_ms = (at - t0) * 1000
    except Exception as error:  # noqa: BLE001 - one learner's failure is a result, not the end of the herd
        press.error = f"{type(error).__name__}: {error}"
    finally:
        for socket in sockets:
            await socket.close()
    return press


def _children_cpu_seconds(processes: dict[int, ProcessCpu]) -> dict[str, float]:
    """CPU seconds used so far by this process's children and their own (daphne; the Celery worker and its pool),
    summed per child program."""
    me, totals = os.getpid(), {}
    for process in processes.values():
        top, parent = process.pid, process.parent
        while parent != me and parent in processes:
            top, parent = parent, processes[parent].parent
        if parent == me:
            name = "daphne" if _is_webserver(top) else processes[top].name  # its children are the daphne processes
            totals[name] = totals.get(name, 0.0) + process.seconds
    return totals


# dockerd, containerd and the shims start the execs (terminal attaches, setups) and swap the networks. An exited
# process is not counted (a short-lived runc is missed): the machine's busy share covers it.
ENGINE_PROGRAMS = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "runc", "docker-proxy")


def _engine_cpu_seconds(processes: dict[int, ProcessCpu]) -> dict[int, float]:
    return {pid: process.seconds for pid, process in processes.items() if process.name in ENGINE_PROGRAMS}


def _is_webserver(pid: int) -> bool:
    try:
        return b"config.webserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _herd(loop: asyncio.AbstractEventLoop, sites: list[SiteClient], slug: str) -> tuple[list[Press], dict]:
    """Every learner presses Start at the same moment (a barrier across one thread each for the HTTP part). Returns
    the presses and what the host did meanwhile: other work on it (a busy CI machine) slows every phase, and the CPU
    seconds the web server and the worker spent show which of them the herd waited for."""
    barrier = threading.Barrier(len(sites))
    before = processes_cpu()
    load, cpu, engine_cpu = os.getloadavg()[0], _children_cpu_seconds(before), _engine_cpu_seconds(before)
    own, machine, began = time.process_time(), machine_cpu_seconds(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(sites), thread_name_prefix="learner") as executor:
        async def everyone() -> list[Press]:
            return await asyncio.gather(*(_learner(site, slug, barrier, executor) for site in sites))

        presses = loop.run_until_complete(everyone())
    # The learners' side runs on the same cores here, unlike a class's browsers: its CPU is counted too.
    after = processes_cpu()
    host = {"load_1min_before": round(load, 2), "seconds": round(time.perf_counter() - began, 1),
            **{f"cpu_seconds_{name}": round(spent - cpu.get(name, 0.0), 1)
               for name, spent in _children_cpu_seconds(after).items()},
            "cpu_seconds_bench_client": round(time.process_time() - own, 1),
            "cpu_seconds_docker": round(sum(spent - engine_cpu.get(pid, 0.0)
                                            for pid, spent in _engine_cpu_seconds(after).items()), 1)}
    busy, total = (now - then for now, then in zip(machine_cpu_seconds(), machine))
    host["machine_busy_percent"] = round(100 * busy / total) if total else None
    warm = dict(Sandbox.objects.filter(pk__in=[p.sandbox_id for p in presses if p.sandbox_id])
                .values_list("pk", "from_warm_pool"))
    for press in presses:
        press.from_warm_pool = warm.get(press.sandbox_id)
        t0_wall = press.phases_ms.pop("t0_wall", None)
        if press.from_warm_pool is False and t0_wall is not None:
            press.phases_ms.update(_server_phases(press.sandbox_id, t0_wall))
    return presses, host


def _herd_report(presses: list[Press], host: dict) -> dict:
    ready = [p for p in presses if p.ready_ms is not None]
    times = [p.ready_ms for p in ready]
    errors = sorted({p.error for p in presses if p.error})
    return {
        "ready_ms": {**summarize(times), "max": round(max(times), 1) if times else None},
        "starts": {"learners": len(presses), "ready": len(ready),
                   "warm": sum(p.from_warm_pool is True for p in presses),
                   "cold": sum(p.from_warm_pool is False for p in presses),
                   "errors": sum(bool(p.error) for p in presses)},
        "breakdown_p50_ms": _phase_medians(ready) if ready else {},
        "errors": {"distinct": errors[:3]},
        "host": host,
    }


def _herd_stop(users) -> None:
    """Stops every sandbox of the herd (a claimed one once its attach finished) and waits until their containers are
    gone."""
    active = list(Sandbox.objects.filter(owner__in=users).exclude(state__in=FINAL))
    for sandbox in active:
        if sandbox.from_warm_pool:
            _wait_attached(sandbox)
    stop_all([sandbox.pk for sandbox in active])
    stopped = Sandbox.objects.filter(pk__in=[sandbox.pk for sandbox in active])
    containers = [c for c in stopped.values_list("container_id", flat=True) if c]
    deadline = time.monotonic() + 60
    while containers and time.monotonic() < deadline:
        containers = [c for c in containers if engine().state(c) is not None]
        time.sleep(0.2)
    if containers:
        raise BenchError(f"{len(containers)} containers of stopped sandboxes were still there after 60 s")


def _pool_prepare(tender: PoolTender, *, key: str, wanted: int, timeout: float,
                  progress: Callable[[str], None]) -> dict:
    """Tends back to back until the profile's pool holds `wanted` containers (or `timeout` passes)."""
    began, passes, started, busy = time.perf_counter(), tender.passes, tender.started, tender.busy_seconds
    tender.hurry(True)
    try:
        while (level := pool_levels().get(key, 0)) < wanted and time.perf_counter() - began < timeout:
            time.sleep(0.25)
    finally:
        tender.hurry(False)
    filled = time.perf_counter() - began
    progress(f"pool {level}/{wanted} after {filled:.1f} s; settling {SETTLE_SECONDS:.0f} s before the herd")
    time.sleep(SETTLE_SECONDS)
    return {"wanted": wanted, "at_press": pool_levels().get(key, 0), "fill_seconds": round(filled, 1),
            "tend_passes": tender.passes - passes, "tend_started": tender.started - started,
            "tend_busy_seconds": round(tender.busy_seconds - busy, 1)}


def _lab(slug: str) -> Lab:
    lab = Lab.objects.filter(slug=slug, is_published=True).first()
    if lab is None:
        labs_load()
        lab = Lab.objects.filter(slug=slug, is_published=True).first()
    if lab is None:
        raise BenchError(f"no published lab {slug!r}: choose one of labs/content")
    return lab


def _targets(with_class: dict) -> dict:
    ready_ms, starts = with_class["ready_ms"], with_class["starts"]
    not_ready = starts["learners"] - starts["ready"]
    found = {"class_ready_p95_ms": ("p95", ready_ms["p95"], CLASS_READY_P95_MS),
             "class_ready_max_ms": ("max", ready_ms["max"], CLASS_READY_MAX_MS),
             "class_not_ready": ("count", not_ready, 0)}
    return {name: {"stat": stat, "measured": measured, "target": target,
                   "met": measured is not None and measured <= target}
            for name, (stat, measured, target) in found.items()}


def bench_herd(*, learners: int, lab: str = "resource-limits", lead_seconds: float = 60.0,
               web_processes: int | None = None, progress: Callable[[str], None] = lambda line: None) -> dict:
    """`learners` accounts in one cohort press Start on `lab` at once through `make run`'s web server (config/webserver.py,
    `web_processes` daphne processes, default as `make run`) + a real Celery worker: first with the pools drained,
    then with a class session scheduled `lead_seconds` ahead and its pool filled."""
    from config.processes import running_stack
    from config.webserver import default_processes

    if learners < 1:
        raise BenchError("a herd needs at least one learner")
    lab_row = _lab(lab)
    profile = lab_environment(lab_row).profile
    if profile is None:
        raise BenchError(f"lab {lab!r} asks for extra capabilities, so no pool can serve it: choose another")
    if not engine().has_image(profile.image):
        raise BenchError(f"image {profile.image} is missing: run `python manage.py sandbox images`")
    budget_mb = host_memory_budget_mb()
    free_mb = budget_mb - memory_committed_mb()
    if learners * profile.memory_mb > free_mb:
        raise BenchError(f"{learners} sandboxes of {profile.memory_mb} MB need {learners * profile.memory_mb} MB, but "
                         f"the memory budget has {free_mb} MB free: raise SANDCLOUD_MEMORY_OVERCOMMIT or "
                         f"SANDCLOUD_SANDBOXES_MEMORY_MB for this command, or ask for fewer learners")
    password = secrets.token_urlsafe(16)
    users = [bench_user(n, password) for n in range(1, learners + 1)]
    if Sandbox.objects.filter(owner__in=users).exclude(state__in=FINAL).exists():
        raise BenchError("bench learners still have active sandboxes from another run; stop them first")
    instructor, _ = get_user_model().objects.update_or_create(username="bench-instructor",
                                                               defaults={"is_staff": True})
    cohort = cohort_create(instructor=instructor, name=f"Herd bench {timezone.now():%Y-%m-%d %H:%M:%S}")
    for user in users:
        cohort_join(learner=user, invite_code=cohort.invite_code)

    tender = PoolTender(interval=settings.CELERY_BEAT_SCHEDULE["sandbox-warm-pool"]["schedule"])
    lead_minutes = settings.SANDCLOUD["CLASS_LEAD_MINUTES"]
    loop = asyncio.new_event_loop()
    session = None
    web_processes = web_processes or default_processes()
    result: dict = {"learners": learners, "lab": lab, "profile": profile.key, "web_processes": web_processes,
                    "memory": {"budget_mb": budget_mb, "free_mb": free_mb, "herd_mb": learners * profile.memory_mb},
                    "tending": f"in-process pools_tend every {tender.interval:g} s as beat, back to back while the "
                               f"class pool fills"}
    try:
        with running_stack(web_processes=web_processes) as base_url:
            sites = []
            for user in users:
                sites.append(site := SiteClient(base_url))
                site.login(user.get_username(), password)
            progress(f"stack up at {base_url}; {learners} learners signed in")
            pools_drain()
            tender.start()
            result["without_class"] = _herd_report(*_herd(loop, sites, lab))
            progress(f"without a class session: {result['without_class']['ready_ms']}")
            _herd_stop(users)

            # The lead is shortened in this process only: class_session_schedule turns it into the reservation's
            # ramp_from, which begins after the first herd, so those starts do not count as arrivals.
            settings.SANDCLOUD["CLASS_LEAD_MINUTES"] = lead_seconds / 60
            scheduled = class_session_schedule(instructor=instructor, cohort=cohort, lab=lab_row, minutes=30,
                                               starts_at=timezone.now() + timedelta(seconds=lead_seconds))
            session = scheduled.session
            level = pool_levels().get(profile.key, 0)
            wanted = learners if scheduled.preparable is None else min(learners, level + scheduled.preparable)
            pool = _pool_prepare(tender, key=profile.key, wanted=wanted, timeout=lead_seconds + 120,
                                 progress=progress)
            result["with_class"] = {**_herd_report(*_herd(loop, sites, lab)), "pool": pool}
            progress(f"with a class session: {result['with_class']['ready_ms']}")
            _herd_stop(users)
            result["tending"] += f" ({tender.passes} passes, errors: {tender.errors or 'none'})"
    finally:
        settings.SANDCLOUD["CLASS_LEAD_MINUTES"] = lead_minutes
        tender.stop()
        loop.close()
        stop_all(list(Sandbox.objects.filter(owner__in=users).exclude(state__in=FINAL).values_list("pk", flat=True)))
        if session is not None:
            class_session_cancel(instructor=instructor, session=session)
        cohort.delete()
        pools_drain()
        if not WarmContainer.objects.exists():
            engine().remove_network(f"sandcloud-{settings.SANDCLOUD['INSTANCE']}-pool")
    result["targets"] = _targets(result["with_class"])
    result["machine"] = machine_facts()
    return result
