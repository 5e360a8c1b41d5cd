"""Every change a learner makes to a lab goes through here: load, start, set up, reset, reveal a hint, check, grade."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from sandbox import services as sandbox_services
from sandbox.events import event_publish
from sandbox.models import Sandbox
from sandbox.policy import Limits
from sandbox.pools.profiles import Profile, profile_of
from sandbox.states import ACTIVE, State

from .events import attempt_event_publish
from .format import CONTENT_DIR, LabError, LabSpec, labs_read
from .grading import CheckOutcome, check_run
from .models import Attempt, HintReveal, Lab, LabSandbox, LabStep
from .rendering import instructions_html
from .scoring import attempt_points, attempts_left
from .selectors import lab_sandbox_for, step_is_passed, step_is_unlocked, steps_current

log = logging.getLogger(__name__)

SETUP_TIMEOUT = 60
# A grading task runs a step's check for at most the check's timeout plus this margin (the Docker calls around it, each
# bounded by the engine's timeout); the task is queued with that as its hard time limit, so its worker is killed then.
GRADING_MARGIN_SECONDS = 90
# Beyond that hard limit, allowance for clocks and the kill itself: a check pending or running longer was lost with its
# worker or its queue, and the reaper finishes it so the learner may check again.
REAP_GRACE_SECONDS = 15
# step_setup_task's hard time limit (labs/tasks.py) plus the same allowance: a setup of a running sandbox still pending
# this long after it was queued (or the sandbox became ready) was lost, and the reaper queues it again.
SETUP_STALE_SECONDS = 120 + REAP_GRACE_SECONDS
LOST_CHECK_MESSAGE = ("This check was lost before it could finish (the grading service restarted). It does not count "
                      "against you: check again.")


class LabRefused(Exception):
    """Something the learner asked of a lab that cannot happen; str() is the message to show them."""


class SandboxStarting(Exception):
    """The sandbox is still being provisioned; the setup task retries."""


# --- loading ----------------------------------------------------------------------------------------------------------

@dataclass
class LoadReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unpublished: list[str] = field(default_factory=list)
    errors: list[LabError] = field(default_factory=list)


def labs_load(*, root: Path = CONTENT_DIR) -> LoadReport:
    """Imports every valid lab folder into the database. Idempotent: unchanged labs are not touched."""
    specs, errors = labs_read(root)
    report = LoadReport(errors=errors)
    with transaction.atomic():
        for spec in specs:
            lab = Lab.objects.filter(slug=spec.slug).first()
            if lab is not None and lab.source_hash == spec.source_hash and lab.is_published:
                report.unchanged.append(spec.slug)
                continue
            (report.created if lab is None else report.updated).append(spec.slug)
            _lab_save(spec)
        # A folder with errors is left as it was: its last good version stays online until it is fixed.
        broken = {error.path.parent.name for error in errors}
        gone = Lab.objects.filter(is_published=True).exclude(slug__in=[s.slug for s in specs] + list(broken))
        report.unpublished = list(gone.values_list("slug", flat=True))
        gone.update(is_published=False)
    return report


def _lab_save(spec: LabSpec) -> Lab:
    env = spec.environment
    lab, _ = Lab.objects.update_or_create(slug=spec.slug, defaults={
        "title": spec.title, "summary": spec.summary, "lesson_slug": spec.lesson, "difficulty": spec.difficulty,
        "estimated_minutes": spec.estimated_minutes,
        "environment": {"image": env.image, "runtime": env.runtime, "cpus": env.cpus, "memory_mb": env.memory_mb,
                        "pids": env.pids, "capabilities": list(env.capabilities),
                        "time_limit_minutes": env.time_limit_minutes},
        "max_attempts": spec.scoring.max_attempts,
        "penalty_per_failed_attempt": spec.scoring.penalty_per_failed_attempt,
        "hint_cost": spec.scoring.hint_cost, "source_hash": spec.source_hash, "is_published": True,
    })
    kept = []
    for position, step in enumerate(spec.steps, start=1):
        LabStep.objects.update_or_create(lab=lab, slug=step.slug, defaults={
            "position": position, "title": step.title, "instructions_html": instructions_html(step.instructions),
            "setup_script": step.setup, "check_script": step.check.script, "check_python": step.check.python,
            "check_timeout": step.check.timeout, "hints": list(step.hints), "solution_script": step.solution,
            "open_file": step.open_file,
            "points": step.points, "is_active": True,
        })
        kept.append(step.slug)
    removed = LabStep.objects.filter(lab=lab).exclude(slug__in=kept)
    removed.filter(attempts__isnull=True, hint_reveals__isnull=True).delete()
    removed.update(is_active=False)
    return lab


# --- sandboxes for labs -----------------------------------------------------------------------------------------------

def lab_start(*, user: AbstractBaseUser, lab: Lab) -> Sandbox:
    """The learner's sandbox for this lab: the running one if there is one, else a new one set up for their step."""
    # Read before the write transaction, which every learner's start waits for in turn: the step to set up (a step
    # passed meanwhile is in this sandbox's next setup), and the running sandbox most presses find.
    existing = lab_sandbox_for(user=user, lab=lab)
    if existing is not None:
        return existing
    step = steps_current(user=user, lab=lab)
    with transaction.atomic():
        # Lock the learner's row so a double click waits here and then finds the first click's sandbox instead of
        # making a second one (no-op on SQLite, whose IMMEDIATE transactions already serialize writers).
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        existing = lab_sandbox_for(user=user, lab=lab)
        if existing is not None:
            return existing
        return _lab_sandbox_new(user=user, lab=lab, step=step)


def step_reset(*, user: AbstractBaseUser, step: LabStep,
               reason: str = "Reset: a fresh sandbox replaces this one.") -> Sandbox:
    """"Reset this step": the learner's lab sandbox is replaced by a fresh one with the step's setup run again."""
    if not step_is_unlocked(user=user, step=step):
        raise LabRefused("Finish the previous steps first.")
    with transaction.atomic():
        # The old sandboxes are stopped by a worker once this commits: Docker stays out of the learner's request, and
        # a refused fresh sandbox (quota) rolls the stop back so the learner keeps the one they had.
        for sandbox in Sandbox.objects.filter(owner=user, lab_slug=step.lab.slug, state__in=ACTIVE):
            sandbox_services.sandbox_request_stop(sandbox_id=sandbox.pk, reason=reason)
        return _lab_sandbox_new(user=user, lab=step.lab, step=step)


def lab_sandbox_reset(*, sandbox: Sandbox, reason: str) -> Sandbox:
    """Someone other than the learner (their instructor) resets the learner's lab sandbox: the learner lands on the
    step they are on, set up again, in the lab's environment, exactly as with their own "Reset this step"."""
    lab = Lab.objects.filter(slug=sandbox.lab_slug, is_published=True).first()
    if lab is None:
        raise LabRefused("This sandbox's lab is no longer published, so it cannot be reset into it.")
    return step_reset(user=sandbox.owner, step=steps_current(user=sandbox.owner, lab=lab), reason=reason)


@dataclass(frozen=True)
class LabEnvironment:
    image: str
    runtime: str
    limits: Limits
    capabilities: tuple[str, ...]

    @property
    def profile(self) -> Profile | None:
        """The warm pool profile that serves this lab's sandboxes (None: each is made for its learner)."""
        return profile_of(image=self.image, runtime=self.runtime, limits=self.limits, capabilities=self.capabilities)


def lab_environment(lab: Lab) -> LabEnvironment:
    """The sandbox a lab's learners get: lab.yaml's environment over the platform's defaults."""
    env = lab.environment
    return LabEnvironment(
        image=env.get("image") or settings.SANDCLOUD["WORKSTATION_IMAGE"], runtime=env.get("runtime") or "runc",
        limits=sandbox_services.default_limits().with_overrides(
            memory_mb=env.get("memory_mb"), cpus=env.get("cpus"), pids=env.get("pids")),
        capabilities=tuple(env.get("capabilities") or ()))


def _lab_sandbox_new(*, user: AbstractBaseUser, lab: Lab, step: LabStep) -> Sandbox:
    environment = lab_environment(lab)
    with transaction.atomic():
        try:
            sandbox = sandbox_services.sandbox_request(
                owner=user, lab_slug=lab.slug, step_slug=step.slug, runtime=environment.runtime,
                image=environment.image, limits=environment.limits, capabilities=list(environment.capabilities),
                ttl_minutes=lab.environment.get("time_limit_minutes"))
        except sandbox_services.SandboxError as error:
            raise LabRefused(str(error)) from error
        # The tie is what lets the grader check this sandbox: only this path, which gave it the lab's environment and
        # queues the step's setup, makes one.
        LabSandbox.objects.create(sandbox=sandbox, lab=lab, step=step)
        sandbox_id, step_id = sandbox.pk, step.pk
        countdown = sandbox_services.WARM_FOLLOW_UP_SECONDS if sandbox.from_warm_pool else 0
        transaction.on_commit(lambda: _setup_queue(sandbox_id=sandbox_id, step_id=step_id, countdown=countdown))
    return sandbox


def _setup_queue(*, sandbox_id: int, step_id: int, countdown: float = 0) -> None:
    from .tasks import step_setup_task

    step_setup_task.apply_async((sandbox_id, step_id), countdown=countdown)


def _setup_move_on(*, sandbox_id: int, step: LabStep) -> None:
    """The learner passed a step in this sandbox: it now needs the next step's setup (queued once this commits)."""
    LabSandbox.objects.filter(sandbox_id=sandbox_id).update(step=step, setup=LabSandbox.Setup.PENDING,
                                                            setup_queued_at=timezone.now(), setup_finished_at=None)
    step_id = step.pk
    transaction.on_commit(lambda: _setup_queue(sandbox_id=sandbox_id, step_id=step_id))


def step_setup(*, sandbox_id: int, step_id: int) -> bool:
    """Runs a step's setup script in the sandbox as the learner. Setup scripts are written to be safe to run twice.

    Raises SandboxStarting while the sandbox is still being provisioned (the task retries); returns False when the
    sandbox is gone or the script failed, which the learner hears about on the sandbox's event stream. A duplicated
    task finds the setup done and does nothing; a late task for a step the sandbox has moved past does nothing either.
    """
    sandbox = Sandbox.objects.get(pk=sandbox_id)
    step = LabStep.objects.select_related("lab").get(pk=step_id)
    tie = LabSandbox.objects.filter(sandbox=sandbox, step=step).first()
    if tie is None or tie.setup != LabSandbox.Setup.PENDING:
        return tie is not None and tie.setup == LabSandbox.Setup.DONE
    if sandbox.state in (State.REQUESTED, State.PROVISIONING):
        raise SandboxStarting()
    if sandbox.state != State.RUNNING:
        return False
    if step.setup_script.strip():
        event_publish(sandbox_id=sandbox.pk, state=sandbox.state, message=f"Preparing \u201c{step.title}\u201d")
        try:
            exit_code, output = sandbox_services.sandbox_exec(
                sandbox=sandbox, command=["bash", "-c", step.setup_script], timeout=SETUP_TIMEOUT)
        except (sandbox_services.SandboxError, sandbox_services.EngineError) as error:
            # Left pending: the reaper queues it again if the sandbox is still running by then.
            log.warning("setup of %s in sandbox %s failed: %s", step, sandbox.pk, error)
            return False
        if exit_code != 0:
            log.warning("setup of %s in sandbox %s exited %s: %s", step, sandbox.pk, exit_code, output[-2000:])
            _setup_finish(tie, LabSandbox.Setup.FAILED)
            event_publish(sandbox_id=sandbox.pk, state=sandbox.state, level="error",
                          message=f"Preparing \u201c{step.title}\u201d failed. Use \u201cReset this step\u201d "
                                  f"to try again in a fresh sandbox.")
            return False
    _setup_finish(tie, LabSandbox.Setup.DONE)
    # The sandbox app records which step a lab sandbox is on; there is no sandbox service for it yet.
    Sandbox.objects.filter(pk=sandbox.pk).update(step_slug=step.slug)
    return True


def _setup_finish(tie: LabSandbox, outcome: str) -> None:
    # Only while the sandbox still waits for this step's setup: the learner may have moved on meanwhile.
    LabSandbox.objects.filter(pk=tie.pk, step_id=tie.step_id, setup=LabSandbox.Setup.PENDING).update(
        setup=outcome, setup_finished_at=timezone.now())


def step_setups_reap(*, now: datetime | None = None) -> int:
    """Queues again the setups of running lab sandboxes whose setup task was lost (a worker killed, the queue lost,
    retries used up while the engine was away); returns how many. A setup that failed on its own is left alone: the
    learner was told to reset."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=SETUP_STALE_SECONDS)
    lost = LabSandbox.objects.filter(setup=LabSandbox.Setup.PENDING, setup_queued_at__lt=cutoff,
                                     sandbox__state=State.RUNNING, sandbox__started_at__lt=cutoff)
    queued = 0
    for tie in lost:
        with transaction.atomic():
            # The queued-at time is the claim: of two reapers, only one re-queues it.
            if not LabSandbox.objects.filter(pk=tie.pk, setup=LabSandbox.Setup.PENDING,
                                             setup_queued_at=tie.setup_queued_at).update(setup_queued_at=now):
                continue
            log.warning("setup of step %s in sandbox %s was lost; queueing it again", tie.step_id, tie.sandbox_id)
            transaction.on_commit(partial(_setup_queue, sandbox_id=tie.sandbox_id, step_id=tie.step_id))
            queued += 1
    return queued


# --- hints ------------------------------------------------------------------------------------------------------------

def hint_reveal(*, user: AbstractBaseUser, step: LabStep) -> HintReveal:
    """Reveals the step's next hint (they come one at a time). Revealing costs the lab's hint_cost on later checks."""
    if not step_is_unlocked(user=user, step=step):
        raise LabRefused("Finish the previous steps first.")
    with transaction.atomic():
        revealed = HintReveal.objects.filter(user=user, step=step).count()
        if revealed >= len(step.hints):
            raise LabRefused("There are no more hints for this step.")
        try:
            with transaction.atomic():
                return HintReveal.objects.create(user=user, step=step, index=revealed)
        except IntegrityError:  # a double click revealed it already
            return HintReveal.objects.get(user=user, step=step, index=revealed)


# --- checks -----------------------------------------------------------------------------------------------------------

def attempt_request(*, user: AbstractBaseUser, sandbox: Sandbox, step: LabStep) -> Attempt:
    """Records a check of `step` and queues its grading once the row is committed."""
    if sandbox.owner_id != user.pk:
        raise PermissionDenied("You can only check your own sandbox.")
    # Only a sandbox the lab's own start gave its environment and setup is graded: one started any other way (an old
    # API call naming the lab, say) may have other limits or another runtime, and a check there proves nothing.
    if not LabSandbox.objects.filter(sandbox=sandbox, lab=step.lab).exists():
        raise LabRefused("This sandbox was not started from this lab's page, so it cannot be checked. Start the lab "
                         "from its page and check there.")
    with transaction.atomic():
        # One check at a time per learner: lock their row so a double click cannot queue two (no-op on SQLite).
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        sandbox.refresh_from_db()
        if sandbox.state != State.RUNNING:
            raise LabRefused(f"Your sandbox is not running ({sandbox.get_state_display().lower()}). Use \u201cReset "
                             f"this step\u201d to get a fresh one, then check again.")
        if not step_is_unlocked(user=user, step=step):
            raise LabRefused("This step is locked: finish the previous steps first.")
        if step_is_passed(user=user, step=step):
            raise LabRefused("You have already passed this step.")
        attempts = Attempt.objects.filter(user=user, step=step)
        _attempts_reap(attempts, now=timezone.now())
        if attempts.filter(status__in=[Attempt.Status.PENDING, Attempt.Status.RUNNING]).exists():
            raise LabRefused("A check for this step is already running.")
        rules = step.lab.scoring
        counted = attempts.filter(status__in=[Attempt.Status.FAILED, Attempt.Status.TIMED_OUT]).count()
        if attempts_left(rules=rules, counted=counted) == 0:
            raise LabRefused(f"You have used all {rules.max_attempts} attempts for this step.")
        attempt = Attempt.objects.create(user=user, lab=step.lab, step=step, sandbox=sandbox)
        transaction.on_commit(lambda: _attempt_queue(attempt))
    return attempt


def grading_time_limit(step: LabStep) -> int:
    """Seconds a worker may spend grading one check of `step` before Celery kills it."""
    return step.check_timeout + GRADING_MARGIN_SECONDS


def _attempt_is_lost(attempt: Attempt, *, now) -> bool:
    # A running check is measured from its claim (its worker's time limit started then), a pending one from the press.
    claimed = attempt.status == Attempt.Status.RUNNING and attempt.started_at is not None
    since = attempt.started_at if claimed else attempt.created_at
    return since < now - timedelta(seconds=grading_time_limit(attempt.step) + REAP_GRACE_SECONDS)


def attempts_reap(*, now: datetime | None = None) -> int:
    """Finishes checks lost with their worker or their queue as "could not run", never counted, so the learner may
    check again and the page stops waiting; returns how many. A check is never taken from a worker that may still
    be grading it: it is lost only once its worker's hard time limit has passed."""
    return _attempts_reap(Attempt.objects.all(), now=now or timezone.now())


def _attempts_reap(attempts, *, now) -> int:
    # No check can be lost sooner than the shortest time limit; the per-step limit is applied row by row.
    oldest_possible = now - timedelta(seconds=1 + GRADING_MARGIN_SECONDS + REAP_GRACE_SECONDS)
    unfinished = (attempts.filter(status__in=[Attempt.Status.PENDING, Attempt.Status.RUNNING])
                  .filter(Q(created_at__lt=oldest_possible) | Q(started_at__lt=oldest_possible))
                  .select_related("step__lab", "lab", "sandbox", "user"))
    reaped = 0
    for attempt in unfinished:
        if not _attempt_is_lost(attempt, now=now):
            continue
        with transaction.atomic():
            # Only as it was read: a worker that claimed (or re-claimed) it meanwhile keeps it.
            if not Attempt.objects.filter(pk=attempt.pk, status=attempt.status, started_at=attempt.started_at).update(
                    status=Attempt.Status.ERROR, passed=False, points=0, message=LOST_CHECK_MESSAGE, finished_at=now):
                continue
            log.warning("attempt %s (%s) was lost with its grading task; finished as not counted", attempt.pk,
                        attempt.status)
            attempt.refresh_from_db()
            transaction.on_commit(partial(attempt_event_publish, attempt=attempt, kind="attempt.result"))
            reaped += 1
    return reaped


def _attempt_queue(attempt: Attempt) -> None:
    from .tasks import attempt_grade_task

    attempt_event_publish(attempt=attempt, kind="attempt.queued")
    limit = grading_time_limit(attempt.step)
    # The hard limit is what makes the reaper's cutoff safe: past it no worker can still be grading this check.
    attempt_grade_task.apply_async((attempt.pk,), task_id=str(attempt.task_id), time_limit=limit)


def attempt_grade(*, attempt_id: int) -> Attempt:
    """Runs the attempt's check and stores its result. Idempotent: only the worker that claims the row grades it, and a
    duplicated or redelivered task finds it claimed or finished and returns it unchanged."""
    attempt = Attempt.objects.select_related("step__lab", "lab", "sandbox", "user").get(pk=attempt_id)
    if attempt.is_finished:
        return attempt
    claimed_at = timezone.now()
    # A claim older than its worker's hard time limit died with that worker: a redelivered task takes it over.
    stale = claimed_at - timedelta(seconds=grading_time_limit(attempt.step))
    claimed = Attempt.objects.filter(pk=attempt.pk).filter(
        Q(status=Attempt.Status.PENDING) | Q(status=Attempt.Status.RUNNING, started_at__lt=stale),
    ).update(status=Attempt.Status.RUNNING, started_at=claimed_at)
    if not claimed:
        attempt.refresh_from_db()
        return attempt
    attempt.status, attempt.started_at = Attempt.Status.RUNNING, claimed_at
    attempt_event_publish(attempt=attempt, kind="attempt.running")
    if attempt.sandbox is None:
        outcome = CheckOutcome(status=Attempt.Status.ERROR, fraction=0.0, output="", duration_ms=0,
                               message="Your sandbox no longer exists, so the check could not run. Use \u201cReset "
                                       "this step\u201d to get a fresh one; this attempt does not count against you.")
    else:
        outcome = check_run(sandbox=attempt.sandbox, step=attempt.step)
    return _attempt_finish(attempt, outcome, claimed_at=claimed_at)


def _attempt_finish(attempt: Attempt, outcome: CheckOutcome, *, claimed_at) -> Attempt:
    step = attempt.step
    with transaction.atomic():
        points = 0
        if outcome.status != Attempt.Status.ERROR:
            failed_before = (Attempt.objects.filter(user=attempt.user, step=step)
                             .filter(status__in=[Attempt.Status.FAILED, Attempt.Status.TIMED_OUT])
                             .exclude(pk=attempt.pk).count())
            points = attempt_points(step_points=step.points, fraction=outcome.fraction, failed_before=failed_before,
                                    hints_revealed=HintReveal.objects.filter(user=attempt.user, step=step).count(),
                                    rules=step.lab.scoring)
        fields = {"status": outcome.status, "passed": outcome.status == Attempt.Status.PASSED,
                  "message": outcome.message, "points": points, "duration_ms": outcome.duration_ms,
                  "output": outcome.output, "finished_at": timezone.now()}
        # Only the claim this worker made may finish the row; a worker that lost it to a re-claim changes nothing.
        finished = Attempt.objects.filter(pk=attempt.pk, status=Attempt.Status.RUNNING,
                                          started_at=claimed_at).update(**fields)
        attempt.refresh_from_db()
        if finished:
            transaction.on_commit(lambda: attempt_event_publish(attempt=attempt, kind="attempt.result"))
            next_step = _step_after(step) if attempt.passed else None
            if next_step is not None and attempt.sandbox_id:
                _setup_move_on(sandbox_id=attempt.sandbox_id, step=next_step)
    return attempt


def _step_after(step: LabStep) -> LabStep | None:
    return (LabStep.objects.filter(lab_id=step.lab_id, is_active=True, position__gt=step.position)
            .order_by("position").first())


# --- solutions --------------------------------------------------------------------------------------------------------

def step_solve(*, sandbox: Sandbox, step: LabStep) -> tuple[int, str]:
    """Runs the step's solution script as the learner (the solution bot; staff demonstrating a step).

    Solution scripts get $SANDCLOUD_HOST_KERNEL: a fact a learner looks up elsewhere (in a standard sandbox) that a
    gVisor sandbox cannot show.
    """
    from sandbox.engine.docker import engine
    from sandbox.engine.images import LEARNER_GID


    sandbox.refresh_from_db()
    if sandbox.state != State.RUNNING:
        raise LabRefused(f"The sandbox is {sandbox.get_state_display().lower()}.")
    return engine().exec(sandbox.container_id, ["bash", "-c", step.solution_script], user=f"{sandbox.uid}:{LEARNER_GID}",
                         timeout=SETUP_TIMEOUT, environment={"SANDCLOUD_HOST_KERNEL": engine().host_kernel()})
