"""Reads for instructors: their cohorts, who they may watch, the progress matrix and the gradebook."""
from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from sandbox.engine.docker import EngineError, engine
from sandbox.events import redis_client
from django.utils import timezone

from sandbox.models import Sandbox
from sandbox.pools.services import pool_levels, reservation_remaining

from .models import ClassSession, Cohort, Membership

log = logging.getLogger(__name__)

# Dashboards refresh every 5 s: a sample younger than this serves every viewer's refresh, taken by one of them.
STATS_FRESH_SECONDS = 4.0
# The previous sample is kept longer, so CPU can be computed between two one-shot samples of the engine.
STATS_KEEP_SECONDS = 60
# A viewer that finds another viewer sampling a sandbox waits this long for that sample before showing the last one.
STATS_WAIT_SECONDS = 2.0
STATS_THREADS = 8


def instructs(*, instructor: AbstractBaseUser, learner_id: int) -> bool:
    """True when `instructor` teaches a cohort the learner belongs to (superusers operate everything)."""
    if not instructor.is_authenticated or not instructor.is_staff:
        return False
    if instructor.is_superuser:
        return True
    return Membership.objects.filter(learner_id=learner_id, cohort__instructor=instructor).exists()


def cohorts_taught(*, instructor: AbstractBaseUser) -> QuerySet[Cohort]:
    return Cohort.objects.filter(instructor=instructor).prefetch_related("memberships")


def cohorts_joined(*, learner: AbstractBaseUser) -> QuerySet[Cohort]:
    return Cohort.objects.filter(memberships__learner=learner).select_related("instructor")


def cohort_memberships(*, cohort: Cohort) -> QuerySet[Membership]:
    """The cohort's memberships with their learners, and whether each still has to choose their own password."""
    return (Membership.objects.filter(cohort=cohort).select_related("learner", "learner__password_change_required")
            .order_by("learner__username"))


def cohort_for_instructor(*, instructor: AbstractBaseUser, cohort_id: int) -> Cohort | None:
    """The cohort if `instructor` teaches it and is still staff: an instructor who lost is_staff keeps their rows
    (Cohort.instructor) but not the dashboard, gradebook, learner pages or live feed."""
    if not instructor.is_authenticated or not instructor.is_staff:
        return None
    cohort = Cohort.objects.filter(pk=cohort_id).first()
    if cohort is None or not (cohort.instructor_id == instructor.pk or instructor.is_superuser):
        return None
    return cohort


def cohort_learners(*, cohort: Cohort) -> list:
    return list(get_user_model().objects.filter(cohort_memberships__cohort=cohort).order_by("username"))


def _stats_key(container_id: str) -> str:
    return f"sandcloud:{settings.SANDCLOUD['INSTANCE']}:stats:{container_id}"


def sandboxes_stats(*, sandboxes: list[Sandbox]) -> dict[int, dict | None]:
    """CPU and memory of running sandboxes for the dashboards, {sandbox id: stats or None}. Every viewer in every
    process shares one engine sample per sandbox every STATS_FRESH_SECONDS (kept in Redis; a lock per sandbox lets
    one viewer take it while the others wait for it), and samples are one-shot: CPU is the share between the
    last two samples, None until there are two."""
    sandboxes = [s for s in sandboxes if s.container_id]
    if not sandboxes:
        return {}
    client = redis_client()
    try:
        cached = _stats_cached(client, sandboxes)
        due = [s for s in sandboxes if not _is_fresh(cached[s.pk])]
        pipe = client.pipeline()
        for sandbox in due:
            pipe.set(_stats_key(sandbox.container_id) + ":lock", "1", nx=True, ex=10)
        mine = [sandbox for sandbox, locked in zip(due, pipe.execute()) if locked]
    except redis.RedisError as error:
        log.warning("stats cache unavailable, sampling without it: %s", error)
        return {s.pk: _stats_entry(s, None)["stats"] for s in sandboxes}
    with ThreadPoolExecutor(max_workers=STATS_THREADS) as pool:
        taken = dict(zip([s.pk for s in mine], pool.map(lambda s: _stats_entry(s, cached[s.pk]), mine)))
    pipe = client.pipeline()
    for sandbox in mine:
        if taken[sandbox.pk]["stats"] is not None:
            pipe.set(_stats_key(sandbox.container_id), json.dumps(taken[sandbox.pk]), ex=STATS_KEEP_SECONDS)
        pipe.delete(_stats_key(sandbox.container_id) + ":lock")
    pipe.execute()
    cached.update(taken)
    waiting = [s for s in due if s.pk not in taken]
    deadline = time.monotonic() + STATS_WAIT_SECONDS
    while waiting and time.monotonic() < deadline:
        time.sleep(0.05)
        cached.update({pk: entry for pk, entry in _stats_cached(client, waiting).items() if entry})
        waiting = [s for s in waiting if not _is_fresh(cached[s.pk])]
    return {s.pk: (cached[s.pk] or {}).get("stats") for s in sandboxes}


def _stats_cached(client, sandboxes: list[Sandbox]) -> dict[int, dict | None]:
    values = client.mget([_stats_key(s.container_id) for s in sandboxes])
    return {s.pk: json.loads(value) if value else None for s, value in zip(sandboxes, values)}


def _is_fresh(entry: dict | None) -> bool:
    return entry is not None and time.time() - entry["at"] < STATS_FRESH_SECONDS


def _stats_entry(sandbox: Sandbox, previous: dict | None) -> dict:
    """A new one-shot sample, with CPU computed against the previous sample when there is one."""
    try:
        stats = engine().stats(sandbox.container_id, one_shot=True)
    except EngineError:
        return {"at": time.time(), "stats": None}
    before = (previous or {}).get("stats") or {}
    system = stats["system_cpu_ns"] - before.get("system_cpu_ns", 0)
    if before and system > 0:
        used = max(0, stats["cpu_usage_ns"] - before["cpu_usage_ns"])
        stats["cpu_percent"] = round(used / system * stats["online_cpus"] * 100, 1)
    return {"at": time.time(), "stats": stats}


@dataclass(frozen=True)
class MatrixCell:
    status: str  # "passed", "tried", "pending", "none"
    points: int
    attempts: int


@dataclass(frozen=True)
class StepStanding:
    """A learner's attempts on one step, summed up the way labs.selectors.lab_progress_for sums them."""

    passed: bool = False
    checking: bool = False
    attempts_counted: int = 0
    points: int = 0  # the best finished attempt's (labs.scoring.step_points)


def _cohort_standings(*, cohort: Cohort):
    """The published labs with their active steps, the cohort's learners, and {(learner id, step id): StepStanding},
    in four queries whatever the number of learners and labs: the dashboard re-reads this after every attempt."""
    from django.db.models import Count, Max, Q

    from labs.models import Attempt, LabStep
    from labs.selectors import labs_published

    labs = labs_published()
    steps: dict[int, list] = {lab.pk: [] for lab in labs}
    for step in LabStep.objects.filter(lab__in=labs, is_active=True).order_by("lab_id", "position"):
        steps[step.lab_id].append(step)
    learners = cohort_learners(cohort=cohort)
    summaries = (Attempt.objects.filter(user__cohort_memberships__cohort=cohort, step__lab__in=labs,
                                        step__is_active=True)
                 .values("user_id", "step_id")
                 .annotate(passed=Count("pk", filter=Q(status=Attempt.Status.PASSED)),
                           checking=Count("pk", filter=Q(status__in=[Attempt.Status.PENDING, Attempt.Status.RUNNING])),
                           counted=Count("pk", filter=Q(status__in=[Attempt.Status.FAILED, Attempt.Status.TIMED_OUT])),
                           best=Max("points", filter=Q(status__in=Attempt.FINISHED)))
                 .order_by())  # the model's default ordering would otherwise join the GROUP BY
    standings = {(row["user_id"], row["step_id"]): StepStanding(
        passed=row["passed"] > 0, checking=row["checking"] > 0, attempts_counted=row["counted"],
        points=row["best"] or 0) for row in summaries}
    return [(lab, steps[lab.pk]) for lab in labs], learners, standings


def progress_matrix(*, cohort: Cohort):
    """Rows of (learner, [cell per lab step], total points) and the columns [(lab, [steps])], for the dashboard's
    grid. A constant number of queries (see _cohort_standings), however many learners and labs."""
    labs, learners, standings = _cohort_standings(cohort=cohort)
    none = StepStanding()
    rows = []
    for learner in learners:
        cells, total = [], 0
        for _, steps in labs:
            for step in steps:
                standing = standings.get((learner.pk, step.pk), none)
                total += standing.points
                if standing.passed:
                    status = "passed"
                elif standing.checking:
                    status = "pending"
                elif standing.attempts_counted:
                    status = "tried"
                else:
                    status = "none"
                cells.append((step, MatrixCell(status=status, points=standing.points,
                                               attempts=standing.attempts_counted)))
        rows.append((learner, cells, total))
    return labs, rows


def gradebook(*, cohort: Cohort) -> tuple[list[str], list[list]]:
    """One row per learner, one column per lab, points (partial credit summed per lab), in constant queries."""
    labs, learners, standings = _cohort_standings(cohort=cohort)
    none = StepStanding()
    header = ["learner", *[lab.slug for lab, _ in labs], "total"]
    rows = []
    for learner in learners:
        points = [sum(standings.get((learner.pk, step.pk), none).points for step in steps) for _, steps in labs]
        rows.append([learner.get_username(), *points, sum(points)])
    return header, rows


@dataclass(frozen=True)
class ClassSessionView:
    session: ClassSession
    status: str           # scheduled | preparing | open | over | cancelled
    ready: int            # warm sandboxes of the lab's profile waiting now, up to the learners still to come
    remaining: int        # expected learners who have not started the lab yet
    warm: int             # learners' starts served from the pool since preparing began
    cold: int             # learners' starts that had to wait for a new container
    short: int            # sandboxes the host's memory budget could not admit at the last pass


def class_sessions_for(*, cohort: Cohort, limit: int = 10) -> list[ClassSessionView]:
    """The cohort's class sessions that are coming, under way or just over (newest last), with their pools."""
    now = timezone.now()
    sessions = list(ClassSession.objects.filter(cohort=cohort, ends_at__gte=now - timedelta(hours=12))
                    .select_related("lab", "reservation").order_by("starts_at")[:limit])
    levels = pool_levels() if sessions else {}
    members = list(cohort.memberships.values_list("learner_id", flat=True))
    views = []
    for session in sessions:
        reservation = session.reservation
        ramp_from = reservation.ramp_from if reservation else session.starts_at
        starts = (Sandbox.objects.filter(owner_id__in=members, lab_slug=session.lab.slug,
                                         created_at__gte=ramp_from, created_at__lt=session.ends_at)
                  .values_list("from_warm_pool", flat=True))
        warm = sum(1 for from_pool in starts if from_pool)
        remaining = reservation_remaining(reservation) if reservation else 0
        if session.cancelled_at:
            status = "cancelled"
        elif now >= session.ends_at:
            status = "over"
        elif now >= session.starts_at:
            status = "open"
        elif reservation and now >= reservation.ramp_from:
            status = "preparing"
        else:
            status = "scheduled"
        ready = min(levels.get(reservation.profile_key, 0), remaining) if reservation and status in (
            "preparing", "open") else 0
        views.append(ClassSessionView(session=session, status=status, ready=ready, remaining=remaining, warm=warm,
                                      cold=len(starts) - warm, short=reservation.short if reservation else 0))
    return views
